//! SCIM Users and Groups over HTTP: CRUD, discovery, filters, paging, sorting, projection,
//! ETags, uniqueness and bad input — each error a SCIM error body, nothing written.

use serde_json::{Value, json};

use crate::support::{Scim, assert_scim_error, scim_setup};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn new_user(scim: &Scim, name: &str) -> Value {
    let r = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": name, "name": {"givenName": name, "familyName": "Test"},
               "emails": [{"value": format!("{name}@example.com"), "type": "work"}], "active": true}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[test]
fn user_lifecycle() {
    let (_s, _server, scim) = scim_setup();
    let r = scim.post(
        "/Users",
        json!({"schemas": [USER, ENTERPRISE], "userName": "bjensen", "externalId": "ext-1",
               "name": {"givenName": "Barbara", "familyName": "Jensen"}, "password": "t1meMa$heen",
               ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let meta = &r.body["meta"];
    assert_eq!(meta["resourceType"], "User");
    assert_eq!(r.header("location").as_deref(), meta["location"].as_str());
    assert_eq!(r.header("etag").as_deref(), meta["version"].as_str());
    assert!(meta["created"].is_string() && meta["lastModified"].is_string());
    assert!(
        r.body.get("password").is_none(),
        "password is never returned"
    );
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "701984");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/scim+json")
    );

    let got = scim.get(&format!("/Users/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.body, r.body);
    let etag = got.header("etag").unwrap();
    assert_eq!(
        scim.send(
            "GET",
            &format!("/Users/{id}"),
            None,
            &[("if-none-match", &etag)]
        )
        .status,
        304
    );

    let mut replacement = got.body.clone();
    replacement["displayName"] = json!("Babs");
    replacement["name"]["givenName"] = json!("Barb");
    let put = scim.send(
        "PUT",
        &format!("/Users/{id}"),
        Some(&replacement),
        &[("if-match", &etag)],
    );
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["displayName"], "Babs");
    assert_ne!(
        put.header("etag").unwrap(),
        etag,
        "a change gives a new ETag"
    );
    // The old ETag no longer matches: 412, nothing written.
    let stale = scim.send(
        "PUT",
        &format!("/Users/{id}"),
        Some(&got.body),
        &[("if-match", &etag)],
    );
    assert_scim_error(&stale, 412, None);
    let stale = scim.send(
        "DELETE",
        &format!("/Users/{id}"),
        None,
        &[("if-match", &etag)],
    );
    assert_scim_error(&stale, 412, None);
    assert_eq!(
        scim.get(&format!("/Users/{id}")).body["displayName"],
        "Babs"
    );

    let d = scim.delete(&format!("/Users/{id}"));
    assert_eq!(d.status, 204);
    assert!(d.body.is_null(), "DELETE has no body");
    assert_scim_error(&scim.get(&format!("/Users/{id}")), 404, None);
    assert_scim_error(&scim.delete(&format!("/Users/{id}")), 404, None);
}

#[test]
fn username_is_unique_case_insensitively() {
    let (_s, _server, scim) = scim_setup();
    new_user(&scim, "alice");
    let r = scim.post("/Users", json!({"schemas": [USER], "userName": "ALICE"}));
    assert_scim_error(&r, 409, Some("uniqueness"));
    assert_eq!(
        r.body["detail"], "a User with userName `ALICE` already exists",
        "{}",
        r.body
    );
    let bob = new_user(&scim, "bob");
    let r = scim.patch(
        &format!("/Users/{}", bob["id"].as_str().unwrap()),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "userName", "value": "Alice"}]}),
    );
    assert_scim_error(&r, 409, Some("uniqueness"));
    let list = scim.get("/Users");
    assert_eq!(list.body["totalResults"], 2);
}

/// Creates racing for one userName (in any case), most of them in one group commit: one
/// of each pair wins, the other is a 409 that names the userName it sent, and the other
/// creates of the batch land.
#[test]
fn creates_racing_for_a_user_name_get_one_201_and_a_409_naming_it() {
    let (_s, _server, scim) = scim_setup();
    let names: Vec<String> = (0..8)
        .flat_map(|i| {
            [
                format!("racer{i}@example.com"),
                format!("RACER{i}@Example.COM"),
            ]
        })
        .collect();
    let scim = &scim;
    let replies: Vec<_> = std::thread::scope(|t| {
        let running: Vec<_> = names
            .iter()
            .map(|name| {
                t.spawn(move || {
                    let r = scim.post("/Users", json!({"schemas": [USER], "userName": name}));
                    (name, r)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|h| h.join().expect("a request"))
            .collect()
    });
    let mut created = 0;
    for (name, r) in &replies {
        if r.status == 201 {
            created += 1;
            continue;
        }
        assert_scim_error(r, 409, Some("uniqueness"));
        assert_eq!(
            r.body["detail"],
            format!("a User with userName `{name}` already exists"),
            "{}",
            r.body
        );
    }
    assert_eq!(created, 8, "one create of each userName");
    for i in 0..8 {
        let r = scim.get(&format!(
            "/Users?filter=userName%20eq%20%22racer{i}@example.com%22"
        ));
        assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    }
}

#[test]
fn filters_paging_sorting_and_projection() {
    let (_s, _server, scim) = scim_setup();
    for name in ["carol", "alice", "dave", "bob", "erin"] {
        new_user(&scim, name);
    }
    let r = scim.get("/Users?filter=userName%20eq%20%22BOB%22");
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["userName"], "bob");
    let r =
        scim.get("/Users?filter=emails%5Btype%20eq%20%22work%22%20and%20value%20co%20%22ali%22%5D");
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = scim.get("/Users?filter=not%20(userName%20sw%20%22a%22)%20and%20name.givenName%20pr");
    assert_eq!(r.body["totalResults"], 4);
    let r = scim.get("/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=2");
    assert_eq!(r.body["totalResults"], 5);
    assert_eq!(r.body["startIndex"], 2);
    assert_eq!(r.body["itemsPerPage"], 2);
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["dave", "carol"]);
    let r = scim.get("/Users?count=0");
    assert_eq!(r.body["totalResults"], 5);
    assert_eq!(r.body["Resources"], json!([]));
    let r = scim.get("/Users?attributes=userName&count=1");
    let u = &r.body["Resources"][0];
    assert!(u["userName"].is_string() && u["id"].is_string());
    assert!(u.get("name").is_none() && u.get("emails").is_none(), "{u}");
    let r = scim.get("/Users?excludedAttributes=emails,name&count=1");
    let u = &r.body["Resources"][0];
    assert!(u.get("emails").is_none() && u.get("name").is_none() && u["userName"].is_string());
    let r = scim.post(
        "/Users/.search",
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
               "filter": "userName gt \"c\"", "sortBy": "userName", "attributes": ["userName"], "count": 10}),
    );
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["carol", "dave", "erin"]);
    assert_eq!(
        scim.post("/.search", json!({"filter": "userName eq \"erin\""}))
            .body["totalResults"],
        1
    );
}

#[test]
fn groups_and_membership() {
    let (_s, _server, scim) = scim_setup();
    let alice = new_user(&scim, "alice");
    let aid = alice["id"].as_str().unwrap();
    let r = scim.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Admins", "members": [{"value": aid}]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["members"],
        json!([{"value": aid}]),
        "members round-trip as sent"
    );
    let u = scim.get(&format!("/Users/{aid}"));
    assert_eq!(u.body["groups"][0]["value"], gid.as_str());
    assert_eq!(u.body["groups"][0]["display"], "Admins");
    // A PATCH and a PUT of a User in a group answer with its groups, its creation time
    // kept and the next version: exactly what a GET then returns.
    let p = scim.patch(
        &format!("/Users/{aid}"),
        json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": "Alice A."}]}),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["groups"], u.body["groups"]);
    assert_eq!(p.body["meta"]["created"], u.body["meta"]["created"]);
    assert_eq!(p.body["meta"]["version"], "W/\"2\"");
    assert_eq!(scim.get(&format!("/Users/{aid}")).body, p.body);
    let mut doc = p.body.clone();
    doc["userName"] = json!("ALICE");
    let r = scim.put(&format!("/Users/{aid}"), doc);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["userName"], "ALICE");
    assert_eq!(r.body["groups"], u.body["groups"]);
    assert_eq!(r.body["meta"]["created"], u.body["meta"]["created"]);
    assert_eq!(r.body["meta"]["version"], "W/\"3\"");
    assert_eq!(scim.get(&format!("/Users/{aid}")).body, r.body);
    let r = scim.get("/Groups?filter=displayName%20eq%20%22admins%22&excludedAttributes=members");
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
    let r = scim.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Ghosts", "members": [{"value": "no-such-id"}]}),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
    // Deleting a user removes it from its groups.
    assert_eq!(scim.delete(&format!("/Users/{aid}")).status, 204);
    let g = scim.get(&format!("/Groups/{gid}"));
    assert!(g.body.get("members").is_none(), "{}", g.body);
}

/// A resource is found only under its own type's path, also when a GET just put it in the
/// server's cache of renderings (which is keyed by id alone).
#[test]
fn a_resource_is_found_only_under_its_own_type() {
    let (_s, _server, scim) = scim_setup();
    let user = new_user(&scim, "carol");
    let uid = user["id"].as_str().unwrap();
    let r = scim.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Readers"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(scim.get(&format!("/Users/{uid}")).status, 200);
        assert_eq!(scim.get(&format!("/Groups/{gid}")).status, 200);
        assert_scim_error(&scim.get(&format!("/Groups/{uid}")), 404, None);
        assert_scim_error(&scim.get(&format!("/Users/{gid}")), 404, None);
    }
}

/// A Group's write changes only the membership rows that differ, and is prepared outside
/// the write lock then written only at the version it was prepared from: each PATCH and
/// PUT must leave exactly the members it names, in the Group and in each User's `groups`,
/// also when several clients change one Group at once.
#[test]
fn group_membership_follows_each_change() {
    let (_s, _server, scim) = scim_setup();
    let ids: Vec<String> = (0..8)
        .map(|i| {
            new_user(&scim, &format!("member{i}"))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let member = |i: usize| json!({"value": ids[i]});
    let r = scim.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Crew", "members": [member(0), member(1), member(2)]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    let group_path = format!("/Groups/{gid}");
    // Who the store says is a member: the Users whose `groups` name the Group.
    let in_group = || -> Vec<usize> {
        (0..ids.len())
            .filter(|&i| {
                let u = scim.get(&format!("/Users/{}", ids[i]));
                assert_eq!(u.status, 200, "{}", u.body);
                let groups = u.body["groups"].as_array().cloned().unwrap_or_default();
                groups.iter().any(|g| g["value"] == gid.as_str())
            })
            .collect()
    };
    let members_of = |body: &Value| -> Vec<usize> {
        let mut m: Vec<usize> = (body["members"].as_array().cloned().unwrap_or_default())
            .iter()
            .map(|v| ids.iter().position(|id| v["value"] == id.as_str()).unwrap())
            .collect();
        m.sort();
        m
    };
    assert_eq!(in_group(), [0, 1, 2]);

    // One request adding one member and removing another.
    let r = scim.patch(
        &group_path,
        json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [member(3)]},
            {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(members_of(&r.body), [0, 2, 3]);
    assert_eq!(in_group(), [0, 2, 3]);

    // A member that does not exist: 400 naming it, and nothing changes.
    let before = scim.get(&group_path);
    let r = scim.patch(
        &group_path,
        json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [member(4), {"value": "no-such-id"}]}]}),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(
        r.body["detail"].as_str().unwrap().contains("no-such-id"),
        "{}",
        r.body
    );
    assert_eq!(scim.get(&group_path).body, before.body);
    assert_eq!(in_group(), [0, 2, 3]);

    // The Group itself as a member: refused.
    let r = scim.patch(
        &group_path,
        json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": gid}]}]}),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("member of itself"),
        "{}",
        r.body
    );
    assert_eq!(scim.get(&group_path).body, before.body);

    // A PUT naming other members replaces them all.
    let r = scim.put(
        &group_path,
        json!({"schemas": [GROUP], "displayName": "Crew", "members": [member(3), member(5)]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(in_group(), [3, 5]);
    // A stale If-Match is refused.
    let r = scim.send(
        "PATCH",
        &group_path,
        Some(&json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [member(6)]}]})),
        &[("If-Match", "W/\"1\"")],
    );
    assert_scim_error(&r, 412, None);

    // Six clients at once, each adding one member: every addition lands (a write
    // prepared from a version another write replaced meanwhile is prepared again).
    std::thread::scope(|s| {
        for i in [0, 1, 2, 4, 6, 7] {
            let (scim, path, member) = (&scim, &group_path, member(i));
            s.spawn(move || {
                let r = scim.patch(
                    path,
                    json!({"schemas": [PATCH_OP], "Operations": [
                        {"op": "add", "path": "members", "value": [member]}]}),
                );
                assert_eq!(r.status, 200, "{}", r.body);
            });
        }
    });
    let g = scim.get(&group_path);
    assert_eq!(members_of(&g.body), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        g.body["meta"]["version"], "W/\"9\"",
        "one version per write"
    );
    assert_eq!(in_group(), [0, 1, 2, 3, 4, 5, 6, 7]);

    // Read without its members (Entra ID's way; the store then skips them): the rest is
    // as a full read has it. Asked for, they are read.
    let mut without = g.body.clone();
    without.as_object_mut().unwrap().remove("members");
    let r = scim.get(&format!("{group_path}?excludedAttributes=members"));
    assert_eq!(r.body, without);
    let r = scim.get("/Groups?filter=displayName%20eq%20%22Crew%22&excludedAttributes=members");
    assert_eq!(r.body["Resources"], json!([without]));
    let r = scim.get(&format!("{group_path}?attributes=members.value"));
    assert_eq!(members_of(&r.body), [0, 1, 2, 3, 4, 5, 6, 7]);
    let r = scim.get("/Groups?attributes=displayName,members");
    assert_eq!(
        members_of(&r.body["Resources"][0]),
        [0, 1, 2, 3, 4, 5, 6, 7]
    );
}

#[test]
fn discovery_endpoints() {
    let (_s, server, scim) = scim_setup();
    let spc = scim.get("/ServiceProviderConfig");
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["filter"]["supported"], true);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["bulk"]["supported"], false);
    let rts = scim.get("/ResourceTypes");
    assert_eq!(rts.body["totalResults"], 2);
    let user_rt = scim.get("/ResourceTypes/User");
    assert_eq!(user_rt.body["schemaExtensions"][0]["schema"], ENTERPRISE);
    assert!(
        user_rt.body["meta"]["location"]
            .as_str()
            .unwrap()
            .starts_with(&server.base)
    );
    let schemas = scim.get("/Schemas");
    assert_eq!(schemas.body["totalResults"], 3);
    let user_schema = scim.get(&format!("/Schemas/{USER}"));
    let attrs = user_schema.body["attributes"].as_array().unwrap();
    assert_eq!(attrs.len(), 21);
    let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(password["returned"], "never");
    assert_eq!(password["mutability"], "writeOnly");
    assert_scim_error(&scim.get("/Schemas/urn:nope"), 404, None);
    assert_scim_error(&scim.post("/ServiceProviderConfig", json!({})), 405, None);
    assert_scim_error(&scim.delete("/Schemas"), 405, None);
    assert_scim_error(&scim.get("/Widgets"), 404, None);
    let r = scim.post("/Users/abc", json!({}));
    assert_scim_error(&r, 405, None);
    assert_eq!(
        r.header("allow").as_deref(),
        Some("GET, PUT, PATCH, DELETE")
    );
    assert_eq!(
        scim.delete("/Users").header("allow").as_deref(),
        Some("GET, POST")
    );
}

#[test]
fn bad_input_is_a_scim_error_and_writes_nothing() {
    let (_s, _server, scim) = scim_setup();
    let bob = new_user(&scim, "bob");
    let bid = bob["id"].as_str().unwrap();
    let raw = |method: &str, path: &str, body: &str| {
        let resp = crate::support::http()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", scim.base),
            )
            .bearer_auth(&scim.token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        crate::support::Reply {
            status,
            headers,
            body: resp.json().unwrap_or(Value::Null),
        }
    };
    assert_scim_error(
        &raw("POST", "/Users", "{not json"),
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(&raw("POST", "/Users", ""), 400, Some("invalidSyntax"));
    assert_scim_error(
        &scim.post("/Users", json!({"userName": "x"})),
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &scim.post("/Users", json!({"schemas": [GROUP], "userName": "x"})),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &scim.post(
            "/Users",
            json!({"schemas": [USER], "userName": "x", "shoeSize": 42}),
        ),
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &scim.post(
            "/Users",
            json!({"schemas": [USER], "userName": "x", "active": "maybe"}),
        ),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &scim.post("/Users", json!({"schemas": [USER]})),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &scim.get("/Users?filter=userName%20eq"),
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &scim.get("/Users?filter=shoeSize%20eq%201"),
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &scim.get("/Users?startIndex=abc"),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &scim.get("/Users?sortOrder=sideways"),
        400,
        Some("invalidValue"),
    );
    let patch = |ops: Value| {
        scim.patch(&format!("/Users/{bid}"), json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}))
    };
    assert_scim_error(
        &patch(json!([{"op": "replace", "path": "emails[type eq", "value": "x"}])),
        400,
        Some("invalidPath"),
    );
    assert_scim_error(
        &patch(json!([{"op": "replace", "path": "shoeSize", "value": 1}])),
        400,
        Some("invalidPath"),
    );
    assert_scim_error(
        &patch(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}])),
        400,
        Some("noTarget"),
    );
    assert_scim_error(&patch(json!([{"op": "remove"}])), 400, Some("noTarget"));
    assert_scim_error(
        &patch(json!([{"op": "replace", "path": "id", "value": "other"}])),
        400,
        Some("mutability"),
    );
    assert_scim_error(
        &patch(json!([{"op": "frobnicate", "path": "title", "value": "x"}])),
        400,
        None,
    );
    assert_scim_error(
        &patch(
            json!([{"op": "replace", "path": "title", "value": "CEO"}, {"op": "replace", "path": "active", "value": "perhaps"}]),
        ),
        400,
        Some("invalidValue"),
    );
    // Oversized bodies: 413.
    let big = json!({"schemas": [USER], "userName": "big", "title": "x".repeat(2 << 20)});
    assert_scim_error(&scim.post("/Users", big), 413, None);
    // Nothing above was written.
    let list = scim.get("/Users");
    assert_eq!(list.body["totalResults"], 1);
    let now = scim.get(&format!("/Users/{bid}"));
    assert_eq!(now.body, bob, "the failed PATCHes changed nothing");
}

/// A filter string holding U+0000 (`\u0000`) is refused alike on both stores: SQLite
/// answered it (an empty list) and PostgreSQL refused it with its own message about UTF-8
/// bytes. No stored value can hold the character: the writes refuse it.
#[test]
fn a_filter_string_holding_u0000_is_refused_on_every_store() {
    let (_s, _server, scim) = scim_setup();
    new_user(&scim, "u1");
    for q in [
        r#"userName eq "u1\u0000""#,
        r#"userName ne "\u0000""#,
        r#"emails[value co "\u0000"]"#,
    ] {
        let r = scim.get(&format!("/Users?filter={}", url_encode(q)));
        assert_scim_error(&r, 400, Some("invalidFilter"));
        assert!(
            r.body["detail"].as_str().unwrap().contains("U+0000"),
            "{q}: {}",
            r.body
        );
        let r = scim.post("/.search", json!({ "filter": q }));
        assert_scim_error(&r, 400, Some("invalidFilter"));
    }
    let r = scim.get(&format!(
        "/Users?filter={}",
        url_encode(r#"userName eq "u1""#)
    ));
    assert_eq!(r.body["totalResults"], 1);
}

/// `/Users/{id}` and `/Groups/{id}` are routed by hand, not by actix's `{id}` pattern (a
/// regex on every request): the id is one path segment, percent-decoded as actix decoded
/// it; more segments or none are a 404; another method is a 405 with `Allow`; and each of
/// the four methods reaches its operation through an escaped path.
#[test]
fn one_resource_s_path_is_one_percent_decoded_segment() {
    let (_s, _server, scim) = scim_setup();
    let user = new_user(&scim, "routed");
    let id = user["id"].as_str().unwrap();
    let escaped: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = scim.get(&format!("/Users/{escaped}"));
    assert_eq!(
        (r.status, r.body["id"].as_str()),
        (200, Some(id)),
        "{}",
        r.body
    );
    // An escaped slash stays inside the segment through actix's own requoting (which
    // decoded the escapes above), so only the handler's decoding turns it into `/`:
    // an id that names no User. Without that decoding this check fails (run).
    let r = scim.get(&format!("/Users/{id}%2Fx"));
    assert_scim_error(&r, 404, None);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("{id}/x")), "{detail}");
    for path in [
        format!("/Users/{id}/x"),
        "/Users/".to_string(),
        format!("/Groups/{id}/"),
        "/Users//x".to_string(),
    ] {
        let r = scim.get(&path);
        assert_scim_error(&r, 404, None);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("no SCIM endpoint at"),
            "{path}: {detail}"
        );
    }
    for method in ["POST", "TRACE"] {
        let r = scim.send(method, &format!("/Users/{id}"), None, &[]);
        assert_scim_error(&r, 405, None);
        assert_eq!(
            r.header("allow").as_deref(),
            Some("GET, PUT, PATCH, DELETE"),
            "{method}"
        );
    }
    let r = scim.patch(
        &format!("/Users/{escaped}"),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Patched"}]
        }),
    );
    assert_eq!(
        (r.status, r.body["displayName"].as_str()),
        (200, Some("Patched")),
        "{}",
        r.body
    );
    let r = scim.put(
        &format!("/Users/{escaped}"),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "routed",
            "displayName": "Put"
        }),
    );
    assert_eq!(
        (r.status, r.body["displayName"].as_str()),
        (200, Some("Put")),
        "{}",
        r.body
    );
    assert_eq!(scim.delete(&format!("/Users/{escaped}")).status, 204);
    assert_scim_error(&scim.get(&format!("/Users/{id}")), 404, None);
}

/// Regression: a filter of ~180 `or`-ed comparisons overflowed a worker's stack and took
/// the whole server down. Long filters are refused cleanly; the server keeps serving.
#[test]
fn r_long_filter_is_refused_not_a_crash() {
    let (_s, _server, scim) = scim_setup();
    new_user(&scim, "u1");
    let long: Vec<String> = (0..200).map(|i| format!("userName eq \"u{i}\"")).collect();
    let q = long.join(" or ");
    let url = format!("/Users?filter={}", url_encode(&q));
    assert_scim_error(&scim.get(&url), 400, Some("invalidFilter"));
    let and: Vec<String> = (0..100)
        .map(|i| format!("title pr and userName ne \"x{i}\""))
        .collect();
    let r = scim.post("/Users/.search", json!({"filter": and.join(" and ")}));
    assert_scim_error(&r, 400, Some("invalidFilter"));
    let ok: Vec<String> = (0..64).map(|i| format!("userName eq \"u{i}\"")).collect();
    let r = scim.post("/Users/.search", json!({"filter": ok.join(" or ")}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1);
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn if_match_lists_and_self_membership() {
    let (_s, _server, scim) = scim_setup();
    let u = new_user(&scim, "etag");
    let id = u["id"].as_str().unwrap();
    let etag = u["meta"]["version"].as_str().unwrap().to_string();
    let list = format!("W/\"999\", {etag}");
    let mut body = u.clone();
    body["title"] = json!("Boss");
    let r = scim.send(
        "PUT",
        &format!("/Users/{id}"),
        Some(&body),
        &[("if-match", &list)],
    );
    assert_eq!(
        r.status, 200,
        "a list containing the current ETag matches: {}",
        r.body
    );
    let r = scim.send(
        "PUT",
        &format!("/Users/{id}"),
        Some(&body),
        &[("if-match", "W/\"1\", W/\"999\"")],
    );
    assert_scim_error(&r, 412, None);
    let g = scim.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Loop"}),
    );
    let gid = g.body["id"].as_str().unwrap();
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": gid}]}]}),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
}

#[test]
fn meta_resource_type_and_dates_filter() {
    let (_s, _server, scim) = scim_setup();
    new_user(&scim, "meta1");
    let r = scim.post(
        "/.search",
        json!({"filter": "meta.resourceType eq \"User\""}),
    );
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = scim.post(
        "/Users/.search",
        json!({"filter": "meta.lastModified gt \"2000-01-01T00:00:00Z\""}),
    );
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = scim.post(
        "/Users/.search",
        json!({"filter": "meta.created lt \"2000-01-01T00:00:00Z\""}),
    );
    assert_eq!(r.body["totalResults"], 0, "{}", r.body);
    // Regression (found by the filter fuzzer): `meta` is rendered, not stored, so
    // `meta pr` matched nothing in SQL although every resource has it.
    new_user(&scim, "meta2");
    for (filter, n) in [
        ("meta pr", 2),
        ("meta.location pr", 2),
        ("meta.version pr", 2),
        ("meta.created pr", 2),
        ("not (meta pr)", 0),
    ] {
        let r = scim.post("/Users/.search", json!({"filter": filter}));
        assert_eq!(r.body["totalResults"], n, "{filter}: {}", r.body);
    }
}

/// `groups` is computed from memberships, not stored: filters on it still work.
#[test]
fn users_filter_by_their_computed_groups() {
    let (_s, _server, scim) = scim_setup();
    let a = new_user(&scim, "in-group");
    new_user(&scim, "not-in-group");
    let aid = a["id"].as_str().unwrap();
    let g = scim.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Tour Guides", "members": [{"value": aid}]}),
    );
    let gid = g.body["id"].as_str().unwrap();
    for filter in [
        format!("groups.value eq \"{gid}\""),
        format!("groups eq \"{gid}\""),
        "groups[display eq \"tour guides\"]".to_string(),
        "groups pr".to_string(),
    ] {
        let r = scim.post("/Users/.search", json!({"filter": filter}));
        assert_eq!(r.body["totalResults"], 1, "{filter}: {}", r.body);
        assert_eq!(r.body["Resources"][0]["id"], aid, "{filter}");
    }
    let r = scim.post("/Users/.search", json!({"filter": "not (groups pr)"}));
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["userName"], "not-in-group");
}

/// Creates and updates of Users go through the group commit: concurrent ones share
/// transactions, and none may be lost or doubled. A duplicate userName among concurrent
/// creates is created once and refused for the rest; concurrent PATCHes of one User each
/// apply (a write that finds the User changed since it was read is prepared again).
#[test]
fn concurrent_creates_and_patches_of_users_are_all_applied_once() {
    let (_s, _server, scim) = scim_setup();
    let user = |name: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
    let statuses: Vec<(String, u16)> = std::thread::scope(|t| {
        let names: Vec<String> = (0..30)
            .map(|i| format!("batch{i}@example.com"))
            // One name five times, in different cases: userName is case-insensitive.
            .chain(
                [
                    "twin@example.com",
                    "TWIN@example.com",
                    "Twin@Example.com",
                    "twin@EXAMPLE.COM",
                    "tWin@example.com",
                ]
                .map(String::from),
            )
            .collect();
        let handles: Vec<_> = names
            .into_iter()
            .map(|n| {
                let scim = &scim;
                t.spawn(move || {
                    let r = scim.post("/Users", user(&n));
                    (n, r.status)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (n, status) in &statuses[..30] {
        assert_eq!(*status, 201, "{n}");
    }
    let twins: Vec<u16> = statuses[30..].iter().map(|(_, s)| *s).collect();
    assert_eq!(twins.iter().filter(|s| **s == 201).count(), 1, "{twins:?}");
    assert_eq!(twins.iter().filter(|s| **s == 409).count(), 4, "{twins:?}");
    let all = scim.get("/Users?count=100");
    assert_eq!(all.body["totalResults"], 31, "{}", all.body);

    let created = scim.post("/Users", user("patched@example.com"));
    let id = created.body["id"].as_str().unwrap().to_string();
    const PATCHES: usize = 16;
    std::thread::scope(|t| {
        for i in 0..PATCHES {
            let (scim, id) = (&scim, &id);
            t.spawn(move || {
                let r = scim.patch(
                    &format!("/Users/{id}"),
                    json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "add", "path": "emails",
                            "value": [{"value": format!("alias{i}@example.com")}]}]
                    }),
                );
                assert_eq!(r.status, 200, "{}", r.body);
            });
        }
    });
    let after = scim.get(&format!("/Users/{id}"));
    let emails = after.body["emails"].as_array().unwrap();
    assert_eq!(emails.len(), PATCHES, "{}", after.body);
    assert_eq!(
        after.body["meta"]["version"],
        format!("W/\"{}\"", PATCHES + 1)
    );
}

/// `GET /Users?filter=userName eq "…"` and the other equalities on an indexed column are
/// answered from the resource cache when the store's version matches
/// (`Scim::list_point`). Each must answer exactly what the general list answers
/// (`/.search` always takes that path): matches in any case of a case-insensitive
/// attribute, none for another case of a case-exact one, several (which the general list
/// answers), a first GET and a cached one, and after a write.
#[test]
fn a_point_lookup_answers_what_the_general_list_answers() {
    let (_s, _server, scim) = scim_setup();
    let alice = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": "Alice@Example.com", "externalId": "ext-A",
               "displayName": "Twin", "name": {"givenName": "Alice"}}),
    );
    assert_eq!(alice.status, 201, "{}", alice.body);
    let alice_id = alice.body["id"].as_str().expect("id").to_string();
    let bob = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": "bob", "displayName": "twin"}),
    );
    assert_eq!(bob.status, 201, "{}", bob.body);
    let team = scim.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Team", "externalId": "g-1",
               "members": [{"value": alice_id}]}),
    );
    assert_eq!(team.status, 201, "{}", team.body);
    let team_id = team.body["id"].as_str().expect("id").to_string();
    let same = |kind: &str, query: &str, search: Value| {
        let fast = scim.get(&format!("/{kind}?{query}"));
        let general = scim.post(&format!("/{kind}/.search"), search);
        assert_eq!((fast.status, general.status), (200, 200), "{query}");
        assert_eq!(
            fast.header("content-type").as_deref(),
            Some("application/scim+json"),
            "{query}"
        );
        assert_eq!(fast.body, general.body, "{query}");
        fast.body["totalResults"].as_u64().expect("totalResults")
    };
    let eq = |attr: &str, value: &str| {
        let filter = format!("{attr} eq \"{value}\"");
        let query = format!("filter={}", url_encode(&filter));
        (query, json!({"filter": filter}))
    };
    for round in 0..3 {
        if round == 2 {
            // A write: the cached renderings of Alice and the Team are gone or stale.
            let r = scim.patch(
                &format!("/Users/{alice_id}"),
                json!({"schemas": [PATCH_OP],
                       "Operations": [{"op": "replace", "path": "name.givenName", "value": "Alicia"}]}),
            );
            assert_eq!(r.status, 200, "{}", r.body);
        }
        for (attr, value, found) in [
            ("userName", "alice@example.com", 1),
            ("userName", "ALICE@EXAMPLE.COM", 1),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                "Alice@Example.com",
                1,
            ),
            ("userName", "nobody", 0),
            ("externalId", "ext-A", 1),
            ("externalId", "EXT-A", 0),
            ("id", alice_id.as_str(), 1),
            ("id", "no-such-id", 0),
            ("displayName", "TWIN", 2),
        ] {
            let (query, search) = eq(attr, value);
            assert_eq!(same("Users", &query, search), found, "{attr} eq {value}");
        }
        for (attr, value, found) in [
            ("displayName", "team", 1),
            ("externalId", "g-1", 1),
            ("id", team_id.as_str(), 1),
            ("displayName", "nobody", 0),
        ] {
            let (query, search) = eq(attr, value);
            assert_eq!(same("Groups", &query, search), found, "{attr} eq {value}");
        }
        // What the fast answer leaves to the general list: a projection, another page, no
        // page, a domain-free client's sort.
        let (query, _) = eq("userName", "alice@example.com");
        let filter = "userName eq \"alice@example.com\"";
        for (extra, search) in [
            (
                "&attributes=userName",
                json!({"filter": filter, "attributes": ["userName"]}),
            ),
            (
                "&excludedAttributes=name",
                json!({"filter": filter, "excludedAttributes": ["name"]}),
            ),
            ("&startIndex=2", json!({"filter": filter, "startIndex": 2})),
            ("&count=0", json!({"filter": filter, "count": 0})),
            (
                "&sortBy=userName",
                json!({"filter": filter, "sortBy": "userName"}),
            ),
        ] {
            same("Users", &format!("{query}{extra}"), search);
        }
        // A GET by id fills the cache the lookup reads.
        assert_eq!(scim.get(&format!("/Users/{alice_id}")).status, 200);
    }
    let (query, _) = eq("userName", "alice@example.com");
    let found = scim.get(&format!("/Users?{query}"));
    assert_eq!(found.body["Resources"][0]["name"]["givenName"], "Alicia");
    assert_eq!(found.body["Resources"][0]["meta"]["version"], "W/\"2\"");
    assert_eq!(
        found.body["Resources"][0]["groups"][0]["value"],
        team_id.as_str()
    );
}

/// The list parameters of a query string are named in any case (RFC 7644 §3.4.2 names
/// them; IdPs and scripts spell them as they like), percent- and `+`-decoded; a repeated
/// one keeps its last value, and an unknown one is ignored. Each query is held to the
/// SearchRequest that says the same, which reads no query string.
#[test]
fn list_parameters_are_named_in_any_case_and_the_last_of_a_repeated_one_counts() {
    let (_s, _server, scim) = scim_setup();
    for name in ["carol", "dave", "erin"] {
        let r = scim.post(
            "/Users",
            json!({"schemas": [USER], "userName": name, "name": {"givenName": name}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let filter = "userName ne \"dave\"";
    for (query, search) in [
        (
            format!(
                "FILTER={}&SORTBY=userName&sortorder=DESCENDING&StartIndex=1&COUNT=1&Attributes=userName",
                url_encode(filter)
            ),
            json!({"filter": filter, "sortBy": "userName", "sortOrder": "descending",
                   "startIndex": 1, "count": 1, "attributes": ["userName"]}),
        ),
        (
            // The last filter counts; `+` is a space; an unknown parameter is ignored.
            "filter=userName+eq+%22nobody%22&filter=userName+eq+%22carol%22&colour=blue&excludedattributes=name"
                .to_string(),
            json!({"filter": "userName eq \"carol\"", "excludedAttributes": ["name"]}),
        ),
    ] {
        let got = scim.get(&format!("/Users?{query}"));
        let want = scim.post("/Users/.search", search);
        assert_eq!((got.status, want.status), (200, 200), "{query}: {}", got.body);
        assert_eq!(got.body, want.body, "{query}");
        assert_eq!(got.body["totalResults"], json!(if query.starts_with("FILTER") { 2 } else { 1 }));
        assert_eq!(got.body["Resources"].as_array().map(Vec::len), Some(1), "{query}");
    }
    let descending = scim.get(&format!(
        "/Users?FILTER={}&SORTBY=userName&sortorder=DESCENDING&COUNT=1",
        url_encode(filter)
    ));
    assert_eq!(descending.body["Resources"][0]["userName"], "erin");
    let carol = scim.get(
        "/Users?filter=userName+eq+%22nobody%22&filter=userName+eq+%22carol%22&excludedattributes=name",
    );
    assert_eq!(carol.body["Resources"][0]["userName"], "carol");
    assert!(
        carol.body["Resources"][0].get("name").is_none(),
        "{}",
        carol.body
    );
}

/// Run `sql` (one statement, `$1` and `$2` the text parameters) on the store under `s`,
/// SQLite or PostgreSQL, as an older scimgate or an operator's tool would.
fn store_sql(s: &crate::support::TestStore, sql: &str, a: &str, b: &str) {
    match &s.pg {
        Some(pg) => {
            pg.client()
                .execute(sql, &[&a, &b])
                .expect("postgres statement");
        }
        None => {
            let sql = sql.replace('$', "?");
            rusqlite::Connection::open(&s.db)
                .and_then(|c| c.execute(&sql, [a, b]))
                .expect("sqlite statement");
        }
    }
}

/// A document stored before migration 13 (`doc_form` 0) may hold what an older version
/// kept and the read projection leaves out: a null, an empty list. Even with its
/// keys in order, so that the text could be written around, the IdPs' lookup renders it
/// in full, as a GET does; the next write stores it in the current form.
#[test]
fn a_document_stored_before_its_form_was_recorded_is_rendered_in_full() {
    let (s, _server, scim) = scim_setup();
    let r = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": "legacy@example.com", "name": {"givenName": "L"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let legacy = format!(
        r#"{{"emails":[],"name":{{"givenName":"L","middleName":null}},"nickName":null,"schemas":["{USER}"],"userName":"legacy@example.com"}}"#
    );
    // A new version, so the resource cache's rendering of the old one is not used.
    store_sql(
        &s,
        "UPDATE scim_resources SET doc = $1, doc_form = 0, version = version + 1 WHERE id = $2",
        &legacy,
        &id,
    );
    let found = scim.get("/Users?filter=userName%20eq%20%22legacy@example.com%22");
    assert_eq!(found.status, 200, "{}", found.body);
    let user = &found.body["Resources"][0];
    assert_eq!(user["id"], json!(id));
    assert_eq!(user["name"], json!({"givenName": "L"}));
    for dropped in ["emails", "nickName"] {
        assert!(user.get(dropped).is_none(), "{dropped} in {user}");
    }
    assert_eq!(user, &scim.get(&format!("/Users/{id}")).body);

    // A write stores the current form again; the lookup answers the same resource.
    let patched = scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "Dr"}]}),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let found = scim.get("/Users?filter=userName%20eq%20%22legacy@example.com%22");
    assert_eq!(found.body["Resources"][0], patched.body);
    assert_eq!(found.body["Resources"][0]["title"], json!("Dr"));
}

/// Each resource's stored text, version and form, by id, read straight from the store.
fn stored_rows(
    s: &crate::support::TestStore,
) -> std::collections::BTreeMap<String, (String, i64, i64)> {
    let sql = "SELECT id, doc, version, doc_form FROM scim_resources";
    match &s.pg {
        Some(pg) => pg
            .client()
            .query(sql, &[])
            .expect("postgres query")
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
            .collect(),
        None => {
            let c = rusqlite::Connection::open(&s.db).expect("sqlite");
            let mut stmt = c.prepare(sql).expect("prepare");
            stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows")
        }
    }
}

/// A store upgraded from a version before `doc_form` holds every document in form 0.
/// At its start the server checks them, once: each whose full rendering is what writing
/// around its text gives is marked in the current form (its text, version and answers
/// unchanged); one an older version wrote differently (a null kept) stays in form 0 and
/// is still rendered in full. A row written since the pass read it is not marked by it.
#[test]
fn documents_stored_in_an_older_form_are_checked_once_at_start() {
    use scimgate::store::FORMS_CHECKED_KEY;

    let (s, server, scim) = scim_setup();
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cy\u{e9}", "legacy"] {
        ids.push(new_user(&scim, name)["id"].as_str().unwrap().to_string());
    }
    let group = scim.post(
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Ops", "members": [{"value": ids[0]}, {"value": ids[1]}]}),
    );
    assert_eq!(group.status, 201, "{}", group.body);
    ids.push(group.body["id"].as_str().unwrap().to_string());
    // The pass of this server's start found no older document, and said so.
    server.wait_for_forms_pass();
    let token = scim.token.clone();
    drop(server);

    // What an upgrade leaves: every row in form 0, no pass recorded; and one document as
    // an older version wrote it (keys in order, a null the current form leaves out).
    store_sql(
        &s,
        "UPDATE scim_resources SET doc_form = 0 WHERE id <> $1 AND id <> $2",
        "-",
        "-",
    );
    store_sql(
        &s,
        "DELETE FROM meta WHERE key = $1 OR key = $2",
        FORMS_CHECKED_KEY,
        "-",
    );
    let legacy = format!(
        r#"{{"name":{{"familyName":"Test","givenName":"legacy"}},"nickName":null,"schemas":["{USER}"],"userName":"legacy"}}"#
    );
    store_sql(
        &s,
        "UPDATE scim_resources SET doc = $1 WHERE id = $2",
        &legacy,
        &ids[3],
    );
    let before = stored_rows(&s);
    assert!(before.values().all(|(_, _, form)| *form == 0));

    let server = crate::support::TestServer::start(&s.db, scimgate::time::Clock::system());
    let scim = Scim::new(&server, &token);
    server.wait_for_forms_pass();
    let after = stored_rows(&s);
    for id in &ids {
        let (text, version, form) = &after[id];
        assert_eq!(
            (text, version),
            (&before[id].0, &before[id].1),
            "{id} was rewritten"
        );
        let expected = if *id == ids[3] { 0 } else { 1 };
        assert_eq!(*form, expected, "{id}: {text}");
    }
    // Their answers are the full renderings, whichever path they take.
    for (id, path) in ids
        .iter()
        .zip(["Users", "Users", "Users", "Users", "Groups"])
    {
        let got = scim.get(&format!("/{path}/{id}"));
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(got.body["id"], json!(id));
        assert!(got.body.get("nickName").is_none(), "{}", got.body);
    }
    let ann = scim.get("/Users?filter=userName%20eq%20%22ann%22");
    assert_eq!(
        ann.body["Resources"][0]["groups"][0]["value"],
        json!(ids[4])
    );
    assert_eq!(
        ann.body["Resources"][0],
        scim.get(&format!("/Users/{}", ids[0])).body
    );

    // Vouching is for the version read: a row written since is not marked by it.
    store_sql(
        &s,
        "UPDATE scim_resources SET doc_form = 0 WHERE id = $1 OR id = $2",
        &ids[1],
        "-",
    );
    let stale = before[&ids[1]].1 - 1;
    assert_eq!(
        server
            .store
            .scim_vouch_for(&[(ids[1].clone(), stale)])
            .unwrap(),
        0
    );
    assert_eq!(stored_rows(&s)[&ids[1]].2, 0);
    assert_eq!(
        server
            .store
            .scim_vouch_for(&[(ids[1].clone(), before[&ids[1]].1)])
            .unwrap(),
        1
    );

    // Recorded once: the next start reads nothing again (the legacy row stays as it is).
    drop(server);
    store_sql(
        &s,
        "UPDATE scim_resources SET doc_form = 0 WHERE id = $1 OR id = $2",
        &ids[2],
        "-",
    );
    let server = crate::support::TestServer::start(&s.db, scimgate::time::Clock::system());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(server.state.forms_pass.as_ref().unwrap().finished());
    assert_eq!(stored_rows(&s)[&ids[2]].2, 0, "a second pass ran");
}

/// A User's PUT or PATCH is made inside the group commit's transaction when the request
/// and the stored User are short (`store::CHANGE_IN_WRITER_BYTES`), and prepared outside
/// it otherwise. Either way: the answer is the User as stored, the version moves only when
/// something changes, a stale If-Match is refused with nothing written, and a missing User
/// is a 404.
#[test]
fn a_user_changed_inside_the_writer_or_outside_answers_alike() {
    let (_s, _server, scim) = scim_setup();
    let long = "x".repeat(scimgate::store::CHANGE_IN_WRITER_BYTES);
    let short = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": "short@example.com"}),
    );
    let stored_long = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": "long@example.com", "title": long}),
    );
    let given = |name: &str| {
        json!({"schemas": [PATCH_OP],
               "Operations": [{"op": "replace", "path": "name.givenName", "value": name}]})
    };
    for (user, label) in [(&short, "short"), (&stored_long, "stored long")] {
        assert_eq!(user.status, 201, "{label}: {}", user.body);
        let path = format!("/Users/{}", user.body["id"].as_str().unwrap());
        let p = scim.patch(&path, given("Ada"));
        assert_eq!(p.status, 200, "{label}: {}", p.body);
        assert_eq!(p.body["name"]["givenName"], "Ada", "{label}");
        assert_eq!(p.body["title"], user.body["title"], "{label}");
        assert_eq!(p.body["meta"]["version"], "W/\"2\"", "{label}");
        assert_eq!(scim.get(&path).body, p.body, "{label}");
        // The same change again changes nothing: the same answer, the version kept.
        let again = scim.patch(&path, given("Ada"));
        assert_eq!((again.status, &again.body), (200, &p.body), "{label}");
        let stale = scim.send(
            "PATCH",
            &path,
            Some(&given("Bea")),
            &[("if-match", "W/\"1\"")],
        );
        assert_scim_error(&stale, 412, None);
        let mut doc = p.body.clone();
        doc["displayName"] = json!("Ada L.");
        let put = scim.send("PUT", &path, Some(&doc), &[("if-match", "W/\"2\"")]);
        assert_eq!(put.status, 200, "{label}: {}", put.body);
        assert_eq!(
            (&put.body["displayName"], &put.body["meta"]["version"]),
            (&json!("Ada L."), &json!("W/\"3\"")),
            "{label}"
        );
        let got = scim.get(&path).body;
        assert_eq!(got, put.body, "{label}");
        assert_eq!(
            got["name"]["givenName"], "Ada",
            "{label}: the stale PATCH wrote nothing"
        );
    }
    // A PUT longer than the bound, of a short User: prepared outside, stored whole.
    let path = format!("/Users/{}", short.body["id"].as_str().unwrap());
    let put = scim.put(
        &path,
        json!({"schemas": [USER], "userName": "short@example.com", "title": long}),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["title"].as_str().map(str::len), Some(long.len()));
    assert_eq!(scim.get(&path).body, put.body);
    // A User that does not exist, by either way.
    let missing = "/Users/00000000-0000-4000-8000-000000000000";
    assert_scim_error(&scim.patch(missing, given("Ada")), 404, None);
    assert_scim_error(
        &scim.put(
            missing,
            json!({"schemas": [USER], "userName": "x@example.com", "title": long}),
        ),
        404,
        None,
    );
}
