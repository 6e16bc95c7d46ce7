//! The server and several `config` processes share one store file: no "database is
//! locked" may ever reach a user.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use scimgate::model::NewAuditEvent;

use crate::support::TestStore;

#[test]
fn concurrent_writers_never_see_a_locked_database() {
    let s = TestStore::init();
    let id = s.cc_client("A");
    // A second writer, as the server would be: appends audit events in a tight loop.
    let store = Arc::new(crate::support::open_store(&s.db));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let e = NewAuditEvent::new(
                    "server",
                    scimgate::model::AuditAction::PolicyUpdate,
                    "success",
                );
                store.audit(&e, 0).expect("server-side write");
                n += 1;
            }
            n
        })
    };
    // Eight `config` processes issuing tokens at the same time.
    let children: Vec<_> = (0..8)
        .map(|_| {
            s.config_std()
                .env("SCIMGATE_TOOL_PASSWORD", crate::support::TOOL_PASSWORD)
                .args(["--json", "issue-access-token", "-i", &id])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn config")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "config failed: {err}");
        assert!(!err.to_lowercase().contains("locked"), "{err}");
    }
    stop.store(true, Ordering::Relaxed);
    let server_writes = writer.join().unwrap();
    assert!(server_writes > 0);
    assert_eq!(s.json(&["list-tokens"]).as_array().unwrap().len(), 8);
}
