//! The transactions of the OAuth2 grants: storing an authorization code with its request
//! data, redeeming it exactly once, rotating a refresh token exactly once, and revoking a
//! whole grant family. Each is one `BEGIN IMMEDIATE` transaction so two concurrent requests
//! with the same code or refresh token cannot both succeed.
//!
//! The checks that decide whether a grant may proceed (client, redirect URI, PKCE, scope)
//! belong to the OAuth layer; it passes them in as a closure that runs inside the
//! transaction and returns the token records to insert.

use rusqlite::{Connection, OptionalExtension, params};

use super::tokens::{COLUMNS, insert_token, row_to_token, token_by_value};
use super::{Result, Store, on_postgres};
use crate::model::TokenRecord;
use crate::store::NewTokenRecord;
use crate::time::Timestamp;
use crate::token::{ParsedToken, TokenKind};

/// An authorization code's stored request data.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeGrant {
    /// The code's row: client, user (subject), scopes, expiry, family id.
    pub record: TokenRecord,
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (RFC 6749 §4.1.3).
    pub redirect_uri_explicit: bool,
    pub code_challenge: Option<String>,
}

/// What redeeming an authorization code found.
#[derive(Debug)]
pub enum RedeemOutcome<R> {
    /// The checks passed; the code is consumed and the tokens are committed.
    Issued(CodeGrant),
    /// The checks refused; the code is consumed anyway (it is single-use).
    Rejected(R),
    /// The code was already exchanged: every token of its family is now revoked.
    Replayed {
        code: TokenRecord,
        revoked: Vec<TokenRecord>,
    },
    /// No such code, or it was revoked.
    Unknown,
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum RotateOutcome<R> {
    /// The token is now spent (revoked as `rotated`) and its successors are committed.
    Rotated(TokenRecord),
    /// The checks refused; nothing changed.
    Rejected(R),
    /// The token had already been rotated: someone holds a copy. The whole family is
    /// now revoked.
    Reused {
        token: TokenRecord,
        revoked: Vec<TokenRecord>,
    },
    /// The token had been rotated within the grace, and what that rotation issued was
    /// never used (its answer was lost, most likely): those tokens are revoked and the
    /// successors from `check` committed in their place.
    Retried {
        token: TokenRecord,
        superseded: Vec<TokenRecord>,
    },
    /// No such refresh token, or it expired or was revoked for another reason.
    Inactive(Option<TokenRecord>),
}

/// Why a refresh token was marked spent; reuse detection keys on it.
pub const ROTATED_REASON: &str = "rotated";
/// Why the tokens of a rotation that was retried within the grace were revoked.
pub(super) const SUPERSEDED_REASON: &str = "superseded: the rotation that issued it was retried";

/// Whether a rotation of `record` retried `now` may replace the first one: within `grace`
/// seconds of it, and nothing the first one issued has been used since (a rotated
/// successor means the client got that answer, so this is a copy being replayed). An
/// access token's use reaches `last_used_at` within about a second (it is recorded in
/// batches), so a use in the last second may go unseen here.
fn may_retry(
    tx: &mut impl GrantTx,
    record: &TokenRecord,
    grace: Option<i64>,
    now: Timestamp,
) -> Result<bool> {
    let Some(grace) = grace else {
        return Ok(false);
    };
    if record.expires_at <= now || record.revoked_at.is_none_or(|t| now - t > grace) {
        return Ok(false);
    }
    Ok(!tx.successors_used(record.id.as_str())?)
}

/// The tokens revoked together with another: its grant family, or what it issued.
#[derive(Debug, Clone, Copy)]
pub(super) enum Related {
    /// Every token with this `family_id`.
    Family,
    /// Every token with this `parent_id`.
    Children,
}

impl Related {
    pub(super) fn column(self) -> &'static str {
        match self {
            Related::Family => "family_id",
            Related::Children => "parent_id",
        }
    }
}

/// An authorization code's stored request data, and when it was exchanged.
pub(super) struct CodeRow {
    pub redirect_uri: String,
    pub explicit: bool,
    pub challenge: Option<String>,
    pub consumed_at: Option<Timestamp>,
}

/// The steps of the grant transactions, on one backend's open write transaction. The
/// decisions (a code exchanged twice, a refresh token reused, a rotation retried within
/// its grace) are made once, in [`redeem_code_in`] and [`rotate_refresh_in`], for both
/// backends: each implements only these steps, in its own SQL (SQLite's below, in this
/// file; PostgreSQL's in `pg/grants.rs`).
pub(super) trait GrantTx {
    fn token_by_value(&mut self, presented: &ParsedToken) -> Result<Option<TokenRecord>>;
    fn insert_token(&mut self, t: &NewTokenRecord) -> Result<()>;
    /// The request data stored with the code `token_id`.
    fn code_row(&mut self, token_id: &str) -> Result<Option<CodeRow>>;
    /// Mark the code `token_id` exchanged.
    fn consume_code(&mut self, token_id: &str, now: Timestamp) -> Result<()>;
    /// Whether token `token_id`'s client has been cut off since it was issued (schema.sql,
    /// migration 7); true for a token that is gone.
    fn cut_off_since(&mut self, token_id: &str) -> Result<bool>;
    /// Whether anything token `token_id` issued has been rotated or used.
    fn successors_used(&mut self, token_id: &str) -> Result<bool>;
    /// Revoke the live tokens related to `value` as `by` says; returns them.
    fn revoke_related(
        &mut self,
        by: Related,
        value: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<TokenRecord>>;
    /// Mark refresh token `token_id` spent ([`ROTATED_REASON`]).
    fn mark_rotated(&mut self, token_id: &str, now: Timestamp) -> Result<()>;
}

impl GrantTx for &Connection {
    fn token_by_value(&mut self, presented: &ParsedToken) -> Result<Option<TokenRecord>> {
        token_by_value(self, presented)
    }

    fn insert_token(&mut self, t: &NewTokenRecord) -> Result<()> {
        insert_token(self, t)
    }

    fn code_row(&mut self, token_id: &str) -> Result<Option<CodeRow>> {
        Ok(self
            .query_row(
                "SELECT redirect_uri, redirect_uri_explicit, code_challenge, consumed_at \
                 FROM authorization_codes WHERE token_id = ?1",
                [token_id],
                |r| {
                    Ok(CodeRow {
                        redirect_uri: r.get(0)?,
                        explicit: r.get(1)?,
                        challenge: r.get(2)?,
                        consumed_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn consume_code(&mut self, token_id: &str, now: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE authorization_codes SET consumed_at = ?2 WHERE token_id = ?1",
            params![token_id, now],
        )?;
        Ok(())
    }

    fn cut_off_since(&mut self, token_id: &str) -> Result<bool> {
        Ok(self
            .prepare_cached(
                "SELECT t.client_epoch != c.token_epoch FROM tokens t \
                 JOIN clients c ON c.id = t.client_id WHERE t.id = ?1",
            )?
            .query_row([token_id], |r| r.get(0))
            .optional()?
            .unwrap_or(true))
    }

    fn successors_used(&mut self, token_id: &str) -> Result<bool> {
        Ok(self
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE parent_id = ?1 \
                 AND (revoked_reason = ?2 OR last_used_at IS NOT NULL))",
            )?
            .query_row(params![token_id, ROTATED_REASON], |r| r.get(0))?)
    }

    fn revoke_related(
        &mut self,
        by: Related,
        value: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<TokenRecord>> {
        let mut stmt = self.prepare_cached(&format!(
            "UPDATE tokens SET revoked_at = ?2, revoked_reason = ?3 \
             WHERE {} = ?1 AND revoked_at IS NULL RETURNING {COLUMNS}",
            by.column()
        ))?;
        let rows = stmt.query_map(params![value, now, reason], row_to_token)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn mark_rotated(&mut self, token_id: &str, now: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE tokens SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1",
            params![token_id, now, ROTATED_REASON],
        )?;
        Ok(())
    }
}

/// The family a token belongs to (a token issued outside any grant is its own family).
fn family_of(record: &TokenRecord) -> String {
    record
        .family_id
        .clone()
        .unwrap_or_else(|| record.id.to_string())
}

/// [`Store::redeem_code`] inside its transaction, on either backend.
pub(super) fn redeem_code_in<R>(
    tx: &mut impl GrantTx,
    presented: &ParsedToken,
    now: Timestamp,
    family_reason: &str,
    check: impl FnOnce(&CodeGrant) -> std::result::Result<Vec<NewTokenRecord>, R>,
) -> Result<RedeemOutcome<R>> {
    let Some(record) = tx.token_by_value(presented)? else {
        return Ok(RedeemOutcome::Unknown);
    };
    if record.kind != TokenKind::AuthorizationCode {
        return Ok(RedeemOutcome::Unknown);
    }
    let Some(row) = tx.code_row(record.id.as_str())? else {
        return Ok(RedeemOutcome::Unknown);
    };
    if row.consumed_at.is_some() {
        let revoked =
            tx.revoke_related(Related::Family, &family_of(&record), family_reason, now)?;
        return Ok(RedeemOutcome::Replayed {
            code: record,
            revoked,
        });
    }
    if record.revoked_at.is_some() {
        return Ok(RedeemOutcome::Unknown);
    }
    tx.consume_code(record.id.as_str(), now)?;
    let grant = CodeGrant {
        record,
        redirect_uri: row.redirect_uri,
        redirect_uri_explicit: row.explicit,
        code_challenge: row.challenge,
    };
    match check(&grant) {
        Ok(batch) => {
            for t in &batch {
                tx.insert_token(t)?;
            }
            Ok(RedeemOutcome::Issued(grant))
        }
        Err(r) => Ok(RedeemOutcome::Rejected(r)),
    }
}

/// [`Store::rotate_refresh`] inside its transaction, on either backend.
pub(super) fn rotate_refresh_in<R>(
    tx: &mut impl GrantTx,
    presented: &ParsedToken,
    now: Timestamp,
    family_reason: &str,
    grace: Option<i64>,
    check: impl FnOnce(&TokenRecord) -> std::result::Result<Vec<NewTokenRecord>, R>,
) -> Result<RotateOutcome<R>> {
    let Some(record) = tx.token_by_value(presented)? else {
        return Ok(RotateOutcome::Inactive(None));
    };
    if record.kind != TokenKind::Refresh {
        return Ok(RotateOutcome::Inactive(None));
    }
    // A token of a client cut off since is dead, whatever else it was: a retry within the
    // grace must not re-issue from it.
    if tx.cut_off_since(record.id.as_str())? {
        return Ok(RotateOutcome::Inactive(Some(record)));
    }
    if record.revoked_reason.as_deref() == Some(ROTATED_REASON)
        && may_retry(tx, &record, grace, now)?
    {
        let batch = match check(&record) {
            Ok(batch) => batch,
            Err(r) => return Ok(RotateOutcome::Rejected(r)),
        };
        let superseded = tx.revoke_related(
            Related::Children,
            record.id.as_str(),
            SUPERSEDED_REASON,
            now,
        )?;
        for t in &batch {
            tx.insert_token(t)?;
        }
        return Ok(RotateOutcome::Retried {
            token: record,
            superseded,
        });
    }
    // A superseded token (the answer a retry replaced) presented again is a copy too:
    // whoever retried may be a thief holding the original, and the client that got the
    // first answer is now showing it. Revoke the family.
    if matches!(
        record.revoked_reason.as_deref(),
        Some(ROTATED_REASON | SUPERSEDED_REASON)
    ) {
        let revoked =
            tx.revoke_related(Related::Family, &family_of(&record), family_reason, now)?;
        return Ok(RotateOutcome::Reused {
            token: record,
            revoked,
        });
    }
    if record.revoked_at.is_some() || record.expires_at <= now {
        return Ok(RotateOutcome::Inactive(Some(record)));
    }
    let batch = match check(&record) {
        Ok(batch) => batch,
        Err(r) => return Ok(RotateOutcome::Rejected(r)),
    };
    tx.mark_rotated(record.id.as_str(), now)?;
    for t in &batch {
        tx.insert_token(t)?;
    }
    Ok(RotateOutcome::Rotated(record))
}

impl Store {
    /// Store a new authorization code with its request data.
    pub fn insert_code(
        &self,
        code: &NewTokenRecord,
        redirect_uri: &str,
        redirect_uri_explicit: bool,
        code_challenge: Option<&str>,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.insert_code(code, redirect_uri, redirect_uri_explicit, code_challenge));
        self.write(|tx| {
            insert_token(tx, code)?;
            tx.execute(
                "INSERT INTO authorization_codes (token_id, redirect_uri, redirect_uri_explicit, \
                 code_challenge) VALUES (?1, ?2, ?3, ?4)",
                params![
                    code.id.as_str(),
                    redirect_uri,
                    redirect_uri_explicit,
                    code_challenge
                ],
            )?;
            Ok(())
        })
    }

    /// Redeem the presented code once. `check` runs inside the transaction on a
    /// fresh code and returns the tokens to issue, or a refusal. A code presented a second
    /// time revokes its family (`family_reason`) and reports a replay.
    pub fn redeem_code<R>(
        &self,
        presented: &ParsedToken,
        now: Timestamp,
        family_reason: &str,
        check: impl FnOnce(&CodeGrant) -> std::result::Result<Vec<NewTokenRecord>, R>,
    ) -> Result<RedeemOutcome<R>> {
        on_postgres!(self, pg => pg.write(|tx| redeem_code_in(tx, presented, now, family_reason, check)));
        self.write(|tx| {
            let mut conn: &Connection = tx;
            redeem_code_in(&mut conn, presented, now, family_reason, check)
        })
    }

    /// Rotate the presented refresh token: `check` runs inside the transaction on a
    /// live token and returns its successors (or a refusal, which changes nothing). A token
    /// that was already rotated revokes its whole family (`family_reason`), unless it was
    /// rotated less than `grace` seconds ago and nothing that rotation issued has been used:
    /// then that rotation is replaced ([`RotateOutcome::Retried`]).
    pub fn rotate_refresh<R>(
        &self,
        presented: &ParsedToken,
        now: Timestamp,
        family_reason: &str,
        grace: Option<i64>,
        check: impl FnOnce(&TokenRecord) -> std::result::Result<Vec<NewTokenRecord>, R>,
    ) -> Result<RotateOutcome<R>> {
        on_postgres!(self, pg => pg.write(|tx| {
            rotate_refresh_in(tx, presented, now, family_reason, grace, check)
        }));
        self.write(|tx| {
            let mut conn: &Connection = tx;
            rotate_refresh_in(&mut conn, presented, now, family_reason, grace, check)
        })
    }

    /// Revoke every live token of a grant family; returns what was revoked.
    pub fn revoke_family(
        &self,
        family_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<TokenRecord>> {
        on_postgres!(self, pg => pg.write(|tx| tx.revoke_related(Related::Family, family_id, reason, now)));
        self.write(|tx| {
            let mut conn: &Connection = tx;
            conn.revoke_related(Related::Family, family_id, reason, now)
        })
    }
}
