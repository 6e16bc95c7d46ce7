//! The `throttle` table: failure counts of the sign-in throttle, shared by every server
//! instance on the store. What a failure does to a count is `crate::throttle`'s business;
//! this file reads the counts of some keys, and writes them back changed, in one write
//! transaction ([`Store::update_throttle`]), so two instances counting failures of one key
//! at once both count.

use rusqlite::params;

use super::{Result, Store, on_postgres};
use crate::time::Timestamp;

/// One key's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleEntry {
    pub key: String,
    pub failures: i64,
    pub last_failure: Timestamp,
    pub blocked_until: Timestamp,
}

impl Store {
    /// The counts of `kind` for `keys` (a key without failures is absent).
    pub fn throttle_entries(&self, kind: &str, keys: &[&str]) -> Result<Vec<ThrottleEntry>> {
        on_postgres!(self, pg => pg.throttle_entries(kind, keys));
        self.read_point(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT key, failures, last_failure, blocked_until FROM throttle \
                 WHERE kind = ?1 AND key = ?2",
            )?;
            let mut out = Vec::new();
            for key in keys {
                let mut rows = stmt.query_map(params![kind, key], |r| {
                    Ok(ThrottleEntry {
                        key: r.get(0)?,
                        failures: r.get(1)?,
                        last_failure: r.get(2)?,
                        blocked_until: r.get(3)?,
                    })
                })?;
                if let Some(e) = rows.next() {
                    out.push(e?);
                }
            }
            Ok(out)
        })
    }

    /// In one write transaction: delete the counts of `kind` whose last failure is before
    /// `forget_before`, read those of `keys`, let `f` change them (it may add keys), and
    /// write them back. Returns what `f` returns.
    pub fn update_throttle<T>(
        &self,
        kind: &str,
        keys: &[&str],
        forget_before: Timestamp,
        f: impl FnOnce(&mut Vec<ThrottleEntry>) -> T,
    ) -> Result<T> {
        on_postgres!(self, pg => pg.update_throttle(kind, keys, forget_before, f));
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM throttle WHERE last_failure < ?1")?
                .execute([forget_before])?;
            let mut entries = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT key, failures, last_failure, blocked_until FROM throttle \
                     WHERE kind = ?1 AND key = ?2",
                )?;
                for key in keys {
                    let mut rows = stmt.query_map(params![kind, key], |r| {
                        Ok(ThrottleEntry {
                            key: r.get(0)?,
                            failures: r.get(1)?,
                            last_failure: r.get(2)?,
                            blocked_until: r.get(3)?,
                        })
                    })?;
                    if let Some(e) = rows.next() {
                        entries.push(e?);
                    }
                }
            }
            let out = f(&mut entries);
            let mut put = tx.prepare_cached(
                "INSERT INTO throttle (kind, key, failures, last_failure, blocked_until) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(kind, key) DO UPDATE SET \
                 failures = excluded.failures, last_failure = excluded.last_failure, \
                 blocked_until = excluded.blocked_until",
            )?;
            for e in &entries {
                put.execute(params![
                    kind,
                    e.key,
                    e.failures,
                    e.last_failure,
                    e.blocked_until
                ])?;
            }
            Ok(out)
        })
    }

    /// Forget the counts of `keys` (a success).
    pub fn clear_throttle(&self, kind: &str, keys: &[&str]) -> Result<()> {
        on_postgres!(self, pg => pg.clear_throttle(kind, keys));
        self.write(|tx| {
            let mut stmt =
                tx.prepare_cached("DELETE FROM throttle WHERE kind = ?1 AND key = ?2")?;
            for key in keys {
                stmt.execute(params![kind, key])?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::stores;

    #[test]
    fn counts_are_read_changed_written_and_forgotten() {
        for t in stores("throttle") {
            let b = t.backend;
            let bump = |e: &mut Vec<ThrottleEntry>, now| match e.iter_mut().find(|e| e.key == "k") {
                Some(x) => {
                    x.failures += 1;
                    x.last_failure = now;
                }
                None => e.push(ThrottleEntry {
                    key: "k".into(),
                    failures: 1,
                    last_failure: now,
                    blocked_until: now + 5,
                }),
            };
            t.update_throttle("login", &["k"], 0, |e| bump(e, 100))
                .unwrap();
            t.update_throttle("login", &["k"], 0, |e| bump(e, 101))
                .unwrap();
            let got = t.throttle_entries("login", &["k", "other"]).unwrap();
            assert_eq!(got.len(), 1, "{b}");
            assert_eq!(
                (got[0].failures, got[0].last_failure, got[0].blocked_until),
                (2, 101, 105),
                "{b}"
            );
            assert!(
                t.throttle_entries("client", &["k"]).unwrap().is_empty(),
                "{b}: by kind"
            );
            // Concurrent failures of one key all count.
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        t.update_throttle("login", &["k"], 0, |e| bump(e, 102))
                            .unwrap()
                    });
                }
            });
            assert_eq!(
                t.throttle_entries("login", &["k"]).unwrap()[0].failures,
                10,
                "{b}"
            );
            // Forgotten once the last failure is older than the cut-off.
            t.update_throttle("login", &[], 103, |_| ()).unwrap();
            assert!(
                t.throttle_entries("login", &["k"]).unwrap().is_empty(),
                "{b}"
            );
            t.update_throttle("login", &["k"], 0, |e| bump(e, 200))
                .unwrap();
            t.clear_throttle("login", &["k"]).unwrap();
            assert!(
                t.throttle_entries("login", &["k"]).unwrap().is_empty(),
                "{b}"
            );
        }
    }
}
