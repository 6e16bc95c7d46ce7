//! PostgreSQL bodies of `store::retention`: counting and deleting tokens long expired, in
//! batches along the primary key (the loop is `store::retention`'s).

use super::{Postgres, get};
use crate::store::Result;
use crate::store::retention::Pruned;
use crate::store::tokens::kind_code;
use crate::time::Timestamp;
use crate::token::TokenKind;

impl Postgres {
    pub fn count_expired_tokens(&self, cutoff: Timestamp) -> Result<Pruned> {
        self.read(|db| {
            let r = db.query_one(
                "SELECT count(*), count(*) FILTER (WHERE kind = $2) FROM tokens \
                 WHERE expires_at < $1",
                &[&cutoff, &kind_code(TokenKind::AuthorizationCode)],
            )?;
            Ok(Pruned {
                tokens: u64::try_from(get::<i64>(&r, 0)?).unwrap_or(0),
                codes: u64::try_from(get::<i64>(&r, 1)?).unwrap_or(0),
            })
        })
    }

    pub fn prune_batch(
        &self,
        after: &str,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<(usize, u64, Option<String>)> {
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        self.write(|tx| {
            let found: Vec<(String, i64)> = tx
                .query(
                    "SELECT id, kind FROM tokens WHERE id > $1 AND expires_at < $2 \
                     ORDER BY id LIMIT $3",
                    &[&after, &cutoff, &limit],
                )?
                .iter()
                .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
                .collect::<Result<_>>()?;
            let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
            let code = kind_code(TokenKind::AuthorizationCode);
            tx.execute(
                "DELETE FROM authorization_codes WHERE token_id = ANY($1)",
                &[&ids],
            )?;
            tx.execute(
                "DELETE FROM expiry_warnings WHERE subject = ANY($1)",
                &[&ids],
            )?;
            tx.execute("DELETE FROM tokens WHERE id = ANY($1)", &[&ids])?;
            let codes = found.iter().filter(|(_, k)| *k == code).count() as u64;
            Ok((found.len(), codes, found.last().map(|(id, _)| id.clone())))
        })
    }
}
