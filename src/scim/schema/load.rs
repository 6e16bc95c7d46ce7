//! Loading the schema files: the JSON texts a registry is built from ([`SchemaSources`],
//! the compiled-in `schemas/` files), their serde shapes, and the RFC 7643 §7 checks that
//! turn them into [`AttrInfo`] trees. [`super::SchemaRegistry::from_sources`] drives it.

use serde::Deserialize;
use serde_json::Value;

use super::{LoadError, RESOURCE_TYPE_SCHEMA, ResourceKind};
use crate::scim::attr::{AttrInfo, AttrType, Mutability, Returned, Uniqueness};

pub(super) const USER_JSON: &str = include_str!("../../../schemas/user.json");
pub(super) const ENTERPRISE_USER_JSON: &str = include_str!("../../../schemas/enterprise_user.json");
pub(super) const GROUP_JSON: &str = include_str!("../../../schemas/group.json");
pub(super) const COMMON_ATTRIBUTES_JSON: &str =
    include_str!("../../../schemas/common_attributes.json");
pub(super) const RESOURCE_TYPES_JSON: &str = include_str!("../../../schemas/resource_types.json");
pub(super) const SERVICE_PROVIDER_CONFIG_JSON: &str =
    include_str!("../../../schemas/service_provider_config.json");

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
pub(super) struct RawAttr {
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
pub(super) struct RawMeta {
    pub(super) resource_type: String,
    pub(super) location: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchema {
    pub(super) schemas: Vec<String>,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) attributes: Vec<RawAttr>,
    pub(super) meta: RawMeta,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommon {
    #[allow(dead_code)]
    pub(super) description: String,
    pub(super) attributes: Vec<RawAttr>,
}

pub(super) fn invalid(file: &str, message: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        file: file.to_string(),
        message: message.into(),
    }
}

pub(super) fn parse_json(file: &str, text: &str) -> Result<Value, LoadError> {
    serde_json::from_str(text).map_err(|source| LoadError::Json {
        file: file.to_string(),
        source,
    })
}

pub(super) fn from_value<T: for<'de> Deserialize<'de>>(
    file: &str,
    value: Value,
) -> Result<T, LoadError> {
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

pub(super) fn convert_attrs(
    file: &str,
    parent: &str,
    raws: Vec<RawAttr>,
) -> Result<Vec<AttrInfo>, LoadError> {
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

pub(super) fn check_resource_type(
    file: &str,
    kind: ResourceKind,
    items: &[Value],
) -> Result<(), LoadError> {
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
