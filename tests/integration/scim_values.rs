//! SCIM value rules over HTTP, where POST/PUT and PATCH used to disagree: non-ASCII case
//! under `caseExact: false` (userName uniqueness, filters, immutable members), base64 for
//! binary, leap seconds in dateTime, and readOnly/immutable writes. Each case is sent both
//! ways and must get the same answer.

use serde_json::{Value, json};

use crate::support::{Scim, assert_scim_error, scim_setup};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn created(scim: &Scim, path: &str, body: Value) -> String {
    let r = scim.post(path, body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn ops(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

fn total(scim: &Scim, filter: &str) -> u64 {
    let path = format!("/Users?filter={}", urlencode(filter));
    let r = scim.get(&path);
    assert_eq!(r.status, 200, "{filter}: {}", r.body);
    r.body["totalResults"].as_u64().unwrap()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn user_names_equal_but_for_non_ascii_case_collide_on_post_and_patch() {
    let (_s, _server, scim) = scim_setup();
    created(
        &scim,
        "/Users",
        json!({"schemas": [USER], "userName": "ÉLODIE"}),
    );

    let r = scim.post("/Users", json!({"schemas": [USER], "userName": "élodie"}));
    assert_scim_error(&r, 409, Some("uniqueness"));

    let marc = created(
        &scim,
        "/Users",
        json!({"schemas": [USER], "userName": "marc"}),
    );
    let r = scim.patch(
        &format!("/Users/{marc}"),
        ops(json!([{"op": "replace", "path": "userName", "value": "élodie"}])),
    );
    assert_scim_error(&r, 409, Some("uniqueness"));
    let r = scim.put(
        &format!("/Users/{marc}"),
        json!({"schemas": [USER], "userName": "Élodie"}),
    );
    assert_scim_error(&r, 409, Some("uniqueness"));

    // A user may change the case of its own userName.
    let r = scim.get("/Users?filter=userName%20eq%20%22marc%22");
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = scim.patch(
        &format!("/Users/{marc}"),
        ops(json!([{"op": "replace", "path": "userName", "value": "MARC"}])),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn filters_fold_non_ascii_case_in_sql_as_in_memory() {
    let (_s, _server, scim) = scim_setup();
    created(
        &scim,
        "/Users",
        json!({"schemas": [USER], "userName": "ÉLODIE", "displayName": "Élodie Ünïcödé",
               "emails": [{"value": "ÉLODIE@EXAMPLE.COM", "type": "work"}]}),
    );
    assert_eq!(total(&scim, "userName eq \"élodie\""), 1);
    assert_eq!(total(&scim, "displayName eq \"ÉLODIE ÜNÏCÖDÉ\""), 1);
    assert_eq!(total(&scim, "displayName co \"ÜNÏ\""), 1);
    assert_eq!(total(&scim, "emails[value sw \"élodie@\"]"), 1);
    assert_eq!(total(&scim, "userName eq \"elodie\""), 0);
}

#[test]
fn binary_values_need_base64_on_post_and_patch() {
    let (_s, _server, scim) = scim_setup();
    let id = created(
        &scim,
        "/Users",
        json!({"schemas": [USER], "userName": "certs"}),
    );
    for (value, ok) in [
        ("QUJD", true),
        ("QUI", true),
        ("Q", false),
        ("not base64!", false),
    ] {
        let certs = json!([{"value": value}]);
        let post = scim.post(
            "/Users",
            json!({"schemas": [USER], "userName": format!("u-{}", value.len()),
                   "x509Certificates": certs}),
        );
        let patch = scim.patch(
            &format!("/Users/{id}"),
            ops(json!([{"op": "replace", "path": "x509Certificates", "value": certs}])),
        );
        if ok {
            assert_eq!(post.status, 201, "{value}: {}", post.body);
            assert_eq!(patch.status, 200, "{value}: {}", patch.body);
        } else {
            assert_scim_error(&post, 400, Some("invalidValue"));
            assert_scim_error(&patch, 400, Some("invalidValue"));
        }
    }
}

#[test]
fn a_leap_second_is_not_a_date_time() {
    let (_s, _server, scim) = scim_setup();
    let r = scim.get(&format!(
        "/Users?filter={}",
        urlencode("meta.lastModified gt \"2016-12-31T23:59:60Z\"")
    ));
    assert_scim_error(&r, 400, Some("invalidFilter"));
    assert_eq!(
        total(&scim, "meta.lastModified gt \"2016-12-31T23:59:59Z\""),
        0
    );
}

#[test]
fn immutable_member_type_changes_neither_by_put_nor_by_patch() {
    let (_s, _server, scim) = scim_setup();
    let user = created(
        &scim,
        "/Users",
        json!({"schemas": [USER], "userName": "member"}),
    );
    let group = created(
        &scim,
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Élèves",
               "members": [{"value": user, "type": "User"}]}),
    );
    let put = |member_type: &str| {
        scim.put(
            &format!("/Groups/{group}"),
            json!({"schemas": [GROUP], "displayName": "Élèves",
                   "members": [{"value": user, "type": member_type}]}),
        )
    };
    let patch = |member_type: &str| {
        scim.patch(
            &format!("/Groups/{group}"),
            ops(json!([{"op": "replace",
                        "path": format!("members[value eq \"{user}\"].type"),
                        "value": member_type}])),
        )
    };
    assert_scim_error(&put("Group"), 400, Some("mutability"));
    assert_scim_error(&patch("Group"), 400, Some("mutability"));
    // caseExact false: a change of case is no change, on both paths.
    let r = put("USER");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = patch("user");
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn read_only_values_are_never_stored_by_post_put_or_patch() {
    let (_s, _server, scim) = scim_setup();
    let groups = json!([{"value": "g-1", "display": "Forged"}]);
    let r = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": "ro", "groups": groups}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(r.body.get("groups").is_none(), "{}", r.body);
    // RFC 7644 §3.5.1: PUT ignores readOnly values; §3.5.2: PATCH refuses them.
    let r = scim.put(
        &format!("/Users/{id}"),
        json!({"schemas": [USER], "userName": "ro", "groups": groups}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("groups").is_none(), "{}", r.body);
    let r = scim.patch(
        &format!("/Users/{id}"),
        ops(json!([{"op": "add", "path": "groups", "value": groups}])),
    );
    assert_scim_error(&r, 400, Some("mutability"));
    assert!(
        scim.get(&format!("/Users/{id}"))
            .body
            .get("groups")
            .is_none()
    );
}
