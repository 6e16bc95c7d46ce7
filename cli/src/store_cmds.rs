//! Store-wide commands: init (create the store, set the tool password), set-tool-password,
//! policy (the maximum token lifetime), audit (the append-only event log) and copy-store
//! (a SQLite store moved into PostgreSQL).

use std::path::PathBuf;

use clap::Args;
use scimgate::admin::Admin;
use scimgate::store::{Location, Store};
use scimgate::time::{Clock, Duration, format_local, parse_date};
use serde_json::json;

use crate::output::{print_json, table_fit};
use crate::secrets::{new_password, tool_password};
use crate::{CliError, CliResult, Ctx, GlobalArgs};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Longest lifetime any token may get (default 2y).
    #[arg(long, value_parser = Duration::parse)]
    pub max_token_lifetime: Option<Duration>,
}

/// `init`: the one command that runs before a tool password exists. The password comes
/// from the usual sources (-t, SCIMGATE_TOOL_PASSWORD, --tool-password-file) or a prompt
/// asked twice.
pub fn init(g: &GlobalArgs, a: &InitArgs, clock: Clock, actor: String) -> CliResult {
    let password = if g.tool_password.is_some()
        || g.tool_password_file.is_some()
        || std::env::var("SCIMGATE_TOOL_PASSWORD").is_ok_and(|v| !v.is_empty())
    {
        tool_password(g)?
    } else {
        new_password(
            None,
            "--tool-password-file",
            "SCIMGATE_TOOL_PASSWORD",
            "New tool password",
            "tool password",
        )?
    };
    // Refuse a bad password before a store file is created for it.
    scimgate::password::hash(&password).map_err(|e| CliError::Usage(e.to_string()))?;
    let location = g.location()?;
    let store = Store::open_or_create(&location)?;
    let admin = Admin::new(&store, clock, actor);
    admin.init(&password)?;
    if let Some(max) = a.max_token_lifetime {
        admin.set_max_token_lifetime(max)?;
    }
    let max = admin.max_token_lifetime()?;
    // The absolute path: which directory the store went into is the point (a URL shows
    // no password).
    let db = location.shown();
    if g.json {
        print_json(&json!({
            "store": db,
            "initialised": true,
            "max_token_lifetime": max.to_string(),
        }));
    } else {
        println!("Store {db} initialised; tool password set. Tokens may live at most {max}.");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct CopyStoreArgs {
    /// The SQLite store to copy: its file (stop the server that writes to it first).
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL store to fill: a postgres:// URL of an empty database, or of an empty
    /// scimgate store.
    #[arg(long)]
    pub to: Location,
}

/// `copy-store`: every row of the SQLite store at `--from` into the empty PostgreSQL store at
/// `--to`, in one transaction, then the row counts of both compared. The tool password is
/// the source store's (and, copied with it, the target's).
pub fn copy_store(g: &GlobalArgs, a: &CopyStoreArgs, clock: Clock, actor: String) -> CliResult {
    if !matches!(a.to, Location::Postgres(_)) {
        return Err(CliError::Usage(
            "--to must be a postgres:// URL: copy-store moves a SQLite store into PostgreSQL"
                .into(),
        ));
    }
    let source = Store::open_existing(&a.from)?;
    Admin::new(&source, clock, actor).verify_tool_password(&tool_password(g)?)?;
    let target = Store::open_or_create(&a.to)?;
    let counts = source.copy_into(&target)?;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let from = Location::from(&a.from).shown();
    if g.json {
        let tables: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(t, n)| (t.to_string(), json!(n)))
            .collect();
        print_json(&json!({ "from": from, "to": a.to.shown(), "rows": total, "tables": tables }));
    } else {
        let each: Vec<String> = counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        println!(
            "Copied {total} rows from {from} into {}, each table's count checked: {}.",
            a.to.shown(),
            if each.is_empty() {
                "all empty".to_string()
            } else {
                each.join(", ")
            }
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SetToolPasswordArgs {
    /// File whose first line is the new password (else SCIMGATE_NEW_TOOL_PASSWORD, else a prompt).
    #[arg(long)]
    pub new_password_file: Option<PathBuf>,
}

pub fn set_tool_password(ctx: &Ctx, a: SetToolPasswordArgs) -> CliResult {
    let pw = new_password(
        a.new_password_file.as_deref(),
        "--new-password-file",
        "SCIMGATE_NEW_TOOL_PASSWORD",
        "New tool password",
        "new tool password",
    )?;
    ctx.admin.set_tool_password(&pw)?;
    if ctx.json {
        print_json(&json!({ "tool_password_changed": true }));
    } else {
        println!("Tool password changed.");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// Set the longest lifetime any new token may get, e.g. 1y.
    #[arg(long, value_parser = Duration::parse)]
    pub max_token_lifetime: Option<Duration>,
}

pub fn policy(ctx: &Ctx, a: PolicyArgs) -> CliResult {
    if let Some(max) = a.max_token_lifetime {
        ctx.admin.set_max_token_lifetime(max)?;
    }
    let max = ctx.admin.max_token_lifetime()?;
    if ctx.json {
        print_json(
            &json!({ "max_token_lifetime": max.to_string(), "max_token_lifetime_seconds": max.secs() }),
        );
    } else {
        println!("Maximum token lifetime: {max}");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only events since this long ago (e.g. 7d) or this date.
    #[arg(long)]
    pub since: Option<String>,
    /// Show at most this many of the newest events (default 100).
    #[arg(long, conflicts_with = "all")]
    pub limit: Option<usize>,
    /// Show every event (no limit).
    #[arg(long)]
    pub all: bool,
}

/// `--since`: a duration back from `now` (7d) or a date (2027-03-31, from the start of
/// that day) or a date and time.
pub fn parse_since(
    now: scimgate::time::Timestamp,
    s: &str,
) -> Result<scimgate::time::Timestamp, CliError> {
    let usage = || {
        CliError::Usage(format!(
            "--since `{s}` is neither a duration (7d) nor a date (2027-03-31)"
        ))
    };
    match Duration::parse(s) {
        Ok(d) => Ok(now - d.secs()),
        // A bare date means from the start of that day.
        Err(_) if s.trim().len() == 10 => {
            parse_date(&format!("{} 00:00", s.trim())).map_err(|_| usage())
        }
        Err(_) => parse_date(s).map_err(|_| usage()),
    }
}

/// How many events `config audit` shows without `--limit` or `--all`.
const AUDIT_DEFAULT_LIMIT: usize = 100;

pub fn audit(ctx: &Ctx, a: AuditArgs) -> CliResult {
    let now = ctx.admin.now();
    let since = a
        .since
        .as_deref()
        .map(|s| parse_since(now, s))
        .transpose()?;
    let limit = if a.all {
        usize::MAX
    } else {
        a.limit.unwrap_or(AUDIT_DEFAULT_LIMIT)
    };
    // One more than shown tells whether older events were left out.
    let mut events = ctx.admin.audit_events(since, limit.saturating_add(1))?;
    let more = events.len() > limit;
    if more {
        events.remove(0);
    }
    if ctx.json {
        let v: Vec<_> = events
            .iter()
            .map(|e| {
                let mut v = json!(e);
                v["at"] = json!(scimgate::time::format_rfc3339(e.at));
                v
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    if events.is_empty() {
        println!("No audit events.");
        return Ok(());
    }
    let rows = events
        .iter()
        .map(|e| {
            vec![
                format_local(e.at),
                e.actor.clone(),
                e.action.clone(),
                e.outcome.clone(),
                e.client_id.clone().unwrap_or_else(|| "-".into()),
                e.token_id.clone().unwrap_or_else(|| "-".into()),
                e.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    println!(
        "{}",
        table_fit(
            &[
                "TIME", "ACTOR", "ACTION", "OUTCOME", "CLIENT", "TOKEN", "DETAIL"
            ],
            rows,
            &["ACTOR", "TOKEN", "CLIENT"],
        )
    );
    if more {
        println!(
            "Only the newest {limit} events are shown; older ones with --limit N, --since DATE or --all."
        );
    }
    Ok(())
}
