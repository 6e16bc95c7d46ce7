//! Value-level helpers for PATCH ([`crate::scim::patch`]): type checking and normalisation of
//! client values against the schema, identity and `primary` rules for multi-valued
//! attributes, mutability checks, pruning of unassigned values and the `schemas` sync.
//!
//! Split from `patch.rs` so that file reads as the operation dispatch (which target, which
//! operation) while this one holds the rules applied to the values themselves.

use serde_json::{Map, Value};

use crate::scim::attr::{AttrInfo, AttrType, Mutability};
use crate::scim::filter_eval::{is_present, parse_rfc3339};
use crate::scim::patch::PatchError;

/// Appends `new` values to a multi-valued attribute, merging into equal existing ones.
pub(crate) fn add_values(
    attr: &AttrInfo,
    items: &mut Vec<Value>,
    new: Vec<Value>,
) -> Result<(), PatchError> {
    let mut touched = Vec::new();
    for value in new {
        match items.iter().position(|e| same_value(attr, e, &value)) {
            Some(i) => {
                if let (Some(Value::Object(existing)), Value::Object(_)) =
                    (items.get_mut(i), &value)
                {
                    merge_into(existing, value);
                }
                touched.push(i);
            }
            None => {
                items.push(value);
                touched.push(items.len() - 1);
            }
        }
    }
    settle_primary(attr, items, &touched)
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

/// Whether two values of a multi-valued attribute denote the same value (see module docs).
pub(crate) fn same_value(attr: &AttrInfo, a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let text_eq = |x: &Value, y: &Value, case_exact: bool| match (x, y) {
        (Value::String(x), Value::String(y)) if !case_exact => x.eq_ignore_ascii_case(y),
        _ => x == y,
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let case_exact = attr.sub("value").is_none_or(|s| s.case_exact);
            let same_value = match (x.get("value"), y.get("value")) {
                (Some(p), Some(q)) if !p.is_null() => text_eq(p, q, case_exact),
                _ => false,
            };
            let same_type = match (x.get("type"), y.get("type")) {
                (Some(p), Some(q)) => text_eq(p, q, false),
                _ => true,
            };
            same_value && same_type
        }
        _ => text_eq(a, b, attr.case_exact),
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
// Value checking

/// Checks a value for `info` as a whole (an array for a multi-valued attribute).
pub(crate) fn check_value(info: &AttrInfo, value: &Value) -> Result<Value, PatchError> {
    if value.is_null() {
        Ok(Value::Null)
    } else if info.multi_valued {
        check_items(info, value).map(Value::Array)
    } else {
        check_element(info, value)
    }
}

/// The values for a multi-valued attribute; a single value is wrapped.
pub(crate) fn check_items(info: &AttrInfo, value: &Value) -> Result<Vec<Value>, PatchError> {
    match value {
        Value::Array(items) => items.iter().map(|v| check_element(info, v)).collect(),
        single => Ok(vec![check_element(info, single)?]),
    }
}

/// Checks (and normalises) one value of `info`'s type.
pub(crate) fn check_element(info: &AttrInfo, value: &Value) -> Result<Value, PatchError> {
    let name = &info.name;
    let wrong = |expected: &str| {
        Err(PatchError::InvalidValue(format!(
            "\"{name}\" expects {expected}, got {value}"
        )))
    };
    match (info.attr_type, value) {
        (AttrType::Complex, Value::Object(members)) => {
            let mut out = Map::new();
            for (key, v) in members {
                let Some(sub) = info.sub(key) else {
                    return Err(PatchError::InvalidValue(format!(
                        "\"{name}\" has no sub-attribute \"{key}\""
                    )));
                };
                out.insert(sub.name.clone(), check_value(sub, v)?);
            }
            Ok(Value::Object(out))
        }
        // Entra ID sends a manager as a bare id: {"op":"Add","path":"...:manager","value":"id"}.
        (AttrType::Complex, Value::String(_) | Value::Number(_) | Value::Bool(_))
            if !info.multi_valued && info.sub("value").is_some() =>
        {
            let mut wrapped = Map::new();
            wrapped.insert("value".into(), value.clone());
            check_element(info, &Value::Object(wrapped))
        }
        (AttrType::Complex, _) => wrong("an object"),
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(_)) => {
            Ok(value.clone())
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary, _) => wrong("a string"),
        (AttrType::DateTime, Value::String(s)) if parse_rfc3339(s).is_some() => Ok(value.clone()),
        (AttrType::DateTime, _) => wrong("an RFC 3339 date-time string"),
        (AttrType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (AttrType::Boolean, _) => wrong("a Boolean"),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        (AttrType::Integer, _) => wrong("an integer"),
        (AttrType::Decimal, Value::Number(_)) => Ok(value.clone()),
        (AttrType::Decimal, _) => wrong("a number"),
    }
}

// ---------------------------------------------------------------------------------------
// Mutability, pruning, schemas

pub(crate) fn check_mutability(
    attr: &AttrInfo,
    sub: Option<&AttrInfo>,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), PatchError> {
    let normalise = |v: Option<&Value>| {
        let mut v = v.cloned().unwrap_or(Value::Null);
        prune_value(&mut v);
        if is_empty(&v) { Value::Null } else { v }
    };
    if normalise(old) == normalise(new) {
        return Ok(());
    }
    let had_value = old.is_some_and(is_present);
    for info in std::iter::once(attr).chain(sub) {
        match info.mutability {
            Mutability::ReadOnly => {
                return Err(PatchError::Mutability(format!(
                    "\"{}\" is readOnly",
                    info.name
                )));
            }
            Mutability::Immutable if had_value => {
                return Err(PatchError::Mutability(format!(
                    "\"{}\" is immutable and already has a value",
                    info.name
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

pub(crate) fn prune_value(v: &mut Value) {
    match v {
        Value::Object(m) => prune_map(m),
        Value::Array(items) => {
            items.iter_mut().for_each(prune_value);
            items.retain(|x| !is_empty(x));
        }
        _ => {}
    }
}

pub(crate) fn prune_map(m: &mut Map<String, Value>) {
    m.values_mut().for_each(prune_value);
    m.retain(|_, v| !is_empty(v));
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
