//! Callers, timing and the figures: every driver's workers run the same loop.

use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Test {
    Select,
    Insert,
    Batch,
}

impl FromStr for Test {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "select" => Ok(Test::Select),
            "insert" => Ok(Test::Insert),
            "batch" => Ok(Test::Batch),
            _ => Err(format!("unknown test {s}")),
        }
    }
}

impl Test {
    pub fn name(self) -> &'static str {
        match self {
            Test::Select => "point SELECT",
            Test::Insert => "1-row INSERT + COMMIT",
            Test::Batch => "32 INSERTs + COMMIT",
        }
    }
    /// Rows one operation touches.
    pub fn rows(self) -> usize {
        if self == Test::Batch { crate::BATCH } else { 1 }
    }
}

/// The window a worker measures in: operations before `start` warm the pool up.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn new(opts: &crate::Opts) -> Self {
        let start = Instant::now() + opts.warmup;
        Window {
            start,
            end: start + Duration::from_secs_f64(opts.secs),
        }
    }
}

/// What one worker measured: latencies (µs) of the operations that began in the window.
#[derive(Default)]
pub struct Worker {
    pub lat_us: Vec<u32>,
    rng: u64,
}

impl Worker {
    pub fn new(seed: u64) -> Self {
        Worker {
            lat_us: Vec::with_capacity(1 << 16),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (seed + 1).wrapping_mul(0xD1B5_4A32_D192_ED69),
        }
    }
    /// xorshift64*: a key to look up or insert.
    pub fn next(&mut self) -> i64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 1) as i64
    }
    pub fn key(&mut self) -> i64 {
        self.next() % crate::ROWS + 1
    }
    pub fn record(&mut self, w: &Window, began: Instant) {
        if began >= w.start {
            self.lat_us
                .push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
}

pub struct Stats {
    pub ops: usize,
    pub secs: f64,
    pub rows_per_op: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    pub fn of(workers: Vec<Worker>, w: &Window, test: Test) -> Stats {
        let mut lat: Vec<u32> = workers.into_iter().flat_map(|w| w.lat_us).collect();
        lat.sort_unstable();
        let pct = |p: f64| {
            if lat.is_empty() {
                0.0
            } else {
                lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
            }
        };
        Stats {
            ops: lat.len(),
            secs: (w.end - w.start).as_secs_f64(),
            rows_per_op: test.rows(),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
        }
    }
    pub fn row(&self, driver: &str, tls: bool, test: Test, callers: usize) -> String {
        let ops = self.ops as f64 / self.secs;
        format!(
            "| {driver}{} | {} | {callers} | {:.0} | {:.0} | {:.2} | {:.2} |",
            if tls { " (TLS)" } else { "" },
            test.name(),
            ops,
            ops * self.rows_per_op as f64,
            self.p50_ms,
            self.p99_ms
        )
    }
}
