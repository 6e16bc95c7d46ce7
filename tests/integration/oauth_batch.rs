//! Token issuance under concurrency (group commit, `store::batch`) and the caches on the
//! OAuth2 hot paths, over real HTTP: every token a client receives is committed and usable
//! the moment its response arrives, and a revocation is seen by the very next
//! introspection however recently the token was checked.

use std::sync::{Arc, Barrier};

use crate::oauth_support::{READ, cc_client, post_form, status_json};
use crate::support::{TestServer, TestStore};
use scimgate::time::Clock;

#[test]
fn concurrent_client_credentials_tokens_are_committed_before_the_response() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = Arc::new(TestServer::start(&s.db, Clock::system()));
    const THREADS: usize = 12;
    const EACH: usize = 8;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (server, c, barrier) = (server.clone(), c.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..EACH {
                    let r = post_form(
                        &server,
                        "/oauth2/token",
                        Some((&c.id, c.secret())),
                        &[("grant_type", "client_credentials")],
                    );
                    let (status, v) = status_json(r);
                    assert_eq!(status, 200, "{v}");
                    let token = v["access_token"]
                        .as_str()
                        .expect("access_token")
                        .to_string();
                    // Right after the response: the store has it, introspection says active.
                    let parsed = scimgate::token::parse(&token).expect("a well-formed token");
                    let rec = server.store.token_by_value(&parsed).unwrap();
                    assert!(
                        rec.is_some(),
                        "token not committed when its response arrived"
                    );
                    let r = post_form(
                        &server,
                        "/oauth2/introspect",
                        Some((&c.id, c.secret())),
                        &[("token", &token)],
                    );
                    let (status, v) = status_json(r);
                    assert_eq!(status, 200, "{v}");
                    assert_eq!(v["active"], true, "{v}");
                    assert_eq!(v["token_id"], parsed.id.as_str(), "{v}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("issuing thread");
    }
    let stats = server.token_batcher.stats();
    assert_eq!(stats.jobs, (THREADS * EACH) as u64, "{stats:?}");
    assert_eq!(stats.tokens, (THREADS * EACH) as u64, "{stats:?}");
    assert!(stats.transactions <= stats.jobs, "{stats:?}");
    eprintln!("group commit over HTTP: {stats:?}");
}

#[test]
fn revocation_is_seen_by_the_next_introspection_despite_the_cache() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let auth = Some((c.id.as_str(), c.secret()));
    let r = post_form(
        &server,
        "/oauth2/token",
        auth,
        &[("grant_type", "client_credentials")],
    );
    let (_, v) = status_json(r);
    let token = v["access_token"].as_str().unwrap().to_string();
    let introspect = || {
        let r = post_form(&server, "/oauth2/introspect", auth, &[("token", &token)]);
        status_json(r).1["active"].clone()
    };
    // Twice, so the second answer comes from the token cache.
    assert_eq!(introspect(), true);
    assert_eq!(introspect(), true);
    let r = post_form(&server, "/oauth2/revoke", auth, &[("token", &token)]);
    assert_eq!(r.status(), 200);
    assert_eq!(
        introspect(),
        false,
        "a revoked token must not stay active in the cache"
    );
    // And the SCIM guard agrees.
    let r = crate::support::http()
        .get(server.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn a_wrong_secret_is_refused_even_when_the_client_row_is_cached() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let cc = [("grant_type", "client_credentials")];
    let r = post_form(&server, "/oauth2/token", Some((&c.id, c.secret())), &cc);
    assert_eq!(r.status(), 200);
    let r = post_form(&server, "/oauth2/token", Some((&c.id, "sgcs_wrong")), &cc);
    assert_eq!(r.status(), 401);
    let r = post_form(&server, "/oauth2/token", Some((&c.id, c.secret())), &cc);
    assert_eq!(r.status(), 200);
}
