//! Known devices (OWASP's "device cookies"): after a right password, the browser gets a
//! signed mark naming the account; a sign-in that presents a valid mark for the account it
//! names is checked in a lane of its own, apart from everyone else's attempts.
//!
//! Why: sign-ins are argon2 verifications, run a few at a time with a bounded queue
//! ([`crate::sync::Gate`]). One address holds at most two places in it, but wrong
//! passwords sent from many addresses at once (or from the owner's own address, behind
//! the same NAT) can keep it full, and the owner's right password was then answered 503
//! or 429. With a mark it waits in the known devices' queue, which only people who once
//! typed a right password can enter, and the per-address back-off (someone else's
//! failures) does not apply to it. Its own failures count against the mark: after
//! `login_max_failures` wrong passwords with one mark, that mark backs off like an
//! address, so a stolen mark buys no guesses.
//!
//! A mark is `d1.<issued at>.<random id>.<HMAC>`; the HMAC covers the account's name
//! (ASCII-folded, as accounts are matched), the time and the id, under a key derived from
//! the store's session key, so every instance on the store checks the same marks and
//! nothing is stored. It holds for [`TTL`] and is renewed at each sign-in. It is only a
//! place in a queue: without the password it opens nothing.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};

use crate::time::Timestamp;

/// Name of the cookie holding the mark.
pub const COOKIE: &str = "scimgate_device";
/// How long a mark holds: 90 days after the sign-in that issued it.
pub const TTL: i64 = 90 * 86_400;
const PREFIX: &str = "d1.";
/// Length of a base64url SHA-256 HMAC and of a 256-bit random id.
const B64_32: usize = 43;

type HmacSha256 = Hmac<sha2::Sha256>;

/// Issues and checks marks.
#[derive(Debug, Clone)]
pub struct DeviceMarks {
    key: Vec<u8>,
}

/// A valid mark presented with a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The mark's random id: its key in the sign-in gate and throttle.
    pub id: String,
}

impl Mark {
    /// The mark's key in the sign-in throttle.
    pub fn throttle_key(&self) -> String {
        format!("login-device:{}", self.id)
    }
}

impl DeviceMarks {
    /// Marks under a key derived from `session_key` (kept apart from the CSRF tokens made
    /// with the same key by the message's prefix).
    pub fn new(session_key: &[u8]) -> DeviceMarks {
        let mut mac = HmacSha256::new_from_slice(session_key).expect("HMAC takes any key length");
        mac.update(b"scimgate known-device marks v1");
        DeviceMarks {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, username: &str, issued: &str, id: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in [username.to_ascii_lowercase().as_str(), issued, id] {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        mac
    }

    /// A new mark for `username`, signed in at `now`.
    pub fn issue(&self, username: &str, now: Timestamp) -> String {
        let id = super::session::random_value();
        let issued = now.to_string();
        let tag = self.mac(username, &issued, &id).finalize().into_bytes();
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag);
        format!("{PREFIX}{issued}.{id}.{tag}")
    }

    /// The mark in cookie value `value`, if it was issued here for `username` and holds
    /// at `now`.
    pub fn check(&self, value: &str, username: &str, now: Timestamp) -> Option<Mark> {
        let mut parts = value.strip_prefix(PREFIX)?.split('.');
        let (issued, id, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || id.len() != B64_32 || tag.len() != B64_32 {
            return None;
        }
        let at: Timestamp = issued.parse().ok()?;
        if at > now + 60 || now - at >= TTL {
            return None;
        }
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        self.mac(username, issued, id)
            .verify_slice(&tag)
            .ok()
            .map(|()| Mark { id: id.to_string() })
    }
}

/// The cookie holding `mark`: sent to every path (the operator pages and the
/// authorization pages both sign in), HttpOnly, SameSite=Lax, Secure over HTTPS.
pub fn cookie(mark: String, secure: bool) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(COOKIE, mark)
        .path("/")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(TTL))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_holds_for_its_account_only_and_only_as_issued() {
        let marks = DeviceMarks::new(b"the store's session key");
        let mark = marks.issue("Alice", 1_000);
        let found = marks.check(&mark, "alice", 1_001).expect("valid");
        assert_eq!(found.id.len(), B64_32);
        assert_eq!(marks.check(&mark, "ALICE", 1_000 + TTL - 1), Some(found));
        // Another account, an expired mark, a time from the future.
        assert_eq!(marks.check(&mark, "bob", 1_001), None);
        assert_eq!(marks.check(&mark, "alice", 1_000 + TTL), None);
        assert_eq!(marks.check(&mark, "alice", 900), None);
        // Anything changed, or another key (another store).
        let later = mark.replacen("d1.1000.", "d1.1001.", 1);
        assert_eq!(marks.check(&later, "alice", 1_002), None);
        let mut bytes = mark.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(marks.check(&tampered, "alice", 1_001), None);
        let other = DeviceMarks::new(b"another store's key");
        assert_eq!(other.check(&mark, "alice", 1_001), None);
        for junk in ["", "d1.", "d1.1000", "d1.x.y.z", &format!("{mark}.more")] {
            assert_eq!(marks.check(junk, "alice", 1_001), None, "{junk}");
        }
        // Each sign-in gets a mark of its own.
        assert_ne!(marks.issue("alice", 1_000), mark);
    }
}
