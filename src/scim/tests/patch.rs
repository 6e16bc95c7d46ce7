//! PATCH: RFC 7644 §3.5.2 semantics, Entra ID and Okta requests, errors.

use crate::scim::patch::{OpKind, PatchError, PatchOp, apply_patch, parse_patch_request};
use serde_json::{Value, json};

use super::mock::{ENTERPRISE_URN as ENT, MockResolver, TEST_URN as TST};

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1", "userName": "bjensen", "externalId": "bj",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Babs"},
        "title": "Tour Guide", "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "groups": [{"value": "g1", "display": "Admins"}],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z",
                 "lastModified": "2011-05-13T04:42:34Z"}
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g1", "displayName": "Admins",
        "members": [
            {"value": "u1", "display": "Babs", "type": "User"},
            {"value": "u2", "type": "User"}
        ],
        "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z",
                 "lastModified": "2011-05-13T04:42:34Z"}
    })
}

/// Applies a PATCH request body (as a client sends it) to `doc` with the User or Group
/// schema; returns the patched document.
fn patch_with(doc: &Value, body: Value, resolver: &MockResolver) -> Result<Value, PatchError> {
    let ops = parse_patch_request(&body)?;
    let mut out = doc.clone();
    let result = apply_patch(&mut out, &ops, resolver);
    if result.is_err() {
        assert_eq!(
            &out, doc,
            "a failed PATCH must leave the document unchanged"
        );
    }
    result.map(|()| out)
}

fn request(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn patch_user(ops: Value) -> Result<Value, PatchError> {
    patch_with(&user(), request(ops), &MockResolver::user())
}

fn patch_group(ops: Value) -> Result<Value, PatchError> {
    patch_with(&group(), request(ops), &MockResolver::group())
}

fn ok_user(ops: Value) -> Value {
    patch_user(ops).unwrap_or_else(|e| panic!("{e}"))
}

fn ok_group(ops: Value) -> Value {
    patch_group(ops).unwrap_or_else(|e| panic!("{e}"))
}

fn scim_type(result: Result<Value, PatchError>) -> &'static str {
    match result {
        Ok(doc) => panic!("expected an error, got {doc}"),
        Err(e) => e.scim_type(),
    }
}

// ---------------------------------------------------------------------------------------
// Request parsing

#[test]
fn op_kinds_are_case_insensitive() {
    assert_eq!("Add".parse::<OpKind>(), Ok(OpKind::Add));
    assert_eq!("REPLACE".parse::<OpKind>(), Ok(OpKind::Replace));
    assert_eq!("remove".parse::<OpKind>(), Ok(OpKind::Remove));
    assert!(matches!(
        "move".parse::<OpKind>(),
        Err(PatchError::InvalidSyntax(_))
    ));
}

#[test]
fn request_parsing() {
    let ops = parse_patch_request(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"Op": "remove", "Path": ""},
            {"op": "add", "value": {"title": "x"}}
        ]
    }))
    .unwrap();
    assert_eq!(
        ops,
        vec![
            PatchOp {
                op: OpKind::Replace,
                path: Some("active".into()),
                value: Some(json!("False"))
            },
            PatchOp {
                op: OpKind::Remove,
                path: None,
                value: None
            },
            PatchOp {
                op: OpKind::Add,
                path: None,
                value: Some(json!({"title": "x"}))
            },
        ]
    );
    // Lower-case "operations" and no schemas are tolerated.
    assert!(parse_patch_request(&json!({"operations": []})).is_ok());
    for bad in [
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
        json!({"Operations": {"op": "add"}}),
        json!({"Operations": [{"path": "title"}]}),
        json!({"Operations": [{"op": 1}]}),
        json!({"Operations": ["add"]}),
        json!([]),
    ] {
        assert!(
            matches!(parse_patch_request(&bad), Err(PatchError::InvalidSyntax(_))),
            "{bad}"
        );
    }
    let err = parse_patch_request(&json!({"Operations": [{"op": "add"}, {"op": "x"}]}));
    assert!(matches!(err, Err(PatchError::InvalidSyntax(m)) if m.starts_with("Operations[1]: ")));
    assert!(matches!(
        parse_patch_request(&json!({"Operations": [{"op": "add", "path": 5}]})),
        Err(PatchError::InvalidPath(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Microsoft Entra ID and Okta requests

#[test]
fn entra_replace_active_with_string_boolean() {
    let doc = ok_user(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(doc["active"], json!(false));
    let doc = ok_user(json!([{"op": "Replace", "path": "active", "value": "TRUE"}]));
    assert_eq!(doc["active"], json!(true));
}

#[test]
fn entra_add_and_remove_members() {
    let doc = ok_group(json!([{"op": "Add", "path": "members", "value": [{"value": "u3"}]}]));
    assert_eq!(
        doc["members"],
        json!([
            {"value": "u1", "display": "Babs", "type": "User"},
            {"value": "u2", "type": "User"},
            {"value": "u3"}
        ])
    );
    // Re-adding an existing member is a no-op (no duplicate, nothing lost).
    let doc = ok_group(json!([{"op": "Add", "path": "members", "value": [{"value": "u1"}]}]));
    assert_eq!(doc, group());
    // Filter form.
    let doc = ok_group(json!([{"op": "Remove", "path": "members[value eq \"u2\"]"}]));
    assert_eq!(
        doc["members"],
        json!([{"value": "u1", "display": "Babs", "type": "User"}])
    );
    // Value form.
    let doc = ok_group(json!([
        {"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}
    ]));
    assert!(doc.get("members").is_none(), "{doc}");
    // Removing a member that is not there by value is a no-op.
    let doc = ok_group(json!([{"op": "Remove", "path": "members", "value": [{"value": "u9"}]}]));
    assert_eq!(doc, group());
}

#[test]
fn entra_pathless_replace_and_extension_add() {
    let doc = ok_group(json!([{"op": "Replace", "value": {"displayName": "Operators"}}]));
    assert_eq!(doc["displayName"], json!("Operators"));

    let doc = ok_user(json!([{"op": "Add", "value": {
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "5"
    }}]));
    assert_eq!(doc[ENT], json!({"employeeNumber": "5"}));
    // The extension's URN is added to schemas.
    assert_eq!(
        doc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENT])
    );

    // Entra's dotted keys and mixed forms in one value.
    let doc = ok_user(json!([{"op": "Add", "value": {
        "name.givenName": "Bee",
        "title": "Boss",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Ops", "manager": {"value": "m1"}
        }
    }}]));
    assert_eq!(
        doc["name"],
        json!({"givenName": "Bee", "familyName": "Jensen", "formatted": "Babs"})
    );
    assert_eq!(doc["title"], json!("Boss"));
    assert_eq!(
        doc[ENT],
        json!({"department": "Ops", "manager": {"value": "m1"}})
    );

    // Entra sends the manager as a bare id.
    let doc = ok_user(json!([{"op": "Add",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": "m2"}]));
    assert_eq!(doc[ENT], json!({"manager": {"value": "m2"}}));
}

#[test]
fn entra_and_okta_replace_without_path() {
    let doc = ok_user(json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(doc["active"], json!(false));
    // Okta sometimes echoes read-only attributes unchanged: accepted.
    let doc = ok_user(json!([{"op": "replace", "value": {"id": "u1", "active": false}}]));
    assert_eq!(doc["active"], json!(false));
    // Core schema URN as a container key.
    let doc = ok_user(json!([{"op": "replace", "value": {
        "urn:ietf:params:scim:schemas:core:2.0:User": {"title": "CEO"}
    }}]));
    assert_eq!(doc["title"], json!("CEO"));
}

#[test]
fn replace_filtered_sub_attribute() {
    let doc = ok_user(
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value",
                              "value": "new@example.com"}]),
    );
    assert_eq!(
        doc["emails"],
        json!([
            {"value": "new@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ])
    );
    // Case-insensitive names in paths and values.
    let doc = ok_user(json!([{"op": "Replace", "path": "EMAILS[TYPE eq \"HOME\"]",
                              "value": {"Display": "Home mail"}}]));
    assert_eq!(
        doc["emails"][1],
        json!({"value": "babs@jensen.org", "type": "home", "display": "Home mail"})
    );
    assert_eq!(
        scim_type(patch_user(json!([{"op": "replace",
            "path": "emails[type eq \"other\"].value", "value": "x@y"}]))),
        "noTarget"
    );
}

#[test]
fn add_with_unmatched_eq_filter_creates_the_value() {
    let doc = ok_user(
        json!([{"op": "Add", "path": "emails[type eq \"other\"].value",
                              "value": "o@example.com"}]),
    );
    assert_eq!(
        doc["emails"][2],
        json!({"type": "other", "value": "o@example.com"})
    );
    let doc = ok_user(
        json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"]",
                              "value": {"value": "555"}}]),
    );
    assert_eq!(
        doc["phoneNumbers"],
        json!([{"type": "mobile", "value": "555"}])
    );
    // Not an eq conjunction: nothing to build from.
    assert_eq!(
        scim_type(patch_user(json!([{"op": "add",
            "path": "emails[type ne \"work\" and type ne \"home\"].value", "value": "x"}]))),
        "noTarget"
    );
    // Matched: updates in place.
    let doc = ok_user(
        json!([{"op": "add", "path": "emails[type eq \"home\"].display",
                              "value": "Home"}]),
    );
    assert_eq!(doc["emails"][1]["display"], json!("Home"));
}

// ---------------------------------------------------------------------------------------
// Multi-valued semantics

#[test]
fn add_to_multi_valued() {
    // A single object is wrapped; nothing is invented.
    let doc = ok_user(json!([{"op": "add", "path": "emails",
                              "value": {"value": "c@x.org", "type": "other"}}]));
    assert_eq!(
        doc["emails"][2],
        json!({"value": "c@x.org", "type": "other"})
    );
    assert_eq!(doc["emails"][0]["primary"], json!(true));
    // Same value and type (case-insensitively): merged, not duplicated.
    let doc = ok_user(json!([{"op": "add", "path": "emails",
                              "value": [{"value": "BJENSEN@example.com", "display": "B"}]}]));
    assert_eq!(doc["emails"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["emails"][0]["display"], json!("B"));
    // Exact duplicates are skipped.
    let doc = ok_user(json!([{"op": "add", "path": "emails",
                              "value": [{"value": "babs@jensen.org", "type": "home"}]}]));
    assert_eq!(doc, user());
    // Adding to an absent attribute creates it.
    let doc = ok_user(json!([{"op": "add", "path": "phoneNumbers",
                              "value": [{"value": "1"}, {"value": "2"}]}]));
    assert_eq!(doc["phoneNumbers"], json!([{"value": "1"}, {"value": "2"}]));
    // Simple multi-valued attribute.
    let doc = ok_user(
        json!([{"op": "add", "path": format!("{TST}:tags"), "value": "a"},
                             {"op": "add", "path": format!("{TST}:tags"), "value": ["A", "b"]}]),
    );
    assert_eq!(doc[TST]["tags"], json!(["a", "b"]));
}

#[test]
fn primary_is_unique() {
    let doc = ok_user(json!([{"op": "add", "path": "emails",
                              "value": [{"value": "n@x.org", "primary": "True"}]}]));
    assert_eq!(doc["emails"][0]["primary"], json!(false));
    assert_eq!(
        doc["emails"][2],
        json!({"value": "n@x.org", "primary": true})
    );
    let doc = ok_user(
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary",
                              "value": true}]),
    );
    assert_eq!(doc["emails"][0]["primary"], json!(false));
    assert_eq!(doc["emails"][1]["primary"], json!(true));
    assert_eq!(
        scim_type(patch_user(
            json!([{"op": "add", "path": "emails", "value": [
            {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}])
        )),
        "invalidValue"
    );
    assert_eq!(
        scim_type(patch_user(
            json!([{"op": "replace", "path": "emails", "value": [
            {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}])
        )),
        "invalidValue"
    );
}

#[test]
fn replace_and_remove_multi_valued() {
    let doc = ok_user(json!([{"op": "replace", "path": "emails",
                              "value": [{"value": "only@x.org"}]}]));
    assert_eq!(doc["emails"], json!([{"value": "only@x.org"}]));
    let doc = ok_user(json!([{"op": "remove", "path": "emails"}]));
    assert!(doc.get("emails").is_none());
    let doc = ok_user(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]));
    assert_eq!(
        doc["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
    let doc = ok_user(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
    assert_eq!(
        doc["emails"][0],
        json!({"value": "bjensen@example.com", "type": "work"})
    );
    assert_eq!(
        scim_type(patch_user(
            json!([{"op": "remove", "path": "emails[type eq \"fax\"]"}])
        )),
        "noTarget"
    );
    assert_eq!(
        scim_type(patch_user(
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"fax\"]"}])
        )),
        "noTarget"
    );
    // attr.sub without a filter applies to every value.
    let doc = ok_user(json!([{"op": "replace", "path": "emails.type", "value": "other"}]));
    assert_eq!(doc["emails"][0]["type"], json!("other"));
    assert_eq!(doc["emails"][1]["type"], json!("other"));
    let doc = ok_user(json!([{"op": "remove", "path": "emails.type"}]));
    assert!(doc["emails"][1].get("type").is_none());
    assert_eq!(
        scim_type(patch_user(
            json!([{"op": "replace", "path": "phoneNumbers.type", "value": "x"}])
        )),
        "noTarget"
    );
}

// ---------------------------------------------------------------------------------------
// Single-valued and complex attributes

#[test]
fn single_valued_and_complex() {
    let doc = ok_user(json!([{"op": "add", "path": "title", "value": "Boss"}]));
    assert_eq!(doc["title"], json!("Boss"));
    // Replace on a complex attribute keeps unspecified sub-attributes.
    let doc = ok_user(json!([{"op": "replace", "path": "name", "value": {"givenName": "Bee"}}]));
    assert_eq!(
        doc["name"],
        json!({"givenName": "Bee", "familyName": "Jensen", "formatted": "Babs"})
    );
    let doc = ok_user(json!([{"op": "replace", "path": "name.familyName", "value": "J"}]));
    assert_eq!(doc["name"]["familyName"], json!("J"));
    let doc = ok_user(json!([{"op": "remove", "path": "name.formatted"}]));
    assert_eq!(
        doc["name"],
        json!({"givenName": "Barbara", "familyName": "Jensen"})
    );
    // Removing every sub-attribute removes the attribute.
    let doc = ok_user(json!([
        {"op": "remove", "path": "name.formatted"},
        {"op": "remove", "path": "name.givenName"},
        {"op": "remove", "path": "name.familyName"}
    ]));
    assert!(doc.get("name").is_none());
    // null unassigns.
    let doc = ok_user(json!([{"op": "replace", "path": "title", "value": null},
                             {"op": "add", "path": "name.givenName", "value": null}]));
    assert!(doc.get("title").is_none());
    assert_eq!(
        doc["name"],
        json!({"familyName": "Jensen", "formatted": "Babs"})
    );
    let doc = ok_user(json!([{"op": "replace", "value": {"title": null}}]));
    assert!(doc.get("title").is_none());
    // Replace of an absent attribute adds it; remove of an absent one is a no-op.
    let doc = ok_user(json!([{"op": "replace", "path": "displayName", "value": "Babs"}]));
    assert_eq!(doc["displayName"], json!("Babs"));
    let doc = ok_user(json!([{"op": "remove", "path": "displayName"}]));
    assert_eq!(doc, user());
    // Numbers.
    let doc = ok_user(json!([{"op": "add", "value": {format!("{TST}:level"): 3,
                                                     format!("{TST}:score"): 2.5}}]));
    assert_eq!(doc[TST], json!({"level": 3, "score": 2.5}));
}

#[test]
fn extensions() {
    let doc = ok_user(json!([{"op": "add",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        "value": "m1"}]));
    assert_eq!(doc[ENT], json!({"manager": {"value": "m1"}}));
    assert_eq!(doc["schemas"][1], json!(ENT));
    // Removing the last extension attribute removes the extension and its schema URN.
    let patched = patch_with(
        &doc,
        request(json!([{"op": "remove", "path": format!("{ENT}:manager")}])),
        &MockResolver::user(),
    )
    .unwrap();
    assert!(patched.get(ENT).is_none());
    assert_eq!(
        patched["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    // Filtered remove on an absent extension: noTarget.
    assert_eq!(
        scim_type(patch_user(json!([{"op": "remove",
            "path": format!("{ENT}:manager[value eq \"x\"]")}]))),
        "noTarget"
    );
    // Plain remove on an absent extension: no-op.
    assert_eq!(
        ok_user(json!([{"op": "remove", "path": format!("{ENT}:department")}])),
        user()
    );
}

#[test]
fn schemas_member() {
    let doc = ok_user(json!([{"op": "add", "path": "schemas", "value": [ENT]}]));
    assert_eq!(doc["schemas"][1], json!(ENT));
    let doc = ok_user(json!([{"op": "replace", "value": {"schemas": [
        "urn:ietf:params:scim:schemas:core:2.0:User"]}}]));
    assert_eq!(
        doc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    assert_eq!(
        scim_type(patch_user(json!([{"op": "remove", "path": "schemas"}]))),
        "invalidValue"
    );
    assert_eq!(
        scim_type(patch_user(
            json!([{"op": "add", "path": "schemas", "value": [1]}])
        )),
        "invalidValue"
    );
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn no_target() {
    let err = patch_user(json!([{"op": "remove"}])).unwrap_err();
    assert_eq!(err.scim_type(), "noTarget");
    assert_eq!(err.detail(), "Operations[0]: remove requires a \"path\"");
}

#[test]
fn invalid_path() {
    for ops in [
        json!([{"op": "add", "path": "nickName", "value": "x"}]),
        json!([{"op": "add", "path": "name.middleName", "value": "x"}]),
        json!([{"op": "add", "path": "emails[type eq \"work\"", "value": "x"}]),
        json!([{"op": "add", "path": "emails[type eq \"work\"].label", "value": "x"}]),
        json!([{"op": "add", "path": "title[value eq \"x\"]", "value": "x"}]),
        json!([{"op": "replace", "value": {"nickName": "x"}}]),
        json!([{"op": "replace", "value": {"urn:example:unknown:1.0:User": {"x": 1}}}]),
        json!([{"op": "replace", "value": {format!("{ENT}:costCenter"): "1"}}]),
        json!([{"op": "replace", "value": {ENT: {"costCenter": "1"}}}]),
    ] {
        assert_eq!(scim_type(patch_user(ops.clone())), "invalidPath", "{ops}");
    }
    let err = patch_user(json!([{"op": "add", "path": "nickName", "value": "x"}])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid path: Operations[0]: unknown attribute \"nickName\""
    );
}

#[test]
fn invalid_filter_in_path() {
    assert_eq!(
        scim_type(patch_user(
            json!([{"op": "remove", "path": "emails[primary gt true]"}])
        )),
        "invalidFilter"
    );
    assert_eq!(
        scim_type(patch_user(
            json!([{"op": "remove", "path": "emails[kind eq \"x\"]"}])
        )),
        "invalidFilter"
    );
}

#[test]
fn invalid_value() {
    for ops in [
        json!([{"op": "add", "path": "title"}]),
        json!([{"op": "replace", "path": "title", "value": 5}]),
        json!([{"op": "replace", "path": "active", "value": "yes"}]),
        json!([{"op": "replace", "path": "active", "value": 1}]),
        json!([{"op": "add", "path": "emails", "value": "a@b.c"}]),
        json!([{"op": "add", "path": "emails", "value": [{"value": "a@b.c", "kind": "x"}]}]),
        json!([{"op": "add", "path": "emails", "value": [null]}]),
        json!([{"op": "add", "path": "name", "value": ["x"]}]),
        json!([{"op": "add", "path": format!("{TST}:level"), "value": "3"}]),
        json!([{"op": "add", "path": format!("{TST}:level"), "value": 3.5}]),
        json!([{"op": "add", "path": format!("{TST}:score"), "value": "2"}]),
        json!([{"op": "add", "path": format!("{TST}:tags"), "value": [1]}]),
        json!([{"op": "add", "value": "title"}]),
        json!([{"op": "add"}]),
        json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": "x"}]),
    ] {
        assert_eq!(scim_type(patch_user(ops.clone())), "invalidValue", "{ops}");
    }
}

#[test]
fn mutability() {
    for ops in [
        json!([{"op": "replace", "path": "id", "value": "other"}]),
        json!([{"op": "remove", "path": "id"}]),
        json!([{"op": "replace", "value": {"id": "other"}}]),
        json!([{"op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"}]),
        json!([{"op": "add", "path": "groups", "value": [{"value": "g2"}]}]),
        json!([{"op": "remove", "path": "groups[value eq \"g1\"]"}]),
    ] {
        assert_eq!(scim_type(patch_user(ops.clone())), "mutability", "{ops}");
    }
    // Unchanged read-only values are fine.
    assert_eq!(
        ok_user(json!([{"op": "replace", "path": "id", "value": "u1"}])),
        user()
    );
    // Immutable: may be set once, not changed.
    let doc = ok_user(json!([{"op": "add", "path": format!("{TST}:badge"), "value": "b1"}]));
    assert_eq!(doc[TST]["badge"], json!("b1"));
    let again = patch_with(
        &doc,
        request(json!([{"op": "replace", "path": format!("{TST}:badge"), "value": "b2"}])),
        &MockResolver::user(),
    );
    assert_eq!(scim_type(again), "mutability");
    let same = patch_with(
        &doc,
        request(json!([{"op": "replace", "path": format!("{TST}:badge"), "value": "b1"}])),
        &MockResolver::user(),
    );
    assert!(same.is_ok());
    // Immutable sub-attribute named by the path.
    assert_eq!(
        scim_type(patch_group(json!([{"op": "replace",
            "path": "members[value eq \"u1\"].value", "value": "u9"}]))),
        "mutability"
    );
    // ...but members themselves can be added and removed.
    assert!(patch_group(json!([{"op": "remove", "path": "members[value eq \"u1\"]"}])).is_ok());
}

#[test]
fn all_or_nothing() {
    let err = patch_user(json!([
        {"op": "replace", "path": "title", "value": "Changed"},
        {"op": "add", "path": "emails", "value": [{"value": "new@x"}]},
        {"op": "replace", "path": "nickName", "value": "y"}
    ]))
    .unwrap_err();
    // patch_with asserts the document is unchanged.
    assert_eq!(
        err.detail(),
        "Operations[2]: unknown attribute \"nickName\""
    );
    // The operations apply in order, each seeing the previous ones.
    let doc = ok_user(json!([
        {"op": "remove", "path": "emails"},
        {"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work"}]},
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@x"}
    ]));
    assert_eq!(doc["emails"], json!([{"value": "b@x", "type": "work"}]));
}

#[test]
fn non_object_document() {
    let mut doc = json!([]);
    assert!(matches!(
        apply_patch(&mut doc, &[], &MockResolver::user()),
        Err(PatchError::InvalidValue(_))
    ));
}

/// Adding and removing many values at once goes through the hash index of
/// `patch_value::ElementIndex` (a few go through a scan): both must find the same values,
/// with the attribute's own case rule (`emails.value` ignores case) and `type` honoured.
#[test]
fn many_values_are_matched_as_a_few_are() {
    for n in [2usize, 30] {
        let emails = |f: &dyn Fn(usize) -> String, ty: &str| -> Value {
            Value::Array((0..n).map(|i| json!({"value": f(i), "type": ty})).collect())
        };
        let doc = ok_user(json!([{"op": "replace", "path": "emails",
            "value": emails(&|i| format!("u{i}@example.com"), "work")}]));
        // The same values in upper case: merged, not added; the same with another type:
        // new values.
        let doc = patch_with(
            &doc,
            request(json!([
                {"op": "add", "path": "emails", "value": emails(&|i| format!("U{i}@EXAMPLE.COM"), "work")},
                {"op": "add", "path": "emails", "value": emails(&|i| format!("u{i}@example.com"), "home")}
            ])),
            &MockResolver::user(),
        )
        .unwrap();
        assert_eq!(doc["emails"].as_array().unwrap().len(), 2 * n, "n = {n}");
        // Removing the listed values (in another case, without a type: every type) leaves
        // none; a value not there changes nothing.
        let mut listed: Vec<Value> = (0..n)
            .map(|i| json!({"value": format!("U{i}@Example.com")}))
            .collect();
        listed.push(json!({"value": "absent@example.com"}));
        let doc = patch_with(
            &doc,
            request(json!([{"op": "remove", "path": "emails", "value": listed}])),
            &MockResolver::user(),
        )
        .unwrap();
        assert_eq!(doc.get("emails"), None, "n = {n}: {doc}");
    }
}
