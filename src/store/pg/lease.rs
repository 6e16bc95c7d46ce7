//! PostgreSQL bodies of `store::lease`: the lease of a job that runs on one instance only,
//! timed by the database's clock (`clock_timestamp()`, not the transaction's start).

use super::Postgres;
use crate::store::Result;

const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

impl Postgres {
    pub fn try_lease(&self, name: &str, holder: &str, ms: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                &format!(
                    "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, {NOW_MS} + $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     until_ms = excluded.until_ms \
                     WHERE leases.holder = excluded.holder OR leases.until_ms < {NOW_MS}"
                ),
                &[&name, &holder, &ms],
            )?;
            Ok(n == 1)
        })
    }

    pub fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )?;
            Ok(())
        })
    }
}
