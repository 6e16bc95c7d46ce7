//! Login sessions for the authorization pages, kept in memory: a random session id in an
//! HttpOnly, SameSite=Lax cookie (Secure under https) maps to a CSRF token and, after login,
//! the user name. Only the SHA-256 of the id is kept, so a memory dump shows no usable id.
//!
//! In memory means a restart logs everyone out and several server instances do not share
//! sessions; both are acceptable for a login that lasts one authorization. A session is
//! created before login (so the login form has a CSRF token) and replaced by a new id at
//! login (no session fixation).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use rand::TryRng;

use crate::time::Timestamp;
use crate::token::TokenHash;

/// Name of the session cookie.
pub const COOKIE: &str = "scimgate_session";
/// A session before login lives an hour; after login, eight.
const ANONYMOUS_TTL: i64 = 3600;
const LOGGED_IN_TTL: i64 = 8 * 3600;
/// Above this many sessions, expired ones are dropped; far above, anonymous ones too.
const PRUNE_ABOVE: usize = 10_000;
const HARD_LIMIT: usize = 100_000;

/// One browser's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub csrf: String,
    pub user: Option<String>,
    expires_at: Timestamp,
}

/// A fresh 256-bit random value, base64url.
pub fn random_value() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Every live session of this server process.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<TokenHash, Session>>,
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live session with cookie value `id`.
    pub fn get(&self, id: &str, now: Timestamp) -> Option<Session> {
        let map = self.map();
        map.get(&TokenHash::of(id))
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    fn insert(&self, user: Option<String>, now: Timestamp) -> (String, Session) {
        let id = random_value();
        let ttl = if user.is_some() {
            LOGGED_IN_TTL
        } else {
            ANONYMOUS_TTL
        };
        let session = Session {
            csrf: random_value(),
            user,
            expires_at: now + ttl,
        };
        let mut map = self.map();
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, s| s.expires_at > now);
        }
        if map.len() > HARD_LIMIT {
            map.retain(|_, s| s.user.is_some());
        }
        map.insert(TokenHash::of(&id), session.clone());
        (id, session)
    }

    /// A new session before login; returns the cookie value and the session.
    pub fn start(&self, now: Timestamp) -> (String, Session) {
        self.insert(None, now)
    }

    /// End session `id` (sign out).
    pub fn end(&self, id: &str) {
        self.map().remove(&TokenHash::of(id));
    }

    /// Replace session `old` (if any) by a new logged-in one for `user`.
    pub fn login(&self, old: Option<&str>, user: &str, now: Timestamp) -> (String, Session) {
        if let Some(old) = old {
            self.map().remove(&TokenHash::of(old));
        }
        self.insert(Some(user.to_string()), now)
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
        assert_eq!(s.get(&id, 201), None, "the old id is gone");
        assert_eq!(s.get(&new_id, 201).unwrap().user.as_deref(), Some("alice"));
        assert_ne!(logged.csrf, anon.csrf);
        assert_eq!(s.get("guess", 201), None);
    }
}
