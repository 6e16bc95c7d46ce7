//! Time: the injectable clock, human durations (`30s`, `15m`, `12h`, `90d`, `2y`) and the
//! relative phrases operators read ("in 12 days", "3 hours ago").
//!
//! Everything that decides by time (expiry, warnings, heartbeats) asks a [`Clock`] rather
//! than the system, so tests can tell a two-year token's whole life in a second.
//! Timestamps are Unix seconds (UTC), the form the store keeps.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

/// Unix seconds, UTC.
pub type Timestamp = i64;

/// A source of "now". Cloneable and cheap; the system clock by default.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

/// `t` in whole Unix seconds, rounded down (as chrono's `timestamp()`), read straight off
/// the system time: `Utc::now().timestamp()` built a calendar date and took it apart again,
/// twice a SCIM request (the guard's expiry check and the monitor's event).
fn unix_seconds(t: std::time::SystemTime) -> Timestamp {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let before = e.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            -secs - i64::from(before.subsec_nanos() > 0)
        }
    }
}

impl Clock {
    /// The real system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands still at `start` until the test moves it.
    pub fn manual(start: Timestamp) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start))),
        }
    }

    /// Now, in Unix seconds.
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => unix_seconds(std::time::SystemTime::now()),
        }
    }

    /// Move a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            t.fetch_add(by.secs(), Ordering::SeqCst);
        }
    }

    /// Set a manual clock (no effect on the system clock).
    pub fn set(&self, to: Timestamp) {
        if let Some(t) = &self.manual {
            t.store(to, Ordering::SeqCst);
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            Some(t) => write!(f, "Clock::manual({})", t.load(Ordering::SeqCst)),
            None => f.write_str("Clock::system"),
        }
    }
}

/// A positive span of whole seconds, written as `<number><unit>` with unit `s`, `m`, `h`,
/// `d`, `w` or `y` (365 days). Several parts may be joined: `1d12h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(i64);

/// Why a duration or date did not parse; the message is one sentence for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeParseError {
    #[error("`{0}` is not a duration; write a number and a unit, e.g. 30s, 15m, 12h, 90d or 2y")]
    BadDuration(String),
    #[error("`{0}` is not a positive duration")]
    NotPositive(String),
    #[error(
        "`{0}` is not a date; write e.g. 2027-03-31, \"2027-03-31 17:00\" or 2027-03-31T17:00:00+01:00"
    )]
    BadDate(String),
}

impl Duration {
    pub const fn seconds(s: i64) -> Duration {
        Duration(s)
    }
    pub const fn minutes(m: i64) -> Duration {
        Duration(m * 60)
    }
    pub const fn hours(h: i64) -> Duration {
        Duration(h * 3600)
    }
    pub const fn days(d: i64) -> Duration {
        Duration(d * 86_400)
    }
    pub const fn secs(self) -> i64 {
        self.0
    }

    /// Parse `30s`, `15m`, `12h`, `90d`, `2w`, `2y`, or combinations such as `1d12h`.
    pub fn parse(input: &str) -> Result<Duration, TimeParseError> {
        let s = input.trim();
        let bad = || TimeParseError::BadDuration(input.to_string());
        if s.is_empty() {
            return Err(bad());
        }
        let mut total: i64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
            let unit = rest[digits..].chars().next().ok_or_else(bad)?;
            let mult = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                'y' => 365 * 86_400,
                _ => return Err(bad()),
            };
            total = n
                .checked_mul(mult)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            rest = &rest[digits + unit.len_utf8()..];
        }
        if total <= 0 {
            return Err(TimeParseError::NotPositive(input.to_string()));
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// The shortest exact form: `2y`, `90d`, `12h`, `1d12h`, `45s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("y", 365 * 86_400),
            ("d", 86_400),
            ("h", 3600),
            ("m", 60),
            ("s", 1),
        ] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Duration {
    type Err = TimeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

/// Parse an absolute date an operator typed: RFC 3339, or a local `YYYY-MM-DD[ HH:MM[:SS]]`
/// (a bare date means the end of that day, local time).
pub fn parse_date(input: &str) -> Result<Timestamp, TimeParseError> {
    let s = input.trim();
    let bad = || TimeParseError::BadDate(input.to_string());
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.timestamp());
    }
    let local = |naive: NaiveDateTime| {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|dt| dt.timestamp())
            .ok_or_else(bad)
    };
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return local(naive);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(date.and_hms_opt(23, 59, 59).ok_or_else(bad)?);
    }
    Err(bad())
}

/// Parses an RFC 3339 `date-time` as SCIM's `dateTime` (RFC 7643 §2.3.5, an `xsd:dateTime`)
/// takes it: `2011-05-13T04:42:34Z`, `2011-05-13t04:42:34.123+02:00`. Returns milliseconds
/// since the Unix epoch (UTC), the fraction rounded to the millisecond and capped at .999 (as
/// SQLite's `julianday()` does); `None` if malformed. The one RFC 3339 parser of SCIM values:
/// the write paths, the filter and its SQL translation all ask it.
///
/// chrono's parser, with two things it allows refused: a space for the `T` (RFC 3339's note
/// in §5.6, not `xsd:dateTime`), and a leap second `:60` (`xsd:dateTime` seconds run 00–59).
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    let dt = DateTime::parse_from_rfc3339(text).ok()?;
    let nanos = dt.nanosecond();
    if nanos >= 1_000_000_000 || dt.offset().local_minus_utc().abs() >= 24 * 3600 {
        return None;
    }
    let millis = (f64::from(nanos) / 1e6).round().min(999.0) as i64;
    dt.timestamp().checked_mul(1000)?.checked_add(millis)
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.sssZ` (the form the SQL
/// translator compares with `julianday()`); `None` out of chrono's range.
pub fn format_rfc3339_millis(millis: i64) -> Option<String> {
    let dt = DateTime::<Utc>::from_timestamp_millis(millis)?;
    Some(dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A timestamp in local time with its zone, e.g. `2027-11-21 11:56:39 CET`.
pub fn format_local(ts: Timestamp) -> String {
    match Local.timestamp_opt(ts, 0).single() {
        Some(dt) => {
            // chrono's %Z prints an offset for Local; show the offset as the zone name.
            let zone = dt.format("%:z").to_string();
            let zone = if zone == "+00:00" {
                "UTC".to_string()
            } else {
                zone
            };
            format!("{} {zone}", dt.format("%Y-%m-%d %H:%M:%S"))
        }
        None => ts.to_string(),
    }
}

/// A timestamp as RFC 3339 in UTC (`2027-11-21T10:56:39Z`), for JSON and SCIM.
pub fn format_rfc3339(ts: Timestamp) -> String {
    match Utc.timestamp_opt(ts, 0).single() {
        Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => ts.to_string(),
    }
}

/// "in 12 days", "3 hours ago", "now": the distance from `now` to `ts`, to the largest
/// sensible unit.
pub fn format_relative(ts: Timestamp, now: Timestamp) -> String {
    let delta = ts - now;
    let abs = delta.unsigned_abs() as i64;
    if abs < 5 {
        return "now".to_string();
    }
    // Rounded to the nearest unit: a token issued for 10 days reads "in 10 days" a second
    // later, not "in 9 days".
    let round = |unit: i64| (abs + unit / 2) / unit;
    let (n, unit) = if abs < 90 {
        (abs, "second")
    } else if abs < 90 * 60 {
        (round(60), "minute")
    } else if abs < 36 * 3600 {
        (round(3600), "hour")
    } else if abs < 2 * 365 * 86_400 - 43_200 {
        (round(86_400), "day")
    } else {
        (round(365 * 86_400), "year")
    };
    let plural = if n == 1 { "" } else { "s" };
    if delta > 0 {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole seconds read off the system time are chrono's, on both sides of the epoch.
    #[test]
    fn unix_seconds_are_chronos_timestamp() {
        use std::time::{Duration as Std, SystemTime, UNIX_EPOCH};
        let now = SystemTime::now();
        assert_eq!(unix_seconds(now), DateTime::<Utc>::from(now).timestamp());
        for (after, nanos) in [(0, 0), (1, 0), (1_796_418_178, 999_999_999), (5, 1)] {
            let t = UNIX_EPOCH + Std::new(after, nanos);
            assert_eq!(
                unix_seconds(t),
                DateTime::<Utc>::from(t).timestamp(),
                "+{after}.{nanos}"
            );
            let t = UNIX_EPOCH - Std::new(after, nanos);
            assert_eq!(
                unix_seconds(t),
                DateTime::<Utc>::from(t).timestamp(),
                "-{after}.{nanos}"
            );
        }
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(Duration::parse("30s"), Ok(Duration::seconds(30)));
        assert_eq!(Duration::parse("15m"), Ok(Duration::minutes(15)));
        assert_eq!(Duration::parse("12h"), Ok(Duration::hours(12)));
        assert_eq!(Duration::parse("90d"), Ok(Duration::days(90)));
        assert_eq!(Duration::parse("2w"), Ok(Duration::days(14)));
        assert_eq!(Duration::parse("2y"), Ok(Duration::days(730)));
        assert_eq!(Duration::parse("1d12h"), Ok(Duration::hours(36)));
    }

    #[test]
    fn bad_durations_are_rejected_with_a_reason() {
        for bad in [
            "",
            "12",
            "h",
            "5x",
            "-5d",
            "1.5d",
            "d5",
            "99999999999999999999y",
        ] {
            assert!(
                matches!(Duration::parse(bad), Err(TimeParseError::BadDuration(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Duration::parse("0d"),
            Err(TimeParseError::NotPositive("0d".into()))
        );
    }

    #[test]
    fn durations_display_round_trip() {
        for s in ["2y", "90d", "12h", "15m", "30s", "1d12h"] {
            assert_eq!(Duration::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn relative_phrases() {
        assert_eq!(format_relative(100, 100), "now");
        assert_eq!(format_relative(100 + 12 * 86_400, 100), "in 12 days");
        assert_eq!(format_relative(100, 100 + 3 * 3600), "3 hours ago");
        assert_eq!(format_relative(100 + 60, 100), "in 60 seconds");
        assert_eq!(format_relative(100 + 3600, 100), "in 60 minutes");
        assert_eq!(format_relative(100 + 3 * 365 * 86_400, 100), "in 3 years");
        assert_eq!(format_relative(100 + 10 * 86_400 - 1, 100), "in 10 days");
        assert_eq!(format_relative(100 + 730 * 86_400 - 1, 100), "in 2 years");
    }

    #[test]
    fn dates_parse() {
        assert_eq!(parse_date("2027-01-01T00:00:00Z"), Ok(1_798_761_600));
        assert!(parse_date("2027-01-01").is_ok());
        assert!(parse_date("2027-01-01 10:00").is_ok());
        assert!(matches!(
            parse_date("next tuesday"),
            Err(TimeParseError::BadDate(_))
        ));
    }

    #[test]
    fn rfc3339_millis() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_rfc3339_millis("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_millis("1969-12-31T19:00:00-05:00"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2000-03-01t00:00:00z"),
            Some(951_868_800_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2011-05-13T04:42:34.9999Z"),
            parse_rfc3339_millis("2011-05-13T04:42:34.999Z")
        );
        for good in [
            "2008-01-23T04:56:22Z",
            "2011-05-13T04:42:34.123456Z",
            "2011-05-13T04:42:34.5-07:30",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
        ] {
            assert!(parse_rfc3339_millis(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "2016-12-31T23:59:60Z",
            "2008-01-23",
            "2008-01-23T04:56:22",
            "2008-01-23 04:56:22Z",
            "2008-13-23T04:56:22Z",
            "2008-00-23T04:56:22Z",
            "2023-02-29T00:00:00Z",
            "2011-02-29T04:42:34Z",
            "1900-02-29T00:00:00Z",
            "2008-04-31T04:56:22Z",
            "2008-01-23T24:00:00Z",
            "2008-01-23T04:60:22Z",
            "2008-01-23T04:56:61Z",
            "2008-01-23T04:56:22.Z",
            "2008-01-23T04:56:22+0200",
            "2008-01-23T04:56:22+24:00",
            "2008-01-23T04:56:22Zjunk",
            "2008-01-23T04:56:22+02:00x",
            "2008-01-23T04:56:2éZ",
            "２００8-01-23T04:56:22Z",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
        for text in [
            "1970-01-01T00:00:00.000Z",
            "2000-02-29T23:59:59.999Z",
            "1969-12-31T23:59:59.500Z",
            "2400-12-31T00:00:00.001Z",
        ] {
            assert_eq!(
                parse_rfc3339_millis(text)
                    .and_then(format_rfc3339_millis)
                    .as_deref(),
                Some(text)
            );
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1000);
        assert_eq!(c.now(), 1000);
        c.advance(Duration::days(1));
        assert_eq!(c.now(), 1000 + 86_400);
        let c2 = c.clone();
        c2.set(5);
        assert_eq!(c.now(), 5);
    }
}
