//! Printing: aligned tables and key/value blocks for people (local times with zone and
//! relative times), pretty JSON for scripts. Nothing here sees a secret unless the
//! command is showing a freshly issued one. Tables fit the terminal (or `COLUMNS`): less
//! needed columns are left out first, then cells wrap.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use scimgate::model::{Client, TokenRecord};
use scimgate::time::{Timestamp, format_local, format_relative, format_rfc3339};
use serde_json::{Value, json};

/// The width tables must fit: `COLUMNS` when set, else the terminal's when stdout is
/// one; `None` (no limit) when piped, so scripts get whole rows.
pub fn width_limit() -> Option<usize> {
    use std::io::IsTerminal;
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c >= 20)
    {
        return Some(c);
    }
    if std::io::stdout().is_terminal() {
        terminal_size::terminal_size().map(|(w, _)| usize::from(w.0))
    } else {
        None
    }
}

/// An aligned, borderless table with a header row; wrapped to fit [`width_limit`].
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    table_fit(header, rows, &[])
}

/// Width of the table as printed without wrapping: each column's widest cell, two spaces
/// between columns.
fn natural_width(header: &[String], rows: &[Vec<String>]) -> usize {
    (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .chain(std::iter::once(&header[i]))
                .map(|c| c.lines().map(|l| l.chars().count()).max().unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .sum::<usize>()
        + 2 * header.len().saturating_sub(1)
}

/// [`table`], fitted to [`width_limit`]: first the `droppable` columns are left out, in
/// that order, while the table is too wide (a last line names them); what is still too
/// wide is wrapped within its cells.
pub fn table_fit(header: &[&str], rows: Vec<Vec<String>>, droppable: &[&str]) -> String {
    let mut header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut rows = rows;
    let limit = width_limit();
    let mut dropped = Vec::new();
    if let Some(w) = limit {
        for name in droppable {
            if natural_width(&header, &rows) <= w {
                break;
            }
            if let Some(i) = header.iter().position(|h| h == name) {
                header.remove(i);
                for r in &mut rows {
                    if i < r.len() {
                        r.remove(i);
                    }
                }
                dropped.push(*name);
            }
        }
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.clone());
    match limit {
        Some(w) if natural_width(&header, &rows) > w => {
            t.set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(u16::try_from(w + 2).unwrap_or(u16::MAX));
        }
        _ => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    for row in rows {
        // Cells can hold what a stranger sent (client ids and user names in the audit
        // log): control characters are escaped so they cannot drive the terminal.
        t.add_row(row.iter().map(|c| printable(c)).collect::<Vec<_>>());
    }
    for col in t.column_iter_mut() {
        col.set_cell_alignment(CellAlignment::Left);
        col.set_padding((0, 2));
    }
    let mut out = t
        .to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    if !dropped.is_empty() {
        let note = format!(
            "({} left out to fit {} columns; --json shows everything.)",
            dropped.join(", "),
            limit.unwrap_or_default()
        );
        out.push('\n');
        out.push_str(&wrap_words(&note, limit.unwrap_or(usize::MAX)));
    }
    out
}

/// `text` broken into lines of at most `width` characters at spaces.
fn wrap_words(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
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
