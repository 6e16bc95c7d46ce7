//! The schema layer's errors: [`SchemaError`] for a request that does not fit the schemas
//! (each with its RFC 7644 §3.12 `scimType`), [`LoadError`] for a schema file that cannot
//! be used.

use crate::scim::value::ValueError;

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
    /// An attribute path (as given to [`ResourceResolver::require_path`](super::ResourceResolver::require_path)) names no
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

/// A schema definition file that cannot be used. Only [`SchemaRegistry::from_sources`](super::SchemaRegistry::from_sources)
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

impl From<ValueError> for SchemaError {
    fn from(e: ValueError) -> Self {
        match e {
            ValueError::InvalidValue(m) => SchemaError::InvalidValue(m),
            ValueError::UnknownSubAttribute(path) => SchemaError::UnknownAttribute(path),
            ValueError::Duplicate(_) => SchemaError::InvalidSyntax(e.to_string()),
            ValueError::Mutability(m) => SchemaError::Mutability(m),
        }
    }
}
