//! The `users` table: login accounts for the authorization pages and, when marked
//! `operator`, the operator pages. Only
//! argon2id hashes are stored; hashing happens in [`crate::password`], not here.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError, audit, on_postgres};
use crate::model::{NewAuditEvent, User};
use crate::time::Timestamp;

fn row_to_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        username: r.get(0)?,
        created_at: r.get(1)?,
        updated_at: r.get(2)?,
        operator: r.get(3)?,
    })
}

impl Store {
    /// Create an account; `Conflict` if the name (case-insensitive) is taken.
    pub fn insert_user(
        &self,
        username: &str,
        password_hash: &str,
        operator: bool,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.insert_user(username, password_hash, operator, now, audit));
        self.write(|tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE username = ?1)",
                [username],
                |r| r.get(0),
            )?;
            if exists {
                return Err(StoreError::Conflict(format!(
                    "a user named {username} already exists"
                )));
            }
            tx.execute(
                "INSERT INTO users (username, password_hash, created_at, updated_at, operator) \
                 VALUES (?1, ?2, ?3, ?3, ?4)",
                params![username, password_hash, now, operator],
            )?;
            audit::append(tx, audit, now)
        })
    }

    /// Replace an account's password hash.
    pub fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.set_user_password(username, password_hash, now, audit));
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE username = ?1",
                params![username, password_hash, now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {username}")));
            }
            audit::append(tx, audit, now)
        })
    }

    /// Let an account open the operator pages, or not.
    pub fn set_user_operator(
        &self,
        username: &str,
        operator: bool,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.set_user_operator(username, operator, now, audit));
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET operator = ?2, updated_at = ?3 WHERE username = ?1",
                params![username, operator, now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {username}")));
            }
            audit::append(tx, audit, now)
        })
    }

    /// Delete an account.
    pub fn delete_user(&self, username: &str, now: Timestamp, audit: &NewAuditEvent) -> Result<()> {
        on_postgres!(self, pg => pg.delete_user(username, now, audit));
        self.write(|tx| {
            let n = tx.execute("DELETE FROM users WHERE username = ?1", [username])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {username}")));
            }
            // A new account with the same name must not inherit the old one's consents.
            tx.execute("DELETE FROM consents WHERE username = ?1", [username])?;
            audit::append(tx, audit, now)
        })
    }

    /// An account and its password hash (for login).
    pub fn user_with_hash(&self, username: &str) -> Result<Option<(User, String)>> {
        if !super::can_name_a_row(username) {
            return Ok(None);
        }
        on_postgres!(self, pg => pg.user_with_hash(username));
        self.read(|c| {
            Ok(c.query_row(
                "SELECT username, created_at, updated_at, operator, password_hash FROM users \
                 WHERE username = ?1",
                [username],
                |r| Ok((row_to_user(r)?, r.get(4)?)),
            )
            .optional()?)
        })
    }

    /// All accounts, by name.
    pub fn list_users(&self) -> Result<Vec<User>> {
        on_postgres!(self, pg => pg.list_users());
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT username, created_at, updated_at, operator FROM users ORDER BY username",
            )?;
            let rows = stmt.query_map([], row_to_user)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
