//! JSON text written by hand, for the few answers and log lines written on every request:
//! a lookup's `meta`, an introspection, a token response, a heartbeat line.
//!
//! serde_json writes a string by looking every byte up in its escape table and copying
//! between escapes; for the short, plain strings these answers hold (ids, dates, URLs,
//! scopes), that was most of the time of writing them (bench/RESULTS.md). [`push_str`]
//! checks a string in one vector loop and copies it whole; a string that needs escapes
//! still goes through serde_json. So every byte written here is what serde_json writes for
//! the same value, which each user's tests hold it to. Written by hand because serde_json
//! has no such fast path and a faster serializer crate would be a second JSON writer for
//! three small objects.

/// Append `s` as a JSON string, as serde_json writes it.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // Every byte looked at, no early exit: the compiler makes it a vector loop.
    let plain = !s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A JSON object written member by member, keys in the order given (the callers give them
/// in the order serde writes their structs: ascending).
#[derive(Debug)]
pub struct Object {
    out: Vec<u8>,
    empty: bool,
}

impl Object {
    /// An object whose text will take about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Object {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        Object { out, empty: true }
    }

    /// `"key":` (a key is a constant of ours: plain text).
    fn key(&mut self, key: &'static str) {
        debug_assert!(key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'));
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    pub fn str(&mut self, key: &'static str, value: &str) -> &mut Object {
        self.key(key);
        push_str(&mut self.out, value);
        self
    }

    pub fn int(&mut self, key: &'static str, value: i64) -> &mut Object {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub fn bool(&mut self, key: &'static str, value: bool) -> &mut Object {
        self.key(key);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// The object's text.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `push_str` writes is serde_json's own string, plain or escaped.
    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain",
            "https://scim.example.com/scim/v2/Users/0192",
            "q\"uote",
            "back\\slash",
            "new\nline",
            "\u{0}\u{1f}\u{7f}",
            "ünïcødé ✓ \u{2028}",
            "W/\"3\"",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn an_object_is_written_as_serde_json_writes_it() {
        let mut o = Object::with_capacity(8);
        o.bool("active", true)
            .int("exp", -5)
            .int("max", i64::MAX)
            .str("s", "a\"b")
            .bool("z", false);
        assert_eq!(
            o.finish(),
            serde_json::to_vec(&serde_json::json!({
                "active": true, "exp": -5, "max": i64::MAX, "s": "a\"b", "z": false
            }))
            .unwrap()
        );
        assert_eq!(Object::with_capacity(0).finish(), b"{}");
    }
}
