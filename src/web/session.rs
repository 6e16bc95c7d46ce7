//! Login sessions for the authorization and operator pages: a random session id in an
//! HttpOnly, SameSite=Lax cookie (Secure under https), mapped to a CSRF token and, after
//! login, the user name.
//!
//! A session before login holds **no server state**: its cookie value is `a.<issued
//! at>.<random>`, and its CSRF token is an HMAC of that value under a key kept in the
//! store (drawn by the first instance that starts, `store::sessions`). So a flood of
//! `GET /ui/login` costs nothing to keep, and can neither fill the store nor push out the
//! sessions of people signing in. Signed-in sessions are rows of the store (only the
//! SHA-256 of their ids, so a copy of the database shows no usable id); creating one takes
//! a right password, and expired ones are deleted at each sign-in. A new id is issued at
//! login (no session fixation).
//!
//! In the store means several server instances share sessions (a sign-in on one, the
//! consent on another) and a restart keeps them (issue 16).

use std::sync::Arc;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};

use crate::store::{Store, StoreError, WebSession};
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

/// The sessions: signed-in ones in the store, and the key of the anonymous ones.
#[derive(Debug)]
pub struct Sessions {
    key: Vec<u8>,
    store: Arc<Store>,
    /// Known-device marks, under a key derived from the same one.
    pub devices: super::device::DeviceMarks,
}

impl Sessions {
    /// Sessions kept in `store`, with the store's CSRF key for anonymous ones (drawn now if
    /// it has none). If the store cannot give it, a key of this process's own: anonymous
    /// sessions then hold on this instance only, and the log says so.
    pub fn new(store: Arc<Store>) -> Sessions {
        let key = match store.web_session_key(&random_value()) {
            Ok(k) => k.into_bytes(),
            Err(e) => {
                tracing::error!(error = %e, "no shared session key: sign-in pages work on this instance only");
                random_bytes().to_vec()
            }
        };
        Sessions {
            devices: super::device::DeviceMarks::new(&key),
            key,
            store,
        }
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
        match self.store.web_session(&TokenHash::of(id), now) {
            Ok(s) => s.map(|s| Session {
                csrf: s.csrf,
                user: Some(s.username),
                expires_at: s.expires_at,
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a session");
                None
            }
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
    pub fn end(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete_web_session(&TokenHash::of(id))
    }

    /// Replace session `old` (if any) by a new signed-in one for `user`, stored before
    /// this returns.
    pub fn login(
        &self,
        old: Option<&str>,
        user: &str,
        now: Timestamp,
    ) -> Result<(String, Session), StoreError> {
        let id = random_value();
        let session = Session {
            csrf: random_value(),
            user: Some(user.to_string()),
            expires_at: now + LOGGED_IN_TTL,
        };
        let stored = WebSession {
            csrf: session.csrf.clone(),
            username: user.to_string(),
            expires_at: session.expires_at,
        };
        let old = old.map(TokenHash::of);
        self.store
            .put_web_session(&TokenHash::of(&id), &stored, old.as_ref(), now)?;
        Ok((id, session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> (tempfile::TempDir, Sessions) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_or_create(dir.path().join("s.db")).unwrap());
        (dir, Sessions::new(store))
    }

    #[test]
    fn sessions_expire_and_login_replaces_the_id() {
        let (_dir, s) = sessions();
        let (id, anon) = s.start(100);
        assert_eq!(s.get(&id, 101), Some(anon.clone()));
        assert_eq!(s.get(&id, 100 + ANONYMOUS_TTL), None);
        let (new_id, logged) = s.login(Some(&id), "alice", 200).unwrap();
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
        let (_dir, s) = sessions();
        let (mine, session) = s.start(100);
        for i in 0..200_000 {
            s.start(100 + i % 10);
        }
        assert_eq!(
            s.store.web_session(&TokenHash::of(&mine), 200).unwrap(),
            None,
            "nothing stored before login"
        );
        assert_eq!(s.get(&mine, 200).unwrap().csrf, session.csrf, "still valid");
        // A forged value gets a CSRF token the forger cannot know; a tampered time is a
        // different value with a different token.
        let forged = mine.replacen("a.100.", "a.150.", 1);
        assert_ne!(s.get(&forged, 200).unwrap().csrf, session.csrf);
        let (_other_dir, other_store) = sessions();
        assert_ne!(other_store.get(&mine, 200).unwrap().csrf, session.csrf);
        // Another instance on the same store computes the same token.
        let same_store = Sessions::new(s.store.clone());
        assert_eq!(same_store.get(&mine, 200).unwrap().csrf, session.csrf);
        assert_eq!(s.get("a.100.short", 200), None);
        assert_eq!(s.get("a.999999.x", 200), None);
    }
}
