//! API client commands: register, list, show, update, rotate-client-secret, delete.
//! Spotfire's flags (`-n`, `--client-profile=WEB`, `-G`, `-S`, `-R`, `-a`, `-r`) work as
//! its users type them; the IdP reference and heartbeat flags are scimgate's own.

use clap::Args;
use scimgate::admin::{ClientChanges, RegisterClient, alert_email};
use scimgate::model::{
    AuthMethod, Client, ClientProfile, GrantType, Heartbeat, IdpKind, IdpRef, Scope,
};
use scimgate::time::{Duration, format_local};
use serde_json::json;

use crate::output::{client_json, fields, print_json, short_scopes, table, when};
use crate::{CliError, CliResult, Ctx};

fn scope_arg(s: &str) -> Result<Scope, String> {
    Scope::parse_scope(s).map_err(|e| e.0)
}

/// `--heartbeat-interval`: a duration, or `off` for no expectation.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatInterval(Option<Duration>);

fn heartbeat_arg(s: &str) -> Result<HeartbeatInterval, String> {
    if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
        return Ok(HeartbeatInterval(None));
    }
    Duration::parse(s)
        .map(|d| HeartbeatInterval(Some(d)))
        .map_err(|e| e.to_string())
}

/// `true` or `false` (Spotfire writes `-r false`); case-insensitive, `yes`/`no` too.
pub(crate) fn bool_arg(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(format!("`{s}` is neither true nor false")),
    }
}

#[derive(Args, Debug)]
pub struct ClientIdArg {
    /// The client id.
    #[arg(short = 'i', long = "client-id")]
    pub client_id: String,
}

/// The IdP reference and heartbeat flags shared by register and update.
#[derive(Args, Debug, Default)]
pub struct IdpArgs {
    /// Identity provider driving this client: entra, okta or custom (sets heartbeat defaults).
    #[arg(long = "idp", value_parser = IdpKind::parse)]
    pub idp: Option<IdpKind>,
    /// The IdP's id for the provisioning app (Entra application/object id, Okta app id).
    #[arg(long)]
    pub idp_app_id: Option<String>,
    /// The IdP tenant (Entra tenant id, Okta org URL).
    #[arg(long)]
    pub idp_tenant: Option<String>,
    /// Who owns the IdP app (name, e-mail).
    #[arg(long)]
    pub owner: Option<String>,
    /// Expected time between the IdP's calls, e.g. 40m, or `off`.
    #[arg(long, value_parser = heartbeat_arg)]
    pub heartbeat_interval: Option<HeartbeatInterval>,
    /// How many silent intervals make the client "missed" (an error).
    #[arg(long)]
    pub missed_heartbeats: Option<u32>,
}

impl IdpArgs {
    /// The heartbeat setting these flags ask for, relative to `current` (None = unchanged).
    fn heartbeat(&self, current: Option<Heartbeat>) -> Result<Option<Option<Heartbeat>>, CliError> {
        match (self.heartbeat_interval.map(|h| h.0), self.missed_heartbeats) {
            (None, None) => Ok(None),
            (Some(None), Some(_)) => Err(CliError::Usage(
                "--missed-heartbeats makes no sense with --heartbeat-interval off".into(),
            )),
            (Some(None), None) => Ok(Some(None)),
            (Some(Some(interval)), missed) => Ok(Some(Some(Heartbeat {
                interval,
                missed: missed.or(current.map(|h| h.missed)).unwrap_or(3),
            }))),
            (None, Some(missed)) => match current {
                Some(h) => Ok(Some(Some(Heartbeat { missed, ..h }))),
                None => Err(CliError::Usage(
                    "--missed-heartbeats needs --heartbeat-interval (this client expects no heartbeat)"
                        .into(),
                )),
            },
        }
    }
}

#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// Display name of the client.
    #[arg(short = 'n', long)]
    pub name: String,
    /// web, user_agent, native or other.
    #[arg(short = 'p', long = "client-profile", default_value = "web", value_parser = ClientProfile::parse)]
    pub profile: ClientProfile,
    /// Grant type (repeat): authorization_code, refresh_token, client_credentials.
    #[arg(short = 'G', long = "grant-type", value_parser = GrantType::parse)]
    pub grants: Vec<GrantType>,
    /// Scope (repeat): user-directory.read.all, user-directory.write.all.
    #[arg(short = 'S', long = "scope", value_parser = scope_arg)]
    pub scopes: Vec<Scope>,
    /// Authorized redirect URI (repeat), e.g. Okta's callback URL.
    #[arg(short = 'R', long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// client_secret_basic, client_secret_post or none (public client, PKCE only).
    #[arg(short = 'a', long = "token-endpoint-auth-method", value_parser = AuthMethod::parse)]
    pub auth_method: Option<AuthMethod>,
    /// Ask the end user for consent on every authorization: true or false (Spotfire's
    /// `-r <true|false>`); `-r` alone means true. Default false.
    #[arg(
        short = 'r',
        long = "require-end-user-consent",
        value_name = "true|false",
        num_args = 0..=1,
        require_equals = false,
        default_missing_value = "true",
        value_parser = bool_arg
    )]
    pub require_consent: Option<bool>,
    /// Require PKCE (S256) of this confidential client too: true or false (default false;
    /// public clients always need it).
    #[arg(long, value_name = "true|false", value_parser = bool_arg)]
    pub require_pkce: Option<bool>,
    /// Limit the client to users of this email domain (repeat): `contoso.com` exactly,
    /// `*.contoso.com` its subdomains. Default: unrestricted.
    #[arg(long = "email-domain", value_name = "DOMAIN")]
    pub email_domains: Vec<String>,
    /// Mail this client's provisioning-error digests to this address too (repeat; the
    /// server's `smtp_to` always gets them).
    #[arg(long = "alert-email", value_name = "ADDRESS", value_parser = alert_email)]
    pub alert_emails: Vec<String>,
    /// Lifetime of access tokens from the OAuth2 flows (default 1h).
    #[arg(long, value_parser = Duration::parse)]
    pub access_token_validity: Option<Duration>,
    /// Lifetime of refresh tokens (default 90d; each use starts a new one).
    #[arg(long, value_parser = Duration::parse)]
    pub refresh_token_validity: Option<Duration>,
    /// Make the client secret expire after this long (warned about before it does).
    #[arg(long, value_parser = Duration::parse)]
    pub client_secret_validity: Option<Duration>,
    #[command(flatten)]
    pub idp: IdpArgs,
}

pub fn register(ctx: &Ctx, a: RegisterArgs) -> CliResult {
    let kind = a.idp.idp.unwrap_or(IdpKind::Custom);
    let heartbeat = a.idp.heartbeat(Heartbeat::default_for(kind))?;
    let (client, secret) = ctx.admin.register_client(RegisterClient {
        name: a.name,
        profile: a.profile,
        grants: a.grants,
        scopes: a.scopes,
        redirect_uris: a.redirect_uris,
        auth_method: a.auth_method,
        require_consent: a.require_consent.unwrap_or(false),
        require_pkce: a.require_pkce.unwrap_or(false),
        email_domains: a.email_domains,
        alert_emails: a.alert_emails,
        access_token_ttl: a.access_token_validity,
        refresh_token_ttl: a.refresh_token_validity,
        client_secret_ttl: a.client_secret_validity,
        idp: IdpRef {
            kind,
            app_id: a.idp.idp_app_id,
            tenant: a.idp.idp_tenant,
            owner: a.idp.owner,
        },
        heartbeat,
    })?;
    if ctx.json {
        let mut v = client_json(&client);
        v["client_secret"] = json!(secret.as_ref().map(|s| s.expose()));
        print_json(&v);
        return Ok(());
    }
    println!("API client successfully registered.");
    let mut pairs = vec![("Client id", client.id.clone())];
    if let Some(s) = &secret {
        pairs.push(("Client secret", s.expose().to_string()));
    }
    pairs.extend(describe(ctx, &client, 0));
    println!("{}", fields(&pairs));
    if secret.is_some() {
        println!(
            "The client secret is shown only once: enter it in the IdP now. Replace it with `config rotate-client-secret -i {}`.",
            client.id
        );
    }
    Ok(())
}

fn describe(ctx: &Ctx, c: &Client, active_tokens: i64) -> Vec<(&'static str, String)> {
    let now = ctx.admin.now();
    let grants = c
        .grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let scopes = c
        .scopes
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ");
    let uris = if c.redirect_uris.is_empty() {
        "-".to_string()
    } else {
        c.redirect_uris.join(", ")
    };
    let heartbeat = match c.heartbeat {
        Some(h) => format!("every {}, error after {} missed", h.interval, h.missed),
        None => "not expected (only failures alert)".into(),
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    vec![
        ("Name", c.name.clone()),
        ("Profile", c.profile.to_string()),
        ("Grants", grants),
        ("Scopes", scopes),
        ("Redirect URIs", uris),
        ("Authentication", c.auth_method.to_string()),
        (
            "End-user consent",
            if c.require_consent {
                "always asked"
            } else {
                "remembered"
            }
            .into(),
        ),
        (
            "Email domains",
            if c.email_domains.is_empty() {
                "any (unrestricted)".into()
            } else {
                c.email_domains.join(", ")
            },
        ),
        (
            "Alert e-mail",
            if c.alert_emails.is_empty() {
                "- (digests go to the server's smtp_to only)".into()
            } else {
                c.alert_emails.join(", ")
            },
        ),
        (
            "PKCE",
            if c.auth_method == scimgate::model::AuthMethod::None {
                "required (public client)"
            } else if c.require_pkce {
                "required"
            } else {
                "optional (checked when sent)"
            }
            .into(),
        ),
        ("Access tokens", format!("valid {}", c.access_token_ttl)),
        ("Refresh tokens", format!("valid {}", c.refresh_token_ttl)),
        (
            "Secret",
            match (c.has_secret, c.secret_expires_at) {
                (false, _) => "none (public client)".into(),
                (true, None) => "set, does not expire".into(),
                (true, Some(t)) => format!("set, expires {}", when(t, now)),
            },
        ),
        ("IdP", c.idp.kind.to_string()),
        ("IdP app id", opt(&c.idp.app_id)),
        ("IdP tenant", opt(&c.idp.tenant)),
        ("Owner", opt(&c.idp.owner)),
        ("Heartbeat", heartbeat),
        ("Active tokens", active_tokens.to_string()),
        (
            "State",
            match c.disabled_at {
                Some(t) => format!(
                    "DISABLED since {} (`config enable-api-client -i {}`)",
                    format_local(t),
                    c.id
                ),
                None => "enabled".into(),
            },
        ),
        ("Registered", format_local(c.created_at)),
    ]
}

fn active_count(ctx: &Ctx, id: &str) -> Result<i64, CliError> {
    Ok(ctx.admin.live_token_count(id)?)
}

pub fn list(ctx: &Ctx) -> CliResult {
    let listed = ctx.admin.clients_with_token_counts()?;
    let clients: Vec<&Client> = listed.iter().map(|(c, _)| c).collect();
    let count = |id: &str| {
        listed
            .iter()
            .find(|(c, _)| c.id == id)
            .map_or(0, |(_, n)| *n)
    };
    if ctx.json {
        let v: Vec<_> = clients
            .iter()
            .map(|c| {
                let mut v = client_json(c);
                v["active_tokens"] = json!(count(&c.id));
                v
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    if clients.is_empty() {
        println!("No API clients are registered. Register one with `config register-api-client`.");
        return Ok(());
    }
    let rows = clients
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.name.clone(),
                c.idp.kind.to_string(),
                c.grants
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                short_scopes(&c.scopes),
                count(&c.id).to_string(),
                format_local(c.created_at),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "CLIENT ID",
                "NAME",
                "IDP",
                "GRANTS",
                "SCOPES",
                "ACTIVE TOKENS",
                "REGISTERED"
            ],
            rows
        )
    );
    Ok(())
}

pub fn show(ctx: &Ctx, id: &str) -> CliResult {
    let c = ctx.admin.client(id)?;
    let n = active_count(ctx, id)?;
    if ctx.json {
        let mut v = client_json(&c);
        v["active_tokens"] = json!(n);
        print_json(&v);
    } else {
        let mut pairs = vec![("Client id", c.id.clone())];
        pairs.extend(describe(ctx, &c, n));
        println!("{}", fields(&pairs));
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The client id.
    #[arg(short = 'i', long = "client-id")]
    pub client_id: String,
    /// New display name.
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Replace the grant types (repeat).
    #[arg(short = 'G', long = "grant-type", value_parser = GrantType::parse)]
    pub grants: Vec<GrantType>,
    /// Replace the scopes (repeat).
    #[arg(short = 'S', long = "scope", value_parser = scope_arg)]
    pub scopes: Vec<Scope>,
    /// Replace the redirect URIs (repeat).
    #[arg(short = 'R', long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Add a redirect URI (repeat).
    #[arg(long)]
    pub add_redirect_uri: Vec<String>,
    /// Remove a redirect URI (repeat).
    #[arg(long)]
    pub remove_redirect_uri: Vec<String>,
    /// Ask for end-user consent every time: true or false (as `-r <true|false>` of
    /// register-api-client).
    #[arg(
        short = 'r',
        long,
        value_name = "true|false",
        value_parser = bool_arg
    )]
    pub require_end_user_consent: Option<bool>,
    /// Require PKCE (S256) of this client: true or false.
    #[arg(long, value_name = "true|false", value_parser = bool_arg)]
    pub require_pkce: Option<bool>,
    /// Replace the client's email domains (repeat; see register-api-client).
    #[arg(long = "email-domain", value_name = "DOMAIN")]
    pub email_domains: Vec<String>,
    /// Remove the email-domain restriction (the client sees every user).
    #[arg(long, conflicts_with = "email_domains")]
    pub any_email_domain: bool,
    /// Replace the addresses this client's provisioning-error digests are mailed to (repeat).
    #[arg(long = "alert-email", value_name = "ADDRESS", value_parser = alert_email)]
    pub alert_emails: Vec<String>,
    /// Mail this client's digests only to the server's `smtp_to`.
    #[arg(long, conflicts_with = "alert_emails")]
    pub no_alert_email: bool,
    /// Lifetime of access tokens from the OAuth2 flows.
    #[arg(long, value_parser = Duration::parse)]
    pub access_token_validity: Option<Duration>,
    /// Lifetime of refresh tokens.
    #[arg(long, value_parser = Duration::parse)]
    pub refresh_token_validity: Option<Duration>,
    #[command(flatten)]
    pub idp: IdpArgs,
}

pub fn update(ctx: &Ctx, a: UpdateArgs) -> CliResult {
    let current = ctx.admin.client(&a.client_id)?;
    let heartbeat = a.idp.heartbeat(current.heartbeat)?;
    let changes = ClientChanges {
        name: a.name,
        grants: (!a.grants.is_empty()).then_some(a.grants),
        scopes: (!a.scopes.is_empty()).then_some(a.scopes),
        redirect_uris: (!a.redirect_uris.is_empty()).then_some(a.redirect_uris),
        add_redirect_uris: a.add_redirect_uri,
        remove_redirect_uris: a.remove_redirect_uri,
        require_consent: a.require_end_user_consent,
        require_pkce: a.require_pkce,
        email_domains: if a.any_email_domain {
            Some(Vec::new())
        } else {
            (!a.email_domains.is_empty()).then_some(a.email_domains)
        },
        alert_emails: if a.no_alert_email {
            Some(Vec::new())
        } else {
            (!a.alert_emails.is_empty()).then_some(a.alert_emails)
        },
        access_token_ttl: a.access_token_validity,
        refresh_token_ttl: a.refresh_token_validity,
        idp_kind: a.idp.idp,
        idp_app_id: a.idp.idp_app_id,
        idp_tenant: a.idp.idp_tenant,
        owner: a.idp.owner,
        heartbeat,
    };
    let c = ctx.admin.update_client(&a.client_id, changes)?;
    if ctx.json {
        print_json(&client_json(&c));
    } else {
        println!("API client {} updated.", c.id);
        println!("{}", fields(&describe(ctx, &c, active_count(ctx, &c.id)?)));
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct RotateSecretArgs {
    /// The client id.
    #[arg(short = 'i', long = "client-id")]
    pub client_id: String,
    /// Make the new secret expire after this long.
    #[arg(long, value_parser = Duration::parse)]
    pub client_secret_validity: Option<Duration>,
}

pub fn rotate_secret(ctx: &Ctx, a: RotateSecretArgs) -> CliResult {
    let (c, secret, expires) = ctx
        .admin
        .rotate_client_secret(&a.client_id, a.client_secret_validity)?;
    if ctx.json {
        print_json(&json!({
            "client_id": c.id,
            "client_secret": secret.expose(),
            "secret_expires_at": expires.map(scimgate::time::format_rfc3339),
        }));
        return Ok(());
    }
    println!(
        "Client secret of {} ({}) replaced; the old secret and every token issued to the client until now no longer work.",
        c.id, c.name
    );
    let mut pairs = vec![("Client secret", secret.expose().to_string())];
    if let Some(t) = expires {
        pairs.push(("Expires", when(t, ctx.admin.now())));
    }
    println!("{}", fields(&pairs));
    println!("The secret is shown only once: enter it in the IdP now.");
    Ok(())
}

pub fn delete(ctx: &Ctx, id: &str) -> CliResult {
    let name = ctx.admin.client(id)?.name;
    let revoked = ctx.admin.delete_client(id)?;
    if ctx.json {
        print_json(&json!({ "client_id": id, "deleted": true, "tokens_revoked": revoked }));
    } else {
        println!(
            "API client {id} ({name}) deleted; its {revoked} live token(s) no longer work anywhere."
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct DisableArgs {
    /// The client id.
    #[arg(short = 'i', long = "client-id")]
    pub client_id: String,
    /// Why (kept in the audit log and shown by `show-token` for its tokens).
    #[arg(long)]
    pub reason: Option<String>,
}

pub fn set_disabled(ctx: &Ctx, id: &str, disabled: bool, reason: Option<String>) -> CliResult {
    let name = ctx.admin.client(id)?.name;
    let live = ctx
        .admin
        .set_client_disabled(id, disabled, reason.as_deref())?;
    if ctx.json {
        print_json(&json!({ "client_id": id, "disabled": disabled, "tokens_revoked": live }));
    } else if disabled {
        println!(
            "API client {id} ({name}) disabled: its {live} live token(s) no longer work anywhere, and none is issued until `config enable-api-client -i {id}`."
        );
    } else {
        println!("API client {id} ({name}) enabled: it can be issued tokens again.");
    }
    Ok(())
}
