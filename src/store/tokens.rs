//! The `tokens` table: every access token, refresh token and authorization code, by
//! SHA-256 hash only. Revocation sets `revoked_at`; rows are deleted only long after they
//! expired, by `config prune-tokens` (`store::retention`).
//!
//! Kinds, issue paths and scope sets are stored as small integers, and a subject that is
//! the client itself as NULL (schema.sql, migration 6: a row half the size, for the
//! issuance rate); [`kind_code`], [`via_code`] and [`scope_bits`] are the only encoders
//! and [`row_to_token`] the only decoder.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Result, Store, StoreError, audit, on_postgres};
use crate::model::{IssuedVia, NewAuditEvent, Scope, TokenRecord};
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
    /// The client's `token_epoch` when the request authenticated: the insert is refused
    /// if the client has been cut off since (schema.sql, migration 7).
    pub client_epoch: i64,
}

impl NewTokenRecord {
    /// The record of access token `t` that `client_id` holds as itself (`config
    /// issue-access-token`, client_credentials): its own subject, no grant family, no
    /// parent, no label, epoch 0 (a client never cut off; set those with struct update
    /// syntax).
    pub fn own_access(
        t: &crate::token::NewToken,
        client_id: &str,
        scopes: Vec<Scope>,
        issued_at: Timestamp,
        expires_at: Timestamp,
        issued_via: IssuedVia,
    ) -> NewTokenRecord {
        NewTokenRecord {
            id: t.id.clone(),
            hash: t.hash,
            kind: TokenKind::Access,
            client_id: client_id.to_string(),
            subject: client_id.to_string(),
            scopes,
            issued_at,
            expires_at,
            issued_via,
            family_id: None,
            parent_id: None,
            label: None,
            client_epoch: 0,
        }
    }
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

/// A token's columns as [`row_to_token`] reads them. A token of an older epoch than its
/// client's (the client was cut off since: schema.sql, migration 7) reads as revoked when
/// the first cut after its issue happened, for the reason given then.
pub(super) const COLUMNS: &str = "id, kind, client_id, subject, scopes, issued_at, expires_at, \
    coalesce(revoked_at, (SELECT k.at FROM client_cuts k WHERE k.client_id = tokens.client_id \
    AND k.epoch = tokens.client_epoch + 1)), \
    CASE WHEN revoked_at IS NULL THEN (SELECT k.reason FROM client_cuts k \
    WHERE k.client_id = tokens.client_id AND k.epoch = tokens.client_epoch + 1) \
    ELSE revoked_reason END, \
    issued_via, family_id, parent_id, last_used_at, last_used_ip, use_count, label";
/// The condition that a token's client has not been cut off since it was issued.
pub(super) const CLIENT_EPOCH_CURRENT: &str = "client_epoch = \
    (SELECT c.token_epoch FROM clients c WHERE c.id = tokens.client_id)";
/// Tokens living at most this long (seconds): the one-hour OAuth access tokens and the
/// 60-second codes, nearly every row. They are in no secondary index (schema.sql,
/// migration 6, which spells the same number), so issuing one writes its row and nothing
/// else; the live ones were issued within this long, and are found by id ([`live_tokens`]).
/// The monitor's expiry scan never reads them either (`tokens_warnable`): expiry warnings
/// are for long-lived credentials, and warning leads shorter than this are refused
/// (monitor settings).
pub const SHORT_LIFETIME: i64 = 3600;

/// The live (unrevoked, unexpired) tokens, as a compound SELECT of `columns` whose two
/// arms both end with `extra` (further `AND` terms). Named parameters: `:now`, `:first_id`
/// and `:end_id` ([`live_id_range`]), and `:client` if `one_client`.
///
/// Each arm reads one index, and their conditions are complementary, so every live token
/// comes out exactly once:
/// - tokens living longer than [`SHORT_LIFETIME`], and legacy tokens (20-character ids,
///   which carry no issue time): the partial index `tokens_client`, the range after `:now`
///   of each client (clients are few, and every token's client is a row of `clients`);
/// - the short-lived rest: alive at `:now`, so issued after `:now - SHORT_LIFETIME`, and
///   ids begin with their issue time: the primary key from `:first_id` on.
pub(super) fn live_tokens(columns: &str, one_client: bool, extra: &str) -> String {
    let (clients, short_client) = if one_client {
        ("client_id = :client", " AND client_id = :client")
    } else {
        ("client_id IN (SELECT id FROM clients)", "")
    };
    format!(
        "SELECT {columns} FROM tokens INDEXED BY tokens_client WHERE {clients} \
         AND (expires_at - issued_at > 3600 OR length(id) != 24) \
         AND expires_at > :now AND revoked_at IS NULL AND {CLIENT_EPOCH_CURRENT}{extra} \
         UNION ALL \
         SELECT {columns} FROM tokens WHERE id >= :first_id AND id < :end_id \
         AND length(id) = 24 AND expires_at - issued_at <= 3600 \
         AND expires_at > :now AND revoked_at IS NULL AND {CLIENT_EPOCH_CURRENT}{short_client}{extra}"
    )
}

/// `:first_id` and `:end_id` of [`live_tokens`] at `now`. The range starts a second early
/// (ids issued in the second before `issued_at` was read, by a program that read the two
/// clocks apart) and ends a century ahead (tokens from a clock ahead of this one), which
/// keeps out all but 1 in 128 legacy ids: hex never sorts among this century's selectors.
pub(super) fn live_id_range(now: Timestamp) -> [(&'static str, rusqlite::types::Value); 2] {
    const CENTURY: i64 = 100 * 366 * 86_400;
    [
        (
            ":first_id",
            crate::token::first_id_issued_at(now - SHORT_LIFETIME - 1).into(),
        ),
        (
            ":end_id",
            crate::token::first_id_issued_at(now.saturating_add(CENTURY)).into(),
        ),
    ]
}

/// Run `sql` with named `params`, mapping each row with `f`.
pub(super) fn query_named<T>(
    conn: &Connection,
    sql: &str,
    params: &[(&str, rusqlite::types::Value)],
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let refs: Vec<(&str, &dyn rusqlite::ToSql)> = params
        .iter()
        .map(|(k, v)| (*k, v as &dyn rusqlite::ToSql))
        .collect();
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(refs.as_slice(), f)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The parameters of [`live_tokens`] at `now`, for one client or all.
pub(super) fn live_params(
    now: Timestamp,
    client: Option<&str>,
) -> Vec<(&'static str, rusqlite::types::Value)> {
    let mut params = vec![(":now", now.into())];
    params.extend(live_id_range(now));
    if let Some(c) = client {
        params.push((":client", c.to_string().into()));
    }
    params
}

/// The expiry gauges' scan (`/metrics`), after `SELECT columns`. Its first two terms
/// repeat the partial index `tokens_warnable`'s condition word for word, so that SQLite
/// may use it.
pub(super) const LONG_LIVED_EXPIRING: &str = "FROM tokens \
     WHERE revoked_at IS NULL AND expires_at - issued_at > 3600 \
     AND expires_at > ?1 AND expires_at - issued_at > ?2 \
     AND kind != 3 AND client_epoch = (SELECT c.token_epoch FROM clients c \
     WHERE c.id = tokens.client_id) ORDER BY expires_at, id"; // kind 3: authorization codes

/// [`Store::tokens_to_warn`]'s statement for `leads` (seconds; `None` without one): `?1`
/// is now, `?2` now plus the longest lead. The inner query reads the partial index
/// `tokens_warnable` alone (migration 15): its first two terms repeat the index's
/// condition word for word, so that SQLite may use it, and every other term reads the
/// entry's columns (or its key, `id`). A token is inside lead `l` when
/// `expires_at - now <= l` and it lived longer than `l`; the tightest such lead is the
/// first `WHEN` of the `CASE`, the leads being in ascending order. Only the tokens it
/// names are read from the table, for the terms the index does not hold. The leads are
/// the operator's settings, written in as integers.
pub(super) fn to_warn_sql(leads: &[i64]) -> Option<String> {
    let mut leads: Vec<i64> = leads.iter().copied().filter(|&l| l > 0).collect();
    leads.sort_unstable();
    leads.dedup();
    if leads.is_empty() {
        return None;
    }
    let inside = |l: i64| format!("(expires_at - ?1 <= {l} AND expires_at - issued_at > {l})");
    let any: Vec<String> = leads.iter().map(|&l| inside(l)).collect();
    let tightest: String = leads
        .iter()
        .map(|&l| format!(" WHEN {} THEN {l}", inside(l)))
        .collect();
    Some(format!(
        "SELECT {COLUMNS} FROM tokens WHERE id IN (SELECT id FROM tokens \
         WHERE revoked_at IS NULL AND expires_at - issued_at > 3600 \
         AND expires_at > ?1 AND expires_at <= ?2 AND ({}) \
         AND NOT EXISTS (SELECT 1 FROM expiry_warnings w WHERE w.subject = tokens.id \
         AND w.lead = CASE{tightest} END)) \
         AND kind != 3 AND {CLIENT_EPOCH_CURRENT} ORDER BY expires_at, id",
        any.join(" OR ")
    ))
}

/// The statement of [`Store::long_lived_tokens`]. A limit is written into it: SQLite plans
/// a bound LIMIT anew at every bind (see `store::scim`).
pub(super) fn long_lived_sql(limit: usize) -> String {
    format!("SELECT {COLUMNS} {LONG_LIVED_EXPIRING} LIMIT {limit}")
}

/// The token a rotation (`issued_via` 5) issued to replace `?1` (read through the partial
/// index `tokens_parent`).
const REPLACEMENT_OF: &str =
    "SELECT id FROM tokens WHERE parent_id = ?1 AND issued_via = 5 LIMIT 1";

/// How many columns [`COLUMNS`] names.
const COLUMN_COUNT: usize = 16;

/// `tokens.kind` as stored. Client secrets are not tokens rows: their 0 is refused by
/// the column's CHECK constraint.
pub(super) fn kind_code(kind: TokenKind) -> i64 {
    match kind {
        TokenKind::Access => 1,
        TokenKind::Refresh => 2,
        TokenKind::AuthorizationCode => 3,
        TokenKind::ClientSecret => 0,
    }
}

pub(super) fn kind_from_code(code: i64) -> Option<TokenKind> {
    TokenKind::ALL
        .into_iter()
        .filter(|k| *k != TokenKind::ClientSecret)
        .find(|k| kind_code(*k) == code)
}

/// `tokens.issued_via` as stored.
pub(super) fn via_code(via: IssuedVia) -> i64 {
    match via {
        IssuedVia::Cli => 1,
        IssuedVia::ClientCredentials => 2,
        IssuedVia::AuthorizationCode => 3,
        IssuedVia::RefreshToken => 4,
        IssuedVia::Rotate => 5,
    }
}

pub(super) fn via_from_code(code: i64) -> Option<IssuedVia> {
    IssuedVia::ALL.into_iter().find(|v| via_code(*v) == code)
}

/// The bit each scope has in `tokens.scopes`.
fn scope_bit(scope: Scope) -> i64 {
    match scope {
        Scope::DirectoryRead => 1,
        Scope::DirectoryWrite => 2,
    }
}

/// `tokens.scopes` as stored: one bit per scope.
pub(super) fn scope_bits(scopes: &[Scope]) -> i64 {
    scopes.iter().fold(0, |bits, s| bits | scope_bit(*s))
}

/// The scopes of a stored bit set, in canonical order; `None` if it has unknown bits.
pub(super) fn scopes_from_bits(bits: i64) -> Option<Vec<Scope>> {
    let scopes: Vec<Scope> = Scope::ALL
        .iter()
        .copied()
        .filter(|s| bits & scope_bit(*s) != 0)
        .collect();
    (scope_bits(&scopes) == bits).then_some(scopes)
}

fn bad(what: &str, v: i64) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Integer,
        format!("bad {what} code {v}").into(),
    )
}

pub(super) fn row_to_token(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let kind: i64 = r.get(1)?;
    let client_id: String = r.get(2)?;
    let subject: Option<String> = r.get(3)?;
    let scopes: i64 = r.get(4)?;
    let via: i64 = r.get(9)?;
    Ok(TokenRecord {
        id: TokenId::from_stored(r.get(0)?),
        kind: kind_from_code(kind).ok_or_else(|| bad("kind", kind))?,
        subject: subject.unwrap_or_else(|| client_id.clone()),
        client_id,
        scopes: scopes_from_bits(scopes).ok_or_else(|| bad("scopes", scopes))?,
        issued_at: r.get(5)?,
        expires_at: r.get(6)?,
        revoked_at: r.get(7)?,
        revoked_reason: r.get(8)?,
        issued_via: via_from_code(via).ok_or_else(|| bad("issued_via", via))?,
        family_id: r.get(10)?,
        parent_id: r.get(11)?,
        last_used_at: r.get(12)?,
        last_used_ip: r.get(13)?,
        use_count: r.get(14)?,
        label: r.get(15)?,
    })
}

/// The clients a write transaction has found able to receive tokens, as (client id,
/// token epoch): a batch of tokens for one client checks its row once
/// ([`insert_token_in`]). Valid for one transaction only: it holds the write lock, so no
/// cut-off can come between the check and the inserts.
#[derive(Debug, Default)]
pub(super) struct LiveClients(Vec<(String, i64)>);

impl LiveClients {
    fn knows(&self, client_id: &str, epoch: i64) -> bool {
        self.0.iter().any(|(c, e)| c == client_id && *e == epoch)
    }
}

/// Insert one token record in the caller's write transaction (see [`insert_token_in`]).
pub(super) fn insert_token(conn: &Connection, t: &NewTokenRecord) -> Result<()> {
    insert_token_in(conn, t, &mut LiveClients::default())
}

/// Insert `t` in the caller's write transaction, only while its client has the epoch the
/// request authenticated against and is neither deleted nor disabled: a token minted on a
/// credential being cut off at this moment is refused, never left alive (schema.sql,
/// migration 7). The client's row is read unless `live` already holds it from this
/// transaction. Two statements, not one `INSERT … SELECT … FROM clients` as before: SQLite
/// gives a statement that may insert several rows a statement journal, which copied every
/// page the insert touched, while a one-row `INSERT … VALUES` needs none (bench/RESULTS.md
/// has the instructions per token). Both cached: every issued token and code comes here.
pub(super) fn insert_token_in(
    conn: &Connection,
    t: &NewTokenRecord,
    live: &mut LiveClients,
) -> Result<()> {
    if !live.knows(&t.client_id, t.client_epoch) {
        let found = conn
            .prepare_cached(
                "SELECT 1 FROM clients WHERE id = ?1 AND token_epoch = ?2 \
                 AND deleted_at IS NULL AND disabled_at IS NULL",
            )?
            .exists(params![t.client_id, t.client_epoch])?;
        if !found {
            return Err(StoreError::ClientCutOff(t.client_id.clone()));
        }
        live.0.push((t.client_id.clone(), t.client_epoch));
    }
    conn.prepare_cached(
        "INSERT INTO tokens (id, hash, kind, client_id, subject, scopes, issued_at, \
         expires_at, issued_via, family_id, parent_id, label, client_epoch) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        t.id.as_str(),
        &t.hash.0[..],
        kind_code(t.kind),
        t.client_id,
        (t.subject != t.client_id).then_some(t.subject.as_str()),
        scope_bits(&t.scopes),
        t.issued_at,
        t.expires_at,
        via_code(t.issued_via),
        t.family_id,
        t.parent_id,
        t.label,
        t.client_epoch,
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

/// The SQL and named parameters of [`Store::list_tokens`].
fn list_query(
    filter: &TokenFilter,
    now: Timestamp,
) -> (String, Vec<(&'static str, rusqlite::types::Value)>) {
    let live = !filter.include_inactive || filter.expiring_before.is_some();
    let mut extra = String::new();
    let mut params = if live {
        live_params(now, filter.client_id.as_deref())
    } else {
        Vec::new()
    };
    if let Some(before) = filter.expiring_before {
        extra.push_str(" AND expires_at <= :before");
        params.push((":before", before.into()));
    }
    if !filter.include_codes {
        extra.push_str(" AND kind != 3"); // authorization codes
    }
    let mut sql = if live {
        live_tokens(COLUMNS, filter.client_id.is_some(), &extra) + " ORDER BY expires_at, id"
    } else {
        let mut sql = format!("SELECT {COLUMNS} FROM tokens WHERE 1=1{extra}");
        if let Some(client) = &filter.client_id {
            sql.push_str(" AND client_id = :client");
            params.push((":client", client.clone().into()));
        }
        sql + " ORDER BY issued_at DESC, id"
    };
    if let Some(limit) = filter.limit {
        sql.push_str(" LIMIT :limit");
        params.push((":limit", (limit as i64).into()));
    }
    (sql, params)
}

impl Store {
    /// Insert one token record with its audit event; committed when this returns.
    pub fn insert_token(&self, t: &NewTokenRecord, audit: &NewAuditEvent) -> Result<()> {
        on_postgres!(self, pg => pg.insert_token(t, audit));
        self.write(|tx| {
            insert_token(tx, t)?;
            audit::append(tx, audit, t.issued_at)
        })
    }

    /// Insert a batch of token records in one transaction (one fsync for many tokens).
    pub fn insert_tokens(&self, batch: &[NewTokenRecord]) -> Result<()> {
        on_postgres!(self, pg => pg.insert_tokens(batch));
        self.write(|tx| {
            let mut live = LiveClients::default();
            for t in batch {
                insert_token_in(tx, t, &mut live)?;
            }
            Ok(())
        })
    }

    /// A token by its public id.
    pub fn token(&self, id: &TokenId) -> Result<Option<TokenRecord>> {
        on_postgres!(self, pg => pg.token(id));
        self.read(|c| token_by_id(c, id))
    }

    /// The token a presented string names, if its secret matches (the bearer lookup).
    pub fn token_by_value(&self, presented: &ParsedToken) -> Result<Option<TokenRecord>> {
        on_postgres!(self, pg => pg.token_by_value(presented));
        self.read_point(|c| token_by_value(c, presented))
    }

    /// Tokens matching `filter`, soonest expiry first for live listings, newest first
    /// otherwise.
    ///
    /// A live listing reads `tokens_client` (client_id, expires_at): the live tokens of a
    /// client are the range after `now` in it, and the live tokens of every client are
    /// that range for each client (clients are few, and every token's client is a row of
    /// `clients`). There is no index on expiry alone, because each one costs every
    /// issuance a write.
    pub fn list_tokens(&self, filter: &TokenFilter, now: Timestamp) -> Result<Vec<TokenRecord>> {
        on_postgres!(self, pg => pg.list_tokens(filter, now));
        let (sql, params) = list_query(filter, now);
        self.read(|c| query_named(c, &sql, &params, row_to_token))
    }

    /// The monitor's expiry-warning scan: the live tokens a warning is due for at `now`,
    /// soonest expiry first. A token is due when it is inside one of `leads` (seconds
    /// before expiry) that it lived longer than ([`crate::monitor::expiry::applicable`]),
    /// and no warning is recorded for the tightest such lead. Both tests are the
    /// statement's ([`to_warn_sql`]), so a tick reads the tokens it warns about, not every
    /// long-lived token near its expiry. Reads the partial index `tokens_warnable`, which
    /// holds only tokens living longer than [`SHORT_LIFETIME`], so the scan never visits
    /// the one-hour OAuth access tokens that make up most rows.
    pub fn tokens_to_warn(&self, now: Timestamp, leads: &[i64]) -> Result<Vec<TokenRecord>> {
        let Some(sql) = to_warn_sql(leads) else {
            return Ok(Vec::new());
        };
        let until = now.saturating_add(leads.iter().copied().max().unwrap_or(0));
        on_postgres!(self, pg => pg.tokens_to_warn(&sql, now, until));
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![now, until], row_to_token)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The first `limit` live tokens that live longer than `longer_than` seconds (at least
    /// [`SHORT_LIFETIME`]), soonest expiry first: the expiry gauges of `/metrics`, read
    /// through `tokens_warnable` like the warning scan.
    pub fn long_lived_tokens(
        &self,
        now: Timestamp,
        longer_than: i64,
        limit: usize,
    ) -> Result<Vec<TokenRecord>> {
        on_postgres!(self, pg => pg.long_lived_tokens(now, longer_than, limit));
        self.read(|c| {
            let mut stmt = c.prepare_cached(&long_lived_sql(limit))?;
            let rows =
                stmt.query_map(params![now, longer_than.max(SHORT_LIFETIME)], row_to_token)?;
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
        on_postgres!(self, pg => pg.revoke_token(id, reason, now, audit));
        self.write(|tx| {
            let out = revoke_one(tx, id, reason, now)?;
            if let Some(RevokeOutcome::Revoked(_)) = &out {
                audit::append(tx, audit, now)?;
            }
            Ok(out)
        })
    }

    /// How many live tokens client `id` holds (codes included).
    pub fn count_live_tokens(&self, id: &str, now: Timestamp) -> Result<usize> {
        on_postgres!(self, pg => pg.count_live_tokens(id, now));
        let sql = format!("SELECT count(*) FROM ({})", live_tokens("id", true, ""));
        let params = live_params(now, Some(id));
        self.read(|c| {
            let n: Vec<i64> = query_named(c, &sql, &params, |r| r.get(0))?;
            Ok(n.first().copied().unwrap_or(0) as usize)
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
        on_postgres!(self, pg => pg.rotate_token(old, old_expires_at, new, audit));
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
        on_postgres!(self, pg => pg.replacement_of(id));
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
        on_postgres!(self, pg => pg.record_token_uses(uses));
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
    let t = crate::token::generate(TokenKind::Access, issued_at);
    let scopes = vec![Scope::DirectoryRead];
    let r = NewTokenRecord::own_access(&t, client, scopes, issued_at, expires_at, IssuedVia::Cli);
    (t, r)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::params_from_iter;

    use super::*;
    use crate::model::{AuditAction, Scope};
    use crate::store::Store;

    /// The expiry-warning scan returns exactly the tokens that `expiry::applicable` gives a
    /// lead, over a grid of lifetimes and times left around each lead, less those whose
    /// tightest lead was recorded; and SQLite answers it, and the expiry gauges' scan, from
    /// the partial index.
    #[test]
    fn the_warning_scan_returns_the_tokens_a_lead_applies_to_and_not_yet_warned() {
        for store in crate::store::testing::stores("warning_scan") {
            warning_scan_on(&store.store, store.backend);
        }
    }

    fn warning_scan_on(store: &Arc<Store>, backend: &str) {
        use crate::monitor::expiry::applicable;
        use crate::time::Duration;
        let admin = crate::admin::Admin::new(store, crate::time::Clock::system(), "test");
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
        let day = 86_400;
        let leads = [Duration::days(30), Duration::days(7), Duration::days(1)];
        let secs: Vec<i64> = leads.iter().map(|l| l.secs()).collect();
        let near = |d: i64| [d * day - 1, d * day, d * day + 1];
        let mut lifetimes = vec![3600, 3601, day / 2, 365 * day];
        let mut lefts = vec![-1, 0, 1, 3600, 100 * day];
        for d in [1, 2, 7, 8, 30, 31] {
            lifetimes.extend(near(d));
            lefts.extend(near(d));
        }
        let mut expected = Vec::new();
        let mut tightest = std::collections::HashMap::new();
        let mut long_lived = Vec::new();
        for &lifetime in &lifetimes {
            for &left in lefts.iter().filter(|&&left| left <= lifetime) {
                let (t, r) = access_record(&client, now + left - lifetime, now + left);
                store.insert_tokens(&[r]).unwrap();
                if let Some(&l) = applicable(lifetime, left, &leads).first() {
                    expected.push(t.id.to_string());
                    tightest.insert(t.id.to_string(), (l, lifetime, left));
                }
                if left > 0 && lifetime > day {
                    long_lived.push((now + left, t.id.to_string()));
                }
            }
        }
        // The expiry gauges' scan, on the same grid: the live tokens that lived longer than
        // a day, soonest expiry first (the limit, here above their number, is written in).
        long_lived.sort();
        let gauges: Vec<String> = store
            .long_lived_tokens(now, day, 1000)
            .unwrap()
            .into_iter()
            .map(|t| t.id.to_string())
            .collect();
        let soonest: Vec<String> = long_lived.into_iter().map(|(_, id)| id).collect();
        assert_eq!(gauges, soonest, "{backend}");
        let scan = || {
            let mut ids: Vec<String> = store
                .tokens_to_warn(now, &secs)
                .unwrap()
                .into_iter()
                .map(|t| t.id.to_string())
                .collect();
            ids.sort();
            ids
        };
        expected.sort();
        assert!(
            expected.len() > 20,
            "the grid puts tokens inside every lead"
        );
        assert_eq!(scan(), expected, "{backend}");

        // A token whose tightest lead is recorded is not due; one whose only recorded lead
        // is a wider one is.
        let audit = NewAuditEvent::new("test", AuditAction::MonitorExpiryWarning, "sent");
        let with_tightest = |lead: i64| {
            tightest
                .iter()
                .find(|(_, (l, _, _))| *l == lead)
                .map(|(id, _)| id.clone())
                .unwrap()
        };
        let warned = with_tightest(day);
        assert!(store.record_warning(&warned, &[day], now, &audit).unwrap());
        let wider = with_tightest(7 * day);
        assert!(
            store
                .record_warning(&wider, &[30 * day], now, &audit)
                .unwrap()
        );
        let mut left: Vec<String> = expected
            .iter()
            .filter(|&id| *id != warned)
            .cloned()
            .collect();
        left.sort();
        assert_eq!(
            scan(),
            left,
            "{backend}: {warned} was warned at its tightest lead; {wider} was not"
        );

        if backend != "sqlite" {
            return;
        }
        // SQLite answers both scans from the partial index, not by visiting every token.
        let sql = to_warn_sql(&secs).unwrap();
        let plans: Vec<String> = store
            .read(|c| {
                let mut out = Vec::new();
                for sql in [
                    sql.clone(),
                    format!("SELECT {COLUMNS} {LONG_LIVED_EXPIRING}"),
                ] {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let n = stmt.parameter_count();
                    let args = [now, now + 1, 3600];
                    let rows =
                        stmt.query_map(params_from_iter(&args[..n]), |r| r.get::<_, String>(3))?;
                    out.push(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "));
                }
                Ok(out)
            })
            .unwrap();
        assert!(
            plans[0].contains("COVERING INDEX tokens_warnable"),
            "the warning scan reads the index alone: {}",
            plans[0]
        );
        assert!(plans[1].contains("tokens_warnable"), "{}", plans[1]);
    }

    #[test]
    fn stored_codes_read_back_as_what_was_written() {
        for kind in [
            TokenKind::Access,
            TokenKind::Refresh,
            TokenKind::AuthorizationCode,
        ] {
            assert_eq!(kind_from_code(kind_code(kind)), Some(kind));
        }
        assert_eq!(kind_from_code(kind_code(TokenKind::ClientSecret)), None);
        for via in IssuedVia::ALL {
            assert_eq!(via_from_code(via_code(via)), Some(via));
        }
        let both = vec![Scope::DirectoryRead, Scope::DirectoryWrite];
        for scopes in [
            vec![],
            vec![Scope::DirectoryRead],
            vec![Scope::DirectoryWrite],
            both,
        ] {
            assert_eq!(scopes_from_bits(scope_bits(&scopes)), Some(scopes));
        }
        assert_eq!(
            scopes_from_bits(4),
            None,
            "an unknown bit is an error, not dropped"
        );
    }

    #[test]
    fn live_listings_read_the_client_index_across_clients() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_or_create(dir.path().join("s.db")).unwrap());
        let register = |name| crate::store::testing::client(&store, name);
        let (a, b) = (register("a"), register("b"));
        let now = 1_800_000_000;
        let issue = |client: &str, issued: i64, expires: i64| {
            let (t, r) = access_record(client, issued, expires);
            store.insert_tokens(&[r]).unwrap();
            t.id
        };
        let a_soon = issue(&a, now - 100, now + 50);
        let b_hour = issue(&b, now - 10, now + 3590);
        let a_year = issue(&a, now - 86_400, now + 365 * 86_400);
        let _a_expired = issue(&a, now - 7200, now - 3600);
        let b_revoked = issue(&b, now - 10, now + 600);
        store
            .revoke_token(
                &b_revoked,
                "test",
                now,
                &NewAuditEvent::new("test", crate::model::AuditAction::TokenRevoke, "success"),
            )
            .unwrap();
        let ids = |f: TokenFilter| -> Vec<TokenId> {
            let found = store.list_tokens(&f, now).unwrap();
            found.into_iter().map(|t| t.id).collect()
        };
        assert_eq!(
            ids(TokenFilter::default()),
            vec![a_soon.clone(), b_hour.clone(), a_year.clone()],
            "live tokens of both clients, soonest expiry first"
        );
        let within_a_day = TokenFilter {
            expiring_before: Some(now + 86_400),
            ..TokenFilter::default()
        };
        assert_eq!(ids(within_a_day), vec![a_soon.clone(), b_hour.clone()]);
        let of_a = TokenFilter {
            client_id: Some(a.clone()),
            limit: Some(1),
            ..TokenFilter::default()
        };
        assert_eq!(ids(of_a), vec![a_soon.clone()]);
        let counts = store.active_token_counts(now).unwrap();
        assert_eq!(counts.len(), 2);
        assert!(
            counts.contains(&(a.clone(), 2)) && counts.contains(&(b, 1)),
            "{counts:?}"
        );
        let long = store.long_lived_tokens(now, 86_400, 10).unwrap();
        assert_eq!(long.iter().map(|t| &t.id).collect::<Vec<_>>(), [&a_year]);
        assert!(store.long_lived_tokens(now, 86_400, 0).unwrap().is_empty());
        // Cutting a client off counts its short-lived ones (by id) and its long-lived ones
        // (by the index), kills them in one UPDATE, and leaves the other client alone.
        assert_eq!(store.count_live_tokens(&a, now).unwrap(), 2);
        store
            .cut_off_client(
                &a,
                "test cut",
                None,
                now,
                &NewAuditEvent::new("test", crate::model::AuditAction::TokenRevoke, "success"),
            )
            .unwrap();
        assert_eq!(store.count_live_tokens(&a, now).unwrap(), 0);
        assert_eq!(ids(TokenFilter::default()), vec![b_hour.clone()]);
        let cut = store.token(&a_year).unwrap().unwrap();
        assert_eq!(cut.revoked_at, Some(now));
        assert_eq!(cut.revoked_reason.as_deref(), Some("test cut"));
        assert!(store.token(&b_hour).unwrap().unwrap().revoked_at.is_none());
        // A later cut does not rewrite when, or why, an earlier one killed a token.
        store
            .cut_off_client(
                &a,
                "second cut",
                None,
                now + 5,
                &NewAuditEvent::new("test", crate::model::AuditAction::TokenRevoke, "success"),
            )
            .unwrap();
        let cut = store.token(&a_year).unwrap().unwrap();
        assert_eq!(
            (cut.revoked_at, cut.revoked_reason.as_deref()),
            (Some(now), Some("test cut"))
        );
        // A token minted on the old epoch after the cut is refused, not stored alive.
        let (_, late) = access_record(&a, now, now + 600);
        assert!(matches!(
            store.insert_tokens(&[late]),
            Err(StoreError::ClientCutOff(_))
        ));

        // Both live listings search two indexes (the client index for long-lived tokens,
        // the primary key for the last hour's), and neither scans the table.
        for filter in [
            TokenFilter::default(),
            TokenFilter {
                client_id: Some(a),
                ..TokenFilter::default()
            },
        ] {
            let (sql, params) = list_query(&filter, now);
            let plan = store
                .read(|c| {
                    let sql = format!("EXPLAIN QUERY PLAN {sql}");
                    query_named(c, &sql, &params, |r| r.get::<_, String>(3))
                })
                .unwrap()
                .join("; ");
            assert!(
                plan.contains("SEARCH tokens USING INDEX tokens_client"),
                "{plan}"
            );
            assert!(plan.contains("USING PRIMARY KEY (id>? AND id<?)"), "{plan}");
            assert!(!plan.contains("SCAN tokens"), "{plan}");
        }
    }

    #[test]
    fn finding_a_replacement_uses_the_parent_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
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
