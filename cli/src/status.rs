//! `config status`: each client's provisioning health — state, last heartbeat, where it
//! came from, active tokens, soonest expiry — with the exit codes monitoring checks use:
//! 0 ok, 1 warning (a client is late, or a token is inside an expiry-warning lead time),
//! 2 critical (a client is failing or missed its heartbeats). Cron or Nagios can call it
//! as is. State is computed now from what the server's monitor recorded, with the same
//! rules the server uses, so it is current even between monitor ticks.

use clap::Args;
use scimgate::model::HealthState;
use scimgate::monitor::{health, status};
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
    let now = ctx.admin.now();
    let statuses = ctx.admin.client_statuses(a.client_id.as_deref())?;
    let worst = status::worst(&statuses);
    let clients: Vec<_> = statuses.iter().map(|s| &s.client).collect();
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for st in &statuses {
        let (c, h, state) = (&st.client, st.health.as_ref(), st.state);
        let soonest = st.soonest_expiry();
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
        if let Some(t) = st.expiring.first() {
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
            st.tokens.len().to_string(),
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
            "level": level_name(st.level),
            "last_heartbeat_at": last.map(format_rfc3339),
            "last_source_ip": ip,
            "active_tokens": st.tokens.len(),
            "soonest_expiry": soonest.map(format_rfc3339),
            "expiring_tokens": st.expiring.iter().map(|t| t.id.to_string()).collect::<Vec<_>>(),
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
