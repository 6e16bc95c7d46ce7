//! Login accounts (for the authorization page and the operator pages): create, change
//! password, delete, forget their consents. Names are case-insensitive; passwords are
//! argon2id-hashed here.

use super::{Admin, AdminError, Result, not_found_or};
use crate::model::AuditAction;
use crate::model::{NewAuditEvent, User};
use crate::password;

fn check_username(name: &str) -> Result<&str> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-+".contains(c));
    if !ok {
        return Err(AdminError::Invalid(format!(
            "`{name}` is not a valid user name: use 1 to 64 letters, digits or . _ @ - +"
        )));
    }
    Ok(name)
}

impl Admin<'_> {
    /// Create a login account; `operator`: it may open the operator pages too.
    pub fn create_user(&self, username: &str, pw: &str, operator: bool) -> Result<()> {
        let username = check_username(username)?;
        let hash = password::hash(pw)?;
        let e = NewAuditEvent {
            detail: Some(format!(
                "user {username}{}",
                if operator { " (operator)" } else { "" }
            )),
            ..self.event(AuditAction::UserCreate, "success")
        };
        self.store
            .insert_user(username, &hash, operator, self.now(), &e)
            .map_err(not_found_or)
    }

    /// Let an account open the operator pages, or not.
    pub fn set_operator(&self, username: &str, operator: bool) -> Result<()> {
        let username = check_username(username)?;
        let e = NewAuditEvent {
            detail: Some(format!("user {username}: operator {operator}")),
            ..self.event(AuditAction::UserSetOperator, "success")
        };
        self.store
            .set_user_operator(username, operator, self.now(), &e)
            .map_err(not_found_or)
    }

    /// Fail unless the account exists (before asking for a new password for it).
    pub fn require_user(&self, username: &str) -> Result<()> {
        let username = check_username(username)?;
        match self.store.user_with_hash(username)? {
            Some(_) => Ok(()),
            None => Err(AdminError::NotFound(format!("no user {username} exists"))),
        }
    }

    /// Change a login account's password.
    pub fn set_password(&self, username: &str, pw: &str) -> Result<()> {
        let username = check_username(username)?;
        let hash = password::hash(pw)?;
        let e = NewAuditEvent {
            detail: Some(format!("user {username}")),
            ..self.event(AuditAction::UserSetPassword, "success")
        };
        self.store
            .set_user_password(username, &hash, self.now(), &e)
            .map_err(not_found_or)
    }

    /// Delete a login account.
    pub fn delete_user(&self, username: &str) -> Result<()> {
        let username = check_username(username)?;
        let e = NewAuditEvent {
            detail: Some(format!("user {username}")),
            ..self.event(AuditAction::UserDelete, "success")
        };
        self.store
            .delete_user(username, self.now(), &e)
            .map_err(not_found_or)
    }

    /// Forget the consents `username` gave (to one client, or to all): the consent page
    /// is shown again next time. Nothing to forget is an error, so a typo does not pass
    /// for success.
    pub fn revoke_consent(&self, username: &str, client_id: Option<&str>) -> Result<usize> {
        let username = check_username(username)?;
        if let Some(c) = client_id {
            self.client(c)?;
        }
        let e = NewAuditEvent {
            client_id: client_id.map(str::to_string),
            detail: Some(format!("consents of user {username} revoked")),
            ..self.event(AuditAction::ConsentRevoke, "success")
        };
        let n = self
            .store
            .delete_consents(username, client_id, self.now(), &e)?;
        if n == 0 {
            return Err(AdminError::NotFound(match client_id {
                Some(c) => format!(
                    "user {username} has no remembered consent for client {c}; nothing was changed"
                ),
                None => format!("user {username} has no remembered consent; nothing was changed"),
            }));
        }
        Ok(n)
    }

    /// All login accounts.
    pub fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.store.list_users()?)
    }
}
