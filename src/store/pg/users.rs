//! PostgreSQL bodies of `store::users` and `store::consents`: login accounts (argon2id
//! hashes only) and the consents they gave. Names compare case-insensitively, as SQLite's
//! `COLLATE NOCASE` columns do: `lower(username) = lower($1)`, with unique indexes on
//! `lower(username)` (schema_pg.sql).

use tokio_postgres::Row;

use super::{Postgres, audit, get};
use crate::model::{NewAuditEvent, Scope, User, scopes_to_string};
use crate::store::{Result, StoreError};
use crate::time::Timestamp;

fn row_to_user(r: &Row) -> Result<User> {
    Ok(User {
        username: get(r, 0)?,
        created_at: get(r, 1)?,
        updated_at: get(r, 2)?,
        operator: get::<i64>(r, 3)? != 0,
    })
}

impl Postgres {
    pub fn insert_user(
        &self,
        username: &str,
        password_hash: &str,
        operator: bool,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            let exists: bool = get(
                &tx.query_one(
                    "SELECT EXISTS(SELECT 1 FROM users WHERE lower(username) = lower($1))",
                    &[&username],
                )?,
                0,
            )?;
            if exists {
                return Err(StoreError::Conflict(format!(
                    "a user named {username} already exists"
                )));
            }
            tx.execute(
                "INSERT INTO users (username, password_hash, created_at, updated_at, operator) \
                 VALUES ($1, $2, $3, $3, $4)",
                &[&username, &password_hash, &now, &i64::from(operator)],
            )?;
            audit::append(tx, audit, now)
        })
    }

    pub fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = $2, updated_at = $3 \
                 WHERE lower(username) = lower($1)",
                &[&username, &password_hash, &now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {username}")));
            }
            audit::append(tx, audit, now)
        })
    }

    pub fn set_user_operator(
        &self,
        username: &str,
        operator: bool,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET operator = $2, updated_at = $3 WHERE lower(username) = lower($1)",
                &[&username, &i64::from(operator), &now],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {username}")));
            }
            audit::append(tx, audit, now)
        })
    }

    pub fn delete_user(&self, username: &str, now: Timestamp, audit: &NewAuditEvent) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM users WHERE lower(username) = lower($1)",
                &[&username],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {username}")));
            }
            tx.execute(
                "DELETE FROM consents WHERE lower(username) = lower($1)",
                &[&username],
            )?;
            audit::append(tx, audit, now)
        })
    }

    pub fn user_with_hash(&self, username: &str) -> Result<Option<(User, String)>> {
        self.read(|db| {
            db.query_opt(
                "SELECT username, created_at, updated_at, operator, password_hash FROM users \
                 WHERE lower(username) = lower($1)",
                &[&username],
            )?
            .map(|r| Ok((row_to_user(&r)?, get(&r, 4)?)))
            .transpose()
        })
    }

    pub fn list_users(&self) -> Result<Vec<User>> {
        self.read(|db| {
            db.query(
                "SELECT username, created_at, updated_at, operator FROM users \
                 ORDER BY lower(username), username",
                &[],
            )?
            .iter()
            .map(row_to_user)
            .collect()
        })
    }

    pub fn has_consent(&self, username: &str, client_id: &str, scopes: &[Scope]) -> Result<bool> {
        self.read(|db| {
            get(
                &db.query_one(
                    "SELECT EXISTS(SELECT 1 FROM consents WHERE lower(username) = lower($1) \
                     AND client_id = $2 AND scopes = $3)",
                    &[&username, &client_id, &scopes_to_string(scopes)],
                )?,
                0,
            )
        })
    }

    pub fn insert_consent(
        &self,
        username: &str,
        client_id: &str,
        scopes: &[Scope],
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO consents (username, client_id, scopes, granted_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (lower(username), client_id, scopes) \
                 DO UPDATE SET granted_at = excluded.granted_at",
                &[&username, &client_id, &scopes_to_string(scopes), &now],
            )?;
            audit::append(tx, audit, now)
        })
    }

    pub fn delete_consents(
        &self,
        username: &str,
        client_id: Option<&str>,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<usize> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM consents WHERE lower(username) = lower($1) \
                 AND ($2::text IS NULL OR client_id = $2)",
                &[&username, &client_id],
            )?;
            if n > 0 {
                audit::append(tx, audit, now)?;
            }
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}
