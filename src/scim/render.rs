//! A resource's answer written around its stored text. A document the SCIM service stored
//! in the store's current form ([`crate::store::DOC_FORM`]) is already its own default
//! projection, written with its keys in order: its full rendering is that text with `id`,
//! `groups` and `meta` added at their places among the keys. [`splice`] writes it so,
//! which the IdPs' lookup before each create (`filter=userName eq "…"`) uses instead of
//! parsing the document into a `Value`, projecting it and writing it out again (about
//! half of that request's own instructions; bench/RESULTS.md).
//!
//! Only the top level is read, by serde_json into borrowed slices: nothing below it is
//! copied or rebuilt, and the text is still checked to be JSON. Written by hand because no
//! crate inserts members into a JSON object's text; it is small, and its tests hold it to
//! the full rendering byte for byte.

use serde::Deserializer as _;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

/// `doc`, a JSON object whose keys ascend as `json::to_text` writes them, with the members
/// of `extra` (keys ascending, values JSON text) inserted at their places among its keys.
/// `None` when `doc` is not such an object (a key out of order, escaped, or one of
/// `extra`'s already there): the caller renders the resource in full instead.
pub fn splice(doc: &str, extra: &[(&str, &str)]) -> Option<String> {
    let members = top_level(doc)?;
    let ascending = members.windows(2).all(|w| w[0].0 < w[1].0);
    let clash = members
        .iter()
        .any(|(k, _)| extra.iter().any(|(e, _)| e == k));
    if !ascending || clash || !extra.windows(2).all(|w| w[0].0 < w[1].0) {
        return None;
    }
    let size = doc.len()
        + extra
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
    let mut out = String::with_capacity(size);
    out.push('{');
    let mut extra = extra.iter().peekable();
    let mut first = true;
    let mut put = |out: &mut String, key: &str, value: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        out.push_str(value);
    };
    for (key, value) in &members {
        while let Some((k, v)) = extra.next_if(|(k, _)| k < key) {
            put(&mut out, k, v);
        }
        put(&mut out, key, value.get());
    }
    for (k, v) in extra {
        put(&mut out, k, v);
    }
    out.push('}');
    Some(out)
}

/// The members of the JSON object `text`, in their order, keys and values borrowed; `None`
/// if `text` is not one JSON object, or a key holds an escape (it cannot be borrowed).
fn top_level(text: &str) -> Option<Vec<(&str, &RawValue)>> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(&'de str, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
            while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let members = (&mut de).deserialize_map(Members).ok()?;
    de.end().ok()?;
    Some(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_go_in_at_their_places_among_the_keys() {
        let doc = r#"{"active":true,"name":{"givenName":"B"},"userName":"b"}"#;
        let out = splice(doc, &[("groups", "[]"), ("id", "\"1\""), ("meta", "{}")]).unwrap();
        assert_eq!(
            out,
            r#"{"active":true,"groups":[],"id":"1","meta":{},"name":{"givenName":"B"},"userName":"b"}"#
        );
        // Before every key, after every key, and into an empty object.
        assert_eq!(
            splice(r#"{"b":1}"#, &[("a", "0")]).unwrap(),
            r#"{"a":0,"b":1}"#
        );
        assert_eq!(
            splice(r#"{"b":1}"#, &[("c", "2")]).unwrap(),
            r#"{"b":1,"c":2}"#
        );
        assert_eq!(splice("{}", &[("id", "\"x\"")]).unwrap(), r#"{"id":"x"}"#);
        assert_eq!(splice(r#"{"b":1}"#, &[]).unwrap(), r#"{"b":1}"#);
    }

    #[test]
    fn text_it_cannot_vouch_for_is_refused() {
        let id = [("id", "\"1\"")];
        for doc in [
            r#"{"b":1,"a":2}"#,             // keys out of order
            r#"{"a":1,"a":2}"#,             // a key twice
            r#"{"id":"0","userName":"b"}"#, // already has an added key
            r#"{"user\u004eame":"b"}"#,     // an escaped key
            r#"[1]"#,
            r#"{"a":1} {}"#,
            r#"{"a":tru}"#,
            "",
        ] {
            assert_eq!(splice(doc, &id), None, "{doc}");
        }
        assert_eq!(splice("{}", &[("b", "1"), ("a", "0")]), None);
    }
}
