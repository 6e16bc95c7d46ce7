//! Token operations for operators: issue (Spotfire's `issue-access-token` rules), look up by
//! id or value, list, revoke (which, unlike Spotfire's, fails when nothing matches),
//! rotate with an overlap so an IdP can be switched over without downtime, and prune what
//! expired long ago.

use super::{Admin, AdminError, Result};
use crate::model::AuditAction;
use crate::model::{GrantType, IssuedVia, NewAuditEvent, Scope, TokenRecord};
use crate::store::{NewTokenRecord, Pruned, RevokeOutcome, TokenFilter};
use crate::time::{Duration, Timestamp, format_local};
use crate::token::{self, Secret, TokenId, TokenKind};

/// How long a new token lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Spotfire's `-v/--validity` in hours.
    Hours(i64),
    /// `--valid-for 90d`.
    For(Duration),
    /// `--expires-at 2027-03-31`.
    Until(Timestamp),
}

impl Lifetime {
    /// Spotfire's default: 17520 hours (two years).
    pub const DEFAULT: Lifetime = Lifetime::Hours(17_520);
}

/// What `issue-access-token` asks for.
#[derive(Debug, Clone)]
pub struct IssueToken {
    pub client_id: String,
    /// Empty: the client's registered scopes.
    pub scopes: Vec<Scope>,
    pub lifetime: Lifetime,
    pub label: Option<String>,
}

/// How an operator named a token: by public id or by its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRef {
    Id(TokenId),
    Value(token::ParsedToken),
}

impl TokenRef {
    /// Parse `tok_…` or a full token; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<TokenRef> {
        let s = s.trim();
        if s.get(..TokenId::PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(TokenId::PREFIX))
        {
            return TokenId::parse(s).map(TokenRef::Id).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "`{s}` is not a token id: a token id is tok_ followed by 20 letters and digits (16 hex characters for a token in the older format)"
                ))
            });
        }
        Ok(TokenRef::Value(token::parse(s)?))
    }

    fn describe(&self) -> String {
        match self {
            TokenRef::Id(id) => format!("id {id}"),
            TokenRef::Value(p) => format!("the given value (id {})", p.id),
        }
    }
}

/// What `revoke-token` did.
#[derive(Debug, Clone, PartialEq)]
pub enum RevokeResult {
    Revoked(TokenRecord),
    AlreadyRevoked(TokenRecord),
}

/// A disabled client is issued nothing (`disable-api-client`).
fn refuse_disabled(client: &crate::model::Client) -> Result<()> {
    match client.disabled_at {
        Some(_) => Err(AdminError::Invalid(format!(
            "client {} ({}) is disabled; enable it first with `config enable-api-client -i {}`",
            client.id, client.name, client.id
        ))),
        None => Ok(()),
    }
}

impl Admin<'_> {
    /// Issue an access token to a client for SCIM calls. The client must have the
    /// client_credentials grant and every requested scope (Spotfire's rule).
    pub fn issue_access_token(&self, req: IssueToken) -> Result<(TokenRecord, Secret)> {
        let client = self.client(&req.client_id)?;
        refuse_disabled(&client)?;
        if client.auth_method == crate::model::AuthMethod::None {
            return Err(AdminError::Invalid(format!(
                "client {} ({}) is a public client and cannot hold tokens issued from the command line; register a confidential client with -G client_credentials for that",
                client.id, client.name
            )));
        }
        if !client.has_grant(GrantType::ClientCredentials) {
            let mut grants: Vec<&str> = client.grants.iter().map(|g| g.as_str()).collect();
            grants.push(GrantType::ClientCredentials.as_str());
            return Err(AdminError::Invalid(format!(
                "client {} ({}) does not have the client_credentials grant, which tokens issued from the command line need; add it with `config update-api-client -i {} -G {}`",
                client.id,
                client.name,
                client.id,
                grants.join(" -G ")
            )));
        }
        let scopes = if req.scopes.is_empty() {
            client.scopes.clone()
        } else {
            let mut s = req.scopes.clone();
            s.sort();
            s.dedup();
            if let Some(missing) = s.iter().find(|s| !client.has_scope(**s)) {
                return Err(AdminError::Invalid(format!(
                    "client {} is not registered for scope {}; its scopes are: {}",
                    client.id,
                    missing.name(),
                    crate::model::scopes_to_string(&client.scopes)
                )));
            }
            s
        };
        let now = self.now();
        let expires_at = self.expiry(req.lifetime, now)?;
        let label = req
            .label
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty());
        let t = token::generate(TokenKind::Access, now);
        let record = NewTokenRecord {
            label,
            client_epoch: client.token_epoch,
            ..NewTokenRecord::own_access(&t, &client.id, scopes, now, expires_at, IssuedVia::Cli)
        };
        let e = NewAuditEvent {
            client_id: Some(client.id.clone()),
            token_id: Some(t.id.to_string()),
            detail: Some(format!("valid until {}", format_local(expires_at))),
            ..self.event(AuditAction::TokenIssue, "success")
        };
        self.store.insert_token(&record, &e)?;
        let rec = self
            .store
            .token(&t.id)?
            .ok_or_else(|| AdminError::NotFound(format!("token {} vanished", t.id)))?;
        Ok((rec, t.secret))
    }

    /// When a token issued now with `lifetime` expires; refuses non-positive lifetimes
    /// and lifetimes beyond the policy maximum.
    pub fn expiry(&self, lifetime: Lifetime, now: Timestamp) -> Result<Timestamp> {
        let secs = match lifetime {
            Lifetime::Hours(h) if h <= 0 => {
                return Err(AdminError::Invalid(format!(
                    "a validity of {h} hours is not positive"
                )));
            }
            Lifetime::Hours(h) => h.saturating_mul(3600),
            Lifetime::For(d) => d.secs(),
            Lifetime::Until(ts) if ts <= now => {
                return Err(AdminError::Invalid(format!(
                    "{} is in the past",
                    format_local(ts)
                )));
            }
            Lifetime::Until(ts) => ts - now,
        };
        let max = self.max_token_lifetime()?;
        if secs > max.secs() {
            return Err(AdminError::Invalid(format!(
                "a validity of {} is beyond the maximum token lifetime of {max} (see `config policy`)",
                Duration::seconds(secs)
            )));
        }
        Ok(now + secs)
    }

    /// Find a token by id or value; `NotFound` says that nothing matched.
    pub fn find_token(&self, r: &TokenRef) -> Result<TokenRecord> {
        let found = match r {
            TokenRef::Id(id) => self.store.token(id)?,
            TokenRef::Value(p) => self.store.token_by_value(p)?,
        };
        found.ok_or_else(|| AdminError::NotFound(format!("no token matches {}", r.describe())))
    }

    /// List tokens. A client id that matches no client (live or deleted) and no token is
    /// an error, so a typo is not mistaken for "no tokens".
    pub fn list_tokens(&self, filter: &TokenFilter) -> Result<Vec<TokenRecord>> {
        let tokens = self.store.list_tokens(filter, self.now())?;
        if let Some(c) = &filter.client_id {
            if tokens.is_empty() && self.store.client(c)?.is_none() {
                let any = self.store.list_tokens(
                    &TokenFilter {
                        client_id: Some(c.clone()),
                        include_inactive: true,
                        limit: Some(1),
                        ..TokenFilter::default()
                    },
                    self.now(),
                )?;
                if any.is_empty() {
                    return Err(AdminError::NotFound(format!(
                        "no API client with id {c} exists"
                    )));
                }
            }
        }
        Ok(tokens)
    }

    /// Revoke one token. Nothing matching is an error (and audited); already revoked is not.
    pub fn revoke_token(
        &self,
        r: &TokenRef,
        expected_kind: Option<TokenKind>,
        reason: Option<&str>,
    ) -> Result<RevokeResult> {
        let rec = match self.find_token(r) {
            Ok(rec) => rec,
            Err(AdminError::NotFound(msg)) => {
                self.audit_failure(AuditAction::TokenRevoke, msg.clone())?;
                return Err(AdminError::NotFound(format!("{msg}; nothing was changed")));
            }
            Err(e) => return Err(e),
        };
        if let Some(kind) = expected_kind {
            if rec.kind != kind {
                let msg = format!(
                    "token {} is {}, not {}",
                    rec.id,
                    article(rec.kind),
                    article(kind)
                );
                self.store.audit(
                    &NewAuditEvent {
                        client_id: Some(rec.client_id.clone()),
                        token_id: Some(rec.id.to_string()),
                        detail: Some(msg.clone()),
                        ..self.event(AuditAction::TokenRevoke, "failure")
                    },
                    self.now(),
                )?;
                return Err(AdminError::Invalid(format!("{msg}; nothing was changed")));
            }
        }
        let reason = reason.unwrap_or("revoked by operator");
        let e = NewAuditEvent {
            client_id: Some(rec.client_id.clone()),
            token_id: Some(rec.id.to_string()),
            detail: Some(reason.to_string()),
            ..self.event(AuditAction::TokenRevoke, "success")
        };
        match self.store.revoke_token(&rec.id, reason, self.now(), &e)? {
            Some(RevokeOutcome::Revoked(r)) => Ok(RevokeResult::Revoked(r)),
            Some(RevokeOutcome::AlreadyRevoked(r)) => Ok(RevokeResult::AlreadyRevoked(r)),
            None => Err(AdminError::NotFound(format!(
                "no token matches id {}",
                rec.id
            ))),
        }
    }

    /// Revoke every token of a client issued until now: one UPDATE of the client's row
    /// and one audit event, however many tokens it holds (the client is cut off, see
    /// schema.sql migration 7). Returns how many of them were live. Returns once no
    /// server still trusts one of them ([`crate::admin::wait_for_caches`]).
    pub fn revoke_client_tokens(&self, client_id: &str, reason: Option<&str>) -> Result<usize> {
        self.client(client_id)?;
        let now = self.now();
        let live = self.store.count_live_tokens(client_id, now)?;
        let reason = reason.unwrap_or("revoked by operator (all tokens of the client)");
        let e = NewAuditEvent {
            client_id: Some(client_id.to_string()),
            detail: Some(format!("all tokens of the client ({live} live): {reason}")),
            ..self.event(AuditAction::TokenRevokeAll, "success")
        };
        self.store
            .cut_off_client(client_id, reason, None, now, &e)?;
        crate::admin::wait_for_caches();
        Ok(live)
    }

    /// Delete the tokens that expired more than `expired_for` ago (see `store::retention`);
    /// with `dry_run`, only count them. Returns the cutoff and what was (or would be)
    /// deleted; a real prune is audited (`token.prune`), even when it found nothing.
    pub fn prune_tokens(
        &self,
        expired_for: Duration,
        dry_run: bool,
    ) -> Result<(Timestamp, Pruned)> {
        let now = self.now();
        let cutoff = now.saturating_sub(expired_for.secs());
        if dry_run {
            return Ok((cutoff, self.store.count_expired_tokens(cutoff)?));
        }
        let pruned = self.store.prune_tokens(cutoff, now, |p| {
            Some(NewAuditEvent {
                detail: Some(p.describe(cutoff)),
                ..self.event(AuditAction::TokenPrune, "success")
            })
        })?;
        Ok((cutoff, pruned))
    }

    /// Issue a replacement for a live access token (same client, scopes and label, a fresh
    /// full lifetime) and let the old one live only `overlap` longer.
    pub fn rotate_token(
        &self,
        r: &TokenRef,
        overlap: Duration,
        lifetime: Option<Lifetime>,
    ) -> Result<(TokenRecord, TokenRecord, Secret)> {
        let old = self.find_token(r)?;
        let now = self.now();
        if old.kind != TokenKind::Access {
            return Err(AdminError::Invalid(format!(
                "token {} is a {}; only access tokens can be rotated (refresh tokens rotate on use)",
                old.id, old.kind
            )));
        }
        if let Some(next) = self.store.replacement_of(&old.id)? {
            return Err(AdminError::Invalid(format!(
                "token {} was already rotated; its replacement is {next}",
                old.id
            )));
        }
        if old.status(now) != crate::model::TokenStatus::Active {
            return Err(AdminError::Invalid(format!(
                "token {} is {}; issue a new one with `config issue-access-token` instead",
                old.id,
                old.status(now).as_str()
            )));
        }
        let client = self.client(&old.client_id)?;
        refuse_disabled(&client)?;
        if !client.has_grant(GrantType::ClientCredentials) {
            return Err(AdminError::Invalid(format!(
                "client {} no longer has the client_credentials grant, so its tokens cannot be renewed from the command line",
                client.id
            )));
        }
        if let Some(s) = old.scopes.iter().find(|s| !client.has_scope(**s)) {
            return Err(AdminError::Invalid(format!(
                "client {} is no longer registered for scope {}; issue a new token with `config issue-access-token` instead",
                client.id,
                s.name()
            )));
        }
        let lifetime = lifetime.unwrap_or(Lifetime::For(Duration::seconds(
            old.expires_at - old.issued_at,
        )));
        let expires_at = self.expiry(lifetime, now)?;
        let t = token::generate(TokenKind::Access, now);
        let record = NewTokenRecord {
            id: t.id.clone(),
            hash: t.hash,
            kind: TokenKind::Access,
            client_id: client.id.clone(),
            subject: old.subject.clone(),
            scopes: old.scopes.clone(),
            issued_at: now,
            expires_at,
            issued_via: IssuedVia::Rotate,
            family_id: None,
            parent_id: Some(old.id.to_string()),
            label: old.label.clone(),
            client_epoch: client.token_epoch,
        };
        let old_until = now.saturating_add(overlap.secs()).min(old.expires_at);
        let e = NewAuditEvent {
            client_id: Some(client.id.clone()),
            token_id: Some(t.id.to_string()),
            detail: Some(format!(
                "replaces {}, which now expires {}",
                old.id,
                format_local(old_until)
            )),
            ..self.event(AuditAction::TokenRotate, "success")
        };
        self.store.rotate_token(&old.id, old_until, &record, &e)?;
        let new = self.find_token(&TokenRef::Id(t.id))?;
        let old = self.find_token(&TokenRef::Id(old.id))?;
        Ok((old, new, t.secret))
    }
}

/// "an access_token", "a refresh_token".
fn article(kind: TokenKind) -> String {
    let name = kind.as_str();
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {name}")
    } else {
        format!("a {name}")
    }
}
