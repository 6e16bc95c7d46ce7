//! Schema migrations from `schema.sql`: split into numbered blocks, each applied once in
//! its own transaction, the version kept in `PRAGMA user_version`. A store newer than
//! this program is refused rather than half-understood.
//!
//! Foreign-key enforcement is off while a block runs and the whole store is checked with
//! `PRAGMA foreign_key_check` before it commits: that is SQLite's procedure for changes
//! `ALTER TABLE` cannot make (create the new table, copy, drop the old one, rename), which
//! otherwise trip over the references other tables hold (<https://sqlite.org/lang_altertable.html>).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{Result, StoreError};

const SCHEMA: &str = include_str!("../../schema.sql");
const MARKER: &str = "-- migration: ";

/// The migrations in `schema.sql`, as (version, SQL).
fn migrations() -> Vec<(i64, String)> {
    blocks(SCHEMA)
}

/// The numbered blocks of a schema file (`schema.sql`, `schema_pg.sql`), as (version,
/// SQL): a block starts at a line that is exactly `-- migration: N`.
pub(super) fn blocks(schema: &str) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = Vec::new();
    for line in schema.lines() {
        let version = line
            .strip_prefix(MARKER)
            .and_then(|v| v.trim().parse::<i64>().ok());
        match (version, out.last_mut()) {
            (Some(v), _) => out.push((v, String::new())),
            (None, Some((_, sql))) => {
                sql.push_str(line);
                sql.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// The newest schema version this program knows.
pub fn known_version() -> i64 {
    migrations().last().map(|(v, _)| *v).unwrap_or(0)
}

/// Bring the store at `conn` up to [`known_version`].
pub fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = known_version();
    if found > known {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found,
            known,
        });
    }
    if found == known {
        return Ok(());
    }
    // PRAGMA foreign_keys is a no-op inside a transaction: switch it around them.
    let enforcing: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let result = apply(conn, found);
    if enforcing {
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    result
}

fn apply(conn: &Connection, found: i64) -> Result<()> {
    for (version, sql) in migrations() {
        if version <= found {
            continue;
        }
        // IMMEDIATE: two processes opening a new store at once must not both migrate.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current >= version {
            conn.execute_batch("COMMIT")?;
            continue;
        }
        let applied = before(conn, version)
            .and_then(|_| Ok(conn.execute_batch(&sql)?))
            .and_then(|_| foreign_keys_hold(conn, version))
            .and_then(|_| Ok(conn.execute_batch(&format!("PRAGMA user_version = {version}"))?));
        match applied {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}

/// What must hold in the store before a migration runs, where its SQL alone would fail
/// with a database error instead of a sentence the operator can act on: (version, check).
const PRECONDITIONS: &[(i64, Check)] = &[(12, user_names_unique_under_the_fold)];

/// A precondition: `Ok` if the migration may run, else why not.
type Check = fn(&Connection) -> Result<()>;

/// Run migration `version`'s precondition, if it has one.
fn before(conn: &Connection, version: i64) -> Result<()> {
    PRECONDITIONS
        .iter()
        .filter(|(v, _)| *v == version)
        .try_for_each(|(_, check)| check(conn))
}

/// Migration 12 makes the folded userName unique: name the Users in the way.
fn user_names_unique_under_the_fold(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT group_concat(user_name, '`, `') FROM scim_resources \
         WHERE resource_type = 'User' AND user_name_fold IS NOT NULL \
         GROUP BY user_name_fold HAVING count(*) > 1 LIMIT 5",
    )?;
    let clashes: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if clashes.is_empty() {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "the store holds Users whose userNames differ only in case, which SCIM counts as one userName (`{}`); rename or delete all but one of each with the previous scimgate version (a SCIM PATCH or DELETE), then start this one",
        crate::text::printable(&clashes.join("`; `"), 400)
    )))
}

/// Every reference in the store still resolves after migration `version` ran.
fn foreign_keys_hold(conn: &Connection, version: i64) -> Result<()> {
    let broken: Option<String> = conn
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .optional()?;
    match broken {
        None => Ok(()),
        Some(table) => Err(StoreError::Database(format!(
            "migration {version} would leave a row of `{table}` referring to a missing row"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_from_one_without_gaps() {
        let versions: Vec<i64> = migrations().iter().map(|(v, _)| *v).collect();
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn refuses_a_newer_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {}", known_version() + 1))
            .unwrap();
        let err = migrate(&conn, &path).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }

    /// Migration 12 makes the folded userName unique. A store holding two Users whose
    /// userNames differ only in non-ASCII case (possible before migration 10) is refused
    /// with their names and left as it was; once one is renamed, it migrates, and the
    /// index then refuses such a pair by itself.
    #[test]
    fn user_names_equal_under_the_fold_stop_migration_12_with_their_names() {
        let conn = Connection::open_in_memory().unwrap();
        crate::store::functions::register(&conn).unwrap();
        for (version, sql) in migrations().into_iter().filter(|(v, _)| *v <= 11) {
            conn.execute_batch(&sql).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {version}"))
                .unwrap();
        }
        let insert = |id: &str, name: &str| {
            conn.execute(
                "INSERT INTO scim_resources (id, resource_type, user_name, doc, created_at, \
                 last_modified, version, user_name_fold) \
                 VALUES (?1, 'User', ?2, '{}', 't', 't', 1, scim_fold(?2))",
                rusqlite::params![id, name],
            )
        };
        insert("1", "Ärger@example.com").unwrap();
        insert("2", "ärger@example.com").unwrap();
        insert("3", "other@example.com").unwrap();
        let err = migrate(&conn, Path::new(":memory:")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Invalid(_)), "{text}");
        assert!(
            text.contains("Ärger@example.com") && text.contains("ärger@example.com"),
            "{text}"
        );
        assert!(!text.contains("other@"), "{text}");
        let version = |c: &Connection| -> i64 {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(version(&conn), 11, "nothing was changed");
        conn.execute(
            "UPDATE scim_resources SET user_name = 'aerger@example.com', \
             user_name_fold = scim_fold('aerger@example.com') WHERE id = '2'",
            [],
        )
        .unwrap();
        migrate(&conn, Path::new(":memory:")).unwrap();
        assert_eq!(version(&conn), known_version());
        // Migration 13: documents stored before it are of no known form.
        let forms: Vec<i64> = conn
            .prepare("SELECT doc_form FROM scim_resources ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(forms, [0, 0, 0]);
        let err = insert("4", "ÄRGER@example.com").unwrap_err();
        assert!(
            matches!(StoreError::from(err), StoreError::Conflict(_)),
            "the index refuses a userName equal under the fold"
        );
        insert("5", "new@example.com").unwrap();
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let conn = Connection::open_in_memory().unwrap();
        crate::store::functions::register(&conn).unwrap();
        migrate(&conn, Path::new(":memory:")).unwrap();
        migrate(&conn, Path::new(":memory:")).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, known_version());
    }
}
