//! The three grants of the token endpoint, after the client has authenticated:
//! client_credentials, authorization_code (+PKCE) and refresh_token (rotated on every use,
//! with reuse detection). The code and refresh grants are blocking code (each is one
//! read-check-write transaction, so that two requests with the same code or refresh token
//! cannot both win): the handler runs them in `web::block`. client_credentials only reads,
//! then its record joins the group commit ([`crate::store::TokenBatcher`]), which batches
//! concurrent issuances into one transaction.
//!
//! Every token goes to the store as a hash before the response is built; the plaintexts
//! exist only in the returned [`Issued`]. Lifetimes are the client's registered ones,
//! bounded by the server-wide maximum (`config policy`).

use super::error::OAuthError;
use super::params::Params;
use super::pkce;
use super::service::OAuth;
use crate::admin::{Admin, AdminError};
use crate::model::AuditAction;
use crate::model::{
    Client, GrantType, IssuedVia, NewAuditEvent, Scope, TokenRecord, scopes_from_str,
    scopes_to_string,
};
use crate::monitor::events::{Attribution, Verdict};
use crate::store::{NewTokenRecord, RedeemOutcome, RotateOutcome};
use crate::time::Timestamp;
use crate::token::{self, NewToken, TokenKind};

/// A refused refresh: the error to answer with and, when the refusal means the client's
/// own refresh token is dead (expired, revoked, or just revoked with its family for
/// reuse), what the monitor should attribute to the client: its provisioning is broken.
#[derive(Debug)]
pub struct Refusal {
    pub error: OAuthError,
    pub dead_credential: Option<Attribution>,
}

impl<E: Into<OAuthError>> From<E> for Refusal {
    fn from(e: E) -> Refusal {
        Refusal {
            error: e.into(),
            dead_credential: None,
        }
    }
}

impl Refusal {
    fn dead(error: OAuthError, client: &Client, token: &TokenRecord, verdict: Verdict) -> Refusal {
        // A token of another client says nothing about this client's health.
        let dead_credential = (token.client_id == client.id).then(|| Attribution::Token {
            token_id: Some(token.id.to_string()),
            client_id: client.id.clone(),
            verdict,
        });
        Refusal {
            error,
            dead_credential,
        }
    }
}

/// Tokens just issued, for the response body.
#[derive(Debug)]
pub struct Issued {
    pub access: NewToken,
    pub expires_in: i64,
    pub refresh: Option<NewToken>,
    pub scopes: Vec<Scope>,
}

/// The scopes a request may have: all of `allowed` when it names none, else exactly what
/// it names, each of which must be allowed (`invalid_scope` otherwise; no silent trimming).
/// Never empty: a request naming only blanks (`scope=+`), or a client allowed no scope,
/// is `invalid_scope`. The one scope check of both the authorization and token endpoints.
pub fn requested_scopes(
    requested: Option<&str>,
    allowed: &[Scope],
) -> Result<Vec<Scope>, OAuthError> {
    let scopes = match requested {
        None => allowed.to_vec(),
        Some(text) => scopes_from_str(text).map_err(|e| OAuthError::InvalidScope(e.0))?,
    };
    if let Some(extra) = scopes.iter().find(|s| !allowed.contains(s)) {
        return Err(OAuthError::InvalidScope(format!(
            "scope {} is not granted to this client (allowed: {})",
            extra.name(),
            scopes_to_string(allowed)
        )));
    }
    if scopes.is_empty() {
        return Err(OAuthError::InvalidScope("no scope was requested".into()));
    }
    Ok(scopes)
}

fn require_grant(client: &Client, g: GrantType) -> Result<(), OAuthError> {
    if client.has_grant(g) {
        Ok(())
    } else {
        Err(OAuthError::UnauthorizedClient(format!(
            "client {} is not registered for the {g} grant",
            client.id
        )))
    }
}

/// The server-wide maximum token lifetime (`config policy`), read from the store at most
/// once per `token_cache_ttl` (1 s by default; 0 reads it on every request): issuance is
/// hot, the policy changes rarely, and a change applies to tokens issued after it within
/// the TTL.
#[derive(Debug)]
pub struct LifetimePolicy(crate::cache::Cache<(), i64>);

impl LifetimePolicy {
    pub fn new(ttl: std::time::Duration) -> LifetimePolicy {
        LifetimePolicy(crate::cache::Cache::new(Some(ttl), 1))
    }

    /// The maximum lifetime in seconds.
    fn max_secs(&self, oauth: &OAuth) -> Result<i64, OAuthError> {
        let max = self.0.get_or_load(
            &(),
            || {
                Admin::new(&oauth.store, oauth.clock.clone(), "server")
                    .max_token_lifetime()
                    .map(|d| Some(d.secs()))
                    .map_err(|e| match e {
                        AdminError::Store(s) => OAuthError::Store(s),
                        _ => OAuthError::Internal,
                    })
            },
            |_| true,
        )?;
        Ok(max.unwrap_or(crate::admin::DEFAULT_MAX_TOKEN_LIFETIME.secs()))
    }
}

/// Seconds the client's access and refresh tokens live, each bounded by the policy maximum.
fn lifetimes(oauth: &OAuth, client: &Client) -> Result<(i64, i64), OAuthError> {
    let max = oauth.lifetime_policy.max_secs(oauth)?;
    Ok((
        client.access_token_ttl.secs().min(max),
        client.refresh_token_ttl.secs().min(max),
    ))
}

/// One token row.
struct Row<'a> {
    client: &'a Client,
    subject: &'a str,
    scopes: &'a [Scope],
    now: Timestamp,
    via: IssuedVia,
    family: Option<&'a str>,
    parent: Option<&'a str>,
}

impl Row<'_> {
    fn record(&self, t: &NewToken, ttl: i64) -> NewTokenRecord {
        NewTokenRecord {
            id: t.id.clone(),
            hash: t.hash,
            kind: t.kind,
            client_id: self.client.id.clone(),
            subject: self.subject.to_string(),
            scopes: self.scopes.to_vec(),
            issued_at: self.now,
            expires_at: self.now + ttl,
            issued_via: self.via,
            family_id: self.family.map(str::to_string),
            parent_id: self.parent.map(str::to_string),
            label: None,
            client_epoch: self.client.token_epoch,
        }
    }
}

/// `grant_type=client_credentials`: an access token for the client itself, no refresh token.
/// Returns the token and its record *uncommitted*: the caller hands the record to the group
/// commit ([`crate::store::TokenBatcher`]) and answers only once it is committed. Reads
/// only (the lifetime policy), so the handler calls it inline.
pub fn client_credentials(
    oauth: &OAuth,
    client: &Client,
    params: &Params,
    now: Timestamp,
) -> Result<(Issued, NewTokenRecord), OAuthError> {
    require_grant(client, GrantType::ClientCredentials)?;
    let scopes = requested_scopes(params.get("scope"), &client.scopes)?;
    let (access_ttl, _) = lifetimes(oauth, client)?;
    let access = token::generate(TokenKind::Access, now);
    let row = Row {
        client,
        subject: &client.id,
        scopes: &scopes,
        now,
        via: IssuedVia::ClientCredentials,
        family: None,
        parent: None,
    };
    let record = row.record(&access, access_ttl);
    Ok((
        Issued {
            access,
            expires_in: access_ttl,
            refresh: None,
            scopes,
        },
        record,
    ))
}

fn security_event(
    oauth: &OAuth,
    action: AuditAction,
    outcome: &str,
    client_id: &str,
    token_id: &str,
    detail: String,
) -> Result<(), OAuthError> {
    tracing::warn!(%client_id, %token_id, "{action}: {detail}");
    let e = NewAuditEvent {
        actor: "server".into(),
        action,
        outcome: outcome.into(),
        client_id: Some(client_id.to_string()),
        token_id: Some(token_id.to_string()),
        detail: Some(detail),
    };
    Ok(oauth.store.audit(&e, oauth.clock.now())?)
}

fn ids(records: &[crate::model::TokenRecord]) -> String {
    records
        .iter()
        .map(|r| r.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `grant_type=authorization_code`: redeem a code once, with redirect URI and PKCE checks.
pub fn authorization_code(
    oauth: &OAuth,
    client: &Client,
    params: &Params,
    now: Timestamp,
) -> Result<Issued, OAuthError> {
    const UNKNOWN: &str = "the authorization code is invalid, expired or already used";
    let code = params.require("code")?;
    let redirect_uri = params.get("redirect_uri");
    let verifier = params.get("code_verifier");
    require_grant(client, GrantType::AuthorizationCode)?;
    let parsed = match token::parse(code) {
        Ok(p) if p.kind == TokenKind::AuthorizationCode => p,
        _ => return Err(OAuthError::InvalidGrant(UNKNOWN.into())),
    };
    let (access_ttl, refresh_ttl) = lifetimes(oauth, client)?;
    let access = token::generate(TokenKind::Access, now);
    let refresh = client
        .has_grant(GrantType::RefreshToken)
        .then(|| token::generate(TokenKind::Refresh, now));
    let outcome = oauth
        .store
        .redeem_code(&parsed, now, "authorization code replayed", |g| {
            if g.record.client_id != client.id {
                return Err(OAuthError::InvalidGrant(
                    "the authorization code was issued to another client".into(),
                ));
            }
            if g.record.expires_at <= now {
                return Err(OAuthError::InvalidGrant(
                    "the authorization code has expired (codes live 60 seconds)".into(),
                ));
            }
            match redirect_uri {
                Some(r) if r != g.redirect_uri => {
                    return Err(OAuthError::InvalidGrant(
                        "redirect_uri differs from the one in the authorization request".into(),
                    ));
                }
                None if g.redirect_uri_explicit => {
                    return Err(OAuthError::InvalidRequest(
                        "redirect_uri is required: the authorization request had one".into(),
                    ));
                }
                _ => {}
            }
            match (&g.code_challenge, verifier) {
                (Some(challenge), Some(v)) if !pkce::verify(v, challenge) => {
                    return Err(OAuthError::InvalidGrant(
                        "PKCE verification failed: code_verifier does not match the code_challenge"
                            .into(),
                    ));
                }
                (Some(_), None) => {
                    return Err(OAuthError::InvalidGrant(
                        "code_verifier is required: the authorization request had a code_challenge"
                            .into(),
                    ));
                }
                (None, Some(_)) => return Err(OAuthError::InvalidGrant(
                    "code_verifier was sent but the authorization request had no code_challenge"
                        .into(),
                )),
                // A code issued before the client was made to require PKCE.
                (None, None) if client.needs_pkce() => {
                    return Err(OAuthError::InvalidGrant(
                        "this client must use PKCE, and the code was issued without a code_challenge"
                            .into(),
                    ));
                }
                _ => {}
            }
            let family = g
                .record
                .family_id
                .clone()
                .unwrap_or_else(|| g.record.id.to_string());
            let row = Row {
                client,
                subject: &g.record.subject,
                scopes: &g.record.scopes,
                now,
                via: IssuedVia::AuthorizationCode,
                family: Some(&family),
                parent: Some(g.record.id.as_str()),
            };
            let mut batch = vec![row.record(&access, access_ttl)];
            if let Some(r) = &refresh {
                batch.push(row.record(r, refresh_ttl));
            }
            Ok(batch)
        })?;
    match outcome {
        RedeemOutcome::Issued(g) => {
            tracing::info!(client_id = %client.id, code_id = %g.record.id, token_id = %access.id,
                refresh_id = %refresh.as_ref().map_or_else(|| "-".to_string(), |r| r.id.to_string()),
                "issued tokens (authorization_code)");
            Ok(Issued {
                access,
                expires_in: access_ttl,
                refresh,
                scopes: g.record.scopes,
            })
        }
        RedeemOutcome::Rejected(e) => Err(e),
        RedeemOutcome::Replayed { code, revoked } => {
            oauth.tokens.clear();
            // The family includes the (consumed) code itself; name only what it issued.
            let revoked: Vec<_> = revoked.into_iter().filter(|r| r.id != code.id).collect();
            security_event(
                oauth,
                AuditAction::SecurityCodeReplay,
                "denied",
                &code.client_id,
                code.id.as_str(),
                format!(
                    "authorization code presented again by client {}; revoked {} token(s) issued from it: {}",
                    client.id,
                    revoked.len(),
                    ids(&revoked)
                ),
            )?;
            Err(OAuthError::InvalidGrant(
                "the authorization code was already used; the tokens issued from it are revoked"
                    .into(),
            ))
        }
        RedeemOutcome::Unknown => Err(OAuthError::InvalidGrant(UNKNOWN.into())),
    }
}

/// `grant_type=refresh_token`: a new access token and a new refresh token; the old refresh
/// token is spent. Presenting a spent one revokes the whole family (RFC 9700 §4.14.2).
pub fn refresh_token(
    oauth: &OAuth,
    client: &Client,
    params: &Params,
    now: Timestamp,
) -> Result<Issued, Refusal> {
    const INACTIVE: &str = "the refresh token is invalid, expired or revoked";
    let presented = params.require("refresh_token")?;
    let scope = params.get("scope");
    require_grant(client, GrantType::RefreshToken)?;
    let parsed = match token::parse(presented) {
        Ok(p) if p.kind == TokenKind::Refresh => p,
        _ => return Err(OAuthError::InvalidGrant(INACTIVE.into()).into()),
    };
    let (access_ttl, refresh_ttl) = lifetimes(oauth, client)?;
    let access = token::generate(TokenKind::Access, now);
    let refresh = token::generate(TokenKind::Refresh, now);
    let grace = oauth.settings.refresh_reuse_grace.map(|g| g.secs());
    let mut granted = Vec::new();
    let outcome =
        oauth
            .store
            .rotate_refresh(&parsed, now, "refresh token reused", grace, |old| {
                if old.client_id != client.id {
                    return Err(OAuthError::InvalidGrant(
                        "the refresh token was issued to another client".into(),
                    ));
                }
                // Never more than the original grant, nor than the client is registered for now.
                let still: Vec<Scope> = old
                    .scopes
                    .iter()
                    .copied()
                    .filter(|s| client.has_scope(*s))
                    .collect();
                granted = requested_scopes(scope, &still)?;
                let family = old.family_id.clone().unwrap_or_else(|| old.id.to_string());
                let row = Row {
                    client,
                    subject: &old.subject,
                    scopes: &granted,
                    now,
                    via: IssuedVia::RefreshToken,
                    family: Some(&family),
                    parent: Some(old.id.as_str()),
                };
                Ok(vec![
                    row.record(&access, access_ttl),
                    row.record(&refresh, refresh_ttl),
                ])
            })?;
    let issued = |access, refresh, scopes| Issued {
        access,
        expires_in: access_ttl,
        refresh: Some(refresh),
        scopes,
    };
    match outcome {
        RotateOutcome::Rotated(old) => {
            tracing::info!(client_id = %client.id, old_refresh_id = %old.id, token_id = %access.id,
                refresh_id = %refresh.id, "rotated refresh token");
            Ok(issued(access, refresh, granted))
        }
        RotateOutcome::Retried { token, superseded } => {
            oauth.tokens.clear();
            security_event(
                oauth,
                AuditAction::SecurityRefreshRetry,
                "success",
                &token.client_id,
                token.id.as_str(),
                format!(
                    "rotated refresh token presented again by client {} within the refresh_reuse_grace, before anything its rotation issued was used (a lost answer?); issued new tokens ({}, {}) and revoked the {} token(s) that rotation issued: {}",
                    client.id,
                    access.id,
                    refresh.id,
                    superseded.len(),
                    ids(&superseded)
                ),
            )?;
            Ok(issued(access, refresh, granted))
        }
        RotateOutcome::Rejected(e) => Err(e.into()),
        RotateOutcome::Reused { token, revoked } => {
            oauth.tokens.clear();
            security_event(
                oauth,
                AuditAction::SecurityRefreshReuse,
                "denied",
                &token.client_id,
                token.id.as_str(),
                format!(
                    "rotated refresh token presented again by client {}; revoked the grant family ({} token(s): {})",
                    client.id,
                    revoked.len(),
                    ids(&revoked)
                ),
            )?;
            Err(Refusal::dead(
                OAuthError::InvalidGrant(
                    "the refresh token was already used; every token of this grant is now revoked"
                        .into(),
                ),
                client,
                &token,
                Verdict::RefreshTokenReused,
            ))
        }
        RotateOutcome::Inactive(Some(token)) => {
            let verdict = if token.revoked_at.is_some() {
                Verdict::RefreshTokenRevoked
            } else {
                Verdict::RefreshTokenExpired
            };
            let error = OAuthError::InvalidGrant(INACTIVE.into());
            Err(Refusal::dead(error, client, &token, verdict))
        }
        RotateOutcome::Inactive(None) => Err(OAuthError::InvalidGrant(INACTIVE.into()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_requests_are_checked_not_trimmed() {
        let both = [Scope::DirectoryRead, Scope::DirectoryWrite];
        assert_eq!(requested_scopes(None, &both).unwrap(), both.to_vec());
        assert_eq!(
            requested_scopes(Some("user-directory.read.all"), &both).unwrap(),
            vec![Scope::DirectoryRead]
        );
        let err = requested_scopes(Some("user-directory.write.all"), &[Scope::DirectoryRead]);
        assert!(matches!(err, Err(OAuthError::InvalidScope(m)) if m.contains("write")));
        assert!(matches!(
            requested_scopes(Some("openid"), &both),
            Err(OAuthError::InvalidScope(_))
        ));
    }
}
