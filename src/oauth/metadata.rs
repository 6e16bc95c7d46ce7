//! `GET /.well-known/oauth-authorization-server` (RFC 8414): what a client needs to find
//! every endpoint and capability without reading our documentation.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::token::GRANT_TYPES;
use crate::model::Scope;
use crate::settings::Settings;
use crate::state::AppState;

/// The metadata document for these settings.
pub fn document(settings: &Settings) -> Value {
    let base = &settings.public_url;
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    let mut token_methods = auth_methods.to_vec();
    token_methods.push("none");
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth2/authorize"),
        "token_endpoint": format!("{base}/oauth2/token"),
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "scopes_supported": Scope::ALL.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": token_methods,
        "revocation_endpoint_auth_methods_supported": token_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    })
}

pub async fn show_metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .json(document(&state.settings))
}
