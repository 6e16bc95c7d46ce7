//! The registry itself: [`SchemaRegistry`] (every schema, resource type and the service
//! provider configuration, built once from [`SchemaSources`]), its discovery documents, and
//! [`prefix_meta_locations`] for them.

use std::sync::OnceLock;

use serde_json::Value;

use super::load::{
    RawCommon, RawSchema, check_resource_type, convert_attrs, from_value, invalid, parse_json,
};
use super::{
    LoadError, ResourceKind, ResourceResolver, SCHEMA_SCHEMA, SERVICE_PROVIDER_CONFIG_SCHEMA,
    SchemaError, SchemaSources, WriteMode,
};
use crate::scim::attr::AttrInfo;

/// One schema (RFC 7643 §7) as the server uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDef {
    /// The schema URN, e.g. [`USER_SCHEMA`](super::USER_SCHEMA).
    pub id: String,
    /// Human-readable name (`User`, `EnterpriseUser`, `Group`).
    pub name: String,
    /// Human-readable description.
    pub description: String,
    /// Top-level attributes, in the published order.
    pub attributes: Vec<AttrInfo>,
}

impl SchemaDef {
    /// The top-level attribute named `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&AttrInfo> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// Every schema, resource type and the service provider configuration the server knows.
/// Build with [`SchemaRegistry::builtin`] (the compiled-in `schemas/` files) or
/// [`SchemaRegistry::from_sources`].
#[derive(Debug)]
pub struct SchemaRegistry {
    pub(super) schemas: Vec<SchemaDef>,
    pub(super) schema_resources: Vec<Value>,
    pub(super) common: Vec<AttrInfo>,
    pub(super) resource_types: Vec<Value>,
    pub(super) service_provider_config: Value,
}

static BUILTIN: OnceLock<Result<SchemaRegistry, LoadError>> = OnceLock::new();

impl SchemaRegistry {
    /// The registry built from the compiled-in `schemas/` files, parsed on first use.
    ///
    /// # Panics
    /// Only if a compiled-in JSON file is malformed: a build defect that the unit tests
    /// catch. Call [`try_builtin`](Self::try_builtin) at start-up to surface it as an error.
    pub fn builtin() -> &'static SchemaRegistry {
        match Self::try_builtin() {
            Ok(registry) => registry,
            Err(e) => panic!("compiled-in SCIM schema files are invalid: {e}"),
        }
    }

    /// The registry built from the compiled-in `schemas/` files, or why they cannot be used.
    pub fn try_builtin() -> Result<&'static SchemaRegistry, &'static LoadError> {
        BUILTIN
            .get_or_init(|| SchemaRegistry::from_sources(&SchemaSources::BUILTIN))
            .as_ref()
    }

    /// Parses and checks the given JSON texts. Every attribute must carry every
    /// characteristic (`name`, `type`, `multiValued`, `description`, `required`,
    /// `caseExact`, `canonicalValues`, `referenceTypes`, `mutability`, `returned`,
    /// `uniqueness`, and `subAttributes` exactly on complex attributes); each
    /// [`ResourceKind`]'s core and extension schemas must be present, and the resource
    /// types must match the kinds.
    pub fn from_sources(sources: &SchemaSources<'_>) -> Result<SchemaRegistry, LoadError> {
        let mut schemas: Vec<SchemaDef> = Vec::new();
        let mut schema_resources = Vec::new();
        for (i, text) in sources.schemas.iter().enumerate() {
            let file = format!("schema #{}", i + 1);
            let value = parse_json(&file, text)?;
            let raw: RawSchema = from_value(&file, value.clone())?;
            let file = format!("schema {}", raw.id);
            if raw.schemas != [SCHEMA_SCHEMA] {
                return Err(invalid(
                    &file,
                    format!("`schemas` must be [\"{SCHEMA_SCHEMA}\"]"),
                ));
            }
            if raw.meta.resource_type != "Schema" {
                return Err(invalid(&file, "meta.resourceType must be \"Schema\""));
            }
            if raw.meta.location != format!("/Schemas/{}", raw.id) {
                return Err(invalid(&file, "meta.location must be \"/Schemas/<id>\""));
            }
            if schemas.iter().any(|s| s.id.eq_ignore_ascii_case(&raw.id)) {
                return Err(invalid(&file, "schema defined twice"));
            }
            let attributes = convert_attrs(&file, "", raw.attributes)?;
            schemas.push(SchemaDef {
                id: raw.id,
                name: raw.name,
                description: raw.description,
                attributes,
            });
            schema_resources.push(value);
        }

        let file = "common attributes";
        let raw: RawCommon = from_value(file, parse_json(file, sources.common_attributes)?)?;
        let common = convert_attrs(file, "", raw.attributes)?;

        for kind in ResourceKind::ALL {
            let file = format!("resource type {kind}");
            let core = schemas
                .iter()
                .find(|s| s.id == kind.schema_urn())
                .ok_or_else(|| invalid(&file, format!("schema {} missing", kind.schema_urn())))?;
            if let Some(clash) = core
                .attributes
                .iter()
                .find(|a| common.iter().any(|c| c.name.eq_ignore_ascii_case(&a.name)))
            {
                return Err(invalid(
                    &file,
                    format!("`{}` is both a common and a core attribute", clash.name),
                ));
            }
            for ext in kind.extension_urns() {
                if !schemas.iter().any(|s| s.id == *ext) {
                    return Err(invalid(&file, format!("extension schema {ext} missing")));
                }
            }
        }

        let file = "resource types";
        let resource_types = match parse_json(file, sources.resource_types)? {
            Value::Array(items) => items,
            _ => return Err(invalid(file, "must be a JSON array")),
        };
        if resource_types.len() != ResourceKind::ALL.len() {
            return Err(invalid(
                file,
                "must list exactly the User and Group resource types",
            ));
        }
        for kind in ResourceKind::ALL {
            check_resource_type(file, kind, &resource_types)?;
        }

        let file = "service provider config";
        let service_provider_config = parse_json(file, sources.service_provider_config)?;
        let spc_ok = service_provider_config
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|u| u == SERVICE_PROVIDER_CONFIG_SCHEMA));
        if !spc_ok {
            return Err(invalid(
                file,
                format!("must be an object whose `schemas` lists {SERVICE_PROVIDER_CONFIG_SCHEMA}"),
            ));
        }

        Ok(SchemaRegistry {
            schemas,
            schema_resources,
            common,
            resource_types,
            service_provider_config,
        })
    }

    /// Every schema, in `/Schemas` order.
    pub fn schemas(&self) -> &[SchemaDef] {
        &self.schemas
    }

    /// The schema whose URN is `urn` (case-insensitive).
    pub fn schema(&self, urn: &str) -> Option<&SchemaDef> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The RFC 7643 §3.1 common attributes (`id`, `externalId`, `meta`).
    pub fn common_attributes(&self) -> &[AttrInfo] {
        &self.common
    }

    /// The attribute resolver for one resource type.
    pub fn resolver(&self, kind: ResourceKind) -> ResourceResolver<'_> {
        ResourceResolver {
            registry: self,
            kind,
        }
    }

    /// The schema resources for `GET /Schemas` (a JSON array, to wrap in a ListResponse).
    /// Each `meta.location` is relative (`/Schemas/<id>`): prefix the base URL, e.g. with
    /// [`prefix_meta_locations`].
    pub fn schemas_json(&self) -> Value {
        Value::Array(self.schema_resources.clone())
    }

    /// The schema resource for `GET /Schemas/{id}` (URN compared case-insensitively).
    pub fn schema_by_id(&self, id: &str) -> Option<Value> {
        self.schemas
            .iter()
            .zip(&self.schema_resources)
            .find(|(def, _)| def.id.eq_ignore_ascii_case(id))
            .map(|(_, resource)| resource.clone())
    }

    /// The resource types for `GET /ResourceTypes` (a JSON array; relative `meta.location`).
    pub fn resource_types_json(&self) -> Value {
        Value::Array(self.resource_types.clone())
    }

    /// The resource type for `GET /ResourceTypes/{id}` (`User`, `Group`; case-insensitive).
    pub fn resource_type_by_id(&self, id: &str) -> Option<Value> {
        self.resource_types
            .iter()
            .find(|rt| {
                rt.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case(id))
            })
            .cloned()
    }

    /// The document for `GET /ServiceProviderConfig` (relative `meta.location`).
    pub fn service_provider_config_json(&self) -> Value {
        self.service_provider_config.clone()
    }

    /// Turns a POST or PUT body into the document to store. See [`WriteMode`].
    ///
    /// * `schemas` must be present and an array of strings (else `InvalidSyntax`), contain
    ///   the resource's core URN and only URNs of the resource type (else `InvalidValue`).
    ///   The output keeps it deduplicated, in canonical spelling, and adds an extension URN
    ///   whose attributes are present but which the client did not list.
    /// * Every key is matched case-insensitively and rewritten to its canonical spelling;
    ///   an unknown attribute or sub-attribute is [`SchemaError::UnknownAttribute`].
    ///   Extension attributes are accepted nested (`{"urn:…:enterprise:2.0:User":
    ///   {"department": "x"}}`) or flat (`"urn:…:enterprise:2.0:User:department": "x"`,
    ///   also `…:User:manager.value`), core attributes also URN-qualified
    ///   (`"urn:…:core:2.0:User:userName"`). The same attribute twice is `InvalidSyntax`.
    /// * Values are type-checked (`InvalidValue`): string / reference / binary (base64)
    ///   need a JSON string, boolean a JSON boolean or the string `true`/`false` in any
    ///   case (converted: Entra ID sends `"False"`), integer an integral number, decimal a
    ///   number, dateTime an RFC 3339 string, complex an object. A multi-valued attribute
    ///   takes an array, or a single value which is wrapped. A single-valued complex
    ///   attribute with a `value` sub-attribute also takes a bare scalar, stored as
    ///   `{"value": scalar}` (Entra sends `"manager": "<id>"`).
    /// * `readOnly` attributes and sub-attributes (`id`, `meta`, `groups`,
    ///   `manager.displayName`) are dropped silently (RFC 7643 §7); `null`, empty arrays
    ///   and complex values left empty are unassigned (RFC 7643 §2.5) and dropped.
    ///   `password` (writeOnly) is kept: the caller hashes or strips it.
    /// * `required` attributes must be present (`userName`, Group `displayName`; a blank
    ///   string counts as missing): `InvalidValue` "missing required attribute `userName`".
    /// * [`WriteMode::Replace`]: `readOnly` values of `existing` are kept (except `id` and
    ///   `meta`; a readOnly sub-attribute of a single-valued complex attribute only while its
    ///   `value` is unchanged); an `immutable` attribute that `existing` has may not change
    ///   ([`SchemaError::Mutability`]) and is kept if omitted. For multi-valued complex
    ///   attributes (Group `members`) values may be added and removed; elements are matched
    ///   by `value` and an immutable sub-attribute of a matched element may not change.
    ///
    /// Nothing the client did not send is added: no defaults. The output has no `id` or
    /// `meta`.
    pub fn normalize(
        &self,
        kind: ResourceKind,
        input: &Value,
        mode: WriteMode<'_>,
    ) -> Result<Value, SchemaError> {
        self.resolver(kind).normalize(input, mode)
    }

    /// Applies RFC 7644 §3.4.2.5 `attributes` / `excludedAttributes` and the RFC 7643 §7
    /// `returned` characteristic to a stored document (with `id` and `meta` added back).
    ///
    /// * `schemas` and `returned: always` attributes (`id`) are always kept, whatever the
    ///   lists say; `returned: never` ones (`password`) never appear.
    /// * With `attributes` empty, every `default` attribute is returned and `request` ones
    ///   are not; otherwise only the listed ones (plus the always ones).
    /// * Entries are attribute paths, matched case-insensitively: `userName`,
    ///   `name.givenName`, `emails.value`, URN-qualified
    ///   `urn:…:enterprise:2.0:User:manager.value`, or a bare schema URN meaning all of that
    ///   schema's attributes. An entry may itself hold comma-separated paths. Unknown paths
    ///   select nothing (so `attributes=nope` returns only `schemas` and `id`) and exclude
    ///   nothing.
    /// * `excludedAttributes` entries are then removed (never an always attribute).
    /// * Keys of `doc` the schemas do not define are dropped; names come out canonical.
    ///   Complex values and array elements left empty are omitted, as is an extension
    ///   object left empty. A non-object `doc` gives `{}`.
    pub fn project(
        &self,
        kind: ResourceKind,
        doc: Value,
        attributes: &[String],
        excluded: &[String],
    ) -> Value {
        self.resolver(kind).project(doc, attributes, excluded)
    }

    /// Whether [`Self::project`] with these lists leaves a `kind`'s core attribute `name`
    /// out whole (unknown to the schema, `returned: never`, not among `attributes`, or
    /// among `excludedAttributes`), so that a reader may skip it.
    pub fn leaves_out(
        &self,
        kind: ResourceKind,
        name: &str,
        attributes: &[String],
        excluded: &[String],
    ) -> bool {
        self.resolver(kind).leaves_out(name, attributes, excluded)
    }
}

/// Prefixes `base_url` (e.g. `https://idp.example.com/scim/v2`) to every relative
/// `meta.location` (one starting with `/`) in `value`: in `value` itself, in the elements of
/// an array, and in the elements of a ListResponse's `Resources`. For the discovery
/// documents, whose files carry relative locations.
pub fn prefix_meta_locations(value: &mut Value, base_url: &str) {
    let base = base_url.trim_end_matches('/');
    match value {
        Value::Array(items) => {
            for item in items {
                prefix_meta_locations(item, base);
            }
        }
        Value::Object(obj) => {
            if let Some(Value::Object(meta)) = obj.get_mut("meta") {
                if let Some(Value::String(loc)) = meta.get_mut("location") {
                    if loc.starts_with('/') {
                        *loc = format!("{base}{loc}");
                    }
                }
            }
            if let Some(resources @ Value::Array(_)) = obj.get_mut("Resources") {
                prefix_meta_locations(resources, base);
            }
        }
        _ => {}
    }
}
