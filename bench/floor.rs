//! The benchmarks' floor (issue 15): the least work that can still answer each measured
//! request the way its target requires, on this machine's SQLite and disk. Where the
//! ceiling (`ceiling.rs`) is a bare actix-web server that touches no store, the floor
//! answers each request from a store with the same durability as scimgate's default
//! (WAL, `synchronous=FULL`: every commit fsyncs before its answer) and nothing else:
//!
//! - `POST /oauth2/token`: 32 bytes from the OS generator, their SHA-256 appended to a
//!   table with no index, through a group commit (one writer thread, one transaction for
//!   all the requests waiting); answers the token. No client authentication.
//! - `GET /scim/v2/Users?filter=userName eq "…"`: the document read through a unique
//!   index on the userName on the worker's own connection, as stored, wrapped in a
//!   ListResponse. No bearer check, no filter parser, no projection.
//! - `POST /scim/v2/Users`: the body stored as it came, under a new id, by the group
//!   commit (the userName's unique index is the only check). No schema validation.
//! - `PATCH /scim/v2/Users/{id}`: the `value` of the body's single operation written into
//!   the document's `name.givenName` by SQLite's `json_set`, in place, by the group commit;
//!   answers the new document. No PATCH parser.
//!
//! Its store (`floor prepare SRC DST`) holds the Users of a store that `seed users` filled,
//! with their documents byte for byte, in a table of three columns. So a ratio of the floor
//! to the ceiling bounds what any implementation that commits each write before answering
//! can reach on this machine, one core, and a ratio of scimgate to the floor says what
//! scimgate's own work costs on top of the store's. (A GET by id and introspection write
//! nothing and may answer from memory, as scimgate does: their floor is the ceiling.) It is a measuring instrument, not part
//! of scimgate, so its SQL is its own (three statements, not scimgate's schema).
//!
//! Usage: floor prepare SRC DST       copy SRC's Users into a new floor store DST
//!        floor serve DST 127.0.0.1:PORT

use std::cell::RefCell;
use std::sync::mpsc;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rand::TryRng;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// At most this many requests share one transaction (the benchmarks keep 32 in flight).
const MAX_BATCH: usize = 256;

enum Write {
    Token([u8; 32]),
    Insert {
        id: String,
        user_name: String,
        doc: String,
    },
    Patch {
        id: String,
        given_name: String,
    },
}

/// What a write answers: nothing (a token), or the stored document (None: no such User
/// for a PATCH, a taken userName for a create).
type Reply = oneshot::Sender<Option<String>>;

fn open(path: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
    )?;
    Ok(conn)
}

fn prepare(src: &str, dst: &str) -> rusqlite::Result<()> {
    let _ = std::fs::remove_file(dst);
    let conn = open(dst)?;
    conn.execute_batch(
        "CREATE TABLE users (id TEXT PRIMARY KEY, user_name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
         CREATE TABLE tokens (hash BLOB NOT NULL);",
    )?;
    conn.execute("ATTACH DATABASE ?1 AS src", [src])?;
    let n = conn.execute(
        "INSERT INTO users SELECT id, user_name, doc FROM src.scim_resources
         WHERE resource_type = 'User' ORDER BY id",
        [],
    )?;
    conn.execute_batch("DETACH DATABASE src; PRAGMA wal_checkpoint(TRUNCATE);")?;
    println!("{n} users");
    Ok(())
}

/// The group commit: waits for one write, takes every other one queued behind it, runs
/// them in one transaction, and answers each after the commit.
fn writer(conn: Connection, rx: mpsc::Receiver<(Write, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let answers = commit(&conn, &batch).expect("the floor's commit");
        for ((_, reply), answer) in batch.drain(..).zip(answers) {
            let _ = reply.send(answer);
        }
    }
}

fn commit(conn: &Connection, batch: &[(Write, Reply)]) -> rusqlite::Result<Vec<Option<String>>> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut answers = Vec::with_capacity(batch.len());
    for (write, _) in batch {
        answers.push(match write {
            Write::Token(hash) => {
                conn.prepare_cached("INSERT INTO tokens (hash) VALUES (?1)")?
                    .execute([&hash[..]])?;
                None
            }
            Write::Insert { id, user_name, doc } => {
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO users (id, user_name, doc) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![id, user_name, doc])?;
                (inserted == 1).then(|| doc.clone())
            }
            Write::Patch { id, given_name } => conn
                .prepare_cached(
                    "UPDATE users SET doc = json_set(doc, '$.name.givenName', ?2) WHERE id = ?1
                     RETURNING doc",
                )?
                .query_row(params![id, given_name], |r| r.get(0))
                .optional()?,
        });
    }
    conn.execute_batch("COMMIT")?;
    Ok(answers)
}

thread_local! {
    static READER: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

fn read(path: &str, sql: &str, key: &str) -> Option<String> {
    READER.with(|cell| {
        let mut cell = cell.borrow_mut();
        let conn = cell.get_or_insert_with(|| open(path).expect("open the floor's store"));
        conn.prepare_cached(sql)
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .expect("the floor's read")
    })
}

struct Floor {
    path: String,
    writes: mpsc::Sender<(Write, Reply)>,
}

impl Floor {
    async fn write(&self, w: Write) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        self.writes.send((w, tx)).expect("the writer runs");
        rx.await.expect("the writer answers")
    }
}

/// The text between `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

const SCIM: &str = "application/scim+json";

/// `doc` with `status`, or `missing` (with no body) when there is none.
fn found(status: StatusCode, doc: Option<String>, missing: StatusCode) -> HttpResponse {
    match doc {
        Some(doc) => HttpResponse::build(status).content_type(SCIM).body(doc),
        None => HttpResponse::build(missing).finish(),
    }
}

async fn token(floor: web::Data<Floor>, _body: web::Bytes) -> HttpResponse {
    let mut secret = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut secret)
        .expect("the OS generator");
    let token = hex(&secret);
    floor
        .write(Write::Token(Sha256::digest(token.as_bytes()).into()))
        .await;
    HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#
        ))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

async fn list(floor: web::Data<Floor>, req: HttpRequest) -> HttpResponse {
    let Some(name) = between(req.query_string(), "%22", "%22") else {
        return HttpResponse::BadRequest().finish();
    };
    match read(&floor.path, "SELECT doc FROM users WHERE user_name = ?1", name) {
        Some(doc) => HttpResponse::Ok().content_type(SCIM).body(format!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"Resources":[{doc}],"totalResults":1}}"#
        )),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn create(floor: web::Data<Floor>, body: String) -> HttpResponse {
    let Some(user_name) = between(&body, r#""userName":""#, "\"").map(str::to_owned) else {
        return HttpResponse::BadRequest().finish();
    };
    let id = uuid::Uuid::now_v7().to_string();
    let doc = format!(r#"{{"id":"{id}",{}"#, &body[1..]);
    let stored = floor.write(Write::Insert { id, user_name, doc }).await;
    found(StatusCode::CREATED, stored, StatusCode::CONFLICT)
}

async fn patch(floor: web::Data<Floor>, id: web::Path<String>, body: String) -> HttpResponse {
    let Some(given_name) = between(&body, r#""value":""#, "\"").map(str::to_owned) else {
        return HttpResponse::BadRequest().finish();
    };
    let id = id.into_inner();
    let doc = floor.write(Write::Patch { id, given_name }).await;
    found(StatusCode::OK, doc, StatusCode::NOT_FOUND)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: floor prepare SRC DST | floor serve DB 127.0.0.1:PORT";
    match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
        (Some("prepare"), Some(src), Some(dst)) => prepare(src, dst).map_err(std::io::Error::other),
        (Some("serve"), Some(db), Some(addr)) => serve(db.clone(), addr.clone()),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2)
        }
    }
}

#[actix_web::main]
async fn serve(path: String, addr: String) -> std::io::Result<()> {
    let conn = open(&path).map_err(std::io::Error::other)?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || writer(conn, rx));
    let floor = web::Data::new(Floor { path, writes: tx });
    HttpServer::new(move || {
        App::new()
            .app_data(floor.clone())
            .route("/oauth2/token", web::post().to(token))
            .route("/scim/v2/Users", web::get().to(list))
            .route("/scim/v2/Users", web::post().to(create))
            .route("/scim/v2/Users/{id}", web::patch().to(patch))
    })
    .workers(1)
    .bind(addr)?
    .run()
    .await
}
