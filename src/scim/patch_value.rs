//! Value-level helpers for PATCH ([`crate::scim::patch`]): type checking and normalisation of
//! client values against the schema, identity and `primary` rules for multi-valued
//! attributes, mutability checks, pruning of unassigned values and the `schemas` sync.
//!
//! Split from `patch.rs` so that file reads as the operation dispatch (which target, which
//! operation) while this one holds the rules applied to the values themselves.

use serde_json::{Map, Value};

use crate::scim::attr::AttrInfo;
use crate::scim::patch::PatchError;
use crate::scim::value::{self, Write};

/// When either side is at most this long (the values looked for, the values looked
/// among), a scan is cheaper than building the hash index: the usual operation adds or
/// removes one value.
const SCAN_BELOW: usize = 8;

/// Appends `new` values to a multi-valued attribute, merging into equal existing ones.
/// Linear in the values there and added ([`ElementIndex`]).
pub(crate) fn add_values(
    attr: &AttrInfo,
    items: &mut Vec<Value>,
    new: Vec<Value>,
) -> Result<(), PatchError> {
    let mut index = ElementIndex::new(attr, items, new.len(), items.len() + new.len());
    let mut touched = Vec::new();
    for value in new {
        match index.find(items, &value) {
            Some(i) => {
                if let (Some(Value::Object(existing)), Value::Object(_)) =
                    (items.get_mut(i), &value)
                {
                    merge_into(existing, value);
                }
                touched.push(i);
            }
            None => {
                index.insert(&value, items.len());
                items.push(value);
                touched.push(items.len() - 1);
            }
        }
    }
    settle_primary(attr, items, &touched)
}

/// The values of a multi-valued attribute, for finding the one a value is the same element
/// as ([`same_element`]). When both sides are long, each value is filed under the
/// [`value::identity_key`] of its `value` (a complex value) or of itself, so a lookup is a
/// hash probe: scans made a PATCH adding or removing thousands of values quadratic. When
/// either side is short, a lookup is a scan.
pub(crate) struct ElementIndex<'a> {
    attr: &'a AttrInfo,
    keys: Option<value::KeyIndex>,
}

impl<'a> ElementIndex<'a> {
    /// For `lookups` lookups among `items`, which will hold at most `size` values.
    pub(crate) fn new(
        attr: &'a AttrInfo,
        items: &[Value],
        lookups: usize,
        size: usize,
    ) -> ElementIndex<'a> {
        let mut index = ElementIndex {
            attr,
            keys: (lookups.min(size) > SCAN_BELOW).then(value::KeyIndex::default),
        };
        for (i, v) in items.iter().enumerate() {
            index.insert(v, i);
        }
        index
    }

    /// Record that `v` is at `position`.
    pub(crate) fn insert(&mut self, v: &Value, position: usize) {
        if let Some(keys) = &mut self.keys {
            keys.insert(element_key(self.attr, v), position);
        }
    }

    /// The first position in `items` (the values indexed) whose value is the same element
    /// as `v`.
    pub(crate) fn find(&self, items: &[Value], v: &Value) -> Option<usize> {
        let same = |&i: &usize| items.get(i).is_some_and(|e| same_element(self.attr, e, v));
        match &self.keys {
            Some(keys) => keys
                .candidates(element_key(self.attr, v).as_deref())
                .iter()
                .copied()
                .find(same),
            None => (0..items.len()).find(same),
        }
    }
}

/// The key [`same_element`] equality implies: of a complex value's `value` (none when it
/// has none: such values are only equal when identical), of a simple value itself.
fn element_key(attr: &AttrInfo, v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => {
            let p = m.get("value").filter(|p| !p.is_null())?;
            Some(match attr.sub("value") {
                Some(sub) => value::identity_key(sub, p),
                None => p.to_string(),
            })
        }
        _ => Some(value::identity_key(attr, v)),
    }
}

/// After `touched` values were written: at most one of them may be primary, and if one is,
/// every other value loses `primary: true`.
pub(crate) fn settle_primary(
    attr: &AttrInfo,
    items: &mut [Value],
    touched: &[usize],
) -> Result<(), PatchError> {
    let mut primaries: Vec<usize> = touched
        .iter()
        .copied()
        .filter(|&i| items.get(i).is_some_and(is_primary))
        .collect();
    primaries.dedup();
    match primaries.as_slice() {
        [] => Ok(()),
        [keep] => {
            for (i, item) in items.iter_mut().enumerate() {
                if i != *keep
                    && is_primary(item)
                    && let Value::Object(m) = item
                {
                    m.insert("primary".into(), Value::Bool(false));
                }
            }
            Ok(())
        }
        _ => Err(PatchError::InvalidValue(format!(
            "more than one value of \"{}\" has primary: true",
            attr.name
        ))),
    }
}

pub(crate) fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

/// Whether two values of a multi-valued attribute denote the same value, for PATCH's "add
/// what is already there changes nothing" and value removal: complex values with the same
/// `value` (and the same `type`, when both have one), scalars equal; compared by the
/// attribute's own rules ([`value::same_value`], so `caseExact` decides the case).
pub(crate) fn same_element(attr: &AttrInfo, a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let eq = |name: &str, p: &Value, q: &Value| {
                attr.sub(name)
                    .map_or(p == q, |sub| value::same_value(sub, p, q))
            };
            let same_value = match (x.get("value"), y.get("value")) {
                (Some(p), Some(q)) if !p.is_null() => eq("value", p, q),
                _ => false,
            };
            let same_type = match (x.get("type"), y.get("type")) {
                (Some(p), Some(q)) => eq("type", p, q),
                _ => true,
            };
            same_value && same_type
        }
        _ => value::same_value(attr, a, b),
    }
}

pub(crate) fn ensure_array<'a>(
    c: &'a mut Map<String, Value>,
    name: &str,
) -> Result<&'a mut Vec<Value>, PatchError> {
    let entry = c.entry(name).or_insert_with(|| Value::Array(Vec::new()));
    if entry.is_null() {
        *entry = Value::Array(Vec::new());
    }
    match entry {
        Value::Array(items) => Ok(items),
        _ => Err(PatchError::InvalidValue(format!(
            "the stored \"{name}\" is not an array"
        ))),
    }
}

pub(crate) fn ensure_object<'a>(
    c: &'a mut Map<String, Value>,
    name: &str,
) -> Result<&'a mut Map<String, Value>, PatchError> {
    let entry = c.entry(name).or_insert_with(|| Value::Object(Map::new()));
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => Ok(m),
        _ => Err(PatchError::InvalidValue(format!(
            "the stored \"{name}\" is not an object"
        ))),
    }
}

pub(crate) fn merge_into(target: &mut Map<String, Value>, source: Value) {
    if let Value::Object(source) = source {
        for (k, v) in source {
            target.insert(k, v);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Value checking: the rules of [`crate::scim::value`], with PATCH's treatment of `null` and
// `readOnly` ([`Write::Patch`]).

/// Checks a value for `info` as a whole (an array for a multi-valued attribute).
pub(crate) fn check_value(info: &AttrInfo, v: &Value) -> Result<Value, PatchError> {
    Ok(value::check_attr(info, v, &info.name, Write::Patch)?.unwrap_or(Value::Null))
}

/// The values for a multi-valued attribute; a single value is wrapped.
pub(crate) fn check_items(info: &AttrInfo, v: &Value) -> Result<Vec<Value>, PatchError> {
    match check_value(info, v)? {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        single => Ok(vec![single]),
    }
}

/// Checks (and normalises) one value of `info`'s type.
pub(crate) fn check_element(info: &AttrInfo, v: &Value) -> Result<Value, PatchError> {
    Ok(value::check_element(info, v, &info.name, Write::Patch)?.unwrap_or(Value::Null))
}

/// The mutability rule ([`value::check_change`]) for the attribute a PATCH operation
/// targets and, when it names one, its sub-attribute.
pub(crate) fn check_mutability(
    attr: &AttrInfo,
    sub: Option<&AttrInfo>,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), PatchError> {
    if !value::is_change(attr, old, new) {
        return Ok(());
    }
    value::allows_change(attr, old, &attr.name)?;
    if let Some(sub) = sub {
        value::allows_change(sub, old, &value::Dotted(&attr.name, &sub.name))?;
    }
    Ok(())
}

pub(crate) fn sync_schemas(work: &mut Map<String, Value>, extensions: &[String]) {
    let present: Vec<(String, bool)> = extensions
        .iter()
        .map(|urn| (urn.clone(), work.contains_key(urn)))
        .collect();
    let Some(Value::Array(schemas)) = work.get_mut("schemas") else {
        return;
    };
    for (urn, present) in present {
        let listed = |s: &Value| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(&urn));
        if present && !schemas.iter().any(listed) {
            schemas.push(Value::String(urn));
        } else if !present {
            schemas.retain(|s| !listed(s));
        }
    }
}
