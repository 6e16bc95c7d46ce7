//! PostgreSQL bodies of `store::sessions`: signed-in web sessions shared by every instance,
//! and the anonymous sessions' CSRF key.

use super::{Postgres, get};
use crate::store::Result;
use crate::store::sessions::{SESSION_KEY, WebSession};
use crate::time::Timestamp;
use crate::token::TokenHash;

impl Postgres {
    pub fn web_session(&self, id: &TokenHash, now: Timestamp) -> Result<Option<WebSession>> {
        self.read(|db| {
            db.query_opt(
                "SELECT csrf, username, expires_at FROM web_sessions \
                 WHERE id_hash = $1 AND expires_at > $2",
                &[&&id.0[..], &now],
            )?
            .map(|r| {
                Ok(WebSession {
                    csrf: get(&r, 0)?,
                    username: get(&r, 1)?,
                    expires_at: get(&r, 2)?,
                })
            })
            .transpose()
        })
    }

    pub fn put_web_session(
        &self,
        id: &TokenHash,
        session: &WebSession,
        replaces: Option<&TokenHash>,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM web_sessions WHERE expires_at <= $1", &[&now])?;
            if let Some(old) = replaces {
                tx.execute(
                    "DELETE FROM web_sessions WHERE id_hash = $1",
                    &[&&old.0[..]],
                )?;
            }
            tx.execute(
                "INSERT INTO web_sessions (id_hash, csrf, username, expires_at) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    &&id.0[..],
                    &session.csrf,
                    &session.username,
                    &session.expires_at,
                ],
            )?;
            Ok(())
        })
    }

    pub fn delete_web_session(&self, id: &TokenHash) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM web_sessions WHERE id_hash = $1", &[&&id.0[..]])?;
            Ok(())
        })
    }

    pub fn web_session_key(&self, fresh: &str) -> Result<String> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&SESSION_KEY, &fresh],
            )?;
            get(
                &tx.query_one("SELECT value FROM meta WHERE key = $1", &[&SESSION_KEY])?,
                0,
            )
        })
    }
}
