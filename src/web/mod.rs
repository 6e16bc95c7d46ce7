//! Server-rendered pages: the login and consent screens of `/oauth2/authorize` and the
//! operator pages under `/ui` (the token timeline). No
//! scripts and no external assets; every page is sent with `Cache-Control: no-store`, a
//! Content-Security-Policy that allows only its inline style, and no framing
//! (clickjacking on a consent button is the attack this prevents).
//!
//! Errors are [`WebError`]: an HTML page with an explicit status, or a redirect back to
//! the client (only once the client and redirect URI are known to be genuine).

pub mod authorize;
pub mod device;
pub mod login;
pub mod operator;
pub mod pages;
pub mod session;
pub mod timeline;

use std::sync::OnceLock;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError, web};

use crate::store::StoreError;

/// The routes of the pages: resources, so a wrong method is a 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    operator::configure(cfg);
    cfg.service(
        web::resource("/oauth2/authorize")
            .get(authorize::show_authorize)
            .post(authorize::submit_authorize),
    );
}

/// What a page handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Show this sentence with this status.
    #[error("{1}")]
    Page(StatusCode, String),
    /// Send the browser to this (validated) location.
    #[error("redirect")]
    Redirect(String),
    #[error("the store is unavailable")]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal,
}

/// An operator read the pages make through [`crate::admin::Admin`]: a store failure is the
/// store's; anything else would be a bug in the page.
impl From<crate::admin::AdminError> for WebError {
    fn from(e: crate::admin::AdminError) -> Self {
        match e {
            crate::admin::AdminError::Store(s) => WebError::Store(s),
            _ => WebError::Internal,
        }
    }
}

impl From<actix_web::error::BlockingError> for WebError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        WebError::Internal
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::Page(s, _) => *s,
            WebError::Redirect(_) => StatusCode::SEE_OTHER,
            WebError::Store(StoreError::ClientCutOff(_)) => StatusCode::FORBIDDEN,
            WebError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::Redirect(location) => redirect(location),
            WebError::Store(StoreError::ClientCutOff(_)) => html(
                self.status_code(),
                pages::error("The client was cut off by an operator while you were signing in."),
            ),
            WebError::Store(e) => {
                tracing::error!(error = %e, "store error on an authorization page");
                html(
                    self.status_code(),
                    pages::error("The server cannot reach its store. Try again in a minute."),
                )
            }
            other => html(self.status_code(), pages::error(&other.to_string())),
        }
    }
}

/// An HTML page with the headers every page gets.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

/// 303 See Other to `location` (after a POST the browser follows with GET).
pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

/// An argon2id hash of nothing anyone knows, to verify against for unknown user names.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| crate::password::hash(&session::random_value()).unwrap_or_default())
}
