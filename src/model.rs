//! Domain types shared by the store, the OAuth2 server, the SCIM guard and the CLI:
//! scopes, grant types, client profiles, clients and token records.
//!
//! Parsing from operator input lives here too (case-insensitive, Spotfire's spellings
//! accepted: `AUTHORIZATION_CODE`, `WEB`), so every front end rejects the same things with
//! the same sentence.

use std::fmt;

use serde::Serialize;

use crate::time::{Duration, Timestamp};
use crate::token::{TokenId, TokenKind};

/// Why an operator's value is not acceptable. One sentence, shown as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn normalise(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('-', "_")
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical spelling (stored, printed, sent on the wire).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parse an operator's spelling, case-insensitively.
            pub fn parse(s: &str) -> Result<$name, InvalidValue> {
                let n = normalise(s);
                $(if n == $text $(|| n == $alias)* { return Ok($name::$variant); })+
                Err(InvalidValue(format!(
                    concat!("`{}` is not a ", $what, "; valid values: {}"),
                    s,
                    $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                )))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> { $name::parse(s) }
        }
    };
}

string_enum!(
    /// The OAuth2 grant types a client may use.
    GrantType, "grant type", {
        AuthorizationCode => "authorization_code",
        RefreshToken => "refresh_token",
        ClientCredentials => "client_credentials",
    }
);

string_enum!(
    /// Spotfire's client profiles (RFC 6749 §2.1 client types, by application shape).
    ClientProfile, "client profile", {
        Web => "web",
        UserAgent => "user_agent" | "useragent" | "spa",
        Native => "native",
        Other => "other",
    }
);

string_enum!(
    /// How a client authenticates at the token, revocation and introspection endpoints.
    AuthMethod, "token endpoint authentication method", {
        ClientSecretBasic => "client_secret_basic" | "basic",
        ClientSecretPost => "client_secret_post" | "post",
        None => "none",
    }
);

string_enum!(
    /// Which identity provider drives the client; sets heartbeat defaults.
    IdpKind, "identity provider kind", {
        Entra => "entra" | "entra_id" | "azure" | "azure_ad" | "azuread",
        Okta => "okta",
        Custom => "custom" | "other",
    }
);

string_enum!(
    /// The scopes scimgate knows. Write does not imply read.
    Scope, "scope", {
        DirectoryRead => "user_directory.read.all",
        DirectoryWrite => "user_directory.write.all",
    }
);

impl Scope {
    /// Wire spelling; `as_str` is the normalised one used for parsing.
    pub fn name(self) -> &'static str {
        match self {
            Scope::DirectoryRead => "user-directory.read.all",
            Scope::DirectoryWrite => "user-directory.write.all",
        }
    }

    /// Parse one scope; the error lists the valid ones (and catches Spotfire's doc typo
    /// `user.directory.read.all`).
    pub fn parse_scope(s: &str) -> Result<Scope, InvalidValue> {
        let n = s.trim().to_ascii_lowercase();
        for scope in Scope::ALL {
            if n == scope.name() {
                return Ok(*scope);
            }
        }
        let hint = Scope::ALL
            .iter()
            .find(|sc| n.replace('.', "-") == sc.name().replace('.', "-"))
            .map(|sc| format!(" (did you mean {}?)", sc.name()))
            .unwrap_or_default();
        Err(InvalidValue(format!(
            "`{s}` is not a scope{hint}; valid scopes: {}",
            Scope::ALL
                .iter()
                .map(|sc| sc.name())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Plain words for the consent page.
    pub fn describe(self) -> &'static str {
        match self {
            Scope::DirectoryRead => "read the users and groups in the directory",
            Scope::DirectoryWrite => "create, change and delete users and groups in the directory",
        }
    }
}

/// Space-separated wire form of a scope set (RFC 6749 §3.3).
pub fn scopes_to_string(scopes: &[Scope]) -> String {
    // One allocation (a `Vec` of the names joined was two, on every token answer).
    let mut out = String::with_capacity(scopes.iter().map(|s| s.name().len() + 1).sum());
    for (i, scope) in scopes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(scope.name());
    }
    out
}

/// Parse a space-separated scope string; duplicates collapse, order is canonical.
pub fn scopes_from_str(s: &str) -> Result<Vec<Scope>, InvalidValue> {
    let mut out = Vec::new();
    for part in s.split_whitespace() {
        out.push(Scope::parse_scope(part)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Which IdP application provisions through a client, and who owns it: the
/// back-reference Spotfire lacks ("a place to reference you are using SCIM").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdpRef {
    pub kind: IdpKind,
    pub app_id: Option<String>,
    pub tenant: Option<String>,
    pub owner: Option<String>,
}

/// How often a client is expected to call, and how many silent intervals make an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Heartbeat {
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    pub missed: u32,
}

impl Heartbeat {
    /// The default for an IdP: Entra ID provisions every ~40 minutes; Okta only on change.
    pub fn default_for(kind: IdpKind) -> Option<Heartbeat> {
        match kind {
            IdpKind::Entra => Some(Heartbeat {
                interval: Duration::minutes(40),
                missed: 3,
            }),
            IdpKind::Okta | IdpKind::Custom => None,
        }
    }
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_string())
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_string()),
        None => s.serialize_none(),
    }
}

/// A registered OAuth2 API client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub profile: ClientProfile,
    pub grants: Vec<GrantType>,
    #[serde(serialize_with = "ser_scopes")]
    pub scopes: Vec<Scope>,
    pub redirect_uris: Vec<String>,
    pub auth_method: AuthMethod,
    pub require_consent: bool,
    pub has_secret: bool,
    pub secret_expires_at: Option<Timestamp>,
    /// How long each new secret lives (`--client-secret-validity`); `None`: no expiry.
    #[serde(serialize_with = "ser_opt_duration")]
    pub secret_ttl: Option<Duration>,
    #[serde(serialize_with = "ser_duration")]
    pub access_token_ttl: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub refresh_token_ttl: Duration,
    pub idp: IdpRef,
    pub heartbeat: Option<Heartbeat>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped whenever the client is cut off; tokens issued under an older epoch are dead
    /// (schema.sql, migration 7).
    #[serde(skip)]
    pub token_epoch: i64,
    /// When the client was disabled (`disable-api-client`); no token is issued meanwhile.
    pub disabled_at: Option<Timestamp>,
    /// PKCE (S256) required at the authorization and token endpoints; public clients
    /// need it whatever this says ([`Client::needs_pkce`]).
    pub require_pkce: bool,
    /// Email-domain rules limiting which users the client may see and manage
    /// (`crate::scim::domains`); empty: unrestricted.
    pub email_domains: Vec<String>,
    /// Where this client's provisioning-error digests are mailed (`--alert-email`), on top
    /// of the server's `smtp_to`; empty: only there.
    pub alert_emails: Vec<String>,
}

fn ser_scopes<S: serde::Serializer>(scopes: &[Scope], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(scopes.len()))?;
    for scope in scopes {
        seq.serialize_element(scope.name())?;
    }
    seq.end()
}

impl Client {
    /// Whether authorization requests must carry a PKCE challenge: a public client
    /// always, a confidential one when registered with `--require-pkce true`.
    pub fn needs_pkce(&self) -> bool {
        self.require_pkce || self.auth_method == AuthMethod::None
    }

    pub fn has_grant(&self, g: GrantType) -> bool {
        self.grants.contains(&g)
    }
    pub fn has_scope(&self, s: Scope) -> bool {
        self.scopes.contains(&s)
    }
}

/// How a token came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuedVia {
    Cli,
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
    Rotate,
}

impl IssuedVia {
    pub const ALL: [IssuedVia; 5] = [
        IssuedVia::Cli,
        IssuedVia::ClientCredentials,
        IssuedVia::AuthorizationCode,
        IssuedVia::RefreshToken,
        IssuedVia::Rotate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IssuedVia::Cli => "cli",
            IssuedVia::ClientCredentials => "client_credentials",
            IssuedVia::AuthorizationCode => "authorization_code",
            IssuedVia::RefreshToken => "refresh_token",
            IssuedVia::Rotate => "rotate",
        }
    }
    pub fn from_name(s: &str) -> Option<IssuedVia> {
        IssuedVia::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Whether a token can be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

/// Everything the store knows about one token, never the token itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    pub id: TokenId,
    #[serde(serialize_with = "ser_kind")]
    pub kind: TokenKind,
    pub client_id: String,
    pub subject: String,
    #[serde(serialize_with = "ser_scopes")]
    pub scopes: Vec<Scope>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
    pub issued_via: IssuedVia,
    pub family_id: Option<String>,
    pub parent_id: Option<String>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
    pub use_count: i64,
    pub label: Option<String>,
}

fn ser_kind<S: serde::Serializer>(k: &TokenKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

impl serde::Serialize for TokenId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl TokenRecord {
    /// Active, expired or revoked at `now` (revocation wins over expiry).
    pub fn status(&self, now: Timestamp) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at <= now {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }
}

/// A login account (for the authorization and operator pages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub username: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// May open the operator pages (`/ui`); every account may sign in to give consent.
    pub operator: bool,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub client_id: Option<String>,
    pub token_id: Option<String>,
    pub detail: Option<String>,
}

/// Declares [`AuditAction`]: each variant with the dotted name the audit log stores.
macro_rules! audit_actions {
    ($($variant:ident => $name:literal,)*) => {
        /// What an audit event records. Stored (and shown by `config audit-log`) as its
        /// dotted name; every action the code writes is one of these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AuditAction {
            $($variant,)*
        }

        impl AuditAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            /// The dotted name stored in the audit log.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)*
                }
            }
        }
    };
}

audit_actions! {
    StoreInit => "store.init",
    ToolPasswordVerify => "tool_password.verify",
    ToolPasswordChange => "tool_password.change",
    PolicyUpdate => "policy.update",
    SettingsExpiryWarnings => "settings.expiry_warnings",
    ClientRegister => "client.register",
    ClientUpdate => "client.update",
    ClientRotateSecret => "client.rotate_secret",
    ClientDelete => "client.delete",
    ClientDisable => "client.disable",
    ClientEnable => "client.enable",
    ClientAuthenticate => "client.authenticate",
    UserCreate => "user.create",
    UserSetOperator => "user.set_operator",
    UserSetPassword => "user.set_password",
    UserDelete => "user.delete",
    UserLogin => "user.login",
    ConsentGrant => "consent.grant",
    ConsentRevoke => "consent.revoke",
    TokenIssue => "token.issue",
    TokenRevoke => "token.revoke",
    TokenRevokeAll => "token.revoke_all",
    TokenRotate => "token.rotate",
    TokenPrune => "token.prune",
    MonitorStateChange => "monitor.state_change",
    MonitorExpiryWarning => "monitor.expiry_warning",
    MonitorSecretExpiryWarning => "monitor.secret_expiry_warning",
    SecurityCodeReplay => "security.code_replay",
    SecurityRefreshRetry => "security.refresh_retry",
    SecurityRefreshReuse => "security.refresh_reuse",
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An audit event about to be written.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub actor: String,
    pub action: AuditAction,
    pub outcome: String,
    pub client_id: Option<String>,
    pub token_id: Option<String>,
    pub detail: Option<String>,
}

impl NewAuditEvent {
    /// An event by `actor` with no client, token or detail (set them with struct update).
    pub fn new(actor: impl Into<String>, action: AuditAction, outcome: &str) -> NewAuditEvent {
        NewAuditEvent {
            actor: actor.into(),
            action,
            outcome: outcome.to_string(),
            client_id: None,
            token_id: None,
            detail: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audit_action_is_documented() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md"));
        for a in AuditAction::ALL {
            assert!(
                doc.contains(&format!("`{a}`")),
                "docs/cli.md does not list the audit action {a}"
            );
        }
    }

    #[test]
    fn audit_action_names_are_dotted_and_distinct() {
        let names: std::collections::HashSet<_> =
            AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        for n in names {
            let (area, what) = n.split_once('.').unwrap();
            assert!(!area.is_empty() && !what.is_empty(), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{n}"
            );
        }
    }

    #[test]
    fn spotfire_spellings_parse() {
        assert_eq!(
            GrantType::parse("AUTHORIZATION_CODE"),
            Ok(GrantType::AuthorizationCode)
        );
        assert_eq!(
            GrantType::parse("refresh-token"),
            Ok(GrantType::RefreshToken)
        );
        assert_eq!(ClientProfile::parse("WEB"), Ok(ClientProfile::Web));
        assert_eq!(IdpKind::parse("Azure-AD"), Ok(IdpKind::Entra));
    }

    #[test]
    fn unknown_values_list_the_valid_ones() {
        let err = GrantType::parse("password").unwrap_err().0;
        assert!(
            err.contains("authorization_code, refresh_token, client_credentials"),
            "{err}"
        );
        let err = Scope::parse_scope("user.directory.read.all").unwrap_err().0;
        assert!(
            err.contains("did you mean user-directory.read.all?"),
            "{err}"
        );
        assert!(
            Scope::parse_scope("admin")
                .unwrap_err()
                .0
                .contains("valid scopes")
        );
    }

    #[test]
    fn scope_strings_round_trip() {
        let s = scopes_from_str("user-directory.write.all user-directory.read.all").unwrap();
        assert_eq!(s, vec![Scope::DirectoryRead, Scope::DirectoryWrite]);
        assert_eq!(
            scopes_to_string(&s),
            "user-directory.read.all user-directory.write.all"
        );
    }
}

/// A client's provisioning health, as the monitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// No heartbeat is expected and nothing failed.
    Idle,
    /// Calls succeed, as often as expected.
    Healthy,
    /// Silent for longer than one heartbeat interval.
    Late,
    /// Silent for the configured number of intervals: an error.
    Missed,
    /// Its latest calls were refused with an expired or revoked token.
    Failing,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Idle => "idle",
            HealthState::Healthy => "healthy",
            HealthState::Late => "late",
            HealthState::Missed => "missed",
            HealthState::Failing => "failing",
        }
    }

    pub fn from_name(s: &str) -> Option<HealthState> {
        [
            HealthState::Idle,
            HealthState::Healthy,
            HealthState::Late,
            HealthState::Missed,
            HealthState::Failing,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }
}

/// What the monitor recorded of a client's calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientHealth {
    pub client_id: String,
    pub state: HealthState,
    pub state_since: Timestamp,
    pub last_success_at: Option<Timestamp>,
    pub last_success_ip: Option<String>,
    pub last_failure_at: Option<Timestamp>,
    pub last_failure_status: Option<u16>,
    pub last_failure_reason: Option<String>,
    pub last_token_id: Option<String>,
}

impl ClientHealth {
    /// A client with nothing recorded yet, idle since `since`.
    pub fn idle(client_id: &str, since: Timestamp) -> ClientHealth {
        ClientHealth {
            client_id: client_id.to_string(),
            state: HealthState::Idle,
            state_since: since,
            last_success_at: None,
            last_success_ip: None,
            last_failure_at: None,
            last_failure_status: None,
            last_failure_reason: None,
            last_token_id: None,
        }
    }
}
