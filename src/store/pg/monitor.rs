//! PostgreSQL bodies of `store::monitor` and `store::provisioning`: each client's health and
//! hourly counts (merged across instances, `store::monitor::HEARTBEAT_MERGE`), the expiry
//! warnings sent, and the provisioning errors recorded (bounded per client).

use tokio_postgres::Row;

use super::{Postgres, audit, get};
use crate::model::{ClientHealth, HealthState, NewAuditEvent};
use crate::store::Result;
use crate::store::monitor::{Activity, COLUMNS, HEARTBEAT_MERGE};
use crate::store::provisioning::{
    COLUMNS as ERROR_COLUMNS, MAX_TEXT, PendingErrors, ProvisioningError, cut,
};
use crate::time::Timestamp;

fn row_to_health(r: &Row) -> Result<ClientHealth> {
    let state: String = get(r, 1)?;
    Ok(ClientHealth {
        client_id: get(r, 0)?,
        state: HealthState::from_name(&state).unwrap_or(HealthState::Idle),
        state_since: get(r, 2)?,
        last_success_at: get(r, 3)?,
        last_success_ip: get(r, 4)?,
        last_failure_at: get(r, 5)?,
        last_failure_status: get::<Option<i64>>(r, 6)?.and_then(|s| u16::try_from(s).ok()),
        last_failure_reason: get(r, 7)?,
        last_token_id: get(r, 8)?,
    })
}

fn row_to_error(r: &Row) -> Result<ProvisioningError> {
    Ok(ProvisioningError {
        client_id: get(r, 0)?,
        at: get(r, 1)?,
        method: get(r, 2)?,
        resource: get(r, 3)?,
        resource_id: get(r, 4)?,
        user_name: get(r, 5)?,
        external_id: get(r, 6)?,
        display_name: get(r, 7)?,
        status: u16::try_from(get::<i64>(r, 8)?).unwrap_or(0),
        scim_type: get(r, 9)?,
        detail: get(r, 10)?,
        notified_at: get(r, 11)?,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Postgres {
    pub fn client_health(&self) -> Result<Vec<ClientHealth>> {
        self.read(|db| {
            db.query(
                &format!("SELECT {COLUMNS} FROM client_health ORDER BY client_id"),
                &[],
            )?
            .iter()
            .map(row_to_health)
            .collect()
        })
    }

    pub fn client_health_of(&self, client_id: &str) -> Result<Option<ClientHealth>> {
        self.read(|db| {
            db.query_opt(
                &format!("SELECT {COLUMNS} FROM client_health WHERE client_id = $1"),
                &[&client_id],
            )?
            .map(|r| row_to_health(&r))
            .transpose()
        })
    }

    pub fn save_monitor_state(
        &self,
        health: &[ClientHealth],
        activity: &[Activity],
        transitions: &[NewAuditEvent],
        states: bool,
        now: Timestamp,
    ) -> Result<()> {
        let upsert = format!(
            "INSERT INTO client_health ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (client_id) DO UPDATE SET {HEARTBEAT_MERGE}, \
             state = CASE WHEN $10 THEN excluded.state ELSE client_health.state END, \
             state_since = CASE WHEN $10 THEN excluded.state_since \
             ELSE client_health.state_since END"
        );
        self.write(|tx| {
            for h in health {
                tx.execute(
                    &upsert,
                    &[
                        &h.client_id,
                        &h.state.as_str(),
                        &h.state_since,
                        &h.last_success_at,
                        &h.last_success_ip,
                        &h.last_failure_at,
                        &h.last_failure_status.map(i64::from),
                        &h.last_failure_reason,
                        &h.last_token_id,
                        &states,
                    ],
                )?;
            }
            for a in activity {
                tx.execute(
                    "INSERT INTO client_activity (client_id, hour, ok, failed) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (client_id, hour) DO UPDATE SET \
                     ok = client_activity.ok + excluded.ok, \
                     failed = client_activity.failed + excluded.failed",
                    &[&a.client_id, &a.hour, &a.ok, &a.failed],
                )?;
            }
            for e in transitions {
                audit::append(tx, e, now)?;
            }
            Ok(())
        })
    }

    pub fn client_activity(&self, since: Timestamp) -> Result<Vec<Activity>> {
        self.read(|db| {
            db.query(
                "SELECT client_id, hour, ok, failed FROM client_activity WHERE hour >= $1 \
                 ORDER BY client_id, hour",
                &[&since],
            )?
            .iter()
            .map(|r| {
                Ok(Activity {
                    client_id: get(r, 0)?,
                    hour: get(r, 1)?,
                    ok: get(r, 2)?,
                    failed: get(r, 3)?,
                })
            })
            .collect()
        })
    }

    pub fn warning_fired(&self, subject: &str, lead: i64) -> Result<bool> {
        self.read(|db| {
            get(
                &db.query_one(
                    "SELECT EXISTS(SELECT 1 FROM expiry_warnings WHERE subject = $1 AND lead = $2)",
                    &[&subject, &lead],
                )?,
                0,
            )
        })
    }

    pub fn record_warning(
        &self,
        subject: &str,
        leads: &[i64],
        now: Timestamp,
        audit_event: &NewAuditEvent,
    ) -> Result<bool> {
        self.write(|tx| {
            let mut fresh = false;
            for (i, lead) in leads.iter().enumerate() {
                let n = tx.execute(
                    "INSERT INTO expiry_warnings (subject, lead, fired_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[&subject, lead, &now],
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

    pub fn record_provisioning_errors_capped(
        &self,
        errors: &[ProvisioningError],
        cap: i64,
    ) -> Result<u64> {
        let add = format!(
            "INSERT INTO provisioning_errors ({ERROR_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, \
             COALESCE($6, (SELECT substr(user_name, 1, {MAX_TEXT}) FROM scim_resources WHERE id = $5)), \
             COALESCE($7, (SELECT substr(external_id, 1, {MAX_TEXT}) FROM scim_resources WHERE id = $5)), \
             COALESCE($8, (SELECT substr(display_name, 1, {MAX_TEXT}) FROM scim_resources WHERE id = $5)), \
             $9, $10, $11)"
        );
        self.write(|tx| {
            let mut clients: Vec<&str> = Vec::new();
            for e in errors {
                tx.execute(
                    &add,
                    &[
                        &e.client_id,
                        &e.at,
                        &e.method,
                        &e.resource,
                        &cut(&e.resource_id),
                        &cut(&e.user_name),
                        &cut(&e.external_id),
                        &cut(&e.display_name),
                        &i64::from(e.status),
                        &cut(&e.scim_type),
                        &cut(&e.detail),
                    ],
                )?;
                if !clients.contains(&e.client_id.as_str()) {
                    clients.push(&e.client_id);
                }
            }
            let mut dropped = 0u64;
            for c in clients {
                dropped += tx.execute(
                    "DELETE FROM provisioning_errors WHERE client_id = $1 AND id <= \
                     (SELECT id FROM provisioning_errors WHERE client_id = $1 \
                      ORDER BY id DESC LIMIT 1 OFFSET $2)",
                    &[&c, &cap],
                )?;
            }
            Ok(dropped)
        })
    }

    pub fn provisioning_errors(
        &self,
        client_id: Option<&str>,
        since: Timestamp,
    ) -> Result<Vec<ProvisioningError>> {
        self.read(|db| {
            db.query(
                &format!(
                    "SELECT {ERROR_COLUMNS}, notified_at FROM provisioning_errors \
                     WHERE at >= $1 AND ($2::text IS NULL OR client_id = $2) ORDER BY at, id"
                ),
                &[&since, &client_id],
            )?
            .iter()
            .map(row_to_error)
            .collect()
        })
    }

    pub fn pending_provisioning_errors(&self) -> Result<Vec<PendingErrors>> {
        self.read(|db| {
            db.query(
                "SELECT client_id, MIN(at), COUNT(*), MAX(id) FROM provisioning_errors \
                 WHERE notified_at IS NULL GROUP BY client_id ORDER BY client_id",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(PendingErrors {
                    client_id: get(r, 0)?,
                    oldest_at: get(r, 1)?,
                    count: count(get(r, 2)?),
                    last_id: get(r, 3)?,
                })
            })
            .collect()
        })
    }

    pub fn pending_provisioning_errors_of(
        &self,
        client_id: &str,
        last_id: i64,
        limit: usize,
    ) -> Result<Vec<ProvisioningError>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|db| {
            db.query(
                &format!(
                    "SELECT {ERROR_COLUMNS}, notified_at FROM provisioning_errors \
                     WHERE client_id = $1 AND notified_at IS NULL AND id <= $2 ORDER BY id LIMIT $3"
                ),
                &[&client_id, &last_id, &limit],
            )?
            .iter()
            .map(row_to_error)
            .collect()
        })
    }

    pub fn mark_provisioning_errors_notified(
        &self,
        client_id: &str,
        last_id: i64,
        at: Timestamp,
    ) -> Result<u64> {
        self.write(|tx| {
            tx.execute(
                "UPDATE provisioning_errors SET notified_at = $3 \
                 WHERE client_id = $1 AND notified_at IS NULL AND id <= $2",
                &[&client_id, &last_id, &at],
            )
        })
    }

    pub fn provisioning_error_hours(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp, u64)>> {
        self.read(|db| {
            db.query(
                "SELECT client_id, at - (at % 3600) AS hour, COUNT(*) FROM provisioning_errors \
                 WHERE at >= $1 GROUP BY client_id, hour ORDER BY client_id, hour",
                &[&since],
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?, count(get(r, 2)?))))
            .collect()
        })
    }

    pub fn prune_provisioning_errors(&self, before: Timestamp) -> Result<u64> {
        self.write(|tx| tx.execute("DELETE FROM provisioning_errors WHERE at < $1", &[&before]))
    }
}
