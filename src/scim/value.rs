//! The value rules of SCIM attributes, in one place: how a client's value is typed and
//! normalised against its attribute definition, how two values of an attribute compare
//! (`caseExact`), and when a write breaks the attribute's `mutability`.
//!
//! Both write paths use these rules: POST/PUT normalisation (`schema::normalize`) and PATCH
//! (`patch`, `patch_value`); the filter evaluator and the SQL translator use [`fold`]. Before
//! this module the two write paths typed values separately and disagreed; the rules chosen:
//!
//! * **dateTime**: RFC 7643 §2.3.5 makes it an `xsd:dateTime`, whose seconds run 00–59: a
//!   leap second (`…T23:59:60Z`) is refused, as the filter always did. One parser,
//!   [`crate::time::parse_rfc3339_millis`] (chrono's), decides.
//! * **binary**: RFC 7643 §2.3.6 says base64 (RFC 4648 §4, the standard alphabet). A string
//!   that does not decode as such is refused; the `=` padding may be omitted, white space
//!   may not. The value is stored as sent.
//! * **caseExact: false**: strings compare after [`fold`], a Unicode lower-casing, so
//!   `ÉLODIE` equals `élodie` (the write path folded Unicode, PATCH and the filters ASCII).
//!   SQL gets the same function as `scim_fold` (`store::functions`) and folded columns for
//!   the indexed `userName`/`displayName` (schema.sql migration 10), so filters in SQL and in
//!   memory, and `userName` uniqueness, agree.
//! * **mutability**: [`check_change`] is the one rule: a change to a `readOnly` attribute,
//!   or to an `immutable` one that already had a value, is refused; "a change" means not
//!   [`same_value`] (so a case-only change of a `caseExact: false` value is no change).
//!   POST/PUT ignore `readOnly` values in the body (RFC 7643 §7: [`Write::Replace`] drops
//!   them before the rule is asked), PATCH refuses them (RFC 7644 §3.5.2).
//!
//! Nothing here panics on client input.

use std::fmt::Display;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use crate::scim::attr::{AttrInfo, AttrType, Mutability};

/// Why a value does not fit its attribute. Each layer maps it to its own error (the schema's
/// [`crate::scim::schema::SchemaError`], PATCH's [`crate::scim::patch::PatchError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not of the attribute's type or shape (`invalidValue`).
    #[error("{0}")]
    InvalidValue(String),
    /// A complex value names a sub-attribute its attribute does not have (the path, as
    /// `attr.sub`).
    #[error("unknown attribute `{0}`")]
    UnknownSubAttribute(String),
    /// A complex value gives the same sub-attribute twice (`value` and `VALUE`).
    #[error("attribute `{0}` is given more than once")]
    Duplicate(String),
    /// A write to a `readOnly` attribute or a change to a set `immutable` one.
    #[error("{0}")]
    Mutability(String),
}

/// Which write a value arrives in; the RFCs treat `null`, empty and `readOnly` values
/// differently in the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// POST or PUT: `null` and empty values are unassigned and dropped, `readOnly` values
    /// are ignored (RFC 7643 §2.5, §7).
    Replace,
    /// PATCH: `null` members are kept (they clear what they are merged over), `readOnly`
    /// values are kept for [`check_change`] to refuse.
    Patch,
}

/// The case fold of `caseExact: false` strings: each character lower-cased by Unicode's
/// mapping (`char::to_lowercase`, no context rules, so `Σ` always folds to `σ`). SQL uses the
/// same function (`scim_fold`).
pub fn fold(s: &str) -> String {
    // ASCII lower-cases the same either way; the byte-wise copy is several times faster
    // than a char at a time (every userName lookup folds its value).
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars().flat_map(char::to_lowercase).collect()
}

/// `fold(a) == fold(b)`, without building either fold: this runs for every pair a PATCH or
/// PUT compares, and allocating two strings a comparison made those requests several times
/// slower.
pub fn fold_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// A key for `v` as `info` compares values: two values [`same_value`] holds equal get the
/// same key (strings folded when the attribute ignores case, other scalars as JSON). Complex
/// and multi-valued values all share one key. A key only narrows the candidates: a
/// [`KeyIndex`] lookup is confirmed with the comparison itself.
pub fn identity_key(info: &AttrInfo, v: &Value) -> String {
    match v {
        Value::String(s) if folds_case(info) => fold(s),
        Value::Object(_) | Value::Array(_) => "\u{0}".to_string(),
        _ => v.to_string(),
    }
}

/// Positions of values under their keys ([`identity_key`]), so that finding the values a
/// new one equals in a long multi-valued attribute is a hash lookup, not a scan: a PATCH or
/// PUT with thousands of values compared every pair, minutes of a worker's time for one
/// request under the 1 MiB body limit. Values without a key (`None`) are kept apart; each
/// list is in insertion order, so the first candidate that compares equal is the first
/// such value.
#[derive(Debug, Default)]
pub struct KeyIndex {
    keyed: std::collections::HashMap<String, Vec<usize>>,
    keyless: Vec<usize>,
}

impl KeyIndex {
    /// Record that the value at `position` has `key`.
    pub fn insert(&mut self, key: Option<String>, position: usize) {
        match key {
            Some(k) => self.keyed.entry(k).or_default().push(position),
            None => self.keyless.push(position),
        }
    }

    /// The positions recorded under `key`, in insertion order.
    pub fn candidates(&self, key: Option<&str>) -> &[usize] {
        match key {
            Some(k) => self.keyed.get(k).map_or(&[], Vec::as_slice),
            None => &self.keyless,
        }
    }
}

/// Whether strings of `info` compare case-insensitively.
pub fn folds_case(info: &AttrInfo) -> bool {
    !info.case_exact && matches!(info.attr_type, AttrType::String | AttrType::Reference)
}

/// Equality as the attribute compares values: strings of a `caseExact: false` attribute (or
/// sub-attribute) compare after [`fold`], complex values member by member, multi-valued
/// ones element by element in order; anything else is JSON equality.
pub fn same_value(info: &AttrInfo, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if folds_case(info) => fold_eq(x, y),
        (Value::Array(x), Value::Array(y)) if info.multi_valued => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(info, p, q))
        }
        (Value::Object(x), Value::Object(y)) if info.attr_type == AttrType::Complex => {
            x.len() == y.len()
                && x.iter().all(|(k, p)| {
                    y.get(k).is_some_and(|q| match info.sub(k) {
                        Some(sub) => same_value(sub, p, q),
                        None => p == q,
                    })
                })
        }
        _ => a == b,
    }
}

/// `parent.name`: a sub-attribute's label in messages. The checks take a label as
/// `&dyn Display` and write it only into an error, so checking a value builds no label
/// text (a `format!` for every sub-attribute of every value was a tenth of a PATCH's
/// normalisation; bench/RESULTS.md).
#[derive(Clone, Copy)]
pub struct Dotted<'a>(pub &'a dyn Display, pub &'a str);

impl Display for Dotted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The mutability rule (RFC 7643 §7): a change of `old` to `new` (see [`is_change`]) is
/// refused for a `readOnly` attribute, and for an `immutable` one that had a value. `label`
/// names the attribute in the message.
pub fn check_change(
    info: &AttrInfo,
    old: Option<&Value>,
    new: Option<&Value>,
    label: &dyn Display,
) -> Result<(), ValueError> {
    if is_change(info, old, new) {
        allows_change(info, old, label)
    } else {
        Ok(())
    }
}

/// Whether `new` differs from `old` as `info` compares values ([`same_value`]), absent,
/// `null` and empty members all meaning unassigned.
pub fn is_change(info: &AttrInfo, old: Option<&Value>, new: Option<&Value>) -> bool {
    !same_value(info, &assigned(old), &assigned(new))
}

/// The second half of [`check_change`], for a change already found: refused when `info` is
/// `readOnly`, or `immutable` and `old` is a value (not unassigned, not `""`).
pub fn allows_change(
    info: &AttrInfo,
    old: Option<&Value>,
    label: &dyn Display,
) -> Result<(), ValueError> {
    let old = assigned(old);
    match info.mutability {
        Mutability::ReadOnly => Err(ValueError::Mutability(format!(
            "attribute `{label}` is readOnly"
        ))),
        Mutability::Immutable if !old.is_null() && old != "" => Err(ValueError::Mutability(
            format!("attribute `{label}` is immutable and cannot be changed"),
        )),
        _ => Ok(()),
    }
}

/// `v` with its unassigned members dropped; `null` if nothing is left.
fn assigned(v: Option<&Value>) -> Value {
    let mut v = v.cloned().unwrap_or(Value::Null);
    prune_value(&mut v);
    if is_empty(&v) { Value::Null } else { v }
}

/// Types and normalises a client's value for `info` (an array, or a single value that is
/// wrapped, for a multi-valued attribute). `Ok(None)`: nothing to store (see [`Write`]).
/// `label` is the attribute's path for messages.
pub fn check_attr(
    info: &AttrInfo,
    value: &Value,
    label: &dyn Display,
    write: Write,
) -> Result<Option<Value>, ValueError> {
    if value.is_null() {
        return Ok((write == Write::Patch).then_some(Value::Null));
    }
    if write == Write::Replace && info.mutability == Mutability::ReadOnly {
        return Ok(None);
    }
    if !info.multi_valued {
        if value.is_array() {
            return Err(ValueError::InvalidValue(format!(
                "attribute `{label}` is single-valued: an array was given"
            )));
        }
        return check_element(info, value, label, write);
    }
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.is_array() {
            return Err(ValueError::InvalidValue(format!(
                "attribute `{label}` takes an array of values, not of arrays"
            )));
        }
        out.extend(check_element(info, item, label, write)?);
    }
    Ok((write == Write::Patch || !out.is_empty()).then_some(Value::Array(out)))
}

/// Types and normalises one value of `info` (an element, for a multi-valued attribute). A
/// single-valued complex attribute with a `value` sub-attribute also takes a bare scalar,
/// stored as `{"value": scalar}` (Entra ID sends `"manager": "<id>"`).
pub fn check_element(
    info: &AttrInfo,
    value: &Value,
    label: &dyn Display,
    write: Write,
) -> Result<Option<Value>, ValueError> {
    if value.is_null() && write == Write::Replace {
        return Ok(None);
    }
    if info.attr_type != AttrType::Complex {
        return check_scalar(info, value, label).map(Some);
    }
    let wrapped;
    let members = match value {
        Value::Object(o) => o,
        Value::String(_) | Value::Number(_) | Value::Bool(_)
            if !info.multi_valued && info.sub("value").is_some() =>
        {
            wrapped = Map::from_iter([("value".to_string(), value.clone())]);
            &wrapped
        }
        _ => {
            return Err(ValueError::InvalidValue(format!(
                "attribute `{label}` is complex: a JSON object was expected"
            )));
        }
    };
    let mut out = Map::new();
    for (key, v) in members {
        let sub = info
            .sub(key)
            .ok_or_else(|| ValueError::UnknownSubAttribute(format!("{label}.{key}")))?;
        let sub_label = Dotted(label, &sub.name);
        if let Some(checked) = check_attr(sub, v, &sub_label, write)? {
            if out.contains_key(&sub.name) {
                return Err(ValueError::Duplicate(sub_label.to_string()));
            }
            out.insert(sub.name.clone(), checked);
        }
    }
    Ok((write == Write::Patch || !out.is_empty()).then_some(Value::Object(out)))
}

/// Types one non-complex value: string and reference take a JSON string, binary a base64
/// string, boolean a JSON boolean or `"true"`/`"false"` in any case (converted: Entra ID
/// sends `"False"`), integer an integral number, decimal a number, dateTime an RFC 3339
/// `xsd:dateTime` string (no leap second).
pub fn check_scalar(
    info: &AttrInfo,
    value: &Value,
    label: &dyn Display,
) -> Result<Value, ValueError> {
    let wrong = |expected: &str| {
        ValueError::InvalidValue(format!("attribute `{label}` must be {expected}"))
    };
    match info.attr_type {
        AttrType::String | AttrType::Reference => match value {
            Value::String(_) => Ok(value.clone()),
            _ => Err(wrong("a string")),
        },
        AttrType::Binary => match value {
            Value::String(s) if is_base64(s) => Ok(value.clone()),
            _ => Err(wrong("a base64-encoded string")),
        },
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(wrong("a boolean")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            _ => Err(wrong("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(wrong("a number")),
        },
        AttrType::DateTime => match value {
            Value::String(s) if crate::time::parse_rfc3339_millis(s).is_some() => Ok(value.clone()),
            _ => Err(wrong("an RFC 3339 date-time string")),
        },
        AttrType::Complex => Err(wrong("a JSON object")),
    }
}

/// RFC 4648 §4 base64: the standard alphabet, `=` padding optional, nothing else (no white
/// space, no URL-safe alphabet); the bits after the last byte are not checked.
pub fn is_base64(s: &str) -> bool {
    const BASE64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    BASE64.decode(s).is_ok()
}

/// Whether a value is unassigned (RFC 7643 §2.5): `null`, `[]` or `{}`.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Drops unassigned members and elements, depth first.
pub fn prune_value(v: &mut Value) {
    match v {
        Value::Object(m) => prune_map(m),
        Value::Array(items) => {
            items.iter_mut().for_each(prune_value);
            items.retain(|x| !is_empty(x));
        }
        _ => {}
    }
}

/// [`prune_value`] for an object's members.
pub fn prune_map(m: &mut Map<String, Value>) {
    m.values_mut().for_each(prune_value);
    m.retain(|_, v| !is_empty(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_is_unicode_aware() {
        assert_eq!(fold("ÉLODIE"), fold("élodie"));
        assert_eq!(fold("BJensen"), "bjensen");
        assert_ne!(fold("e"), fold("é"));
    }

    /// The ASCII shortcut folds every ASCII character as the char-wise fold does.
    #[test]
    fn the_ascii_fold_is_the_unicode_fold() {
        let all: String = (0u8..128).map(char::from).collect();
        let by_char: String = all.chars().flat_map(char::to_lowercase).collect();
        assert_eq!(fold(&all), by_char);
        assert_eq!(fold("User000001@Example.COM"), "user000001@example.com");
    }

    #[test]
    fn fold_eq_is_equality_of_the_folds_and_the_key_follows_it() {
        let words = [
            "",
            "a",
            "A",
            "ab",
            "aB",
            "ÉLODIE",
            "élodie",
            "Élodie",
            "e",
            "é",
            "İ",
            "i̇",
            "ß",
            "SS",
            "ss",
            "Σ",
            "σ",
            "ς",
            "K",
            "\u{212a}",
            "k",
            "x1@Example.COM",
            "x1@example.com",
        ];
        let string = crate::scim::tests::mock::attr("value", AttrType::String);
        let exact = AttrInfo {
            case_exact: true,
            ..crate::scim::tests::mock::attr("value", AttrType::String)
        };
        for a in words {
            for b in words {
                assert_eq!(fold_eq(a, b), fold(a) == fold(b), "{a:?} {b:?}");
                let (x, y) = (Value::from(a), Value::from(b));
                for info in [&string, &exact] {
                    if same_value(info, &x, &y) {
                        assert_eq!(
                            identity_key(info, &x),
                            identity_key(info, &y),
                            "{a:?} {b:?}"
                        );
                    }
                }
            }
        }
        assert!(!same_value(&exact, &Value::from("A"), &Value::from("a")));
    }

    #[test]
    fn a_key_index_keeps_the_order_of_insertion() {
        let mut index = KeyIndex::default();
        index.insert(Some("k".into()), 3);
        index.insert(None, 1);
        index.insert(Some("k".into()), 0);
        assert_eq!(index.candidates(Some("k")), &[3, 0]);
        assert_eq!(index.candidates(None), &[1]);
        assert!(index.candidates(Some("other")).is_empty());
    }

    #[test]
    fn base64_is_the_standard_alphabet_padding_optional() {
        for good in ["", "QUJD", "QUI=", "QUI", "QQ==", "QQ", "+/+/"] {
            assert!(is_base64(good), "{good}");
        }
        for bad in ["Q", "QU===", "not base64!", "QU JD", "-_-_", "QQ=x"] {
            assert!(!is_base64(bad), "{bad}");
        }
    }
}
