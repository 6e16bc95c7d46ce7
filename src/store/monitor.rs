//! The monitor's tables: `client_health` (each client's last success, last failure and
//! health state), `client_activity` (hourly counts for the timeline) and
//! `expiry_warnings` (which warnings were sent, so none repeats after a restart).

use rusqlite::{OptionalExtension, Row, params};

use super::{Result, Store, audit, on_postgres};
use crate::model::{ClientHealth, HealthState, NewAuditEvent};
use crate::time::Timestamp;

pub(super) const COLUMNS: &str = "client_id, state, state_since, last_success_at, last_success_ip, \
    last_failure_at, last_failure_status, last_failure_reason, last_token_id";

fn row_to_health(r: &Row<'_>) -> rusqlite::Result<ClientHealth> {
    let state: String = r.get(1)?;
    Ok(ClientHealth {
        client_id: r.get(0)?,
        state: HealthState::from_name(&state).unwrap_or(HealthState::Idle),
        state_since: r.get(2)?,
        last_success_at: r.get(3)?,
        last_success_ip: r.get(4)?,
        last_failure_at: r.get(5)?,
        last_failure_status: r
            .get::<_, Option<i64>>(6)?
            .and_then(|s| u16::try_from(s).ok()),
        last_failure_reason: r.get(7)?,
        last_token_id: r.get(8)?,
    })
}

/// Hourly activity of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub client_id: String,
    pub hour: Timestamp,
    pub ok: i64,
    pub failed: i64,
}

/// The `DO UPDATE SET` terms (SQLite and PostgreSQL alike) that merge a client's stored
/// heartbeats with the ones being written: each of the last success (time and address)
/// and the last failure (time, status, reason) is the later one, and the last token is
/// the one of the later call.
pub(crate) const HEARTBEAT_MERGE: &str = "\
    last_success_ip = CASE WHEN excluded.last_success_at IS NOT NULL AND \
    (client_health.last_success_at IS NULL OR excluded.last_success_at >= client_health.last_success_at) \
    THEN excluded.last_success_ip ELSE client_health.last_success_ip END, \
    last_token_id = CASE WHEN (excluded.last_success_at IS NOT NULL AND \
    (client_health.last_success_at IS NULL OR excluded.last_success_at >= client_health.last_success_at)) \
    OR (excluded.last_failure_at IS NOT NULL AND \
    (client_health.last_failure_at IS NULL OR excluded.last_failure_at >= client_health.last_failure_at)) \
    THEN excluded.last_token_id ELSE client_health.last_token_id END, \
    last_failure_status = CASE WHEN excluded.last_failure_at IS NOT NULL AND \
    (client_health.last_failure_at IS NULL OR excluded.last_failure_at >= client_health.last_failure_at) \
    THEN excluded.last_failure_status ELSE client_health.last_failure_status END, \
    last_failure_reason = CASE WHEN excluded.last_failure_at IS NOT NULL AND \
    (client_health.last_failure_at IS NULL OR excluded.last_failure_at >= client_health.last_failure_at) \
    THEN excluded.last_failure_reason ELSE client_health.last_failure_reason END, \
    last_success_at = CASE WHEN excluded.last_success_at IS NOT NULL AND \
    (client_health.last_success_at IS NULL OR excluded.last_success_at >= client_health.last_success_at) \
    THEN excluded.last_success_at ELSE client_health.last_success_at END, \
    last_failure_at = CASE WHEN excluded.last_failure_at IS NOT NULL AND \
    (client_health.last_failure_at IS NULL OR excluded.last_failure_at >= client_health.last_failure_at) \
    THEN excluded.last_failure_at ELSE client_health.last_failure_at END";

impl Store {
    /// Every client's recorded health.
    pub fn client_health(&self) -> Result<Vec<ClientHealth>> {
        on_postgres!(self, pg => pg.client_health());
        self.read(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM client_health"))?;
            let rows = stmt.query_map([], row_to_health)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// One client's recorded health.
    pub fn client_health_of(&self, client_id: &str) -> Result<Option<ClientHealth>> {
        on_postgres!(self, pg => pg.client_health_of(client_id));
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM client_health WHERE client_id = ?1"),
                [client_id],
                row_to_health,
            )
            .optional()?)
        })
    }

    /// Write the monitor's view of clients and the hourly counts in one transaction, with
    /// an audit event for each state change.
    ///
    /// Several instances write here (each the heartbeats it saw), so a row is merged, not
    /// replaced: the last success and the last failure are each the later of the stored
    /// one and this one ([`HEARTBEAT_MERGE`]), and the hourly counts add up. The state and
    /// its start are written only with `states` (the instance holding the monitor lease,
    /// which decides them); a new row takes this one's.
    pub fn save_monitor_state(
        &self,
        health: &[ClientHealth],
        activity: &[Activity],
        transitions: &[NewAuditEvent],
        states: bool,
        now: Timestamp,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.save_monitor_state(health, activity, transitions, states, now));
        self.write(|tx| {
            let mut upsert = tx.prepare_cached(&format!(
                "INSERT INTO client_health ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT(client_id) DO UPDATE SET {HEARTBEAT_MERGE}, \
                 state = CASE WHEN ?10 THEN excluded.state ELSE client_health.state END, \
                 state_since = CASE WHEN ?10 THEN excluded.state_since \
                 ELSE client_health.state_since END"
            ))?;
            for h in health {
                upsert.execute(params![
                    h.client_id,
                    h.state.as_str(),
                    h.state_since,
                    h.last_success_at,
                    h.last_success_ip,
                    h.last_failure_at,
                    h.last_failure_status,
                    h.last_failure_reason,
                    h.last_token_id,
                    states,
                ])?;
            }
            let mut add = tx.prepare_cached(
                "INSERT INTO client_activity (client_id, hour, ok, failed) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(client_id, hour) DO UPDATE SET ok = ok + excluded.ok, \
                 failed = failed + excluded.failed",
            )?;
            for a in activity {
                add.execute(params![a.client_id, a.hour, a.ok, a.failed])?;
            }
            for e in transitions {
                audit::append(tx, e, now)?;
            }
            Ok(())
        })
    }

    /// Hourly activity since `since`, by client and hour.
    pub fn client_activity(&self, since: Timestamp) -> Result<Vec<Activity>> {
        on_postgres!(self, pg => pg.client_activity(since));
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT client_id, hour, ok, failed FROM client_activity WHERE hour >= ?1 \
                 ORDER BY client_id, hour",
            )?;
            let rows = stmt.query_map([since], |r| {
                Ok(Activity {
                    client_id: r.get(0)?,
                    hour: r.get(1)?,
                    ok: r.get(2)?,
                    failed: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Whether the warning `lead` for `subject` was already sent.
    pub fn warning_fired(&self, subject: &str, lead: i64) -> Result<bool> {
        on_postgres!(self, pg => pg.warning_fired(subject, lead));
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM expiry_warnings WHERE subject = ?1 AND lead = ?2)",
            )?
            .query_row(params![subject, lead], |r| r.get(0))?)
        })
    }

    /// Record warnings as sent (one for each lead), with the audit event, in one
    /// transaction. Returns false if the first lead was already recorded (someone else
    /// sent it), so a warning is sent at most once.
    pub fn record_warning(
        &self,
        subject: &str,
        leads: &[i64],
        now: Timestamp,
        audit_event: &NewAuditEvent,
    ) -> Result<bool> {
        on_postgres!(self, pg => pg.record_warning(subject, leads, now, audit_event));
        self.write(|tx| {
            let mut fresh = false;
            for (i, lead) in leads.iter().enumerate() {
                let n = tx.execute(
                    "INSERT OR IGNORE INTO expiry_warnings (subject, lead, fired_at) \
                     VALUES (?1, ?2, ?3)",
                    params![subject, lead, now],
                )?;
                if i == 0 {
                    fresh = n == 1;
                }
            }
            if fresh {
                audit::append(tx, audit_event, now)?;
            }
            Ok(fresh)
        })
    }
}
