//! The `leases` table: which server instance does a job that must run once however many
//! instances share the store (the monitor's ticks). A lease is held until `until_ms` of the
//! database's clock; its holder renews it, and anyone may take it once it lapsed. One
//! statement takes or renews it, so two instances can never both hold it.

use rusqlite::params;

use super::{Result, Store, on_postgres};

/// The database's clock in Unix milliseconds, in SQLite.
const NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

impl Store {
    /// Take lease `name` for `holder`, or renew it if `holder` holds it, for `ms`
    /// milliseconds from now (the database's clock). `true` if `holder` holds it now.
    pub fn try_lease(&self, name: &str, holder: &str, ms: i64) -> Result<bool> {
        on_postgres!(self, pg => pg.try_lease(name, holder, ms));
        self.write(|tx| {
            let n = tx
                .prepare_cached(&format!(
                    "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, {NOW_MS} + ?3) \
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, \
                 until_ms = excluded.until_ms \
                 WHERE leases.holder = excluded.holder OR leases.until_ms < {NOW_MS}"
                ))?
                .execute(params![name, holder, ms])?;
            Ok(n == 1)
        })
    }

    /// Give lease `name` up if `holder` holds it (a clean shutdown), so that another
    /// instance takes it at its next try instead of waiting for it to lapse.
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        on_postgres!(self, pg => pg.release_lease(name, holder));
        self.write(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::stores;

    #[test]
    fn one_holder_at_a_time_and_a_lapsed_lease_is_taken() {
        for t in stores("lease") {
            let b = t.backend;
            assert!(t.try_lease("monitor", "a", 300).unwrap(), "{b}: a takes it");
            assert!(
                t.try_lease("monitor", "a", 300).unwrap(),
                "{b}: a renews it"
            );
            assert!(!t.try_lease("monitor", "b", 300).unwrap(), "{b}: b waits");
            assert!(
                t.try_lease("other", "b", 300).unwrap(),
                "{b}: leases are by name"
            );
            std::thread::sleep(std::time::Duration::from_millis(350));
            assert!(
                t.try_lease("monitor", "b", 300).unwrap(),
                "{b}: lapsed, b takes it"
            );
            assert!(!t.try_lease("monitor", "a", 300).unwrap(), "{b}: a lost it");
            t.release_lease("monitor", "a").unwrap();
            assert!(
                !t.try_lease("monitor", "a", 300).unwrap(),
                "{b}: a cannot release b's"
            );
            t.release_lease("monitor", "b").unwrap();
            assert!(
                t.try_lease("monitor", "a", 300).unwrap(),
                "{b}: released, a takes it"
            );
        }
    }

    #[test]
    fn racing_instances_never_both_hold_it() {
        for t in stores("lease_race") {
            let won: Vec<bool> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|i| {
                        let store = &t.store;
                        s.spawn(move || {
                            store
                                .try_lease("monitor", &format!("i{i}"), 10_000)
                                .unwrap()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(
                won.iter().filter(|w| **w).count(),
                1,
                "{}: {won:?}",
                t.backend
            );
        }
    }
}
