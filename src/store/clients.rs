//! The `clients` table: registered OAuth2 API clients. Deletion is soft (`deleted_at`) so
//! tokens and audit events keep pointing at a real row and ids are never reused.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::tokens::{live_params, live_tokens, query_named};
use super::{Result, Store, StoreError, audit, on_postgres};
use crate::model::{
    AuthMethod, Client, ClientProfile, GrantType, Heartbeat, IdpKind, IdpRef, NewAuditEvent,
    scopes_from_str, scopes_to_string,
};
use crate::time::{Duration, Timestamp};
use crate::token::TokenHash;

/// A client about to be inserted (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client: Client,
    pub secret_hash: Option<TokenHash>,
}

/// The fields `update-api-client` may change; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub grants: Option<Vec<GrantType>>,
    pub scopes: Option<Vec<crate::model::Scope>>,
    pub redirect_uris: Option<Vec<String>>,
    pub require_consent: Option<bool>,
    pub require_pkce: Option<bool>,
    pub email_domains: Option<Vec<String>>,
    /// Replace the addresses provisioning-error digests are mailed to.
    pub alert_emails: Option<Vec<String>>,
    pub access_token_ttl: Option<Duration>,
    pub refresh_token_ttl: Option<Duration>,
    pub idp: Option<IdpRef>,
    /// `Some(None)` switches heartbeat expectations off.
    pub heartbeat: Option<Option<Heartbeat>>,
}

impl ClientUpdate {
    /// Apply the fields that are set to `c`, as of `now`.
    pub(super) fn apply(&self, c: &mut Client, now: Timestamp) {
        if let Some(v) = &self.name {
            c.name = v.clone();
        }
        if let Some(v) = &self.grants {
            c.grants = v.clone();
        }
        if let Some(v) = &self.scopes {
            c.scopes = v.clone();
        }
        if let Some(v) = &self.redirect_uris {
            c.redirect_uris = v.clone();
        }
        if let Some(v) = self.require_consent {
            c.require_consent = v;
        }
        if let Some(v) = self.require_pkce {
            c.require_pkce = v;
        }
        if let Some(v) = &self.email_domains {
            c.email_domains = v.clone();
        }
        if let Some(v) = &self.alert_emails {
            c.alert_emails = v.clone();
        }
        if let Some(v) = self.access_token_ttl {
            c.access_token_ttl = v;
        }
        if let Some(v) = self.refresh_token_ttl {
            c.refresh_token_ttl = v;
        }
        if let Some(v) = &self.idp {
            c.idp = v.clone();
        }
        if let Some(v) = self.heartbeat {
            c.heartbeat = v;
        }
        c.updated_at = now;
    }
}

pub(super) const COLUMNS: &str = "id, name, profile, grants, scopes, redirect_uris, auth_method, \
    require_consent, secret_hash IS NOT NULL, secret_expires_at, access_token_ttl, \
    refresh_token_ttl, idp_kind, idp_app_id, idp_tenant, owner_contact, heartbeat_interval, \
    missed_heartbeats, created_at, updated_at, secret_ttl, token_epoch, disabled_at, \
    require_pkce, email_domains, alert_emails";
/// How many columns [`COLUMNS`] names: the index of a column selected after them.
const COLUMN_COUNT: usize = 26;

fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("bad {what} `{value}`").into(),
    )
}

fn row_to_client(r: &Row<'_>) -> rusqlite::Result<Client> {
    let grants: String = r.get(3)?;
    let scopes: String = r.get(4)?;
    let uris: String = r.get(5)?;
    let profile: String = r.get(2)?;
    let auth: String = r.get(6)?;
    let idp_kind: String = r.get(12)?;
    let interval: Option<i64> = r.get(16)?;
    let missed: i64 = r.get(17)?;
    Ok(Client {
        id: r.get(0)?,
        name: r.get(1)?,
        profile: ClientProfile::parse(&profile).map_err(|_| corrupt("profile", &profile))?,
        grants: grants
            .split_whitespace()
            .map(|g| GrantType::parse(g).map_err(|_| corrupt("grant", g)))
            .collect::<rusqlite::Result<_>>()?,
        scopes: scopes_from_str(&scopes).map_err(|_| corrupt("scopes", &scopes))?,
        redirect_uris: serde_json::from_str(&uris).map_err(|_| corrupt("redirect uris", &uris))?,
        auth_method: AuthMethod::parse(&auth).map_err(|_| corrupt("auth method", &auth))?,
        require_consent: r.get(7)?,
        has_secret: r.get(8)?,
        secret_expires_at: r.get(9)?,
        access_token_ttl: Duration::seconds(r.get(10)?),
        refresh_token_ttl: Duration::seconds(r.get(11)?),
        idp: IdpRef {
            kind: IdpKind::parse(&idp_kind).map_err(|_| corrupt("idp kind", &idp_kind))?,
            app_id: r.get(13)?,
            tenant: r.get(14)?,
            owner: r.get(15)?,
        },
        heartbeat: interval.map(|i| Heartbeat {
            interval: Duration::seconds(i),
            missed: u32::try_from(missed).unwrap_or(3),
        }),
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
        secret_ttl: r.get::<_, Option<i64>>(20)?.map(Duration::seconds),
        token_epoch: r.get(21)?,
        disabled_at: r.get(22)?,
        require_pkce: r.get(23)?,
        email_domains: r
            .get::<_, String>(24)?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        alert_emails: r
            .get::<_, String>(25)?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    })
}

pub(super) fn grants_str(g: &[GrantType]) -> String {
    g.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")
}

pub(super) fn uris_json(uris: &[String]) -> String {
    serde_json::to_string(uris).unwrap_or_else(|_| "[]".into())
}

pub(super) fn get_client(conn: &Connection, id: &str) -> Result<Option<Client>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM clients WHERE id = ?1 AND deleted_at IS NULL"
        ))?
        .query_row([id], row_to_client)
        .optional()?)
}

pub(super) fn secret_hash(blob: Option<Vec<u8>>) -> Option<TokenHash> {
    blob.and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(TokenHash)
}

impl Store {
    /// Insert a new client.
    pub fn insert_client(&self, new: &NewClient, audit: &NewAuditEvent) -> Result<()> {
        on_postgres!(self, pg => pg.insert_client(new, audit));
        let c = &new.client;
        self.write(|tx| {
            audit::append(tx, audit, c.created_at)?;
            tx.execute(
                "INSERT INTO clients (id, name, profile, grants, scopes, redirect_uris, \
                 auth_method, require_consent, secret_hash, secret_expires_at, access_token_ttl, \
                 refresh_token_ttl, idp_kind, idp_app_id, idp_tenant, owner_contact, \
                 heartbeat_interval, missed_heartbeats, created_at, updated_at, secret_ttl, \
                 require_pkce, email_domains, alert_emails) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
                params![
                    c.id,
                    c.name,
                    c.profile.as_str(),
                    grants_str(&c.grants),
                    scopes_to_string(&c.scopes),
                    uris_json(&c.redirect_uris),
                    c.auth_method.as_str(),
                    c.require_consent,
                    new.secret_hash.map(|h| h.0.to_vec()),
                    c.secret_expires_at,
                    c.access_token_ttl.secs(),
                    c.refresh_token_ttl.secs(),
                    c.idp.kind.as_str(),
                    c.idp.app_id,
                    c.idp.tenant,
                    c.idp.owner,
                    c.heartbeat.map(|h| h.interval.secs()),
                    c.heartbeat.map(|h| h.missed).unwrap_or(3),
                    c.created_at,
                    c.updated_at,
                    c.secret_ttl.map(|d| d.secs()),
                    c.require_pkce,
                    c.email_domains.join(" "),
                    c.alert_emails.join(" "),
                ],
            )?;
            Ok(())
        })
    }

    /// A live (not deleted) client by id.
    pub fn client(&self, id: &str) -> Result<Option<Client>> {
        if !super::can_name_a_row(id) {
            return Ok(None);
        }
        on_postgres!(self, pg => pg.client(id));
        self.read(|c| get_client(c, id))
    }

    /// All live clients, oldest first.
    pub fn list_clients(&self) -> Result<Vec<Client>> {
        on_postgres!(self, pg => pg.list_clients());
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM clients WHERE deleted_at IS NULL ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([], row_to_client)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Number of live (unrevoked, unexpired) access and refresh tokens per client.
    pub fn active_token_counts(&self, now: Timestamp) -> Result<Vec<(String, i64)>> {
        on_postgres!(self, pg => pg.active_token_counts(now));
        let sql = format!(
            "SELECT client_id, count(*) FROM ({}) GROUP BY client_id",
            live_tokens("client_id", false, " AND kind != 3") // 3: authorization codes
        );
        let params = live_params(now, None);
        self.read(|c| query_named(c, &sql, &params, |r| Ok((r.get(0)?, r.get(1)?))))
    }

    /// Apply `update` to client `id` and return the new state.
    pub fn update_client(
        &self,
        id: &str,
        update: &ClientUpdate,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<Client> {
        on_postgres!(self, pg => pg.update_client(id, update, now, audit));
        self.write(|tx| {
            let mut c = get_client(tx, id)?
                .ok_or_else(|| StoreError::NotFound(format!("API client {id}")))?;
            update.apply(&mut c, now);
            tx.execute(
                "UPDATE clients SET name = ?2, grants = ?3, scopes = ?4, redirect_uris = ?5, \
                 require_consent = ?6, access_token_ttl = ?7, refresh_token_ttl = ?8, \
                 idp_kind = ?9, idp_app_id = ?10, idp_tenant = ?11, owner_contact = ?12, \
                 heartbeat_interval = ?13, missed_heartbeats = ?14, updated_at = ?15, \
                 require_pkce = ?16, email_domains = ?17, alert_emails = ?18 WHERE id = ?1",
                params![
                    c.id,
                    c.name,
                    grants_str(&c.grants),
                    scopes_to_string(&c.scopes),
                    uris_json(&c.redirect_uris),
                    c.require_consent,
                    c.access_token_ttl.secs(),
                    c.refresh_token_ttl.secs(),
                    c.idp.kind.as_str(),
                    c.idp.app_id,
                    c.idp.tenant,
                    c.idp.owner,
                    c.heartbeat.map(|h| h.interval.secs()),
                    c.heartbeat.map(|h| h.missed).unwrap_or(3),
                    c.updated_at,
                    c.require_pkce,
                    c.email_domains.join(" "),
                    c.alert_emails.join(" "),
                ],
            )?;
            audit::append(tx, audit, now)?;
            Ok(c)
        })
    }

    /// Replace client `id`'s secret hash (rotation).
    pub fn set_client_secret(
        &self,
        id: &str,
        hash: &TokenHash,
        ttl: Option<Duration>,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.set_client_secret(id, hash, ttl, now, audit));
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE clients SET secret_hash = ?2, secret_expires_at = ?3, secret_ttl = ?4, \
                 updated_at = ?5 WHERE id = ?1 AND deleted_at IS NULL",
                params![
                    id,
                    hash.0.to_vec(),
                    ttl.map(|d| now + d.secs()),
                    ttl.map(|d| d.secs()),
                    now
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("API client {id}")));
            }
            // The old secret's tokens die with it, and so does any token being minted on
            // it right now (its insert checks the epoch).
            cut_off(tx, id, "client secret rotated", now)?;
            audit::append(tx, audit, now)?;
            Ok(())
        })
    }

    /// A live client with its stored secret hash, in one indexed read on a cached
    /// statement: client authentication at every OAuth2 endpoint.
    pub fn client_with_secret(&self, id: &str) -> Result<Option<(Client, Option<TokenHash>)>> {
        if !super::can_name_a_row(id) {
            return Ok(None);
        }
        on_postgres!(self, pg => pg.client_with_secret(id));
        self.read_point(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {COLUMNS}, secret_hash FROM clients WHERE id = ?1 AND deleted_at IS NULL"
            ))?
            .query_row([id], |r| {
                let client = row_to_client(r)?;
                let blob: Option<Vec<u8>> = r.get(COLUMN_COUNT)?;
                Ok((client, secret_hash(blob)))
            })
            .optional()?)
        })
    }

    /// Soft-delete client `id` and cut it off (every token it holds dies), in one
    /// transaction with one audit event.
    pub fn delete_client(&self, id: &str, now: Timestamp, audit: &NewAuditEvent) -> Result<()> {
        on_postgres!(self, pg => pg.delete_client(id, now, audit));
        self.write(|tx| {
            cut_off(tx, id, "client deleted", now)?;
            tx.execute(
                "UPDATE clients SET deleted_at = ?2, secret_hash = NULL WHERE id = ?1",
                params![id, now],
            )?;
            audit::append(tx, audit, now)
        })
    }

    /// Cut client `id` off: every token issued to it until now dies, in one UPDATE
    /// (schema.sql, migration 7) with one audit event. `disable`: `Some(true)` also stops
    /// issuance until enabled again, `Some(false)` enables it (and cuts nothing off).
    pub fn cut_off_client(
        &self,
        id: &str,
        reason: &str,
        disable: Option<bool>,
        now: Timestamp,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        on_postgres!(self, pg => pg.cut_off_client(id, reason, disable, now, audit));
        self.write(|tx| {
            match disable {
                Some(false) => {
                    let n = tx.execute(
                        "UPDATE clients SET disabled_at = NULL, updated_at = ?2 \
                         WHERE id = ?1 AND deleted_at IS NULL",
                        params![id, now],
                    )?;
                    if n == 0 {
                        return Err(StoreError::NotFound(format!("API client {id}")));
                    }
                }
                Some(true) => {
                    cut_off(tx, id, reason, now)?;
                    tx.execute(
                        "UPDATE clients SET disabled_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )?;
                }
                None => cut_off(tx, id, reason, now)?,
            }
            audit::append(tx, audit, now)
        })
    }
}

/// Bump client `id`'s token epoch (inside a write transaction).
pub(super) fn cut_off(conn: &Connection, id: &str, reason: &str, now: Timestamp) -> Result<()> {
    let epoch: Option<i64> = conn
        .query_row(
            "UPDATE clients SET token_epoch = token_epoch + 1, updated_at = ?2 \
             WHERE id = ?1 AND deleted_at IS NULL RETURNING token_epoch",
            params![id, now],
            |r| r.get(0),
        )
        .optional()?;
    let Some(epoch) = epoch else {
        return Err(StoreError::NotFound(format!("API client {id}")));
    };
    conn.execute(
        "INSERT INTO client_cuts (client_id, epoch, at, reason) VALUES (?1, ?2, ?3, ?4)",
        params![id, epoch, now, reason],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_count_matches_the_column_list() {
        assert_eq!(COLUMNS.split(',').count(), COLUMN_COUNT);
    }
}
