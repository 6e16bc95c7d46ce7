//! `config status`: each client's provisioning health — state, last heartbeat, where it
//! came from, active tokens, soonest expiry — with the exit codes monitoring checks use:
//! 0 ok, 1 warning (a client is late, or a token is inside an expiry-warning lead time),
//! 2 critical (a client is failing or missed its heartbeats). Cron or Nagios can call it
//! as is. State is computed now from what the server's monitor recorded, with the same
//! rules the server uses, so it is current even between monitor ticks.

use clap::Args;
use scimgate::model::HealthState;
use scimgate::monitor::{expiry, health, published_leads};
use scimgate::store::TokenFilter;
use scimgate::time::{format_local, format_relative, format_rfc3339};
use serde_json::json;

use crate::output::{print_json, table_fit};
use crate::{CliError, Ctx};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Only this client.
    #[arg(short = 'i', long = "client-id")]
    pub client_id: Option<String>,
}

fn level_name(level: u8) -> &'static str {
    match level {
        0 => "ok",
        1 => "warning",
        _ => "critical",
    }
}

/// Print the status and return the exit code.
pub fn status(ctx: &Ctx, a: StatusArgs) -> Result<u8, CliError> {
    let store = ctx.admin.store;
    let now = ctx.admin.now();
    let mut clients = store.list_clients()?;
    if let Some(id) = &a.client_id {
        clients.retain(|c| &c.id == id);
        if clients.is_empty() {
            return Err(CliError::Admin(scimgate::admin::AdminError::NotFound(
                format!("no API client with id {id} exists"),
            )));
        }
    }
    let healths = store.client_health()?;
    let leads = published_leads(store)?;
    let tokens = store.list_tokens(&TokenFilter::default(), now)?;
    let mut worst = 0u8;
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for c in &clients {
        let h = healths.iter().find(|h| h.client_id == c.id);
        let state = health::evaluate(c, h, now);
        let mine: Vec<_> = tokens.iter().filter(|t| t.client_id == c.id).collect();
        let soonest = mine.iter().map(|t| t.expires_at).min();
        let expiring: Vec<_> = mine
            .iter()
            .filter(|t| {
                !expiry::applicable(t.expires_at - t.issued_at, t.expires_at - now, &leads)
                    .is_empty()
            })
            .collect();
        let mut level = health::severity(state);
        if !expiring.is_empty() {
            level = level.max(1);
        }
        worst = worst.max(level);
        let last = h.and_then(|h| h.last_success_at);
        let ip = h.and_then(|h| h.last_success_ip.clone());
        let mut note = match state {
            HealthState::Failing => h.map(health::failure_note).unwrap_or_default(),
            HealthState::Missed | HealthState::Late => c
                .heartbeat
                .map(|hb| format!("expected every {}", hb.interval))
                .unwrap_or_default(),
            _ => String::new(),
        };
        if let Some(t) = expiring.first() {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!(
                "{} expires {}",
                t.id,
                format_relative(t.expires_at, now)
            ));
        }
        rows.push(vec![
            c.id.clone(),
            c.name.clone(),
            c.idp.kind.to_string(),
            state.as_str().to_string(),
            last.map(|t| format_relative(t, now))
                .unwrap_or_else(|| "never".into()),
            ip.clone().unwrap_or_else(|| "-".into()),
            mine.len().to_string(),
            soonest
                .map(|t| format!("{} ({})", format_local(t), format_relative(t, now)))
                .unwrap_or_else(|| "-".into()),
            note.clone(),
        ]);
        out.push(json!({
            "client_id": c.id,
            "name": c.name,
            "idp": c.idp.kind,
            "state": state.as_str(),
            "level": level_name(level),
            "last_heartbeat_at": last.map(format_rfc3339),
            "last_source_ip": ip,
            "active_tokens": mine.len(),
            "soonest_expiry": soonest.map(format_rfc3339),
            "expiring_tokens": expiring.iter().map(|t| t.id.to_string()).collect::<Vec<_>>(),
            "heartbeat_interval": c.heartbeat.map(|hb| hb.interval.to_string()),
            "note": note,
        }));
    }
    if ctx.json {
        print_json(&json!({ "status": level_name(worst), "clients": out }));
    } else if clients.is_empty() {
        println!("No API clients are registered.");
    } else {
        println!(
            "{}",
            table_fit(
                &[
                    "CLIENT ID",
                    "NAME",
                    "IDP",
                    "STATE",
                    "LAST HEARTBEAT",
                    "SOURCE",
                    "ACTIVE TOKENS",
                    "SOONEST EXPIRY",
                    "NOTE"
                ],
                rows,
                &["IDP", "SOURCE", "ACTIVE TOKENS", "NAME", "SOONEST EXPIRY"],
            )
        );
        println!("Status: {}", level_name(worst).to_uppercase());
    }
    Ok(worst)
}
