//! How each layer's error becomes an HTTP response: the one place statuses are chosen.
//! A 5xx logs its cause and answers with a generic body; a client's mistake is a 4xx that
//! says what was wrong.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

/// Errors of the plain (non-OAuth, non-SCIM) endpoints.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("store unavailable")]
    Store(#[from] StoreError),
    #[error("internal error")]
    Blocking,
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            HttpError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Blocking => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let HttpError::Store(e) = self {
            tracing::error!(error = %e, "store error");
        }
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": self.to_string() }))
    }
}
