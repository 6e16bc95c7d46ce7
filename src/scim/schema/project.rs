//! Read projection: RFC 7644 §3.4.2.5 `attributes` / `excludedAttributes` and the RFC 7643
//! §7 `returned` characteristic applied to a stored document
//! ([`super::SchemaRegistry::project`]).

use serde_json::{Map, Value};

use super::resolve::{ResourceResolver, Scope};
use crate::scim::attr::{AttrInfo, AttrType, Returned};

impl ResourceResolver<'_> {
    /// Takes the document by value: what is kept is moved, not copied (a list shapes every
    /// document it returns).
    pub(super) fn project(&self, doc: Value, attributes: &[String], excluded: &[String]) -> Value {
        let Value::Object(obj) = doc else {
            return Value::Object(Map::new());
        };
        let include = Selection::parse(self, attributes);
        let exclude = Selection::parse(self, excluded);
        let mut out = Map::new();
        for (key, value) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                out.insert("schemas".to_string(), value);
                continue;
            }
            match self.strip_urn(&key) {
                Some((Some(ext), "")) => {
                    let Value::Object(inner) = value else {
                        continue;
                    };
                    let mut m = Map::new();
                    for (k, v) in inner {
                        if let Some(info) = self.ext_attr(ext, &k) {
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
                    if let Some(info) = self.core_attr(&key) {
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

fn project_attr(
    scope: Scope,
    info: &AttrInfo,
    value: Value,
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
        return Some(value);
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
    let filter = |element: Value| -> Option<Value> {
        let Value::Object(obj) = element else {
            return None;
        };
        let mut m = Map::new();
        for (k, v) in obj {
            if let Some(sub) = info.sub(&k) {
                if !v.is_null() && keep(sub) {
                    m.insert(sub.name.clone(), v);
                }
            }
        }
        (!m.is_empty()).then_some(Value::Object(m))
    };
    match value {
        Value::Array(items) => {
            let kept: Vec<Value> = items.into_iter().filter_map(filter).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(_) => filter(value),
        other => Some(other),
    }
}
