//! Tokens from the OAuth2 grants open the SCIM API, and a revocation at /oauth2/revoke
//! takes effect at the SCIM guard at once (the guard's token cache is cleared).

use scimgate::time::Clock;

use crate::oauth_support::{cc_client, post_form, status_json};
use crate::support::{Scim, TestServer, TestStore};

#[test]
fn client_credentials_token_reads_scim_until_revoked() {
    let s = TestStore::init();
    let server = TestServer::start(&s.db, Clock::system());
    let client = cc_client(&s, &["user-directory.read.all"], &[]);
    let (status, body) = status_json(post_form(
        &server,
        "/oauth2/token",
        Some((&client.id, client.secret())),
        &[("grant_type", "client_credentials")],
    ));
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let scim = Scim::new(&server, &token);
    assert_eq!(scim.get("/Users").status, 200);
    assert_eq!(scim.get("/Users").status, 200, "now cached by the guard");
    let r = post_form(
        &server,
        "/oauth2/revoke",
        Some((&client.id, client.secret())),
        &[("token", &token)],
    );
    assert_eq!(r.status(), 200);
    let after = scim.get("/Users");
    assert_eq!(
        after.status, 401,
        "revocation must not wait for the cache: {}",
        after.body
    );
}
