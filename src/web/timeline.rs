//! The token timeline: one row per client, a bar per token from issue to expiry, a "now"
//! line, hourly heartbeat marks (green: accepted calls, red: refused ones), hourly
//! provisioning-error marks (purple: users or groups the IdP failed to provision) and each
//! client's state — everything an operator needs to see at a glance which IdP is about to
//! lose access. Plain HTML and inline SVG, no scripts, no external assets.

use std::collections::HashMap;
use std::fmt::Write;

use crate::model::{HealthState, TokenRecord, TokenStatus};
use crate::monitor::status::{ClientStatus, is_expiring};
use crate::store::Activity;
use crate::time::{Duration, Timestamp, format_local, format_relative};

use super::pages::escape;

/// The time window shown: 30 days back, 90 days ahead.
pub const PAST: i64 = 30 * 86_400;
pub const AHEAD: i64 = 90 * 86_400;

const LABEL_W: f64 = 260.0;
const PLOT_W: f64 = 900.0;
const ROW_H: f64 = 64.0;
const TOP: f64 = 40.0;

/// Everything one page shows.
pub struct Timeline<'a> {
    /// Each client's status now (`monitor::status`).
    pub statuses: &'a [ClientStatus],
    /// Every token the window shows, live or not.
    pub tokens: &'a [TokenRecord],
    pub activity: &'a [Activity],
    /// (client id, hour, provisioning errors in that hour).
    pub provisioning_errors: &'a [(String, Timestamp, u64)],
    pub leads: &'a [Duration],
    pub now: Timestamp,
    pub user: &'a str,
}

/// The colour of provisioning-error marks.
const PROVISIONING_COLOR: &str = "#8250df";

fn state_color(s: HealthState) -> &'static str {
    match s {
        HealthState::Healthy => "#1a7f37",
        HealthState::Idle => "#57606a",
        HealthState::Late => "#9a6700",
        HealthState::Missed | HealthState::Failing => "#cf222e",
    }
}

/// Render the page.
pub fn render(t: &Timeline<'_>) -> String {
    let start = t.now - PAST;
    let end = t.now + AHEAD;
    let x = |ts: Timestamp| -> f64 {
        let clamped = ts.clamp(start, end);
        LABEL_W + (clamped - start) as f64 / (end - start) as f64 * PLOT_W
    };
    let rows = t.statuses.len().max(1);
    let height = TOP + rows as f64 * ROW_H + 30.0;
    let width = LABEL_W + PLOT_W + 20.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="Token timeline">"##
    );
    // Week grid and date labels.
    let mut tick = start - start.rem_euclid(7 * 86_400);
    while tick <= end {
        if tick >= start {
            let tx = x(tick);
            let _ = write!(
                svg,
                r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{}" stroke="#d0d7de" stroke-width="1"/><text x="{tx:.1}" y="{}" font-size="10" fill="#57606a" text-anchor="middle">{}</text>"##,
                height - 30.0,
                TOP - 8.0,
                chrono::DateTime::from_timestamp(tick, 0)
                    .map(|d| d.format("%b %d").to_string())
                    .unwrap_or_default()
            );
        }
        tick += 7 * 86_400;
    }
    let by_client: HashMap<&str, Vec<&TokenRecord>> =
        t.tokens.iter().fold(HashMap::new(), |mut m, tok| {
            m.entry(tok.client_id.as_str()).or_default().push(tok);
            m
        });
    for (i, st) in t.statuses.iter().enumerate() {
        let (c, state) = (&st.client, st.state);
        let y0 = TOP + i as f64 * ROW_H;
        if i % 2 == 1 {
            let _ = write!(
                svg,
                r##"<rect x="0" y="{y0}" width="{width}" height="{ROW_H}" fill="#f6f8fa"/>"##
            );
        }
        let _ = write!(
            svg,
            r##"<text x="8" y="{}" font-size="13" font-weight="600" fill="#1f2328">{}</text><text x="8" y="{}" font-size="11" fill="#57606a">{} · {}</text><text x="8" y="{}" font-size="11" font-weight="600" fill="{}">{}</text>"##,
            y0 + 18.0,
            escape(&c.name),
            y0 + 34.0,
            escape(c.idp.kind.as_str()),
            escape(&c.id),
            y0 + 50.0,
            state_color(state),
            state.as_str().to_uppercase()
        );
        let mut tokens = by_client.get(c.id.as_str()).cloned().unwrap_or_default();
        tokens.sort_by_key(|tok| tok.issued_at);
        let lane_h = if tokens.is_empty() {
            0.0
        } else {
            ((ROW_H - 26.0) / tokens.len().min(4) as f64).min(16.0)
        };
        for (k, tok) in tokens.iter().take(4).enumerate() {
            let status = tok.status(t.now);
            let warn = status == TokenStatus::Active && is_expiring(tok, t.leads, t.now);
            let (fill, label) = match status {
                TokenStatus::Revoked => ("#cf222e", "revoked"),
                TokenStatus::Expired => ("#8c959f", "expired"),
                TokenStatus::Active if warn => ("#bf8700", "expiring"),
                TokenStatus::Active => ("#2da44e", "active"),
            };
            let end_at = tok.revoked_at.unwrap_or(tok.expires_at);
            let (x1, x2) = (x(tok.issued_at), x(end_at));
            let by = y0 + 6.0 + k as f64 * lane_h;
            let bh = (lane_h - 3.0).max(4.0);
            let _ = write!(
                svg,
                r##"<rect x="{x1:.1}" y="{by:.1}" width="{:.1}" height="{bh:.1}" rx="2" fill="{fill}" opacity="0.85"><title>{} ({label}) — issued {}, {} {}</title></rect>"##,
                (x2 - x1).max(2.0),
                escape(tok.id.as_str()),
                escape(&format_local(tok.issued_at)),
                if status == TokenStatus::Revoked {
                    "revoked"
                } else {
                    "expires"
                },
                escape(&format!(
                    "{} ({})",
                    format_local(end_at),
                    format_relative(end_at, t.now)
                ))
            );
            if x2 - x1 > 170.0 {
                let _ = write!(
                    svg,
                    r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#ffffff">{} · {label}</text>"##,
                    x1 + 4.0,
                    by + bh / 2.0 + 3.5,
                    escape(tok.id.as_str())
                );
            }
        }
        // Heartbeat marks along the bottom of the row.
        let base = y0 + ROW_H - 10.0;
        for a in t
            .activity
            .iter()
            .filter(|a| a.client_id == c.id && a.hour >= start)
        {
            let ax = x(a.hour);
            if a.ok > 0 {
                let _ = write!(
                    svg,
                    r##"<rect x="{ax:.1}" y="{:.1}" width="2" height="8" fill="#1a7f37"><title>{} accepted call(s) in the hour from {}</title></rect>"##,
                    base - 8.0,
                    a.ok,
                    escape(&format_local(a.hour))
                );
            }
            if a.failed > 0 {
                let _ = write!(
                    svg,
                    r##"<rect x="{ax:.1}" y="{:.1}" width="3" height="10" fill="#cf222e"><title>{} refused call(s) in the hour from {}</title></rect>"##,
                    base - 10.0,
                    a.failed,
                    escape(&format_local(a.hour))
                );
            }
        }
        // Provisioning errors: a purple mark above the heartbeat marks, per hour.
        for (_, hour, n) in t
            .provisioning_errors
            .iter()
            .filter(|(id, hour, _)| *id == c.id && *hour >= start)
        {
            let px = x(*hour);
            let _ = write!(
                svg,
                r##"<path class="provisioning-error" d="M{px:.1} {:.1} l4 -7 l4 7 z" fill="{PROVISIONING_COLOR}"><title>{n} provisioning error(s) in the hour from {} — `config provisioning-errors -i {}`</title></path>"##,
                base - 12.0,
                escape(&format_local(*hour)),
                escape(&c.id)
            );
        }
    }
    let nx = x(t.now);
    let _ = write!(
        svg,
        r##"<line x1="{nx:.1}" y1="{}" x2="{nx:.1}" y2="{}" stroke="#0969da" stroke-width="2"/><text x="{nx:.1}" y="{}" font-size="11" font-weight="600" fill="#0969da" text-anchor="middle">now</text></svg>"##,
        TOP - 4.0,
        height - 24.0,
        height - 10.0
    );

    let mut rows_html = String::new();
    for st in t.statuses {
        let (c, h, state) = (&st.client, st.health.as_ref(), st.state);
        let _ = write!(
            rows_html,
            "<tr><td>{}</td><td>{}</td><td style=\"color:{}\"><b>{}</b></td><td>{}</td><td>{}</td></tr>",
            escape(&c.name),
            escape(c.idp.kind.as_str()),
            state_color(state),
            state.as_str(),
            h.and_then(|h| h.last_success_at)
                .map(|s| escape(&format_relative(s, t.now)))
                .unwrap_or_else(|| "never".into()),
            escape(h.and_then(|h| h.last_success_ip.as_deref()).unwrap_or("-"))
        );
    }
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scimgate — token timeline</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} p.sub {{ color: #57606a; margin: 0 0 16px; }}
.legend span {{ display: inline-block; margin-right: 16px; font-size: 12px; }}
.legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; border-radius: 2px; }}
table {{ border-collapse: collapse; margin-top: 16px; font-size: 13px; }}
td, th {{ padding: 4px 12px; border-bottom: 1px solid #d0d7de; text-align: left; }}
</style></head>
<body>
<h1>Token timeline</h1>
<p class="sub">Signed in as {user} · {now} · 30 days back, 90 days ahead · <a href="/ui/logout">sign out</a></p>
<div class="legend"><span><i style="background:#2da44e"></i>active token</span><span><i style="background:#bf8700"></i>inside an expiry warning</span><span><i style="background:#8c959f"></i>expired</span><span><i style="background:#cf222e"></i>revoked / refused calls</span><span><i style="background:#1a7f37;width:3px"></i>accepted calls (per hour)</span><span><i style="background:{PROVISIONING_COLOR}"></i>provisioning errors (per hour)</span><span><i style="background:#0969da;width:3px"></i>now</span></div>
{svg}
<table><tr><th>Client</th><th>IdP</th><th>State</th><th>Last heartbeat</th><th>From</th></tr>{rows_html}</table>
</body></html>"##,
        user = escape(t.user),
        now = escape(&format_local(t.now)),
    )
}
