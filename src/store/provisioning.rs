//! The `provisioning_errors` table: SCIM requests an IdP will report as failed for a user
//! or group (see `monitor`), with the identifiers of the resource concerned and the SCIM
//! error — never a request body. Bounded per client: each insert keeps only the newest
//! [`MAX_PER_CLIENT`] rows of that client. A row's `notified_at` is set once a digest
//! naming it was delivered (`monitor::digest`); until then it is pending.

use rusqlite::{Row, params};

use super::{Result, Store, on_postgres};
use crate::time::Timestamp;

/// The most rows kept per client; older rows are dropped as new ones come in.
pub const MAX_PER_CLIENT: i64 = 10_000;

/// Text columns are cut to this many characters (a hostile IdP cannot grow the store
/// with one long `userName` or `detail`).
pub const MAX_TEXT: usize = 256;

/// One recorded provisioning error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProvisioningError {
    pub client_id: String,
    pub at: Timestamp,
    pub method: String,
    /// `Users`, `Groups`, or another SCIM endpoint (`Bulk`, …).
    pub resource: String,
    pub resource_id: Option<String>,
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    /// When a digest naming this error was delivered; `None`: not yet.
    pub notified_at: Option<Timestamp>,
}

impl ProvisioningError {
    /// The user or group it concerned, by the best name known: `userName`, `displayName`,
    /// `externalId`, then the id from the path.
    pub fn concerned(&self) -> Option<&str> {
        self.user_name
            .as_deref()
            .or(self.display_name.as_deref())
            .or(self.external_id.as_deref())
            .or(self.resource_id.as_deref())
    }
}

/// A client's provisioning errors that no delivered digest has named yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingErrors {
    pub client_id: String,
    /// When the oldest of them happened.
    pub oldest_at: Timestamp,
    pub count: u64,
    /// The newest row's id: a digest covers the rows up to it, not later ones.
    pub last_id: i64,
}

pub(super) fn cut(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(|s| match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => &s[..i],
        None => s,
    })
}

pub(super) const COLUMNS: &str = "client_id, at, method, resource, resource_id, user_name, external_id, \
    display_name, status, scim_type, detail";

fn row_to_error(r: &Row<'_>) -> rusqlite::Result<ProvisioningError> {
    Ok(ProvisioningError {
        client_id: r.get(0)?,
        at: r.get(1)?,
        method: r.get(2)?,
        resource: r.get(3)?,
        resource_id: r.get(4)?,
        user_name: r.get(5)?,
        external_id: r.get(6)?,
        display_name: r.get(7)?,
        status: u16::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
        scim_type: r.get(9)?,
        detail: r.get(10)?,
        notified_at: r.get(11)?,
    })
}

impl Store {
    /// Record `errors` in one transaction, then keep only the newest
    /// [`MAX_PER_CLIENT`] rows of each client concerned. Returns how many rows were
    /// dropped to stay within the bound.
    pub fn record_provisioning_errors(&self, errors: &[ProvisioningError]) -> Result<u64> {
        self.record_provisioning_errors_capped(errors, MAX_PER_CLIENT)
    }

    pub(crate) fn record_provisioning_errors_capped(
        &self,
        errors: &[ProvisioningError],
        cap: i64,
    ) -> Result<u64> {
        on_postgres!(self, pg => pg.record_provisioning_errors_capped(errors, cap));
        if errors.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            // A request by id names the resource only by its id: take the names it has in
            // the directory (a PATCH refused for `de08…` is about `anna.berg@…`).
            let mut add = tx.prepare_cached(&format!(
                "INSERT INTO provisioning_errors ({COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, \
                 COALESCE(?6, (SELECT substr(user_name, 1, {MAX_TEXT}) FROM scim_resources WHERE id = ?5)), \
                 COALESCE(?7, (SELECT substr(external_id, 1, {MAX_TEXT}) FROM scim_resources WHERE id = ?5)), \
                 COALESCE(?8, (SELECT substr(display_name, 1, {MAX_TEXT}) FROM scim_resources WHERE id = ?5)), \
                 ?9, ?10, ?11)"
            ))?;
            let mut clients: Vec<&str> = Vec::new();
            for e in errors {
                add.execute(params![
                    e.client_id,
                    e.at,
                    e.method,
                    e.resource,
                    cut(&e.resource_id),
                    cut(&e.user_name),
                    cut(&e.external_id),
                    cut(&e.display_name),
                    i64::from(e.status),
                    cut(&e.scim_type),
                    cut(&e.detail),
                ])?;
                if !clients.contains(&e.client_id.as_str()) {
                    clients.push(&e.client_id);
                }
            }
            let mut trim = tx.prepare_cached(
                "DELETE FROM provisioning_errors WHERE client_id = ?1 AND id <= \
                 (SELECT id FROM provisioning_errors WHERE client_id = ?1 \
                  ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )?;
            let mut dropped = 0u64;
            for c in clients {
                dropped += trim.execute(params![c, cap])? as u64;
            }
            Ok(dropped)
        })
    }

    /// Provisioning errors at or after `since`, of one client or all, oldest first.
    pub fn provisioning_errors(
        &self,
        client_id: Option<&str>,
        since: Timestamp,
    ) -> Result<Vec<ProvisioningError>> {
        on_postgres!(self, pg => pg.provisioning_errors(client_id, since));
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS}, notified_at FROM provisioning_errors \
                 WHERE at >= ?1 AND (?2 IS NULL OR client_id = ?2) ORDER BY at, id"
            ))?;
            let rows = stmt.query_map(params![since, client_id], row_to_error)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Per client, the provisioning errors no delivered digest has named yet.
    pub fn pending_provisioning_errors(&self) -> Result<Vec<PendingErrors>> {
        on_postgres!(self, pg => pg.pending_provisioning_errors());
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT client_id, MIN(at), COUNT(*), MAX(id) FROM provisioning_errors \
                 WHERE notified_at IS NULL GROUP BY client_id ORDER BY client_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(PendingErrors {
                    client_id: r.get(0)?,
                    oldest_at: r.get(1)?,
                    count: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    last_id: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The first `limit` of a client's pending errors up to row `last_id`, oldest first.
    pub fn pending_provisioning_errors_of(
        &self,
        client_id: &str,
        last_id: i64,
        limit: usize,
    ) -> Result<Vec<ProvisioningError>> {
        on_postgres!(self, pg => pg.pending_provisioning_errors_of(client_id, last_id, limit));
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS}, notified_at FROM provisioning_errors \
                 WHERE client_id = ?1 AND notified_at IS NULL AND id <= ?2 ORDER BY id LIMIT ?3"
            ))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![client_id, last_id, limit], row_to_error)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Mark a client's pending errors up to row `last_id` as told by a digest delivered at
    /// `at`; returns how many.
    pub fn mark_provisioning_errors_notified(
        &self,
        client_id: &str,
        last_id: i64,
        at: Timestamp,
    ) -> Result<u64> {
        on_postgres!(self, pg => pg.mark_provisioning_errors_notified(client_id, last_id, at));
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE provisioning_errors SET notified_at = ?3 \
                 WHERE client_id = ?1 AND notified_at IS NULL AND id <= ?2",
                params![client_id, last_id, at],
            )? as u64)
        })
    }

    /// Per client and hour (start, Unix seconds), how many provisioning errors happened at
    /// or after `since` (the `/ui` timeline's marks).
    pub fn provisioning_error_hours(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp, u64)>> {
        on_postgres!(self, pg => pg.provisioning_error_hours(since));
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT client_id, at - (at % 3600) AS hour, COUNT(*) FROM provisioning_errors \
                 WHERE at >= ?1 GROUP BY client_id, hour ORDER BY client_id, hour",
            )?;
            let rows = stmt.query_map([since], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Drop provisioning errors older than `before` (retention); returns how many.
    pub fn prune_provisioning_errors(&self, before: Timestamp) -> Result<u64> {
        on_postgres!(self, pg => pg.prune_provisioning_errors(before));
        self.write(|tx| {
            Ok(tx.execute("DELETE FROM provisioning_errors WHERE at < ?1", [before])? as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(client: &str, at: i64, user: &str) -> ProvisioningError {
        ProvisioningError {
            client_id: client.into(),
            at,
            method: "POST".into(),
            resource: "Users".into(),
            resource_id: None,
            user_name: Some(user.into()),
            external_id: None,
            display_name: None,
            status: 409,
            scim_type: Some("uniqueness".into()),
            detail: Some("userName is already taken".into()),
            notified_at: None,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn records_lists_by_client_and_since() {
        let (_d, store) = store();
        let rows = vec![
            error("a", 100, "u1"),
            error("b", 200, "u2"),
            error("a", 300, "u3"),
        ];
        assert_eq!(store.record_provisioning_errors(&rows).unwrap(), 0);
        let all = store.provisioning_errors(None, 0).unwrap();
        assert_eq!(all, rows.to_vec());
        let a = store.provisioning_errors(Some("a"), 0).unwrap();
        assert_eq!(a.len(), 2);
        let late = store.provisioning_errors(Some("a"), 200).unwrap();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].user_name.as_deref(), Some("u3"));
    }

    #[test]
    fn a_flood_keeps_only_the_newest_rows_of_that_client() {
        let (_d, store) = store();
        store
            .record_provisioning_errors_capped(&[error("b", 1, "other")], 5)
            .unwrap();
        let flood: Vec<_> = (0..20)
            .map(|i| error("a", 10 + i, &format!("u{i}")))
            .collect();
        assert_eq!(
            store.record_provisioning_errors_capped(&flood, 5).unwrap(),
            15
        );
        let a = store.provisioning_errors(Some("a"), 0).unwrap();
        let names: Vec<_> = a.iter().map(|e| e.user_name.clone().unwrap()).collect();
        assert_eq!(names, ["u15", "u16", "u17", "u18", "u19"]);
        assert_eq!(store.provisioning_errors(Some("b"), 0).unwrap().len(), 1);
    }

    #[test]
    fn long_values_are_cut_and_retention_prunes() {
        let (_d, store) = store();
        let mut e = error("a", 10, &"x".repeat(10_000));
        e.detail = Some("é".repeat(1000));
        store
            .record_provisioning_errors(&[e, error("a", 50, "kept")])
            .unwrap();
        let got = store.provisioning_errors(None, 0).unwrap();
        assert_eq!(got[0].user_name.as_ref().unwrap().chars().count(), MAX_TEXT);
        assert_eq!(got[0].detail.as_ref().unwrap().chars().count(), MAX_TEXT);
        assert_eq!(store.prune_provisioning_errors(20).unwrap(), 1);
        let got = store.provisioning_errors(None, 0).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].user_name.as_deref(), Some("kept"));
    }
}
