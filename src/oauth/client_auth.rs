//! Client authentication, done once for every grant and for revocation and introspection
//! (RFC 6749 §2.3): `client_secret_basic` (HTTP Basic, both parts form-urlencoded) or
//! `client_secret_post` (`client_id` + `client_secret` in the body), never both. Either
//! method is accepted from a confidential client whatever it registered, because IdPs
//! differ in what they send and both carry the same secret. Public clients (`none`) name
//! themselves with `client_id` only, and only where the caller allows it.
//!
//! Secrets are machine-generated, so the check is SHA-256 of the presented secret against
//! the stored hash, compared in constant time ([`TokenHash::ct_eq`]); an unknown client
//! costs the same hash and compare. Failures are slowed per client and source address,
//! and unknown client ids per source address ([`crate::throttle`], [`throttle_key`]), and
//! audited within a budget; a right secret is never refused. An unknown client id is
//! logged only as a fingerprint: it may be a secret sent in the wrong field.
//!
//! Cost: no KDF (argon2 is for human passwords only); the client row with its secret hash
//! comes from one indexed read on a cached statement
//! ([`crate::store::Store::client_with_secret`]), done inline on the request's thread, and
//! is then kept in [`ClientCache`] for `token_cache_ttl` (1 s by default; 0 disables), so
//! a busy IdP costs one store read per client per second. The secret is still hashed and
//! compared on every request; only the stored row is cached. The server never changes
//! clients; a change made with `config` (secret rotation, deletion) applies within the TTL.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};
use base64::Engine;

use super::error::OAuthError;
use super::grants::Refusal;
use super::params::Params;
use super::service::OAuth;
use crate::cache::Cache;
use crate::model::AuditAction;
use crate::model::{AuthMethod, Client, NewAuditEvent};
use crate::monitor::events::{Attribution, Verdict};
use crate::time::Timestamp;
use crate::token::TokenHash;

/// Credentials as presented. `Debug` never prints the secret.
#[derive(Clone)]
pub struct Presented {
    pub client_id: String,
    pub(crate) secret: Option<String>,
    /// Sent with HTTP Basic (the error then carries `WWW-Authenticate: Basic`).
    pub basic: bool,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "REDACTED"))
            .field("basic", &self.basic)
            .finish()
    }
}

/// A client row with its stored secret hash, as read for authentication. The client is
/// shared, so a cache hit copies a pointer, not the row's strings.
type ClientRow = (Arc<Client>, Option<TokenHash>);

/// Recently read client rows, by client id (a [`Cache`] with the server's cache TTL);
/// see the module documentation. Unknown client ids are not cached (so a flood of made-up
/// ids cannot fill it).
#[derive(Debug)]
pub struct ClientCache(Cache<String, ClientRow>);

/// Entries kept at most; cleared when full.
const CLIENT_CACHE_CAPACITY: usize = 10_000;

impl ClientCache {
    /// A cache trusting rows for `ttl` (zero disables it).
    pub fn new(ttl: Duration) -> ClientCache {
        ClientCache(Cache::new(Some(ttl), CLIENT_CACHE_CAPACITY))
    }

    fn get_or_load(
        &self,
        id: &str,
        load: impl FnOnce() -> crate::store::Result<Option<ClientRow>>,
    ) -> crate::store::Result<Option<ClientRow>> {
        self.0.get_or_load(id, load, |_| true)
    }

    /// Forget everything.
    pub fn clear(&self) {
        self.0.clear();
    }
}

/// Which endpoints public clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Public {
    Allowed,
    Refused,
}

/// RFC 6749 §2.3.1: the Basic credentials are form-urlencoded (appendix B: `+` is a space,
/// `%XX` a byte). Decoded by the `percent-encoding` crate: a `%` not followed by two hex
/// digits stays as it is (`%+1` is not a byte); invalid UTF-8 is refused.
fn form_decode(s: &str) -> Option<String> {
    // Our client ids and secrets need no escaping: skip the decoding. (A vectorised
    // search: `contains` with a pattern of two chars cost more than the rest of this
    // function.)
    if memchr::memchr2(b'+', b'%', s.as_bytes()).is_none() {
        return Some(s.to_string());
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

fn invalid_client(description: &str, basic: bool) -> OAuthError {
    OAuthError::InvalidClient {
        description: description.into(),
        basic,
    }
}

/// Longest client id worth looking up (ours are 19 characters); longer ones are refused
/// before they reach the store, the throttle's memory or the audit log.
const MAX_CLIENT_ID_LEN: usize = 128;

/// Read the client's credentials from the Authorization header or the body.
pub fn presented(req: &HttpRequest, params: &Params) -> Result<Presented, OAuthError> {
    let p = presented_unchecked(req, params)?;
    if p.client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(invalid_client(
            "unknown client or wrong client secret",
            p.basic,
        ));
    }
    Ok(p)
}

fn presented_unchecked(req: &HttpRequest, params: &Params) -> Result<Presented, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
        return match body_id {
            Some(id) => Ok(Presented {
                client_id: id.to_string(),
                secret: body_secret.map(str::to_string),
                basic: false,
            }),
            None => Err(invalid_client(
                "client authentication is required (HTTP Basic or client_id and client_secret in the body)",
                true,
            )),
        };
    };
    let malformed = || invalid_client("the Authorization header is not valid HTTP Basic", true);
    // Read as bytes (`to_str`'s check of every byte cost as much as the decoding): a byte
    // outside base64's alphabet fails the decoding, and one in the scheme its comparison.
    let value = auth.as_bytes();
    let space = memchr::memchr(b' ', value).ok_or_else(malformed)?;
    let (scheme, b64) = (&value[..space], &value[space + 1..]);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim_ascii())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if body_secret.is_some() {
        return Err(OAuthError::InvalidRequest(
            "the client authenticated twice (HTTP Basic and client_secret in the body); use one method".into(),
        ));
    }
    if body_id.is_some_and(|b| b != id) {
        return Err(OAuthError::InvalidRequest(
            "client_id in the body differs from the one in the Authorization header".into(),
        ));
    }
    Ok(Presented {
        client_id: id,
        secret: Some(secret).filter(|s| !s.is_empty()),
        basic: true,
    })
}

/// The client named `client_id` with its secret hash, from [`ClientCache`] or the store;
/// `None` for an unknown id.
fn lookup(oauth: &OAuth, client_id: &str) -> Result<Option<ClientRow>, crate::store::StoreError> {
    oauth.clients.get_or_load(client_id, || {
        Ok(oauth
            .store
            .client_with_secret(client_id)?
            .map(|(c, hash)| (Arc::new(c), hash)))
    })
}

impl OAuth {
    /// The live client `client_id` from [`ClientCache`] or the store (the SCIM handlers
    /// read its email domains this way, at most once per client and cache TTL).
    pub fn cached_client(
        &self,
        client_id: &str,
    ) -> Result<Option<Arc<Client>>, crate::store::StoreError> {
        Ok(lookup(self, client_id)?.map(|(c, _)| c))
    }

    /// Authenticate presented credentials from address `ip`, with throttling and
    /// auditing around [`verify`]. A right but expired secret is refused with the
    /// client's credential marked dead (for the monitor).
    pub async fn authenticate(
        &self,
        p: &Presented,
        ip: Option<IpAddr>,
        public: Public,
    ) -> Result<Arc<Client>, Refusal> {
        // Inline, not on the blocking pool: one indexed read by primary key on a cached
        // statement (WAL readers never wait for the writer) and one SHA-256 of a short
        // string.
        let row = lookup(self, &p.client_id)?;
        let known = row.is_some();
        let now = self.clock.now();
        let refusal = match verify(row, p, public) {
            Ok(client) => match refuse_expired_secret(client, p.basic, now) {
                Ok(client) => return Ok(client),
                Err(refusal) => refusal,
            },
            Err(error) => Refusal::from(error),
        };
        if !matches!(refusal.error, OAuthError::InvalidClient { .. }) {
            return Err(refusal);
        }
        // The address as text only for a failure: formatting it cost 1 % of a request.
        let ip = crate::peer::ip_text(ip);
        let ip = ip.as_str();
        let key = throttle_key(&p.client_id, known, ip);
        let failure = self.client_throttle.failure(&[(key.as_str(), 1)], now);
        if failure.audit.is_some() {
            let shown = loggable_client_id(&p.client_id, known);
            let event = NewAuditEvent {
                actor: format!("ip:{ip}"),
                action: AuditAction::ClientAuthenticate,
                outcome: "failure".into(),
                client_id: None,
                token_id: None,
                detail: Some(format!(
                    "client id {shown}: {}{}",
                    refusal.error,
                    failure.summary("client authentications")
                )),
            };
            tracing::warn!(client_id = %shown, %ip, "client authentication failed");
            let store = self.store.clone();
            actix_web::web::block(move || store.audit(&event, now))
                .await
                .map_err(OAuthError::from)?
                .map_err(OAuthError::from)?;
        }
        actix_web::rt::time::sleep(failure.delay).await;
        Err(refusal)
    }
}

/// Check presented credentials against the client's row. The error names no detail an
/// attacker could use to tell an unknown client from a wrong secret.
fn verify(
    row: Option<ClientRow>,
    p: &Presented,
    public: Public,
) -> Result<Arc<Client>, OAuthError> {
    const DENIED: &str = "unknown client or wrong client secret";
    let (client, stored) = match row {
        Some((c, hash)) if c.auth_method != AuthMethod::None => (Some(c), hash),
        Some((c, _)) => (Some(c), None),
        None => (None, None),
    };
    let presented = TokenHash::of(p.secret.as_deref().unwrap_or(""));
    // Compare even when there is nothing to compare with, so timing tells nothing.
    let matches = presented.ct_eq(&stored.unwrap_or(TokenHash([0; 32])));
    let Some(client) = client else {
        return Err(invalid_client(DENIED, p.basic));
    };
    if client.auth_method == AuthMethod::None {
        if p.secret.is_some() {
            return Err(invalid_client(
                "this is a public client; it has no secret to send",
                p.basic,
            ));
        }
        if public == Public::Refused {
            return Err(invalid_client(
                "public clients cannot use this endpoint",
                p.basic,
            ));
        }
        return Ok(client);
    }
    if p.secret.is_none() || stored.is_none() || !matches {
        return Err(invalid_client(DENIED, p.basic));
    }
    if client.disabled_at.is_some() {
        return Err(invalid_client(
            "this client is disabled; an operator can enable it with `config enable-api-client`",
            p.basic,
        ));
    }
    Ok(client)
}

/// Refuse a right secret that has expired, naming the client's credential dead: its
/// provisioning is broken (the token endpoint tells the monitor, [`crate::oauth::token`]).
fn refuse_expired_secret(
    client: Arc<Client>,
    basic: bool,
    now: Timestamp,
) -> Result<Arc<Client>, Refusal> {
    if client.secret_expires_at.is_none_or(|t| t > now) {
        return Ok(client);
    }
    Err(Refusal {
        error: invalid_client(
            "the client secret has expired; rotate it with `config rotate-client-secret`",
            basic,
        ),
        dead_credential: Some(Attribution::Token {
            token_id: None,
            client_id: client.id.clone(),
            verdict: Verdict::ClientSecretExpired,
        }),
    })
}

/// What a failed authentication counts against. A known client is counted per source
/// address (`client:ID@ADDR`): its id is no secret (it is in every authorization URL),
/// and wrong secrets sent from elsewhere must not slow the client where its IdP calls
/// from. Unknown ids are counted per address (`client-ip:ADDR`). Either way the count
/// only slows failures: a right secret is never refused ([`crate::throttle`]).
fn throttle_key(client_id: &str, known: bool, ip: &str) -> String {
    if known {
        format!("client:{client_id}@{ip}")
    } else {
        format!("client-ip:{ip}")
    }
}

/// How a presented client id may be written to the audit log and the server log. A known
/// id is public; an unknown one may be a secret pasted in the wrong field (a client id
/// and secret swapped), so only its fingerprint is kept.
pub fn loggable_client_id(client_id: &str, known: bool) -> String {
    if known {
        crate::text::printable(client_id, 64)
    } else {
        format!(
            "unknown (fingerprint {})",
            TokenHash::of(client_id).short_hex()
        )
    }
}

/// Authenticate the client of `req` (the HTTP side of [`OAuth::authenticate`]): read the
/// credentials it presents, and leave a dead credential in the request's extensions for
/// the monitor.
pub async fn authenticate(
    oauth: &OAuth,
    req: &HttpRequest,
    params: &Params,
    public: Public,
) -> Result<Arc<Client>, OAuthError> {
    let p = presented(req, params)?;
    let ip = crate::peer::client_ip(req);
    oauth.authenticate(&p, ip, public).await.map_err(|r| {
        if let Some(dead) = r.dead_credential {
            req.extensions_mut().insert(dead);
        }
        r.error
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(form_decode("%4").as_deref(), Some("%4"));
        // Regression: `%+1` was read as the byte 0x01 (`u8::from_str_radix` takes a sign).
        assert_eq!(form_decode("%+1").as_deref(), Some("% 1"));
        assert_eq!(form_decode("%-1").as_deref(), Some("%-1"));
        assert_eq!(form_decode("%ff"), None, "not UTF-8");
        assert_eq!(form_decode("plain_1").as_deref(), Some("plain_1"));
    }

    /// The Authorization header as it may come: well formed in any case of the scheme,
    /// form-encoded inside, padded; or malformed in every way, each an `invalid_client`.
    #[test]
    fn basic_credentials_are_read_and_malformed_ones_refused() {
        use actix_web::http::header::HeaderValue;
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let read = |value: HeaderValue| {
            let req = actix_web::test::TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            presented(&req, &Params::default())
        };
        let text = |s: String| HeaderValue::from_str(&s).unwrap();
        let plain = b64(b"cl_1:sgcs_x");
        let cases = [
            (format!("Basic {plain}"), "cl_1", Some("sgcs_x")),
            (format!("bAsIc {plain}"), "cl_1", Some("sgcs_x")),
            (format!("Basic   {plain}  "), "cl_1", Some("sgcs_x")),
            (
                format!("Basic {}", b64(b"a%3Ab:c+d%25")),
                "a:b",
                Some("c d%"),
            ),
            (format!("Basic {}", b64(b"cl_1:")), "cl_1", None),
        ];
        for (value, id, secret) in cases {
            let p = read(text(value.clone())).unwrap_or_else(|e| panic!("{value}: {e:?}"));
            assert_eq!(
                (p.client_id.as_str(), p.secret.as_deref(), p.basic),
                (id, secret, true)
            );
        }
        let malformed = [
            text("Basic".into()),
            text(format!("Basic\t{}", b64(b"cl_1:s"))),
            text(format!("Bearer {}", b64(b"cl_1:s"))),
            text("Basic !!!!".into()),
            text(format!("Basic {}", b64(b"no colon"))),
            text(format!("Basic {}", b64(b"cl_1:\xff"))),
            text(format!("Basic {}", b64(b"cl_1:%ff"))),
            HeaderValue::from_bytes(b"Basic Y2xfMTpz\xff").unwrap(),
            HeaderValue::from_bytes(b"Basic\xff Y2xfMTpz").unwrap(),
        ];
        for value in malformed {
            let err = read(value.clone()).unwrap_err();
            assert!(
                matches!(err, OAuthError::InvalidClient { basic: true, .. }),
                "{value:?}: {err:?}"
            );
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let p = Presented {
            client_id: "cl_1".into(),
            secret: Some("sgcs_secret".into()),
            basic: true,
        };
        let printed = format!("{p:?}");
        assert!(!printed.contains("sgcs_secret"), "{printed}");
    }
}
