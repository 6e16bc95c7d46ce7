//! Provisioning-error digests: per client, one notification per interval naming the users
//! and groups the IdP failed to provision and why — never one per error, never a request
//! body or a secret.
//!
//! A client's errors are collected until the oldest still untold is `digest_interval` old
//! (so a provisioning run's errors arrive together), and two digests of one client are at
//! least that far apart. The digest goes to the webhook, the server's `smtp_to` and the
//! client's `--alert-email` addresses in one message; its errors are marked told only when
//! every notifier took it. A digest that failed (SMTP down, webhook refusing) leaves them
//! pending, so the next one, an interval later, carries them with the new ones; the
//! failure is logged and counted (`/metrics`). At most [`MAX_LISTED`] errors are listed,
//! then "and N more".

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::notify::{Notification, Severity};
use crate::store::{PendingErrors, ProvisioningError, Store};
use crate::sync::lock;
use crate::text::printable;
use crate::time::{Timestamp, format_local, format_rfc3339};

/// The most errors one digest lists; the rest are counted ("and N more").
pub const MAX_LISTED: usize = 50;

/// Which clients have a digest on its way, when each was last attempted, and how many
/// were delivered or failed since the server started.
#[derive(Debug, Default)]
pub struct Digests {
    in_flight: Mutex<HashSet<String>>,
    last_attempt: Mutex<HashMap<String, Timestamp>>,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
}

impl Digests {
    /// Whether `p` is due for a digest at `now` (its oldest error is `interval` old, no
    /// digest of the client was attempted within `interval`, none is on its way); if so,
    /// it is now on its way until [`Digests::finish`].
    pub fn begin(&self, p: &PendingErrors, now: Timestamp, interval: i64) -> bool {
        if now - p.oldest_at < interval {
            return false;
        }
        let mut last = lock(&self.last_attempt);
        if last.get(&p.client_id).is_some_and(|t| now - t < interval) {
            return false;
        }
        if !lock(&self.in_flight).insert(p.client_id.clone()) {
            return false;
        }
        last.insert(p.client_id.clone(), now);
        true
    }

    /// The digest of `client_id` up to row `last_id`, composed at `at`, was delivered
    /// (`ok`) or not: mark its errors told, or keep them for the next one.
    pub fn finish(&self, store: &Store, client_id: &str, last_id: i64, at: Timestamp, ok: bool) {
        if ok {
            match store.mark_provisioning_errors_notified(client_id, last_id, at) {
                Ok(_) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    // Delivered, but not marked: the next digest names them again.
                    tracing::error!(client_id, error = %e, "provisioning-error digest delivered but not recorded as such");
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else {
            tracing::error!(
                client_id,
                "provisioning-error digest not delivered; its errors are kept for the next digest"
            );
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.in_flight).remove(client_id);
    }
}

/// One line of the mail body for `e`: when, what, who, and the SCIM error.
fn line(e: &ProvisioningError) -> String {
    let who = e
        .concerned()
        .map(|s| printable(s, 96))
        .unwrap_or_else(|| "(not named)".into());
    let scim_type = e
        .scim_type
        .as_deref()
        .map(|t| format!(" {}", printable(t, 32)))
        .unwrap_or_default();
    let detail = e
        .detail
        .as_deref()
        .map(|d| format!(": {}", printable(d, 160)))
        .unwrap_or_default();
    format!(
        "{}  {} {}  {who}  {}{scim_type}{detail}",
        format_local(e.at),
        e.method,
        e.resource,
        e.status
    )
}

/// The digest of `pending` (its client named `client_name`, if it still exists), listing
/// `rows` (the first of them, at most [`MAX_LISTED`]).
pub fn compose(
    pending: &PendingErrors,
    client_name: Option<&str>,
    rows: &[ProvisioningError],
    now: Timestamp,
) -> Notification {
    let id = &pending.client_id;
    let name = client_name.unwrap_or("(deleted client)");
    let listed = rows.len().min(MAX_LISTED);
    let more = pending.count.saturating_sub(listed as u64);
    let mut lines: Vec<String> = rows[..listed].iter().map(line).collect();
    if more > 0 {
        lines.push(format!(
            "… and {more} more: `config provisioning-errors -i {id}` lists them all."
        ));
    }
    let text = format!(
        "Client {name} ({id}) could not provision {} user(s) or group(s) since {}: the IdP reports these as failed. `config provisioning-errors -i {id}` lists them.",
        pending.count,
        format_local(pending.oldest_at),
    );
    let errors: Vec<_> = rows[..listed]
        .iter()
        .map(|e| {
            json!({
                "at": format_rfc3339(e.at),
                "method": e.method,
                "resource": e.resource,
                "resource_id": e.resource_id,
                "user_name": e.user_name,
                "external_id": e.external_id,
                "display_name": e.display_name,
                "status": e.status,
                "scim_type": e.scim_type,
                "detail": e.detail,
            })
        })
        .collect();
    Notification {
        event: "provisioning_errors",
        severity: Severity::Warning,
        client_id: id.clone(),
        client_name: name.to_string(),
        token_id: None,
        text,
        at: now,
        details: json!({
            "count": pending.count,
            "since": format_rfc3339(pending.oldest_at),
            "errors": errors,
            "more": more,
        }),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(i: usize) -> ProvisioningError {
        ProvisioningError {
            client_id: "cl_a".into(),
            at: 1_000 + i as i64,
            method: "POST".into(),
            resource: "Users".into(),
            resource_id: None,
            user_name: Some(format!("user{i}@example.com")),
            external_id: None,
            display_name: None,
            status: 409,
            scim_type: Some("uniqueness".into()),
            detail: Some("userName is already taken\u{1b}[31m".into()),
            notified_at: None,
        }
    }

    fn pending(count: u64, oldest_at: Timestamp) -> PendingErrors {
        PendingErrors {
            client_id: "cl_a".into(),
            oldest_at,
            count,
            last_id: 99,
        }
    }

    #[test]
    fn a_flood_is_listed_up_to_the_cap_then_counted() {
        let rows: Vec<_> = (0..MAX_LISTED + 5).map(error).collect();
        let n = compose(&pending(180, 1_000), Some("Okta"), &rows, 5_000);
        assert_eq!(n.lines.len(), MAX_LISTED + 1);
        assert!(n.lines[0].contains("user0@example.com"), "{:?}", n.lines);
        assert!(n.lines[0].contains("409 uniqueness: userName is already taken"));
        assert!(
            !n.lines[0].contains('\u{1b}'),
            "control characters are shown escaped"
        );
        assert!(n.lines.last().unwrap().contains("and 130 more"));
        assert_eq!(n.details["errors"].as_array().unwrap().len(), MAX_LISTED);
        assert_eq!(n.details["more"], 130);
        assert!(n.text.contains("180 user(s)"), "{}", n.text);
    }

    #[test]
    fn a_small_digest_lists_everyone_and_says_no_more() {
        let rows: Vec<_> = (0..3).map(error).collect();
        let n = compose(&pending(3, 1_000), None, &rows, 5_000);
        assert_eq!(n.lines.len(), 3);
        assert_eq!(n.client_name, "(deleted client)");
        assert_eq!(n.details["more"], 0);
    }

    #[test]
    fn due_once_the_oldest_is_an_interval_old_and_not_twice_within_one() {
        let d = Digests::default();
        assert!(!d.begin(&pending(1, 1_000), 1_500, 900), "too young");
        assert!(d.begin(&pending(1, 1_000), 1_900, 900));
        assert!(!d.begin(&pending(1, 1_000), 1_950, 900), "on its way");
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        d.finish(&store, "cl_a", 99, 1_950, false);
        assert_eq!(d.failed.load(Ordering::Relaxed), 1);
        assert!(
            !d.begin(&pending(1, 1_000), 2_000, 900),
            "retried an interval after the failed attempt, not at once"
        );
        assert!(d.begin(&pending(1, 1_000), 2_800, 900));
    }
}
