//! SQL functions the store registers on every connection it opens, so SQL can apply the same
//! rules as the Rust code: `scim_fold(x)`, the case fold of SCIM's `caseExact: false`
//! comparisons ([`crate::scim::value::fold`]). The filter translator
//! ([`super::scim_filter`]) calls it on JSON values, and migration 10 to fill the folded
//! columns; no index or trigger uses it, so the file stays usable without it (the sqlite3
//! shell, `PRAGMA integrity_check`).

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value, ValueRef};

/// The SQL name of the fold: `scim_fold(text)`; anything not TEXT comes back unchanged.
pub const FOLD: &str = "scim_fold";

/// Registers the functions on `conn` (deterministic, so SQLite may factor calls).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        FOLD,
        1,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_INNOCUOUS,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                    Ok(s) => Value::Text(crate::scim::value::fold(s)),
                    Err(_) => Value::Blob(bytes.to_vec()),
                },
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scim_fold_is_the_rust_fold() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        let folded: String = conn
            .query_row("SELECT scim_fold('ÉLODIE Dupont')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(folded, "élodie dupont");
        let (null, number): (Option<String>, i64) = conn
            .query_row("SELECT scim_fold(NULL), scim_fold(5)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((null, number), (None, 5));
    }
}
