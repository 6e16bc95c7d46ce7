//! PostgreSQL bodies of `store::grants`: the OAuth2 grant transactions (a code redeemed
//! once, a refresh token rotated once, a family revoked), each one write transaction as on
//! SQLite, so two concurrent requests with the same code or refresh token cannot both win.

use super::tokens::{insert_token, row_to_token, token_by_value};
use super::{Postgres, Tx, get};
use crate::model::TokenRecord;
use crate::store::grants::{
    CodeGrant, ROTATED_REASON, RedeemOutcome, RotateOutcome, SUPERSEDED_REASON,
};
use crate::store::tokens::COLUMNS;
use crate::store::{NewTokenRecord, Result};
use crate::time::Timestamp;
use crate::token::{ParsedToken, TokenKind};

fn may_retry(
    tx: &mut Tx<'_, '_>,
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
    let used: bool = get(
        &tx.query_one(
            "SELECT EXISTS (SELECT 1 FROM tokens WHERE parent_id = $1 \
             AND (revoked_reason = $2 OR last_used_at IS NOT NULL))",
            &[&record.id.as_str(), &ROTATED_REASON],
        )?,
        0,
    )?;
    Ok(!used)
}

fn cut_off_since(tx: &mut Tx<'_, '_>, id: &str) -> Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT t.client_epoch != c.token_epoch FROM tokens t \
             JOIN clients c ON c.id = t.client_id WHERE t.id = $1",
            &[&id],
        )?
        .map(|r| get(&r, 0))
        .transpose()?
        .unwrap_or(true))
}

fn revoke_where(
    tx: &mut Tx<'_, '_>,
    column: &str,
    value: &str,
    reason: &str,
    now: Timestamp,
) -> Result<Vec<TokenRecord>> {
    tx.query(
        &format!(
            "UPDATE tokens SET revoked_at = $2, revoked_reason = $3 \
             WHERE {column} = $1 AND revoked_at IS NULL RETURNING {COLUMNS}"
        ),
        &[&value, &now, &reason],
    )?
    .iter()
    .map(row_to_token)
    .collect()
}

impl Postgres {
    pub fn insert_code(
        &self,
        code: &NewTokenRecord,
        redirect_uri: &str,
        redirect_uri_explicit: bool,
        code_challenge: Option<&str>,
    ) -> Result<()> {
        self.write(|tx| {
            insert_token(tx, code)?;
            tx.execute(
                "INSERT INTO authorization_codes (token_id, redirect_uri, redirect_uri_explicit, \
                 code_challenge) VALUES ($1, $2, $3, $4)",
                &[
                    &code.id.as_str(),
                    &redirect_uri,
                    &i64::from(redirect_uri_explicit),
                    &code_challenge,
                ],
            )?;
            Ok(())
        })
    }

    pub fn redeem_code<R>(
        &self,
        presented: &ParsedToken,
        now: Timestamp,
        family_reason: &str,
        check: impl FnOnce(&CodeGrant) -> std::result::Result<Vec<NewTokenRecord>, R>,
    ) -> Result<RedeemOutcome<R>> {
        self.write(|tx| {
            let Some(record) = token_by_value(tx, presented)? else {
                return Ok(RedeemOutcome::Unknown);
            };
            if record.kind != TokenKind::AuthorizationCode {
                return Ok(RedeemOutcome::Unknown);
            }
            let Some(row) = tx.query_opt(
                "SELECT redirect_uri, redirect_uri_explicit, code_challenge, consumed_at \
                 FROM authorization_codes WHERE token_id = $1",
                &[&record.id.as_str()],
            )?
            else {
                return Ok(RedeemOutcome::Unknown);
            };
            let redirect_uri: String = get(&row, 0)?;
            let explicit = get::<i64>(&row, 1)? != 0;
            let challenge: Option<String> = get(&row, 2)?;
            let consumed_at: Option<i64> = get(&row, 3)?;
            if consumed_at.is_some() {
                let family = record
                    .family_id
                    .clone()
                    .unwrap_or_else(|| record.id.to_string());
                let revoked = revoke_where(tx, "family_id", &family, family_reason, now)?;
                return Ok(RedeemOutcome::Replayed {
                    code: record,
                    revoked,
                });
            }
            if record.revoked_at.is_some() {
                return Ok(RedeemOutcome::Unknown);
            }
            tx.execute(
                "UPDATE authorization_codes SET consumed_at = $2 WHERE token_id = $1",
                &[&record.id.as_str(), &now],
            )?;
            let grant = CodeGrant {
                record,
                redirect_uri,
                redirect_uri_explicit: explicit,
                code_challenge: challenge,
            };
            match check(&grant) {
                Ok(batch) => {
                    for t in &batch {
                        insert_token(tx, t)?;
                    }
                    Ok(RedeemOutcome::Issued(grant))
                }
                Err(r) => Ok(RedeemOutcome::Rejected(r)),
            }
        })
    }

    pub fn rotate_refresh<R>(
        &self,
        presented: &ParsedToken,
        now: Timestamp,
        family_reason: &str,
        grace: Option<i64>,
        check: impl FnOnce(&TokenRecord) -> std::result::Result<Vec<NewTokenRecord>, R>,
    ) -> Result<RotateOutcome<R>> {
        self.write(|tx| {
            let Some(record) = token_by_value(tx, presented)? else {
                return Ok(RotateOutcome::Inactive(None));
            };
            if record.kind != TokenKind::Refresh {
                return Ok(RotateOutcome::Inactive(None));
            }
            if cut_off_since(tx, record.id.as_str())? {
                return Ok(RotateOutcome::Inactive(Some(record)));
            }
            if record.revoked_reason.as_deref() == Some(ROTATED_REASON)
                && may_retry(tx, &record, grace, now)?
            {
                let batch = match check(&record) {
                    Ok(batch) => batch,
                    Err(r) => return Ok(RotateOutcome::Rejected(r)),
                };
                let superseded =
                    revoke_where(tx, "parent_id", record.id.as_str(), SUPERSEDED_REASON, now)?;
                for t in &batch {
                    insert_token(tx, t)?;
                }
                return Ok(RotateOutcome::Retried {
                    token: record,
                    superseded,
                });
            }
            if matches!(
                record.revoked_reason.as_deref(),
                Some(ROTATED_REASON | SUPERSEDED_REASON)
            ) {
                let family = record
                    .family_id
                    .clone()
                    .unwrap_or_else(|| record.id.to_string());
                let revoked = revoke_where(tx, "family_id", &family, family_reason, now)?;
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
            tx.execute(
                "UPDATE tokens SET revoked_at = $2, revoked_reason = $3 WHERE id = $1",
                &[&record.id.as_str(), &now, &ROTATED_REASON],
            )?;
            for t in &batch {
                insert_token(tx, t)?;
            }
            Ok(RotateOutcome::Rotated(record))
        })
    }

    pub fn revoke_family(
        &self,
        family_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<TokenRecord>> {
        self.write(|tx| revoke_where(tx, "family_id", family_id, reason, now))
    }
}
