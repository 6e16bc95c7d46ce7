//! The `web_sessions` table: signed-in sessions of the authorization and operator pages,
//! shared by every server instance on the store (src/web/session.rs decides what a session
//! is; this file only keeps them). Only the SHA-256 of a session id is stored. A row is
//! written at sign-in, which takes a right password, and expired rows are deleted at each
//! sign-in, so the table holds at most the sign-ins of one session lifetime.
//!
//! Also the key of the anonymous sessions' CSRF tokens ([`Store::web_session_key`]): drawn by
//! the first instance that starts, kept in `meta`, so every instance computes the same.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, on_postgres};
use crate::time::Timestamp;
use crate::token::TokenHash;

/// The `meta` key of the anonymous sessions' CSRF key (base64url of 32 bytes).
pub const SESSION_KEY: &str = "web_session_key";

/// A stored signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub csrf: String,
    pub username: String,
    pub expires_at: Timestamp,
}

impl Store {
    /// The live session whose id hashes to `id`.
    pub fn web_session(&self, id: &TokenHash, now: Timestamp) -> Result<Option<WebSession>> {
        on_postgres!(self, pg => pg.web_session(id, now));
        self.read_point(|c| {
            Ok(c.prepare_cached(
                "SELECT csrf, username, expires_at FROM web_sessions \
                 WHERE id_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![&id.0[..], now], |r| {
                Ok(WebSession {
                    csrf: r.get(0)?,
                    username: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    /// Store session `id` (a sign-in), ending `replaces` (the session it replaces) and
    /// deleting every expired one, in one transaction.
    pub fn put_web_session(
        &self,
        id: &TokenHash,
        session: &WebSession,
        replaces: Option<&TokenHash>,
        now: Timestamp,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.put_web_session(id, session, replaces, now));
        self.write(|tx| {
            tx.execute("DELETE FROM web_sessions WHERE expires_at <= ?1", [now])?;
            if let Some(old) = replaces {
                tx.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [&old.0[..]])?;
            }
            tx.execute(
                "INSERT INTO web_sessions (id_hash, csrf, username, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    &id.0[..],
                    session.csrf,
                    session.username,
                    session.expires_at
                ],
            )?;
            Ok(())
        })
    }

    /// End session `id` (sign-out); nothing if there is none.
    pub fn delete_web_session(&self, id: &TokenHash) -> Result<()> {
        on_postgres!(self, pg => pg.delete_web_session(id));
        self.write(|tx| {
            tx.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [&id.0[..]])?;
            Ok(())
        })
    }

    /// The anonymous sessions' CSRF key: the stored one, or `fresh` stored now if there is
    /// none yet (the first instance to start draws it). Not audited: no operator chose it.
    pub fn web_session_key(&self, fresh: &str) -> Result<String> {
        on_postgres!(self, pg => pg.web_session_key(fresh));
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
                params![SESSION_KEY, fresh],
            )?;
            Ok(tx.query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [SESSION_KEY],
                |r| r.get(0),
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::stores;

    #[test]
    fn sessions_are_kept_until_they_expire_or_end() {
        for t in stores("web_sessions") {
            let b = t.backend;
            let s = WebSession {
                csrf: "c1".into(),
                username: "alice".into(),
                expires_at: 1_000,
            };
            let (one, two) = (TokenHash::of("one"), TokenHash::of("two"));
            t.put_web_session(&one, &s, None, 100).unwrap();
            assert_eq!(t.web_session(&one, 999).unwrap().as_ref(), Some(&s), "{b}");
            assert_eq!(t.web_session(&one, 1_000).unwrap(), None, "{b}: expired");
            // A sign-in replacing `one` ends it.
            t.put_web_session(&two, &s, Some(&one), 200).unwrap();
            assert_eq!(t.web_session(&one, 300).unwrap(), None, "{b}");
            assert!(t.web_session(&two, 300).unwrap().is_some(), "{b}");
            // The next sign-in after expiry deletes the expired rows.
            t.put_web_session(&one, &s, None, 2_000).unwrap();
            t.delete_web_session(&one).unwrap();
            t.delete_web_session(&one).unwrap();
            assert_eq!(t.web_session(&one, 300).unwrap(), None, "{b}");
            assert_eq!(
                t.web_session(&two, 300).unwrap(),
                None,
                "{b}: pruned at 2000"
            );
        }
    }

    #[test]
    fn the_first_key_stays() {
        for t in stores("session_key") {
            let first = t.web_session_key("k1").unwrap();
            assert_eq!(first, "k1", "{}", t.backend);
            assert_eq!(t.web_session_key("k2").unwrap(), "k1", "{}", t.backend);
        }
    }
}
