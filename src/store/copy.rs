//! `config copy-store`: every row of a SQLite store copied into an empty PostgreSQL store
//! (issue 16), in one PostgreSQL transaction, then the row counts of every table compared.
//!
//! The two schemas have the same tables, columns and encodings (schema_pg.sql says so),
//! so rows move as they are: tokens and client secrets stay SHA-256 hashes, the tool
//! password and login passwords stay argon2 hashes, the audit log keeps its sequence
//! numbers. Columns are matched by name, so their order may differ. PostgreSQL's binary
//! `COPY` carries the rows (a million tokens are one stream, not a million statements);
//! the identity sequences are moved past the copied numbers afterwards.
//!
//! The source is read in one read transaction: a server still writing to it cannot make
//! the copy inconsistent, only miss what it writes after the copy began (stop the server
//! first; docs/deploy.md). A target holding any row is refused before anything is
//! written.

use std::pin::pin;

use futures_executor::block_on;
use rusqlite::types::ValueRef;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::{Result, Store, StoreError};

/// The tables, parents before children (foreign keys hold at every row).
pub const TABLES: &[&str] = &[
    "clients",
    "client_cuts",
    "tokens",
    "authorization_codes",
    "users",
    "consents",
    "meta",
    "audit_events",
    "client_health",
    "client_activity",
    "expiry_warnings",
    "provisioning_errors",
    "scim_resources",
    "scim_group_members",
];

/// Identity columns whose sequences follow the copied values.
const SEQUENCES: &[(&str, &str)] = &[("audit_events", "seq"), ("provisioning_errors", "id")];

/// One value on its way: what SQLite held, as the PostgreSQL column's type wants it.
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(v) => v,
            Cell::Text(v) => v,
            Cell::Bytes(v) => v,
        }
    }
}

fn cell(ty: &Type, v: ValueRef<'_>, table: &str, column: &str) -> Result<Cell> {
    let wrong = || {
        StoreError::Corrupt(format!(
            "{table}.{column} holds a {} where PostgreSQL's column is {ty}",
            v.data_type()
        ))
    };
    Ok(match (ty, v) {
        (t, ValueRef::Null) if *t == Type::INT8 => Cell::Int(None),
        (t, ValueRef::Null) if *t == Type::BYTEA => Cell::Bytes(None),
        (_, ValueRef::Null) => Cell::Text(None),
        (t, ValueRef::Integer(i)) if *t == Type::INT8 => Cell::Int(Some(i)),
        (t, ValueRef::Text(s)) if *t == Type::TEXT => {
            Cell::Text(Some(String::from_utf8(s.to_vec()).map_err(|_| wrong())?))
        }
        (t, ValueRef::Blob(b)) if *t == Type::BYTEA => Cell::Bytes(Some(b.to_vec())),
        _ => return Err(wrong()),
    })
}

impl Store {
    /// Copy every row of this SQLite store into `target`, an empty PostgreSQL store, and
    /// check that each table holds as many rows on both sides. Returns (table, rows).
    pub fn copy_into(&self, target: &Store) -> Result<Vec<(&'static str, u64)>> {
        let Some(pg) = target.postgres() else {
            return Err(StoreError::Invalid(
                "copy-store copies into a PostgreSQL store; give --to a postgres:// URL".into(),
            ));
        };
        if self.postgres().is_some() {
            return Err(StoreError::Invalid(
                "copy-store copies from a SQLite store; give --from the path of its file".into(),
            ));
        }
        let counts = self.read(|src| {
            // One snapshot of the source for the whole copy.
            src.execute_batch("BEGIN")?;
            let copied = pg.write(|tx| {
                for table in TABLES {
                    let n: i64 = super::pg::get(
                        &tx.query_one(&format!("SELECT count(*) FROM {table}"), &[])?,
                        0,
                    )?;
                    if n > 0 {
                        let rows = if n == 1 { "row" } else { "rows" };
                        return Err(StoreError::Conflict(format!(
                            "the target store is not empty (its {table} table holds {n} {rows}); copy-store fills only an empty one"
                        )));
                    }
                }
                let mut counts = Vec::new();
                for table in TABLES {
                    counts.push((*table, copy_table(src, tx, table)?));
                }
                for (table, column) in SEQUENCES {
                    tx.execute(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                             coalesce(max({column}), 0) + 1, false) FROM {table}"
                        ),
                        &[],
                    )?;
                }
                Ok(counts)
            });
            let _ = src.execute_batch("COMMIT");
            copied
        })?;
        // Verify after the commit, through the target's own reads.
        for (table, n) in &counts {
            let there: i64 = pg.read(|db| {
                super::pg::get(
                    &db.query_one(&format!("SELECT count(*) FROM {table}"), &[])?,
                    0,
                )
            })?;
            if there != *n as i64 {
                return Err(StoreError::Database(format!(
                    "{table}: {n} rows copied but {there} found in the target"
                )));
            }
        }
        Ok(counts)
    }
}

/// Copy one table's rows from `src` into `tx` by binary COPY; the number of rows.
fn copy_table(
    src: &rusqlite::Connection,
    tx: &mut super::pg::Tx<'_, '_>,
    table: &str,
) -> Result<u64> {
    let columns: Vec<(String, Type)> = tx
        .query(
            "SELECT a.attname::text, a.atttypid FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&table],
        )?
        .iter()
        .map(|r| {
            let name: String = super::pg::get(r, 0)?;
            let oid: u32 = super::pg::get(r, 1)?;
            let ty = Type::from_oid(oid).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{table}.{name} has a type copy-store does not know"
                ))
            })?;
            Ok((name, ty))
        })
        .collect::<Result<_>>()?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let list = names.join(", ");
    let types: Vec<Type> = columns.iter().map(|(_, t)| t.clone()).collect();
    let sink = tx.copy_in(&format!("COPY {table} ({list}) FROM STDIN BINARY"))?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    let mut stmt = src.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let cells = columns
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| cell(ty, row.get_ref(i)?, table, name))
            .collect::<Result<Vec<_>>>()?;
        let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(Cell::as_sql).collect();
        block_on(writer.as_mut().write(&values))?;
    }
    Ok(block_on(writer.as_mut().finish())?)
}
