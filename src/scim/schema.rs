//! SCIM 2.0 schema registry: RFC 7643 attribute definitions and what the server does with them.
//!
//! What lives here, and why in one place:
//!
//! * **The registry** ([`SchemaRegistry`]). The schema resources served at `/Schemas`
//!   (core User, enterprise User extension, core Group), the `/ResourceTypes` list and the
//!   `/ServiceProviderConfig` document are JSON files in `schemas/`, compiled in with
//!   `include_str!` and parsed once ([`SchemaRegistry::builtin`]). Keeping them as JSON means
//!   the discovery endpoints serve exactly what the RFC transcription says, and the
//!   in-memory [`AttrInfo`] tree used everywhere else is derived from the same text, so the
//!   two cannot drift apart. `schemas/common_attributes.json` holds the RFC 7643 §3.1 common
//!   attributes (`id`, `externalId`, `meta`): they belong to no published schema but paths
//!   such as `meta.lastModified` must still resolve.
//! * **Path resolution** ([`ResourceResolver`], the [`AttributeResolver`] implementation the
//!   filter and PATCH modules consume), including the SQL column map.
//! * **Write normalisation** ([`SchemaRegistry::normalize`]): a POST/PUT body becomes a
//!   stored document with canonical attribute names, checked types and RFC 7643 §7
//!   mutability applied.
//! * **Read projection** ([`SchemaRegistry::project`]): RFC 7644 §3.4.2.5
//!   `attributes` / `excludedAttributes` and the `returned` characteristic.
//! * **Errors** ([`SchemaError`]) carrying the RFC 7644 §3.12 `scimType` to answer with.
//!
//! All of these need the same attribute definitions and the same case-insensitive,
//! URN-aware name matching, which is why they share this module.
//!
//! Stored documents (see `attr.rs`) use canonical names, core attributes at the top level
//! and extension attributes nested under their schema URN. [`SchemaRegistry::normalize`]
//! produces that shape without `id` and `meta`, which the server keeps in columns and adds
//! back before calling [`SchemaRegistry::project`].
//!
//! Nothing in this module panics on any request input; the only panic is
//! [`SchemaRegistry::builtin`] on a malformed compiled-in JSON file, which the tests rule out.

#![warn(missing_docs)]

use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::attr::{
    AttrInfo, AttrType, AttributeResolver, Mutability, ResolvedPath, Returned, Uniqueness,
};

/// Core User schema URN (RFC 7643 §4.1).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN (RFC 7643 §4.2).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension schema URN (RFC 7643 §4.3).
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The `schemas` value of a schema resource served at `/Schemas` (RFC 7643 §7).
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// The `schemas` value of a resource type served at `/ResourceTypes` (RFC 7643 §6).
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The `schemas` value of the `/ServiceProviderConfig` document (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

const USER_JSON: &str = include_str!("../../schemas/user.json");
const ENTERPRISE_USER_JSON: &str = include_str!("../../schemas/enterprise_user.json");
const GROUP_JSON: &str = include_str!("../../schemas/group.json");
const COMMON_ATTRIBUTES_JSON: &str = include_str!("../../schemas/common_attributes.json");
const RESOURCE_TYPES_JSON: &str = include_str!("../../schemas/resource_types.json");
const SERVICE_PROVIDER_CONFIG_JSON: &str =
    include_str!("../../schemas/service_provider_config.json");

// ---------------------------------------------------------------------------------------
// Resource kinds
// ---------------------------------------------------------------------------------------

/// The resource types this server exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `/Users`, core schema [`USER_SCHEMA`], extension [`ENTERPRISE_USER_SCHEMA`].
    User,
    /// `/Groups`, core schema [`GROUP_SCHEMA`], no extension.
    Group,
}

impl ResourceKind {
    /// Every kind, in the order `/ResourceTypes` lists them.
    pub const ALL: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

    /// The core schema URN of the resource type.
    pub fn schema_urn(self) -> &'static str {
        match self {
            ResourceKind::User => USER_SCHEMA,
            ResourceKind::Group => GROUP_SCHEMA,
        }
    }

    /// The schema extension URNs the resource type accepts (may be empty).
    pub fn extension_urns(self) -> &'static [&'static str] {
        match self {
            ResourceKind::User => &[ENTERPRISE_USER_SCHEMA],
            ResourceKind::Group => &[],
        }
    }

    /// The endpoint path relative to the SCIM base URL: `/Users` or `/Groups`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "/Users",
            ResourceKind::Group => "/Groups",
        }
    }

    /// The resource type name (`meta.resourceType`, `/ResourceTypes/{name}`): `User`, `Group`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The kind whose [`name`](Self::name) is `name`, case-insensitively.
    pub fn from_name(name: &str) -> Option<ResourceKind> {
        ResourceKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// A request that does not fit the schema. Every variant is an HTTP 400; [`scim_type`]
/// gives the RFC 7644 §3.12 `scimType` to put in the error response, and `Display` the
/// `detail` text (safe to show to the client: it names attributes, never values of
/// `password`).
///
/// [`scim_type`]: SchemaError::scim_type
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The body's structure is wrong: not a JSON object; `schemas` missing, not an array
    /// or holding a non-string; the same attribute given twice (e.g. `userName` and
    /// `USERNAME`). `scimType` `invalidSyntax`.
    #[error("{0}")]
    InvalidSyntax(String),
    /// The body names an attribute (or sub-attribute) that the resource type's schemas do
    /// not define; the payload is the path as written by the client. `scimType`
    /// `invalidSyntax`: the body does not conform to the request schema.
    #[error("unknown attribute `{0}`")]
    UnknownAttribute(String),
    /// A value is not of the attribute's type, a required attribute is missing or empty,
    /// or `schemas` lacks the core schema / names a schema the resource type does not
    /// have. `scimType` `invalidValue`.
    #[error("{0}")]
    InvalidValue(String),
    /// A PUT tried to change an `immutable` attribute that already has a value.
    /// `scimType` `mutability`.
    #[error("{0}")]
    Mutability(String),
    /// An attribute path (as given to [`ResourceResolver::require_path`]) names no
    /// attribute. `scimType` `invalidPath`.
    #[error("{0}")]
    InvalidPath(String),
}

impl SchemaError {
    /// The RFC 7644 §3.12 `scimType` for this error.
    pub fn scim_type(&self) -> &'static str {
        match self {
            SchemaError::InvalidSyntax(_) | SchemaError::UnknownAttribute(_) => "invalidSyntax",
            SchemaError::InvalidValue(_) => "invalidValue",
            SchemaError::Mutability(_) => "mutability",
            SchemaError::InvalidPath(_) => "invalidPath",
        }
    }

    /// The HTTP status to answer with: always 400 (RFC 7644 §3.12 gives every one of
    /// these `scimType`s status 400).
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// A schema definition file that cannot be used. Only [`SchemaRegistry::from_sources`]
/// returns it; the compiled-in files never produce it (the tests load them).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The text is not JSON, or not of the expected shape (a characteristic missing, a
    /// field of the wrong JSON type, an unexpected field).
    #[error("{file}: {source}")]
    Json {
        /// Which source: `schema #1`, `common attributes`, `resource types`, …
        file: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The JSON is well-formed but breaks a rule of RFC 7643 §7 or of this server.
    #[error("{file}: {message}")]
    Invalid {
        /// Which source (see [`LoadError::Json`]).
        file: String,
        /// What is wrong.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

/// The JSON texts a registry is built from (see `schemas/README.md`).
#[derive(Debug, Clone, Copy)]
pub struct SchemaSources<'a> {
    /// Schema resources (RFC 7643 §7 representation), served at `/Schemas` in this order.
    pub schemas: &'a [&'a str],
    /// `{"description": …, "attributes": [...]}` with the RFC 7643 §3.1 common attributes.
    pub common_attributes: &'a str,
    /// The JSON array served at `/ResourceTypes`.
    pub resource_types: &'a str,
    /// The JSON object served at `/ServiceProviderConfig`.
    pub service_provider_config: &'a str,
}

impl SchemaSources<'static> {
    /// The files in `schemas/`, compiled in.
    pub const BUILTIN: SchemaSources<'static> = SchemaSources {
        schemas: &[USER_JSON, ENTERPRISE_USER_JSON, GROUP_JSON],
        common_attributes: COMMON_ATTRIBUTES_JSON,
        resource_types: RESOURCE_TYPES_JSON,
        service_provider_config: SERVICE_PROVIDER_CONFIG_JSON,
    };
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAttr {
    name: String,
    #[serde(rename = "type")]
    attr_type: String,
    multi_valued: bool,
    description: String,
    required: bool,
    case_exact: bool,
    canonical_values: Vec<String>,
    reference_types: Vec<String>,
    mutability: String,
    returned: String,
    uniqueness: String,
    #[serde(default)]
    sub_attributes: Option<Vec<RawAttr>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMeta {
    resource_type: String,
    location: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    schemas: Vec<String>,
    id: String,
    name: String,
    description: String,
    attributes: Vec<RawAttr>,
    meta: RawMeta,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommon {
    #[allow(dead_code)]
    description: String,
    attributes: Vec<RawAttr>,
}

fn invalid(file: &str, message: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        file: file.to_string(),
        message: message.into(),
    }
}

fn parse_json(file: &str, text: &str) -> Result<Value, LoadError> {
    serde_json::from_str(text).map_err(|source| LoadError::Json {
        file: file.to_string(),
        source,
    })
}

fn from_value<T: for<'de> Deserialize<'de>>(file: &str, value: Value) -> Result<T, LoadError> {
    serde_json::from_value(value).map_err(|source| LoadError::Json {
        file: file.to_string(),
        source,
    })
}

/// RFC 7643 §2.1 ATTRNAME (`ALPHA *(nameChar)`), plus the reserved `$ref`.
fn valid_attr_name(name: &str) -> bool {
    if name == "$ref" {
        return true;
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn convert_attrs(file: &str, parent: &str, raws: Vec<RawAttr>) -> Result<Vec<AttrInfo>, LoadError> {
    let mut out: Vec<AttrInfo> = Vec::with_capacity(raws.len());
    for raw in raws {
        let info = convert_attr(file, parent, raw)?;
        if out.iter().any(|a| a.name.eq_ignore_ascii_case(&info.name)) {
            return Err(invalid(
                file,
                format!("attribute `{parent}{}` is defined twice", info.name),
            ));
        }
        out.push(info);
    }
    Ok(out)
}

fn convert_attr(file: &str, parent: &str, raw: RawAttr) -> Result<AttrInfo, LoadError> {
    let path = format!("{parent}{}", raw.name);
    let bad = |what: &str| invalid(file, format!("attribute `{path}`: {what}"));
    if !valid_attr_name(&raw.name) {
        return Err(bad("not a valid attribute name"));
    }
    let attr_type = match raw.attr_type.as_str() {
        "string" => AttrType::String,
        "boolean" => AttrType::Boolean,
        "decimal" => AttrType::Decimal,
        "integer" => AttrType::Integer,
        "dateTime" => AttrType::DateTime,
        "binary" => AttrType::Binary,
        "reference" => AttrType::Reference,
        "complex" => AttrType::Complex,
        other => return Err(bad(&format!("unknown type `{other}`"))),
    };
    let mutability = match raw.mutability.as_str() {
        "readOnly" => Mutability::ReadOnly,
        "readWrite" => Mutability::ReadWrite,
        "immutable" => Mutability::Immutable,
        "writeOnly" => Mutability::WriteOnly,
        other => return Err(bad(&format!("unknown mutability `{other}`"))),
    };
    let returned = match raw.returned.as_str() {
        "always" => Returned::Always,
        "never" => Returned::Never,
        "default" => Returned::Default,
        "request" => Returned::Request,
        other => return Err(bad(&format!("unknown returned `{other}`"))),
    };
    let uniqueness = match raw.uniqueness.as_str() {
        "none" => Uniqueness::None,
        "server" => Uniqueness::Server,
        "global" => Uniqueness::Global,
        other => return Err(bad(&format!("unknown uniqueness `{other}`"))),
    };
    if (attr_type == AttrType::Reference) == raw.reference_types.is_empty() {
        return Err(bad(
            "referenceTypes must be non-empty exactly for attributes of type reference",
        ));
    }
    let sub_attributes = match (attr_type, raw.sub_attributes) {
        (AttrType::Complex, Some(subs)) if !subs.is_empty() => {
            if !parent.is_empty() {
                return Err(bad("a sub-attribute cannot be complex (RFC 7643 §2.3.8)"));
            }
            let subs = convert_attrs(file, &format!("{path}."), subs)?;
            if subs.iter().any(|s| s.attr_type == AttrType::Complex) {
                return Err(bad("a sub-attribute cannot be complex (RFC 7643 §2.3.8)"));
            }
            subs
        }
        (AttrType::Complex, _) => return Err(bad("a complex attribute needs subAttributes")),
        (_, None) => Vec::new(),
        (_, Some(_)) => return Err(bad("only a complex attribute may have subAttributes")),
    };
    Ok(AttrInfo {
        name: raw.name,
        attr_type,
        multi_valued: raw.multi_valued,
        case_exact: raw.case_exact,
        required: raw.required,
        mutability,
        returned,
        uniqueness,
        canonical_values: raw.canonical_values,
        reference_types: raw.reference_types,
        description: raw.description,
        sub_attributes,
    })
}

// ---------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------

/// One schema (RFC 7643 §7) as the server uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDef {
    /// The schema URN, e.g. [`USER_SCHEMA`].
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

/// Whether [`SchemaRegistry::normalize`] handles a POST (create) or a PUT (replace).
#[derive(Debug, Clone, Copy)]
pub enum WriteMode<'a> {
    /// POST: a new resource.
    Create,
    /// PUT: `existing` is the stored document being replaced (canonical names; `id` and
    /// `meta` may be present or not, they are never copied). Used to keep `readOnly`
    /// values and to enforce `immutable` ones. A non-object is treated as `{}`.
    Replace {
        /// The stored document before the PUT.
        existing: &'a Value,
    },
}

/// Every schema, resource type and the service provider configuration the server knows.
/// Build with [`SchemaRegistry::builtin`] (the compiled-in `schemas/` files) or
/// [`SchemaRegistry::from_sources`].
#[derive(Debug)]
pub struct SchemaRegistry {
    schemas: Vec<SchemaDef>,
    schema_resources: Vec<Value>,
    common: Vec<AttrInfo>,
    resource_types: Vec<Value>,
    service_provider_config: Value,
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
        doc: &Value,
        attributes: &[String],
        excluded: &[String],
    ) -> Value {
        self.resolver(kind).project(doc, attributes, excluded)
    }
}

fn check_resource_type(file: &str, kind: ResourceKind, items: &[Value]) -> Result<(), LoadError> {
    let rt = items
        .iter()
        .find(|rt| rt.get("id").and_then(Value::as_str) == Some(kind.name()))
        .ok_or_else(|| invalid(file, format!("resource type {kind} missing")))?;
    let field = |name: &str| rt.get(name).and_then(Value::as_str);
    if field("name") != Some(kind.name())
        || field("endpoint") != Some(kind.endpoint())
        || field("schema") != Some(kind.schema_urn())
    {
        return Err(invalid(
            file,
            format!("resource type {kind}: name, endpoint or schema does not match"),
        ));
    }
    let has_schemas = rt
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u == RESOURCE_TYPE_SCHEMA));
    if !has_schemas {
        return Err(invalid(
            file,
            format!("resource type {kind}: `schemas` must list {RESOURCE_TYPE_SCHEMA}"),
        ));
    }
    let extensions: Vec<&str> = match rt.get("schemaExtensions") {
        None => Vec::new(),
        Some(Value::Array(exts)) => exts
            .iter()
            .map(|e| e.get("schema").and_then(Value::as_str).unwrap_or(""))
            .collect(),
        Some(_) => return Err(invalid(file, "schemaExtensions must be an array")),
    };
    if extensions != kind.extension_urns() {
        return Err(invalid(
            file,
            format!("resource type {kind}: schemaExtensions do not match"),
        ));
    }
    Ok(())
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

// ---------------------------------------------------------------------------------------
// Resolver
// ---------------------------------------------------------------------------------------

/// A registry bound to one resource type: resolves attribute paths for the filter and
/// PATCH modules ([`AttributeResolver`]) and does the per-type work of
/// [`SchemaRegistry::normalize`] and [`SchemaRegistry::project`].
#[derive(Debug, Clone, Copy)]
pub struct ResourceResolver<'a> {
    registry: &'a SchemaRegistry,
    kind: ResourceKind,
}

/// Where a name lives: `None` = core schema or common attribute, `Some(urn)` = extension.
type Scope = Option<&'static str>;

fn label(scope: Scope, name: &str) -> String {
    match scope {
        None => name.to_string(),
        Some(urn) => format!("{urn}:{name}"),
    }
}

/// The value under `key` in `obj`, matching the key case-insensitively (exact match first).
fn get_ci<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

impl<'a> ResourceResolver<'a> {
    /// The resolver of `registry` for `kind` (same as [`SchemaRegistry::resolver`]).
    pub fn new(registry: &'a SchemaRegistry, kind: ResourceKind) -> Self {
        ResourceResolver { registry, kind }
    }

    /// The resource type this resolver is bound to.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// The registry this resolver reads.
    pub fn registry(&self) -> &'a SchemaRegistry {
        self.registry
    }

    /// Resolves a whole attribute path as written in a filter, PATCH `path`, or
    /// `attributes` parameter: `userName`, `name.givenName`,
    /// `urn:ietf:params:scim:schemas:core:2.0:User:emails.value`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    /// Case-insensitive; surrounding whitespace ignored; no value filters (`emails[…]`).
    pub fn resolve_path(&self, path: &str) -> Option<ResolvedPath> {
        self.resolve(None, path.trim(), None)
    }

    /// [`resolve_path`](Self::resolve_path), with an unknown path as
    /// [`SchemaError::InvalidPath`].
    pub fn require_path(&self, path: &str) -> Result<ResolvedPath, SchemaError> {
        self.resolve_path(path).ok_or_else(|| {
            SchemaError::InvalidPath(format!(
                "`{path}` is not an attribute of resource type {}",
                self.kind
            ))
        })
    }

    /// The canonical spelling of `urn` if it is the core or an extension schema of this
    /// resource type (case-insensitive; a trailing `:` is ignored).
    pub fn canonical_urn(&self, urn: &str) -> Option<&'static str> {
        self.classify_urn(urn)
            .map(|scope| scope.unwrap_or(self.kind.schema_urn()))
    }

    /// Every top-level attribute of the resource type with where it lives: the common
    /// attributes and the core schema's (scope `None`), then each extension's.
    pub fn attributes(&self) -> Vec<(Option<&'static str>, &'a AttrInfo)> {
        let mut out: Vec<(Scope, &'a AttrInfo)> =
            self.registry.common.iter().map(|a| (None, a)).collect();
        out.extend(self.schema_attributes());
        out
    }

    /// The core schema's and extensions' top-level attributes (no common attributes).
    fn schema_attributes(&self) -> Vec<(Scope, &'a AttrInfo)> {
        let mut out: Vec<(Scope, &'a AttrInfo)> = Vec::new();
        if let Some(core) = self.registry.schema(self.kind.schema_urn()) {
            out.extend(core.attributes.iter().map(|a| (None, a)));
        }
        for ext in self.kind.extension_urns() {
            if let Some(schema) = self.registry.schema(ext) {
                out.extend(schema.attributes.iter().map(|a| (Some(*ext), a)));
            }
        }
        out
    }

    /// `Some(None)` for the core URN, `Some(Some(ext))` for an extension URN, `None` else.
    fn classify_urn(&self, urn: &str) -> Option<Scope> {
        let urn = urn.trim();
        let urn = urn.strip_suffix(':').unwrap_or(urn);
        if urn.eq_ignore_ascii_case(self.kind.schema_urn()) {
            return Some(None);
        }
        self.kind
            .extension_urns()
            .iter()
            .find(|e| e.eq_ignore_ascii_case(urn))
            .map(|e| Some(*e))
    }

    /// If `s` starts with one of this resource type's schema URNs (case-insensitive)
    /// followed by the end or `:`, the scope and what follows the `:` (`""` for the URN
    /// alone).
    fn strip_urn<'s>(&self, s: &'s str) -> Option<(Scope, &'s str)> {
        let candidates = std::iter::once((self.kind.schema_urn(), None))
            .chain(self.kind.extension_urns().iter().map(|e| (*e, Some(*e))));
        let mut best: Option<(usize, Scope, &'s str)> = None;
        for (urn, scope) in candidates {
            let Some(head) = s.get(..urn.len()) else {
                continue;
            };
            if !head.eq_ignore_ascii_case(urn) {
                continue;
            }
            let rest = s.get(urn.len()..).unwrap_or("");
            let rest = if rest.is_empty() {
                rest
            } else if let Some(r) = rest.strip_prefix(':') {
                r
            } else {
                continue;
            };
            if best.is_none_or(|(len, _, _)| urn.len() > len) {
                best = Some((urn.len(), scope, rest));
            }
        }
        best.map(|(_, scope, rest)| (scope, rest))
    }

    /// A top-level attribute of the core schema or a common attribute.
    fn core_attr(&self, name: &str) -> Option<&'a AttrInfo> {
        self.registry
            .common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .or_else(|| {
                self.registry
                    .schema(self.kind.schema_urn())
                    .and_then(|s| s.attribute(name))
            })
    }

    /// A top-level attribute of extension `urn` (which must belong to this kind).
    fn ext_attr(&self, urn: &str, name: &str) -> Option<&'a AttrInfo> {
        if !self.kind.extension_urns().contains(&urn) {
            return None;
        }
        self.registry.schema(urn).and_then(|s| s.attribute(name))
    }

    fn scoped_attr(&self, scope: Scope, name: &str) -> Option<&'a AttrInfo> {
        match scope {
            None => self.core_attr(name),
            Some(urn) => self.ext_attr(urn, name),
        }
    }

    fn resolve_parts(&self, scope: Scope, attr: &str, sub: Option<&str>) -> Option<ResolvedPath> {
        let (attr, sub) = match sub {
            Some(s) => (attr, Some(s)),
            None => match attr.split_once('.') {
                Some((a, s)) => (a, Some(s)),
                None => (attr, None),
            },
        };
        if attr.is_empty() || sub.is_some_and(|s| s.is_empty() || s.contains('.')) {
            return None;
        }
        let info = self.scoped_attr(scope, attr)?;
        let sub = match sub {
            None => None,
            Some(s) => Some(info.sub(s)?.clone()),
        };
        Some(ResolvedPath {
            extension: scope.map(str::to_string),
            attr: info.clone(),
            sub,
        })
    }

    // -----------------------------------------------------------------------------------
    // normalize
    // -----------------------------------------------------------------------------------

    fn normalize(&self, input: &Value, mode: WriteMode<'_>) -> Result<Value, SchemaError> {
        let obj = input.as_object().ok_or_else(|| {
            SchemaError::InvalidSyntax("the request body must be a JSON object".into())
        })?;
        let mut schemas = self.read_schemas(obj)?;
        let mut out = Map::new();
        for (key, value) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            match self.strip_urn(key) {
                Some((None, "")) => return Err(SchemaError::UnknownAttribute(key.clone())),
                Some((None, rest)) => self.put(&mut out, None, rest, value, true)?,
                Some((Some(ext), "")) => match value {
                    Value::Null => {}
                    Value::Object(inner) => {
                        for (k, v) in inner {
                            self.put(&mut out, Some(ext), k, v, false)?;
                        }
                    }
                    _ => {
                        return Err(SchemaError::InvalidValue(format!(
                            "`{ext}` must be a JSON object holding the extension's attributes"
                        )));
                    }
                },
                Some((Some(ext), rest)) => self.put(&mut out, Some(ext), rest, value, true)?,
                None => self.put(&mut out, None, key, value, false)?,
            }
        }
        if let WriteMode::Replace { existing } = mode {
            if let Some(old) = existing.as_object() {
                self.carry_over(&mut out, old)?;
            }
        }
        for ext in self.kind.extension_urns() {
            let empty = match out.get(*ext) {
                Some(Value::Object(m)) => m.is_empty(),
                _ => false,
            };
            if empty {
                out.remove(*ext);
            } else if out.contains_key(*ext) && !schemas.contains(ext) {
                schemas.push(ext);
            }
        }
        self.check_required(&out, &schemas)?;
        out.insert(
            "schemas".to_string(),
            Value::Array(schemas.into_iter().map(Value::from).collect()),
        );
        Ok(Value::Object(out))
    }

    fn read_schemas(&self, obj: &Map<String, Value>) -> Result<Vec<&'static str>, SchemaError> {
        let mut found = None;
        for (k, v) in obj {
            if k.eq_ignore_ascii_case("schemas") {
                if found.is_some() {
                    return Err(SchemaError::InvalidSyntax(
                        "attribute `schemas` is given more than once".into(),
                    ));
                }
                found = Some(v);
            }
        }
        let value = found.ok_or_else(|| {
            SchemaError::InvalidSyntax("missing required attribute `schemas`".into())
        })?;
        let not_strings =
            || SchemaError::InvalidSyntax("`schemas` must be an array of strings".into());
        let items = value.as_array().ok_or_else(not_strings)?;
        let mut out: Vec<&'static str> = Vec::new();
        for item in items {
            let urn = item.as_str().ok_or_else(not_strings)?;
            // A URN this resource type does not know is dropped, not refused: Microsoft's
            // documented Entra ID requests name
            // `http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group`.
            // Attributes under an unknown URN are still refused as unknown attributes.
            let Some(canonical) = self.canonical_urn(urn) else {
                continue;
            };
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        if !out.contains(&self.kind.schema_urn()) {
            return Err(SchemaError::InvalidValue(format!(
                "`schemas` must contain `{}`",
                self.kind.schema_urn()
            )));
        }
        Ok(out)
    }

    /// Checks and stores one key of the body. `name` is the attribute name within `scope`;
    /// with `allow_path` it may be `attr.sub` (flat URN-qualified keys).
    fn put(
        &self,
        out: &mut Map<String, Value>,
        scope: Scope,
        name: &str,
        value: &Value,
        allow_path: bool,
    ) -> Result<(), SchemaError> {
        let (attr_name, sub_name) = match name.split_once('.') {
            Some((a, s)) if allow_path => (a, Some(s)),
            _ => (name, None),
        };
        let unknown = || SchemaError::UnknownAttribute(label(scope, name));
        let info = self.scoped_attr(scope, attr_name).ok_or_else(unknown)?;
        let attr_label = label(scope, &info.name);
        let target = match scope {
            None => out,
            Some(ext) => ext_object(out, ext)?,
        };
        match sub_name {
            None => {
                if let Some(v) = check_attr(info, value, &attr_label)? {
                    insert_merge(target, &info.name, v, &attr_label)?;
                }
            }
            Some(sub) => {
                let sub_info = if info.multi_valued {
                    None
                } else {
                    info.sub(sub)
                };
                let sub_info = sub_info.ok_or_else(unknown)?;
                if info.mutability == Mutability::ReadOnly {
                    return Ok(());
                }
                let sub_label = format!("{attr_label}.{}", sub_info.name);
                if let Some(v) = check_attr(sub_info, value, &sub_label)? {
                    let mut m = Map::new();
                    m.insert(sub_info.name.clone(), v);
                    insert_merge(target, &info.name, Value::Object(m), &attr_label)?;
                }
            }
        }
        Ok(())
    }

    /// PUT: keeps readOnly values of `old`, enforces and keeps immutable ones.
    fn carry_over(
        &self,
        out: &mut Map<String, Value>,
        old_root: &Map<String, Value>,
    ) -> Result<(), SchemaError> {
        for (scope, info) in self.schema_attributes() {
            let old = match scope {
                None => get_ci(old_root, &info.name),
                Some(ext) => get_ci(old_root, ext)
                    .and_then(Value::as_object)
                    .and_then(|m| get_ci(m, &info.name)),
            };
            let Some(old) = old.filter(|v| !v.is_null()) else {
                continue;
            };
            let attr_label = label(scope, &info.name);
            let target = match scope {
                None => &mut *out,
                Some(ext) => ext_object(out, ext)?,
            };
            match info.mutability {
                Mutability::ReadOnly => {
                    target.insert(info.name.clone(), old.clone());
                }
                Mutability::Immutable => match target.get(&info.name) {
                    None => {
                        target.insert(info.name.clone(), old.clone());
                    }
                    Some(new) if !same_value(info, old, new) => {
                        return Err(SchemaError::Mutability(format!(
                            "attribute `{attr_label}` is immutable and cannot be changed"
                        )));
                    }
                    Some(_) => {}
                },
                Mutability::ReadWrite | Mutability::WriteOnly => {
                    if let Some(new) = target.get_mut(&info.name) {
                        carry_sub_attributes(info, old, new, &attr_label)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn check_required(
        &self,
        out: &Map<String, Value>,
        schemas: &[&'static str],
    ) -> Result<(), SchemaError> {
        for (scope, info) in self.schema_attributes() {
            let value = match scope {
                None => out.get(&info.name),
                Some(ext) => out
                    .get(ext)
                    .and_then(Value::as_object)
                    .and_then(|m| m.get(&info.name)),
            };
            let attr_label = label(scope, &info.name);
            let in_use = scope.is_none_or(|ext| schemas.contains(&ext));
            if info.required && in_use && info.mutability != Mutability::ReadOnly {
                check_present(value, &attr_label)?;
            }
            let Some(value) = value else { continue };
            let required_subs: Vec<&AttrInfo> = info
                .sub_attributes
                .iter()
                .filter(|s| s.required && s.mutability != Mutability::ReadOnly)
                .collect();
            if required_subs.is_empty() {
                continue;
            }
            let elements: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for element in elements {
                if let Value::Object(m) = element {
                    for sub in &required_subs {
                        check_present(m.get(&sub.name), &format!("{attr_label}.{}", sub.name))?;
                    }
                }
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // project
    // -----------------------------------------------------------------------------------

    fn project(&self, doc: &Value, attributes: &[String], excluded: &[String]) -> Value {
        let Some(obj) = doc.as_object() else {
            return Value::Object(Map::new());
        };
        let include = Selection::parse(self, attributes);
        let exclude = Selection::parse(self, excluded);
        let mut out = Map::new();
        for (key, value) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                out.insert("schemas".to_string(), value.clone());
                continue;
            }
            match self.strip_urn(key) {
                Some((Some(ext), "")) => {
                    let Some(inner) = value.as_object() else {
                        continue;
                    };
                    let mut m = Map::new();
                    for (k, v) in inner {
                        if let Some(info) = self.ext_attr(ext, k) {
                            if let Some(p) = project_attr(Some(ext), info, v, &include, &exclude) {
                                m.insert(info.name.clone(), p);
                            }
                        }
                    }
                    if !m.is_empty() {
                        out.insert(ext.to_string(), Value::Object(m));
                    }
                }
                // URN-qualified keys are not a stored-document form: dropped.
                Some(_) => {}
                None => {
                    if let Some(info) = self.core_attr(key) {
                        if let Some(p) = project_attr(None, info, value, &include, &exclude) {
                            out.insert(info.name.clone(), p);
                        }
                    }
                }
            }
        }
        Value::Object(out)
    }
}

impl AttributeResolver for ResourceResolver<'_> {
    /// `urn` is the core or an extension schema URN of this resource type (any case, a
    /// trailing `:` tolerated); `attr` the attribute name; `sub` the sub-attribute. Lenient
    /// forms are accepted too: `attr` may be `name.givenName` (with `sub` `None`) or fully
    /// qualified (`urn:…:enterprise:2.0:User:department`, with `urn` `None`). Common
    /// attributes (`id`, `externalId`, `meta`) resolve with no URN or the core URN.
    fn resolve(&self, urn: Option<&str>, attr: &str, sub: Option<&str>) -> Option<ResolvedPath> {
        match urn {
            Some(u) => {
                let scope = self.classify_urn(u)?;
                self.resolve_parts(scope, attr, sub)
            }
            None => match self.strip_urn(attr) {
                Some((scope, rest)) => self.resolve_parts(scope, rest, sub),
                None => self.resolve_parts(None, attr, sub),
            },
        }
    }

    /// `id` → `id`, `externalId` → `external_id`, `userName` (User) → `user_name`,
    /// `displayName` (User and Group) → `display_name`, `meta.created` → `created_at`,
    /// `meta.lastModified` → `last_modified`; anything else (including every extension
    /// attribute) → `None`.
    fn computed(&self, path: &ResolvedPath) -> Option<super::attr::Computed> {
        (self.kind == ResourceKind::User && path.extension.is_none() && path.attr.name == "groups")
            .then_some(super::attr::Computed::UserGroups)
    }

    fn column(&self, path: &ResolvedPath) -> Option<&'static str> {
        if path.extension.is_some() {
            return None;
        }
        let attr = path.attr.name.as_str();
        match &path.sub {
            None if attr.eq_ignore_ascii_case("id") => Some("id"),
            None if attr.eq_ignore_ascii_case("externalId") => Some("external_id"),
            None if attr.eq_ignore_ascii_case("userName") && self.kind == ResourceKind::User => {
                Some("user_name")
            }
            None if attr.eq_ignore_ascii_case("displayName") => Some("display_name"),
            Some(sub) if attr.eq_ignore_ascii_case("meta") => {
                if sub.name.eq_ignore_ascii_case("created") {
                    Some("created_at")
                } else if sub.name.eq_ignore_ascii_case("lastModified") {
                    Some("last_modified")
                } else if sub.name.eq_ignore_ascii_case("resourceType") {
                    Some("resource_type")
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// normalize helpers
// ---------------------------------------------------------------------------------------

/// The extension object under `ext` in `out`, created if absent.
fn ext_object<'m>(
    out: &'m mut Map<String, Value>,
    ext: &str,
) -> Result<&'m mut Map<String, Value>, SchemaError> {
    match out
        .entry(ext.to_string())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(m) => Ok(m),
        _ => Err(SchemaError::InvalidSyntax(format!(
            "attribute `{ext}` is given more than once"
        ))),
    }
}

fn duplicate(attr_label: &str) -> SchemaError {
    SchemaError::InvalidSyntax(format!("attribute `{attr_label}` is given more than once"))
}

/// Inserts `value` under `key`; two objects (a single-valued complex attribute given in
/// parts, e.g. nested and flat) are merged; anything else already there is a duplicate.
fn insert_merge(
    target: &mut Map<String, Value>,
    key: &str,
    value: Value,
    attr_label: &str,
) -> Result<(), SchemaError> {
    match target.get_mut(key) {
        None => {
            target.insert(key.to_string(), value);
            Ok(())
        }
        Some(Value::Object(existing)) => match value {
            Value::Object(new) => {
                for (k, v) in new {
                    if existing.contains_key(&k) {
                        return Err(duplicate(&format!("{attr_label}.{k}")));
                    }
                    existing.insert(k, v);
                }
                Ok(())
            }
            _ => Err(duplicate(attr_label)),
        },
        Some(_) => Err(duplicate(attr_label)),
    }
}

/// Checks one attribute value from a request. `Ok(None)`: unassigned or readOnly, drop it.
fn check_attr(
    info: &AttrInfo,
    value: &Value,
    attr_label: &str,
) -> Result<Option<Value>, SchemaError> {
    if value.is_null() || info.mutability == Mutability::ReadOnly {
        return Ok(None);
    }
    if info.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if item.is_array() {
                return Err(SchemaError::InvalidValue(format!(
                    "attribute `{attr_label}` takes an array of values, not of arrays"
                )));
            }
            if let Some(v) = check_single(info, item, attr_label)? {
                out.push(v);
            }
        }
        Ok((!out.is_empty()).then_some(Value::Array(out)))
    } else {
        if value.is_array() {
            return Err(SchemaError::InvalidValue(format!(
                "attribute `{attr_label}` is single-valued: an array was given"
            )));
        }
        check_single(info, value, attr_label)
    }
}

/// Checks one value (an element, for a multi-valued attribute).
fn check_single(
    info: &AttrInfo,
    value: &Value,
    attr_label: &str,
) -> Result<Option<Value>, SchemaError> {
    if value.is_null() {
        return Ok(None);
    }
    if info.attr_type != AttrType::Complex {
        return check_scalar(info, value, attr_label).map(Some);
    }
    let wrapped;
    let obj = match value {
        Value::Object(o) => o,
        Value::String(_) | Value::Number(_) | Value::Bool(_)
            if !info.multi_valued && info.sub("value").is_some() =>
        {
            let mut m = Map::new();
            m.insert("value".to_string(), value.clone());
            wrapped = m;
            &wrapped
        }
        _ => {
            return Err(SchemaError::InvalidValue(format!(
                "attribute `{attr_label}` is complex: a JSON object was expected"
            )));
        }
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let sub = info
            .sub(k)
            .ok_or_else(|| SchemaError::UnknownAttribute(format!("{attr_label}.{k}")))?;
        let sub_label = format!("{attr_label}.{}", sub.name);
        if let Some(checked) = check_attr(sub, v, &sub_label)? {
            if out.contains_key(&sub.name) {
                return Err(duplicate(&sub_label));
            }
            out.insert(sub.name.clone(), checked);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn check_scalar(info: &AttrInfo, value: &Value, attr_label: &str) -> Result<Value, SchemaError> {
    let wrong = |expected: &str| {
        SchemaError::InvalidValue(format!("attribute `{attr_label}` must be {expected}"))
    };
    match info.attr_type {
        AttrType::String | AttrType::Reference => match value {
            Value::String(_) => Ok(value.clone()),
            _ => Err(wrong("a string")),
        },
        AttrType::Binary => match value {
            Value::String(s) if is_base64(s) => Ok(value.clone()),
            _ => Err(wrong("a base64-encoded string")),
        },
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(wrong("a boolean")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            _ => Err(wrong("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(wrong("a number")),
        },
        AttrType::DateTime => match value {
            Value::String(s) if is_rfc3339(s) => Ok(value.clone()),
            _ => Err(wrong("an RFC 3339 date-time string")),
        },
        AttrType::Complex => Err(wrong("a JSON object")),
    }
}

fn check_present(value: Option<&Value>, attr_label: &str) -> Result<(), SchemaError> {
    match value {
        None => Err(SchemaError::InvalidValue(format!(
            "missing required attribute `{attr_label}`"
        ))),
        Some(Value::String(s)) if s.trim().is_empty() => Err(SchemaError::InvalidValue(format!(
            "required attribute `{attr_label}` must not be empty"
        ))),
        Some(_) => Ok(()),
    }
}

/// Equality as the attribute compares values: strings and references of a `caseExact:
/// false` attribute ignore case; anything else is JSON equality.
fn same_value(info: &AttrInfo, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y))
            if !info.case_exact
                && matches!(info.attr_type, AttrType::String | AttrType::Reference) =>
        {
            x.to_lowercase() == y.to_lowercase()
        }
        _ => a == b,
    }
}

/// PUT, for a readWrite complex attribute present in both documents: keep readOnly
/// sub-attributes and enforce immutable ones. Single-valued: only while `value` (if the
/// attribute has one) is unchanged. Multi-valued: elements matched by `value`.
fn carry_sub_attributes(
    info: &AttrInfo,
    old: &Value,
    new: &mut Value,
    attr_label: &str,
) -> Result<(), SchemaError> {
    if info.attr_type != AttrType::Complex {
        return Ok(());
    }
    let value_info = info.sub("value");
    let same_referent = |o: &Map<String, Value>, n: &Map<String, Value>| -> Option<bool> {
        let vi = value_info?;
        match (get_ci(o, &vi.name), n.get(&vi.name)) {
            (Some(a), Some(b)) => Some(same_value(vi, a, b)),
            _ => None,
        }
    };
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if !info.multi_valued => {
            let same = same_referent(o, n).unwrap_or(true);
            carry_element(info, o, n, same, attr_label, None)
        }
        (Value::Array(olds), Value::Array(news)) if info.multi_valued => {
            if value_info.is_none() {
                return Ok(());
            }
            for n in news.iter_mut() {
                let Value::Object(n) = n else { continue };
                let matched = olds.iter().find_map(|o| match o {
                    Value::Object(o) if same_referent(o, n) == Some(true) => Some(o),
                    _ => None,
                });
                if let Some(o) = matched {
                    let key = n.get("value").map(Value::to_string);
                    carry_element(info, o, n, true, attr_label, key.as_deref())?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn carry_element(
    info: &AttrInfo,
    old: &Map<String, Value>,
    new: &mut Map<String, Value>,
    same_referent: bool,
    attr_label: &str,
    element: Option<&str>,
) -> Result<(), SchemaError> {
    for sub in &info.sub_attributes {
        if info.multi_valued && sub.name == "value" {
            continue;
        }
        let Some(old_value) = get_ci(old, &sub.name).filter(|v| !v.is_null()) else {
            continue;
        };
        match sub.mutability {
            Mutability::ReadOnly if same_referent => {
                new.entry(sub.name.clone())
                    .or_insert_with(|| old_value.clone());
            }
            Mutability::Immutable => match new.get(&sub.name) {
                None => {
                    new.insert(sub.name.clone(), old_value.clone());
                }
                Some(new_value) if !same_value(sub, old_value, new_value) => {
                    let which = match element {
                        Some(v) => format!(" of the value {v}"),
                        None => String::new(),
                    };
                    return Err(SchemaError::Mutability(format!(
                        "sub-attribute `{attr_label}.{}`{which} is immutable and cannot be changed",
                        sub.name
                    )));
                }
                Some(_) => {}
            },
            _ => {}
        }
    }
    Ok(())
}

/// RFC 4648 §4 base64 (standard alphabet, optional `=` padding at the end only).
fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `T`/`Z` in either case,
/// with calendar ranges checked (leap years; second 60 allowed for leap seconds).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |start: usize, len: usize| -> Option<u32> {
        let digits = b.get(start..start + len)?;
        digits.iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return false;
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if at(i, b"Zz") {
        return i + 1 == b.len();
    }
    if at(i, b"+-") && at(i + 3, b":") && i + 6 == b.len() {
        return matches!((num(i + 1, 2), num(i + 4, 2)), (Some(h), Some(m)) if h <= 23 && m <= 59);
    }
    false
}

// ---------------------------------------------------------------------------------------
// project helpers
// ---------------------------------------------------------------------------------------

/// How an attribute is picked by an `attributes` / `excludedAttributes` list.
#[derive(Debug, PartialEq)]
enum Pick {
    /// The whole attribute.
    Whole,
    /// Only these sub-attributes (canonical names).
    Subs(Vec<String>),
}

/// A parsed `attributes` or `excludedAttributes` list.
#[derive(Debug, Default)]
struct Selection {
    /// The list named at least one path, known or not (`attributes=nope` still restricts
    /// the response to the always-returned attributes).
    given: bool,
    /// Bare schema URNs: every attribute of that scope.
    whole_schemas: Vec<Scope>,
    /// Resolved paths: (scope, attribute, sub-attribute), canonical names.
    paths: Vec<(Option<String>, String, Option<String>)>,
}

impl Selection {
    fn parse(resolver: &ResourceResolver<'_>, list: &[String]) -> Selection {
        let mut sel = Selection::default();
        for entry in list {
            for part in entry.split(',') {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                sel.given = true;
                if let Some((scope, "")) = resolver.strip_urn(part) {
                    sel.whole_schemas.push(scope);
                } else if let Some(path) = resolver.resolve_path(part) {
                    sel.paths
                        .push((path.extension, path.attr.name, path.sub.map(|s| s.name)));
                }
            }
        }
        sel
    }

    fn is_empty(&self) -> bool {
        !self.given
    }

    fn pick(&self, scope: Scope, name: &str) -> Option<Pick> {
        if self.whole_schemas.contains(&scope) {
            return Some(Pick::Whole);
        }
        let mut subs = Vec::new();
        let mut found = false;
        for (ext, attr, sub) in &self.paths {
            if ext.as_deref() != scope || attr != name {
                continue;
            }
            found = true;
            match sub {
                None => return Some(Pick::Whole),
                Some(s) => subs.push(s.clone()),
            }
        }
        found.then_some(Pick::Subs(subs))
    }
}

fn project_attr(
    scope: Scope,
    info: &AttrInfo,
    value: &Value,
    include: &Selection,
    exclude: &Selection,
) -> Option<Value> {
    if info.returned == Returned::Never || value.is_null() {
        return None;
    }
    let always = info.returned == Returned::Always;
    let explicit = !include.is_empty();
    let pick = if always {
        Pick::Whole
    } else if explicit {
        include.pick(scope, &info.name)?
    } else if info.returned == Returned::Request {
        return None;
    } else {
        Pick::Whole
    };
    let excluded_subs = match if always {
        None
    } else {
        exclude.pick(scope, &info.name)
    } {
        Some(Pick::Whole) => return None,
        Some(Pick::Subs(subs)) => subs,
        None => Vec::new(),
    };
    if info.attr_type != AttrType::Complex {
        return Some(value.clone());
    }
    let keep = |sub: &AttrInfo| -> bool {
        match sub.returned {
            Returned::Never => false,
            Returned::Always => true,
            returned => {
                !excluded_subs.contains(&sub.name)
                    && match &pick {
                        Pick::Subs(list) => list.contains(&sub.name),
                        Pick::Whole => returned != Returned::Request || explicit,
                    }
            }
        }
    };
    let filter = |element: &Value| -> Option<Value> {
        let obj = element.as_object()?;
        let mut m = Map::new();
        for (k, v) in obj {
            if let Some(sub) = info.sub(k) {
                if !v.is_null() && keep(sub) {
                    m.insert(sub.name.clone(), v.clone());
                }
            }
        }
        (!m.is_empty()).then_some(Value::Object(m))
    };
    match value {
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(filter).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(_) => filter(value),
        other => Some(other.clone()),
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
