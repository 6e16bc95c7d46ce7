//! `GET|POST /oauth2/authorize`: the authorization endpoint's pages. GET checks the
//! request ([`crate::oauth::authorize::validate`]) and shows the login form, or the consent
//! screen to a signed-in user (or, when consent is remembered, redirects with a code at
//! once). POST handles the two forms (`action=login`, `action=consent`), each checked
//! against the session's CSRF token.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use super::login::{LoginOutcome, check_login};
use super::pages;
use super::session::{COOKIE, Session};
use super::{WebError, html, redirect};
use crate::model::AuditAction;
use crate::model::NewAuditEvent;
use crate::oauth::authorize::{self, AuthRequest, AuthorizeError};
use crate::oauth::params::Params;
use crate::oauth::peer_ip;
use crate::state::AppState;

fn session_cookie(state: &AppState, id: String) -> Cookie<'static> {
    super::session::cookie(
        "/oauth2",
        id,
        state.settings.public_url.starts_with("https://"),
    )
}

/// The request's session, or a new anonymous one (with the cookie to set).
fn session_of(state: &AppState, req: &HttpRequest) -> (Session, Option<Cookie<'static>>) {
    let now = state.clock.now();
    if let Some(s) = req
        .cookie(COOKIE)
        .and_then(|c| state.sessions.get(c.value(), now))
    {
        return (s, None);
    }
    let (id, s) = state.sessions.start(now);
    (s, Some(session_cookie(state, id)))
}

async fn validate(state: &AppState, params: &Params) -> Result<AuthRequest, WebError> {
    let store = state.store.clone();
    let p = params.clone();
    let issuer = state.settings.public_url.clone();
    web::block(move || authorize::validate(&store, &p))
        .await?
        .map_err(|e| match e {
            AuthorizeError::Page(msg) => WebError::Page(StatusCode::BAD_REQUEST, msg),
            AuthorizeError::Redirect {
                redirect_uri,
                state,
                code,
                description,
            } => WebError::Redirect(authorize::redirect_location(
                &redirect_uri,
                &[("error", code), ("error_description", &description)],
                state.as_deref(),
                &issuer,
            )),
            AuthorizeError::Store(e) => WebError::Store(e),
        })
}

/// Signed in: redirect with a code if consent is remembered, else show the consent screen.
async fn consent_or_code(
    state: &AppState,
    ar: AuthRequest,
    params: &Params,
    session: &Session,
    user: &str,
) -> Result<HttpResponse, WebError> {
    let store = state.store.clone();
    let (u, client_id, scopes) = (user.to_string(), ar.client.id.clone(), ar.scopes.clone());
    let remembered = !ar.client.require_consent
        && web::block(move || store.has_consent(&u, &client_id, &scopes)).await??;
    if remembered {
        return issue(state, ar, user).await;
    }
    Ok(html(
        StatusCode::OK,
        pages::consent(
            &ar.client,
            &ar.scopes,
            &ar.redirect_uri,
            user,
            params,
            &session.csrf,
        ),
    ))
}

async fn issue(state: &AppState, ar: AuthRequest, user: &str) -> Result<HttpResponse, WebError> {
    let store = state.store.clone();
    let now = state.clock.now();
    let issuer = state.settings.public_url.clone();
    let u = user.to_string();
    let location =
        web::block(move || authorize::issue_code(&store, &ar, &u, now, &issuer)).await??;
    Ok(redirect(&location))
}

/// `GET /oauth2/authorize`.
pub async fn show_authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let params = Params::parse(req.query_string().as_bytes())
        .map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.to_string()))?;
    let ar = validate(&state, &params).await?;
    let (session, cookie) = session_of(&state, &req);
    let mut resp = match &session.user {
        None => html(
            StatusCode::OK,
            pages::login(&ar.client, &params, &session.csrf, None),
        ),
        Some(user) => consent_or_code(&state, ar, &params, &session, user).await?,
    };
    if let Some(c) = cookie {
        resp.add_cookie(&c).map_err(|_| WebError::Internal)?;
    }
    Ok(resp)
}

/// `POST /oauth2/authorize`: the login and consent forms.
pub async fn submit_authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let params = Params::from_form(&req, &body)
        .map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.to_string()))?;
    let now = state.clock.now();
    let sid = req.cookie(COOKIE).map(|c| c.value().to_string());
    let session = sid.as_deref().and_then(|id| state.sessions.get(id, now));
    let csrf_ok = match (&session, params.get("csrf_token")) {
        (Some(s), Some(t)) => bool::from(s.csrf.as_bytes().ct_eq(t.as_bytes())),
        _ => false,
    };
    let Some(session) = session.filter(|_| csrf_ok) else {
        tracing::warn!(ip = %peer_ip(&req), "authorization form without a valid CSRF token");
        return Err(WebError::Page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this server (the CSRF check failed). \
             Go back to the application and start again."
                .into(),
        ));
    };
    let ar = validate(&state, &params).await?;
    match params.get("action") {
        Some("login") => login(&state, &req, ar, &params, sid.as_deref(), &session.csrf).await,
        Some("consent") => match &session.user {
            None => Ok(html(
                StatusCode::OK,
                pages::login(&ar.client, &params, &session.csrf, None),
            )),
            Some(user) => consent(&state, ar, &params, user).await,
        },
        _ => Err(WebError::Page(
            StatusCode::BAD_REQUEST,
            "The form sent no action.".into(),
        )),
    }
}

async fn login(
    state: &AppState,
    req: &HttpRequest,
    ar: AuthRequest,
    params: &Params,
    old_sid: Option<&str>,
    csrf: &str,
) -> Result<HttpResponse, WebError> {
    let now = state.clock.now();
    let (user, device) = match check_login(
        state,
        req,
        params.get("username").unwrap_or(""),
        params.get("password").unwrap_or(""),
        Some(&ar.client.id),
    )
    .await?
    {
        LoginOutcome::Accepted(account, device) => (account.username, device),
        LoginOutcome::Refused(status, msg) => {
            return Ok(html(
                status,
                pages::login(&ar.client, params, csrf, Some(&msg)),
            ));
        }
    };
    let (sid, session) = state.sessions.login(old_sid, &user, now)?;
    let mut resp = consent_or_code(state, ar, params, &session, &user).await?;
    resp.add_cookie(&session_cookie(state, sid))
        .map_err(|_| WebError::Internal)?;
    resp.add_cookie(&device).map_err(|_| WebError::Internal)?;
    Ok(resp)
}

async fn consent(
    state: &AppState,
    ar: AuthRequest,
    params: &Params,
    user: &str,
) -> Result<HttpResponse, WebError> {
    let issuer = &state.settings.public_url;
    match params.get("decision") {
        Some("allow") => {
            if !ar.client.require_consent {
                let store = state.store.clone();
                let now = state.clock.now();
                let (u, client_id, scopes) =
                    (user.to_string(), ar.client.id.clone(), ar.scopes.clone());
                let e = NewAuditEvent {
                    client_id: Some(client_id.clone()),
                    detail: Some(crate::model::scopes_to_string(&scopes)),
                    ..NewAuditEvent::new(
                        format!("user:{user}"),
                        AuditAction::ConsentGrant,
                        "success",
                    )
                };
                web::block(move || store.insert_consent(&u, &client_id, &scopes, now, &e))
                    .await??;
            }
            issue(state, ar, user).await
        }
        Some("deny") => Ok(redirect(&authorize::redirect_location(
            &ar.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ],
            ar.state.as_deref(),
            issuer,
        ))),
        _ => Err(WebError::Page(
            StatusCode::BAD_REQUEST,
            "The consent form sent no decision.".into(),
        )),
    }
}
