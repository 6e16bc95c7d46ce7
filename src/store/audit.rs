//! The `audit_events` table: the append-only log of every state change and every refused
//! attempt. Triggers in `schema.sql` reject UPDATE and DELETE; this file only appends and
//! reads. Details are free text chosen by callers, who never put a secret in them.

use rusqlite::{Connection, params, params_from_iter};

use super::{Result, Store, on_postgres};
use crate::model::{AuditEvent, NewAuditEvent};
use crate::time::Timestamp;

pub(super) fn append(conn: &Connection, e: &NewAuditEvent, at: Timestamp) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_events (at, actor, action, outcome, client_id, token_id, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            at,
            e.actor,
            e.action.as_str(),
            e.outcome,
            e.client_id,
            e.token_id,
            e.detail
        ],
    )?;
    Ok(())
}

impl Store {
    /// Append one audit event.
    pub fn audit(&self, e: &NewAuditEvent, at: Timestamp) -> Result<()> {
        on_postgres!(self, pg => pg.audit(e, at));
        self.write(|tx| append(tx, e, at))
    }

    /// Append several audit events in one transaction.
    pub fn audit_many(&self, events: &[NewAuditEvent], at: Timestamp) -> Result<()> {
        on_postgres!(self, pg => pg.audit_many(events, at));
        self.write(|tx| {
            for e in events {
                append(tx, e, at)?;
            }
            Ok(())
        })
    }

    /// Events at or after `since` (all if `None`), oldest first, at most `limit` of the
    /// newest.
    pub fn audit_events(&self, since: Option<Timestamp>, limit: usize) -> Result<Vec<AuditEvent>> {
        on_postgres!(self, pg => pg.audit_events(since, limit));
        let mut sql = String::from(
            "SELECT seq, at, actor, action, outcome, client_id, token_id, detail FROM audit_events",
        );
        let mut args: Vec<i64> = Vec::new();
        if let Some(s) = since {
            sql.push_str(" WHERE at >= ?");
            args.push(s);
        }
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
        args.push(i64::try_from(limit).unwrap_or(i64::MAX));
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
                Ok(AuditEvent {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    outcome: r.get(4)?,
                    client_id: r.get(5)?,
                    token_id: r.get(6)?,
                    detail: r.get(7)?,
                })
            })?;
            let mut events = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            events.reverse();
            Ok(events)
        })
    }
}
