//! Background WAL checkpoints for the server, so that the thread that commits tokens
//! rarely waits for the disk.
//!
//! SQLite's automatic checkpoint runs in whichever connection commits the transaction that
//! crosses the threshold: it copies the WAL's pages into the database file and fsyncs both
//! files, and the server's writer (the token batch leader, see [`super::batch`]) sat in that
//! fsync while every issuing request waited (bench/RESULTS.md: about a quarter of the time
//! under load was I/O wait). Here a thread with its own connection runs `PASSIVE`
//! checkpoints every [`INTERVAL`]: they copy and fsync concurrently with the writer and
//! never block it. The writer keeps an automatic checkpoint as a backstop at a larger
//! threshold ([`WRITER_BACKSTOP_PAGES`]): a WAL can only start over from its beginning once
//! everything in it is checkpointed, which under continuous writes happens when the writer
//! itself checkpoints between two transactions — by then the background thread has copied
//! almost everything, so that checkpoint is short.

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Result, Store, StoreError, configure};
use crate::sync::{Background, Stop};

/// How often the background thread checkpoints.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint threshold while the background thread runs.
pub const WRITER_BACKSTOP_PAGES: i64 = 16_384;

/// Handle on the checkpoint thread; [`shutdown`](Checkpointer::shutdown) stops it (so does
/// dropping the last clone).
#[derive(Clone, Debug)]
pub struct Checkpointer {
    thread: Background,
}

impl Checkpointer {
    /// Open a second connection to `store`'s file and checkpoint from it every
    /// [`INTERVAL`]; raise the writer's own threshold to [`WRITER_BACKSTOP_PAGES`].
    /// `None` on PostgreSQL, which checkpoints on its own.
    pub fn start(store: &Store) -> Result<Option<Checkpointer>> {
        let Some(path) = store.sqlite_path() else {
            return Ok(None);
        };
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(&e))?;
        configure(&conn).map_err(|e| open_err(&e))?;
        store
            .writer()?
            .pragma_update(None, "wal_autocheckpoint", WRITER_BACKSTOP_PAGES)?;
        let thread = Background::spawn("wal-checkpoint", move |stop| run(&conn, stop))
            .map_err(|e| open_err(&e))?;
        Ok(Some(Checkpointer { thread }))
    }

    /// Stop the thread (after the checkpoint in progress, if any).
    pub fn shutdown(&self) {
        self.thread.stop();
    }
}

fn run(conn: &Connection, stop: &Stop) {
    while !stop.wait(INTERVAL) {
        // (busy, frames in the WAL, frames checkpointed); PASSIVE never blocks the writer
        // and does nothing (no fsync) when there is nothing new.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
        {
            tracing::warn!(error = %e, "background WAL checkpoint failed; the writer's own checkpoint still runs");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_in_the_background_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        let c = Checkpointer::start(&store).unwrap().unwrap();
        let threshold: i64 = store
            .writer()
            .unwrap()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(threshold, WRITER_BACKSTOP_PAGES);
        let e = crate::model::NewAuditEvent::new(
            "test",
            crate::model::AuditAction::PolicyUpdate,
            "success",
        );
        let file_len = || {
            std::fs::metadata(store.sqlite_path().unwrap())
                .unwrap()
                .len()
        };
        let before = file_len();
        // Enough rows to need new pages; the writer will not checkpoint them itself (its
        // threshold is far away), so only the background thread can grow the file.
        for _ in 0..300 {
            store.audit(&e, 0).unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no background checkpoint"
            );
            std::thread::sleep(INTERVAL);
        }
        c.shutdown();
    }
}
