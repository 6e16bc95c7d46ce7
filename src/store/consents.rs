//! The `consents` table: which scopes an end user allowed a client on the consent page, so
//! the page is shown once per (user, client, scopes). `config revoke-consent` deletes rows.

use rusqlite::params;

use super::{Result, Store, audit, on_postgres};
use crate::model::{NewAuditEvent, Scope, scopes_to_string};
use crate::time::Timestamp;

impl Store {
    /// Whether `username` has allowed `client_id` exactly these `scopes` (canonical order).
    pub fn has_consent(&self, username: &str, client_id: &str, scopes: &[Scope]) -> Result<bool> {
        if !super::can_name_a_row(username) || !super::can_name_a_row(client_id) {
            return Ok(false);
        }
        on_postgres!(self, pg => pg.has_consent(username, client_id, scopes));
        self.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS(SELECT 1 FROM consents WHERE username = ?1 AND client_id = ?2 \
                 AND scopes = ?3)",
                params![username, client_id, scopes_to_string(scopes)],
                |r| r.get(0),
            )?)
        })
    }

    /// Remember that `username` allowed `client_id` these `scopes`.
    pub fn insert_consent(
        &self,
        username: &str,
        client_id: &str,
        scopes: &[Scope],
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.insert_consent(username, client_id, scopes, now, audit));
        self.write(|tx| {
            tx.execute(
                "INSERT INTO consents (username, client_id, scopes, granted_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET granted_at = excluded.granted_at",
                params![username, client_id, scopes_to_string(scopes), now],
            )?;
            audit::append(tx, audit, now)
        })
    }

    /// Forget the consents of `username` (for one client, or all); returns how many.
    /// The audit event is written only when something was deleted.
    pub fn delete_consents(
        &self,
        username: &str,
        client_id: Option<&str>,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<usize> {
        on_postgres!(self, pg => pg.delete_consents(username, client_id, now, audit));
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM consents WHERE username = ?1 AND (?2 IS NULL OR client_id = ?2)",
                params![username, client_id],
            )?;
            if n > 0 {
                audit::append(tx, audit, now)?;
            }
            Ok(n)
        })
    }
}
