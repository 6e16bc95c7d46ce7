//! Read projection: RFC 7644 §3.4.2.5 `attributes` / `excludedAttributes` and the RFC 7643
//! §7 `returned` characteristic applied to a stored document
//! ([`super::SchemaRegistry::project`]).

use serde_json::{Map, Value};

use super::resolve::{ResourceResolver, Scope};
use crate::scim::attr::{AttrInfo, AttrType, Returned};

/// What a top-level key of a document is, for [`ResourceResolver::project`].
#[derive(Clone, Copy)]
enum TopKey<'a> {
    Schemas,
    Core(&'a AttrInfo),
    /// An extension's URN alone: its attributes are inside.
    Extension(&'static str),
    /// Unknown, or a URN-qualified attribute (not a stored-document form): dropped.
    Other,
}

impl TopKey<'_> {
    /// Whether `key` is spelled as the schema spells what it names (an `Other` is dropped
    /// under any spelling).
    fn spells(&self, key: &str) -> bool {
        match self {
            TopKey::Schemas => key == "schemas",
            TopKey::Core(info) => info.name == key,
            TopKey::Extension(urn) => *urn == key,
            TopKey::Other => true,
        }
    }
}

impl ResourceResolver<'_> {
    /// Takes the document by value: what is kept is moved, not copied (a list shapes every
    /// document it returns). A stored document's names are the schema's (the writes
    /// normalise them), so it is projected in place: what goes is removed, nothing is
    /// rebuilt. Any other spelling is renamed to the schema's in a new map.
    pub(super) fn project(&self, doc: Value, attributes: &[String], excluded: &[String]) -> Value {
        let Value::Object(mut obj) = doc else {
            return Value::Object(Map::new());
        };
        let include = Selection::parse(self, attributes);
        let exclude = Selection::parse(self, excluded);
        let keys: Vec<TopKey<'_>> = obj.keys().map(|k| self.top_key(k)).collect();
        let keep = |top: TopKey<'_>, value: &mut Value| match top {
            TopKey::Schemas => true,
            TopKey::Core(info) => project_attr(None, info, value, &include, &exclude),
            TopKey::Extension(urn) => self.project_extension(urn, value, &include, &exclude),
            TopKey::Other => false,
        };
        if obj.keys().zip(&keys).all(|(k, top)| top.spells(k)) {
            let mut keys = keys.into_iter();
            obj.retain(|_, value| keys.next().is_some_and(|top| keep(top, value)));
            return Value::Object(obj);
        }
        let mut out = Map::new();
        for ((_, mut value), top) in obj.into_iter().zip(keys) {
            if keep(top, &mut value) {
                let name = match top {
                    TopKey::Schemas => "schemas".to_string(),
                    TopKey::Core(info) => info.name.clone(),
                    TopKey::Extension(urn) => urn.to_string(),
                    TopKey::Other => continue,
                };
                out.insert(name, value);
            }
        }
        Value::Object(out)
    }

    fn top_key(&self, key: &str) -> TopKey<'_> {
        if key.eq_ignore_ascii_case("schemas") {
            return TopKey::Schemas;
        }
        match self.strip_urn(key) {
            Some((Some(urn), "")) => TopKey::Extension(urn),
            Some(_) => TopKey::Other,
            None => self.core_attr(key).map_or(TopKey::Other, TopKey::Core),
        }
    }

    /// An extension's object projected (in place when its names are the schema's); whether
    /// anything is left of it.
    fn project_extension(
        &self,
        urn: &'static str,
        value: &mut Value,
        include: &Selection,
        exclude: &Selection,
    ) -> bool {
        let Value::Object(inner) = value else {
            return false;
        };
        retain_named(
            inner,
            |k| self.ext_attr(urn, k),
            |info, v| project_attr(Some(urn), info, v, include, exclude),
        )
    }
}

/// Keep the entries of `obj` that `lookup` knows and `keep` keeps, under the schema's names
/// (`AttrInfo::name`): in place when every known key is already spelled so (a stored
/// document), else renamed into a new map. Whether anything is left.
fn retain_named<'i>(
    obj: &mut Map<String, Value>,
    lookup: impl Fn(&str) -> Option<&'i AttrInfo>,
    mut keep: impl FnMut(&'i AttrInfo, &mut Value) -> bool,
) -> bool {
    if obj
        .keys()
        .all(|k| lookup(k).is_none_or(|info| info.name == *k))
    {
        obj.retain(|k, v| lookup(k).is_some_and(|info| keep(info, v)));
    } else {
        for (k, mut v) in std::mem::take(obj) {
            if let Some(info) = lookup(&k) {
                if keep(info, &mut v) {
                    obj.insert(info.name.clone(), v);
                }
            }
        }
    }
    !obj.is_empty()
}

impl ResourceResolver<'_> {
    /// Whether [`Self::project`] with these lists leaves out core attribute `name` whole,
    /// wherever it is: then a reader need not read it.
    pub(super) fn leaves_out(
        &self,
        name: &str,
        attributes: &[String],
        excluded: &[String],
    ) -> bool {
        let Some(info) = self.core_attr(name) else {
            return true;
        };
        match info.returned {
            Returned::Never => return true,
            Returned::Always => return false,
            _ => {}
        }
        let include = Selection::parse(self, attributes);
        if !include.is_empty() {
            if include.pick(None, &info.name).is_none() {
                return true;
            }
        } else if info.returned == Returned::Request {
            return true;
        }
        Selection::parse(self, excluded).pick(None, &info.name) == Some(Pick::Whole)
    }
}

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

/// Project one attribute's `value` in place; whether it is kept.
fn project_attr(
    scope: Scope,
    info: &AttrInfo,
    value: &mut Value,
    include: &Selection,
    exclude: &Selection,
) -> bool {
    if info.returned == Returned::Never || value.is_null() {
        return false;
    }
    let always = info.returned == Returned::Always;
    let explicit = !include.is_empty();
    let pick = if always {
        Pick::Whole
    } else if explicit {
        match include.pick(scope, &info.name) {
            Some(pick) => pick,
            None => return false,
        }
    } else if info.returned == Returned::Request {
        return false;
    } else {
        Pick::Whole
    };
    let excluded_subs = match if always {
        None
    } else {
        exclude.pick(scope, &info.name)
    } {
        Some(Pick::Whole) => return false,
        Some(Pick::Subs(subs)) => subs,
        None => Vec::new(),
    };
    if info.attr_type != AttrType::Complex {
        return true;
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
    // An element keeps its known, non-null, returned sub-attributes.
    let filter = |element: &mut Value| -> bool {
        let Value::Object(obj) = element else {
            return false;
        };
        retain_named(obj, |k| info.sub(k), |sub, v| !v.is_null() && keep(sub))
    };
    match value {
        Value::Array(items) => {
            items.retain_mut(|element| filter(element));
            !items.is_empty()
        }
        Value::Object(_) => filter(value),
        _ => true,
    }
}
