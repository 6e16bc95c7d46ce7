//! `POST /oauth2/token` (RFC 6749 §3.2): parse the form, authenticate the client once,
//! dispatch on `grant_type`, answer with the tokens and `Cache-Control: no-store`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::client_auth::{Public, authenticate};
use super::error::{OAuthError, no_store};
use super::grants::{self, Issued};
use super::params::Params;
use crate::http::AppState;
use crate::model::scopes_to_string;

/// The grants this server implements, in the order the metadata lists them.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

pub async fn issue_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let result = issue(&state, &req, &body).await;
    // Counted for /metrics: grant type as sent (bounded to the known ones) and outcome.
    let grant = Params::from_form(&req, &body)
        .ok()
        .and_then(|p| p.get("grant_type").map(str::to_string))
        .filter(|g| GRANT_TYPES.contains(&g.as_str()))
        .unwrap_or_else(|| "other".into());
    let outcome = match &result {
        Ok(_) => "issued",
        Err(e) => e.code(),
    };
    state.monitor.count_token_request(&grant, outcome);
    result
}

async fn issue(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    body: &web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let req = req.clone();
    let params = Params::from_form(&req, body)?;
    let grant_type = params.require("grant_type")?.to_string();
    if !GRANT_TYPES.contains(&grant_type.as_str()) {
        return Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type `{grant_type}` is not supported; use one of: {}",
            GRANT_TYPES.join(", ")
        )));
    }
    let client = authenticate(state, &req, &params, Public::Allowed).await?;
    let st = state.get_ref().clone();
    let now = state.clock.now();
    let issued = web::block(move || match grant_type.as_str() {
        "authorization_code" => grants::authorization_code(&st, &client, &params, now),
        "refresh_token" => grants::refresh_token(&st, &client, &params, now),
        _ => grants::client_credentials(&st, &client, &params, now),
    })
    .await??;
    Ok(token_response(&issued))
}

fn token_response(t: &Issued) -> HttpResponse {
    let mut body = json!({
        "access_token": t.access.secret.expose(),
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "scope": scopes_to_string(&t.scopes),
    });
    if let Some(r) = &t.refresh {
        body["refresh_token"] = json!(r.secret.expose());
    }
    let mut resp = HttpResponse::Ok();
    no_store(&mut resp);
    resp.json(body)
}
