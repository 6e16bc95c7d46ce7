//! SCIM errors (RFC 7644 §3.12) and their HTTP rendering: every failure under `/scim/v2`
//! — bad JSON, schema violations, filters, PATCH, uniqueness, ETags, the bearer guard —
//! becomes a SCIM error body with the right status and `scimType`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::filter::FilterError;
use super::patch::PatchError;
use super::schema::SchemaError;
use crate::guard::GuardError;
use crate::store::StoreError;

/// The SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM error: status, optional `scimType`, one-sentence detail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// `WWW-Authenticate` value for 401/403 answers.
    pub challenge: Option<String>,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            challenge: None,
        }
    }
    pub fn bad_request(scim_type: &'static str, detail: impl Into<String>) -> Self {
        ScimError::new(400, Some(scim_type), detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        ScimError::new(404, None, detail)
    }
    pub fn internal() -> Self {
        ScimError::new(500, None, "internal server error")
    }
}

impl From<SchemaError> for ScimError {
    fn from(e: SchemaError) -> Self {
        ScimError::bad_request(e.scim_type(), e.to_string())
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::bad_request("invalidFilter", e.to_string())
    }
}

impl From<PatchError> for ScimError {
    fn from(e: PatchError) -> Self {
        ScimError::bad_request(e.scim_type(), e.to_string())
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ScimError::not_found(format!("{what} not found")),
            StoreError::Conflict(d) => ScimError::new(409, Some("uniqueness"), d),
            StoreError::Precondition(d) => ScimError::new(
                412,
                None,
                format!("the resource has changed (If-Match does not match): {d}"),
            ),
            StoreError::Invalid(d) => ScimError::bad_request("invalidValue", d),
            other => {
                tracing::error!(error = %other, "store error in SCIM request");
                ScimError::new(503, None, "the directory store is unavailable")
            }
        }
    }
}

impl From<GuardError> for ScimError {
    fn from(e: GuardError) -> Self {
        let detail = e.to_string();
        match e {
            GuardError::InsufficientScope(scope) => ScimError {
                status: 403,
                scim_type: None,
                challenge: Some(format!(
                    "Bearer realm=\"scimgate\", error=\"insufficient_scope\", error_description=\"{detail}\", scope=\"{}\"",
                    scope.name()
                )),
                detail,
            },
            GuardError::Unavailable => ScimError::new(503, None, detail),
            _ => ScimError {
                status: 401,
                scim_type: None,
                challenge: Some(format!(
                    "Bearer realm=\"scimgate\", error=\"invalid_token\", error_description=\"{detail}\""
                )),
                detail,
            },
        }
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CONTENT_TYPE, super::handlers::SCIM_JSON_VALUE));
        if let Some(c) = &self.challenge {
            resp.insert_header((header::WWW_AUTHENTICATE, c.as_str()));
        }
        // Too many requests, or a store or queue that is full: worth a retry soon.
        if matches!(self.status, 429 | 503) {
            resp.insert_header((header::RETRY_AFTER, "1"));
        }
        let mut resp = resp.body(crate::scim::json::to_text(&body));
        // For the monitor's provisioning errors (`monitor::attribution`).
        resp.extensions_mut().insert(self.clone());
        resp
    }
}
