//! PostgreSQL bodies of `store::audit`: appending to and reading `audit_events`
//! (append-only: a trigger in schema_pg.sql refuses UPDATE and DELETE).

use tokio_postgres::GenericClient;

use super::{Db, Postgres, get};
use crate::model::{AuditEvent, NewAuditEvent};
use crate::store::Result;
use crate::time::Timestamp;

/// Append `e` in the caller's transaction.
pub(crate) fn append(
    db: &mut Db<'_, impl GenericClient>,
    e: &NewAuditEvent,
    at: Timestamp,
) -> Result<()> {
    db.execute(
        "INSERT INTO audit_events (at, actor, action, outcome, client_id, token_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &at,
            &e.actor,
            &e.action.as_str(),
            &e.outcome,
            &e.client_id,
            &e.token_id,
            &e.detail,
        ],
    )?;
    Ok(())
}

impl Postgres {
    pub fn audit(&self, e: &NewAuditEvent, at: Timestamp) -> Result<()> {
        self.write(|tx| append(tx, e, at))
    }

    pub fn audit_many(&self, events: &[NewAuditEvent], at: Timestamp) -> Result<()> {
        self.write(|tx| events.iter().try_for_each(|e| append(tx, e, at)))
    }

    pub fn audit_events(&self, since: Option<Timestamp>, limit: usize) -> Result<Vec<AuditEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|db| {
            db.query(
                "SELECT seq, at, actor, action, outcome, client_id, token_id, detail \
                 FROM audit_events WHERE $1::bigint IS NULL OR at >= $1 \
                 ORDER BY seq DESC LIMIT $2",
                &[&since, &limit],
            )
        })?;
        let mut events = rows
            .iter()
            .map(|r| {
                Ok(AuditEvent {
                    seq: get(r, 0)?,
                    at: get(r, 1)?,
                    actor: get(r, 2)?,
                    action: get(r, 3)?,
                    outcome: get(r, 4)?,
                    client_id: get(r, 5)?,
                    token_id: get(r, 6)?,
                    detail: get(r, 7)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }
}
