//! PostgreSQL bodies of `store::clients`: registered API clients, soft deletion, and the
//! cut-off (a bump of the client's token epoch with its `client_cuts` row) that kills every
//! token a client holds in one statement.

use tokio_postgres::{GenericClient, Row};

use super::tokens::live_tokens;
use super::{Db, Postgres, Tx, audit, get};
use crate::model::{
    AuthMethod, Client, ClientProfile, GrantType, Heartbeat, IdpKind, IdpRef, NewAuditEvent,
    scopes_from_str, scopes_to_string,
};
use crate::store::clients::{COLUMNS, ClientUpdate, NewClient, grants_str, secret_hash, uris_json};
use crate::store::{Result, StoreError};
use crate::time::{Duration, Timestamp};
use crate::token::TokenHash;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("bad {what} `{value}`"))
}

/// [`COLUMNS`] as PostgreSQL selects them (`secret_hash IS NOT NULL` is a boolean there).
fn columns() -> String {
    COLUMNS.replace(
        "secret_hash IS NOT NULL",
        "(secret_hash IS NOT NULL)::int::int8",
    )
}

fn flag(r: &Row, i: usize) -> Result<bool> {
    Ok(get::<i64>(r, i)? != 0)
}

pub(crate) fn row_to_client(r: &Row) -> Result<Client> {
    let grants: String = get(r, 3)?;
    let scopes: String = get(r, 4)?;
    let uris: String = get(r, 5)?;
    let profile: String = get(r, 2)?;
    let auth: String = get(r, 6)?;
    let idp_kind: String = get(r, 12)?;
    let interval: Option<i64> = get(r, 16)?;
    let missed: i64 = get(r, 17)?;
    let words = |s: String| s.split_whitespace().map(str::to_string).collect();
    Ok(Client {
        id: get(r, 0)?,
        name: get(r, 1)?,
        profile: ClientProfile::parse(&profile).map_err(|_| corrupt("profile", &profile))?,
        grants: grants
            .split_whitespace()
            .map(|g| GrantType::parse(g).map_err(|_| corrupt("grant", g)))
            .collect::<Result<_>>()?,
        scopes: scopes_from_str(&scopes).map_err(|_| corrupt("scopes", &scopes))?,
        redirect_uris: serde_json::from_str(&uris).map_err(|_| corrupt("redirect uris", &uris))?,
        auth_method: AuthMethod::parse(&auth).map_err(|_| corrupt("auth method", &auth))?,
        require_consent: flag(r, 7)?,
        has_secret: flag(r, 8)?,
        secret_expires_at: get(r, 9)?,
        access_token_ttl: Duration::seconds(get(r, 10)?),
        refresh_token_ttl: Duration::seconds(get(r, 11)?),
        idp: IdpRef {
            kind: IdpKind::parse(&idp_kind).map_err(|_| corrupt("idp kind", &idp_kind))?,
            app_id: get(r, 13)?,
            tenant: get(r, 14)?,
            owner: get(r, 15)?,
        },
        heartbeat: interval.map(|i| Heartbeat {
            interval: Duration::seconds(i),
            missed: u32::try_from(missed).unwrap_or(3),
        }),
        created_at: get(r, 18)?,
        updated_at: get(r, 19)?,
        secret_ttl: get::<Option<i64>>(r, 20)?.map(Duration::seconds),
        token_epoch: get(r, 21)?,
        disabled_at: get(r, 22)?,
        require_pkce: flag(r, 23)?,
        email_domains: words(get(r, 24)?),
        alert_emails: words(get(r, 25)?),
    })
}

pub(crate) fn get_client(db: &mut Db<'_, impl GenericClient>, id: &str) -> Result<Option<Client>> {
    db.query_opt(
        &format!(
            "SELECT {} FROM clients WHERE id = $1 AND deleted_at IS NULL",
            columns()
        ),
        &[&id],
    )?
    .map(|r| row_to_client(&r))
    .transpose()
}

/// Bump client `id`'s token epoch and record the cut (inside a write transaction).
pub(crate) fn cut_off(tx: &mut Tx<'_, '_>, id: &str, reason: &str, now: Timestamp) -> Result<()> {
    let epoch: Option<i64> = tx
        .query_opt(
            "UPDATE clients SET token_epoch = token_epoch + 1, updated_at = $2 \
             WHERE id = $1 AND deleted_at IS NULL RETURNING token_epoch",
            &[&id, &now],
        )?
        .map(|r| get(&r, 0))
        .transpose()?;
    let Some(epoch) = epoch else {
        return Err(StoreError::NotFound(format!("API client {id}")));
    };
    tx.execute(
        "INSERT INTO client_cuts (client_id, epoch, at, reason) VALUES ($1, $2, $3, $4)",
        &[&id, &epoch, &now, &reason],
    )?;
    Ok(())
}

impl Postgres {
    pub fn insert_client(&self, new: &NewClient, audit: &NewAuditEvent) -> Result<()> {
        let c = &new.client;
        self.write(|tx| {
            audit::append(tx, audit, c.created_at)?;
            tx.execute(
                "INSERT INTO clients (id, name, profile, grants, scopes, redirect_uris, \
                 auth_method, require_consent, secret_hash, secret_expires_at, access_token_ttl, \
                 refresh_token_ttl, idp_kind, idp_app_id, idp_tenant, owner_contact, \
                 heartbeat_interval, missed_heartbeats, created_at, updated_at, secret_ttl, \
                 require_pkce, email_domains, alert_emails) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19, $20, $21, $22, $23, $24)",
                &[
                    &c.id,
                    &c.name,
                    &c.profile.as_str(),
                    &grants_str(&c.grants),
                    &scopes_to_string(&c.scopes),
                    &uris_json(&c.redirect_uris),
                    &c.auth_method.as_str(),
                    &i64::from(c.require_consent),
                    &new.secret_hash.map(|h| h.0.to_vec()),
                    &c.secret_expires_at,
                    &c.access_token_ttl.secs(),
                    &c.refresh_token_ttl.secs(),
                    &c.idp.kind.as_str(),
                    &c.idp.app_id,
                    &c.idp.tenant,
                    &c.idp.owner,
                    &c.heartbeat.map(|h| h.interval.secs()),
                    &c.heartbeat.map_or(3, |h| i64::from(h.missed)),
                    &c.created_at,
                    &c.updated_at,
                    &c.secret_ttl.map(|d| d.secs()),
                    &i64::from(c.require_pkce),
                    &c.email_domains.join(" "),
                    &c.alert_emails.join(" "),
                ],
            )?;
            Ok(())
        })
    }

    pub fn client(&self, id: &str) -> Result<Option<Client>> {
        self.read(|db| get_client(db, id))
    }

    pub fn list_clients(&self) -> Result<Vec<Client>> {
        self.read(|db| {
            db.query(
                &format!(
                    "SELECT {} FROM clients WHERE deleted_at IS NULL ORDER BY created_at, id",
                    columns()
                ),
                &[],
            )?
            .iter()
            .map(row_to_client)
            .collect()
        })
    }

    pub fn active_token_counts(&self, now: Timestamp) -> Result<Vec<(String, i64)>> {
        let sql = format!(
            "SELECT client_id, count(*) FROM ({}) live GROUP BY client_id",
            live_tokens("client_id", false, " AND kind != 3")
        );
        self.read(|db| {
            db.query(&sql, &[&now])?
                .iter()
                .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
                .collect()
        })
    }

    pub fn update_client(
        &self,
        id: &str,
        update: &ClientUpdate,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<Client> {
        self.write(|tx| {
            let mut c = get_client(tx, id)?
                .ok_or_else(|| StoreError::NotFound(format!("API client {id}")))?;
            update.apply(&mut c, now);
            tx.execute(
                "UPDATE clients SET name = $2, grants = $3, scopes = $4, redirect_uris = $5, \
                 require_consent = $6, access_token_ttl = $7, refresh_token_ttl = $8, \
                 idp_kind = $9, idp_app_id = $10, idp_tenant = $11, owner_contact = $12, \
                 heartbeat_interval = $13, missed_heartbeats = $14, updated_at = $15, \
                 require_pkce = $16, email_domains = $17, alert_emails = $18 WHERE id = $1",
                &[
                    &c.id,
                    &c.name,
                    &grants_str(&c.grants),
                    &scopes_to_string(&c.scopes),
                    &uris_json(&c.redirect_uris),
                    &i64::from(c.require_consent),
                    &c.access_token_ttl.secs(),
                    &c.refresh_token_ttl.secs(),
                    &c.idp.kind.as_str(),
                    &c.idp.app_id,
                    &c.idp.tenant,
                    &c.idp.owner,
                    &c.heartbeat.map(|h| h.interval.secs()),
                    &c.heartbeat.map_or(3, |h| i64::from(h.missed)),
                    &c.updated_at,
                    &i64::from(c.require_pkce),
                    &c.email_domains.join(" "),
                    &c.alert_emails.join(" "),
                ],
            )?;
            audit::append(tx, audit, now)?;
            Ok(c)
        })
    }

    pub fn set_client_secret(
        &self,
        id: &str,
        hash: &TokenHash,
        ttl: Option<Duration>,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE clients SET secret_hash = $2, secret_expires_at = $3, secret_ttl = $4, \
                 updated_at = $5 WHERE id = $1 AND deleted_at IS NULL",
                &[
                    &id,
                    &&hash.0[..],
                    &ttl.map(|d| now + d.secs()),
                    &ttl.map(|d| d.secs()),
                    &now,
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("API client {id}")));
            }
            cut_off(tx, id, "client secret rotated", now)?;
            audit::append(tx, audit, now)?;
            Ok(())
        })
    }

    pub fn client_with_secret(&self, id: &str) -> Result<Option<(Client, Option<TokenHash>)>> {
        self.read(|db| {
            db.query_opt(
                &format!(
                    "SELECT {}, secret_hash FROM clients WHERE id = $1 AND deleted_at IS NULL",
                    columns()
                ),
                &[&id],
            )?
            .map(|r| Ok((row_to_client(&r)?, secret_hash(get(&r, 26)?))))
            .transpose()
        })
    }

    pub fn delete_client(&self, id: &str, now: Timestamp, audit: &NewAuditEvent) -> Result<()> {
        self.write(|tx| {
            cut_off(tx, id, "client deleted", now)?;
            tx.execute(
                "UPDATE clients SET deleted_at = $2, secret_hash = NULL WHERE id = $1",
                &[&id, &now],
            )?;
            audit::append(tx, audit, now)
        })
    }

    pub fn cut_off_client(
        &self,
        id: &str,
        reason: &str,
        disable: Option<bool>,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        self.write(|tx| {
            match disable {
                Some(false) => {
                    let n = tx.execute(
                        "UPDATE clients SET disabled_at = NULL, updated_at = $2 \
                         WHERE id = $1 AND deleted_at IS NULL",
                        &[&id, &now],
                    )?;
                    if n == 0 {
                        return Err(StoreError::NotFound(format!("API client {id}")));
                    }
                }
                Some(true) => {
                    cut_off(tx, id, reason, now)?;
                    tx.execute(
                        "UPDATE clients SET disabled_at = $2 WHERE id = $1",
                        &[&id, &now],
                    )?;
                }
                None => cut_off(tx, id, reason, now)?,
            }
            audit::append(tx, audit, now)
        })
    }
}
