//! Expiry warnings: each live token (and each expiring client secret) is warned about once
//! per lead time (default 30 d, 7 d, 1 d). A lead applies only to credentials that lived
//! longer than it — a one-hour OAuth access token is never "7 days from expiry" — and when
//! a credential is already inside several leads (issued for five days: inside 7 d), only the
//! tightest is sent and the others are recorded as passed.

use crate::time::{Duration, Timestamp};

/// The lead times (seconds, tightest first) that apply to a credential that lives
/// `lifetime` seconds and has `remaining` seconds left.
pub fn applicable(lifetime: i64, remaining: i64, leads: &[Duration]) -> Vec<i64> {
    let mut out: Vec<i64> = leads
        .iter()
        .map(|l| l.secs())
        .filter(|&l| remaining > 0 && remaining <= l && lifetime > l)
        .collect();
    out.sort_unstable();
    out
}

/// The subject key of a client secret's warnings (a rotated secret is a new subject).
pub fn secret_subject(client_id: &str, expires_at: Timestamp) -> String {
    format!("secret:{client_id}:{expires_at}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leads() -> Vec<Duration> {
        vec![Duration::days(30), Duration::days(7), Duration::days(1)]
    }

    #[test]
    fn leads_apply_to_long_lived_credentials_only() {
        let day = 86_400;
        assert!(applicable(730 * day, 40 * day, &leads()).is_empty());
        assert_eq!(applicable(730 * day, 30 * day, &leads()), vec![30 * day]);
        assert_eq!(
            applicable(730 * day, 6 * day, &leads()),
            vec![7 * day, 30 * day]
        );
        assert_eq!(
            applicable(5 * day, 4 * day, &leads()),
            vec![7 * day]
                .into_iter()
                .filter(|_| false)
                .collect::<Vec<i64>>()
        );
        assert_eq!(applicable(10 * day, 6 * day, &leads()), vec![7 * day]);
        assert_eq!(applicable(10 * day, day / 2, &leads()), vec![day, 7 * day]);
        assert!(
            applicable(3600, 60, &leads()).is_empty(),
            "OAuth access tokens are not warned about"
        );
        assert!(
            applicable(730 * day, 0, &leads()).is_empty(),
            "an expired token is past warning"
        );
    }
}
