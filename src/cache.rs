//! The one in-memory cache of the server's hot reads: bearer-token records
//! ([`TokenCache`]), client rows (`oauth::client_auth`), the lifetime policy
//! (`oauth::grants`) and rendered SCIM resources (`scim::cache`) are each a [`Cache`].
//!
//! Three rules, kept here once:
//! - **Bounded**: at most `capacity` entries; a full cache is emptied (simple, and a flood
//!   of distinct keys costs at most one clear per `capacity` reads).
//! - **Trusted for the TTL from when the read began**, not ended: an entry read before a
//!   cut-off is never trusted past the cut-off plus the TTL (`admin::wait_for_caches`
//!   relies on this). Every cache here has one (`token_cache_ttl`): another process
//!   (`config`, a second instance on the same store) changes rows without telling this
//!   one. A zero TTL turns the cache off.
//! - **Generation guard**: [`Cache::clear`] and [`Cache::remove`] bump a generation, and a
//!   value loaded while the generation moved is not kept; otherwise a read racing a
//!   revocation could put the pre-revocation value back after the clear and serve it for
//!   a whole TTL.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::model::TokenRecord;
use crate::token::{TokenHash, TokenKind};

/// See the module documentation.
#[derive(Debug)]
pub struct Cache<K, V> {
    ttl: Option<Duration>,
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    entries: HashMap<K, (V, Instant)>,
    generation: u64,
}

/// What [`Cache::begin`] hands a reader: put back with [`Cache::put`] what it read.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    generation: u64,
    started: Instant,
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    /// A cache trusting entries for `ttl` (`None`: until invalidated; zero: off), holding
    /// at most `capacity`.
    pub fn new(ttl: Option<Duration>, capacity: usize) -> Cache<K, V> {
        Cache {
            ttl,
            capacity,
            inner: Mutex::new(Inner {
                entries: HashMap::default(),
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        crate::sync::lock(&self.inner)
    }

    fn off(&self) -> bool {
        self.ttl.is_some_and(|t| t.is_zero())
    }

    fn fresh(&self, at: Instant) -> bool {
        self.ttl.is_none_or(|t| at.elapsed() < t)
    }

    /// The value of `key` if it is still trusted.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.off() {
            return None;
        }
        self.lock()
            .entries
            .get(key)
            .filter(|(_, at)| self.fresh(*at))
            .map(|(v, _)| v.clone())
    }

    /// Start a read from the store: note the generation and the time.
    pub fn begin(&self) -> Read {
        Read {
            started: Instant::now(),
            generation: self.lock().generation,
        }
    }

    /// Keep `value`, read as `read` began; dropped if the cache was invalidated since.
    pub fn put(&self, key: K, value: V, read: Read) {
        if self.off() {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != read.generation {
            return;
        }
        if inner.entries.len() >= self.capacity {
            inner.entries.clear();
        }
        inner.entries.insert(key, (value, read.started));
    }

    /// The value of `key`: cached, or loaded by `load` and kept when `keep` says so (a
    /// `None`, an unknown key, is never kept: a flood of made-up keys cannot fill it).
    pub fn get_or_load<Q, E>(
        &self,
        key: &Q,
        load: impl FnOnce() -> Result<Option<V>, E>,
        keep: impl FnOnce(&V) -> bool,
    ) -> Result<Option<V>, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.get(key) {
            return Ok(Some(v));
        }
        let read = self.begin();
        let loaded = load()?;
        if let Some(v) = loaded.as_ref().filter(|v| keep(v)) {
            self.put(key.to_owned(), v.clone(), read);
        }
        Ok(loaded)
    }

    /// Forget `key`, and keep nothing read before now.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.remove(key);
    }

    /// Forget everything, and keep nothing read before now.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

/// Access-token records by hash, for the SCIM guard and introspection. Only access tokens
/// are kept: a refresh token is revoked by rotation, which does not clear this cache.
/// Revocations in this process [`clear`](TokenCache::clear) it before they answer.
#[derive(Debug)]
pub struct TokenCache(Cache<TokenHash, Arc<TokenRecord>>);

/// Token records kept at most.
const TOKEN_CACHE_CAPACITY: usize = 100_000;

impl TokenCache {
    /// A cache trusting records for `ttl` (zero disables it).
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache(Cache::new(Some(ttl), TOKEN_CACHE_CAPACITY))
    }

    /// The access token with hash `hash`: cached, or from `load`.
    pub fn access_token<E>(
        &self,
        hash: &TokenHash,
        load: impl FnOnce() -> Result<Option<TokenRecord>, E>,
    ) -> Result<Option<Arc<TokenRecord>>, E> {
        self.0.get_or_load(
            hash,
            || Ok(load()?.map(Arc::new)),
            |r| r.kind == TokenKind::Access,
        )
    }

    /// Forget everything (after a revocation in this process).
    pub fn clear(&self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ttl: Option<Duration>) -> Cache<String, u32> {
        Cache::new(ttl, 3)
    }

    #[test]
    fn a_value_read_before_an_invalidation_is_not_kept() {
        let c = cache(None);
        let read = c.begin();
        c.clear(); // a revocation while the read was in flight
        c.put("a".into(), 1, read);
        assert_eq!(c.get("a"), None);
        let read = c.begin();
        c.put("a".into(), 2, read);
        assert_eq!(c.get("a"), Some(2));
        let read = c.begin();
        c.remove("b");
        c.put("c".into(), 3, read);
        assert_eq!(c.get("c"), None, "remove moves the generation too");
    }

    #[test]
    fn unknown_keys_are_not_kept_and_a_full_cache_is_emptied() {
        let c = cache(None);
        let loaded: Result<_, ()> = c.get_or_load("nobody", || Ok(None), |_| true);
        assert_eq!(loaded, Ok(None));
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            let _: Result<_, ()> = c.get_or_load(*k, || Ok(Some(i as u32)), |_| true);
        }
        assert_eq!(c.get("c"), Some(2));
        let _: Result<_, ()> = c.get_or_load("d", || Ok(Some(9)), |_| true);
        assert_eq!((c.get("a"), c.get("d")), (None, Some(9)));
        let _: Result<_, ()> = c.get_or_load("e", || Ok(Some(5)), |v| *v != 5);
        assert_eq!(c.get("e"), None, "keep said no");
    }

    #[test]
    fn entries_expire_a_ttl_after_their_read_began_and_zero_is_off() {
        let c = cache(Some(Duration::from_millis(30)));
        let read = c.begin();
        std::thread::sleep(Duration::from_millis(40));
        c.put("a".into(), 1, read);
        assert_eq!(c.get("a"), None, "trusted from when the read began");
        let off = cache(Some(Duration::ZERO));
        let _: Result<_, ()> = off.get_or_load("a", || Ok(Some(1)), |_| true);
        assert_eq!(off.get("a"), None);
    }
}
