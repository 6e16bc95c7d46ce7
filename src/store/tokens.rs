//! The `tokens` table: every access token, refresh token and authorization code, by
//! SHA-256 hash only. Rows are never deleted; revocation sets `revoked_at`.

use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{Result, Store, StoreError, audit};
use crate::model::{
    IssuedVia, NewAuditEvent, Scope, TokenRecord, scopes_from_str, scopes_to_string,
};
use crate::time::Timestamp;
use crate::token::{ParsedToken, TokenHash, TokenId, TokenKind};

/// A token record about to be inserted.
#[derive(Debug, Clone)]
pub struct NewTokenRecord {
    pub id: TokenId,
    pub hash: TokenHash,
    pub kind: TokenKind,
    pub client_id: String,
    pub subject: String,
    pub scopes: Vec<Scope>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub issued_via: IssuedVia,
    pub family_id: Option<String>,
    pub parent_id: Option<String>,
    pub label: Option<String>,
}

/// Which tokens `list-tokens` shows.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub client_id: Option<String>,
    /// Only live tokens expiring before this time.
    pub expiring_before: Option<Timestamp>,
    /// Include revoked and expired tokens (otherwise only live ones).
    pub include_inactive: bool,
    /// Include authorization codes (normally hidden: they live 60 s).
    pub include_codes: bool,
    pub limit: Option<usize>,
}

/// What a revocation found.
#[derive(Debug, Clone, PartialEq)]
pub enum RevokeOutcome {
    /// Revoked now.
    Revoked(TokenRecord),
    /// It was already revoked (at `revoked_at`); nothing changed.
    AlreadyRevoked(TokenRecord),
}

pub(super) const COLUMNS: &str = "id, kind, client_id, subject, scopes, issued_at, expires_at, revoked_at, \
    revoked_reason, issued_via, family_id, parent_id, last_used_at, last_used_ip, use_count, label";
/// Tokens living at most this long (seconds) are not in the partial index
/// `tokens_warnable` (schema.sql, migration 5, which spells the same number), so the
/// monitor's expiry scan never reads them: expiry warnings are for long-lived credentials,
/// and warning leads shorter than this are refused (monitor settings).
pub const WARNABLE_MIN_LIFETIME: i64 = 3600;

/// The monitor's expiry scan, after `SELECT columns`. Its first two terms repeat the
/// partial index `tokens_warnable`'s condition word for word, so that SQLite may use it.
const DUE_FOR_WARNING: &str = "FROM tokens \
     WHERE revoked_at IS NULL AND expires_at - issued_at > 3600 \
     AND expires_at > ?1 AND expires_at <= ?2 AND expires_at - issued_at > ?3 \
     AND kind != 'authorization_code' ORDER BY expires_at, id";

/// The token a rotation issued to replace `?1` (read through the partial index
/// `tokens_parent`).
const REPLACEMENT_OF: &str =
    "SELECT id FROM tokens WHERE parent_id = ?1 AND issued_via = 'rotate' LIMIT 1";

/// How many columns [`COLUMNS`] names.
const COLUMN_COUNT: usize = 16;

fn bad(what: &str, v: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("bad {what} `{v}`").into(),
    )
}

pub(super) fn row_to_token(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let kind: String = r.get(1)?;
    let scopes: String = r.get(4)?;
    let via: String = r.get(9)?;
    Ok(TokenRecord {
        id: TokenId::from_stored(r.get(0)?),
        kind: TokenKind::from_name(&kind).ok_or_else(|| bad("kind", &kind))?,
        client_id: r.get(2)?,
        subject: r.get(3)?,
        scopes: scopes_from_str(&scopes).map_err(|_| bad("scopes", &scopes))?,
        issued_at: r.get(5)?,
        expires_at: r.get(6)?,
        revoked_at: r.get(7)?,
        revoked_reason: r.get(8)?,
        issued_via: IssuedVia::from_name(&via).ok_or_else(|| bad("issued_via", &via))?,
        family_id: r.get(10)?,
        parent_id: r.get(11)?,
        last_used_at: r.get(12)?,
        last_used_ip: r.get(13)?,
        use_count: r.get(14)?,
        label: r.get(15)?,
    })
}

pub(super) fn insert_token(conn: &Connection, t: &NewTokenRecord) -> Result<()> {
    // Cached: every issued token and code goes through here (the group commit, the grants).
    conn.prepare_cached(
        "INSERT INTO tokens (id, hash, kind, client_id, subject, scopes, issued_at, expires_at, \
         issued_via, family_id, parent_id, label) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        t.id.as_str(),
        &t.hash.0[..],
        t.kind.as_str(),
        t.client_id,
        t.subject,
        scopes_to_string(&t.scopes),
        t.issued_at,
        t.expires_at,
        t.issued_via.as_str(),
        t.family_id,
        t.parent_id,
        t.label,
    ])?;
    Ok(())
}

fn token_by_id(conn: &Connection, id: &TokenId) -> Result<Option<TokenRecord>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1"))?
        .query_row([id.as_str()], row_to_token)
        .optional()?)
}

/// The token a presented string names: looked up by its id (the selector, or for a legacy
/// token the prefix of its hash), then the stored hash compared with the presented one in
/// constant time. `None` for an unknown id and for a right id with a wrong secret alike.
pub(super) fn token_by_value(
    conn: &Connection,
    presented: &ParsedToken,
) -> Result<Option<TokenRecord>> {
    // Prepared once per connection: this is the bearer check of every SCIM request.
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS}, hash FROM tokens WHERE id = ?1"))?
        .query_row([presented.id.as_str()], |r| {
            let stored = r.get_ref(COLUMN_COUNT)?.as_blob()?;
            let matches =
                <[u8; 32]>::try_from(stored).is_ok_and(|h| TokenHash(h).ct_eq(&presented.hash));
            matches.then(|| row_to_token(r)).transpose()
        })
        .optional()?;
    Ok(found.flatten())
}

fn revoke_one(
    conn: &Connection,
    id: &TokenId,
    reason: &str,
    now: Timestamp,
) -> Result<Option<RevokeOutcome>> {
    let Some(rec) = token_by_id(conn, id)? else {
        return Ok(None);
    };
    if rec.revoked_at.is_some() {
        return Ok(Some(RevokeOutcome::AlreadyRevoked(rec)));
    }
    conn.execute(
        "UPDATE tokens SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1",
        params![id.as_str(), now, reason],
    )?;
    let rec = token_by_id(conn, id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    Ok(Some(RevokeOutcome::Revoked(rec)))
}

impl Store {
    /// Insert one token record with its audit event; committed when this returns.
    pub fn insert_token(&self, t: &NewTokenRecord, audit: &NewAuditEvent) -> Result<()> {
        self.write(|tx| {
            insert_token(tx, t)?;
            audit::append(tx, audit, t.issued_at)
        })
    }

    /// Insert a batch of token records in one transaction (one fsync for many tokens).
    pub fn insert_tokens(&self, batch: &[NewTokenRecord]) -> Result<()> {
        self.write(|tx| {
            for t in batch {
                insert_token(tx, t)?;
            }
            Ok(())
        })
    }

    /// A token by its public id.
    pub fn token(&self, id: &TokenId) -> Result<Option<TokenRecord>> {
        self.read(|c| token_by_id(c, id))
    }

    /// The token a presented string names, if its secret matches (the bearer lookup).
    pub fn token_by_value(&self, presented: &ParsedToken) -> Result<Option<TokenRecord>> {
        self.read(|c| token_by_value(c, presented))
    }

    /// Tokens matching `filter`, soonest expiry first for live listings, newest first
    /// otherwise.
    pub fn list_tokens(&self, filter: &TokenFilter, now: Timestamp) -> Result<Vec<TokenRecord>> {
        let mut sql = format!("SELECT {COLUMNS} FROM tokens WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if !filter.include_inactive || filter.expiring_before.is_some() {
            // Matches the partial index tokens_live_expiry.
            sql.push_str(" AND revoked_at IS NULL AND expires_at > ?");
            args.push(now.into());
        }
        if let Some(before) = filter.expiring_before {
            sql.push_str(" AND expires_at <= ?");
            args.push(before.into());
        }
        if let Some(client) = &filter.client_id {
            sql.push_str(" AND client_id = ?");
            args.push(client.clone().into());
        }
        if !filter.include_codes {
            sql.push_str(" AND kind != 'authorization_code'");
        }
        if filter.include_inactive && filter.expiring_before.is_none() {
            sql.push_str(" ORDER BY issued_at DESC, id");
        } else {
            sql.push_str(" ORDER BY expires_at, id");
        }
        if let Some(limit) = filter.limit {
            sql.push_str(" LIMIT ?");
            args.push((limit as i64).into());
        }
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), row_to_token)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Live tokens that expire in `(now, now + within]` and live longer than `longer_than`
    /// seconds, soonest first: the monitor's expiry-warning scan. Reads the partial index
    /// `tokens_warnable`, which holds only tokens living longer than
    /// [`WARNABLE_MIN_LIFETIME`], so the scan never visits the one-hour OAuth access tokens
    /// that make up most rows; `longer_than` below that is raised to it.
    pub fn tokens_due_for_warning(
        &self,
        now: Timestamp,
        within: i64,
        longer_than: i64,
    ) -> Result<Vec<TokenRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!("SELECT {COLUMNS} {DUE_FOR_WARNING}"))?;
            let rows = stmt.query_map(
                params![now, now + within, longer_than.max(WARNABLE_MIN_LIFETIME)],
                row_to_token,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Revoke one token by id. `Ok(None)`: no such token, nothing changed.
    pub fn revoke_token(
        &self,
        id: &TokenId,
        reason: &str,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<Option<RevokeOutcome>> {
        self.write(|tx| {
            let out = revoke_one(tx, id, reason, now)?;
            if let Some(RevokeOutcome::Revoked(_)) = &out {
                audit::append(tx, audit, now)?;
            }
            Ok(out)
        })
    }

    /// Revoke every live token of a client; returns the revoked records.
    pub fn revoke_client_tokens(
        &self,
        client_id: &str,
        kind: Option<TokenKind>,
        reason: &str,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<Vec<TokenRecord>> {
        self.write(|tx| {
            let mut stmt = tx.prepare(&format!(
                "UPDATE tokens SET revoked_at = ?2, revoked_reason = ?3 \
                 WHERE client_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                 AND (?4 IS NULL OR kind = ?4) RETURNING {COLUMNS}"
            ))?;
            let rows = stmt.query_map(
                params![client_id, now, reason, kind.map(TokenKind::as_str)],
                row_to_token,
            )?;
            let revoked = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            for t in &revoked {
                let e = NewAuditEvent {
                    token_id: Some(t.id.to_string()),
                    ..audit.clone()
                };
                audit::append(tx, &e, now)?;
            }
            Ok(revoked)
        })
    }

    /// Issue `new` and shorten `old`'s life to `old_expires_at` in one transaction
    /// (rotation with overlap).
    pub fn rotate_token(
        &self,
        old: &TokenId,
        old_expires_at: Timestamp,
        new: &NewTokenRecord,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tokens SET expires_at = min(expires_at, ?2) \
                 WHERE id = ?1 AND revoked_at IS NULL",
                params![old.as_str(), old_expires_at],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("live token {old}")));
            }
            insert_token(tx, new)?;
            audit::append(tx, audit, new.issued_at)
        })
    }

    /// The id of the token that replaced `id` in a rotation, if any.
    pub fn replacement_of(&self, id: &TokenId) -> Result<Option<TokenId>> {
        self.read(|c| {
            Ok(
                c.query_row(REPLACEMENT_OF, [id.as_str()], |r| r.get::<_, String>(0))
                    .optional()?
                    .map(TokenId::from_stored),
            )
        })
    }

    /// Record uses of tokens (id, time, source IP) in one transaction: the batched
    /// heartbeat writer calls this off the request path.
    pub fn record_token_uses(
        &self,
        uses: &[(TokenId, Timestamp, Option<String>, i64)],
    ) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?2), \
                 last_used_ip = coalesce(?3, last_used_ip), use_count = use_count + ?4 \
                 WHERE id = ?1",
            )?;
            for (id, at, ip, count) in uses {
                stmt.execute(params![id.as_str(), at, ip, count])?;
            }
            Ok(())
        })
    }
}

/// An access token and its record for `client`, for tests.
#[cfg(test)]
pub(crate) fn access_record(
    client: &str,
    issued_at: Timestamp,
    expires_at: Timestamp,
) -> (crate::token::NewToken, NewTokenRecord) {
    let t = crate::token::generate(TokenKind::Access);
    let r = NewTokenRecord {
        id: t.id.clone(),
        hash: t.hash,
        kind: TokenKind::Access,
        client_id: client.into(),
        subject: client.into(),
        scopes: vec![crate::model::Scope::DirectoryRead],
        issued_at,
        expires_at,
        issued_via: crate::model::IssuedVia::Cli,
        family_id: None,
        parent_id: None,
        label: None,
    };
    (t, r)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::Scope;
    use crate::store::Store;

    #[test]
    fn the_warning_scan_reads_only_long_lived_tokens_through_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_or_create(&dir.path().join("s.db")).unwrap());
        let admin = crate::admin::Admin::new(&store, crate::time::Clock::system(), "test");
        let client = admin
            .register_client(crate::admin::RegisterClient::new(
                "scan",
                &[crate::model::GrantType::ClientCredentials],
                &[Scope::DirectoryRead],
            ))
            .unwrap()
            .0
            .id;
        let now = 1_800_000_000;
        let issue = |lifetime: i64| {
            let (t, r) = access_record(&client, now - 10, now - 10 + lifetime);
            store.insert_tokens(&[r]).unwrap();
            t.id
        };
        let hour = issue(3600);
        let two_days = issue(2 * 86_400);
        let year = issue(365 * 86_400);
        let due: Vec<TokenId> = store
            .tokens_due_for_warning(now, 30 * 86_400, 86_400)
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(
            due,
            vec![two_days.clone()],
            "not {hour} (too short-lived), not {year} (not due)"
        );
        // And SQLite answers it from the partial index, not by visiting every live token.
        let plan: String = store
            .read(|c| {
                let mut stmt = c.prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT {COLUMNS} {DUE_FOR_WARNING}"
                ))?;
                let rows =
                    stmt.query_map(params![now, now + 1, 3600], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
            })
            .unwrap();
        assert!(plan.contains("tokens_warnable"), "{plan}");
    }

    #[test]
    fn finding_a_replacement_uses_the_parent_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("s.db")).unwrap();
        let plan: String = store
            .read(|c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {REPLACEMENT_OF}"))?;
                let rows = stmt.query_map(["tok_x"], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
            })
            .unwrap();
        assert!(plan.contains("tokens_parent"), "{plan}");
    }
}
