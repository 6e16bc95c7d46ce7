//! The authorization request (RFC 6749 §4.1.1) checked before any page is shown, and the
//! authorization code issued once the user has logged in and consented. The pages
//! themselves are in [`crate::web`].
//!
//! RFC 6749 §4.1.2.1: when the client or the redirect URI cannot be trusted, the user sees
//! an error page and is never redirected; every other error goes back to the client as
//! `error=…&state=…`. Responses carry `iss` (RFC 9207) against mix-up attacks.

use super::params::Params;
use super::pkce;
use crate::model::{AuthMethod, Client, GrantType, IssuedVia, Scope, scopes_to_string};
use crate::store::{NewTokenRecord, Store, StoreError};
use crate::time::Timestamp;
use crate::token::{self, TokenKind};

/// Authorization codes live 60 seconds (DESIGN: Tokens).
pub const CODE_TTL: i64 = 60;

/// A valid authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    pub state: Option<String>,
    pub scopes: Vec<Scope>,
    pub code_challenge: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// Show this sentence on an error page; do not redirect.
    #[error("{0}")]
    Page(String),
    /// Send the user back to the client with `error=code`.
    #[error("{description}")]
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        code: &'static str,
        description: String,
    },
    #[error("the store is unavailable")]
    Store(#[from] StoreError),
}

/// The authorization parameters, in the order they are echoed through the forms.
pub const PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Check an authorization request (blocking: reads the client).
pub fn validate(store: &Store, p: &Params) -> Result<AuthRequest, AuthorizeError> {
    let Some(client_id) = p.get("client_id") else {
        return Err(AuthorizeError::Page(
            "The request does not name a client (client_id is missing).".into(),
        ));
    };
    let Some(client) = store.client(client_id)? else {
        return Err(AuthorizeError::Page(format!(
            "No client with id `{}` is registered here.",
            crate::text::printable(client_id, 64)
        )));
    };
    if client.disabled_at.is_some() {
        return Err(AuthorizeError::Page(format!(
            "Client {} is disabled; an operator can enable it again with config enable-api-client.",
            client.name
        )));
    }
    let (redirect_uri, explicit) = match p.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => (uri.to_string(), true),
        Some(_) => {
            return Err(AuthorizeError::Page(format!(
                "The redirect URI in the request is not registered for client {} (it must match exactly).",
                client.name
            )));
        }
        None if client.redirect_uris.len() == 1 => (client.redirect_uris[0].clone(), false),
        None => {
            return Err(AuthorizeError::Page(format!(
                "The request has no redirect URI and client {} has {} registered; the client must say which.",
                client.name,
                client.redirect_uris.len()
            )));
        }
    };
    let state = p.get("state").map(str::to_string);
    let fail = |code: &'static str, description: String| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        code,
        description,
    };
    match p.get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(fail(
                "unsupported_response_type",
                format!("response_type `{other}` is not supported; use code"),
            ));
        }
        None => return Err(fail("invalid_request", "response_type is missing".into())),
    }
    if !client.has_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "the client is not registered for the authorization_code grant".into(),
        ));
    }
    let scopes = crate::oauth::grants::requested_scopes(p.get("scope"), &client.scopes)
        .map_err(|e| fail("invalid_scope", e.to_string()))?;
    let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (None, None) if client.auth_method == AuthMethod::None => {
            return Err(fail(
                "invalid_request",
                "public clients must use PKCE (code_challenge with code_challenge_method=S256)"
                    .into(),
            ));
        }
        (None, None) if client.needs_pkce() => {
            return Err(fail(
                "invalid_request",
                "this client must use PKCE (code_challenge with code_challenge_method=S256)".into(),
            ));
        }
        (None, None) => None,
        (None, Some(_)) => return Err(fail("invalid_request", "code_challenge is missing".into())),
        (Some(c), Some("S256")) if pkce::well_formed(c) => Some(c.to_string()),
        (Some(_), Some("S256")) => {
            return Err(fail(
                "invalid_request",
                "code_challenge is malformed".into(),
            ));
        }
        (Some(_), method) => {
            return Err(fail(
                "invalid_request",
                format!(
                    "code_challenge_method {} is not supported; use S256",
                    method.unwrap_or("plain (the default)")
                ),
            ));
        }
    };
    Ok(AuthRequest {
        client,
        redirect_uri,
        redirect_uri_explicit: explicit,
        state,
        scopes,
        code_challenge,
    })
}

/// Where to send the user back to, with `pairs` (and `state`, `iss`) in the query.
pub fn redirect_location(
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        // Registered URIs are validated at registration; keep the string as it is.
        return redirect_uri.to_string();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    url.to_string()
}

/// Issue an authorization code for `req` to `username`; returns the redirect location.
pub fn issue_code(
    store: &Store,
    req: &AuthRequest,
    username: &str,
    now: Timestamp,
    issuer: &str,
) -> Result<String, StoreError> {
    let code = token::generate(TokenKind::AuthorizationCode, now);
    let record = NewTokenRecord {
        id: code.id.clone(),
        hash: code.hash,
        kind: TokenKind::AuthorizationCode,
        client_id: req.client.id.clone(),
        subject: username.to_string(),
        scopes: req.scopes.clone(),
        issued_at: now,
        expires_at: now + CODE_TTL,
        issued_via: IssuedVia::AuthorizationCode,
        family_id: Some(code.id.to_string()),
        parent_id: None,
        label: None,
        client_epoch: req.client.token_epoch,
    };
    store.insert_code(
        &record,
        &req.redirect_uri,
        req.redirect_uri_explicit,
        req.code_challenge.as_deref(),
    )?;
    tracing::info!(client_id = %req.client.id, code_id = %code.id, user = %username,
        scopes = %scopes_to_string(&req.scopes), "issued authorization code");
    Ok(redirect_location(
        &req.redirect_uri,
        &[("code", code.secret.expose())],
        req.state.as_deref(),
        issuer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_existing_query_and_adds_state_and_iss() {
        let loc = redirect_location(
            "https://app.example/cb?x=1",
            &[("error", "access_denied")],
            Some("a b&c"),
            "http://127.0.0.1:8080",
        );
        assert_eq!(
            loc,
            "https://app.example/cb?x=1&error=access_denied&state=a+b%26c&iss=http%3A%2F%2F127.0.0.1%3A8080"
        );
    }
}
