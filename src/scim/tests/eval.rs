//! In-memory evaluation: the shared fixture, plus errors.

use crate::scim::filter::{FilterError, parse_filter, parse_patch_path};
use crate::scim::filter_eval::{matches, matches_value_filter, validate_filter};
use serde_json::json;

use super::fixtures::{cases, users};
use super::mock::MockResolver;

/// userNames of the fixture users matching `filter`, sorted.
pub fn memory_matches(filter: &str) -> Result<Vec<String>, FilterError> {
    let resolver = MockResolver::user();
    let f = parse_filter(filter)?;
    let mut out = Vec::new();
    for doc in users() {
        if matches(&f, &doc, &resolver)? {
            out.push(doc["userName"].as_str().unwrap_or_default().to_string());
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[test]
fn fixture_cases() {
    let mut failures = Vec::new();
    for (filter, expected) in cases() {
        match memory_matches(&filter) {
            Ok(got) if got == expected => {}
            other => failures.push(format!(
                "{filter}\n   expected {expected:?}\n   got {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn eval_err(filter: &str) -> String {
    match memory_matches(filter) {
        Ok(m) => panic!("{filter} evaluated to {m:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn semantic_errors() {
    assert_eq!(
        eval_err("nickName eq \"x\""),
        "unknown attribute \"nickName\""
    );
    assert_eq!(
        eval_err("name.middleName pr"),
        "unknown attribute \"name.middleName\""
    );
    assert_eq!(
        eval_err("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr"),
        "unknown attribute \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter\""
    );
    assert!(eval_err("active gt true").contains("only eq and ne apply, not gt"));
    assert!(eval_err("active co \"t\"").contains("only eq and ne apply"));
    assert!(eval_err("active eq 1").contains("compare it with true or false"));
    assert!(eval_err("title eq 5").contains("compare it with a string, not 5"));
    assert!(eval_err("title gt null").contains("null can only be compared with eq or ne"));
    assert!(eval_err("meta.created gt \"yesterday\"").contains("not an RFC 3339 date-time"));
    assert!(eval_err("meta.created gt 5").contains("DateTime"));
    assert!(
        eval_err("urn:example:scim:schemas:extension:test:1.0:User:level co \"1\"")
            .contains("only applies to strings")
    );
    assert!(
        eval_err("urn:example:scim:schemas:extension:test:1.0:User:level eq \"1\"")
            .contains("compare it with a number")
    );
    assert!(eval_err("name eq \"x\"").contains("complex attribute; compare one of its"));
    assert!(eval_err("title[value eq \"x\"]").contains("not a complex attribute"));
    assert!(
        eval_err("emails[kind eq \"x\"]").contains("unknown sub-attribute \"kind\" of \"emails\"")
    );
    // Errors in branches that a document would never reach are still reported.
    assert!(eval_err("userName eq \"nobody\" and active gt true").contains("only eq and ne"));
    assert!(eval_err("userName pr or nickName pr").contains("unknown attribute"));
    assert!(eval_err("emails[type eq \"x\" and primary gt true]").contains("only eq and ne"));
    // The syntax error type is distinct from the semantic one; both are invalidFilter.
    let resolver = MockResolver::user();
    let f = parse_filter("nickName pr").unwrap();
    let e = validate_filter(&f, &resolver).unwrap_err();
    assert!(matches!(e, FilterError::Invalid(_)));
    assert_eq!(e.scim_type(), "invalidFilter");
}

#[test]
fn documents_without_id_or_extension() {
    let resolver = MockResolver::user();
    let doc = json!({"userName": "x"});
    for filter in [
        "id eq \"u1\"",
        "meta.lastModified gt \"2000-01-01T00:00:00Z\"",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"1\"",
        "emails[type eq \"work\"]",
        "name.givenName pr",
    ] {
        let f = parse_filter(filter).unwrap();
        assert_eq!(matches(&f, &doc, &resolver), Ok(false), "{filter}");
    }
    // Wrongly typed stored values never match and never error.
    let odd = json!({"userName": 5, "active": "yes", "emails": {"value": "a"}, "title": ["x"]});
    for filter in [
        "userName eq \"5\"",
        "active eq true",
        "title eq \"x\"",
        "userName gt \"\"",
    ] {
        let f = parse_filter(filter).unwrap();
        assert_eq!(matches(&f, &odd, &resolver), Ok(false), "{filter}");
    }
    // A non-array multi-valued attribute is read as a single value.
    let f = parse_filter("emails.value eq \"a\"").unwrap();
    assert_eq!(matches(&f, &odd, &resolver), Ok(true));
}

#[test]
fn value_filter_on_one_element() {
    let resolver = MockResolver::group();
    let pp = parse_patch_path("members[value eq \"2819c223\" and type eq \"User\"]").unwrap();
    let filter = pp.filter.unwrap();
    let member = json!({"value": "2819c223", "type": "user", "display": "Babs"});
    assert_eq!(
        matches_value_filter(&pp.attr, &filter, &member, &resolver),
        Ok(true)
    );
    let other = json!({"value": "x", "type": "User"});
    assert_eq!(
        matches_value_filter(&pp.attr, &filter, &other, &resolver),
        Ok(false)
    );
    let pp = parse_patch_path("members[nope eq 1]").unwrap();
    let filter = pp.filter.unwrap();
    assert!(matches_value_filter(&pp.attr, &filter, &member, &resolver).is_err());
}
