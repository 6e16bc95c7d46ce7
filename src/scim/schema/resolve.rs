//! Attribute path resolution for one resource type: [`ResourceResolver`], the
//! [`AttributeResolver`] the filter and PATCH modules consume (with the SQL column map), and
//! the URN-aware, case-insensitive name lookups normalisation and projection share.

use serde_json::{Map, Value};

use super::{ResourceKind, SchemaError, SchemaRegistry};
use crate::scim::attr::{AttrInfo, AttributeResolver, Computed, ResolvedPath};

/// A registry bound to one resource type: resolves attribute paths for the filter and
/// PATCH modules ([`AttributeResolver`]) and does the per-type work of
/// [`SchemaRegistry::normalize`] and [`SchemaRegistry::project`].
#[derive(Debug, Clone, Copy)]
pub struct ResourceResolver<'a> {
    pub(super) registry: &'a SchemaRegistry,
    pub(super) kind: ResourceKind,
}

/// Where a name lives: `None` = core schema or common attribute, `Some(urn)` = extension.
pub(super) type Scope = Option<&'static str>;

/// `name` in `scope` as messages name it (`urn:name` for an extension's), written only
/// when a message is (see [`crate::scim::value::Dotted`]).
#[derive(Clone, Copy)]
pub(super) struct Label<'a>(pub(super) Scope, pub(super) &'a str);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str(self.1),
            Some(urn) => write!(f, "{urn}:{}", self.1),
        }
    }
}

pub(super) fn label(scope: Scope, name: &str) -> String {
    Label(scope, name).to_string()
}

/// The value under `key` in `obj`, matching the key case-insensitively: an exact match
/// wins wherever it is, else the first key equal to `key` but for ASCII case, in the map's
/// order. One pass, keys of another length skipped at once: the usual call is a miss (a
/// schema attribute the document does not have), and `get` followed by a scan walked every
/// key twice over for it (bench/RESULTS.md, "one layer around each request").
pub(super) fn get_ci<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    let mut folded = None;
    for (k, v) in obj {
        if k.len() != key.len() {
            continue;
        }
        if k == key {
            return Some(v);
        }
        if folded.is_none() && k.eq_ignore_ascii_case(key) {
            folded = Some(v);
        }
    }
    folded
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
    pub(super) fn schema_attributes(&self) -> Vec<(Scope, &'a AttrInfo)> {
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
    pub(super) fn classify_urn(&self, urn: &str) -> Option<Scope> {
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
    pub(super) fn strip_urn<'s>(&self, s: &'s str) -> Option<(Scope, &'s str)> {
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
    pub(super) fn core_attr(&self, name: &str) -> Option<&'a AttrInfo> {
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
    pub(super) fn ext_attr(&self, urn: &str, name: &str) -> Option<&'a AttrInfo> {
        if !self.kind.extension_urns().contains(&urn) {
            return None;
        }
        self.registry.schema(urn).and_then(|s| s.attribute(name))
    }

    pub(super) fn scoped_attr(&self, scope: Scope, name: &str) -> Option<&'a AttrInfo> {
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
    fn computed(&self, path: &ResolvedPath) -> Option<Computed> {
        (self.kind == ResourceKind::User && path.extension.is_none() && path.attr.name == "groups")
            .then_some(Computed::UserGroups)
    }

    /// `userName` → `user_name_fold`, `displayName` → `display_name_fold` (migration 10).
    fn folded_column(&self, path: &ResolvedPath) -> Option<&'static str> {
        match self.column(path)? {
            "user_name" => Some("user_name_fold"),
            "display_name" => Some("display_name_fold"),
            _ => None,
        }
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
