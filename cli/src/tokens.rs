//! Token commands: issue-access-token, list-tokens, show-token, revoke-token, rotate-token,
//! prune-tokens.
//! Unlike Spotfire's tool, `revoke-token` fails (exit 1) when nothing matches, and every
//! issued token can be looked up afterwards by its id.

use clap::{ArgGroup, Args};
use scimgate::admin::{IssueToken, Lifetime, RevokeResult, TokenRef};
use scimgate::model::{Scope, TokenRecord, TokenStatus};
use scimgate::store::TokenFilter;
use scimgate::time::{Duration, format_local, format_relative, parse_date};
use scimgate::token::TokenKind;
use serde_json::json;

use crate::output::{fields, print_json, short_scopes, table_fit, token_json, when};
use crate::{CliError, CliResult, Ctx};
use scimgate::model::AuditAction;

fn scope_arg(s: &str) -> Result<Scope, String> {
    Scope::parse_scope(s).map_err(|e| e.0)
}

fn token_type_arg(s: &str) -> Result<TokenKind, String> {
    match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "access_token" | "access" => Ok(TokenKind::Access),
        "refresh_token" | "refresh" => Ok(TokenKind::Refresh),
        other => Err(format!(
            "`{other}` is not a token type; use access_token or refresh_token"
        )),
    }
}

/// `-v`: a whole number of hours; a duration such as `24h` is pointed at `--valid-for`.
fn hours_arg(s: &str) -> Result<i64, String> {
    s.trim().parse::<i64>().map_err(|_| {
        format!("`{s}` is not a whole number of hours; -v counts hours (-v 24), --valid-for takes a duration (--valid-for {s})")
    })
}

fn date_arg(s: &str) -> Result<i64, String> {
    parse_date(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("lifetime").args(["validity", "valid_for", "expires_at"])))]
pub struct IssueArgs {
    /// The client to issue the token to (it needs the client_credentials grant).
    #[arg(short = 'i', long = "client-id")]
    pub client_id: String,
    /// Scope (repeat); default: all the client's scopes.
    #[arg(short = 'S', long = "scope", value_parser = scope_arg)]
    pub scopes: Vec<Scope>,
    /// Validity in hours (Spotfire's flag; default 17520, two years).
    #[arg(short = 'v', long, value_name = "HOURS", value_parser = hours_arg)]
    pub validity: Option<i64>,
    /// Validity as a duration: 30s, 15m, 12h, 90d, 2y.
    #[arg(long, value_parser = Duration::parse)]
    pub valid_for: Option<Duration>,
    /// Expiry as a date: 2027-03-31, "2027-03-31 17:00" or RFC 3339.
    #[arg(long, value_parser = date_arg)]
    pub expires_at: Option<i64>,
    /// A note to find the token by later (e.g. "Entra prod provisioning").
    #[arg(long)]
    pub label: Option<String>,
}

pub fn issue(ctx: &Ctx, a: IssueArgs) -> CliResult {
    let lifetime = match (a.validity, a.valid_for, a.expires_at) {
        (Some(h), _, _) => Lifetime::Hours(h),
        (_, Some(d), _) => Lifetime::For(d),
        (_, _, Some(t)) => Lifetime::Until(t),
        _ => Lifetime::DEFAULT,
    };
    let (rec, secret) = ctx.admin.issue_access_token(IssueToken {
        client_id: a.client_id,
        scopes: a.scopes,
        lifetime,
        label: a.label,
    })?;
    let now = ctx.admin.now();
    if ctx.json {
        let mut v = token_json(&rec, now);
        v["access_token"] = json!(secret.expose());
        print_json(&v);
        return Ok(());
    }
    println!("Access token successfully issued.");
    println!(
        "{}",
        fields(&[
            ("Access token", secret.expose().to_string()),
            ("Token id", rec.id.to_string()),
            ("Client", rec.client_id.clone()),
            ("Scopes", scopes_long(&rec)),
            ("Valid until", when(rec.expires_at, now)),
        ])
    );
    println!(
        "Please note that the access token is a credential and must be handled with care; it is shown only once."
    );
    println!(
        "Look it up with `config show-token {}`; revoke it with `config revoke-token --id {}` when it is no longer needed.",
        rec.id, rec.id
    );
    Ok(())
}

fn scopes_long(t: &TokenRecord) -> String {
    t.scopes
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this client's tokens.
    #[arg(short = 'i', long = "client-id")]
    pub client_id: Option<String>,
    /// Only live tokens that expire within this time, e.g. 14d.
    #[arg(long, value_parser = Duration::parse)]
    pub expiring_within: Option<Duration>,
    /// Include revoked and expired tokens.
    #[arg(long)]
    pub all: bool,
    /// Show at most this many tokens.
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn list(ctx: &Ctx, a: ListArgs) -> CliResult {
    let now = ctx.admin.now();
    let filter = TokenFilter {
        client_id: a.client_id,
        expiring_before: a.expiring_within.map(|d| now + d.secs()),
        include_inactive: a.all,
        include_codes: false,
        limit: a.limit,
    };
    let tokens = ctx.admin.list_tokens(&filter)?;
    if ctx.json {
        print_json(&json!(
            tokens
                .iter()
                .map(|t| token_json(t, now))
                .collect::<Vec<_>>()
        ));
        return Ok(());
    }
    if tokens.is_empty() {
        println!("No tokens match.");
        return Ok(());
    }
    let rows = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.kind.as_str().trim_end_matches("_token").to_string(),
                t.client_id.clone(),
                short_scopes(&t.scopes),
                format_local(t.issued_at),
                format!(
                    "{} ({})",
                    format_local(t.expires_at),
                    format_relative(t.expires_at, now)
                ),
                t.last_used_at
                    .map(|u| format_relative(u, now))
                    .unwrap_or_else(|| "never".into()),
                t.last_used_ip.clone().unwrap_or_else(|| "-".into()),
                t.status(now).as_str().to_string(),
                t.label.clone().unwrap_or_default(),
            ]
        })
        .collect();
    println!(
        "{}",
        table_fit(
            &[
                "TOKEN ID",
                "KIND",
                "CLIENT",
                "SCOPES",
                "ISSUED",
                "EXPIRES",
                "LAST USED",
                "SOURCE",
                "STATUS",
                "LABEL"
            ],
            rows,
            &["ISSUED", "SCOPES", "KIND", "SOURCE", "CLIENT", "LABEL"],
        )
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Token id (tok_…) or the token itself.
    pub token: String,
}

pub fn show(ctx: &Ctx, a: ShowArgs) -> CliResult {
    let t = ctx.admin.find_token(&TokenRef::parse(&a.token)?)?;
    let now = ctx.admin.now();
    let client_name = ctx
        .admin
        .client_name(&t.client_id)?
        .unwrap_or_else(|| "deleted".into());
    if ctx.json {
        let mut v = token_json(&t, now);
        v["client_name"] = json!(client_name);
        print_json(&v);
        return Ok(());
    }
    let status = match t.status(now) {
        TokenStatus::Active => "active (valid)".to_string(),
        TokenStatus::Expired => format!("EXPIRED {}", format_relative(t.expires_at, now)),
        TokenStatus::Revoked => "REVOKED".to_string(),
    };
    let mut pairs = vec![
        ("Token id", t.id.to_string()),
        ("Kind", t.kind.to_string()),
        ("Status", status),
        ("Client", format!("{} ({client_name})", t.client_id)),
        ("Subject", t.subject.clone()),
        ("Scopes", scopes_long(&t)),
        (
            "Issued",
            format!("{} via {}", when(t.issued_at, now), t.issued_via.as_str()),
        ),
        ("Expires", when(t.expires_at, now)),
        (
            "Last used",
            match (t.last_used_at, &t.last_used_ip) {
                (None, _) => "never".into(),
                (Some(u), Some(ip)) => format!("{} from {ip}", when(u, now)),
                (Some(u), None) => when(u, now),
            },
        ),
        ("Uses", t.use_count.to_string()),
        ("Label", t.label.clone().unwrap_or_else(|| "-".into())),
    ];
    if let Some(r) = t.revoked_at {
        pairs.push((
            "Revoked",
            format!(
                "{}: {}",
                when(r, now),
                t.revoked_reason.clone().unwrap_or_default()
            ),
        ));
    }
    if let Some(p) = &t.parent_id {
        pairs.push(("Replaces", p.clone()));
    }
    if let Some(next) = ctx.admin.replacement_of(&t.id)? {
        pairs.push(("Replaced by", next.to_string()));
    }
    println!("{}", fields(&pairs));
    Ok(())
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["token", "id", "client_id"])))]
pub struct RevokeArgs {
    /// The token value to revoke.
    #[arg(short = 'o', long)]
    pub token: Option<String>,
    /// The token id (tok_…) to revoke.
    #[arg(long)]
    pub id: Option<String>,
    /// With --all: revoke every token issued to this client until now (one step, however
    /// many; the client can be issued new ones).
    #[arg(short = 'i', long = "client-id", requires = "all")]
    pub client_id: Option<String>,
    /// Revoke all the client's tokens (with --client-id).
    #[arg(long, requires = "client_id")]
    pub all: bool,
    /// Only revoke if the token is of this type: access_token or refresh_token.
    #[arg(short = 'y', long = "token-type", value_parser = token_type_arg)]
    pub token_type: Option<TokenKind>,
    /// Why (kept in the audit log).
    #[arg(long)]
    pub reason: Option<String>,
}

pub fn revoke(ctx: &Ctx, a: RevokeArgs) -> CliResult {
    let now = ctx.admin.now();
    if let Some(client) = &a.client_id {
        if a.token_type.is_some() {
            return Err(CliError::Usage(
                "--token-type cannot be combined with --all: revoking a client's tokens cuts the client off, every kind at once".into(),
            ));
        }
        let live = ctx
            .admin
            .revoke_client_tokens(client, a.reason.as_deref())?;
        if ctx.json {
            print_json(&json!({ "client_id": client, "revoked_live_tokens": live }));
        } else {
            println!(
                "Every token issued to client {client} until now is revoked, {live} of them live; none of them works anywhere now."
            );
        }
        return Ok(());
    }
    let input = a.token.or(a.id).ok_or_else(|| {
        CliError::Usage(
            "give the token with --token, its id with --id, or --client-id with --all".into(),
        )
    })?;
    let r = TokenRef::parse(&input).map_err(|e| {
        // A refused revoke is audited like one of an unknown token.
        if let Err(audit) = ctx
            .admin
            .audit_failure(AuditAction::TokenRevoke, e.to_string())
        {
            return CliError::from(audit);
        }
        CliError::from(e)
    })?;
    match ctx
        .admin
        .revoke_token(&r, a.token_type, a.reason.as_deref())?
    {
        RevokeResult::Revoked(t) => {
            if ctx.json {
                print_json(&json!({ "token_id": t.id, "revoked": true, "already_revoked": false }));
            } else {
                println!("Token {} (client {}) revoked.", t.id, t.client_id);
            }
        }
        RevokeResult::AlreadyRevoked(t) => {
            let at = t.revoked_at.unwrap_or(now);
            if ctx.json {
                print_json(&json!({
                    "token_id": t.id, "revoked": true, "already_revoked": true,
                    "revoked_at": scimgate::time::format_rfc3339(at),
                }));
            } else {
                println!(
                    "Token {} was already revoked {}; nothing changed.",
                    t.id,
                    when(at, now)
                );
            }
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// Token id (tok_…) or the token itself.
    pub token: String,
    /// How long the old token keeps working after the rotation, e.g. 7d (default) or 1h.
    #[arg(long, default_value = "7d", value_parser = Duration::parse)]
    pub overlap: Duration,
    /// Lifetime of the new token (default: the old token's full lifetime).
    #[arg(long, value_parser = Duration::parse)]
    pub valid_for: Option<Duration>,
}

pub fn rotate(ctx: &Ctx, a: RotateArgs) -> CliResult {
    let r = TokenRef::parse(&a.token)?;
    let (old, new, secret) =
        ctx.admin
            .rotate_token(&r, a.overlap, a.valid_for.map(Lifetime::For))?;
    let now = ctx.admin.now();
    if ctx.json {
        let mut v = token_json(&new, now);
        v["access_token"] = json!(secret.expose());
        v["replaced"] = token_json(&old, now);
        print_json(&v);
        return Ok(());
    }
    println!("Access token rotated.");
    println!(
        "{}",
        fields(&[
            ("Access token", secret.expose().to_string()),
            ("Token id", new.id.to_string()),
            ("Valid until", when(new.expires_at, now)),
            (
                "Replaces",
                format!("{}, now valid until {}", old.id, when(old.expires_at, now))
            ),
        ])
    );
    println!(
        "Put the new token in the IdP before the old one stops working. It is shown only once."
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Delete tokens that expired more than this long ago, e.g. 90d.
    #[arg(long, value_parser = Duration::parse)]
    pub expired_for: Duration,
    /// Only count what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn prune(ctx: &Ctx, a: PruneArgs) -> CliResult {
    let (cutoff, pruned) = ctx.admin.prune_tokens(a.expired_for, a.dry_run)?;
    if ctx.json {
        print_json(&json!({
            "expired_before": scimgate::time::format_rfc3339(cutoff),
            "tokens": pruned.tokens,
            "authorization_codes": pruned.codes,
            "dry_run": a.dry_run,
        }));
        return Ok(());
    }
    let what = format!(
        "{} token(s) ({} of them authorization codes) that expired before {}",
        pruned.tokens,
        pruned.codes,
        format_local(cutoff)
    );
    if a.dry_run {
        println!("{what} would be deleted; nothing was deleted (--dry-run).");
    } else {
        println!("Deleted {what}. The audit log keeps their events.");
    }
    Ok(())
}
