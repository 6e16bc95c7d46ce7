//! PostgreSQL bodies of `store::throttle`: the sign-in throttle's counts, shared by every
//! instance.

use super::{Db, Postgres, get};
use crate::store::Result;
use crate::store::throttle::ThrottleEntry;
use crate::time::Timestamp;

fn entries(
    db: &mut Db<'_, impl tokio_postgres::GenericClient>,
    kind: &str,
    keys: &[&str],
) -> Result<Vec<ThrottleEntry>> {
    let keys: Vec<&str> = keys.to_vec();
    db.query(
        "SELECT key, failures, last_failure, blocked_until FROM throttle \
         WHERE kind = $1 AND key = ANY($2) ORDER BY key",
        &[&kind, &keys],
    )?
    .iter()
    .map(|r| {
        Ok(ThrottleEntry {
            key: get(r, 0)?,
            failures: get(r, 1)?,
            last_failure: get(r, 2)?,
            blocked_until: get(r, 3)?,
        })
    })
    .collect()
}

impl Postgres {
    pub fn throttle_entries(&self, kind: &str, keys: &[&str]) -> Result<Vec<ThrottleEntry>> {
        self.read(|db| entries(db, kind, keys))
    }

    pub fn update_throttle<T>(
        &self,
        kind: &str,
        keys: &[&str],
        forget_before: Timestamp,
        f: impl FnOnce(&mut Vec<ThrottleEntry>) -> T,
    ) -> Result<T> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM throttle WHERE last_failure < $1",
                &[&forget_before],
            )?;
            let mut found = entries(tx, kind, keys)?;
            let out = f(&mut found);
            for e in &found {
                tx.execute(
                    "INSERT INTO throttle (kind, key, failures, last_failure, blocked_until) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, key) DO UPDATE SET \
                     failures = excluded.failures, last_failure = excluded.last_failure, \
                     blocked_until = excluded.blocked_until",
                    &[
                        &kind,
                        &e.key,
                        &e.failures,
                        &e.last_failure,
                        &e.blocked_until,
                    ],
                )?;
            }
            Ok(out)
        })
    }

    pub fn clear_throttle(&self, kind: &str, keys: &[&str]) -> Result<()> {
        let keys: Vec<&str> = keys.to_vec();
        self.write(|tx| {
            tx.execute(
                "DELETE FROM throttle WHERE kind = $1 AND key = ANY($2)",
                &[&kind, &keys],
            )?;
            Ok(())
        })
    }
}
