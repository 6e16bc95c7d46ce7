//! Unit tests of the SCIM schema registry: loading, resolution, normalisation, projection.
use super::load::{COMMON_ATTRIBUTES_JSON, ENTERPRISE_USER_JSON, GROUP_JSON, USER_JSON};
use super::*;
use crate::scim::attr::{AttrInfo, AttrType, AttributeResolver, Mutability, Returned, Uniqueness};
use serde_json::Value;
use serde_json::json;

fn reg() -> &'static SchemaRegistry {
    SchemaRegistry::builtin()
}

fn user(input: Value) -> Result<Value, SchemaError> {
    reg().normalize(ResourceKind::User, &input, WriteMode::Create)
}

fn group(input: Value) -> Result<Value, SchemaError> {
    reg().normalize(ResourceKind::Group, &input, WriteMode::Create)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const ENT: &str = ENTERPRISE_USER_SCHEMA;

// ---------------------------------------------------------------- loading

#[test]
fn builtin_loads() {
    let r = SchemaRegistry::try_builtin().expect("builtin schemas load");
    let ids: Vec<&str> = r.schemas().iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [USER_SCHEMA, ENT, GROUP_SCHEMA]);
    assert_eq!(r.schema(USER_SCHEMA).map(|s| s.name.as_str()), Some("User"));
    assert_eq!(
        r.schema(ENT).map(|s| s.name.as_str()),
        Some("EnterpriseUser")
    );
    assert_eq!(
        r.schema(GROUP_SCHEMA).map(|s| s.name.as_str()),
        Some("Group")
    );
}

const CHARACTERISTICS: [&str; 11] = [
    "name",
    "type",
    "multiValued",
    "description",
    "required",
    "caseExact",
    "canonicalValues",
    "referenceTypes",
    "mutability",
    "returned",
    "uniqueness",
];

fn assert_complete(attr: &Value, path: &str) {
    for c in CHARACTERISTICS {
        assert!(attr.get(c).is_some(), "{path} lacks `{c}`");
    }
    assert!(
        !attr["description"].as_str().unwrap_or("").is_empty(),
        "{path} has no description"
    );
    let complex = attr["type"] == "complex";
    assert_eq!(
        attr.get("subAttributes").is_some(),
        complex,
        "{path} subAttributes"
    );
    if complex {
        for sub in attr["subAttributes"].as_array().expect("array") {
            let name = sub["name"].as_str().unwrap_or("?");
            assert_complete(sub, &format!("{path}.{name}"));
        }
    }
    if attr["type"] == "reference" {
        assert!(!attr["referenceTypes"].as_array().expect("array").is_empty());
    }
}

#[test]
fn every_attribute_has_every_characteristic() {
    for schema in reg().schemas_json().as_array().expect("array") {
        for attr in schema["attributes"].as_array().expect("array") {
            assert_complete(attr, attr["name"].as_str().unwrap_or("?"));
        }
    }
    let common: Value = serde_json::from_str(COMMON_ATTRIBUTES_JSON).expect("json");
    for attr in common["attributes"].as_array().expect("array") {
        assert_complete(attr, attr["name"].as_str().unwrap_or("?"));
    }
}

fn names(attrs: &[AttrInfo]) -> Vec<&str> {
    attrs.iter().map(|a| a.name.as_str()).collect()
}

#[test]
fn attribute_counts_match_rfc7643() {
    let user = reg().schema(USER_SCHEMA).expect("user");
    assert_eq!(
        names(&user.attributes),
        [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates"
        ]
    );
    assert_eq!(user.attributes.len(), 21);
    let sub_names = |schema: &SchemaDef, attr: &str| -> Vec<String> {
        schema
            .attribute(attr)
            .expect("attr")
            .sub_attributes
            .iter()
            .map(|s| s.name.clone())
            .collect()
    };
    assert_eq!(
        sub_names(user, "name"),
        [
            "formatted",
            "familyName",
            "givenName",
            "middleName",
            "honorificPrefix",
            "honorificSuffix"
        ]
    );
    for multi in [
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "entitlements",
        "roles",
        "x509Certificates",
    ] {
        assert_eq!(
            sub_names(user, multi),
            ["value", "display", "type", "primary"],
            "{multi}"
        );
    }
    assert_eq!(
        sub_names(user, "addresses"),
        [
            "formatted",
            "streetAddress",
            "locality",
            "region",
            "postalCode",
            "country",
            "type",
            "primary"
        ]
    );
    assert_eq!(
        sub_names(user, "groups"),
        ["value", "$ref", "display", "type"]
    );

    let ent = reg().schema(ENT).expect("enterprise");
    assert_eq!(
        names(&ent.attributes),
        [
            "employeeNumber",
            "costCenter",
            "organization",
            "division",
            "department",
            "manager"
        ]
    );
    assert_eq!(sub_names(ent, "manager"), ["value", "$ref", "displayName"]);

    let grp = reg().schema(GROUP_SCHEMA).expect("group");
    assert_eq!(names(&grp.attributes), ["displayName", "members"]);
    // `display` is the RFC 7643 §2.4 default sub-attribute that Okta sends; §8.7.1
    // lists only the first three.
    assert_eq!(
        sub_names(grp, "members"),
        ["value", "$ref", "type", "display"]
    );

    assert_eq!(
        names(reg().common_attributes()),
        ["id", "externalId", "meta"]
    );
    let meta = &reg().common_attributes()[2];
    assert_eq!(
        names(&meta.sub_attributes),
        [
            "resourceType",
            "created",
            "lastModified",
            "location",
            "version"
        ]
    );
}

#[test]
fn characteristics_match_rfc7643() {
    let r = reg().resolver(ResourceKind::User);
    let get = |p: &str| r.resolve_path(p).expect(p).leaf().clone();
    let user_name = get("userName");
    assert!(user_name.required && !user_name.case_exact);
    assert_eq!(user_name.uniqueness, Uniqueness::Server);
    let password = get("password");
    assert_eq!(password.mutability, Mutability::WriteOnly);
    assert_eq!(password.returned, Returned::Never);
    assert_eq!(get("groups").mutability, Mutability::ReadOnly);
    assert_eq!(get("groups.type").canonical_values, ["direct", "indirect"]);
    assert_eq!(get("groups.$ref").reference_types, ["User", "Group"]);
    assert_eq!(get("active").attr_type, AttrType::Boolean);
    assert_eq!(get("profileUrl").attr_type, AttrType::Reference);
    assert_eq!(get("profileUrl").reference_types, ["external"]);
    assert_eq!(get("photos.value").attr_type, AttrType::Reference);
    assert_eq!(get("x509Certificates.value").attr_type, AttrType::Binary);
    assert_eq!(
        get("ims.type").canonical_values,
        ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]
    );
    assert_eq!(
        get("phoneNumbers.type").canonical_values,
        ["work", "home", "mobile", "fax", "pager", "other"]
    );
    assert!(get("emails").multi_valued && !get("name").multi_valued);
    let id = get("id");
    assert!(id.case_exact && !id.required);
    assert_eq!(
        (id.mutability, id.returned, id.uniqueness),
        (Mutability::ReadOnly, Returned::Always, Uniqueness::Server)
    );
    let external = get("externalId");
    assert!(external.case_exact);
    assert_eq!(external.mutability, Mutability::ReadWrite);
    assert_eq!(get("meta").mutability, Mutability::ReadOnly);
    assert_eq!(get("meta.created").attr_type, AttrType::DateTime);
    let mgr = format!("{ENT}:manager");
    assert_eq!(
        get(&format!("{mgr}.displayName")).mutability,
        Mutability::ReadOnly
    );
    assert_eq!(get(&format!("{mgr}.$ref")).reference_types, ["User"]);
    assert_eq!(
        get(&format!("{mgr}.value")).mutability,
        Mutability::ReadWrite
    );

    let g = reg().resolver(ResourceKind::Group);
    let display = g.resolve_path("displayName").expect("displayName").attr;
    assert!(display.required);
    for sub in ["value", "$ref", "type", "display"] {
        let leaf = g.resolve_path(&format!("members.{sub}")).expect(sub);
        assert_eq!(leaf.leaf().mutability, Mutability::Immutable, "{sub}");
    }
    assert_eq!(
        g.resolve_path("members.type")
            .expect("type")
            .leaf()
            .canonical_values,
        ["User", "Group"]
    );
}

#[test]
fn schema_resources_are_well_formed() {
    let list = reg().schemas_json();
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 3);
    for s in list {
        assert_eq!(s["schemas"], json!([SCHEMA_SCHEMA]));
        assert_eq!(s["meta"]["resourceType"], "Schema");
        let id = s["id"].as_str().expect("id");
        assert_eq!(s["meta"]["location"], format!("/Schemas/{id}"));
        assert!(s["name"].is_string() && s["description"].is_string());
    }
    let by_id = reg()
        .schema_by_id("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER")
        .expect("case-insensitive");
    assert_eq!(by_id["id"], USER_SCHEMA);
    assert_eq!(
        reg().schema_by_id(ENT).expect("ent")["name"],
        "EnterpriseUser"
    );
    assert!(reg().schema_by_id("urn:nope").is_none());
}

#[test]
fn resource_types_and_service_provider_config() {
    let rts = reg().resource_types_json();
    assert_eq!(rts.as_array().map(Vec::len), Some(2));
    let u = reg().resource_type_by_id("user").expect("User");
    assert_eq!(u["endpoint"], "/Users");
    assert_eq!(u["schema"], USER_SCHEMA);
    assert_eq!(
        u["schemaExtensions"],
        json!([{"schema": ENT, "required": false}])
    );
    assert_eq!(u["meta"]["location"], "/ResourceTypes/User");
    let g = reg().resource_type_by_id("Group").expect("Group");
    assert_eq!(g["endpoint"], "/Groups");
    assert_eq!(g["schemas"], json!([RESOURCE_TYPE_SCHEMA]));
    assert!(reg().resource_type_by_id("Device").is_none());

    let spc = reg().service_provider_config_json();
    assert_eq!(spc["schemas"], json!([SERVICE_PROVIDER_CONFIG_SCHEMA]));
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["bulk"]["maxOperations"], 0);
    assert_eq!(spc["filter"], json!({"supported": true, "maxResults": 200}));
    assert_eq!(spc["changePassword"]["supported"], false);
    assert_eq!(spc["sort"]["supported"], true);
    assert_eq!(spc["etag"]["supported"], true);
    let schemes = spc["authenticationSchemes"].as_array().expect("array");
    assert_eq!(schemes.len(), 1);
    assert_eq!(schemes[0]["type"], "oauthbearertoken");
    assert_eq!(schemes[0]["primary"], true);
    assert_eq!(spc["meta"]["resourceType"], "ServiceProviderConfig");
}

#[test]
fn prefixes_locations() {
    let mut list = json!({"Resources": reg().schemas_json()});
    prefix_meta_locations(&mut list, "https://x.test/scim/v2/");
    assert_eq!(
        list["Resources"][0]["meta"]["location"],
        format!("https://x.test/scim/v2/Schemas/{USER_SCHEMA}")
    );
    let mut spc = reg().service_provider_config_json();
    prefix_meta_locations(&mut spc, "https://x.test");
    assert_eq!(
        spc["meta"]["location"],
        "https://x.test/ServiceProviderConfig"
    );
    let mut absolute = json!({"meta": {"location": "https://y/z"}});
    prefix_meta_locations(&mut absolute, "https://x.test");
    assert_eq!(absolute["meta"]["location"], "https://y/z");
    prefix_meta_locations(&mut json!(null), "x");
}

fn sources_with(f: impl FnOnce(&mut Value)) -> Result<SchemaRegistry, LoadError> {
    let mut user: Value = serde_json::from_str(USER_JSON).expect("json");
    f(&mut user);
    let user = user.to_string();
    let texts = [user.as_str(), ENTERPRISE_USER_JSON, GROUP_JSON];
    SchemaRegistry::from_sources(&SchemaSources {
        schemas: &texts,
        ..SchemaSources::BUILTIN
    })
}

#[test]
fn loader_rejects_incomplete_or_bad_definitions() {
    assert!(sources_with(|_| {}).is_ok());
    let missing = sources_with(|u| {
        u["attributes"][0]
            .as_object_mut()
            .expect("object")
            .remove("returned");
    });
    assert!(
        matches!(missing, Err(LoadError::Json { .. })),
        "{missing:?}"
    );
    let bad_type = sources_with(|u| u["attributes"][0]["type"] = json!("text"));
    assert!(matches!(bad_type, Err(LoadError::Invalid { .. })));
    let no_subs = sources_with(|u| {
        u["attributes"][1]
            .as_object_mut()
            .expect("object")
            .remove("subAttributes");
    });
    assert!(matches!(no_subs, Err(LoadError::Invalid { .. })));
    let dup = sources_with(|u| u["attributes"][2]["name"] = json!("USERNAME"));
    assert!(matches!(dup, Err(LoadError::Invalid { .. })));
    let no_refs = sources_with(|u| u["attributes"][4]["referenceTypes"] = json!([]));
    assert!(matches!(no_refs, Err(LoadError::Invalid { .. })));
    let clash = sources_with(|u| u["attributes"][2]["name"] = json!("externalId"));
    assert!(matches!(clash, Err(LoadError::Invalid { .. })));
    let not_json = SchemaRegistry::from_sources(&SchemaSources {
        schemas: &["{"],
        ..SchemaSources::BUILTIN
    });
    assert!(not_json.is_err());
    let no_group = SchemaRegistry::from_sources(&SchemaSources {
        schemas: &[USER_JSON, ENTERPRISE_USER_JSON],
        ..SchemaSources::BUILTIN
    });
    assert!(matches!(no_group, Err(LoadError::Invalid { .. })));
    let bad_rt = SchemaRegistry::from_sources(&SchemaSources {
        resource_types: "[]",
        ..SchemaSources::BUILTIN
    });
    assert!(bad_rt.is_err());
    let bad_spc = SchemaRegistry::from_sources(&SchemaSources {
        service_provider_config: "{}",
        ..SchemaSources::BUILTIN
    });
    assert!(bad_spc.is_err());
}

#[test]
fn resource_kind_accessors() {
    assert_eq!(ResourceKind::User.schema_urn(), USER_SCHEMA);
    assert_eq!(ResourceKind::Group.schema_urn(), GROUP_SCHEMA);
    assert_eq!(ResourceKind::User.extension_urns(), [ENT]);
    assert!(ResourceKind::Group.extension_urns().is_empty());
    assert_eq!(ResourceKind::User.endpoint(), "/Users");
    assert_eq!(ResourceKind::Group.endpoint(), "/Groups");
    assert_eq!(ResourceKind::Group.name(), "Group");
    assert_eq!(ResourceKind::from_name("users"), None);
    assert_eq!(ResourceKind::from_name("USER"), Some(ResourceKind::User));
    assert_eq!(ResourceKind::User.to_string(), "User");
}

// ---------------------------------------------------------------- resolution

#[test]
fn resolves_case_insensitively() {
    let r = reg().resolver(ResourceKind::User);
    let p = r.resolve(None, "USERNAME", None).expect("userName");
    assert_eq!(p.attr.name, "userName");
    assert_eq!(p.extension, None);
    assert_eq!(p.keys(), ["userName"]);
    let p = r
        .resolve(None, "Name", Some("GIVENNAME"))
        .expect("name.givenName");
    assert_eq!(p.keys(), ["name", "givenName"]);
    assert_eq!(p.leaf().name, "givenName");
    let p = r
        .resolve(None, "emails", Some("Value"))
        .expect("emails.value");
    assert_eq!(p.keys(), ["emails", "value"]);
    let p = r
        .resolve_path("  meta.LASTMODIFIED ")
        .expect("meta.lastModified");
    assert_eq!(p.keys(), ["meta", "lastModified"]);
    assert_eq!(
        r.resolve_path("name.givenName"),
        r.resolve(None, "name", Some("givenName"))
    );
}

#[test]
fn resolves_urn_qualified_paths() {
    let r = reg().resolver(ResourceKind::User);
    let p = r
        .resolve(Some(USER_SCHEMA), "userName", None)
        .expect("core urn");
    assert_eq!(p.keys(), ["userName"]);
    let p = r
        .resolve_path("urn:ietf:params:scim:schemas:core:2.0:User:userName")
        .expect("full core path");
    assert_eq!((p.extension, p.attr.name), (None, "userName".to_string()));
    let p = r
        .resolve_path("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.familyName")
        .expect("upper-case urn");
    assert_eq!(p.keys(), ["name", "familyName"]);
    let p = r
        .resolve(Some(&ENT.to_lowercase()), "Department", None)
        .expect("ext");
    assert_eq!(p.extension.as_deref(), Some(ENT));
    assert_eq!(p.keys(), [ENT, "department"]);
    let p = r
        .resolve_path(&format!("{ENT}:manager.value"))
        .expect("ext sub");
    assert_eq!(p.keys(), [ENT, "manager", "value"]);
    let p = r
        .resolve(None, &format!("{ENT}:employeeNumber"), None)
        .expect("qualified attr without urn");
    assert_eq!(p.keys(), [ENT, "employeeNumber"]);
    let p = r.resolve(Some(&format!("{ENT}:")), "manager", Some("$REF"));
    assert_eq!(p.expect("trailing colon").keys(), [ENT, "manager", "$ref"]);
    let p = r
        .resolve(Some(USER_SCHEMA), "id", None)
        .expect("common via core urn");
    assert_eq!(p.attr.name, "id");
}

#[test]
fn unknown_paths_do_not_resolve() {
    let r = reg().resolver(ResourceKind::User);
    assert!(r.resolve(None, "foo", None).is_none());
    assert!(r.resolve(None, "name", Some("foo")).is_none());
    assert!(r.resolve(None, "userName", Some("value")).is_none());
    assert!(
        r.resolve(None, "department", None).is_none(),
        "extension attr needs urn"
    );
    assert!(r.resolve(Some(ENT), "userName", None).is_none());
    assert!(r.resolve(Some(GROUP_SCHEMA), "displayName", None).is_none());
    assert!(r.resolve(Some("urn:x"), "userName", None).is_none());
    assert!(r.resolve_path("").is_none());
    assert!(r.resolve_path("name.").is_none());
    assert!(r.resolve_path("name.givenName.x").is_none());
    assert!(r.resolve_path(ENT).is_none());
    assert!(r.resolve_path(&format!("{ENT}x:department")).is_none());
    assert!(r.resolve_path("emails[type eq \"work\"].value").is_none());
    let g = reg().resolver(ResourceKind::Group);
    assert!(g.resolve_path("userName").is_none());
    assert!(g.resolve_path(&format!("{ENT}:department")).is_none());
    assert!(g.resolve_path("members.value").is_some());
    let err = r.require_path("nope").expect_err("invalid");
    assert_eq!(err.scim_type(), "invalidPath");
    assert!(r.require_path("name.givenName").is_ok());
}

#[test]
fn columns() {
    let r = reg().resolver(ResourceKind::User);
    let col = |p: &str| r.column(&r.resolve_path(p).expect(p));
    assert_eq!(col("id"), Some("id"));
    assert_eq!(col("USERNAME"), Some("user_name"));
    assert_eq!(col("externalId"), Some("external_id"));
    assert_eq!(col("displayName"), Some("display_name"));
    assert_eq!(col("meta.created"), Some("created_at"));
    assert_eq!(col("meta.lastModified"), Some("last_modified"));
    assert_eq!(col("meta.version"), None);
    assert_eq!(col("meta"), None);
    assert_eq!(col("name.givenName"), None);
    assert_eq!(col("emails.value"), None);
    assert_eq!(col(&format!("{ENT}:department")), None);
    let g = reg().resolver(ResourceKind::Group);
    let gcol = |p: &str| g.column(&g.resolve_path(p).expect(p));
    assert_eq!(gcol("displayName"), Some("display_name"));
    assert_eq!(gcol("id"), Some("id"));
    assert_eq!(gcol("members.value"), None);
    // A User path handed to the Group resolver: userName has no Group column.
    assert_eq!(g.column(&r.resolve_path("userName").expect("p")), None);
}

#[test]
fn canonical_urns() {
    let r = reg().resolver(ResourceKind::User);
    assert_eq!(
        r.canonical_urn(&USER_SCHEMA.to_uppercase()),
        Some(USER_SCHEMA)
    );
    assert_eq!(r.canonical_urn(&ENT.to_lowercase()), Some(ENT));
    assert_eq!(r.canonical_urn(GROUP_SCHEMA), None);
    let attrs = r.attributes();
    assert_eq!(attrs.len(), 3 + 21 + 6);
    assert_eq!(attrs.iter().filter(|(s, _)| *s == Some(ENT)).count(), 6);
}

// ---------------------------------------------------------------- normalize

#[test]
fn canonicalises_names() {
    let out = user(json!({
        "SCHEMAS": ["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"],
        "USERNAME": "bjensen",
        "Name": {"GIVENNAME": "Barbara", "familyname": "Jensen"},
        "eMails": [{"VALUE": "b@example.com", "Type": "work", "PRIMARY": true}],
        "externalID": "x1"
    }))
    .expect("ok");
    assert_eq!(
        out,
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
            "externalId": "x1"
        })
    );
}

#[test]
fn coerces_entra_boolean_strings() {
    for (given, expected) in [
        ("False", false),
        ("True", true),
        ("false", false),
        ("true", true),
        ("TRUE", true),
    ] {
        let out =
            user(json!({"schemas": [USER_SCHEMA], "userName": "u", "active": given})).expect("ok");
        assert_eq!(out["active"], expected, "{given}");
    }
    let out = user(json!({
        "schemas": [USER_SCHEMA], "userName": "u",
        "emails": [{"value": "a@b.c", "primary": "True"}]
    }))
    .expect("ok");
    assert_eq!(out["emails"][0]["primary"], true);
    let err = user(json!({"schemas": [USER_SCHEMA], "userName": "u", "active": "yes"}))
        .expect_err("not a boolean");
    assert_eq!(err.scim_type(), "invalidValue");
    assert!(err.to_string().contains("active"), "{err}");
}

#[test]
fn rejects_unknown_attributes() {
    let err =
        user(json!({"schemas": [USER_SCHEMA], "userName": "u", "foo": 1})).expect_err("unknown");
    assert_eq!(err, SchemaError::UnknownAttribute("foo".into()));
    assert_eq!(err.to_string(), "unknown attribute `foo`");
    assert_eq!(err.scim_type(), "invalidSyntax");
    let err = user(json!({"schemas": [USER_SCHEMA], "userName": "u", "name": {"nick": "x"}}))
        .expect_err("unknown sub");
    assert_eq!(err, SchemaError::UnknownAttribute("name.nick".into()));
    let err = user(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"badge": "7"}
    }))
    .expect_err("unknown ext attr");
    assert_eq!(err, SchemaError::UnknownAttribute(format!("{ENT}:badge")));
    let err = group(json!({
        "schemas": [GROUP_SCHEMA], "displayName": "g",
        ENT: {"department": "x"}
    }))
    .expect_err("enterprise on a group");
    assert!(matches!(err, SchemaError::UnknownAttribute(_)), "{err:?}");
    let err = user(json!({"schemas": [USER_SCHEMA], "userName": "u", "name.givenName": "x"}))
        .expect_err("dotted plain key");
    assert!(matches!(err, SchemaError::UnknownAttribute(_)));
    let err = user(json!({"schemas": [USER_SCHEMA], "userName": "u", USER_SCHEMA: {}}))
        .expect_err("core urn as key");
    assert!(matches!(err, SchemaError::UnknownAttribute(_)));
}

#[test]
fn checks_schemas() {
    let err = user(json!({"userName": "u"})).expect_err("missing");
    assert_eq!(err.scim_type(), "invalidSyntax");
    assert!(err.to_string().contains("schemas"));
    let err = user(json!({"schemas": USER_SCHEMA, "userName": "u"})).expect_err("string");
    assert_eq!(err.scim_type(), "invalidSyntax");
    let err = user(json!({"schemas": [USER_SCHEMA, 1], "userName": "u"})).expect_err("int");
    assert_eq!(err.scim_type(), "invalidSyntax");
    let err = user(json!({"schemas": [ENT], "userName": "u"})).expect_err("no core");
    assert_eq!(err.scim_type(), "invalidValue");
    // An unknown URN without attributes is dropped (Entra's documented requests send one).
    let doc = user(json!({"schemas": [USER_SCHEMA, "urn:acme:x"], "userName": "u"}))
        .expect("unknown urn dropped");
    assert_eq!(doc["schemas"], json!([USER_SCHEMA]));
    let err = user(
        json!({"schemas": [USER_SCHEMA, "urn:acme:x"], "userName": "u", "urn:acme:x": {"a": 1}}),
    )
    .expect_err("attributes under an unknown urn");
    assert_eq!(err.scim_type(), "invalidSyntax");
    let err = group(json!({"schemas": [USER_SCHEMA], "displayName": "g"}))
        .expect_err("user urn on group");
    assert_eq!(err.scim_type(), "invalidValue");
    let err = user(json!({"schemas": [USER_SCHEMA], "Schemas": [USER_SCHEMA], "userName": "u"}))
        .expect_err("twice");
    assert_eq!(err.scim_type(), "invalidSyntax");
    let err = user(json!([1])).expect_err("array body");
    assert_eq!(err.scim_type(), "invalidSyntax");
    let out = user(json!({
        "schemas": [USER_SCHEMA, USER_SCHEMA.to_lowercase(), ENT.to_uppercase()],
        "userName": "u"
    }))
    .expect("ok");
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENT]));
}

#[test]
fn rejects_wrong_types() {
    let cases = [
        json!({"userName": 5}),
        json!({"userName": ["a"]}),
        json!({"userName": "u", "name": "Barbara"}),
        json!({"userName": "u", "name": {"givenName": 1}}),
        json!({"userName": "u", "emails": [[{"value": "a"}]]}),
        json!({"userName": "u", "emails": "a@b.c"}),
        json!({"userName": "u", "emails": [{"value": true}]}),
        json!({"userName": "u", "profileUrl": 3}),
        json!({"userName": "u", "x509Certificates": [{"value": "not base64!"}]}),
        json!({"userName": "u", "active": 1}),
        json!({"userName": "u", ENT: "sales"}),
    ];
    for case in cases {
        let mut body = case.clone();
        body["schemas"] = json!([USER_SCHEMA]);
        let err = user(body).expect_err(&case.to_string());
        assert_eq!(err.scim_type(), "invalidValue", "{case}: {err}");
    }
    let ok = user(json!({
        "schemas": [USER_SCHEMA], "userName": "u",
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}]
    }));
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn checks_scalar_types() {
    let mk = |t: AttrType| crate::scim::tests::mock::attr("x", t);
    let ok = |t: AttrType, v: Value| crate::scim::value::check_scalar(&mk(t), &v, &"x").is_ok();
    assert!(ok(AttrType::Integer, json!(3)));
    assert!(ok(AttrType::Integer, json!(-3)));
    assert!(!ok(AttrType::Integer, json!(3.5)));
    assert!(!ok(AttrType::Integer, json!("3")));
    assert!(ok(AttrType::Decimal, json!(3.5)));
    assert!(ok(AttrType::Decimal, json!(3)));
    assert!(!ok(AttrType::Decimal, json!("3.5")));
    assert!(ok(AttrType::DateTime, json!("2008-01-23T04:56:22Z")));
    assert!(!ok(AttrType::DateTime, json!("yesterday")));
    assert!(ok(AttrType::Binary, json!("QUJD")));
    assert!(ok(AttrType::Binary, json!("QUI=")));
    assert!(!ok(AttrType::Binary, json!("QU===")));
    assert!(ok(AttrType::Reference, json!("https://x")));
    assert!(!ok(AttrType::Complex, json!({})));
}

#[test]
fn wraps_single_values() {
    let out = user(json!({
        "schemas": [USER_SCHEMA], "userName": "u",
        "emails": {"value": "a@b.c", "type": "work"},
        ENT: {"manager": "m-1"}
    }))
    .expect("ok");
    assert_eq!(out["emails"], json!([{"value": "a@b.c", "type": "work"}]));
    assert_eq!(out[ENT]["manager"], json!({"value": "m-1"}));
}

#[test]
fn drops_read_only_and_null() {
    let out = user(json!({
        "schemas": [USER_SCHEMA, ENT],
        "id": "client-chosen",
        "meta": {"resourceType": "User", "created": "2020-01-01T00:00:00Z"},
        "userName": "u",
        "groups": [{"value": "g1", "display": "G"}],
        "nickName": null,
        "name": {"givenName": null, "familyName": null},
        "emails": [null, {"value": null}],
        "roles": [],
        ENT: {"manager": {"value": "m-1", "displayName": "Boss"}, "department": null}
    }))
    .expect("ok");
    assert_eq!(
        out,
        json!({
            "schemas": [USER_SCHEMA, ENT],
            "userName": "u",
            ENT: {"manager": {"value": "m-1"}}
        })
    );
    let out = user(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"manager": {"displayName": "Boss"}}
    }))
    .expect("ok");
    assert_eq!(out, json!({"schemas": [USER_SCHEMA, ENT], "userName": "u"}));
}

#[test]
fn keeps_password() {
    let out =
        user(json!({"schemas": [USER_SCHEMA], "userName": "u", "Password": "s3cret"})).expect("ok");
    assert_eq!(out["password"], "s3cret");
}

/// Messages name an attribute by its path: a sub-attribute as `parent.sub`, an
/// extension's attribute by its URN. The labels are written only when a message is.
#[test]
fn messages_name_sub_attributes_and_extension_attributes_by_their_paths() {
    let msg = |body: Value| user(body).expect_err("refused").to_string();
    assert_eq!(
        msg(json!({"schemas": [USER_SCHEMA], "userName": "u", "name": {"givenName": 5}})),
        "attribute `name.givenName` must be a string"
    );
    assert_eq!(
        msg(json!({"schemas": [USER_SCHEMA], "userName": "u",
                   "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName": true})),
        "attribute `name.familyName` must be a string"
    );
    assert_eq!(
        msg(json!({"schemas": [USER_SCHEMA], "userName": "u",
                   "emails": [{"value": "a@b", "Value": "c@d"}]})),
        "attribute `emails.value` is given more than once"
    );
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert_eq!(
        msg(json!({"schemas": [USER_SCHEMA, ent], "userName": "u",
                   ent: {"employeeNumber": 7}})),
        format!("attribute `{ent}:employeeNumber` must be a string")
    );
    assert_eq!(
        msg(json!({"schemas": [USER_SCHEMA, ent], "userName": "u",
                   ent: {"manager": {"value": 7}}})),
        format!("attribute `{ent}:manager.value` must be a string")
    );
}

#[test]
fn enforces_required() {
    let err = user(json!({"schemas": [USER_SCHEMA], "displayName": "x"})).expect_err("missing");
    assert_eq!(
        err,
        SchemaError::InvalidValue("missing required attribute `userName`".into())
    );
    assert_eq!(err.scim_type(), "invalidValue");
    let err = user(json!({"schemas": [USER_SCHEMA], "userName": null})).expect_err("null");
    assert_eq!(err.scim_type(), "invalidValue");
    let err = user(json!({"schemas": [USER_SCHEMA], "userName": "  "})).expect_err("blank");
    assert_eq!(err.scim_type(), "invalidValue");
    assert!(err.to_string().contains("userName"));
    let err = group(json!({"schemas": [GROUP_SCHEMA], "members": []})).expect_err("group");
    assert_eq!(
        err,
        SchemaError::InvalidValue("missing required attribute `displayName`".into())
    );
    assert!(group(json!({"schemas": [GROUP_SCHEMA], "displayName": "g"})).is_ok());
}

#[test]
fn extension_in_both_forms() {
    let nested = user(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"Department": "Sales", "manager": {"value": "m-1"}}
    }))
    .expect("nested");
    let flat = user(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        format!("{ENT}:department"): "Sales",
        format!("{}:Manager.Value", ENT.to_lowercase()): "m-1"
    }))
    .expect("flat");
    assert_eq!(nested, flat);
    assert_eq!(
        nested[ENT],
        json!({"department": "Sales", "manager": {"value": "m-1"}})
    );
    let mixed = user(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"manager": {"value": "m-1"}},
        format!("{ENT}:department"): "Sales"
    }))
    .expect("mixed");
    assert_eq!(mixed, nested);
    // The extension URN is added to `schemas` when its attributes are used.
    let added = user(json!({
        "schemas": [USER_SCHEMA], "userName": "u",
        format!("{ENT}:department"): "Sales"
    }))
    .expect("added");
    assert_eq!(added["schemas"], json!([USER_SCHEMA, ENT]));
    // Core attributes may be URN-qualified too.
    let core = user(json!({
        "schemas": [USER_SCHEMA],
        format!("{USER_SCHEMA}:userName"): "u",
        format!("{USER_SCHEMA}:name.givenName"): "B"
    }))
    .expect("core qualified");
    assert_eq!(
        core,
        json!({"schemas": [USER_SCHEMA], "userName": "u", "name": {"givenName": "B"}})
    );
    // An empty extension object is unassigned.
    let empty =
        user(json!({"schemas": [USER_SCHEMA, ENT], "userName": "u", ENT: {}})).expect("empty");
    assert_eq!(
        empty,
        json!({"schemas": [USER_SCHEMA, ENT], "userName": "u"})
    );
}

#[test]
fn rejects_duplicates() {
    let err =
        user(json!({"schemas": [USER_SCHEMA], "userName": "a", "USERNAME": "b"})).expect_err("dup");
    assert_eq!(err.scim_type(), "invalidSyntax");
    let err = user(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"department": "A"},
        format!("{ENT}:department"): "B"
    }))
    .expect_err("nested and flat");
    assert_eq!(err.scim_type(), "invalidSyntax");
    let err = user(json!({
        "schemas": [USER_SCHEMA], "userName": "u",
        "name": {"givenName": "A", "GivenName": "B"}
    }))
    .expect_err("dup sub");
    assert_eq!(err.scim_type(), "invalidSyntax");
}

#[test]
fn group_members() {
    let out = group(json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Admins",
        "members": [
            {"value": "u1", "display": "One", "type": "User"},
            {"VALUE": "g2", "$REF": "https://x/Groups/g2", "type": "Group"}
        ]
    }))
    .expect("ok");
    assert_eq!(
        out["members"],
        json!([
            {"value": "u1", "display": "One", "type": "User"},
            {"value": "g2", "$ref": "https://x/Groups/g2", "type": "Group"}
        ])
    );
}

#[test]
fn replace_enforces_immutable_members() {
    let existing = json!({
        "schemas": [GROUP_SCHEMA], "id": "g", "displayName": "Admins",
        "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]
    });
    let replace = |body: Value| {
        reg().normalize(
            ResourceKind::Group,
            &body,
            WriteMode::Replace {
                existing: &existing,
            },
        )
    };
    // Adding and removing members is fine; an omitted immutable sub-attribute is kept.
    let out = replace(json!({
        "schemas": [GROUP_SCHEMA], "displayName": "Admins",
        "members": [{"value": "u2"}, {"value": "u3", "type": "User"}]
    }))
    .expect("ok");
    assert_eq!(
        out["members"],
        json!([{"value": "u2", "type": "User"}, {"value": "u3", "type": "User"}])
    );
    assert!(out.get("id").is_none() && out.get("meta").is_none());
    // Same value, different case: caseExact false, so no change.
    assert!(
        replace(json!({
            "schemas": [GROUP_SCHEMA], "displayName": "Admins",
            "members": [{"value": "u1", "type": "user"}]
        }))
        .is_ok()
    );
    let err = replace(json!({
        "schemas": [GROUP_SCHEMA], "displayName": "Admins",
        "members": [{"value": "u1", "type": "Group"}]
    }))
    .expect_err("immutable");
    assert!(matches!(err, SchemaError::Mutability(_)), "{err:?}");
    assert_eq!(err.scim_type(), "mutability");
    assert!(err.to_string().contains("members.type"), "{err}");
}

fn registry_with_immutable_employee_number() -> SchemaRegistry {
    let mut ent: Value = serde_json::from_str(ENTERPRISE_USER_JSON).expect("json");
    ent["attributes"][0]["mutability"] = json!("immutable");
    let ent = ent.to_string();
    let texts = [USER_JSON, ent.as_str(), GROUP_JSON];
    SchemaRegistry::from_sources(&SchemaSources {
        schemas: &texts,
        ..SchemaSources::BUILTIN
    })
    .expect("loads")
}

#[test]
fn replace_enforces_immutable_attribute() {
    let r = registry_with_immutable_employee_number();
    let existing = json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"employeeNumber": "E7"}
    });
    let replace = |body: Value| {
        r.normalize(
            ResourceKind::User,
            &body,
            WriteMode::Replace {
                existing: &existing,
            },
        )
    };
    let err = replace(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"employeeNumber": "E8"}
    }))
    .expect_err("changed");
    assert_eq!(err.scim_type(), "mutability");
    assert!(err.to_string().contains("employeeNumber"), "{err}");
    let same = replace(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"employeeNumber": "e7"}
    }))
    .expect("same, caseExact false");
    assert_eq!(same[ENT]["employeeNumber"], "e7");
    let kept = replace(json!({"schemas": [USER_SCHEMA], "userName": "u"})).expect("omitted");
    assert_eq!(kept[ENT]["employeeNumber"], "E7");
    assert_eq!(kept["schemas"], json!([USER_SCHEMA, ENT]));
    // On create there is nothing to compare with.
    let created = r
        .normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA, ENT], "userName": "u", ENT: {"employeeNumber": "E8"}}),
            WriteMode::Create,
        )
        .expect("create");
    assert_eq!(created[ENT]["employeeNumber"], "E8");
}

#[test]
fn replace_keeps_read_only_values() {
    let existing = json!({
        "schemas": [USER_SCHEMA, ENT],
        "id": "abc", "meta": {"resourceType": "User"},
        "userName": "u", "nickName": "old",
        "groups": [{"value": "g1", "display": "Admins"}],
        ENT: {"manager": {"value": "m-1", "displayName": "Boss"}}
    });
    let replace = |body: Value| {
        reg().normalize(
            ResourceKind::User,
            &body,
            WriteMode::Replace {
                existing: &existing,
            },
        )
    };
    let out = replace(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u2",
        "groups": [{"value": "hacked"}],
        ENT: {"manager": {"value": "m-1"}}
    }))
    .expect("ok");
    assert_eq!(
        out,
        json!({
            "schemas": [USER_SCHEMA, ENT],
            "userName": "u2",
            "groups": [{"value": "g1", "display": "Admins"}],
            ENT: {"manager": {"value": "m-1", "displayName": "Boss"}}
        })
    );
    // A different manager: the old manager's displayName is not carried over.
    let out = replace(json!({
        "schemas": [USER_SCHEMA, ENT], "userName": "u",
        ENT: {"manager": {"value": "m-2"}}
    }))
    .expect("ok");
    assert_eq!(out[ENT]["manager"], json!({"value": "m-2"}));
    // Manager removed: nothing carried.
    let out = replace(json!({"schemas": [USER_SCHEMA], "userName": "u"})).expect("ok");
    assert!(out.get(ENT).is_none(), "{out}");
    assert!(
        out.get("nickName").is_none(),
        "readWrite values are replaced"
    );
    // A non-object `existing` is taken as empty.
    let out = reg()
        .normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA], "userName": "u"}),
            WriteMode::Replace {
                existing: &json!("junk"),
            },
        )
        .expect("ok");
    assert_eq!(out, json!({"schemas": [USER_SCHEMA], "userName": "u"}));
}

fn okta_create() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

fn entra_create() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@testuser.com",
        "active": true,
        "addresses": [{
            "primary": true, "type": "work",
            "streetAddress": "1 Main St", "locality": "Redmond", "region": "WA",
            "postalCode": "98052", "country": "US",
            "formatted": "1 Main St\nRedmond, WA 98052 US"
        }],
        "displayName": "Test_User_19e0ed02-4f6e-4a23-9f34-2b8e6b5c7a10",
        "emails": [{
            "primary": true, "type": "work",
            "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
        }],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "phoneNumbers": [
            {"type": "work", "value": "+1 425 555 0100"},
            {"type": "mobile", "value": "+1 425 555 0101"}
        ],
        "preferredLanguage": "en-US",
        "title": "Engineer",
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "1234",
            "department": "Engineering",
            "manager": {"value": "0a21f0f2-0000-4f8e-bf98-7363c4aed4ef"}
        }
    })
}

/// Upper-cases every object key below the top level's `schemas` value (URN keys too).
fn shout(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_uppercase(), shout(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(shout).collect()),
        other => other.clone(),
    }
}

#[test]
fn okta_create_round_trips() {
    let body = okta_create();
    let out = user(body.clone()).expect("okta");
    let mut expected = body.clone();
    // `groups` is readOnly (and empty): the only thing dropped.
    expected.as_object_mut().expect("object").remove("groups");
    assert_eq!(out, expected);
    assert_eq!(user(shout(&body)).expect("shouted"), expected);
}

#[test]
fn entra_create_round_trips() {
    let body = entra_create();
    let out = user(body.clone()).expect("entra");
    let mut expected = body.clone();
    let obj = expected.as_object_mut().expect("object");
    // `meta` is readOnly and `roles: []` unassigned: the only things dropped.
    obj.remove("meta");
    obj.remove("roles");
    assert_eq!(out, expected);
    assert_eq!(user(shout(&body)).expect("shouted"), expected);
    let mut disabled = body.clone();
    disabled["active"] = json!("False");
    assert_eq!(user(disabled).expect("False")["active"], false);
}

#[test]
fn idp_group_bodies_round_trip() {
    let okta = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Test SCIMv2",
        "members": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}]
    });
    assert_eq!(group(okta.clone()).expect("okta"), okta);
    let entra = json!({
        "schemas": [GROUP_SCHEMA],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"},
        "members": []
    });
    assert_eq!(
        group(entra).expect("entra"),
        json!({
            "schemas": [GROUP_SCHEMA],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName"
        })
    );
}

#[test]
fn normalize_is_idempotent() {
    for body in [okta_create(), entra_create()] {
        let once = user(body).expect("once");
        let twice = user(once.clone()).expect("twice");
        assert_eq!(once, twice);
    }
}

// ---------------------------------------------------------------- projection

fn stored_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENT],
        "id": "2819c223",
        "externalId": "701984",
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "location": "https://x/Users/2819c223"},
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"type": "home"}
        ],
        "password": "$argon2id$...",
        "active": true,
        ENT: {"department": "Sales", "manager": {"value": "m-1", "displayName": "Boss"}}
    })
}

fn project(attributes: &[&str], excluded: &[&str]) -> Value {
    reg().project(
        ResourceKind::User,
        stored_user(),
        &strings(attributes),
        &strings(excluded),
    )
}

#[test]
fn default_projection_hides_password_only() {
    let out = project(&[], &[]);
    let mut expected = stored_user();
    expected.as_object_mut().expect("object").remove("password");
    assert_eq!(out, expected);
}

#[test]
fn attributes_parameter() {
    assert_eq!(
        project(&["userName"], &[]),
        json!({"schemas": [USER_SCHEMA, ENT], "id": "2819c223", "userName": "bjensen"})
    );
    assert_eq!(
        project(&["USERNAME,Name.GivenName"], &[]),
        json!({
            "schemas": [USER_SCHEMA, ENT], "id": "2819c223",
            "userName": "bjensen", "name": {"givenName": "Barbara"}
        })
    );
    assert_eq!(
        project(&["emails.value"], &[]),
        json!({
            "schemas": [USER_SCHEMA, ENT], "id": "2819c223",
            "emails": [{"value": "bjensen@example.com"}]
        })
    );
    assert_eq!(
        project(
            &[
                &format!("{ENT}:department"),
                "urn:ietf:params:scim:schemas:core:2.0:User:active"
            ],
            &[]
        ),
        json!({
            "schemas": [USER_SCHEMA, ENT], "id": "2819c223",
            "active": true, ENT: {"department": "Sales"}
        })
    );
    assert_eq!(
        project(&[&format!("{ENT}:manager.displayName")], &[]),
        json!({
            "schemas": [USER_SCHEMA, ENT], "id": "2819c223",
            ENT: {"manager": {"displayName": "Boss"}}
        })
    );
    assert_eq!(
        project(&[ENT], &[]),
        json!({
            "schemas": [USER_SCHEMA, ENT], "id": "2819c223",
            ENT: {"department": "Sales", "manager": {"value": "m-1", "displayName": "Boss"}}
        })
    );
    assert_eq!(
        project(&["meta.created", "name"], &[]),
        json!({
            "schemas": [USER_SCHEMA, ENT], "id": "2819c223",
            "meta": {"created": "2010-01-23T04:56:22Z"},
            "name": {"givenName": "Barbara", "familyName": "Jensen"}
        })
    );
    // Unknown names are ignored; `id` and `schemas` always come back.
    assert_eq!(
        project(&["nope", "name.nope"], &[]),
        json!({"schemas": [USER_SCHEMA, ENT], "id": "2819c223"})
    );
}

#[test]
fn password_is_never_returned() {
    for (attrs, excl) in [
        (vec!["password"], vec![]),
        (vec![USER_SCHEMA], vec![]),
        (vec![], vec!["userName"]),
    ] {
        let out = project(&attrs, &excl);
        assert!(out.get("password").is_none(), "{attrs:?} {excl:?}: {out}");
    }
    assert!(project(&[USER_SCHEMA], &[])["userName"].is_string());
}

#[test]
fn excluded_attributes_parameter() {
    let out = project(
        &[],
        &[
            "emails",
            "NAME.givenName",
            "id",
            "schemas",
            &format!("{ENT}:manager"),
        ],
    );
    let mut expected = stored_user();
    let obj = expected.as_object_mut().expect("object");
    obj.remove("password");
    obj.remove("emails");
    obj.insert("name".into(), json!({"familyName": "Jensen"}));
    obj.insert(ENT.into(), json!({"department": "Sales"}));
    assert_eq!(out, expected);
    let out = project(&[], &[ENT, "meta", "emails.type"]);
    assert!(out.get(ENT).is_none());
    assert!(out.get("meta").is_none());
    assert_eq!(
        out["emails"],
        json!([{"value": "bjensen@example.com", "primary": true}])
    );
    assert_eq!(out["id"], "2819c223");
    // Both lists: attributes first, then exclusions.
    assert_eq!(
        project(&["name"], &["name.familyName"]),
        json!({"schemas": [USER_SCHEMA, ENT], "id": "2819c223", "name": {"givenName": "Barbara"}})
    );
}

#[test]
fn projection_is_defensive() {
    let r = reg();
    assert_eq!(
        r.project(ResourceKind::User, json!("x"), &[], &[]),
        json!({})
    );
    let odd = json!({
        "schemas": [USER_SCHEMA],
        "USERNAME": "u",
        "unknown": 1,
        format!("{ENT}:department"): "flat",
        ENT: "not an object",
        "emails": [1, {"value": null}, {"VALUE": "a@b.c", "bogus": 1}],
        "nickName": null
    });
    assert_eq!(
        r.project(ResourceKind::User, odd, &[], &[]),
        json!({"schemas": [USER_SCHEMA], "userName": "u", "emails": [{"value": "a@b.c"}]})
    );
    let grp = json!({
        "schemas": [GROUP_SCHEMA], "id": "g", "displayName": "G",
        "members": [{"value": "u1", "type": "User"}],
        ENT: {"department": "x"}
    });
    assert_eq!(
        r.project(ResourceKind::Group, grp, &strings(&["members.value"]), &[]),
        json!({"schemas": [GROUP_SCHEMA], "id": "g", "members": [{"value": "u1"}]})
    );
}

/// A stored document (the schema's spelling) is projected in place; any other spelling is
/// renamed into a new map. Both must give the same answer for every list, whichever one
/// name is spelled otherwise.
#[test]
fn a_document_s_spelling_does_not_change_its_projection() {
    fn rename(obj: &mut serde_json::Map<String, Value>, from: &str, to: &str) {
        let v = obj.remove(from).expect(from);
        obj.insert(to.to_string(), v);
    }
    let respelled: Vec<(&str, Value)> = [
        "schemas",
        "userName",
        "id",
        "ent",
        "name.givenName",
        "emails.value",
        "ent.department",
        "ent.manager.displayName",
    ]
    .into_iter()
    .map(|which| {
        let mut doc = stored_user();
        let o = doc.as_object_mut().expect("object");
        match which {
            "ent" => rename(o, ENT, &ENT.to_uppercase()),
            "name.givenName" => rename(
                o["name"].as_object_mut().expect("name"),
                "givenName",
                "GIVENNAME",
            ),
            "emails.value" => rename(
                o["emails"][0].as_object_mut().expect("email"),
                "value",
                "Value",
            ),
            "ent.department" => rename(
                o[ENT].as_object_mut().expect("ent"),
                "department",
                "Department",
            ),
            "ent.manager.displayName" => rename(
                o[ENT]["manager"].as_object_mut().expect("manager"),
                "displayName",
                "DisplayName",
            ),
            top => rename(o, top, &top.to_uppercase()),
        }
        (which, doc)
    })
    .collect();
    let r = reg();
    for (attributes, excluded) in [
        (vec![], vec![]),
        (vec!["userName", "name.givenName"], vec![]),
        (vec![ENT], vec![]),
        (vec![&format!("{ENT}:manager.displayName")[..]], vec![]),
        (vec![], vec!["emails.type", "meta"]),
        (vec![], vec![&format!("{ENT}:manager.value")[..]]),
    ] {
        let (a, e) = (strings(&attributes), strings(&excluded));
        let canonical = r.project(ResourceKind::User, stored_user(), &a, &e);
        for (which, doc) in &respelled {
            let renamed = r.project(ResourceKind::User, doc.clone(), &a, &e);
            assert_eq!(canonical, renamed, "{which}: {attributes:?} {excluded:?}");
        }
    }
}

// ---------------------------------------------------------------- robustness

#[test]
fn error_mapping() {
    let cases = [
        (SchemaError::InvalidSyntax("a".into()), "invalidSyntax"),
        (SchemaError::UnknownAttribute("a".into()), "invalidSyntax"),
        (SchemaError::InvalidValue("a".into()), "invalidValue"),
        (SchemaError::Mutability("a".into()), "mutability"),
        (SchemaError::InvalidPath("a".into()), "invalidPath"),
    ];
    for (err, scim_type) in cases {
        assert_eq!(err.scim_type(), scim_type);
        assert_eq!(err.http_status(), 400);
    }
}

/// A small deterministic generator (no extra dependency) of awkward JSON.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        let i = (self.next() as usize) % items.len();
        items[i]
    }

    fn key(&mut self) -> String {
        const KEYS: &[&str] = &[
            "schemas",
            "userName",
            "USERNAME",
            "name",
            "givenName",
            "emails",
            "value",
            "type",
            "primary",
            "active",
            "password",
            "groups",
            "id",
            "meta",
            "members",
            "display",
            "$ref",
            "displayName",
            "manager",
            "department",
            "x509Certificates",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:Usé",
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
            "urn:ietf:params:scim:schemas:core:2.0:Useré:x",
            "urn:",
            "é",
            "",
            ".",
            ":",
            "a.b.c",
        ];
        self.pick(KEYS).to_string()
    }

    fn value(&mut self, depth: u32) -> Value {
        let choice = if depth == 0 {
            self.next() % 6
        } else {
            self.next() % 8
        };
        match choice {
            0 => Value::Null,
            1 => Value::Bool(self.next() % 2 == 0),
            2 => json!(self.next() as i64 - (1 << 30)),
            3 => json!(0.5),
            4 => Value::String(
                self.pick(&[
                    "",
                    "True",
                    "false",
                    "x",
                    "2008-01-23T04:56:22Z",
                    "QUJD",
                    "é",
                    USER_SCHEMA,
                    GROUP_SCHEMA,
                    ENT,
                ])
                .to_string(),
            ),
            5 => json!([USER_SCHEMA, ENT]),
            6 => {
                let n = self.next() % 4;
                Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
            }
            _ => {
                let n = self.next() % 5;
                Value::Object(
                    (0..n)
                        .map(|_| (self.key(), self.value(depth - 1)))
                        .collect(),
                )
            }
        }
    }
}

#[test]
fn never_panics_on_arbitrary_input() {
    let r = reg();
    let mut g = Gen(42);
    let mut accepted = 0;
    for i in 0..4000 {
        let mut body = g.value(4);
        if i % 2 == 0 {
            if let Value::Object(m) = &mut body {
                m.insert("schemas".into(), json!([USER_SCHEMA, ENT]));
                m.insert("userName".into(), json!("u"));
            }
        }
        let existing = g.value(3);
        let attrs: Vec<String> = (0..g.next() % 3).map(|_| g.key()).collect();
        let excl: Vec<String> = (0..g.next() % 3).map(|_| g.key()).collect();
        for kind in ResourceKind::ALL {
            let created = r.normalize(kind, &body, WriteMode::Create);
            let _ = r.normalize(
                kind,
                &body,
                WriteMode::Replace {
                    existing: &existing,
                },
            );
            let _ = r.project(kind, body.clone(), &attrs, &excl);
            let resolver = r.resolver(kind);
            for a in attrs.iter().chain(&excl) {
                let _ = resolver.resolve_path(a);
                let _ = resolver.resolve(Some(a), a, Some(a));
            }
            if let Ok(doc) = created {
                accepted += 1;
                // Normalising a normalised document changes nothing.
                assert_eq!(
                    r.normalize(kind, &doc, WriteMode::Create).as_ref(),
                    Ok(&doc)
                );
                assert!(doc.get("id").is_none() && doc.get("meta").is_none());
                // The default projection of a stored document only hides `password`.
                let mut visible = doc.clone();
                if let Value::Object(m) = &mut visible {
                    m.remove("password");
                }
                assert_eq!(r.project(kind, doc.clone(), &[], &[]), visible);
            }
        }
    }
    assert!(accepted > 50, "generator too hostile: {accepted} accepted");
}

/// `leaves_out` says exactly when `project` drops a Group's `members` (a reader skips
/// them then, so a wrong "yes" would lose them from an answer).
#[test]
fn leaves_out_agrees_with_the_projection() {
    let group = json!({
        "displayName": "Crew",
        "members": [{"value": "u-1", "display": "Ann", "type": "User"}, {"value": "u-2"}]
    });
    const URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    let cases: &[(&[&str], &[&str], bool)] = &[
        (&[], &[], false),
        (&[], &["members"], true),
        (&[], &["MEMBERS"], true),
        (&[], &["members.display"], false),
        (&[], &["displayName,members"], true),
        (
            &[],
            &["urn:ietf:params:scim:schemas:core:2.0:Group:members"],
            true,
        ),
        (&["displayName"], &[], true),
        (&["members"], &[], false),
        (&["members.value"], &[], false),
        (&["Members.Display"], &[], false),
        (&[URN], &[], false),
        (&["nope"], &[], true),
        (&["members"], &["members"], true),
        (&["members.value"], &["members.display"], false),
    ];
    for (attributes, excluded, dropped) in cases {
        let (a, e) = (strings(attributes), strings(excluded));
        let out = reg().project(ResourceKind::Group, group.clone(), &a, &e);
        assert_eq!(
            out.get("members").is_none(),
            *dropped,
            "project, attributes={attributes:?} excluded={excluded:?}: {out}"
        );
        assert_eq!(
            reg().leaves_out(ResourceKind::Group, "members", &a, &e),
            *dropped,
            "leaves_out, attributes={attributes:?} excluded={excluded:?}"
        );
    }
}

/// `get_ci` finds what `get` then a case-insensitive scan found: the exact key wherever it
/// is, else the first key equal but for case, in the map's order; keys of every case,
/// length and position among others.
#[test]
fn case_insensitive_lookup_prefers_the_exact_key() {
    use super::resolve::get_ci;
    fn reference<'v>(obj: &'v serde_json::Map<String, Value>, key: &str) -> Option<&'v Value> {
        obj.get(key).or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }
    let names = [
        "userName",
        "USERNAME",
        "username",
        "UserName",
        "name",
        "NAME",
        "user",
        "userNames",
        "emails",
        "",
        "é",
        "É",
    ];
    // Every subset of the names (as keys, each with its own value), every name looked up.
    for mask in 0u32..(1 << names.len()) {
        let obj: serde_json::Map<String, Value> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(i, k)| (k.to_string(), json!(i)))
            .collect();
        for key in names.iter().chain(&["Emails", "missing", "USERNAMES"]) {
            assert_eq!(get_ci(&obj, key), reference(&obj, key), "{key} in {obj:?}");
        }
    }
}

/// A required sub-attribute of an optional attribute: checked where the attribute is
/// given, in every element of a multi-valued one; the attribute itself may be left out.
#[test]
fn enforces_required_sub_attributes() {
    let reg = sources_with(|u| {
        for attr in u["attributes"].as_array_mut().unwrap() {
            let sub = match attr["name"].as_str().unwrap() {
                "name" => "familyName",
                "emails" => "value",
                _ => continue,
            };
            for s in attr["subAttributes"].as_array_mut().unwrap() {
                if s["name"] == sub {
                    s["required"] = json!(true);
                }
            }
        }
    })
    .expect("schemas");
    let user = |input: Value| reg.normalize(ResourceKind::User, &input, WriteMode::Create);
    assert!(user(json!({"schemas": [USER_SCHEMA], "userName": "u"})).is_ok());
    let named = json!({"schemas": [USER_SCHEMA], "userName": "u", "name": {"familyName": "F"}});
    assert!(user(named).is_ok());
    let err = user(json!({"schemas": [USER_SCHEMA], "userName": "u", "name": {"givenName": "G"}}))
        .expect_err("no familyName");
    assert_eq!(
        err,
        SchemaError::InvalidValue("missing required attribute `name.familyName`".into())
    );
    let err = user(json!({
        "schemas": [USER_SCHEMA], "userName": "u",
        "emails": [{"value": "a@example.com"}, {"type": "work"}]
    }))
    .expect_err("an email without a value");
    assert_eq!(
        err,
        SchemaError::InvalidValue("missing required attribute `emails.value`".into())
    );
}
