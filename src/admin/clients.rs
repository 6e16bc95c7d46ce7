//! Client registration and maintenance: validation of grants, scopes, redirect URIs and
//! lifetimes, secret generation and rotation, deletion (which revokes the client's tokens).

use super::{Admin, AdminError, Result, not_found_or};
use crate::model::AuditAction;
use crate::model::{
    AuthMethod, Client, ClientProfile, GrantType, Heartbeat, IdpKind, IdpRef, NewAuditEvent, Scope,
};
use crate::store::{ClientUpdate, NewClient};
use crate::time::{Duration, Timestamp};
use crate::token::{self, Secret, TokenKind};

/// Default lifetime of access tokens issued by the OAuth2 flows.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::hours(1);
/// Default lifetime of refresh tokens (each rotation starts a new one).
pub const DEFAULT_REFRESH_TTL: Duration = Duration::days(90);

/// What `register-api-client` asks for.
#[derive(Debug, Clone)]
pub struct RegisterClient {
    pub name: String,
    pub profile: ClientProfile,
    pub grants: Vec<GrantType>,
    pub scopes: Vec<Scope>,
    pub redirect_uris: Vec<String>,
    /// `None`: by profile (web/other → client_secret_basic, native/user_agent → none).
    pub auth_method: Option<AuthMethod>,
    pub require_consent: bool,
    /// Require PKCE of a confidential client too (public clients always need it).
    pub require_pkce: bool,
    /// Email-domain rules (`--email-domain`); empty: unrestricted.
    pub email_domains: Vec<String>,
    /// Where provisioning-error digests go (`--alert-email`), besides the server's `smtp_to`.
    pub alert_emails: Vec<String>,
    pub access_token_ttl: Option<Duration>,
    pub refresh_token_ttl: Option<Duration>,
    pub client_secret_ttl: Option<Duration>,
    pub idp: IdpRef,
    /// `None`: the IdP's default; `Some(None)`: no heartbeat expected.
    pub heartbeat: Option<Option<Heartbeat>>,
}

impl RegisterClient {
    /// A registration with the given grants and scopes and every other field at its
    /// default (web profile, no redirect URIs, custom IdP, lifetimes and heartbeat by
    /// default); callers set what they need with struct update syntax.
    pub fn new(name: &str, grants: &[GrantType], scopes: &[Scope]) -> RegisterClient {
        RegisterClient {
            name: name.to_string(),
            profile: ClientProfile::Web,
            grants: grants.to_vec(),
            scopes: scopes.to_vec(),
            redirect_uris: Vec::new(),
            auth_method: None,
            require_consent: false,
            require_pkce: false,
            email_domains: Vec::new(),
            alert_emails: Vec::new(),
            access_token_ttl: None,
            refresh_token_ttl: None,
            client_secret_ttl: None,
            idp: IdpRef {
                kind: IdpKind::Custom,
                app_id: None,
                tenant: None,
                owner: None,
            },
            heartbeat: None,
        }
    }
}

/// What `update-api-client` may change (`None` = unchanged).
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub grants: Option<Vec<GrantType>>,
    pub scopes: Option<Vec<Scope>>,
    pub redirect_uris: Option<Vec<String>>,
    pub add_redirect_uris: Vec<String>,
    pub remove_redirect_uris: Vec<String>,
    pub require_consent: Option<bool>,
    pub require_pkce: Option<bool>,
    /// Replace the email-domain rules (`Some(vec![])` removes the restriction).
    pub email_domains: Option<Vec<String>>,
    /// Replace the provisioning-alert addresses (`Some(vec![])` removes them).
    pub alert_emails: Option<Vec<String>>,
    pub access_token_ttl: Option<Duration>,
    pub refresh_token_ttl: Option<Duration>,
    pub idp_kind: Option<IdpKind>,
    pub idp_app_id: Option<String>,
    pub idp_tenant: Option<String>,
    pub owner: Option<String>,
    pub heartbeat: Option<Option<Heartbeat>>,
}

fn new_client_id() -> String {
    // The id is public; 80 random bits keep it unguessable enough to not leak counts.
    let t = token::generate(TokenKind::ClientSecret, 0);
    format!("cl_{}", t.hash.short_hex())
}

/// A redirect URI must be absolute, carry no fragment (RFC 6749 §3.1.2) and use https
/// unless it points at the loopback interface or uses a private-use scheme (native apps,
/// RFC 8252 §7.1).
fn check_redirect_uri(uri: &str) -> Result<()> {
    let parsed = url::Url::parse(uri).map_err(|_| {
        AdminError::Invalid(format!(
            "redirect URI `{uri}` is not an absolute URI (e.g. https://app.example.com/callback)"
        ))
    })?;
    if parsed.fragment().is_some() {
        return Err(AdminError::Invalid(format!(
            "redirect URI `{uri}` has a fragment (#…), which OAuth2 forbids"
        )));
    }
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(AdminError::Invalid(format!(
            "redirect URI `{uri}` uses http; use https (http is allowed only for localhost)"
        ))),
        s if s.contains('.') => Ok(()),
        _ => Err(AdminError::Invalid(format!(
            "redirect URI `{uri}` must use https (or a reverse-domain scheme for native apps)"
        ))),
    }
}

/// The rules a client's grants, method and URIs must satisfy together.
fn check_shape(
    grants: &[GrantType],
    scopes: &[Scope],
    uris: &[String],
    auth: AuthMethod,
) -> Result<()> {
    if grants.is_empty() {
        return Err(AdminError::Invalid(
            "give at least one grant type with -G (authorization_code, refresh_token, client_credentials)".into(),
        ));
    }
    if scopes.is_empty() {
        return Err(AdminError::Invalid(
            "give at least one scope with -S (user-directory.read.all, user-directory.write.all)"
                .into(),
        ));
    }
    for uri in uris {
        check_redirect_uri(uri)?;
    }
    let has = |g| grants.contains(&g);
    if has(GrantType::AuthorizationCode) && uris.is_empty() {
        return Err(AdminError::Invalid(
            "the authorization_code grant needs at least one redirect URI (-R)".into(),
        ));
    }
    if has(GrantType::RefreshToken) && !has(GrantType::AuthorizationCode) {
        return Err(AdminError::Invalid(
            "the refresh_token grant needs the authorization_code grant too (client_credentials never gets refresh tokens)".into(),
        ));
    }
    if auth == AuthMethod::None && has(GrantType::ClientCredentials) {
        return Err(AdminError::Invalid(
            "a public client (authentication method none) cannot use client_credentials".into(),
        ));
    }
    Ok(())
}

fn dedup<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut out = v.to_vec();
    out.sort();
    out.dedup();
    out
}

impl Admin<'_> {
    fn check_lifetime(&self, what: &str, d: Duration) -> Result<()> {
        let max = self.max_token_lifetime()?;
        if d > max {
            return Err(AdminError::Invalid(format!(
                "{what} of {d} is beyond the maximum token lifetime of {max} (see `config policy`)"
            )));
        }
        Ok(())
    }

    /// Register a client. Returns it and, for confidential clients, its secret (shown once).
    pub fn register_client(&self, req: RegisterClient) -> Result<(Client, Option<Secret>)> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(AdminError::Invalid(
                "the client name (-n) must not be empty".into(),
            ));
        }
        let auth = req.auth_method.unwrap_or(match req.profile {
            ClientProfile::Native | ClientProfile::UserAgent => AuthMethod::None,
            ClientProfile::Web | ClientProfile::Other => AuthMethod::ClientSecretBasic,
        });
        let grants = dedup(&req.grants);
        let scopes = dedup(&req.scopes);
        let mut uris = req.redirect_uris.clone();
        uris.dedup();
        check_shape(&grants, &scopes, &uris, auth)?;
        let access_ttl = req.access_token_ttl.unwrap_or(DEFAULT_ACCESS_TTL);
        let refresh_ttl = req.refresh_token_ttl.unwrap_or(DEFAULT_REFRESH_TTL);
        self.check_lifetime("an access-token validity", access_ttl)?;
        self.check_lifetime("a refresh-token validity", refresh_ttl)?;
        if let Some(Some(hb)) = req.heartbeat {
            check_heartbeat(&hb)?;
        }
        if auth == AuthMethod::None && req.client_secret_ttl.is_some() {
            return Err(AdminError::Invalid(
                "a public client (authentication method none) has no secret, so --client-secret-validity does not apply".into(),
            ));
        }
        let now = self.now();
        let secret =
            (auth != AuthMethod::None).then(|| token::generate(TokenKind::ClientSecret, now));
        let client = Client {
            id: new_client_id(),
            name,
            profile: req.profile,
            grants,
            scopes,
            redirect_uris: uris,
            auth_method: auth,
            require_consent: req.require_consent,
            has_secret: secret.is_some(),
            secret_expires_at: req.client_secret_ttl.map(|d| now + d.secs()),
            secret_ttl: req.client_secret_ttl,
            access_token_ttl: access_ttl,
            refresh_token_ttl: refresh_ttl,
            heartbeat: req
                .heartbeat
                .unwrap_or_else(|| Heartbeat::default_for(req.idp.kind)),
            idp: req.idp,
            created_at: now,
            updated_at: now,
            token_epoch: 0,
            disabled_at: None,
            require_pkce: req.require_pkce,
            email_domains: check_domains(&req.email_domains)?,
            alert_emails: check_alert_emails(&req.alert_emails)?,
        };
        let e = NewAuditEvent {
            client_id: Some(client.id.clone()),
            detail: Some(format!("registered `{}`", client.name)),
            ..self.event(AuditAction::ClientRegister, "success")
        };
        self.store.insert_client(
            &NewClient {
                client: client.clone(),
                secret_hash: secret.as_ref().map(|s| s.hash),
            },
            &e,
        )?;
        Ok((client, secret.map(|s| s.secret)))
    }

    /// A live client, or a `NotFound` naming the id.
    pub fn client(&self, id: &str) -> Result<Client> {
        self.store
            .client(id)?
            .ok_or_else(|| AdminError::NotFound(format!("no API client with id {id} exists")))
    }

    /// Change a client's registration.
    pub fn update_client(&self, id: &str, ch: ClientChanges) -> Result<Client> {
        let current = self.client(id)?;
        let grants = ch
            .grants
            .as_deref()
            .map(dedup)
            .unwrap_or(current.grants.clone());
        let scopes = ch
            .scopes
            .as_deref()
            .map(dedup)
            .unwrap_or(current.scopes.clone());
        let mut uris = ch
            .redirect_uris
            .clone()
            .unwrap_or(current.redirect_uris.clone());
        for u in &ch.add_redirect_uris {
            if !uris.contains(u) {
                uris.push(u.clone());
            }
        }
        for u in &ch.remove_redirect_uris {
            if !uris.contains(u) {
                return Err(AdminError::Invalid(format!(
                    "redirect URI `{u}` is not registered for client {id}"
                )));
            }
            uris.retain(|x| x != u);
        }
        check_shape(&grants, &scopes, &uris, current.auth_method)?;
        if let Some(d) = ch.access_token_ttl {
            self.check_lifetime("an access-token validity", d)?;
        }
        if let Some(d) = ch.refresh_token_ttl {
            self.check_lifetime("a refresh-token validity", d)?;
        }
        if let Some(Some(hb)) = ch.heartbeat {
            check_heartbeat(&hb)?;
        }
        if let Some(n) = &ch.name {
            if n.trim().is_empty() {
                return Err(AdminError::Invalid(
                    "the client name must not be empty".into(),
                ));
            }
        }
        let nothing = ch.name.is_none()
            && ch.grants.is_none()
            && ch.scopes.is_none()
            && ch.redirect_uris.is_none()
            && ch.add_redirect_uris.is_empty()
            && ch.remove_redirect_uris.is_empty()
            && ch.require_consent.is_none()
            && ch.require_pkce.is_none()
            && ch.email_domains.is_none()
            && ch.alert_emails.is_none()
            && ch.access_token_ttl.is_none()
            && ch.refresh_token_ttl.is_none()
            && ch.heartbeat.is_none()
            && ch.idp_kind.is_none()
            && ch.idp_app_id.is_none()
            && ch.idp_tenant.is_none()
            && ch.owner.is_none();
        if nothing {
            return Err(AdminError::Invalid(
                "nothing to change: give at least one option (see `config update-api-client --help`)".into(),
            ));
        }
        let idp_changed = ch.idp_kind.is_some()
            || ch.idp_app_id.is_some()
            || ch.idp_tenant.is_some()
            || ch.owner.is_some();
        let idp = idp_changed.then(|| IdpRef {
            kind: ch.idp_kind.unwrap_or(current.idp.kind),
            app_id: ch.idp_app_id.clone().or(current.idp.app_id.clone()),
            tenant: ch.idp_tenant.clone().or(current.idp.tenant.clone()),
            owner: ch.owner.clone().or(current.idp.owner.clone()),
        });
        // A new IdP kind brings its heartbeat default unless one was given.
        let heartbeat = ch.heartbeat.or_else(|| {
            ch.idp_kind
                .filter(|k| *k != current.idp.kind)
                .map(Heartbeat::default_for)
        });
        let update = ClientUpdate {
            name: ch.name.map(|n| n.trim().to_string()),
            grants: Some(grants),
            scopes: Some(scopes),
            redirect_uris: Some(uris),
            require_consent: ch.require_consent,
            require_pkce: ch.require_pkce,
            email_domains: ch.email_domains.as_deref().map(check_domains).transpose()?,
            alert_emails: ch
                .alert_emails
                .as_deref()
                .map(check_alert_emails)
                .transpose()?,
            access_token_ttl: ch.access_token_ttl,
            refresh_token_ttl: ch.refresh_token_ttl,
            idp,
            heartbeat,
        };
        let e = NewAuditEvent {
            client_id: Some(id.to_string()),
            ..self.event(AuditAction::ClientUpdate, "success")
        };
        self.store
            .update_client(id, &update, self.now(), &e)
            .map_err(not_found_or)
    }

    /// Give a confidential client a new secret; the old one, and every token issued to the
    /// client until now, stop working at once (the client is cut off). Without
    /// `validity` the new secret lives as long as the client's secrets are set to.
    pub fn rotate_client_secret(
        &self,
        id: &str,
        validity: Option<Duration>,
    ) -> Result<(Client, Secret, Option<Timestamp>)> {
        let client = self.client(id)?;
        if client.auth_method == AuthMethod::None {
            return Err(AdminError::Invalid(format!(
                "client {id} is a public client (authentication method none) and has no secret"
            )));
        }
        let now = self.now();
        let secret = token::generate(TokenKind::ClientSecret, now);
        let ttl = validity.or(client.secret_ttl);
        let expires = ttl.map(|d| now + d.secs());
        let e = NewAuditEvent {
            client_id: Some(id.to_string()),
            ..self.event(AuditAction::ClientRotateSecret, "success")
        };
        self.store
            .set_client_secret(id, &secret.hash, ttl, now, &e)
            .map_err(not_found_or)?;
        crate::admin::wait_for_caches();
        Ok((self.client(id)?, secret.secret, expires))
    }

    /// Delete a client and cut it off: every token it holds dies at once (one UPDATE, one
    /// audit event). Returns how many of its tokens were live.
    pub fn delete_client(&self, id: &str) -> Result<usize> {
        let client = self.client(id)?;
        let live = self.store.count_live_tokens(id, self.now())?;
        let e = NewAuditEvent {
            client_id: Some(id.to_string()),
            detail: Some(format!("deleted `{}`", client.name)),
            ..self.event(AuditAction::ClientDelete, "success")
        };
        self.store
            .delete_client(id, self.now(), &e)
            .map_err(not_found_or)?;
        crate::admin::wait_for_caches();
        Ok(live)
    }

    /// Disable a client (cut off its tokens, issue none until enabled) or enable it again.
    /// Returns how many of its tokens were live when it was disabled.
    pub fn set_client_disabled(
        &self,
        id: &str,
        disabled: bool,
        reason: Option<&str>,
    ) -> Result<usize> {
        let client = self.client(id)?;
        let now = self.now();
        let live = if disabled {
            self.store.count_live_tokens(id, now)?
        } else {
            0
        };
        let reason = reason.unwrap_or(if disabled {
            "client disabled"
        } else {
            "client enabled"
        });
        let e = NewAuditEvent {
            client_id: Some(id.to_string()),
            detail: Some(format!("`{}`: {reason}", client.name)),
            ..self.event(
                if disabled {
                    AuditAction::ClientDisable
                } else {
                    AuditAction::ClientEnable
                },
                "success",
            )
        };
        self.store
            .cut_off_client(id, reason, Some(disabled), now, &e)
            .map_err(not_found_or)?;
        // Either way, once this returns every server acts on the new state.
        crate::admin::wait_for_caches();
        Ok(live)
    }
}

/// Validate email-domain rules (`crate::scim::domains::parse_rule`), deduplicated.
fn check_domains(rules: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for r in rules {
        let rule = crate::scim::domains::parse_rule(r).map_err(AdminError::Invalid)?;
        if !out.contains(&rule) {
            out.push(rule);
        }
    }
    Ok(out)
}

/// One `--alert-email` address, checked and trimmed: a plain mailbox (`ops@example.com`),
/// as the SMTP envelope takes it; no display name, no list.
pub fn alert_email(s: &str) -> std::result::Result<String, String> {
    let t = s.trim();
    t.parse::<lettre::Address>()
        .map(|_| t.to_string())
        .map_err(|_| format!("`{s}` is not an e-mail address (e.g. iam-alerts@example.com)"))
}

fn check_alert_emails(addrs: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for a in addrs {
        let a = alert_email(a).map_err(AdminError::Invalid)?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
            out.push(a);
        }
    }
    if out.len() > MAX_ALERT_EMAILS {
        return Err(AdminError::Invalid(format!(
            "at most {MAX_ALERT_EMAILS} alert e-mail addresses per client"
        )));
    }
    Ok(out)
}

/// The most `--alert-email` addresses one client may have.
pub const MAX_ALERT_EMAILS: usize = 20;

fn check_heartbeat(hb: &Heartbeat) -> Result<()> {
    if hb.missed == 0 {
        return Err(AdminError::Invalid(
            "--missed-heartbeats must be at least 1".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        assert!(
            check_redirect_uri("https://system-admin.okta.com/admin/app/cpc/x/oauth/callback")
                .is_ok()
        );
        assert!(check_redirect_uri("http://127.0.0.1:9000/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/cb").is_ok());
        for bad in [
            "/relative",
            "https://a.example/cb#frag",
            "http://a.example/cb",
            "javascript:alert(1)",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
