//! The value rules ([`crate::scim::value`]) seen from both write paths: for each rule the
//! POST/PUT normalisation and PATCH give the same answer (dateTime without leap seconds,
//! base64 binary, Unicode case folding under `caseExact: false`, mutability).

use serde_json::{Value, json};

use crate::scim::patch::{apply_patch, parse_patch_request};
use crate::scim::schema::{
    GROUP_SCHEMA, ResourceKind, SchemaRegistry, SchemaSources, USER_SCHEMA, WriteMode,
};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The built-in schemas, with User `nickName` made a dateTime: no built-in attribute a
/// client may write is one.
fn registry() -> SchemaRegistry {
    let builtin = SchemaSources::BUILTIN;
    let mut user: Value = serde_json::from_str(builtin.schemas[0]).unwrap();
    for attr in user["attributes"].as_array_mut().unwrap() {
        if attr["name"] == "nickName" {
            attr["type"] = json!("dateTime");
        }
    }
    let user = user.to_string();
    let schemas = [user.as_str(), builtin.schemas[1], builtin.schemas[2]];
    SchemaRegistry::from_sources(&SchemaSources {
        schemas: &schemas,
        ..builtin
    })
    .unwrap()
}

/// POST (`existing` `None`) or PUT of `body`: the stored document, or the `scimType`.
fn write(kind: ResourceKind, body: Value, existing: Option<&Value>) -> Result<Value, String> {
    let mode = match existing {
        Some(existing) => WriteMode::Replace { existing },
        None => WriteMode::Create,
    };
    registry()
        .normalize(kind, &body, mode)
        .map_err(|e| e.scim_type().to_string())
}

/// PATCH of `doc` with `operations`: the patched document, or the `scimType`.
fn patch(kind: ResourceKind, doc: &Value, operations: Value) -> Result<Value, String> {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    });
    let registry = registry();
    let mut doc = doc.clone();
    parse_patch_request(&body)
        .and_then(|ops| apply_patch(&mut doc, &ops, &registry.resolver(kind)))
        .map_err(|e| e.scim_type().to_string())?;
    Ok(doc)
}

fn user_with(extra: Value) -> Value {
    let mut body = json!({"schemas": [USER_SCHEMA, ENT], "userName": "u"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Whether POST and PATCH both accept (`Ok`) or both refuse with the same `scimType`.
fn same_answer(attr: &str, value: Value) -> Result<(), String> {
    let post = write(ResourceKind::User, user_with(json!({attr: value})), None).map(|_| ());
    let base = write(ResourceKind::User, user_with(json!({})), None).unwrap();
    let patched = patch(
        ResourceKind::User,
        &base,
        json!([{"op": "add", "path": attr, "value": value}]),
    )
    .map(|_| ());
    assert_eq!(post, patched, "{attr}: {value}");
    post
}

#[test]
fn a_leap_second_is_refused_by_post_and_patch() {
    assert_eq!(
        same_answer("nickName", json!("2016-12-31T23:59:60Z")),
        Err("invalidValue".to_string())
    );
    assert_eq!(
        same_answer("nickName", json!("2016-12-31T23:59:59Z")),
        Ok(())
    );
    assert_eq!(
        same_answer("nickName", json!("2016-12-31 23:59:59Z")),
        Err("invalidValue".to_string())
    );
}

#[test]
fn binary_is_base64_for_post_and_patch() {
    for good in ["QUJD", "QUI=", "QUI", ""] {
        let certs = json!([{"value": good}]);
        assert_eq!(same_answer("x509Certificates", certs), Ok(()), "{good}");
    }
    for bad in ["Q", "not base64!", "QU===", "QU JD"] {
        let certs = json!([{"value": bad}]);
        assert_eq!(
            same_answer("x509Certificates", certs),
            Err("invalidValue".to_string()),
            "{bad}"
        );
    }
}

fn group_with_member_type(member_type: &str) -> Value {
    write(
        ResourceKind::Group,
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Admins",
               "members": [{"value": "u1", "type": member_type}]}),
        None,
    )
    .unwrap()
}

/// PUT and PATCH of `members[value eq "u1"].type` (immutable, caseExact false).
fn change_member_type(from: &str, to: &str) -> (Result<Value, String>, Result<Value, String>) {
    let stored = group_with_member_type(from);
    let put = write(
        ResourceKind::Group,
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Admins",
               "members": [{"value": "u1", "type": to}]}),
        Some(&stored),
    );
    let patched = patch(
        ResourceKind::Group,
        &stored,
        json!([{"op": "replace", "path": "members[value eq \"u1\"].type", "value": to}]),
    );
    (put, patched)
}

#[test]
fn an_immutable_value_changes_for_neither_put_nor_patch() {
    let (put, patched) = change_member_type("Élève", "Other");
    assert_eq!(put, Err("mutability".to_string()));
    assert_eq!(patched, Err("mutability".to_string()));
}

#[test]
fn a_non_ascii_case_change_is_no_change_for_put_and_patch() {
    // caseExact false: "ÉLÈVE" is the value "élève" (Unicode fold, not ASCII only).
    let (put, patched) = change_member_type("élève", "ÉLÈVE");
    assert!(put.is_ok(), "{put:?}");
    assert!(patched.is_ok(), "{patched:?}");
}

#[test]
fn patch_add_of_a_value_equal_but_for_non_ascii_case_adds_nothing() {
    let base = write(
        ResourceKind::User,
        user_with(json!({"emails": [{"value": "élodie@example.com", "type": "work"}]})),
        None,
    )
    .unwrap();
    let patched = patch(
        ResourceKind::User,
        &base,
        json!([{"op": "add", "path": "emails",
                "value": [{"value": "ÉLODIE@EXAMPLE.COM", "type": "WORK"}]}]),
    )
    .unwrap();
    assert_eq!(patched["emails"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_read_only_value_is_never_written_by_post_or_patch() {
    // RFC 7644 §3.5.1 has POST/PUT ignore it, §3.5.2 has PATCH refuse it: the stored
    // document is the same either way.
    let groups = json!([{"value": "g1", "display": "Admins"}]);
    let posted = write(
        ResourceKind::User,
        user_with(json!({"groups": groups})),
        None,
    )
    .unwrap();
    assert!(posted.get("groups").is_none(), "{posted}");
    let base = write(ResourceKind::User, user_with(json!({})), None).unwrap();
    let patched = patch(
        ResourceKind::User,
        &base,
        json!([{"op": "add", "path": "groups", "value": groups}]),
    );
    assert_eq!(patched, Err("mutability".to_string()));

    let manager = json!({"value": "m1", "displayName": "Boss"});
    let posted = write(
        ResourceKind::User,
        user_with(json!({ENT: {"manager": manager}})),
        None,
    )
    .unwrap();
    assert_eq!(posted[ENT]["manager"], json!({"value": "m1"}));
    let patched = patch(
        ResourceKind::User,
        &posted,
        json!([{"op": "replace", "path": format!("{ENT}:manager.displayName"), "value": "Boss"}]),
    );
    assert_eq!(patched, Err("mutability".to_string()));
}
