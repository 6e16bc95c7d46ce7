//! Schema migrations on PostgreSQL, from `schema_pg.sql`: numbered blocks as in
//! `schema.sql` (the same numbers), each applied once in one transaction, the version in
//! the one-row table `scimgate_schema`. All of it runs under a transaction-level advisory
//! lock ([`MIGRATE_LOCK`]), so two instances starting at the same moment migrate once: the
//! second waits, then finds the work done.
//!
//! Refused, with one sentence and nothing written: a schema newer than this program, a
//! database that holds tables but no `scimgate_schema` (another application's), and a
//! database with no store when the caller may not create one (`config` commands other
//! than `init`).

use super::{Conn, Db};
use crate::store::{Result, StoreError};

const SCHEMA: &str = include_str!("../../../schema_pg.sql");
/// Key of the advisory lock migrations run under ("scimgate migrate").
const MIGRATE_LOCK: i64 = 0x5c16_a7e0_0000_0002;

/// The blocks of `schema_pg.sql`, as (version, SQL).
fn migrations() -> Vec<(i64, String)> {
    crate::store::migrate::blocks(SCHEMA)
}

/// Check the database's schema and bring it to [`crate::store::schema_version`].
pub(super) fn migrate(conn: &mut Conn, shown: &str, create: bool) -> Result<()> {
    let Conn { client, statements } = conn;
    let mut tx = futures_executor::block_on(client.transaction())?;
    migrate_in(
        &mut Db {
            client: &mut tx,
            statements,
        },
        shown,
        create,
    )?;
    futures_executor::block_on(tx.commit())?;
    Ok(())
}

fn migrate_in(db: &mut super::Tx<'_, '_>, shown: &str, create: bool) -> Result<()> {
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    let has_table: bool = super::get(
        &db.query_one("SELECT to_regclass('scimgate_schema') IS NOT NULL", &[])?,
        0,
    )?;
    let found: i64 = if has_table {
        super::get(
            &db.query_one("SELECT version FROM scimgate_schema", &[])?,
            0,
        )?
    } else {
        let tables: i64 = super::get(
            &db.query_one(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema()",
                &[],
            )?,
            0,
        )?;
        if tables > 0 {
            return Err(StoreError::Foreign {
                path: shown.to_string(),
            });
        }
        if !create {
            return Err(StoreError::Missing {
                path: shown.to_string(),
            });
        }
        db.batch(
            "CREATE TABLE scimgate_schema (version BIGINT NOT NULL); \
                  INSERT INTO scimgate_schema VALUES (0);",
        )?;
        0
    };
    let known = crate::store::schema_version();
    if found > known {
        return Err(StoreError::TooNew {
            path: shown.to_string(),
            found,
            known,
        });
    }
    for (version, sql) in migrations() {
        if version <= found {
            continue;
        }
        db.batch(&sql)?;
        db.execute("UPDATE scimgate_schema SET version = $1", &[&version])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::testing::temp_db;
    use crate::store::{Location, Store};

    fn location(url: &str) -> Location {
        Location::parse(url).unwrap()
    }

    #[test]
    fn two_instances_creating_one_store_at_once_migrate_it_once() {
        let Some(db) = temp_db("concurrent") else {
            return;
        };
        let opened: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| Store::open_or_create(location(&db.url))))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for o in opened {
            o.unwrap();
        }
        let store = Store::open_existing(location(&db.url)).unwrap();
        assert!(store.meta("none").unwrap().is_none());
    }

    #[test]
    fn refuses_a_missing_a_foreign_and_a_newer_store() {
        let Some(db) = temp_db("refusals") else {
            return;
        };
        let err = Store::open_existing(location(&db.url)).unwrap_err();
        assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        assert!(!err.to_string().contains(&password(&db.url)), "{err}");

        let mut c = crate::store::pg::testing::connect(&db.url).unwrap();
        c.batch_execute("CREATE TABLE invoices (id int)").unwrap();
        let err = Store::open_or_create(location(&db.url)).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "nothing written to another application's database");

        c.batch_execute("DROP TABLE invoices").unwrap();
        drop(Store::open_or_create(location(&db.url)).unwrap());
        c.batch_execute(&format!(
            "UPDATE scimgate_schema SET version = {}",
            crate::store::schema_version() + 1
        ))
        .unwrap();
        let err = Store::open_existing(location(&db.url)).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }

    #[test]
    fn bad_credentials_are_one_sentence_without_the_password() {
        let Some(db) = temp_db("badpass") else { return };
        let mut url = url::Url::parse(&db.url).unwrap();
        url.set_password(Some("wrong-password-123")).unwrap();
        let err = Store::open_or_create(location(url.as_str())).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Open { .. }), "{text}");
        assert!(text.contains("password authentication failed"), "{text}");
        assert!(
            !text.contains("wrong-password-123") && !text.contains('\n'),
            "{text}"
        );
    }

    fn password(url: &str) -> String {
        url::Url::parse(url)
            .unwrap()
            .password()
            .unwrap_or("")
            .to_string()
    }

    #[test]
    fn the_last_block_is_the_sqlite_schema_s_version() {
        let versions: Vec<i64> = migrations().iter().map(|(v, _)| *v).collect();
        assert_eq!(
            versions.last().copied(),
            Some(crate::store::schema_version())
        );
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    }
}
