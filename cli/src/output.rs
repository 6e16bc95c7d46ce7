//! Printing: aligned tables and key/value blocks for people (local times with zone and
//! relative times), pretty JSON for scripts. Nothing here sees a secret unless the
//! command is showing a freshly issued one.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use scimgate::model::{Client, TokenRecord};
use scimgate::time::{Timestamp, format_local, format_relative, format_rfc3339};
use serde_json::{Value, json};

/// An aligned, borderless table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_string()));
    for row in rows {
        // Cells can hold what a stranger sent (client ids and user names in the audit
        // log): control characters are escaped so they cannot drive the terminal.
        t.add_row(row.iter().map(|c| printable(c)).collect::<Vec<_>>());
    }
    for col in t.column_iter_mut() {
        col.set_cell_alignment(CellAlignment::Left);
        col.set_padding((0, 2));
    }
    t.to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `key: value` lines with the values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$} {}", format!("{k}:"), printable(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `s` with control characters escaped (no length cap: tables show what is stored).
fn printable(s: &str) -> String {
    if scimgate::text::is_printable(s) {
        s.to_string()
    } else {
        scimgate::text::printable(s, usize::MAX)
    }
}

/// `2027-11-21 11:56:39 +01:00 (in 12 days)`.
pub fn when(ts: Timestamp, now: Timestamp) -> String {
    format!("{} ({})", format_local(ts), format_relative(ts, now))
}

/// Short form of a token's or client's scopes for tables: `read,write`.
pub fn short_scopes(scopes: &[scimgate::model::Scope]) -> String {
    scopes
        .iter()
        .map(|s| match s {
            scimgate::model::Scope::DirectoryRead => "read",
            scimgate::model::Scope::DirectoryWrite => "write",
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A token record as JSON, with computed status and RFC 3339 times.
pub fn token_json(t: &TokenRecord, now: Timestamp) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("status".into(), json!(t.status(now).as_str()));
        for key in ["issued_at", "expires_at", "revoked_at", "last_used_at"] {
            if let Some(Value::Number(n)) = m.get(key) {
                if let Some(ts) = n.as_i64() {
                    m.insert(key.into(), json!(format_rfc3339(ts)));
                }
            }
        }
        m.insert("expires_in_seconds".into(), json!(t.expires_at - now));
    }
    v
}

/// A client as JSON, with RFC 3339 times.
pub fn client_json(c: &Client) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for key in [
            "created_at",
            "updated_at",
            "secret_expires_at",
            "disabled_at",
        ] {
            if let Some(Value::Number(n)) = m.get(key) {
                if let Some(ts) = n.as_i64() {
                    m.insert(key.into(), json!(format_rfc3339(ts)));
                }
            }
        }
    }
    v
}

/// Print `v` as pretty JSON.
pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into())
    );
}
