//! Write normalisation: a POST or PUT body becomes the document to store
//! ([`super::SchemaRegistry::normalize`]). Canonical names and URN forms are settled here;
//! the values themselves are typed, compared and mutability-checked by
//! [`crate::scim::value`], the rules PATCH applies too.

use std::fmt::Display;

use serde_json::{Map, Value};

use super::resolve::{Label, ResourceResolver, Scope, get_ci, label};
use super::{ResourceKind, SchemaError};
use crate::scim::attr::{AttrInfo, AttrType, Mutability};
use crate::scim::value::{self, Dotted, ValueError, Write};

/// Whether [`SchemaRegistry::normalize`](super::SchemaRegistry::normalize) handles a POST (create) or a PUT (replace).
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

impl ResourceResolver<'_> {
    pub(super) fn normalize(
        &self,
        input: &Value,
        mode: WriteMode<'_>,
    ) -> Result<Value, SchemaError> {
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
        check_storable(self.kind, &out)?;
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
        let attr_label = Label(scope, &info.name);
        let target = match scope {
            None => out,
            Some(ext) => ext_object(out, ext)?,
        };
        match sub_name {
            None => {
                if let Some(v) = value::check_attr(info, value, &attr_label, Write::Replace)? {
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
                let sub_label = Dotted(&attr_label, &sub_info.name);
                if let Some(v) = value::check_attr(sub_info, value, &sub_label, Write::Replace)? {
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
            let attr_label = Label(scope, &info.name);
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
                    new => value::check_change(info, Some(old), new, &attr_label)?,
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
        let writable_required = |a: &AttrInfo| a.required && a.mutability != Mutability::ReadOnly;
        for (scope, info) in self.schema_attributes() {
            let in_use = scope.is_none_or(|ext| schemas.contains(&ext));
            let required = writable_required(info) && in_use;
            // Most attributes are neither required nor hold required sub-attributes: their
            // value is not looked up (a map lookup each, for every write).
            if !required && !info.sub_attributes.iter().any(writable_required) {
                continue;
            }
            let value = match scope {
                None => out.get(&info.name),
                Some(ext) => out
                    .get(ext)
                    .and_then(Value::as_object)
                    .and_then(|m| m.get(&info.name)),
            };
            let attr_label = Label(scope, &info.name);
            if required {
                check_present(value, &attr_label)?;
            }
            let Some(value) = value else { continue };
            let required_subs: Vec<&AttrInfo> = info
                .sub_attributes
                .iter()
                .filter(|s| writable_required(s))
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
                        check_present(m.get(&sub.name), &Dotted(&attr_label, &sub.name))?;
                    }
                }
            }
        }
        Ok(())
    }
}

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

fn duplicate(attr_label: &dyn Display) -> SchemaError {
    SchemaError::InvalidSyntax(format!("attribute `{attr_label}` is given more than once"))
}

/// Inserts `value` under `key`; two objects (a single-valued complex attribute given in
/// parts, e.g. nested and flat) are merged; anything else already there is a duplicate.
fn insert_merge(
    target: &mut Map<String, Value>,
    key: &str,
    value: Value,
    attr_label: &dyn Display,
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
                        return Err(duplicate(&Dotted(attr_label, &k)));
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

fn check_present(value: Option<&Value>, attr_label: &dyn Display) -> Result<(), SchemaError> {
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

/// The most bytes (UTF-8) of a `userName`, `externalId` or `displayName`. Both stores index
/// these values: PostgreSQL refuses a B-tree entry over 2,704 bytes, so a longer value was
/// a 503 there (and stored as is in SQLite). 1,024 bytes is four times Entra ID's and
/// Okta's longest user names, and leaves room for the case fold that is indexed too.
pub const MAX_INDEXED_BYTES: usize = 1024;

/// The most text a User may hold: the bytes (UTF-8) of its strings, attribute names
/// included. The request body limit bounds one request, but PATCHes could grow a User
/// without end, each read, patched and rewritten whole by the next write. 1 MiB is the
/// default body limit: no User larger than a POST could create. A Group is not capped:
/// its members must exist, so the directory bounds it.
pub const MAX_USER_TEXT_BYTES: usize = 1 << 20;

/// Refuse what the stores cannot index or keep alike: an indexed attribute over
/// [`MAX_INDEXED_BYTES`], U+0000 in any string (PostgreSQL's text cannot hold it, so
/// SQLite stored what PostgreSQL refused), and a User over [`MAX_USER_TEXT_BYTES`].
fn check_storable(kind: ResourceKind, doc: &Map<String, Value>) -> Result<(), SchemaError> {
    for name in ["userName", "externalId", "displayName"] {
        if let Some(Value::String(s)) = doc.get(name)
            && s.len() > MAX_INDEXED_BYTES
        {
            return Err(SchemaError::InvalidValue(format!(
                "`{name}` may be at most {MAX_INDEXED_BYTES} bytes long; this one has {}",
                s.len()
            )));
        }
    }
    /// The bytes of `v`'s strings and names, or `None` if one holds U+0000.
    fn text(v: &Value) -> Option<usize> {
        match v {
            Value::String(s) => (!s.contains('\0')).then_some(s.len()),
            Value::Array(items) => items.iter().map(text).sum(),
            Value::Object(m) => fields(m),
            _ => Some(0),
        }
    }
    fn fields(m: &Map<String, Value>) -> Option<usize> {
        m.iter()
            .map(|(k, v)| Some((!k.contains('\0')).then_some(k.len())? + text(v)?))
            .sum()
    }
    let Some(bytes) = fields(doc) else {
        return Err(SchemaError::InvalidValue(
            "a value holds the character U+0000, which cannot be stored".into(),
        ));
    };
    if kind == ResourceKind::User && bytes > MAX_USER_TEXT_BYTES {
        return Err(SchemaError::InvalidValue(format!(
            "a User may hold at most {MAX_USER_TEXT_BYTES} bytes of text (its strings and \
             attribute names); this one would hold {bytes}: remove values first"
        )));
    }
    Ok(())
}

/// PUT, for a readWrite complex attribute present in both documents: keep readOnly
/// sub-attributes and enforce immutable ones. Single-valued: only while `value` (if the
/// attribute has one) is unchanged. Multi-valued: elements matched by `value`.
fn carry_sub_attributes(
    info: &AttrInfo,
    old: &Value,
    new: &mut Value,
    attr_label: &dyn Display,
) -> Result<(), SchemaError> {
    if info.attr_type != AttrType::Complex {
        return Ok(());
    }
    let value_info = info.sub("value");
    let same_referent = |o: &Map<String, Value>, n: &Map<String, Value>| -> Option<bool> {
        let vi = value_info?;
        match (get_ci(o, &vi.name), n.get(&vi.name)) {
            (Some(a), Some(b)) => Some(value::same_value(vi, a, b)),
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
            // `carry_element` keeps or checks only the old values' readOnly and immutable
            // sub-attributes besides `value`. When no old value holds one (a Group's
            // members are stored as `{"value": id}`), there is nothing to match: indexing
            // 49,000 members was a fifth of a one-member PATCH.
            let kept = |s: &&AttrInfo| {
                s.name != "value"
                    && matches!(s.mutability, Mutability::ReadOnly | Mutability::Immutable)
            };
            let holds_kept = |o: &Value| {
                let Value::Object(o) = o else { return false };
                (info.sub_attributes.iter().filter(kept))
                    .any(|s| get_ci(o, &s.name).is_some_and(|v| !v.is_null()))
            };
            if !olds.iter().any(holds_kept) {
                return Ok(());
            }
            // The old values by their `value`, so that matching is a lookup per new value,
            // not a scan of the old ones (quadratic: seconds for a PUT of 4,000 emails).
            let mut index = value::KeyIndex::default();
            for (i, o) in olds.iter().enumerate() {
                if let (Value::Object(o), Some(vi)) = (o, value_info) {
                    if let Some(a) = get_ci(o, &vi.name) {
                        index.insert(Some(value::identity_key(vi, a)), i);
                    }
                }
            }
            for n in news.iter_mut() {
                let Value::Object(n) = n else { continue };
                let key =
                    value_info.and_then(|vi| n.get(&vi.name).map(|b| value::identity_key(vi, b)));
                let Some(key) = key else { continue };
                let matched =
                    index
                        .candidates(Some(&key))
                        .iter()
                        .find_map(|&i| match olds.get(i) {
                            Some(Value::Object(o)) if same_referent(o, n) == Some(true) => Some(o),
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
    attr_label: &dyn Display,
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
                new_value => {
                    let sub_label = Dotted(attr_label, &sub.name);
                    value::check_change(sub, Some(old_value), new_value, &sub_label).map_err(
                        |e| match (e, element) {
                            (ValueError::Mutability(m), Some(v)) => {
                                ValueError::Mutability(format!("{m} (the value {v})"))
                            }
                            (e, _) => e,
                        },
                    )?;
                }
            },
            _ => {}
        }
    }
    Ok(())
}
