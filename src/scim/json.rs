//! JSON for SCIM: values written as text ([`to_text`]), and strict parsing of request
//! bodies ([`from_slice_strict`]): like `serde_json::from_slice` into a `Value`, but
//! an object with the same key twice is an error. serde_json keeps the last value of a
//! repeated key silently, so `{"userName": "a", "userName": "b"}` would be read as "b"
//! although RFC 8259 §4 leaves such input undefined and docs/scim.md promises 400. The
//! nesting limit is serde_json's own (128).

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// `value` (a `Value`, or a struct of strings such as a resource's `meta`) as JSON text.
/// `Value::to_string` goes through `Display`, which writes through a formatter and takes
/// several times as long (bench/RESULTS.md); every SCIM answer and every stored document
/// is written this way.
pub fn to_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Writing a `Value` or such a struct into memory cannot fail: its keys are strings,
    // its numbers finite.
    serde_json::to_string(value).unwrap_or_default()
}

/// Parse `body` as one JSON value; a repeated key in any object is an error.
pub fn from_slice_strict(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(Strict)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key \"{}\" appears twice in one object",
                    crate::text::printable(&key, 64)
                )));
            }
            let value = map.next_value_seed(Strict)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_reads_and_refuses_repeated_keys() {
        let text =
            br#"{"a": [1, -2, 3.5, true, null, "x"], "b": {"c": {}}, "d": 18446744073709551615}"#;
        assert_eq!(
            from_slice_strict(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        let err = from_slice_strict(br#"{"userName": "a", "userName": "b"}"#).unwrap_err();
        assert!(
            err.to_string().contains("\"userName\" appears twice"),
            "{err}"
        );
        let nested = br#"{"name": {"givenName": "a", "givenName": "b"}}"#;
        assert!(from_slice_strict(nested).is_err());
        assert!(
            from_slice_strict(br#"{"a": 1} {"b": 2}"#).is_err(),
            "trailing data"
        );
        // Keys differing only in case are different JSON keys (the schema layer decides).
        assert!(from_slice_strict(br#"{"a": 1, "A": 2}"#).is_ok());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(
            from_slice_strict(deep.as_bytes()).is_err(),
            "nesting is bounded"
        );
    }
}
