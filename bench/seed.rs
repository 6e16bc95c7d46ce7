//! Bench fixture: fills a store with many token records or SCIM users through the library
//! (the same insert paths the server uses), fast, for the benchmarks in bench/.
//!
//! DB is a store file or a postgres:// URL.
//!
//! Usage: seed tokens DB N        N access tokens over 5 clients, expiries spread over 2 years
//!        seed users DB N         N SCIM users named user000000…
//!        seed group DB N         a SCIM Group of the first N of those users; print its id
//!        seed token DB           register a client and print a fresh read+write token
//!        seed client DB          register a client_credentials client; print `ID SECRET`
//!        seed batches DB N SIZE  time inserting N tokens in transactions of SIZE (the
//!                                SQLite cost of a group commit of SIZE issuances)
//!        seed expired DB N       N one-hour client_credentials tokens issued 100 days ago
//!                                (what `config prune-tokens` deletes)
//!        seed account DB NAME PW an operator login account (the sign-in pages)

use scimgate::admin::{Admin, IssueToken, Lifetime, RegisterClient};
use scimgate::model::{GrantType, IdpKind, IdpRef, IssuedVia, Scope};
use scimgate::scim::schema::{ResourceKind, SchemaRegistry, WriteMode};
use scimgate::store::{Location, NewTokenRecord, Store};
use scimgate::time::{Clock, Duration};
use scimgate::token::{self, TokenKind};
use serde_json::json;

fn client(admin: &Admin<'_>, name: &str) -> String {
    register(admin, name).0
}

/// Register a confidential client_credentials client: (id, secret).
fn register(admin: &Admin<'_>, name: &str) -> (String, String) {
    let (client, secret) = admin
        .register_client(RegisterClient {
            idp: IdpRef {
                kind: IdpKind::Entra,
                app_id: None,
                tenant: None,
                owner: None,
            },
            ..RegisterClient::new(
                name,
                &[GrantType::ClientCredentials],
                &[Scope::DirectoryRead, Scope::DirectoryWrite],
            )
        })
        .expect("register client");
    let secret = secret.map(|s| s.expose().to_string()).unwrap_or_default();
    (client.id, secret)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: seed tokens|users|group|expired DB N | seed token|client DB | seed batches DB N SIZE | seed account DB NAME PW";
    let what = args.get(1).expect(usage);
    // A file, or a postgres:// URL (bench/pg.sh).
    let db = Location::parse(args.get(2).expect(usage)).expect("a store location");
    let store = Store::open_or_create(&db).expect("open store");
    let admin = Admin::new(&store, Clock::system(), "bench");
    let now = admin.now();
    match what.as_str() {
        "token" => {
            let id = client(&admin, "bench idp");
            let (_, secret) = admin
                .issue_access_token(IssueToken {
                    client_id: id,
                    scopes: vec![],
                    lifetime: Lifetime::For(Duration::days(1)),
                    label: None,
                })
                .expect("issue");
            println!("{}", secret.expose());
        }
        "client" => {
            let (id, secret) = register(&admin, "bench client_credentials");
            println!("{id} {secret}");
        }
        "account" => {
            let (name, pw) = (args.get(3).expect(usage), args.get(4).expect(usage));
            admin
                .create_user(name, pw, true)
                .expect("create the account");
        }
        "batches" => {
            let n: usize = args.get(3).expect(usage).parse().expect("N");
            let size: usize = args.get(4).expect(usage).parse().expect("SIZE");
            let id = client(&admin, "batch bench");
            let started = std::time::Instant::now();
            let mut done = 0;
            while done < n {
                let batch: Vec<NewTokenRecord> = (0..size.min(n - done))
                    .map(|_| {
                        let t = token::generate(TokenKind::Access, now);
                        let scopes = vec![Scope::DirectoryRead];
                        let via = IssuedVia::ClientCredentials;
                        NewTokenRecord::own_access(&t, &id, scopes, now, now + 3600, via)
                    })
                    .collect();
                store.insert_tokens(&batch).expect("insert");
                done += batch.len();
            }
            let us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!("{n} tokens in transactions of {size}: {us:.1} µs per token (wall clock)");
        }
        "expired" => {
            let n: usize = args.get(3).expect(usage).parse().expect("N");
            let id = client(&admin, "expired idp");
            let start = now - 100 * 86_400;
            for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
                let batch: Vec<NewTokenRecord> = chunk
                    .iter()
                    .map(|i| {
                        // Spread over a day, as a busy IdP's tokens would be.
                        let issued = start + (*i as i64 * 86_400 / n as i64);
                        let t = token::generate(TokenKind::Access, issued);
                        let scopes = vec![Scope::DirectoryRead];
                        let via = IssuedVia::ClientCredentials;
                        NewTokenRecord::own_access(&t, &id, scopes, issued, issued + 3600, via)
                    })
                    .collect();
                store.insert_tokens(&batch).expect("insert");
            }
        }
        "tokens" => {
            let n: usize = args.get(3).expect(usage).parse().expect("N");
            let clients: Vec<String> = (0..5)
                .map(|i| client(&admin, &format!("idp {i}")))
                .collect();
            let mut batch = Vec::with_capacity(1000);
            for i in 0..n {
                let t = token::generate(TokenKind::Access, now);
                // Expiries spread evenly over the next two years.
                let expires_at = now + 3600 + (i as i64 * 730 * 86_400 / n as i64);
                let scopes = vec![Scope::DirectoryRead, Scope::DirectoryWrite];
                let client = &clients[i % clients.len()];
                batch.push(NewTokenRecord::own_access(
                    &t,
                    client,
                    scopes,
                    now,
                    expires_at,
                    IssuedVia::Cli,
                ));
                if batch.len() == 1000 {
                    store.insert_tokens(&batch).expect("insert");
                    batch.clear();
                }
            }
            store.insert_tokens(&batch).expect("insert");
        }
        "users" => {
            let n: usize = args.get(3).expect(usage).parse().expect("N");
            let stamp = "2026-01-01T00:00:00.000Z";
            for i in 0..n {
                let doc = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("user{i:06}@example.com"),
                    "name": {"givenName": format!("Given{i}"), "familyName": "Bench"},
                    "emails": [{"value": format!("user{i:06}@example.com"), "type": "work", "primary": true}],
                    "active": true
                });
                // Normalised as the SCIM service stores a POST (`store::DOC_FORM`).
                let doc = SchemaRegistry::builtin()
                    .normalize(ResourceKind::User, &doc, WriteMode::Create)
                    .expect("a valid User");
                store
                    .insert_scim(
                        "User",
                        &format!("00000000-0000-4000-8000-{i:012}"),
                        &doc,
                        stamp,
                    )
                    .expect("insert user");
            }
        }
        "group" => {
            let n: usize = args.get(3).expect(usage).parse().expect("N");
            let members: Vec<_> = (0..n)
                .map(|i| json!({"value": format!("00000000-0000-4000-8000-{i:012}")}))
                .collect();
            let doc = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": format!("bench group of {n}"),
                "members": members
            });
            let doc = SchemaRegistry::builtin()
                .normalize(ResourceKind::Group, &doc, WriteMode::Create)
                .expect("a valid Group");
            let id = "00000000-0000-4000-9000-000000000000";
            let stamp = "2026-01-01T00:00:00.000Z";
            store
                .insert_scim("Group", id, &doc, stamp)
                .expect("insert group");
            println!("{id}");
        }
        _ => panic!("{usage}"),
    }
}
