//! `scimgate serve`: the binary starts on the embedded SQLite default, creates the store,
//! and answers /healthz and /readyz.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestServer, TestStore, http};

#[test]
fn in_process_server_answers_health_and_readiness() {
    let s = TestStore::empty();
    let server = TestServer::start(&s.db, scimgate::time::Clock::system());
    let r = http().get(server.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["status"], "ok");
    let r = http().get(server.url("/readyz")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.db.exists());
}

#[test]
fn serve_binary_creates_the_store_and_listens() {
    let s = TestStore::empty();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(s.dir.path())
        .env_remove("SCIMGATE_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut ok = false;
    while Instant::now() < deadline {
        if let Ok(r) = http().get(&url).send() {
            ok = r.status() == 200;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let stderr = child.stderr.take().unwrap();
    let _ = child.wait();
    let log: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(ok, "server did not answer: {log:?}");
    assert!(
        s.dir.path().join("scimgate.db").exists(),
        "default store ./scimgate.db created"
    );
}

#[test]
fn serve_rejects_bad_settings_before_binding() {
    let out = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("setting `listen`"), "{err}");
}
