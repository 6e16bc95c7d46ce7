//! Attribute metadata shared by the SCIM schema registry, the filter and the PATCH engine.
//!
//! The registry (`schema/`) knows RFC 7643's attribute definitions; the filter
//! (`filter.rs`) and PATCH (`patch.rs`) need only to ask "what is this attribute path,
//! where does it live in a stored document, how is it compared?". This file is that
//! contract, so the three modules can be written and tested apart.
//!
//! Stored documents use canonical attribute names (as RFC 7643 spells them): core
//! attributes at the top level, extension attributes nested under their schema URN key,
//! e.g. `{"userName": "bjensen", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7"}}`.

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition (a top-level attribute or a sub-attribute).
#[derive(Debug, Clone, PartialEq)]
pub struct AttrInfo {
    /// Canonical name as RFC 7643 spells it (`userName`, `emails`, `value`).
    pub name: String,
    pub attr_type: AttrType,
    pub multi_valued: bool,
    pub case_exact: bool,
    pub required: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: Vec<String>,
    pub reference_types: Vec<String>,
    pub description: String,
    /// Sub-attributes of a complex attribute (empty otherwise).
    pub sub_attributes: Vec<AttrInfo>,
}

impl AttrInfo {
    /// The sub-attribute named `name` (case-insensitive), if this attribute is complex.
    pub fn sub(&self, name: &str) -> Option<&AttrInfo> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// An attribute path resolved against a resource type's schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPath {
    /// `None` for a core-schema attribute (top level of the document); the extension's
    /// schema URN for an extension attribute (nested under that key).
    pub extension: Option<String>,
    /// The top-level attribute of the path.
    pub attr: AttrInfo,
    /// The sub-attribute, when the path names one (`name.givenName`, `emails.value`).
    pub sub: Option<AttrInfo>,
}

impl ResolvedPath {
    /// Keys from the document root to the value, canonical spelling:
    /// `["name", "givenName"]`, `["urn:…:enterprise:2.0:User", "manager", "value"]`.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys = Vec::with_capacity(3);
        if let Some(urn) = &self.extension {
            keys.push(urn.as_str());
        }
        keys.push(self.attr.name.as_str());
        if let Some(sub) = &self.sub {
            keys.push(sub.name.as_str());
        }
        keys
    }

    /// The definition of the leaf the path names (the sub-attribute if any).
    pub fn leaf(&self) -> &AttrInfo {
        self.sub.as_ref().unwrap_or(&self.attr)
    }
}

/// Resolves SCIM attribute paths (RFC 7644 §3.10 `attrPath`, without value filters) for one
/// resource type. `urn` is the schema URN prefix when the path was written fully qualified
/// (`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName` → urn = core User URN,
/// attr = `name`, sub = `givenName`). Matching is case-insensitive. `None` = no such
/// attribute (the caller turns that into `invalidFilter` / `invalidPath`).
pub trait AttributeResolver {
    fn resolve(&self, urn: Option<&str>, attr: &str, sub: Option<&str>) -> Option<ResolvedPath>;

    /// The indexed column a top-level, single-valued core attribute is stored in, if any
    /// (`id`, `userName`, `externalId`, `displayName`): the SQL translator compares against
    /// the column instead of the JSON document so the index is used.
    fn column(&self, path: &ResolvedPath) -> Option<&'static str> {
        let _ = path;
        None
    }

    /// The column holding the case fold ([`crate::scim::value::fold`]) of the value in
    /// [`column`](Self::column), for a `caseExact: false` attribute: the SQL translator
    /// compares there, so an index serves case-insensitive comparisons. `None`: it folds
    /// the column in the query (`scim_fold(column)`).
    fn folded_column(&self, path: &ResolvedPath) -> Option<&'static str> {
        let _ = path;
        None
    }

    /// Whether a multi-valued attribute is computed rather than stored in the document
    /// (a User's `groups`): the SQL translator then reads it from where it is kept.
    fn computed(&self, path: &ResolvedPath) -> Option<Computed> {
        let _ = path;
        None
    }
}

/// Multi-valued attributes the server computes instead of storing in documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    /// A User's `groups`: from the group membership table.
    UserGroups,
}
