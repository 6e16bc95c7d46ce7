//! A per-client limit on token issuance at the token endpoint (`client_issuance_per_minute`,
//! 120 by default): a client whose secret leaked could otherwise mint without bound (seen:
//! 780,000 tokens in 50 s), growing the store and every revoke-all. The limiter is
//! governor's GCRA, keyed by the authenticated client id (so its keys are bounded by the
//! registered clients, never by what strangers send), with a burst of one minute's worth.
//! A refusal is `429` with `Retry-After`; refusals are counted per client for `/metrics`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The issuance limiter; `None` inside when the limit is off.
#[derive(Debug)]
pub struct IssuanceLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    refused: Mutex<HashMap<String, u64>>,
}

impl IssuanceLimit {
    /// `per_minute` tokens per client and minute (`None`: no limit).
    pub fn new(per_minute: Option<u32>) -> IssuanceLimit {
        IssuanceLimit {
            limiter: per_minute
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            refused: Mutex::default(),
        }
    }

    /// `Ok` if `client_id` may be issued a token now; else the seconds to wait.
    pub fn check(&self, client_id: &str) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        match limiter.check_key(&client_id.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                *self
                    .refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(client_id.to_string())
                    .or_default() += 1;
                Err(wait.as_secs().max(1))
            }
        }
    }

    /// Refusals so far, per client.
    pub fn refused_by_client(&self) -> Vec<(String, u64)> {
        let map = crate::sync::lock(&self.refused);
        let mut v: Vec<_> = map.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_minute_then_refusals_per_client() {
        let l = IssuanceLimit::new(Some(3));
        for _ in 0..3 {
            assert_eq!(l.check("cl_a"), Ok(()));
        }
        let wait = l.check("cl_a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert_eq!(l.check("cl_b"), Ok(()), "another client has its own budget");
        assert_eq!(l.refused_by_client(), vec![("cl_a".to_string(), 1)]);
        let off = IssuanceLimit::new(None);
        for _ in 0..1000 {
            assert_eq!(off.check("cl_a"), Ok(()));
        }
    }
}
