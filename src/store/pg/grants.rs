//! PostgreSQL's steps of the OAuth2 grant transactions ([`GrantTx`]: a code redeemed
//! once, a refresh token rotated once, a family revoked). The decisions are made once for
//! both backends, in `store::grants`; each runs in one write transaction, as on SQLite, so
//! two concurrent requests with the same code or refresh token cannot both win.

use super::tokens::{insert_token, row_to_token, token_by_value};
use super::{Postgres, Tx, get};
use crate::model::TokenRecord;
use crate::store::grants::{CodeRow, GrantTx, ROTATED_REASON, Related};
use crate::store::tokens::COLUMNS;
use crate::store::{NewTokenRecord, Result};
use crate::time::Timestamp;
use crate::token::ParsedToken;

impl GrantTx for Tx<'_, '_> {
    fn token_by_value(&mut self, presented: &ParsedToken) -> Result<Option<TokenRecord>> {
        token_by_value(self, presented)
    }

    fn insert_token(&mut self, t: &NewTokenRecord) -> Result<()> {
        insert_token(self, t)
    }

    fn code_row(&mut self, token_id: &str) -> Result<Option<CodeRow>> {
        let Some(row) = self.query_opt(
            "SELECT redirect_uri, redirect_uri_explicit, code_challenge, consumed_at \
             FROM authorization_codes WHERE token_id = $1",
            &[&token_id],
        )?
        else {
            return Ok(None);
        };
        Ok(Some(CodeRow {
            redirect_uri: get(&row, 0)?,
            explicit: get::<i64>(&row, 1)? != 0,
            challenge: get(&row, 2)?,
            consumed_at: get(&row, 3)?,
        }))
    }

    fn consume_code(&mut self, token_id: &str, now: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE authorization_codes SET consumed_at = $2 WHERE token_id = $1",
            &[&token_id, &now],
        )?;
        Ok(())
    }

    fn cut_off_since(&mut self, token_id: &str) -> Result<bool> {
        Ok(self
            .query_opt(
                "SELECT t.client_epoch != c.token_epoch FROM tokens t \
                 JOIN clients c ON c.id = t.client_id WHERE t.id = $1",
                &[&token_id],
            )?
            .map(|r| get(&r, 0))
            .transpose()?
            .unwrap_or(true))
    }

    fn successors_used(&mut self, token_id: &str) -> Result<bool> {
        get(
            &self.query_one(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE parent_id = $1 \
                 AND (revoked_reason = $2 OR last_used_at IS NOT NULL))",
                &[&token_id, &ROTATED_REASON],
            )?,
            0,
        )
    }

    fn revoke_related(
        &mut self,
        by: Related,
        value: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<TokenRecord>> {
        self.query(
            &format!(
                "UPDATE tokens SET revoked_at = $2, revoked_reason = $3 \
                 WHERE {} = $1 AND revoked_at IS NULL RETURNING {COLUMNS}",
                by.column()
            ),
            &[&value, &now, &reason],
        )?
        .iter()
        .map(row_to_token)
        .collect()
    }

    fn mark_rotated(&mut self, token_id: &str, now: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE tokens SET revoked_at = $2, revoked_reason = $3 WHERE id = $1",
            &[&token_id, &now, &ROTATED_REASON],
        )?;
        Ok(())
    }
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
}
