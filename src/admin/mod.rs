//! The operations an operator performs — register a client, issue, show, revoke and rotate
//! tokens, manage login accounts, the tool password and the lifetime policy. The `config`
//! CLI is a thin shell over these; the web pages reuse them.
//!
//! Each operation validates its input, calls the store once (the change and its audit
//! event commit together) and returns domain types. Every refusal is an [`AdminError`]
//! whose message is one sentence for the operator.

mod clients;
mod tokens;
mod users;
mod views;

pub use clients::{ClientChanges, MAX_ALERT_EMAILS, RegisterClient, alert_email};
pub use tokens::{IssueToken, Lifetime, RevokeResult, TokenRef};

use crate::model::AuditAction;
use crate::model::{InvalidValue, NewAuditEvent};
use crate::store::{MAX_TOKEN_LIFETIME_KEY, Store, StoreError, TOOL_PASSWORD_KEY};
use crate::time::{Clock, Duration, Timestamp};
use crate::{password, token};

/// Wait until no server can still trust what it read before a cut-off that just
/// committed: every server cache of tokens and clients trusts an entry for at most
/// [`crate::settings::CACHE_TTL`] from when its read began. So once a cutting command
/// (delete, disable, rotate, revoke all) returns, none of the client's old tokens works
/// anywhere.
pub fn wait_for_caches() {
    std::thread::sleep(crate::settings::CACHE_TTL + std::time::Duration::from_millis(20));
}

/// Default and ceiling of every token lifetime unless the operator changes the policy.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::days(730);

/// Why an operation was refused. The `Display` text is what the operator reads.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The operator's input is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// What the operator named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation would clash with existing state.
    #[error("{0}")]
    Conflict(String),
    #[error("the tool password is wrong")]
    WrongToolPassword,
    #[error("the store has no tool password yet; run `config init` first")]
    NotInitialised,
    #[error("the store is already initialised (it has a tool password)")]
    AlreadyInitialised,
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<InvalidValue> for AdminError {
    fn from(e: InvalidValue) -> Self {
        AdminError::Invalid(e.0)
    }
}

impl From<crate::time::TimeParseError> for AdminError {
    fn from(e: crate::time::TimeParseError) -> Self {
        AdminError::Invalid(e.to_string())
    }
}

impl From<password::PasswordError> for AdminError {
    fn from(e: password::PasswordError) -> Self {
        AdminError::Invalid(e.to_string())
    }
}

impl From<token::TokenParseError> for AdminError {
    fn from(e: token::TokenParseError) -> Self {
        AdminError::Invalid(format!("that is not a valid token: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, AdminError>;

/// An operator session: the store, the clock and who is acting (for the audit log).
pub struct Admin<'a> {
    pub(crate) store: &'a Store,
    pub clock: Clock,
    pub actor: String,
}

impl<'a> Admin<'a> {
    pub fn new(store: &'a Store, clock: Clock, actor: impl Into<String>) -> Admin<'a> {
        Admin {
            store,
            clock,
            actor: actor.into(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// An audit event by this actor.
    pub(crate) fn event(&self, action: AuditAction, outcome: &str) -> NewAuditEvent {
        NewAuditEvent::new(self.actor.clone(), action, outcome)
    }

    /// Record a refused attempt (nothing else changes).
    pub fn audit_failure(&self, action: AuditAction, detail: String) -> Result<()> {
        let e = NewAuditEvent {
            detail: Some(detail),
            ..self.event(action, "failure")
        };
        Ok(self.store.audit(&e, self.now())?)
    }

    /// Set the tool password of a store that has none.
    pub fn init(&self, tool_password: &str) -> Result<()> {
        let hash = password::hash(tool_password)?;
        let e = self.event(AuditAction::StoreInit, "success");
        if !self
            .store
            .set_meta_if_absent(TOOL_PASSWORD_KEY, &hash, self.now(), &e)?
        {
            return Err(AdminError::AlreadyInitialised);
        }
        Ok(())
    }

    /// Check the tool password. A wrong one is audited and refused.
    pub fn verify_tool_password(&self, candidate: &str) -> Result<()> {
        let Some(hash) = self.store.meta(TOOL_PASSWORD_KEY)? else {
            return Err(AdminError::NotInitialised);
        };
        if password::verify(candidate, &hash) {
            return Ok(());
        }
        let e = NewAuditEvent {
            detail: Some("wrong tool password".into()),
            ..self.event(AuditAction::ToolPasswordVerify, "denied")
        };
        self.store.audit(&e, self.now())?;
        Err(AdminError::WrongToolPassword)
    }

    /// Change the tool password (the caller has verified the old one).
    pub fn set_tool_password(&self, new_password: &str) -> Result<()> {
        let hash = password::hash(new_password)?;
        let e = self.event(AuditAction::ToolPasswordChange, "success");
        Ok(self
            .store
            .set_meta(TOOL_PASSWORD_KEY, &hash, self.now(), &e)?)
    }

    /// The longest lifetime a token may be given.
    pub fn max_token_lifetime(&self) -> Result<Duration> {
        Ok(self
            .store
            .meta(MAX_TOKEN_LIFETIME_KEY)?
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|s| *s > 0)
            .map(Duration::seconds)
            .unwrap_or(DEFAULT_MAX_TOKEN_LIFETIME))
    }

    /// Change the longest lifetime a token may be given (existing tokens keep theirs).
    pub fn set_max_token_lifetime(&self, max: Duration) -> Result<()> {
        let e = NewAuditEvent {
            detail: Some(format!("max token lifetime set to {max}")),
            ..self.event(AuditAction::PolicyUpdate, "success")
        };
        Ok(self.store.set_meta(
            MAX_TOKEN_LIFETIME_KEY,
            &max.secs().to_string(),
            self.now(),
            &e,
        )?)
    }
}

fn not_found_or(e: StoreError) -> AdminError {
    match e {
        StoreError::NotFound(what) => AdminError::NotFound(format!("no {what} exists")),
        StoreError::Conflict(what) => AdminError::Conflict(what),
        other => AdminError::Store(other),
    }
}
