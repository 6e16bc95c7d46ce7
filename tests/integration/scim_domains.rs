//! Clients limited to their email domains (issue 14, Resolver's `emailDomains`): a parent
//! company on Entra ID (contoso.com) and a subsidiary on Okta (fabrikam.com and its
//! subdomains) provision into one directory, and neither sees, changes or deletes the
//! other's users, nor the other's members of a shared group.

use scimgate::time::Clock;
use serde_json::{Value, json};

use crate::support::{Scim, TestServer, TestStore};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn client(s: &TestStore, name: &str, domains: &[&str]) -> String {
    let flags: Vec<&str> = domains.iter().flat_map(|d| ["--email-domain", d]).collect();
    let id = s.cc_client_with(name, &flags);
    s.issue(&id, &[]).0
}

fn user(name: &str, emails: &[&str]) -> Value {
    json!({"schemas": [USER], "userName": name,
        "emails": emails.iter().map(|e| json!({"value": e, "type": "work"})).collect::<Vec<_>>()})
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["userName"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn two_idps_on_different_domains_never_touch_each_others_users() {
    let s = TestStore::init();
    let entra = client(&s, "Entra (parent)", &["contoso.com"]);
    let okta = client(&s, "Okta (subsidiary)", &["fabrikam.com", "*.fabrikam.com"]);
    let admin = client(&s, "unrestricted", &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let (e, o, a) = (
        Scim::new(&server, &entra),
        Scim::new(&server, &okta),
        Scim::new(&server, &admin),
    );

    // Writes inside the domains work; outside them, 403 naming the value and the domains.
    let alice = e.post("/Users", user("alice@contoso.com", &["alice@contoso.com"]));
    assert_eq!(alice.status, 201, "{}", alice.body);
    let alice = alice.body["id"].as_str().unwrap().to_string();
    let bob = o.post("/Users", user("bob@eu.fabrikam.com", &["bob@fabrikam.com"]));
    assert_eq!(bob.status, 201, "{}", bob.body);
    let bob = bob.body["id"].as_str().unwrap().to_string();
    let r = e.post("/Users", user("mallory@fabrikam.com", &[]));
    assert_eq!(r.status, 403, "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("mallory@fabrikam.com") && detail.contains("contoso.com"),
        "{detail}"
    );
    let r = e.post("/Users", user("carol@contoso.com", &["carol@gmail.com"]));
    assert_eq!(r.status, 403, "every email must be inside: {}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("carol@gmail.com")
    );

    // Each sees its own: lists, filters, totalResults, by id.
    assert_eq!(names(&e.get("/Users").body), ["alice@contoso.com"]);
    assert_eq!(e.get("/Users").body["totalResults"], 1);
    assert_eq!(names(&o.get("/Users").body), ["bob@eu.fabrikam.com"]);
    assert_eq!(
        names(&a.get("/Users").body),
        ["alice@contoso.com", "bob@eu.fabrikam.com"]
    );
    let filtered = e.get("/Users?filter=userName%20eq%20%22bob@eu.fabrikam.com%22");
    assert_eq!(
        filtered.body["totalResults"], 0,
        "a filter does not reveal it either"
    );
    assert_eq!(e.get(&format!("/Users/{bob}")).status, 404);
    assert_eq!(o.get(&format!("/Users/{alice}")).status, 404);
    assert_eq!(o.get(&format!("/Users/{bob}")).status, 200);

    // Nor change or delete the other's users.
    assert_eq!(
        e.put(&format!("/Users/{bob}"), user("bob@eu.fabrikam.com", &[]))
            .status,
        404
    );
    let patch = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_eq!(e.patch(&format!("/Users/{bob}"), patch.clone()).status, 404);
    assert_eq!(e.delete(&format!("/Users/{bob}")).status, 404);
    assert_eq!(
        a.get(&format!("/Users/{bob}")).status,
        200,
        "bob is still there"
    );
    // And cannot move its own user out of its domains.
    let out = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": "alice@fabrikam.com"}]});
    assert_eq!(e.patch(&format!("/Users/{alice}"), out).status, 403);

    // A shared group: Entra cannot add bob, sees only alice, and its PUT keeps bob.
    let g = a.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "All staff",
        "members": [{"value": alice}, {"value": bob}]}),
    );
    assert_eq!(g.status, 201, "{}", g.body);
    let g = g.body["id"].as_str().unwrap().to_string();
    let seen = e.get(&format!("/Groups/{g}"));
    let members: Vec<&str> = seen.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [alice.as_str()], "bob is not shown to Entra");
    let add_bob = json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": bob}]}]});
    let other = a.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Empty"}),
    );
    let other = other.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        e.patch(&format!("/Groups/{other}"), add_bob).status,
        403,
        "cannot add an invisible user"
    );
    let r = e.put(
        &format!("/Groups/{g}"),
        json!({"schemas": [GROUP], "displayName": "All staff", "members": []}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let all = a.get(&format!("/Groups/{g}"));
    let members: Vec<&str> = all.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        [bob.as_str()],
        "Entra removed alice, not the bob it cannot see"
    );
    let remove_all =
        json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]});
    assert_eq!(e.patch(&format!("/Groups/{g}"), remove_all).status, 200);
    assert_eq!(
        a.get(&format!("/Groups/{g}")).body["members"][0]["value"],
        bob.as_str()
    );
}

#[test]
fn email_domains_are_validated_and_shown() {
    let s = TestStore::init();
    for bad in ["@x", "*.", "", "10.0.0.1", "localhost"] {
        let err = s.fails(
            &[
                "register-api-client",
                "-n",
                "x",
                "-G",
                "client_credentials",
                "-S",
                "user-directory.read.all",
                "--email-domain",
                bad,
            ],
            1,
        );
        assert!(err.contains("is not an email domain"), "{bad}: {err}");
    }
    let v = s.json(&[
        "register-api-client",
        "-n",
        "x",
        "-G",
        "client_credentials",
        "-S",
        "user-directory.read.all",
        "--email-domain",
        "Contoso.COM",
    ]);
    let id = v["id"].as_str().unwrap();
    let shown = s
        .config()
        .args(["show-api-client", "-i", id])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("Email domains:    contoso.com"));
    s.json(&["update-api-client", "-i", id, "--any-email-domain"]);
    let shown = s
        .config()
        .args(["show-api-client", "-i", id])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("any (unrestricted)"));
}
