//! PostgreSQL bodies of `store::tokens`: token records by hash, with the same small-integer
//! encodings as SQLite (`store::tokens` has the encoders). The live tokens are one plain
//! query here: SQLite's two index ranges (`store::tokens::live_tokens`) are a shape for its
//! planner, which PostgreSQL's does not need.

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::{Db, Postgres, Tx, audit, get};
use crate::model::{NewAuditEvent, TokenRecord};
use crate::store::tokens::{
    COLUMNS, NewTokenRecord, RevokeOutcome, SHORT_LIFETIME, TokenFilter, kind_code, kind_from_code,
    long_lived_sql, scope_bits, scopes_from_bits, via_code, via_from_code,
};
use crate::store::{Result, StoreError};
use crate::time::Timestamp;
use crate::token::{ParsedToken, TokenHash, TokenId};

/// How many columns [`COLUMNS`] names.
const COLUMN_COUNT: usize = 16;

/// The live (unrevoked, unexpired, client not cut off since) tokens, `SELECT columns`,
/// with `extra` further `AND` terms. Parameters: `$1` now, and `$2` the client if
/// `one_client`.
pub(crate) fn live_tokens(columns: &str, one_client: bool, extra: &str) -> String {
    let client = if one_client {
        " AND client_id = $2"
    } else {
        ""
    };
    format!(
        "SELECT {columns} FROM tokens WHERE expires_at > $1 AND revoked_at IS NULL \
         AND client_epoch = (SELECT c.token_epoch FROM clients c WHERE c.id = tokens.client_id)\
         {client}{extra}"
    )
}

fn bad(what: &str, v: i64) -> StoreError {
    StoreError::Corrupt(format!("bad {what} code {v}"))
}

pub(crate) fn row_to_token(r: &Row) -> Result<TokenRecord> {
    let kind: i64 = get(r, 1)?;
    let client_id: String = get(r, 2)?;
    let subject: Option<String> = get(r, 3)?;
    let scopes: i64 = get(r, 4)?;
    let via: i64 = get(r, 9)?;
    Ok(TokenRecord {
        id: TokenId::from_stored(get(r, 0)?),
        kind: kind_from_code(kind).ok_or_else(|| bad("kind", kind))?,
        subject: subject.unwrap_or_else(|| client_id.clone()),
        client_id,
        scopes: scopes_from_bits(scopes).ok_or_else(|| bad("scopes", scopes))?,
        issued_at: get(r, 5)?,
        expires_at: get(r, 6)?,
        revoked_at: get(r, 7)?,
        revoked_reason: get(r, 8)?,
        issued_via: via_from_code(via).ok_or_else(|| bad("issued_via", via))?,
        family_id: get(r, 10)?,
        parent_id: get(r, 11)?,
        last_used_at: get(r, 12)?,
        last_used_ip: get(r, 13)?,
        use_count: get(r, 14)?,
        label: get(r, 15)?,
    })
}

/// Insert `t` if its client still has the epoch the request authenticated against and is
/// neither deleted nor disabled ([`StoreError::ClientCutOff`] otherwise).
pub(crate) fn insert_token(db: &mut Db<'_, impl GenericClient>, t: &NewTokenRecord) -> Result<()> {
    let subject = (t.subject != t.client_id).then_some(t.subject.as_str());
    let inserted = db.execute(
        "INSERT INTO tokens (id, hash, kind, client_id, subject, scopes, issued_at, \
         expires_at, issued_via, family_id, parent_id, label, client_epoch) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM clients \
         WHERE id = $4 AND token_epoch = $13 AND deleted_at IS NULL AND disabled_at IS NULL",
        &[
            &t.id.as_str(),
            &&t.hash.0[..],
            &kind_code(t.kind),
            &t.client_id,
            &subject,
            &scope_bits(&t.scopes),
            &t.issued_at,
            &t.expires_at,
            &via_code(t.issued_via),
            &t.family_id,
            &t.parent_id,
            &t.label,
            &t.client_epoch,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::ClientCutOff(t.client_id.clone()));
    }
    Ok(())
}

/// The token records of a batch of jobs in one statement: each job's outcome, by
/// position. A record is inserted only while its client has the epoch the request
/// authenticated against and is neither deleted nor disabled (as [`insert_token`]); a job
/// any of whose records was refused so inserts none ([`StoreError::ClientCutOff`]).
pub(crate) fn insert_token_jobs(
    tx: &mut Tx<'_, '_>,
    jobs: &[&[NewTokenRecord]],
) -> Result<Vec<Result<()>>> {
    let all: Vec<&NewTokenRecord> = jobs.iter().flat_map(|j| j.iter()).collect();
    if all.is_empty() {
        return Ok(jobs.iter().map(|_| Ok(())).collect());
    }
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    let hashes: Vec<&[u8]> = all.iter().map(|t| &t.hash.0[..]).collect();
    let kinds: Vec<i64> = all.iter().map(|t| kind_code(t.kind)).collect();
    let clients: Vec<&str> = all.iter().map(|t| t.client_id.as_str()).collect();
    let subjects: Vec<Option<&str>> = all
        .iter()
        .map(|t| (t.subject != t.client_id).then_some(t.subject.as_str()))
        .collect();
    let scopes: Vec<i64> = all.iter().map(|t| scope_bits(&t.scopes)).collect();
    let issued: Vec<i64> = all.iter().map(|t| t.issued_at).collect();
    let expires: Vec<i64> = all.iter().map(|t| t.expires_at).collect();
    let via: Vec<i64> = all.iter().map(|t| via_code(t.issued_via)).collect();
    let families: Vec<Option<&str>> = all.iter().map(|t| t.family_id.as_deref()).collect();
    let parents: Vec<Option<&str>> = all.iter().map(|t| t.parent_id.as_deref()).collect();
    let labels: Vec<Option<&str>> = all.iter().map(|t| t.label.as_deref()).collect();
    let epochs: Vec<i64> = all.iter().map(|t| t.client_epoch).collect();
    let inserted: std::collections::HashSet<String> = tx
        .query(
            "INSERT INTO tokens (id, hash, kind, client_id, subject, scopes, issued_at, \
             expires_at, issued_via, family_id, parent_id, label, client_epoch) \
             SELECT r.* FROM unnest($1::text[], $2::bytea[], $3::int8[], $4::text[], \
             $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::text[], \
             $11::text[], $12::text[], $13::int8[]) AS r(id, hash, kind, client_id, subject, \
             scopes, issued_at, expires_at, issued_via, family_id, parent_id, label, \
             client_epoch) JOIN clients c ON c.id = r.client_id \
             AND c.token_epoch = r.client_epoch AND c.deleted_at IS NULL \
             AND c.disabled_at IS NULL RETURNING id",
            &[
                &ids, &hashes, &kinds, &clients, &subjects, &scopes, &issued, &expires, &via,
                &families, &parents, &labels, &epochs,
            ],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let kept: Vec<&str> = job
            .iter()
            .map(|t| t.id.as_str())
            .filter(|id| inserted.contains(*id))
            .collect();
        if kept.len() == job.len() {
            out.push(Ok(()));
            continue;
        }
        if !kept.is_empty() {
            tx.execute("DELETE FROM tokens WHERE id = ANY($1)", &[&kept])?;
        }
        out.push(Err(StoreError::ClientCutOff(job[0].client_id.clone())));
    }
    Ok(out)
}

pub(crate) fn token_by_id(
    db: &mut Db<'_, impl GenericClient>,
    id: &TokenId,
) -> Result<Option<TokenRecord>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM tokens WHERE id = $1"),
        &[&id.as_str()],
    )?
    .map(|r| row_to_token(&r))
    .transpose()
}

/// The token a presented string names, if its secret matches (compared in constant time).
pub(crate) fn token_by_value(
    db: &mut Db<'_, impl GenericClient>,
    presented: &ParsedToken,
) -> Result<Option<TokenRecord>> {
    let Some(r) = db.query_opt(
        &format!("SELECT {COLUMNS}, hash FROM tokens WHERE id = $1"),
        &[&presented.id.as_str()],
    )?
    else {
        return Ok(None);
    };
    let stored: Vec<u8> = get(&r, COLUMN_COUNT)?;
    let matches =
        <[u8; 32]>::try_from(stored.as_slice()).is_ok_and(|h| TokenHash(h).ct_eq(&presented.hash));
    matches.then(|| row_to_token(&r)).transpose()
}

pub(crate) fn revoke_one(
    tx: &mut Tx<'_, '_>,
    id: &TokenId,
    reason: &str,
    now: Timestamp,
) -> Result<Option<RevokeOutcome>> {
    let Some(rec) = token_by_id(tx, id)? else {
        return Ok(None);
    };
    if rec.revoked_at.is_some() {
        return Ok(Some(RevokeOutcome::AlreadyRevoked(rec)));
    }
    tx.execute(
        "UPDATE tokens SET revoked_at = $2, revoked_reason = $3 WHERE id = $1",
        &[&id.as_str(), &now, &reason],
    )?;
    let rec = token_by_id(tx, id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    Ok(Some(RevokeOutcome::Revoked(rec)))
}

impl Postgres {
    pub fn insert_token(&self, t: &NewTokenRecord, audit: &NewAuditEvent) -> Result<()> {
        self.write(|tx| {
            insert_token(tx, t)?;
            audit::append(tx, audit, t.issued_at)
        })
    }

    pub fn insert_tokens(&self, batch: &[NewTokenRecord]) -> Result<()> {
        self.write(|tx| batch.iter().try_for_each(|t| insert_token(tx, t)))
    }

    pub fn token(&self, id: &TokenId) -> Result<Option<TokenRecord>> {
        self.read(|db| token_by_id(db, id))
    }

    pub fn token_by_value(&self, presented: &ParsedToken) -> Result<Option<TokenRecord>> {
        self.read(|db| token_by_value(db, presented))
    }

    pub fn list_tokens(&self, filter: &TokenFilter, now: Timestamp) -> Result<Vec<TokenRecord>> {
        let live = !filter.include_inactive || filter.expiring_before.is_some();
        let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut extra = String::new();
        let mut sql = if live {
            params.push(Box::new(now));
            if let Some(c) = &filter.client_id {
                params.push(Box::new(c.clone()));
            }
            if let Some(before) = filter.expiring_before {
                params.push(Box::new(before));
                extra.push_str(&format!(" AND expires_at <= ${}", params.len()));
            }
            if !filter.include_codes {
                extra.push_str(" AND kind != 3");
            }
            live_tokens(COLUMNS, filter.client_id.is_some(), &extra) + " ORDER BY expires_at, id"
        } else {
            let mut sql = format!("SELECT {COLUMNS} FROM tokens WHERE true");
            if !filter.include_codes {
                sql.push_str(" AND kind != 3");
            }
            if let Some(c) = &filter.client_id {
                params.push(Box::new(c.clone()));
                sql.push_str(&format!(" AND client_id = ${}", params.len()));
            }
            sql + " ORDER BY issued_at DESC, id"
        };
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(
                " LIMIT {}",
                i64::try_from(limit).unwrap_or(i64::MAX)
            ));
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        self.read(|db| db.query(&sql, &refs)?.iter().map(row_to_token).collect())
    }

    pub fn long_lived_tokens(
        &self,
        now: Timestamp,
        longer_than: i64,
        limit: usize,
    ) -> Result<Vec<TokenRecord>> {
        let sql = long_lived_sql(limit)
            .replace("?1", "$1")
            .replace("?2", "$2");
        self.read(|db| {
            db.query(&sql, &[&now, &longer_than.max(SHORT_LIFETIME)])?
                .iter()
                .map(row_to_token)
                .collect()
        })
    }

    /// [`crate::store::Store::tokens_to_warn`]: its statement, `?1` and `?2` spelled as
    /// PostgreSQL's parameters.
    pub fn tokens_to_warn(
        &self,
        sql: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<TokenRecord>> {
        let sql = sql.replace("?1", "$1").replace("?2", "$2");
        self.read(|db| {
            db.query(&sql, &[&now, &until])?
                .iter()
                .map(row_to_token)
                .collect()
        })
    }

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

    pub fn count_live_tokens(&self, id: &str, now: Timestamp) -> Result<usize> {
        let sql = format!(
            "SELECT count(*) FROM ({}) live",
            live_tokens("id", true, "")
        );
        self.read(|db| {
            let n: i64 = get(&db.query_one(&sql, &[&now, &id])?, 0)?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    pub fn rotate_token(
        &self,
        old: &TokenId,
        old_expires_at: Timestamp,
        new: &NewTokenRecord,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tokens SET expires_at = LEAST(expires_at, $2) \
                 WHERE id = $1 AND revoked_at IS NULL",
                &[&old.as_str(), &old_expires_at],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("live token {old}")));
            }
            insert_token(tx, new)?;
            audit::append(tx, audit, new.issued_at)
        })
    }

    pub fn replacement_of(&self, id: &TokenId) -> Result<Option<TokenId>> {
        self.read(|db| {
            db.query_opt(
                "SELECT id FROM tokens WHERE parent_id = $1 AND issued_via = 5 LIMIT 1",
                &[&id.as_str()],
            )?
            .map(|r| Ok(TokenId::from_stored(get(&r, 0)?)))
            .transpose()
        })
    }

    pub fn record_token_uses(
        &self,
        uses: &[(TokenId, Timestamp, Option<String>, i64)],
    ) -> Result<()> {
        self.write(|tx| {
            for (id, at, ip, count) in uses {
                tx.execute(
                    "UPDATE tokens SET last_used_at = GREATEST(coalesce(last_used_at, 0), $2), \
                     last_used_ip = coalesce($3, last_used_ip), use_count = use_count + $4 \
                     WHERE id = $1",
                    &[&id.as_str(), at, ip, count],
                )?;
            }
            Ok(())
        })
    }
}
