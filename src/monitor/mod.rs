//! Token lifecycle monitoring: who provisions, from where, how often; whether their calls
//! still succeed; which credentials are about to expire — and telling operators before
//! their users notice.
//!
//! - `events`: what is recorded per SCIM request; `attribution`: the middleware that
//!   records it (after the guard has judged the token) without writing on the request path;
//! - [`Monitor`]: buffers events; its thread writes `scim_heartbeat.log` every second and,
//!   every tick, folds events into each client's health, detects state changes
//!   (`health`), sends expiry warnings (`expiry`), provisioning-error digests (`digest`)
//!   and notifications (`notify`, on their own thread, in order);
//! - `usage`: last-use of tokens (for `config show-token`), batched the same way;
//! - freshness: between ticks the thread writes what it folded (each client's last
//!   success or failure, the token uses) at most once a second, and at once for the first
//!   request after a quiet spell — so `config show-token` and `config status`, run right
//!   after an IdP's first call, already see it. State changes and notifications stay with
//!   the tick;
//! - `metrics`: the Prometheus `/metrics` page; `config`: the monitoring settings.
//!
//! Several instances on one store (issue 16): every instance records the requests it
//! serves and writes their heartbeats (each client's last success and failure, merged with
//! the other instances' by the store), but only the instance holding the store's
//! `monitor` lease ([`LEASE`]) ticks: it reads every instance's heartbeats back, decides
//! state changes, and sends alerts, warnings and digests. The lease lasts a tick (at least
//! 2 s) and its holder renews it a third into it; the others try to take it every second,
//! so when the holder dies another takes over within a lease and a second, and goes on
//! from the states the store holds: an alert the old holder stored is not sent again, and
//! one it had not stored yet is decided and sent by the new holder. (One it had stored but
//! not yet delivered is lost with it: the delivery queue is in memory.)
//!
//! Time comes from the injectable [`Clock`], and [`Monitor::tick`] can be called directly,
//! so tests tell a token's whole life in seconds.

pub mod attribution;
pub mod config;
pub mod digest;
pub mod events;
pub mod expiry;
pub mod health;
pub mod heartbeat_log;
pub mod metrics;
pub mod notify;
pub mod provisioning;
pub mod status;
pub mod usage;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant};

use foldhash::HashMap;
use serde_json::json;

use self::config::MonitorSettings;
use self::events::{Attribution, RequestEvent, Verdict};
use self::heartbeat_log::HeartbeatLog;
use self::notify::{Notification, Notifier, Severity};
use self::usage::{UsageEvent, UsageRecorder};
use crate::model::AuditAction;
use crate::model::{Client, ClientHealth, HealthState, NewAuditEvent};
use crate::store::{Activity, Store, StoreError};
use crate::time::{Clock, Duration, Timestamp, format_local, format_relative};
use crate::token::TokenId;

/// Between ticks, how often the thread writes folded health and token uses (when any).
const PERSIST_EVERY: StdDuration = StdDuration::from_secs(1);
/// How often the thread drains recorded requests: each drain holds what arrived since the
/// last one, so this bounds both its memory and how long it keeps the core.
const DRAIN_EVERY: StdDuration = StdDuration::from_millis(50);
/// A request that arrives after this long without any is written at once (a "nudge").
const QUIET_MS: u64 = 250;

/// The most events a drained buffer keeps room for when it is reused (about 12 MB; a
/// drain holds 50 ms of requests, 5,000 at 100,000 a second).
const MAX_SPARE_EVENTS: usize = 65_536;

/// Drained events kept unfolded while the clients' health cannot be loaded (the store is
/// unavailable); beyond it the oldest are let go (they are in the heartbeat log already).
const MAX_UNFOLDED: usize = 65_536;
/// Provisioning errors kept between two ticks; beyond it they are counted as dropped.
const MAX_PENDING_PROVISIONING: usize = 10_000;

/// How often the tick prunes expired tokens when `token_retention` is set (seconds).
const PRUNE_EVERY: i64 = 86_400;

/// The store's lease that makes one instance the one that ticks.
pub const LEASE: &str = "monitor";
/// How often an instance that does not hold the lease tries to take it.
const LEASE_EVERY: StdDuration = StdDuration::from_secs(1);

use crate::sync::lock;

/// What one tick did (returned for tests and logged).
#[derive(Debug, Default, Clone)]
pub struct TickReport {
    pub notifications: Vec<Notification>,
}

/// Request counters for `/metrics`, since the server started.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// client id (or `unknown`) → HTTP status → requests.
    pub scim: HashMap<String, HashMap<u16, u64>>,
    /// (grant type, outcome) → token endpoint requests.
    pub token_endpoint: HashMap<(&'static str, &'static str), u64>,
    /// client id → HTTP status → provisioning errors (see [`provisioning`]).
    pub provisioning_errors: HashMap<String, HashMap<u16, u64>>,
    /// Provisioning errors dropped to keep the store within its bound per client.
    pub provisioning_errors_dropped: u64,
    /// Provisioning errors the store failed to record.
    pub provisioning_errors_unrecorded: u64,
}

#[derive(Default)]
struct Buffers {
    /// Drained events not folded yet: only while the health could not be loaded.
    unfolded: Vec<RequestEvent>,
    /// Provisioning errors drained since the last tick, which records them.
    provisioning: Vec<crate::store::ProvisioningError>,
    /// Health per client as of the last fold (loaded from the store on first use).
    health: Option<HashMap<String, ClientHealth>>,
    /// Per client, per hour: the successful and failed requests.
    activity: HashMap<String, HashMap<Timestamp, (i64, i64)>>,
    dirty: foldhash::HashSet<String>,
}

/// The lifecycle monitor; shared by the request path (recording) and its thread.
pub struct Monitor {
    store: Arc<Store>,
    clock: Clock,
    settings: MonitorSettings,
    log: HeartbeatLog,
    notifier: Notifier,
    pending: Mutex<Vec<RequestEvent>>,
    /// The buffer the next drain swaps in for `pending`: the last drain's, emptied, its
    /// capacity kept (up to [`MAX_SPARE_EVENTS`]), so that recording a request does not
    /// grow a new buffer from nothing after every drain, reallocating and copying it.
    spare: Mutex<Vec<RequestEvent>>,
    state: Mutex<Buffers>,
    counters: Mutex<Counters>,
    /// Serialises ticks (the thread's and a test's).
    ticking: Mutex<()>,
    stop: Mutex<bool>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Where accepted requests' token uses go (see [`Monitor::with_usage`]).
    usage: Option<UsageRecorder>,
    /// When the tick last pruned expired tokens (`token_retention`), in this process.
    last_prune: Mutex<Option<Timestamp>>,
    /// Set by [`Monitor::record`] for the first request after a quiet spell.
    nudged: AtomicBool,
    /// Milliseconds since `epoch` at the last drain that found events.
    last_busy_ms: AtomicU64,
    epoch: Instant,
    /// Provisioning-error digests on their way, and their outcomes.
    digests: Arc<digest::Digests>,
    /// This instance's name as the holder of [`LEASE`]: host, process, random.
    instance: String,
    /// Whether this instance held [`LEASE`] at its last try.
    leading: AtomicBool,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Monitor {
    /// A monitor over `store`; call [`Monitor::start`] to run its thread.
    pub fn new(store: Arc<Store>, clock: Clock, settings: MonitorSettings) -> Monitor {
        Monitor {
            log: HeartbeatLog::new(settings.heartbeat_log.clone()),
            notifier: Notifier::from_settings(&settings),
            store,
            clock,
            settings,
            pending: Mutex::default(),
            spare: Mutex::default(),
            state: Mutex::default(),
            counters: Mutex::default(),
            ticking: Mutex::default(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            thread: Mutex::default(),
            usage: None,
            last_prune: Mutex::default(),
            nudged: AtomicBool::new(false),
            last_busy_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            digests: Arc::default(),
            instance: instance_name(),
            leading: AtomicBool::new(false),
        }
    }

    /// This instance's name as a lease holder.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Whether this instance ticks (held the lease at its last try).
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// Take or renew [`LEASE`], for as long as a tick (at least two seconds), so the
    /// lease lapses within a tick of this instance's last renewal. A store error counts as
    /// not holding it. Says so in the log when this instance starts or stops ticking.
    /// How long the lease is taken for: a tick, at least two seconds.
    fn lease(&self) -> StdDuration {
        self.settings.tick.max(StdDuration::from_secs(2))
    }

    fn lead(&self) -> bool {
        let ms = i64::try_from(self.lease().as_millis()).unwrap_or(i64::MAX);
        let now = match self.store.try_lease(LEASE, &self.instance, ms) {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "monitor lease: the store does not answer");
                false
            }
        };
        let was = self.leading.swap(now, Ordering::Relaxed);
        if now && !was {
            tracing::info!(instance = %self.instance, "this instance runs the monitor's ticks");
        } else if was && !now {
            tracing::warn!(instance = %self.instance, "another instance runs the monitor's ticks now");
        }
        now
    }

    /// Let the monitor record token uses: with monitoring on, the guard leaves it to the
    /// monitor's drain (off the request path) instead of recording them on every request
    /// itself, so a request costs one buffer push instead of two.
    pub fn with_usage(mut self, usage: UsageRecorder) -> Monitor {
        self.usage = Some(usage);
        self
    }

    /// Whether the guard may leave token uses to this monitor.
    pub fn records_usage(&self) -> bool {
        self.settings.enabled && self.usage.is_some()
    }

    /// Start the thread: write the heartbeat log every second, tick every `tick`.
    pub fn start(self: &Arc<Self>) {
        if !self.settings.enabled {
            return;
        }
        let me = self.clone();
        let handle = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || {
                let mut next_tick = Instant::now() + me.settings.tick;
                let mut next_persist = Instant::now() + PERSIST_EVERY;
                let mut next_lease = Instant::now();
                // Whether another instance held the lease at some try of this one.
                let mut followed = false;
                loop {
                    if Instant::now() >= next_lease {
                        // Took it over from another instance (it stopped): tick now, so
                        // what it left undecided is decided within this tick.
                        let leads = me.lead();
                        if leads && followed {
                            next_tick = Instant::now();
                        }
                        followed = !leads;
                        // The holder renews a third into its lease (a write: every 10 s
                        // with the default tick, not every second); the others try every
                        // second, so one takes over within a lease and a second of the
                        // holder's last renewal.
                        next_lease = Instant::now()
                            + if leads {
                                (me.lease() / 3).max(LEASE_EVERY)
                            } else {
                                LEASE_EVERY
                            };
                    }
                    let stopped = {
                        let stop = lock(&me.stop);
                        // Drain often: small batches keep the request threads' tail latency
                        // flat while the log lines of busy seconds are written.
                        let wait = DRAIN_EVERY.min(me.settings.tick);
                        let (stop, _) = me
                            .wake
                            .wait_timeout_while(stop, wait, |s| {
                                !*s && !me.nudged.load(Ordering::Relaxed)
                            })
                            .unwrap_or_else(|p| p.into_inner());
                        *stop
                    };
                    let nudged = me.nudged.swap(false, Ordering::Relaxed);
                    if stopped || Instant::now() >= next_tick {
                        me.tick();
                        next_tick = Instant::now() + me.settings.tick;
                    } else {
                        me.drain();
                        if nudged || Instant::now() >= next_persist {
                            me.persist_recent(nudged);
                            next_persist = Instant::now() + PERSIST_EVERY;
                        }
                    }
                    if stopped {
                        if me.leading() {
                            // Let another instance take over at once.
                            if let Err(e) = me.store.release_lease(LEASE, &me.instance) {
                                tracing::warn!(error = %e, "could not release the monitor lease");
                            }
                        }
                        return;
                    }
                }
            })
            .expect("spawn the monitor thread");
        *lock(&self.thread) = Some(handle);
    }

    /// Stop the thread after a last tick (server shutdown).
    pub fn shutdown(&self) {
        *lock(&self.stop) = true;
        self.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        self.wait_for_deliveries();
    }

    /// Wait until queued notifications were delivered (or gave up), at most a minute.
    pub fn wait_for_deliveries(&self) {
        self.notifier.wait_idle(StdDuration::from_secs(60));
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub fn settings(&self) -> &MonitorSettings {
        &self.settings
    }

    /// The flag that makes the heartbeat log reopen (for a signal handler).
    pub fn reopen_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.log.reopen_flag()
    }

    /// Record a finished attributed request (request path: one short lock, no I/O). The
    /// first request after a quiet spell wakes the monitor's thread, which writes it at
    /// once; under load nothing wakes it (it drains on its timer).
    pub fn record(&self, event: RequestEvent) {
        let was_empty = {
            let mut pending = lock(&self.pending);
            pending.push(event);
            pending.len() == 1
        };
        if was_empty && self.quiet() && !self.nudged.swap(true, Ordering::Relaxed) {
            let _stop = lock(&self.stop);
            self.wake.notify_all();
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// No drain found events in the last [`QUIET_MS`].
    fn quiet(&self) -> bool {
        self.now_ms()
            .saturating_sub(self.last_busy_ms.load(Ordering::Relaxed))
            >= QUIET_MS
    }

    /// Between ticks: fold what was drained into each client's health and write it with
    /// the hourly counts (no state change, no notification: those are the tick's), and,
    /// when `flush_usage`, the pending token uses too.
    pub fn persist_recent(&self, flush_usage: bool) {
        let _one = lock(&self.ticking);
        if let Err(e) = self.persist_inner() {
            tracing::error!(error = %e, "monitor could not write recent activity");
        }
        if flush_usage {
            if let Some(usage) = &self.usage {
                usage.flush_now();
            }
        }
    }

    fn persist_inner(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut st = lock(&self.state);
        self.fold_unfolded(&mut st, now)?;
        if st.dirty.is_empty() && st.activity.is_empty() {
            return Ok(());
        }
        let (changed, acts) = Self::take_dirty(&mut st);
        drop(st);
        self.store
            .save_monitor_state(&changed, &acts, &[], false, now)
    }

    /// Fold the events a drain could not fold (the health could not be loaded then).
    fn fold_unfolded(&self, st: &mut Buffers, now: Timestamp) -> Result<(), StoreError> {
        self.load_health(st)?;
        let events = std::mem::take(&mut st.unfolded);
        Self::fold(st, &events, now);
        Ok(())
    }

    /// Fold drained events into each client's health at once, so that no more than one
    /// drain's events are held; keep them (bounded) while the health cannot be loaded.
    fn fold_drained(&self, st: &mut Buffers, events: &mut Vec<RequestEvent>, now: Timestamp) {
        match self.fold_unfolded(st, now) {
            Ok(()) => Self::fold(st, events, now),
            Err(e) => {
                if st.unfolded.is_empty() {
                    tracing::warn!(error = %e, "monitor could not load the clients' health; folding later");
                }
                st.unfolded.append(events);
                if st.unfolded.len() > MAX_UNFOLDED {
                    let excess = st.unfolded.len() - MAX_UNFOLDED;
                    st.unfolded.drain(..excess);
                }
            }
        }
    }

    /// Keep provisioning errors for the next tick, at most [`MAX_PENDING_PROVISIONING`].
    fn keep_provisioning_errors(&self, st: &mut Buffers, events: &[RequestEvent]) {
        let errors = provisioning::errors_of(events);
        if errors.is_empty() {
            return;
        }
        let room = MAX_PENDING_PROVISIONING.saturating_sub(st.provisioning.len());
        let dropped = errors.len().saturating_sub(room);
        st.provisioning.extend(errors.into_iter().take(room));
        if dropped > 0 {
            lock(&self.counters).provisioning_errors_dropped += dropped as u64;
        }
    }

    /// The health rows changed since the last write, and the hourly counts, to write now.
    fn take_dirty(st: &mut Buffers) -> (Vec<ClientHealth>, Vec<Activity>) {
        let Buffers {
            health,
            activity,
            dirty,
            ..
        } = st;
        let health = health.get_or_insert_with(HashMap::default);
        let changed = dirty
            .drain()
            .filter_map(|id| health.get(&id).cloned())
            .collect();
        (changed, Self::take_activity(activity))
    }

    fn take_activity(
        activity: &mut HashMap<String, HashMap<Timestamp, (i64, i64)>>,
    ) -> Vec<Activity> {
        activity
            .drain()
            .flat_map(|(client_id, hours)| {
                hours.into_iter().map(move |(hour, (ok, failed))| Activity {
                    client_id: client_id.clone(),
                    hour,
                    ok,
                    failed,
                })
            })
            .collect()
    }

    /// Fold request events into each client's health and hourly counts, marking them dirty.
    fn fold(st: &mut Buffers, events: &[RequestEvent], now: Timestamp) {
        let Buffers {
            health,
            activity,
            dirty,
            ..
        } = st;
        let health = health.get_or_insert_with(HashMap::default);
        let mut pace = crate::sync::Pace::default();
        // The last address written as text: a drain's events mostly come from one address,
        // which is then formatted once, not once per event.
        let mut last_ip: Option<(std::net::IpAddr, String)> = None;
        for e in events {
            pace.step();
            let Attribution::Token {
                client_id,
                token_id,
                verdict,
            } = &e.attribution
            else {
                continue;
            };
            // Looked up by reference first: a known client, the usual case, costs no
            // copy of its id per event.
            let h = match health.get_mut(client_id.as_str()) {
                Some(h) => h,
                None => health
                    .entry(client_id.clone())
                    .or_insert_with(|| ClientHealth::idle(client_id, now)),
            };
            if h.last_token_id != *token_id {
                h.last_token_id = token_id.clone();
            }
            let hour = e.at - e.at.rem_euclid(3600);
            let bucket = match activity.get_mut(client_id.as_str()) {
                Some(hours) => hours.entry(hour).or_default(),
                None => activity
                    .entry(client_id.clone())
                    .or_default()
                    .entry(hour)
                    .or_default(),
            };
            if *verdict == Verdict::Accepted {
                h.last_success_at = Some(h.last_success_at.map_or(e.at, |s| s.max(e.at)));
                if let Some(ip) = e.ip {
                    let text = match &last_ip {
                        Some((was, text)) if *was == ip => text,
                        _ => &last_ip.insert((ip, crate::peer::address_text(ip))).1,
                    };
                    if h.last_success_ip.as_deref() != Some(text.as_str()) {
                        h.last_success_ip = Some(text.clone());
                    }
                }
                bucket.0 += 1;
            } else {
                h.last_failure_at = Some(h.last_failure_at.map_or(e.at, |f| f.max(e.at)));
                h.last_failure_status = Some(e.status);
                h.last_failure_reason = Some(verdict.as_str().to_string());
                bucket.1 += 1;
            }
            if !dirty.contains(client_id.as_str()) {
                dirty.insert(client_id.clone());
            }
        }
    }

    /// Count a token-endpoint request for `/metrics`.
    pub fn count_token_request(&self, grant_type: &'static str, outcome: &'static str) {
        *lock(&self.counters)
            .token_endpoint
            .entry((grant_type, outcome))
            .or_default() += 1;
    }

    /// A copy of the counters.
    pub fn counters(&self) -> Counters {
        lock(&self.counters).clone()
    }

    /// Write pending events to the heartbeat log and fold them into the clients' health.
    pub fn drain(&self) {
        let mut events = std::mem::take(&mut *lock(&self.spare));
        std::mem::swap(&mut *lock(&self.pending), &mut events);
        if !events.is_empty() {
            self.drain_events(&mut events);
        }
        events.clear();
        events.shrink_to(MAX_SPARE_EVENTS);
        *lock(&self.spare) = events;
    }

    /// [`Monitor::drain`]'s work on the events it took.
    fn drain_events(&self, events: &mut Vec<RequestEvent>) {
        self.last_busy_ms.store(self.now_ms(), Ordering::Relaxed);
        self.log.write_requests(events);
        if let Some(usage) = &self.usage {
            let mut pace = crate::sync::Pace::default();
            for e in events.iter() {
                pace.step();
                if let Attribution::Token {
                    token_id: Some(token_id),
                    verdict: Verdict::Accepted,
                    ..
                } = &e.attribution
                {
                    usage.record(UsageEvent {
                        token_id: TokenId::from_stored(token_id.clone()),
                        at: e.at,
                        ip: e.ip,
                    });
                }
            }
        }
        {
            let mut counters = lock(&self.counters);
            // Token endpoint refusals are counted by `count_token_request`.
            for e in events.iter().filter(|e| e.path.starts_with("/scim/")) {
                let client = match &e.attribution {
                    Attribution::Token { client_id, .. } => client_id.as_str(),
                    Attribution::Unknown => "unknown",
                };
                // Look up by &str first: no allocation per event once a client is known.
                let per_status = match counters.scim.get_mut(client) {
                    Some(m) => m,
                    None => counters.scim.entry(client.to_string()).or_default(),
                };
                *per_status.entry(e.status).or_default() += 1;
                if let Attribution::Token {
                    verdict: Verdict::Accepted,
                    ..
                } = &e.attribution
                {
                    if provisioning::is_provisioning_error(&e.method, e.status) {
                        *counters
                            .provisioning_errors
                            .entry(client.to_string())
                            .or_default()
                            .entry(e.status)
                            .or_default() += 1;
                    }
                }
            }
        }
        let now = self.clock.now();
        let mut st = lock(&self.state);
        self.keep_provisioning_errors(&mut st, events);
        self.fold_drained(&mut st, events, now);
    }

    fn load_health(&self, st: &mut Buffers) -> Result<(), StoreError> {
        if st.health.is_none() {
            let rows = self.store.client_health()?;
            st.health = Some(rows.into_iter().map(|h| (h.client_id.clone(), h)).collect());
        }
        Ok(())
    }

    /// One monitor tick: fold events, evaluate every client, persist, notify, and send
    /// expiry warnings. Safe to call from tests at any time.
    ///
    /// Only the instance holding [`LEASE`] (taken or renewed here) evaluates and notifies;
    /// another one writes what it recorded (heartbeats, hourly counts, provisioning
    /// errors) and returns an empty report.
    pub fn tick(&self) -> TickReport {
        let _one = lock(&self.ticking);
        self.drain();
        self.log.write_unknown_summary();
        let mut report = TickReport::default();
        let result = if self.lead() {
            self.tick_inner(&mut report)
        } else {
            self.follow_inner()
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "monitor tick failed");
        }
        for n in &report.notifications {
            self.notifier.send(n.clone());
        }
        report
    }

    /// A tick of an instance that does not hold the lease: write what this instance
    /// recorded, decide nothing.
    fn follow_inner(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut st = lock(&self.state);
        self.fold_unfolded(&mut st, now)?;
        let provisioning_errors = std::mem::take(&mut st.provisioning);
        let (changed, acts) = Self::take_dirty(&mut st);
        drop(st);
        self.store
            .save_monitor_state(&changed, &acts, &[], false, now)?;
        self.record_provisioning_errors(&provisioning_errors);
        Ok(())
    }

    fn tick_inner(&self, report: &mut TickReport) -> Result<(), StoreError> {
        let now = self.clock.now();
        let clients = self.store.list_clients()?;
        let mut st = lock(&self.state);
        self.fold_unfolded(&mut st, now)?;
        let provisioning_errors = std::mem::take(&mut st.provisioning);
        // Write this instance's heartbeats, then read every instance's back: the states
        // are decided on all of them.
        let (changed, acts) = Self::take_dirty(&mut st);
        self.store
            .save_monitor_state(&changed, &acts, &[], false, now)?;
        st.health = None;
        self.load_health(&mut st)?;
        let Buffers { health, dirty, .. } = &mut *st;
        let health = health.get_or_insert_with(HashMap::default);
        let mut audits = Vec::new();
        let mut lines = Vec::new();
        for c in &clients {
            let known = health.contains_key(&c.id);
            let h = health
                .entry(c.id.clone())
                .or_insert_with(|| ClientHealth::idle(&c.id, c.created_at));
            let new = health::evaluate(c, Some(h), now);
            if !known {
                h.state = new;
                dirty.insert(c.id.clone());
                continue;
            }
            if new == h.state {
                continue;
            }
            let old = h.state;
            h.state = new;
            h.state_since = now;
            dirty.insert(c.id.clone());
            let text = transition_text(c, h, old, new, now);
            lines.push(json!({
                "ts": crate::time::format_rfc3339(now),
                "event": "state",
                "client_id": c.id,
                "client_name": c.name,
                "from": old.as_str(),
                "to": new.as_str(),
                "detail": text,
            }));
            audits.push(NewAuditEvent {
                actor: "server:monitor".into(),
                action: AuditAction::MonitorStateChange,
                outcome: new.as_str().into(),
                client_id: Some(c.id.clone()),
                token_id: h.last_token_id.clone(),
                detail: Some(format!("{} → {}: {text}", old.as_str(), new.as_str())),
            });
            let quiet = matches!(old, HealthState::Idle) && matches!(new, HealthState::Healthy);
            if !quiet {
                report.notifications.push(Notification {
                    event: "state_change",
                    severity: match health::severity(new) {
                        2 => Severity::Critical,
                        1 => Severity::Warning,
                        _ => Severity::Info,
                    },
                    client_id: c.id.clone(),
                    client_name: c.name.clone(),
                    token_id: h.last_token_id.clone(),
                    text,
                    at: now,
                    details: json!({"from": old.as_str(), "to": new.as_str(),
                        "last_success_at": h.last_success_at.map(crate::time::format_rfc3339),
                        "last_failure_reason": h.last_failure_reason}),
                    lines: Vec::new(),
                });
            }
        }
        let (changed, acts) = Self::take_dirty(&mut st);
        drop(st);
        self.log.write(&lines);
        self.store
            .save_monitor_state(&changed, &acts, &audits, true, now)?;
        self.record_provisioning_errors(&provisioning_errors);
        self.send_digests(&clients, now)?;
        self.check_expiry(&clients, now, report)?;
        self.prune_if_due(now)?;
        Ok(())
    }

    /// Store this tick's provisioning errors; a failure is logged and counted, and does
    /// not stop the tick.
    fn record_provisioning_errors(&self, errors: &[crate::store::ProvisioningError]) {
        match self.store.record_provisioning_errors(errors) {
            Ok(0) => {}
            Ok(dropped) => lock(&self.counters).provisioning_errors_dropped += dropped,
            Err(e) => {
                tracing::error!(error = %e, count = errors.len(), "recording provisioning errors failed");
                lock(&self.counters).provisioning_errors_unrecorded += errors.len() as u64;
            }
        }
    }

    /// Send each client whose provisioning errors are due a digest of them (see `digest`).
    fn send_digests(&self, clients: &[Client], now: Timestamp) -> Result<(), StoreError> {
        let interval = self.settings.digest_interval.secs();
        for p in self.store.pending_provisioning_errors()? {
            if !self.digests.begin(&p, now, interval) {
                continue;
            }
            let rows = match self.store.pending_provisioning_errors_of(
                &p.client_id,
                p.last_id,
                digest::MAX_LISTED,
            ) {
                Ok(rows) => rows,
                Err(e) => {
                    self.digests
                        .finish(&self.store, &p.client_id, p.last_id, now, false);
                    return Err(e);
                }
            };
            let client = clients.iter().find(|c| c.id == p.client_id);
            let note = digest::compose(&p, client.map(|c| c.name.as_str()), &rows, now);
            self.log.write(&[json!({
                "ts": crate::time::format_rfc3339(now), "event": "provisioning_digest",
                "client_id": p.client_id, "errors": p.count,
            })]);
            let (store, digests) = (self.store.clone(), self.digests.clone());
            let (client_id, last_id) = (p.client_id.clone(), p.last_id);
            self.notifier.send_with(
                note,
                client.map(|c| c.alert_emails.clone()).unwrap_or_default(),
                Some(Box::new(move |ok| {
                    digests.finish(&store, &client_id, last_id, now, ok)
                })),
            );
        }
        Ok(())
    }

    /// Provisioning-error digests delivered and failed since the server started.
    pub fn digest_counts(&self) -> (u64, u64) {
        (
            self.digests.sent.load(Ordering::Relaxed),
            self.digests.failed.load(Ordering::Relaxed),
        )
    }

    /// With `token_retention` set, delete the tokens that expired that long ago: at the
    /// first tick, then once a day (the same deletion as `config prune-tokens`); and the
    /// provisioning errors older than that.
    fn prune_if_due(&self, now: Timestamp) -> Result<(), StoreError> {
        let Some(retention) = self.settings.token_retention else {
            return Ok(());
        };
        let mut last = lock(&self.last_prune);
        if last.is_some_and(|t| now - t < PRUNE_EVERY) {
            return Ok(());
        }
        let cutoff = now.saturating_sub(retention.secs());
        // Audited when it deleted something: a daily "deleted 0" would only be noise.
        let pruned = self.store.prune_tokens(cutoff, now, |p| {
            (p.tokens > 0).then(|| NewAuditEvent {
                detail: Some(format!(
                    "{} (token_retention {retention})",
                    p.describe(cutoff)
                )),
                ..NewAuditEvent::new("server:monitor", AuditAction::TokenPrune, "success")
            })
        })?;
        let provisioning_errors = self.store.prune_provisioning_errors(cutoff)?;
        *last = Some(now);
        tracing::info!(
            provisioning_errors,
            tokens = pruned.tokens,
            codes = pruned.codes,
            %retention,
            "pruned expired tokens"
        );
        Ok(())
    }

    fn check_expiry(
        &self,
        clients: &[Client],
        now: Timestamp,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        if self.settings.leads.is_empty() {
            return Ok(());
        }
        let names: HashMap<&str, &Client> = clients.iter().map(|c| (c.id.as_str(), c)).collect();
        // The store returns only the tokens a warning is due for (inside a lead they
        // outlived, the tightest such lead not yet warned); expiry::applicable names those
        // leads again here, for the record and the message.
        let all_leads: Vec<i64> = self.settings.leads.iter().map(|l| l.secs()).collect();
        let tokens = self.store.tokens_to_warn(now, &all_leads)?;
        for t in tokens {
            let leads = expiry::applicable(
                t.expires_at - t.issued_at,
                t.expires_at - now,
                &self.settings.leads,
            );
            let Some(&tightest) = leads.first() else {
                continue;
            };
            let Some(client) = names.get(t.client_id.as_str()) else {
                continue;
            };
            let text = format!(
                "Token {} of client {} ({}) expires {} ({}). Issue its replacement with `config rotate-token {}` and update the IdP before then.",
                t.id,
                client.name,
                client.id,
                format_relative(t.expires_at, now),
                format_local(t.expires_at),
                t.id
            );
            let audit = NewAuditEvent {
                actor: "server:monitor".into(),
                action: AuditAction::MonitorExpiryWarning,
                outcome: "sent".into(),
                client_id: Some(client.id.clone()),
                token_id: Some(t.id.to_string()),
                detail: Some(format!("{} before expiry", Duration::seconds(tightest))),
            };
            if self
                .store
                .record_warning(t.id.as_str(), &leads, now, &audit)?
            {
                self.log.write(&[json!({
                    "ts": crate::time::format_rfc3339(now), "event": "expiry_warning",
                    "client_id": client.id, "token_id": t.id, "lead": Duration::seconds(tightest).to_string(),
                    "expires_at": crate::time::format_rfc3339(t.expires_at),
                })]);
                report.notifications.push(Notification {
                    event: "token_expiry",
                    severity: if tightest <= Duration::days(1).secs() {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    client_id: client.id.clone(),
                    client_name: client.name.clone(),
                    token_id: Some(t.id.to_string()),
                    text,
                    at: now,
                    details: json!({"lead": Duration::seconds(tightest).to_string(),
                        "expires_at": crate::time::format_rfc3339(t.expires_at)}),
                    lines: Vec::new(),
                });
            }
        }
        for c in clients {
            let Some(expires) = c.secret_expires_at else {
                continue;
            };
            let lifetime = c
                .secret_ttl
                .map(|d| d.secs())
                .unwrap_or(expires - c.updated_at);
            let leads = expiry::applicable(lifetime, expires - now, &self.settings.leads);
            let Some(&tightest) = leads.first() else {
                continue;
            };
            let subject = expiry::secret_subject(&c.id, expires);
            if self.store.warning_fired(&subject, tightest)? {
                continue;
            }
            let audit = NewAuditEvent {
                actor: "server:monitor".into(),
                action: AuditAction::MonitorSecretExpiryWarning,
                outcome: "sent".into(),
                client_id: Some(c.id.clone()),
                token_id: None,
                detail: Some(format!("{} before expiry", Duration::seconds(tightest))),
            };
            if self.store.record_warning(&subject, &leads, now, &audit)? {
                report.notifications.push(Notification {
                    event: "secret_expiry",
                    severity: if tightest <= Duration::days(1).secs() { Severity::Critical } else { Severity::Warning },
                    client_id: c.id.clone(),
                    client_name: c.name.clone(),
                    token_id: None,
                    text: format!(
                        "The client secret of {} ({}) expires {} ({}). Replace it with `config rotate-client-secret -i {}` and update the IdP.",
                        c.name, c.id, format_relative(expires, now), format_local(expires), c.id
                    ),
                    at: now,
                    details: json!({"lead": Duration::seconds(tightest).to_string(),
                        "expires_at": crate::time::format_rfc3339(expires)}),
                    lines: Vec::new(),
                });
            }
        }
        Ok(())
    }
}

fn transition_text(
    c: &Client,
    h: &ClientHealth,
    old: HealthState,
    new: HealthState,
    now: Timestamp,
) -> String {
    let since = |t: Option<Timestamp>| {
        t.map(|t| format!("{} ({})", format_local(t), format_relative(t, now)))
            .unwrap_or_else(|| "never".into())
    };
    match new {
        HealthState::Failing => {
            let (cause, remedy) = health::failure_clauses(h);
            format!(
                "Client {} ({}) is failing: {cause}. Provisioning is broken; {remedy}.",
                c.name, c.id
            )
        }
        HealthState::Missed => format!(
            "Client {} ({}) missed its heartbeats: no successful SCIM call since {} (expected every {}).",
            c.name,
            c.id,
            since(h.last_success_at),
            c.heartbeat
                .map(|hb| hb.interval.to_string())
                .unwrap_or_default()
        ),
        HealthState::Late => format!(
            "Client {} ({}) is late: last successful SCIM call at {} (expected every {}).",
            c.name,
            c.id,
            since(h.last_success_at),
            c.heartbeat
                .map(|hb| hb.interval.to_string())
                .unwrap_or_default()
        ),
        HealthState::Healthy if old == HealthState::Idle => format!(
            "Client {} ({}) is provisioning: first successful SCIM call, from {}.",
            c.name,
            c.id,
            h.last_success_ip.as_deref().unwrap_or("an unknown address")
        ),
        HealthState::Healthy => format!(
            "Client {} ({}) is healthy again (was {}).",
            c.name,
            c.id,
            old.as_str()
        ),
        HealthState::Idle => format!("Client {} ({}) is idle.", c.name, c.id),
    }
}

/// The meta key under which the server publishes its expiry-warning lead times, so
/// `config status` warns at the same lead times.
pub const LEADS_META_KEY: &str = "expiry_warning_leads";

/// Record the configured lead times in the store (audited when they change).
pub fn publish_leads(store: &Store, settings: &MonitorSettings) -> Result<(), StoreError> {
    let value = settings
        .leads
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if store.meta(LEADS_META_KEY)?.as_deref() == Some(value.as_str()) {
        return Ok(());
    }
    let e = NewAuditEvent {
        detail: Some(format!("expiry warnings at {value}")),
        ..NewAuditEvent::new("server", AuditAction::SettingsExpiryWarnings, "success")
    };
    store.set_meta(
        LEADS_META_KEY,
        &value,
        crate::time::Clock::system().now(),
        &e,
    )
}

/// The lead times the server published (the defaults if it never did).
pub fn published_leads(store: &Store) -> Result<Vec<Duration>, StoreError> {
    let v = store.meta(LEADS_META_KEY)?;
    Ok(
        config::parse_leads(v.as_deref().unwrap_or(config::DEFAULT_LEADS))
            .unwrap_or_else(|_| config::parse_leads(config::DEFAULT_LEADS).unwrap_or_default()),
    )
}

/// A name for this process as a lease holder: host, process id and a random part (a
/// restarted process with the same pid on the same host is another holder).
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let mut random = [0u8; 4];
    crate::token::os_random(&mut random);
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        u32::from_le_bytes(random)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A monitor with default settings on a new store in a temporary directory (kept
    /// as long as the directory is).
    fn monitor_on_a_new_store() -> (tempfile::TempDir, Monitor) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_or_create(dir.path().join("s.db")).unwrap());
        let settings = config::resolve(
            &crate::settings::RawSettings::default(),
            Some(&dir.path().join("s.db")),
        )
        .unwrap();
        (dir, Monitor::new(store, Clock::system(), settings))
    }

    fn conflict(i: usize) -> RequestEvent {
        RequestEvent {
            at: 1_800_000_000,
            attribution: Attribution::Token {
                token_id: Some(format!("tok_{i:020}")),
                client_id: "cl_0011223344556677".into(),
                verdict: Verdict::Accepted,
            },
            method: actix_web::http::Method::POST,
            path: "/scim/v2/Users".into(),
            status: 409,
            ip: Some([192, 0, 2, 7].into()),
            user_agent: None,
            latency_ms: 0.25,
            refusal: None,
        }
    }

    /// A drain hands the request path back a buffer with room for as many requests as it
    /// drained (recording does not regrow one from nothing, copying it, after every
    /// drain), and keeps at most [`MAX_SPARE_EVENTS`] of room. Every event is still
    /// drained once.
    #[test]
    fn a_drain_leaves_the_request_path_a_buffer_with_room() {
        let (_dir, monitor) = monitor_on_a_new_store();
        for i in 0..1000 {
            monitor.record(conflict(i));
        }
        monitor.drain();
        monitor.drain();
        assert!(lock(&monitor.pending).capacity() >= 1000);
        for i in 0..MAX_SPARE_EVENTS + 10 {
            monitor.record(conflict(i));
        }
        monitor.drain();
        assert!(lock(&monitor.pending).is_empty());
        assert!(lock(&monitor.spare).capacity() <= MAX_SPARE_EVENTS);
        let counted: u64 = monitor
            .counters()
            .scim
            .values()
            .flat_map(|m| m.values())
            .sum();
        assert_eq!(counted, 1000 + MAX_SPARE_EVENTS as u64 + 10);
    }

    /// Folding at every drain: interleaved clients, an hour's edge and refusals count where
    /// they belong across drains, and the last address and token are the last request's.
    #[test]
    fn the_fold_counts_each_client_and_hour_and_keeps_the_last_address() {
        let (_dir, monitor) = monitor_on_a_new_store();
        // 1,800,000,000 is itself on an hour's edge (500,000 × 3,600).
        let hour: Timestamp = 1_800_000_000;
        assert_eq!(hour % 3600, 0);
        let event = |client: &str, at: Timestamp, ok: bool, ip: [u8; 4], token: &str| {
            let mut e = conflict(0);
            e.at = at;
            e.status = if ok { 200 } else { 401 };
            e.ip = Some(ip.into());
            e.attribution = Attribution::Token {
                token_id: Some(token.into()),
                client_id: client.into(),
                verdict: if ok {
                    Verdict::Accepted
                } else {
                    Verdict::Expired
                },
            };
            e
        };
        for e in [
            event("a", hour + 10, true, [10, 0, 0, 1], "t1"),
            event("a", hour + 11, true, [10, 0, 0, 1], "t1"),
            event("b", hour + 12, false, [10, 0, 0, 9], "t9"),
            event("a", hour + 13, false, [10, 0, 0, 1], "t1"),
            // Another client from the same address, then from another (the address text
            // is written once per address in a drain, and still kept per client).
            event("c", hour + 14, true, [10, 0, 0, 1], "t5"),
            event("c", hour + 15, true, [10, 0, 0, 1], "t5"),
            event("c", hour + 16, true, [10, 0, 0, 5], "t5"),
            event("a", hour + 3600, true, [10, 0, 0, 2], "t2"),
        ] {
            monitor.record(e);
        }
        monitor.drain();
        monitor.record(event("a", hour + 3601, true, [10, 0, 0, 2], "t2"));
        monitor.drain();
        let st = lock(&monitor.state);
        let count = |c: &str, h: Timestamp| st.activity.get(c).and_then(|m| m.get(&h)).copied();
        assert_eq!(count("a", hour), Some((2, 1)));
        assert_eq!(count("a", hour + 3600), Some((2, 0)));
        assert_eq!(count("b", hour), Some((0, 1)));
        assert_eq!(count("c", hour), Some((3, 0)));
        assert_eq!(st.activity.values().map(HashMap::len).sum::<usize>(), 4);
        let a = &st.health.as_ref().unwrap()["a"];
        assert_eq!(a.last_success_ip.as_deref(), Some("10.0.0.2"));
        let c = &st.health.as_ref().unwrap()["c"];
        assert_eq!(c.last_success_ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(a.last_token_id.as_deref(), Some("t2"));
        assert_eq!(a.last_failure_at, Some(hour + 13));
        let b = &st.health.as_ref().unwrap()["b"];
        assert_eq!(
            (b.last_success_at, b.last_failure_status),
            (None, Some(401))
        );
        assert_eq!(
            b.last_failure_reason.as_deref(),
            Some(Verdict::Expired.as_str())
        );
        assert_eq!(st.dirty.len(), 3);
    }

    #[test]
    fn a_drain_folds_its_events_at_once_and_keeps_at_most_so_many_provisioning_errors() {
        let (_dir, monitor) = monitor_on_a_new_store();
        for i in 0..MAX_PENDING_PROVISIONING + 5 {
            monitor.record(conflict(i));
        }
        monitor.drain();
        let st = lock(&monitor.state);
        // Folded: no event is held past its drain (under load, a second of them was).
        assert!(st.unfolded.is_empty());
        let health = &st.health.as_ref().unwrap()["cl_0011223344556677"];
        assert_eq!(health.last_success_at, Some(1_800_000_000));
        assert_eq!(st.provisioning.len(), MAX_PENDING_PROVISIONING);
        drop(st);
        assert_eq!(monitor.counters().provisioning_errors_dropped, 5);
    }
}
