//! PostgreSQL bodies of `store::meta`: the settings that live with the data.

use super::{Postgres, audit, get};
use crate::model::NewAuditEvent;
use crate::store::Result;
use crate::time::Timestamp;

impl Postgres {
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.read(|db| {
            db.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
                .map(|r| get(&r, 0))
                .transpose()
        })
    }

    pub fn set_meta(
        &self,
        key: &str,
        value: &str,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            audit::append(tx, audit, now)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )?;
            Ok(())
        })
    }

    pub fn set_meta_if_absent(
        &self,
        key: &str,
        value: &str,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )?;
            if n == 1 {
                audit::append(tx, audit, now)?;
            }
            Ok(n == 1)
        })
    }
}
