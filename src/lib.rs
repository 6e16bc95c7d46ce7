//! scimgate: an OAuth2 authorization server and SCIM 2.0 provisioning endpoint that keeps
//! track of the tokens it hands to identity providers.
//!
//! ```text
//!  IdP (Okta, Entra ID) ──OAuth2──▶ /oauth2/*  ┐
//!                       ──SCIM────▶ /scim/v2/* ├─ scimgate server ── store (SQLite)
//!  operator's browser ──login/consent, pages───┘        ▲
//!  operator's shell ── config <command> ─────────────────┘
//! ```
//!
//! Module map:
//! - [`token`]: token kinds, format, generation, hashing, parsing (pure).
//! - [`access_log`]: one line per request, written off the request path.
//! - [`time`]: the injectable clock, durations, relative times.
//! - [`model`]: domain types (clients, scopes, token records, audit events).
//! - [`password`]: argon2id for human passwords.
//! - [`store`]: the only code that speaks SQL (SQLite, WAL).
//! - [`admin`]: the operations an operator performs (`config` calls these).
//! - [`settings`]: server settings, resolved and validated once.
//! - [`scim`]: the SCIM 2.0 resource server; [`guard`]: bearer-token checks for it.
//! - [`monitor`]: token lifecycle monitoring (usage recording).
//! - [`http`]: every route, declared once; [`edge`]: the one middleware around each
//!   scope (security headers, access log, the monitor's event); [`error`]: errors → HTTP
//!   responses.
//! - [`oauth`]: the OAuth2 authorization server (token, revoke, introspect, metadata, and
//!   the authorization request behind the pages); [`web`]: the login and consent pages.
//! - [`throttle`]: slowing of repeated failed sign-ins and client authentications.
//! - [`json_text`]: JSON written by hand for the answers and lines of every request.
//! - [`text`]: untrusted text made safe for logs and terminals; [`peer`]: the client's
//!   address (behind `trusted_proxies`, from `X-Forwarded-For`).
//!
//! A `config issue-access-token` call goes: CLI parses flags → [`admin::issue_access_token`]
//! validates against the client and policy → [`token::generate`] → [`store::Store::insert_token`]
//! (record + audit event in one transaction) → the plaintext is printed once.
//!
//! A `POST /oauth2/token` goes: [`http::configure`] routes it to [`oauth::token`] →
//! [`oauth::client_auth`] authenticates the client (once, throttled) → [`oauth::grants`]
//! runs the grant against the store in one transaction → the JSON answer leaves only after
//! the tokens' hashes are committed.

pub mod access_log;
pub mod admin;
pub mod body;
pub mod cache;
pub mod edge;
pub mod error;
pub mod guard;
pub mod http;
pub mod json_text;
pub mod model;
pub mod monitor;
pub mod oauth;
pub mod password;
pub mod peer;
pub mod scim;
pub mod settings;
pub mod state;
pub mod store;
pub mod sync;
pub mod text;
pub mod throttle;
pub mod time;
pub mod token;
pub mod web;
