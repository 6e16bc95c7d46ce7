//! Login sessions for the authorization and operator pages: a random session id in an
//! HttpOnly, SameSite=Lax cookie (Secure under https), mapped to a CSRF token and, after
//! login, the user name.
//!
//! A session before login holds **no server state**: its cookie value is `a.<issued
//! at>.<random>`, and its CSRF token is an HMAC of that value under a key the process
//! draws at start. So a flood of `GET /ui/login` costs nothing to keep, and can neither
//! fill memory nor push out the sessions of people signing in. Signed-in sessions are kept
//! in an LRU map of at most [`CAPACITY`] (only the SHA-256 of their ids, so a memory dump
//! shows no usable id); reaching them takes a right password. A new id is issued at login
//! (no session fixation).
//!
//! In memory means a restart logs everyone out and several server instances do not share
//! sessions; both are acceptable for a login that lasts one authorization.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use lru::LruCache;

use crate::time::Timestamp;
use crate::token::TokenHash;

/// Name of the session cookie.
pub const COOKIE: &str = "scimgate_session";

/// The session cookie holding `id`, scoped to `path` (`/oauth2` for the authorization
/// pages, `/ui` for the operator pages, so neither sees the other's): HttpOnly,
/// SameSite=Lax, and Secure when the server is reached over HTTPS.
pub fn cookie(path: &'static str, id: String, secure: bool) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(COOKIE, id)
        .path(path)
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .secure(secure)
        .finish()
}
/// A session before login lives an hour; after login, eight.
const ANONYMOUS_TTL: i64 = 3600;
const LOGGED_IN_TTL: i64 = 8 * 3600;
/// Signed-in sessions kept at most (the least recently used go first).
pub const CAPACITY: usize = 100_000;
const ANONYMOUS_PREFIX: &str = "a.";

/// One browser's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub csrf: String,
    pub user: Option<String>,
    expires_at: Timestamp,
}

/// A fresh 256-bit random value, base64url.
pub fn random_value() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes())
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    crate::token::os_random(&mut bytes);
    bytes
}

/// Every signed-in session of this server process, and the key of the anonymous ones.
#[derive(Debug)]
pub struct Sessions {
    key: [u8; 32],
    map: Mutex<LruCache<TokenHash, Session>>,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions {
            key: random_bytes(),
            map: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).expect("non-zero"),
            )),
        }
    }
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, LruCache<TokenHash, Session>> {
        crate::sync::lock(&self.map)
    }

    /// The CSRF token of anonymous session `id`.
    fn anonymous_csrf(&self, id: &str) -> String {
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The live session with cookie value `id`.
    pub fn get(&self, id: &str, now: Timestamp) -> Option<Session> {
        if let Some(rest) = id.strip_prefix(ANONYMOUS_PREFIX) {
            let (issued, random) = rest.split_once('.')?;
            let issued: Timestamp = issued.parse().ok()?;
            if random.len() != 43 || issued > now + 60 {
                return None;
            }
            let expires_at = issued + ANONYMOUS_TTL;
            return (expires_at > now).then(|| Session {
                csrf: self.anonymous_csrf(id),
                user: None,
                expires_at,
            });
        }
        let mut map = self.map();
        let hash = TokenHash::of(id);
        match map.get(&hash) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.pop(&hash);
                None
            }
            None => None,
        }
    }

    /// A new session before login; returns the cookie value and the session. Nothing is
    /// stored.
    pub fn start(&self, now: Timestamp) -> (String, Session) {
        let id = format!("{ANONYMOUS_PREFIX}{now}.{}", random_value());
        let session = Session {
            csrf: self.anonymous_csrf(&id),
            user: None,
            expires_at: now + ANONYMOUS_TTL,
        };
        (id, session)
    }

    /// End session `id` (sign out).
    pub fn end(&self, id: &str) {
        self.map().pop(&TokenHash::of(id));
    }

    /// Replace session `old` (if any) by a new signed-in one for `user`.
    pub fn login(&self, old: Option<&str>, user: &str, now: Timestamp) -> (String, Session) {
        let mut map = self.map();
        if let Some(old) = old {
            map.pop(&TokenHash::of(old));
        }
        let id = random_value();
        let session = Session {
            csrf: random_value(),
            user: Some(user.to_string()),
            expires_at: now + LOGGED_IN_TTL,
        };
        map.put(TokenHash::of(&id), session.clone());
        (id, session)
    }

    /// Signed-in sessions kept now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no signed-in session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_login_replaces_the_id() {
        let s = Sessions::default();
        let (id, anon) = s.start(100);
        assert_eq!(s.get(&id, 101), Some(anon.clone()));
        assert_eq!(s.get(&id, 100 + ANONYMOUS_TTL), None);
        let (new_id, logged) = s.login(Some(&id), "alice", 200);
        assert_ne!(new_id, id);
        assert_eq!(
            s.get(&id, 201).unwrap().user,
            None,
            "the pre-login id never becomes signed in (no fixation)"
        );
        assert_eq!(s.get(&new_id, 201).unwrap().user.as_deref(), Some("alice"));
        assert_ne!(logged.csrf, anon.csrf);
        assert_eq!(s.get("guess", 201), None);
    }

    /// Regression: a flood of anonymous sessions (GET /ui/login) reached the hard limit
    /// and dropped every anonymous session, breaking sign-ins in progress.
    #[test]
    fn anonymous_sessions_hold_no_state_and_cannot_be_forged() {
        let s = Sessions::default();
        let (mine, session) = s.start(100);
        for i in 0..200_000 {
            s.start(100 + i % 10);
        }
        assert!(s.is_empty(), "nothing stored before login");
        assert_eq!(s.get(&mine, 200).unwrap().csrf, session.csrf, "still valid");
        // A forged value gets a CSRF token the forger cannot know; a tampered time is a
        // different value with a different token.
        let forged = mine.replacen("a.100.", "a.150.", 1);
        assert_ne!(s.get(&forged, 200).unwrap().csrf, session.csrf);
        let other_process = Sessions::default();
        assert_ne!(other_process.get(&mine, 200).unwrap().csrf, session.csrf);
        assert_eq!(s.get("a.100.short", 200), None);
        assert_eq!(s.get("a.999999.x", 200), None);
    }
}
