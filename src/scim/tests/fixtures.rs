//! Ten stored User documents and filters with the userNames they must match; shared by the
//! in-memory evaluation tests and the SQLite agreement test.

use serde_json::{Value, json};

use super::mock::{ENTERPRISE_URN as ENT, TEST_URN as TST};

pub fn users() -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "u1", "externalId": "bjensen", "userName": "bjensen",
            "displayName": "Babs Jensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen",
                     "formatted": "Ms. Barbara J Jensen III"},
            "title": "Tour Guide", "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
            "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z",
                     "lastModified": "2011-05-13T04:42:34Z"},
            ENT: {"employeeNumber": "701984", "department": "Tour Operations",
                  "manager": {"value": "26118915", "displayName": "John Smith"}},
            TST: {"level": 3, "score": 4.5, "tags": ["alpha", "Beta"], "code": "AbC"}
        }),
        json!({
            "id": "u2", "externalId": "jsmith", "userName": "JSmith", "displayName": "John Smith",
            "name": {"givenName": "John", "familyName": "Smith"},
            "title": "Manager", "active": false,
            "emails": [{"value": "john.smith@EXAMPLE.com", "type": "work"}],
            "meta": {"created": "2009-12-01T00:00:00Z",
                     "lastModified": "2011-05-13T04:42:34.500Z"},
            ENT: {"employeeNumber": "5", "department": "Sales"},
            TST: {"level": 10, "score": 1, "tags": ["beta"], "code": "abc"}
        }),
        json!({
            "id": "u3", "userName": "min",
            "meta": {"created": "2020-01-01T00:00:00Z",
                     "lastModified": "2020-01-01T00:00:00+02:00"}
        }),
        json!({
            "id": "u4", "userName": "empty", "title": "", "displayName": "",
            "emails": [], "name": {}, "active": false,
            "phoneNumbers": [{"value": "", "type": "home"}],
            "meta": {"created": "2021-06-01T12:00:00.123Z",
                     "lastModified": "2021-06-01T12:00:00.123Z"},
            TST: {"tags": []}
        }),
        json!({
            "id": "u5", "userName": "o'malley_100%", "displayName": "Ünïcödé Name",
            "title": "50% off_sale\\x",
            "emails": [{"value": "a_b@x.org", "type": "work"}],
            "meta": {"created": "2022-02-02T02:02:02Z", "lastModified": "2022-02-02T02:02:02Z"},
            TST: {"code": "x%y", "level": 0}
        }),
        json!({
            "id": "u6", "userName": "UPPER", "title": "tour guide", "active": true,
            "emails": [{"type": "WORK", "value": "up@example.com", "primary": false}],
            "meta": {"created": "2011-05-13T04:42:34Z", "lastModified": "2011-05-13T04:42:35Z"}
        }),
        json!({
            "id": "u7", "userName": "nums",
            "meta": {"created": "2012-03-01T00:00:00Z", "lastModified": "2012-03-01T00:00:00Z"},
            TST: {"level": -1, "score": 0.25, "tags": ["Alpha"]}
        }),
        json!({
            "id": "u8", "externalId": "EXT-1", "userName": "ext",
            "meta": {"created": "2013-01-01T00:00:00Z", "lastModified": "2013-01-01T00:00:00Z"},
            ENT: {"employeeNumber": "8", "manager": {"value": "26118915"}}
        }),
        json!({
            "id": "u9", "userName": "home",
            "emails": [
                {"type": "other", "value": "o@example.com"},
                {"type": "home", "value": "h@example.net", "display": "Home"}
            ],
            "meta": {"created": "2014-01-01T00:00:00Z", "lastModified": "2014-01-01T00:00:00Z"}
        }),
        json!({
            "id": "u10", "userName": "tourist", "displayName": "Tourist",
            "title": "Tour guide extraordinaire",
            "name": {"familyName": "Jensen-Smith"},
            "meta": {"created": "2015-01-01T00:00:00Z", "lastModified": "2015-01-01T00:00:00Z"},
            ENT: {"department": "tour operations"}
        }),
    ]
}

const ALL: [&str; 10] = [
    "bjensen",
    "JSmith",
    "min",
    "empty",
    "o'malley_100%",
    "UPPER",
    "nums",
    "ext",
    "home",
    "tourist",
];

fn all_but(excluded: &[&str]) -> Vec<&'static str> {
    ALL.iter()
        .copied()
        .filter(|u| !excluded.contains(u))
        .collect()
}

/// (filter, userNames it matches).
pub fn cases() -> Vec<(String, Vec<&'static str>)> {
    let ent = |rest: &str| format!("{ENT}:{rest}");
    let tst = |rest: &str| format!("{TST}:{rest}");
    let mut cases: Vec<(String, Vec<&'static str>)> = vec![
        // Columns, case sensitivity.
        ("userName eq \"bjensen\"".into(), vec!["bjensen"]),
        ("USERNAME Eq \"BJENSEN\"".into(), vec!["bjensen"]),
        ("userName ne \"bjensen\"".into(), all_but(&["bjensen"])),
        ("externalId eq \"ext-1\"".into(), vec![]),
        ("externalId eq \"EXT-1\"".into(), vec!["ext"]),
        ("id eq \"u3\"".into(), vec!["min"]),
        ("userName co \"'\"".into(), vec!["o'malley_100%"]),
        ("userName co \"_1\"".into(), vec!["o'malley_100%"]),
        ("userName ew \"%\"".into(), vec!["o'malley_100%"]),
        ("userName co \"_\"".into(), vec!["o'malley_100%"]),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"j\"".into(),
            vec!["JSmith"],
        ),
        (
            "userName gt \"n\"".into(),
            vec!["nums", "o'malley_100%", "tourist", "UPPER"],
        ),
        (
            "displayName pr".into(),
            vec!["bjensen", "JSmith", "o'malley_100%", "tourist"],
        ),
        ("displayName co \"é\"".into(), vec!["o'malley_100%"]),
        // Unicode case folding (value::fold; scim_fold in SQL).
        (
            "displayName eq \"ÜNÏCÖDÉ NAME\"".into(),
            vec!["o'malley_100%"],
        ),
        ("displayName co \"ÖDÉ\"".into(), vec!["o'malley_100%"]),
        (
            "displayName eq \"Ünïcödé name\"".into(),
            vec!["o'malley_100%"],
        ),
        // Single-valued JSON strings.
        (
            "title co \"guide\"".into(),
            vec!["bjensen", "UPPER", "tourist"],
        ),
        (
            "title sw \"tour\"".into(),
            vec!["bjensen", "UPPER", "tourist"],
        ),
        ("title ew \"GUIDE\"".into(), vec!["bjensen", "UPPER"]),
        ("title co \"%\"".into(), vec!["o'malley_100%"]),
        ("title co \"_\"".into(), vec!["o'malley_100%"]),
        ("title ew \"\\\\x\"".into(), vec!["o'malley_100%"]),
        (
            "title co \"\"".into(),
            all_but(&["min", "nums", "ext", "home"]),
        ),
        ("title gt \"s\"".into(), vec!["bjensen", "UPPER", "tourist"]),
        (
            "title le \"manager\"".into(),
            vec!["JSmith", "empty", "o'malley_100%"],
        ),
        (
            "title lt \"tour guide extraordinaire\"".into(),
            vec!["bjensen", "JSmith", "empty", "o'malley_100%", "UPPER"],
        ),
        (
            "title pr".into(),
            vec!["bjensen", "JSmith", "o'malley_100%", "UPPER", "tourist"],
        ),
        (
            "not (title pr)".into(),
            vec!["min", "empty", "nums", "ext", "home"],
        ),
        (
            "title ne \"Manager\"".into(),
            vec!["bjensen", "empty", "o'malley_100%", "UPPER", "tourist"],
        ),
        ("not (title eq \"Manager\")".into(), all_but(&["JSmith"])),
        ("title eq null".into(), vec!["min", "nums", "ext", "home"]),
        (
            "title ne null".into(),
            all_but(&["min", "nums", "ext", "home"]),
        ),
        ("name.familyName eq \"jensen\"".into(), vec!["bjensen"]),
        (
            "name.familyName sw \"Jensen\"".into(),
            vec!["bjensen", "tourist"],
        ),
        ("name pr".into(), vec!["bjensen", "JSmith", "tourist"]),
        ("name[givenName eq \"John\"]".into(), vec!["JSmith"]),
        (
            "name[givenName pr and familyName pr]".into(),
            vec!["bjensen", "JSmith"],
        ),
        // Multi-valued.
        (
            "emails pr".into(),
            vec!["bjensen", "JSmith", "o'malley_100%", "UPPER", "home"],
        ),
        (
            "emails.value co \"example.com\"".into(),
            vec!["bjensen", "JSmith", "UPPER", "home"],
        ),
        (
            "emails co \"EXAMPLE\"".into(),
            vec!["bjensen", "JSmith", "UPPER", "home"],
        ),
        (
            "emails.type eq \"work\"".into(),
            vec!["bjensen", "JSmith", "o'malley_100%", "UPPER"],
        ),
        (
            "emails[type eq \"work\" and value co \"example.com\"]".into(),
            vec!["bjensen", "JSmith", "UPPER"],
        ),
        (
            "emails[type eq \"home\" and value co \"example.com\"]".into(),
            vec![],
        ),
        // Entra ID's documented form: the same as the `and` inside the brackets.
        (
            "emails[type eq \"work\"].value co \"example.com\"".into(),
            vec!["bjensen", "JSmith", "UPPER"],
        ),
        (
            "emails[type eq \"home\"].value co \"example.com\"".into(),
            vec![],
        ),
        (
            "emails.type eq \"home\" and emails.value co \"example.com\"".into(),
            vec!["bjensen", "home"],
        ),
        ("emails[primary eq true]".into(), vec!["bjensen"]),
        (
            "emails[not (primary eq true)]".into(),
            vec!["bjensen", "JSmith", "o'malley_100%", "UPPER", "home"],
        ),
        ("emails[display pr]".into(), vec!["home"]),
        (
            "emails.value eq null".into(),
            vec!["min", "empty", "nums", "ext", "tourist"],
        ),
        (
            "emails.value ew \".ORG\"".into(),
            vec!["bjensen", "o'malley_100%"],
        ),
        ("phoneNumbers.value pr".into(), vec!["bjensen"]),
        ("phoneNumbers pr".into(), vec!["bjensen", "empty"]),
        (
            "not (emails[type eq \"work\"]) and userName pr".into(),
            vec!["min", "empty", "nums", "ext", "home", "tourist"],
        ),
        // Booleans.
        ("active eq true".into(), vec!["bjensen", "UPPER"]),
        ("active eq false".into(), vec!["JSmith", "empty"]),
        ("active ne true".into(), vec!["JSmith", "empty"]),
        (
            "not (active eq true)".into(),
            all_but(&["bjensen", "UPPER"]),
        ),
        ("active eq \"True\"".into(), vec!["bjensen", "UPPER"]),
        (
            "active pr".into(),
            vec!["bjensen", "JSmith", "empty", "UPPER"],
        ),
        // DateTime (columns).
        (
            "meta.lastModified gt \"2011-05-13T04:42:34Z\"".into(),
            all_but(&["bjensen"]),
        ),
        (
            "meta.lastModified eq \"2011-05-13T04:42:34.000Z\"".into(),
            vec!["bjensen"],
        ),
        (
            "meta.lastModified lt \"2020-01-01T00:00:00Z\"".into(),
            all_but(&["empty", "o'malley_100%"]),
        ),
        (
            "meta.lastModified ge \"2019-12-31T23:00:00+01:00\"".into(),
            vec!["min", "empty", "o'malley_100%"],
        ),
        (
            "meta.lastModified ne \"2019-12-31T22:00:00Z\"".into(),
            all_but(&["min"]),
        ),
        ("meta.created sw \"2011\"".into(), vec!["UPPER"]),
        (
            "meta.created le \"2010-01-23T04:56:22.0Z\"".into(),
            vec!["bjensen", "JSmith"],
        ),
        // Enterprise extension.
        (ent("employeeNumber eq \"701984\""), vec!["bjensen"]),
        (ent("manager.value eq \"26118915\""), vec!["bjensen", "ext"]),
        (ent("manager eq \"26118915\""), vec!["bjensen", "ext"]),
        (
            ent("department eq \"TOUR OPERATIONS\""),
            vec!["bjensen", "tourist"],
        ),
        (ent("manager pr"), vec!["bjensen", "ext"]),
        (ent("manager.displayName pr"), vec!["bjensen"]),
        (
            format!("{ENT}:manager[displayName co \"smith\"]"),
            vec!["bjensen"],
        ),
        // Numbers, simple multi-valued, caseExact (test extension).
        (tst("level gt 2"), vec!["bjensen", "JSmith"]),
        (tst("level le 0"), vec!["o'malley_100%", "nums"]),
        (tst("level eq 3.0"), vec!["bjensen"]),
        (tst("level ne 3"), vec!["JSmith", "o'malley_100%", "nums"]),
        (tst("score ge 1"), vec!["bjensen", "JSmith"]),
        (tst("score lt 0.5"), vec!["nums"]),
        (tst("score eq 1.0"), vec!["JSmith"]),
        (tst("score gt 4.4e0"), vec!["bjensen"]),
        (tst("tags eq \"beta\""), vec!["bjensen", "JSmith"]),
        (tst("tags sw \"AL\""), vec!["bjensen", "nums"]),
        (tst("tags pr"), vec!["bjensen", "JSmith", "nums"]),
        (tst("code eq \"abc\""), vec!["JSmith"]),
        (tst("code sw \"A\""), vec!["bjensen"]),
        (tst("code ew \"C\""), vec!["bjensen"]),
        (tst("code co \"%\""), vec!["o'malley_100%"]),
        (tst("code co \"b\""), vec!["bjensen", "JSmith"]),
        (tst("code gt \"B\""), vec!["JSmith", "o'malley_100%"]),
        (
            tst("code ew \"\""),
            vec!["bjensen", "JSmith", "o'malley_100%"],
        ),
        (
            tst("code sw \"\""),
            vec!["bjensen", "JSmith", "o'malley_100%"],
        ),
        (tst("code ew \"xx%y\""), vec![]),
        // Logic.
        (
            "userName eq \"bjensen\" or userName eq \"JSmith\" and active eq true".into(),
            vec!["bjensen"],
        ),
        (
            "(userName eq \"bjensen\" or userName eq \"JSmith\") and active eq false".into(),
            vec!["JSmith"],
        ),
        (
            "not (not (title co \"guide\") or active eq true)".into(),
            vec!["tourist"],
        ),
    ];
    for (_, expected) in &mut cases {
        expected.sort_unstable();
    }
    cases
}
