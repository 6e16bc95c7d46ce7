//! SCIM 2.0 schema registry: RFC 7643 attribute definitions and what the server does with them.
//!
//! What lives here, and why in one place:
//!
//! * **The registry** ([`SchemaRegistry`]; `load.rs` reads the files, `registry.rs` holds
//!   them). The schema resources served at `/Schemas` (core User, enterprise User extension,
//!   core Group), the `/ResourceTypes` list and the `/ServiceProviderConfig` document are
//!   JSON files in `schemas/`, compiled in with `include_str!` and parsed once
//!   ([`SchemaRegistry::builtin`]). Keeping them as JSON means the discovery endpoints serve
//!   exactly what the RFC transcription says, and the in-memory
//!   [`AttrInfo`](crate::scim::attr::AttrInfo) tree used everywhere else is derived from the
//!   same text, so the two cannot drift apart. `schemas/common_attributes.json` holds the
//!   RFC 7643 §3.1 common attributes (`id`, `externalId`, `meta`): they belong to no
//!   published schema but paths such as `meta.lastModified` must still resolve.
//! * **Path resolution** (`resolve.rs`: [`ResourceResolver`], the
//!   [`AttributeResolver`](crate::scim::attr::AttributeResolver) the filter and PATCH
//!   modules consume), including the SQL column map.
//! * **Write normalisation** (`normalize.rs`: [`SchemaRegistry::normalize`]): a POST/PUT
//!   body becomes a stored document with canonical attribute names, checked types and
//!   RFC 7643 §7 mutability applied. The value rules it applies (types, `caseExact`,
//!   mutability) are [`crate::scim::value`]'s, the ones PATCH applies.
//! * **Read projection** (`project.rs`: [`SchemaRegistry::project`]): RFC 7644 §3.4.2.5
//!   `attributes` / `excludedAttributes` and the `returned` characteristic.
//! * **Errors** (`error.rs`: [`SchemaError`], [`LoadError`]), carrying the RFC 7644 §3.12
//!   `scimType` to answer with.
//!
//! All of these need the same attribute definitions and the same case-insensitive,
//! URN-aware name matching, which is why they share this module; this file holds the schema
//! URNs and the [`ResourceKind`]s.
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

mod error;
mod load;
mod normalize;
mod project;
mod registry;
mod resolve;

pub use error::{LoadError, SchemaError};
pub use load::SchemaSources;
pub use normalize::WriteMode;
pub use registry::{SchemaDef, SchemaRegistry, prefix_meta_locations};
pub use resolve::ResourceResolver;

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

#[cfg(test)]
mod tests;
