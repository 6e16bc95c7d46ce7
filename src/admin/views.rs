//! What the operator reads: client statuses, token counts, a token's replacement, the
//! audit log and provisioning errors. The CLI reads through these, never the store.

use super::{Admin, AdminError, Result};
use crate::model::{AuditEvent, Client};
use crate::monitor::status::{self, ClientStatus};
use crate::store::{ProvisioningError, TokenFilter};
use crate::time::{Duration, Timestamp};
use crate::token::TokenId;

impl Admin<'_> {
    /// The expiry-warning lead times the server published (the defaults if it never did).
    pub fn expiry_leads(&self) -> Result<Vec<Duration>> {
        Ok(crate::monitor::published_leads(self.store)?)
    }

    /// Every client's status now, or only `only`'s (which must exist).
    pub fn client_statuses(&self, only: Option<&str>) -> Result<Vec<ClientStatus>> {
        let now = self.now();
        let mut clients = self.store.list_clients()?;
        if let Some(id) = only {
            clients.retain(|c| c.id == id);
            if clients.is_empty() {
                return Err(AdminError::NotFound(format!(
                    "no API client with id {id} exists"
                )));
            }
        }
        let healths = self.store.client_health()?;
        let live = self.store.list_tokens(&TokenFilter::default(), now)?;
        Ok(status::compose(
            clients,
            &healths,
            &live,
            &self.expiry_leads()?,
            now,
        ))
    }

    /// Every live client with how many live tokens it holds, oldest client first.
    pub fn clients_with_token_counts(&self) -> Result<Vec<(Client, i64)>> {
        let counts = self.store.active_token_counts(self.now())?;
        Ok(self
            .store
            .list_clients()?
            .into_iter()
            .map(|c| {
                let n = counts
                    .iter()
                    .find(|(id, _)| *id == c.id)
                    .map_or(0, |(_, n)| *n);
                (c, n)
            })
            .collect())
    }

    /// How many live tokens client `id` holds.
    pub fn live_token_count(&self, id: &str) -> Result<i64> {
        Ok(self
            .store
            .active_token_counts(self.now())?
            .into_iter()
            .find(|(c, _)| c == id)
            .map_or(0, |(_, n)| n))
    }

    /// The name of client `id`, if it still exists.
    pub fn client_name(&self, id: &str) -> Result<Option<String>> {
        Ok(self.store.client(id)?.map(|c| c.name))
    }

    /// The token that replaced `id` (by rotation), if any.
    pub fn replacement_of(&self, id: &TokenId) -> Result<Option<TokenId>> {
        Ok(self.store.replacement_of(id)?)
    }

    /// Up to `limit` audit events since `since`, oldest first.
    pub fn audit_events(&self, since: Option<Timestamp>, limit: usize) -> Result<Vec<AuditEvent>> {
        Ok(self.store.audit_events(since, limit)?)
    }

    /// Provisioning errors since `since`, of client `client_id` (which must exist) or all.
    pub fn provisioning_errors(
        &self,
        client_id: Option<&str>,
        since: Timestamp,
    ) -> Result<Vec<ProvisioningError>> {
        if let Some(id) = client_id {
            self.client(id)?;
        }
        Ok(self.store.provisioning_errors(client_id, since)?)
    }
}
