//! The `meta` table: settings that live with the data, shared by the server and every
//! `config` process — the tool password's argon2id hash and the token-lifetime policy.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, Store, audit, on_postgres};
use crate::model::NewAuditEvent;
use crate::time::Timestamp;

/// Key of the tool password's argon2id hash.
pub const TOOL_PASSWORD_KEY: &str = "tool_password_hash";
/// Key of the longest lifetime any token may get, in seconds.
pub const MAX_TOKEN_LIFETIME_KEY: &str = "max_token_lifetime";

fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

impl Store {
    /// A meta value.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        on_postgres!(self, pg => pg.meta(key));
        self.read(|c| get(c, key))
    }

    /// Set a meta value.
    pub fn set_meta(
        &self,
        key: &str,
        value: &str,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.set_meta(key, value, now, audit));
        self.write(|tx| {
            audit::append(tx, audit, now)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// Set a meta value only if it is not set yet; `false` if it already was.
    pub fn set_meta_if_absent(
        &self,
        key: &str,
        value: &str,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        on_postgres!(self, pg => pg.set_meta_if_absent(key, value, now, audit));
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
                params![key, value],
            )?;
            if n == 1 {
                audit::append(tx, audit, now)?;
            }
            Ok(n == 1)
        })
    }
}
