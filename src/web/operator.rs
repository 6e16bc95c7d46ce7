//! The operator pages under `/ui`: sign in with a login account, then the token timeline
//! (`/ui/timeline`). Same sessions, CSRF rule, throttling and page headers as the
//! authorization pages; the session cookie is scoped to `/ui`.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use super::login::{LoginOutcome, check_login};
use super::pages::escape;
use super::session::{COOKIE, Session};
use super::timeline::{self, Timeline};
use super::{WebError, html, redirect};
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::store::TokenFilter;

/// What a signed-in account without the operator role is told.
const NOT_AN_OPERATOR: &str = "This account may give consent on the authorization page but not open the operator pages; an operator can allow it with `config set-operator -u NAME true`.";

/// The routes of the operator pages: resources, so a wrong method is a 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ui").get(|| async { redirect("/ui/timeline") }))
        .service(
            web::resource("/ui/login")
                .get(show_login)
                .post(submit_login),
        )
        .service(web::resource("/ui/logout").get(logout))
        .service(web::resource("/ui/timeline").get(show_timeline));
}

fn cookie(state: &AppState, id: String) -> Cookie<'static> {
    super::session::cookie("/ui", id, state.settings.public_url.starts_with("https://"))
}

fn session(state: &AppState, req: &HttpRequest) -> Option<(String, Session)> {
    let c = req.cookie(COOKIE)?;
    let s = state.sessions.get(c.value(), state.clock.now())?;
    Some((c.value().to_string(), s))
}

fn login_page(csrf: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scimgate — sign in</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 380px; margin: 80px auto; color: #1f2328; }}
label {{ display: block; margin: 12px 0 4px; }} input {{ width: 100%; padding: 6px; box-sizing: border-box; }}
button {{ margin-top: 16px; padding: 8px 16px; }} .error {{ color: #cf222e; }}</style></head>
<body><h1>scimgate operator pages</h1>{error}
<form method="post" action="/ui/login">
<input type="hidden" name="csrf_token" value="{csrf}">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form></body></html>"##,
        csrf = escape(csrf)
    )
}

async fn show_login(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    if let Some((_, s)) = session(&state, &req) {
        if s.user.is_some() {
            return Ok(redirect("/ui/timeline"));
        }
        return Ok(html(StatusCode::OK, login_page(&s.csrf, None)));
    }
    let (id, s) = state.sessions.start(state.clock.now());
    let mut resp = html(StatusCode::OK, login_page(&s.csrf, None));
    resp.add_cookie(&cookie(&state, id))
        .map_err(|_| WebError::Internal)?;
    Ok(resp)
}

async fn submit_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let params = Params::from_form(&req, &body)
        .map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.to_string()))?;
    let Some((sid, s)) = session(&state, &req).filter(|(_, s)| {
        params
            .get("csrf_token")
            .is_some_and(|t| bool::from(s.csrf.as_bytes().ct_eq(t.as_bytes())))
    }) else {
        return Err(WebError::Page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this server (the CSRF check failed). Open /ui/login again.".into(),
        ));
    };
    match check_login(
        &state,
        &req,
        params.get("username").unwrap_or(""),
        params.get("password").unwrap_or(""),
        None,
    )
    .await?
    {
        LoginOutcome::Refused(status, msg) => Ok(html(status, login_page(&s.csrf, Some(&msg)))),
        LoginOutcome::Accepted(account, _) if !account.operator => Ok(html(
            StatusCode::FORBIDDEN,
            login_page(&s.csrf, Some(NOT_AN_OPERATOR)),
        )),
        LoginOutcome::Accepted(account, device) => {
            let (id, _) = state
                .sessions
                .login(Some(&sid), &account.username, state.clock.now())?;
            let mut resp = redirect("/ui/timeline");
            resp.add_cookie(&cookie(&state, id))
                .map_err(|_| WebError::Internal)?;
            resp.add_cookie(&device).map_err(|_| WebError::Internal)?;
            Ok(resp)
        }
    }
}

async fn logout(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    if let Some((sid, _)) = session(&state, &req) {
        state.sessions.end(&sid)?;
    }
    let mut resp = redirect("/ui/login");
    let mut gone = cookie(&state, String::new());
    gone.make_removal();
    resp.add_cookie(&gone).map_err(|_| WebError::Internal)?;
    Ok(resp)
}

async fn show_timeline(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let Some(user) = session(&state, &req).and_then(|(_, s)| s.user) else {
        return Ok(redirect("/ui/login"));
    };
    let st = state.clone();
    let page = web::block(move || -> Result<Option<String>, WebError> {
        // Checked on every page, not only at sign-in: an account demoted since (or a
        // consent session's cookie replayed under /ui) sees nothing.
        if !st
            .store
            .user_with_hash(&user)?
            .is_some_and(|(u, _)| u.operator)
        {
            return Ok(None);
        }
        let now = st.clock.now();
        let admin = crate::admin::Admin::new(&st.store, st.clock.clone(), "web");
        let statuses = admin.client_statuses(None)?;
        let tokens = st.store.list_tokens(
            &TokenFilter {
                include_inactive: true,
                limit: Some(5000),
                ..TokenFilter::default()
            },
            now,
        )?;
        // Only what the window shows: tokens alive at some point of it.
        let tokens: Vec<_> = tokens
            .into_iter()
            .filter(|t| {
                t.expires_at >= now - timeline::PAST && t.issued_at <= now + timeline::AHEAD
            })
            .filter(|t| {
                t.expires_at - t.issued_at > 86_400
                    || t.status(now) == crate::model::TokenStatus::Active
            })
            .collect();
        let activity = st.store.client_activity(now - timeline::PAST)?;
        let provisioning_errors = st.store.provisioning_error_hours(now - timeline::PAST)?;
        let leads = crate::monitor::published_leads(&st.store)?;
        Ok(Some(timeline::render(&Timeline {
            statuses: &statuses,
            tokens: &tokens,
            activity: &activity,
            provisioning_errors: &provisioning_errors,
            leads: &leads,
            now,
            user: &user,
        })))
    })
    .await??;
    match page {
        Some(page) => Ok(html(StatusCode::OK, page)),
        None => Err(WebError::Page(
            StatusCode::FORBIDDEN,
            NOT_AN_OPERATOR.into(),
        )),
    }
}
