//! `POST /oauth2/revoke` (RFC 7009). The client authenticates; the answer is 200 whether or
//! not the token existed, and a client may revoke only its own tokens (another client's
//! token is left alone, with the same 200, so the endpoint tells nobody what exists).
//! Revoking a refresh token revokes its whole grant family (its access tokens too).

use actix_web::{HttpRequest, HttpResponse, web};

use super::client_auth::{Public, authenticate};
use super::error::{OAuthError, no_store};
use super::params::Params;
use super::service::OAuth;
use crate::model::AuditAction;
use crate::model::{Client, NewAuditEvent};
use crate::state::AppState;
use crate::time::Timestamp;
use crate::token::{self, TokenKind};

pub async fn revoke_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::read_form(&req, payload, state.settings.max_body_bytes).await?;
    let client = authenticate(&state.oauth, &req, &params, Public::Allowed).await?;
    let value = params.require("token")?.to_string();
    let st = state.oauth.clone();
    let now = state.clock.now();
    web::block(move || revoke(&st, &client, &value, now)).await??;
    // Tokens validated before the revocation must not stay trusted by the SCIM guard.
    state.tokens.clear();
    let mut resp = HttpResponse::Ok();
    no_store(&mut resp);
    Ok(resp.finish())
}

fn revoke(state: &OAuth, client: &Client, value: &str, now: Timestamp) -> Result<(), OAuthError> {
    const REASON: &str = "revoked by the client (RFC 7009)";
    let Ok(parsed) = token::parse(value) else {
        return Ok(());
    };
    if parsed.kind == TokenKind::ClientSecret {
        return Err(OAuthError::UnsupportedTokenType(
            "client secrets are not revoked here; rotate them with `config rotate-client-secret`"
                .into(),
        ));
    }
    let Some(rec) = state.store.token_by_value(&parsed)? else {
        return Ok(());
    };
    if rec.client_id != client.id {
        tracing::warn!(client_id = %client.id, token_id = %rec.id, "client tried to revoke another client's token; ignored");
        return Ok(());
    }
    let audit = NewAuditEvent {
        actor: format!("client:{}", client.id),
        action: AuditAction::TokenRevoke,
        outcome: "success".into(),
        client_id: Some(client.id.clone()),
        token_id: Some(rec.id.to_string()),
        detail: Some(REASON.into()),
    };
    match (rec.kind, &rec.family_id) {
        (TokenKind::Refresh, Some(family)) => {
            let revoked = state.store.revoke_family(family, REASON, now)?;
            if !revoked.is_empty() {
                let ids: Vec<&str> = revoked.iter().map(|r| r.id.as_str()).collect();
                let e = NewAuditEvent {
                    detail: Some(format!(
                        "{REASON}; grant family revoked: {}",
                        ids.join(", ")
                    )),
                    ..audit
                };
                state.store.audit(&e, now)?;
            }
        }
        _ => {
            state.store.revoke_token(&rec.id, REASON, now, &audit)?;
        }
    }
    tracing::info!(client_id = %client.id, token_id = %rec.id, "token revoked by client");
    Ok(())
}
