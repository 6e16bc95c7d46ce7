//! A client's status at one moment, composed in one place: its health state (from what
//! the monitor recorded, by [`super::health::evaluate`]), its live tokens, those inside an
//! expiry-warning lead time, and the resulting level (0 ok, 1 warning, 2 critical).
//! `config status`, the `/ui` timeline and `/metrics` read it from here, so they never
//! disagree about a client.

use crate::model::{Client, ClientHealth, HealthState, TokenRecord};
use crate::time::{Duration, Timestamp};

use super::{expiry, health};

/// One client's status.
#[derive(Debug, Clone)]
pub struct ClientStatus {
    pub client: Client,
    pub health: Option<ClientHealth>,
    pub state: HealthState,
    /// The client's live tokens (as given to [`compose`]).
    pub tokens: Vec<TokenRecord>,
    /// Those of them inside an expiry-warning lead time, soonest first.
    pub expiring: Vec<TokenRecord>,
    /// 0 ok, 1 warning (late, or a token inside a lead time), 2 critical (failing, missed).
    pub level: u8,
}

impl ClientStatus {
    /// When the client's soonest live token expires.
    pub fn soonest_expiry(&self) -> Option<Timestamp> {
        self.tokens.iter().map(|t| t.expires_at).min()
    }
}

/// Whether `t`, live at `now`, is inside one of the expiry-warning `leads`.
pub fn is_expiring(t: &TokenRecord, leads: &[Duration], now: Timestamp) -> bool {
    !expiry::applicable(t.expires_at - t.issued_at, t.expires_at - now, leads).is_empty()
}

/// The status of each of `clients`, from the recorded `healths` and the `live` tokens.
pub fn compose(
    clients: Vec<Client>,
    healths: &[ClientHealth],
    live: &[TokenRecord],
    leads: &[Duration],
    now: Timestamp,
) -> Vec<ClientStatus> {
    clients
        .into_iter()
        .map(|client| {
            let health = healths.iter().find(|h| h.client_id == client.id).cloned();
            let state = health::evaluate(&client, health.as_ref(), now);
            let tokens: Vec<TokenRecord> = live
                .iter()
                .filter(|t| t.client_id == client.id)
                .cloned()
                .collect();
            let mut expiring: Vec<TokenRecord> = tokens
                .iter()
                .filter(|t| is_expiring(t, leads, now))
                .cloned()
                .collect();
            expiring.sort_by_key(|t| t.expires_at);
            let mut level = health::severity(state);
            if !expiring.is_empty() {
                level = level.max(1);
            }
            ClientStatus {
                client,
                health,
                state,
                tokens,
                expiring,
                level,
            }
        })
        .collect()
}

/// The worst level among `statuses` (0 when there are none).
pub fn worst(statuses: &[ClientStatus]) -> u8 {
    statuses.iter().map(|s| s.level).max().unwrap_or(0)
}
