//! Test fixtures: a temporary store driven through the real `config` binary, and the real
//! HTTP server started in-process on a free port (same routes as `scimgate serve`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use assert_cmd::Command;
use serde_json::Value;

pub const TOOL_PASSWORD: &str = "tool-password-1";

/// Path of the `config` binary, built once per test run. It belongs to another package of
/// the workspace, so cargo does not build it for this test binary by itself.
pub fn config_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/integration-… → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile directory")
            .to_path_buf();
        let release = profile_dir.ends_with("release");
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", "scimgate-cli", "--bin", "config"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // Not the variables cargo set for this test process: build scripts watch some of
        // them (ring: CARGO_MANIFEST_DIR, CARGO_PKG_*), and seeing other values than a plain
        // `cargo build` does, they would rebuild ring and all above it each time the two
        // alternate (about 25 s each way in scripts/test.sh).
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_BIN_",
                "CARGO_CRATE_",
            ]
            .iter()
            .any(|p| k.starts_with(p))
                || matches!(
                    &*k,
                    "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR"
                )
            {
                cmd.env_remove(&key);
            }
        }
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the config binary");
        assert!(status.success(), "building the config binary failed");
        let bin = profile_dir.join(format!("config{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// A temporary store directory and helpers to run `config` on it. The store is the SQLite
/// file `db`, or with [`TestStore::empty_postgres`] a new database on the PostgreSQL test
/// cluster (`pg`), which `config` and the server reach by URL.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub pg: Option<PgDatabase>,
}

/// A database of its own on the PostgreSQL test cluster (scripts/test.sh starts it and
/// sets `SCIMGATE_TEST_PG_URL` and `SCIMGATE_TEST_PG_CA`), dropped with the value.
pub struct PgDatabase {
    /// The URL the store is opened with: TLS required, verified against the cluster's CA.
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    /// A new empty database; `None` when no cluster runs, unless
    /// `SCIMGATE_TEST_PG_REQUIRED` is set (scripts/test.sh sets it): then a failure.
    pub fn create() -> Option<PgDatabase> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = match std::env::var("SCIMGATE_TEST_PG_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var_os("SCIMGATE_TEST_PG_REQUIRED").is_none(),
                    "SCIMGATE_TEST_PG_REQUIRED is set but SCIMGATE_TEST_PG_URL is not"
                );
                return None;
            }
        };
        let name = format!(
            "it_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("test cluster");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a database");
        let mut url = url::Url::parse(&admin).expect("cluster URL");
        url.set_path(&format!("/{name}"));
        let ca = std::env::var("SCIMGATE_TEST_PG_CA").unwrap_or_default();
        if !ca.is_empty() {
            url.set_query(Some(&format!("sslmode=require&sslrootcert={ca}")));
        }
        Some(PgDatabase {
            url: url.to_string(),
            admin,
            name,
        })
    }

    /// The password in the URL (to check that no output shows it).
    pub fn password(&self) -> String {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.password().map(str::to_string))
            .unwrap_or_default()
    }

    /// A plain client on the database, for a test's own statements.
    pub fn client(&self) -> postgres::Client {
        let mut url = url::Url::parse(&self.admin).expect("cluster URL");
        url.set_path(&format!("/{}", self.name));
        postgres::Client::connect(url.as_str(), postgres::NoTls).expect("connect")
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Whether this run of the suite puts every store on PostgreSQL
/// (`SCIMGATE_TEST_BACKEND=postgres`; scripts/test.sh runs the suite once on each backend).
pub fn on_postgres() -> bool {
    std::env::var("SCIMGATE_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// Open the store at `db`, a file or (in a PostgreSQL run) a URL held as a path.
pub fn open_store(db: &Path) -> scimgate::store::Store {
    let location = scimgate::store::Location::parse(&db.display().to_string()).expect("location");
    scimgate::store::Store::open_or_create(location).expect("open store")
}

impl TestStore {
    /// An empty directory and no store yet: a file `scimgate.db` in it, or in a
    /// PostgreSQL run (see [`on_postgres`]) an empty database, whose URL `db` then holds.
    pub fn empty() -> TestStore {
        if on_postgres() {
            return TestStore::empty_postgres().expect("SCIMGATE_TEST_PG_URL for a PostgreSQL run");
        }
        TestStore::empty_sqlite()
    }

    /// An empty directory; the store file does not exist yet (whatever the run).
    pub fn empty_sqlite() -> TestStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("scimgate.db");
        TestStore { dir, db, pg: None }
    }

    /// An empty directory and an empty PostgreSQL database as the store; `None` when no
    /// test cluster runs (see [`PgDatabase::create`]).
    pub fn empty_postgres() -> Option<TestStore> {
        let pg = PgDatabase::create()?;
        let mut s = TestStore::empty_sqlite();
        s.db = PathBuf::from(&pg.url);
        s.pg = Some(pg);
        Some(s)
    }

    /// A SQLite store initialised with [`TOOL_PASSWORD`], whatever the run (a test of the
    /// file itself, or of a move from SQLite).
    pub fn init_sqlite() -> TestStore {
        let s = TestStore::empty_sqlite();
        s.init_it();
        s
    }

    /// A PostgreSQL store initialised with [`TOOL_PASSWORD`].
    pub fn init_postgres() -> Option<TestStore> {
        let s = TestStore::empty_postgres()?;
        s.init_it();
        Some(s)
    }

    /// The store as `--db` / `SCIMGATE_DB` name it: the file, or the database's URL.
    pub fn location(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => self.db.display().to_string(),
        }
    }

    /// A store initialised with [`TOOL_PASSWORD`].
    pub fn init() -> TestStore {
        let s = TestStore::empty();
        s.init_it();
        s
    }

    fn init_it(&self) {
        self.config_no_password()
            .args(["init", "--tool-password-file"])
            .arg(self.password_file())
            .assert()
            .success();
    }

    pub fn password_file(&self) -> PathBuf {
        let p = self.dir.path().join("tool-password");
        if !p.exists() {
            std::fs::write(&p, format!("{TOOL_PASSWORD}\n")).expect("write password file");
        }
        p
    }

    /// `config` with the store set and no password source.
    pub fn config_no_password(&self) -> Command {
        Command::from_std(self.config_std())
    }

    /// The same as a plain `std::process::Command`, for spawning.
    pub fn config_std(&self) -> std::process::Command {
        let mut c = std::process::Command::new(config_bin());
        c.env_clear()
            .env("SCIMGATE_DB", self.location())
            .env("USER", "tester")
            .env("TZ", "UTC")
            .current_dir(self.dir.path());
        c
    }

    /// `config` with the store set and the tool password in the environment.
    pub fn config(&self) -> Command {
        let mut c = self.config_no_password();
        c.env("SCIMGATE_TOOL_PASSWORD", TOOL_PASSWORD);
        c
    }

    /// Run `config --json ARGS`, expect success, parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self
            .config()
            .arg("--json")
            .args(args)
            .output()
            .expect("run config");
        assert!(
            out.status.success(),
            "config {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "config {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Run `config ARGS`, expect failure with `code`; return stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.config().args(args).output().expect("run config");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            out.status.code(),
            Some(code),
            "config {args:?}: expected exit {code}; stdout: {} stderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_one_sentence(&stderr);
        stderr
    }

    /// Register a client_credentials client with both scopes; return its id.
    pub fn cc_client(&self, name: &str) -> String {
        self.cc_client_with(name, &[])
    }

    /// [`TestStore::cc_client`] with more `register-api-client` flags.
    pub fn cc_client_with(&self, name: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "register-api-client",
            "-n",
            name,
            "-G",
            "client_credentials",
            "-S",
            "user-directory.read.all",
            "-S",
            "user-directory.write.all",
        ];
        args.extend_from_slice(extra);
        let v = self.json(&args);
        v["id"].as_str().expect("client id").to_string()
    }

    /// Issue a token to `client`; return (token, token id).
    pub fn issue(&self, client: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["issue-access-token", "-i", client];
        args.extend_from_slice(extra);
        let v = self.json(&args);
        (
            v["access_token"].as_str().expect("token").to_string(),
            v["id"].as_str().expect("token id").to_string(),
        )
    }

    /// The audit log as JSON.
    pub fn audit(&self) -> Vec<Value> {
        self.json(&["audit", "--limit", "1000"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// An error on stderr is one line, starts with `error: `, and shows no Rust debug output.
pub fn assert_one_sentence(stderr: &str) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for debug in [
        "panicked",
        "Error {",
        "Some(",
        "SqliteFailure",
        "RUST_BACKTRACE",
    ] {
        assert!(!stderr.contains(debug), "debug output on stderr: {stderr}");
    }
}

/// The real HTTP server (the routes of `scimgate serve`) on 127.0.0.1 and a free port.
pub struct TestServer {
    pub base: String,
    pub store: Arc<scimgate::store::Store>,
    /// The server's state (its monitor, caches, settings), as the handlers see it.
    pub state: scimgate::state::AppState,
    /// The server's token batcher (group commit), for its counters.
    pub token_batcher: scimgate::store::TokenBatcher,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _log_dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start(db: &Path, clock: scimgate::time::Clock) -> TestServer {
        TestServer::start_with(db, clock, scimgate::settings::RawSettings::default())
    }

    /// Start with extra settings (db and listen are filled in).
    pub fn start_with(
        db: &Path,
        clock: scimgate::time::Clock,
        raw: scimgate::settings::RawSettings,
    ) -> TestServer {
        TestServer::start_at(&db.display().to_string(), clock, raw)
    }

    /// Start on the store at `location` (a file or a postgres:// URL), with extra settings.
    pub fn start_at(
        location: &str,
        clock: scimgate::time::Clock,
        raw: scimgate::settings::RawSettings,
    ) -> TestServer {
        use actix_web::{App, HttpServer};
        use scimgate::http::configure;
        use scimgate::settings::{RawSettings, Settings};
        use scimgate::state::AppState;

        let parsed = scimgate::store::Location::parse(location).expect("store location");
        // The heartbeat log defaults to the store file's directory; a PostgreSQL store has
        // none (it would be the working directory, shared by every test): a directory of
        // this server's own.
        let log_dir = tempfile::tempdir().expect("tempdir");
        let raw = RawSettings {
            heartbeat_log: raw.heartbeat_log.or_else(|| {
                parsed.sqlite_path().is_none().then(|| {
                    log_dir
                        .path()
                        .join("scim_heartbeat.log")
                        .display()
                        .to_string()
                })
            }),
            ..raw
        };
        let store = Arc::new(scimgate::store::Store::open_or_create(parsed).expect("open store"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = listener.local_addr().expect("local addr");
        let settings = Settings::resolve(RawSettings {
            db: Some(location.to_string()),
            listen: Some(addr.to_string()),
            ..raw
        })
        .expect("settings");
        let state = AppState::new(store.clone(), settings, clock);
        let app_state = state.clone();
        let token_batcher = state.oauth.token_batcher.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let sys = actix_web::rt::System::new();
            sys.block_on(async move {
                let server = HttpServer::new(move || {
                    let state = app_state.clone();
                    App::new().configure(move |cfg| configure(cfg, state))
                })
                .workers(2)
                .listen(listener)
                .expect("listen")
                .run();
                tx.send(server.handle()).expect("send handle");
                let _ = server.await;
            });
        });
        let handle = rx.recv().expect("server handle");
        TestServer {
            _log_dir: log_dir,
            base: format!("http://{addr}"),
            store,
            state,
            token_batcher,
            handle,
            thread: Some(thread),
        }
    }

    /// Wait until the store records that this server's pass over SCIM documents stored
    /// in an older form finished (`scim::forms`).
    pub fn wait_for_forms_pass(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self
            .store
            .meta(scimgate::store::FORMS_CHECKED_KEY)
            .unwrap()
            .as_deref()
            != Some("1")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the pass never finished"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The health state the monitor stored for `client` (`idle` before it has any).
    pub fn health_state(&self, client: &str) -> String {
        self.store
            .client_health_of(client)
            .unwrap()
            .map(|h| h.state.as_str().to_string())
            .unwrap_or_else(|| "idle".into())
    }

    /// GET `path` and return the body (for pages such as `/metrics`).
    pub fn get_text(&self, path: &str) -> String {
        let r = http().get(self.url(path)).send().expect("request");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.text().expect("body")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(true)))
            .join()
            .ok();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.state.clone().shutdown();
    }
}

/// A blocking HTTP client that never uses a proxy.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Register a client_credentials client with `scopes` and issue it a token, through the
/// library (no tool-password round trip). Returns (client id, token).
pub fn client_with_token(
    db: &Path,
    scopes: &[scimgate::model::Scope],
    valid_for: &str,
) -> (String, String) {
    use scimgate::admin::{Admin, IssueToken, Lifetime, RegisterClient};
    let store = open_store(db);
    let admin = Admin::new(&store, scimgate::time::Clock::system(), "test");
    let (client, _) = admin
        .register_client(RegisterClient::new(
            "test idp",
            &[scimgate::model::GrantType::ClientCredentials],
            scopes,
        ))
        .expect("register");
    let (_, secret) = admin
        .issue_access_token(IssueToken {
            client_id: client.id.clone(),
            scopes: vec![],
            lifetime: Lifetime::For(scimgate::time::Duration::parse(valid_for).expect("duration")),
            label: None,
        })
        .expect("issue");
    (client.id, secret.expose().to_string())
}

/// A SCIM response: status, headers and parsed JSON body (Null when empty).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A small SCIM client over the real server.
pub struct Scim {
    pub base: String,
    pub token: String,
    http: reqwest::blocking::Client,
}

impl Scim {
    pub fn new(server: &TestServer, token: &str) -> Scim {
        Scim {
            base: server.url("/scim/v2"),
            token: token.to_string(),
            http: http(),
        }
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[])
    }
    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(&body), &[])
    }
    pub fn put(&self, path: &str, body: Value) -> Reply {
        self.send("PUT", path, Some(&body), &[])
    }
    pub fn patch(&self, path: &str, body: Value) -> Reply {
        self.send("PATCH", path, Some(&body), &[])
    }
    pub fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None, &[])
    }
}

/// A fresh store, the server on it, and a SCIM client whose token has the directory read
/// and write scopes: what every SCIM test starts from.
pub fn scim_setup() -> (TestStore, TestServer, Scim) {
    let s = TestStore::empty();
    let server = TestServer::start(&s.db, scimgate::time::Clock::system());
    let (_, token) = client_with_token(
        &s.db,
        &[
            scimgate::model::Scope::DirectoryRead,
            scimgate::model::Scope::DirectoryWrite,
        ],
        "1h",
    );
    let scim = Scim::new(&server, &token);
    (s, server, scim)
}

/// Assert a SCIM error body with `status` (and `scim_type` when given).
pub fn assert_scim_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert_eq!(
        r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{}",
        r.body
    );
    assert_eq!(r.body["status"], status.to_string());
    if let Some(t) = scim_type {
        assert_eq!(r.body["scimType"], t, "{}", r.body);
    }
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/scim+json")
    );
}
