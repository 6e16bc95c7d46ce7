//! Deleting tokens that have outlived any use: `config prune-tokens`.
//!
//! Token rows are never deleted otherwise (revocation sets `revoked_at`), so `show-token`
//! can explain any token an IdP still holds. A token that expired long ago explains
//! nothing anyone still needs, and an IdP that fetches a fresh one-hour token for every
//! sync leaves thousands a day: pruning keeps the store the size of what is live. The
//! audit log keeps every event that named a pruned token (it is append-only).
//!
//! Only tokens that expired before the cutoff go, with what refers to them (the
//! authorization code's row, the expiry warnings sent). The cutoff is never in the future,
//! so a live token is never deleted, and neither is a rotated refresh token that is still
//! within its lifetime: reuse detection needs it.

use rusqlite::params;

use super::tokens::kind_code;
use super::{Result, Store, on_postgres};
use crate::model::NewAuditEvent;
use crate::time::Timestamp;
use crate::token::TokenKind;

/// Rows deleted per transaction, and the pause after each: a running server's writes wait
/// for at most one batch, then get the lock in the pause (in this process the
/// writer's mutex is free; another process's writer polls for the lock every millisecond,
/// `store::wait_for_lock`), so a prune never holds the server up for longer.
const BATCH: usize = 1_000;
const PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// What a prune found (and, unless it was a dry run, deleted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Tokens of every kind, authorization codes included.
    pub tokens: u64,
    /// Of those, authorization codes.
    pub codes: u64,
}

impl Pruned {
    /// For the audit log: "deleted 3 token(s), 1 of them authorization codes, that
    /// expired before 2026-11-04 02:00:00 UTC".
    pub fn describe(&self, cutoff: Timestamp) -> String {
        format!(
            "deleted {} token(s), {} of them authorization codes, that expired before {}",
            self.tokens,
            self.codes,
            crate::time::format_local(cutoff)
        )
    }
}

impl Store {
    /// How many tokens expired before `cutoff` (what [`Store::prune_tokens`] would delete).
    pub fn count_expired_tokens(&self, cutoff: Timestamp) -> Result<Pruned> {
        on_postgres!(self, pg => pg.count_expired_tokens(cutoff));
        self.read(|c| {
            let (tokens, codes) = c.query_row(
                "SELECT count(*), count(*) FILTER (WHERE kind = ?2) FROM tokens \
                 WHERE expires_at < ?1",
                params![cutoff, kind_code(TokenKind::AuthorizationCode)],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?;
            Ok(Pruned {
                tokens: tokens as u64,
                codes: codes as u64,
            })
        })
    }

    /// Delete every token that expired before `cutoff` (at most `now`), in transactions of
    /// [`BATCH`] tokens walking the primary key, then append `audit(&pruned)` if it gives
    /// an event.
    pub fn prune_tokens(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        audit: impl FnOnce(&Pruned) -> Option<NewAuditEvent>,
    ) -> Result<Pruned> {
        self.prune_in_batches(cutoff.min(now), now, BATCH, audit)
    }

    fn prune_in_batches(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        batch: usize,
        audit: impl FnOnce(&Pruned) -> Option<NewAuditEvent>,
    ) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        let mut after = String::new();
        loop {
            let (n, codes, last) = self.prune_batch(&after, cutoff, batch)?;
            pruned.tokens += n as u64;
            pruned.codes += codes;
            match last {
                Some(id) if n == batch => after = id,
                _ => break,
            }
            std::thread::sleep(PAUSE);
        }
        if let Some(event) = audit(&pruned) {
            self.audit(&event, now)?;
        }
        Ok(pruned)
    }

    /// One transaction of a prune: delete up to `batch` tokens with ids after `after` that
    /// expired before `cutoff`, with their code rows and warnings. Returns how many, how
    /// many of them were codes, and the last id.
    fn prune_batch(
        &self,
        after: &str,
        cutoff: Timestamp,
        batch: usize,
    ) -> Result<(usize, u64, Option<String>)> {
        on_postgres!(self, pg => pg.prune_batch(after, cutoff, batch));
        self.write(|tx| {
            let mut find = tx.prepare_cached(
                "SELECT id, kind FROM tokens WHERE id > ?1 AND expires_at < ?2 \
                     ORDER BY id LIMIT ?3",
            )?;
            let found: Vec<(String, i64)> = find
                .query_map(params![after, cutoff, batch as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut code_row =
                tx.prepare_cached("DELETE FROM authorization_codes WHERE token_id = ?1")?;
            let mut warnings =
                tx.prepare_cached("DELETE FROM expiry_warnings WHERE subject = ?1")?;
            let mut token = tx.prepare_cached("DELETE FROM tokens WHERE id = ?1")?;
            let code = kind_code(TokenKind::AuthorizationCode);
            let mut codes = 0;
            for (id, kind) in &found {
                if *kind == code {
                    code_row.execute([id])?;
                    codes += 1;
                } else {
                    warnings.execute([id])?;
                }
                token.execute([id])?;
            }
            Ok((found.len(), codes, found.last().map(|(id, _)| id.clone())))
        })
    }

    /// Whether a token with this id is stored (for tests of pruning).
    #[cfg(test)]
    fn has_token(&self, id: &str) -> Result<bool> {
        Ok(self
            .token(&crate::token::TokenId::from_stored(id.to_string()))?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::tokens::access_record;

    #[test]
    fn prunes_only_what_expired_before_the_cutoff_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_or_create(dir.path().join("s.db")).unwrap());
        let admin = crate::admin::Admin::new(&store, crate::time::Clock::system(), "test");
        let (client, _) = admin
            .register_client(crate::admin::RegisterClient::new(
                "a",
                &[crate::model::GrantType::ClientCredentials],
                &[crate::model::Scope::DirectoryRead],
            ))
            .unwrap();
        let now = 1_900_000_000;
        let day = 86_400;
        // 23 tokens that expired 10 days ago, 2 that expired yesterday, 1 live long-lived
        // and 1 live short-lived, and one revoked that is still within its lifetime.
        let mut records = Vec::new();
        let mut ids = |issued: i64, expires: i64| {
            let (t, r) = access_record(&client.id, issued, expires);
            records.push(r);
            t.id.to_string()
        };
        let old: Vec<String> = (0..23)
            .map(|i| ids(now - 11 * day + i, now - 10 * day))
            .collect();
        let recent: Vec<String> = (0..2).map(|_| ids(now - 2 * day, now - day)).collect();
        let live = ids(now - 30 * day, now + 300 * day);
        let short = ids(now - 60, now + 3540);
        let revoked = ids(now - 5 * day, now + 5 * day);
        store.insert_tokens(&records).unwrap();
        // An authorization code that expired long ago: its request row goes with it.
        let (_, mut code) = access_record(&client.id, now - 20 * day, now - 20 * day + 60);
        code.kind = crate::token::TokenKind::AuthorizationCode;
        store
            .insert_code(&code, "https://idp.example/cb", true, None)
            .unwrap();
        store
            .revoke_token(
                &crate::token::TokenId::from_stored(revoked.clone()),
                "test",
                now,
                &NewAuditEvent::new("test", crate::model::AuditAction::TokenRevoke, "success"),
            )
            .unwrap();

        let cutoff = now - 7 * day;
        assert_eq!(
            store.count_expired_tokens(cutoff).unwrap(),
            Pruned {
                tokens: 24,
                codes: 1
            }
        );
        let mut seen = None;
        let pruned = store
            .prune_in_batches(cutoff, now, 5, |p| {
                seen = Some(*p);
                Some(NewAuditEvent::new(
                    "test",
                    crate::model::AuditAction::TokenPrune,
                    "success",
                ))
            })
            .unwrap();
        assert_eq!(
            pruned,
            Pruned {
                tokens: 24,
                codes: 1
            },
            "four batches of 5 and one of 4"
        );
        assert!(!store.has_token(code.id.as_str()).unwrap());
        let code_rows: i64 = store
            .read(
                |c| Ok(c.query_row("SELECT count(*) FROM authorization_codes", [], |r| r.get(0))?),
            )
            .unwrap();
        assert_eq!(code_rows, 0, "the code's request row went with it");
        assert_eq!(
            seen,
            Some(pruned),
            "the audit event is built from the counts"
        );
        for id in &old {
            assert!(!store.has_token(id).unwrap(), "{id} pruned");
        }
        for id in recent.iter().chain([&live, &short, &revoked]) {
            assert!(store.has_token(id).unwrap(), "{id} kept");
        }
        // Nothing is left to prune, and a cutoff in the future is held at now.
        assert_eq!(store.count_expired_tokens(cutoff).unwrap().tokens, 0);
        let pruned = store.prune_tokens(now + 400 * day, now, |_| None).unwrap();
        assert_eq!(pruned.tokens, 2, "only the two that expired yesterday");
        for id in [&live, &short, &revoked] {
            assert!(store.has_token(id).unwrap(), "{id} is live: kept");
        }
        let actions: Vec<String> = store
            .audit_events(None, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(actions.contains(&"token.prune".to_string()), "{actions:?}");
    }
}
