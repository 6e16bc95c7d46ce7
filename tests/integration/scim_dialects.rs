//! Replays of the requests the IdPs document: Microsoft's "Develop a SCIM endpoint"
//! tutorial (Entra ID) and Okta's SCIM 2.0 provisioning guide. Each step checks the answer
//! the vendor's document expects.

use serde_json::json;

use crate::support::scim_setup;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[test]
fn entra_id_user_requests() {
    let (_s, _server, scim) = scim_setup();
    // Create User (Entra sends meta, an empty roles array, and the enterprise URN).
    let r = scim.post("/Users", json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    }));
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
    // Get User by query: userName and externalId filters.
    let q = scim
        .get("/Users?filter=userName%20eq%20%22Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1%22");
    assert_eq!(q.body["totalResults"], 1);
    assert_eq!(q.body["Resources"][0]["id"], id.as_str());
    let q = scim.get("/Users?filter=externalId%20eq%20%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22");
    assert_eq!(q.body["totalResults"], 1);
    // Get User by query, zero results.
    let q = scim.get("/Users?filter=userName%20eq%20%22non-existent%20user%22");
    assert_eq!(q.body["totalResults"], 0);
    assert_eq!(q.body["Resources"], json!([]));
    // Update User [multi-valued properties], capitalised ops.
    let r = scim.patch(&format!("/Users/{id}"), json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(r.body["emails"][0]["type"], "work");
    assert_eq!(r.body["name"]["familyName"], "updatedFamilyName");
    // Update User [single-valued properties].
    let r = scim.patch(&format!("/Users/{id}"), json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]}));
    assert_eq!(
        r.body["userName"],
        "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    );
    // Disable User, with Entra's string boolean.
    let r = scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    // PATCH without a path carrying a value object; Add on the enterprise extension.
    let r = scim.patch(&format!("/Users/{id}"), json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "value": {"active": "True", "displayName": "Updated"}},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["displayName"], "Updated");
    assert_eq!(
        r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Sales"
    );
    // The PATCH response is the full resource and a GET returns exactly the same.
    assert_eq!(scim.get(&format!("/Users/{id}")).body, r.body);
    // Delete User.
    assert_eq!(scim.delete(&format!("/Users/{id}")).status, 204);
}

#[test]
fn entra_id_group_requests() {
    let (_s, _server, scim) = scim_setup();
    let u1 = scim.post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "member1"})).body["id"].as_str().unwrap().to_string();
    let u2 = scim.post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "member2"})).body["id"].as_str().unwrap().to_string();
    // Create Group, with the extra schema URN Microsoft's example carries.
    let r = scim.post("/Groups", json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"}
    }));
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    // Get Group with excludedAttributes=members; get Group by displayName.
    let g = scim.get(&format!("/Groups/{gid}?excludedAttributes=members"));
    assert_eq!(g.body["displayName"], "displayName");
    let q =
        scim.get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22displayName%22");
    assert_eq!(q.body["totalResults"], 1);
    // Update Group [non-member attributes].
    let r = scim.patch(&format!("/Groups/{gid}"), json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]}));
    assert_eq!(
        r.body["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    // Update Group [add members] ($ref: null as Entra sends it).
    let r = scim.patch(&format!("/Groups/{gid}"), json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Add", "path": "members", "value": [{"$ref": null, "value": u1}, {"$ref": null, "value": u2}]}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    // Re-adding an existing member changes nothing.
    let again = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": u1}]}]}),
    );
    assert_eq!(again.body["members"].as_array().unwrap().len(), 2);
    // Update Group [remove members] by value filter, and Entra's value-list form.
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Remove", "path": format!("members[value eq \"{u1}\"]")}]}),
    );
    assert_eq!(r.body["members"], json!([{"value": u2}]));
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": u2}]}]}),
    );
    assert!(r.body.get("members").is_none(), "{}", r.body);
    assert_eq!(scim.delete(&format!("/Groups/{gid}")).status, 204);
}

#[test]
fn okta_requests() {
    let (_s, _server, scim) = scim_setup();
    // Okta checks for an existing user first: userName eq with startIndex/count.
    let q =
        scim.get("/Users?filter=userName%20eq%20%22test.user@okta.local%22&startIndex=1&count=100");
    assert_eq!(q.status, 200);
    assert_eq!(q.body["totalResults"], 0);
    // Create the user (Okta sends an empty groups array and a password).
    let r = scim.post(
        "/Users",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [], "password": "1mz050nq", "active": true
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(r.body.get("password").is_none());
    let q =
        scim.get("/Users?filter=userName%20eq%20%22test.user@okta.local%22&startIndex=1&count=100");
    assert_eq!(q.body["totalResults"], 1);
    assert_eq!(q.body["itemsPerPage"], 1);
    // Okta updates with PUT, sending the whole user.
    let mut full = scim.get(&format!("/Users/{id}")).body;
    full["name"]["familyName"] = json!("Userson");
    full["password"] = json!("newpass1");
    let r = scim.put(&format!("/Users/{id}"), full);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["familyName"], "Userson");
    // Deactivation: PATCH replace with a value object.
    let r = scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"active": false}}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    // Groups: create, rename with the id echoed in the value, add and remove members.
    let g = scim.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2", "members": []}));
    assert_eq!(g.status, 201, "{}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_string();
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Test SCIMv2 renamed");
    let r = scim.patch(&format!("/Groups/{gid}"), json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": id, "display": "test.user@okta.local"}]}]}));
    assert_eq!(
        r.body["members"],
        json!([{"value": id, "display": "test.user@okta.local"}])
    );
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "remove", "path": format!("members[value eq \"{id}\"]")}]}),
    );
    assert!(r.body.get("members").is_none());
    let q = scim.get(
        "/Groups?filter=displayName%20eq%20%22Test%20SCIMv2%20renamed%22&startIndex=1&count=100",
    );
    assert_eq!(q.body["totalResults"], 1);
}

/// Every filter Microsoft's Entra ID SCIM guide and Okta's SCIM 2.0 guide show, against
/// one directory: each finds exactly the resources it should. Regression: Entra's
/// `emails[type eq "work"].value eq "…"` was refused with 400.
#[test]
fn the_filters_entra_and_okta_document_are_accepted() {
    let (_s, _server, scim) = scim_setup();
    let user = |name: &str, ext: &str, work: &str, home: &str| {
        let r = scim.post("/Users", json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name, "externalId": ext, "active": true,
            "emails": [{"type": "work", "value": work, "primary": true}, {"type": "home", "value": home}],
        }));
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    };
    let alice = user(
        "alice@contoso.com",
        "ext-a",
        "user@contoso.com",
        "alice@home.example",
    );
    let bob = user(
        "bob@contoso.com",
        "ext-b",
        "bob@contoso.com",
        "user@contoso.com",
    );
    let g = scim.post(
        "/Groups",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering", "externalId": "grp-1",
            "members": [{"value": alice}],
        }),
    );
    assert_eq!(g.status, 201, "{}", g.body);
    let group = g.body["id"].as_str().unwrap().to_string();
    let found = |path: &str, filter: &str| -> Vec<String> {
        let url = format!(
            "{path}?filter={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let r = scim.get(&url);
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        let mut ids: Vec<String> = r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        assert_eq!(r.body["totalResults"], ids.len(), "{filter}");
        ids
    };
    // Entra ID (Microsoft: "Develop and plan provisioning for a SCIM endpoint").
    assert_eq!(
        found("/Users", r#"userName eq "alice@contoso.com""#),
        vec![alice.clone()]
    );
    assert_eq!(
        found("/Users", r#"externalId eq "ext-b""#),
        vec![bob.clone()]
    );
    assert_eq!(
        found(
            "/Users",
            r#"emails[type eq "work"].value eq "user@contoso.com""#
        ),
        vec![alice.clone()],
        "only the user whose *work* address it is"
    );
    assert_eq!(
        found(
            "/Users",
            r#"emails[type eq "work"].value eq "USER@contoso.com""#
        ),
        vec![alice.clone()],
        "email values are caseExact false"
    );
    assert_eq!(
        found("/Groups", r#"displayName eq "Engineering""#),
        vec![group.clone()]
    );
    assert_eq!(
        found("/Groups", r#"externalId eq "grp-1""#),
        vec![group.clone()]
    );
    assert_eq!(
        found(
            "/Groups",
            &format!(r#"id eq "{group}" and members[value eq "{alice}"]"#)
        ),
        vec![group.clone()]
    );
    assert!(
        found(
            "/Groups",
            &format!(r#"id eq "{group}" and members[value eq "{bob}"]"#)
        )
        .is_empty()
    );
    // Okta ("SCIM 2.0 provisioning"): userName eq, with paging; displayName eq for groups.
    assert_eq!(
        found("/Users", r#"userName eq "bob@contoso.com""#),
        vec![bob.clone()]
    );
    assert!(found("/Users", r#"userName eq "nobody@contoso.com""#).is_empty());
    assert_eq!(
        found("/Groups", r#"displayName eq "Engineering""#),
        vec![group]
    );
    // RFC 7644's own examples of the same shapes.
    let mut both = vec![alice.clone(), bob.clone()];
    both.sort();
    assert_eq!(
        found(
            "/Users",
            r#"emails[type eq "work" and value co "@contoso.com"]"#
        ),
        both
    );
    assert_eq!(
        found(
            "/Users",
            r#"userName sw "ali" or emails[type eq "home"].value ew "contoso.com""#
        ),
        both
    );
}
