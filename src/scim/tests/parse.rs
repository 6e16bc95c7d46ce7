//! Filter and PATCH path parsing: AST shapes, round-trips through `Display`, errors.

use crate::scim::filter::{
    AttrPath, CompValue, CompareOp, Filter, FilterError, parse_filter, parse_patch_path,
};

fn p(s: &str) -> AttrPath {
    AttrPath {
        urn: None,
        attr: s.into(),
        sub: None,
    }
}

fn cmp(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
    Filter::Compare { path, op, value }
}

fn text(s: &str) -> CompValue {
    CompValue::String(s.into())
}

fn num(n: i64) -> CompValue {
    CompValue::Number(n.into())
}

/// Parses, prints, and checks the printed text is `expected` and parses to the same AST.
fn round_trip(input: &str, expected: &str) -> Filter {
    let f = parse_filter(input).unwrap_or_else(|e| panic!("{input}: {e}"));
    let printed = f.to_string();
    assert_eq!(printed, expected, "display of {input}");
    assert_eq!(
        parse_filter(&printed).as_ref(),
        Ok(&f),
        "reparse of {printed}"
    );
    f
}

fn err(input: &str) -> String {
    match parse_filter(input) {
        Ok(f) => panic!("{input} parsed as {f:?}"),
        Err(e) => e.to_string(),
    }
}

/// Microsoft's documented Entra ID user query: a sub-attribute after the value filter reads
/// as one more condition on the same value.
#[test]
fn entra_value_path_with_a_sub_attribute_is_a_condition_on_the_same_value() {
    let f = round_trip(
        "emails[type eq \"work\"].value eq \"user@contoso.com\"",
        "emails[type eq \"work\" and value eq \"user@contoso.com\"]",
    );
    assert_eq!(
        f,
        parse_filter("emails[type eq \"work\" and value eq \"user@contoso.com\"]").unwrap()
    );
    round_trip(
        "emails[type eq \"work\"].value pr and userName sw \"a\"",
        "emails[type eq \"work\" and value pr] and userName sw \"a\"",
    );
}

#[test]
fn every_operator_round_trips() {
    for op in ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"] {
        let f = round_trip(&format!("title {op} \"x\""), &format!("title {op} \"x\""));
        let parsed_op = CompareOp::from_keyword(op).unwrap();
        assert_eq!(f, cmp(p("title"), parsed_op, text("x")));
        let upper = op.to_uppercase();
        assert_eq!(parse_filter(&format!("title {upper} \"x\"")), Ok(f));
    }
    assert_eq!(
        round_trip("title pr", "title pr"),
        Filter::Present { path: p("title") }
    );
    round_trip("title PR", "title pr");
}

#[test]
fn literals() {
    assert_eq!(
        round_trip("active eq TRUE", "active eq true"),
        cmp(p("active"), CompareOp::Eq, CompValue::Bool(true))
    );
    round_trip("active ne False", "active ne false");
    assert_eq!(
        round_trip("title eq Null", "title eq null"),
        cmp(p("title"), CompareOp::Eq, CompValue::Null)
    );
    assert_eq!(
        round_trip("a gt 10", "a gt 10"),
        cmp(p("a"), CompareOp::Gt, num(10))
    );
    round_trip("a gt -3", "a gt -3");
    round_trip("a ge 2.5", "a ge 2.5");
    round_trip("a lt 0", "a lt 0");
    let f = parse_filter("a le 1e3").unwrap();
    let Filter::Compare {
        value: CompValue::Number(n),
        ..
    } = f
    else {
        panic!("{f:?}")
    };
    assert_eq!(n.as_f64(), Some(1000.0));
    assert!(parse_filter("a le -1.5E-2").is_ok());
}

/// Found by fuzzing (fuzz/regressions/scim_filter): serde_json's default float parsing is
/// not correctly rounded, so a long literal printed back (shortest round-trip digits)
/// parsed as a different number; `float_roundtrip` (Cargo.toml) makes it exact.
#[test]
fn numbers_print_back_to_the_same_value() {
    let long = format!("S eq {}5", "2".repeat(114));
    let f = parse_filter(&long).unwrap();
    let Filter::Compare {
        value: CompValue::Number(v),
        ..
    } = &f
    else {
        panic!("{f:?}")
    };
    assert_eq!(v.as_f64(), long[5..].parse::<f64>().ok());
    assert_eq!(parse_filter(&f.to_string()), Ok(f));
    for n in [
        "2.2222222222222226e+114",
        "0.1",
        "1e-7",
        "9007199254740993",
        "1.7976931348623157e308",
    ] {
        let f = parse_filter(&format!("a eq {n}")).unwrap();
        let Filter::Compare {
            value: CompValue::Number(v),
            ..
        } = &f
        else {
            panic!("{f:?}")
        };
        assert_eq!(v.as_f64(), n.parse::<f64>().ok(), "{n}");
        assert_eq!(parse_filter(&f.to_string()), Ok(f.clone()), "{n}");
    }
}

#[test]
fn string_escapes() {
    let f = parse_filter(r#"displayName eq "a \"q\" \\ \u00e9\n \/""#).unwrap();
    assert_eq!(
        f,
        cmp(p("displayName"), CompareOp::Eq, text("a \"q\" \\ é\n /"))
    );
    let printed = f.to_string();
    assert_eq!(parse_filter(&printed), Ok(f));
    // Surrogate pair and raw non-ASCII.
    let f = parse_filter(r#"title eq "\ud83d\ude00 ü""#).unwrap();
    assert_eq!(f, cmp(p("title"), CompareOp::Eq, text("😀 ü")));
    // Keywords inside strings are just text.
    assert_eq!(
        parse_filter(r#"title eq "x and y or (z)""#).unwrap(),
        cmp(p("title"), CompareOp::Eq, text("x and y or (z)"))
    );
}

/// A literal without escapes is copied as it is, one with escapes is decoded by
/// serde_json: either way the value is what JSON says the literal is, and a raw control
/// character (which JSON refuses) is refused as before.
#[test]
fn a_string_literal_s_value_is_its_json_value_with_or_without_escapes() {
    for literal in [
        r#""""#,
        r#""user000123@example.com""#,
        r#""ü 😀  x""#,
        "\"\u{7f}del\"",
        r#""tab\tnew\nline""#,
        r#""\u00e9t\u00e9""#,
        r#""a\\b""#,
        r#""'single' (parens) [brackets] and or not""#,
    ] {
        let expected: String = serde_json::from_str(literal).unwrap();
        assert_eq!(
            parse_filter(&format!("userName eq {literal}")),
            Ok(cmp(p("userName"), CompareOp::Eq, text(&expected))),
            "{literal}"
        );
    }
    for raw in ["a\tb", "a\nb", "\u{1f}", "x\u{0}y"] {
        let filter = format!("userName eq \"{raw}\"");
        assert!(serde_json::from_str::<String>(&filter[12..]).is_err());
        let e = err(&filter);
        assert!(
            e.starts_with("invalid string literal") || e.contains("U+0000"),
            "{raw:?}: {e}"
        );
    }
}

#[test]
fn precedence_and_over_or() {
    let f = round_trip("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3");
    let expected = Filter::Or(
        Box::new(cmp(p("a"), CompareOp::Eq, num(1))),
        Box::new(Filter::And(
            Box::new(cmp(p("b"), CompareOp::Eq, num(2))),
            Box::new(cmp(p("c"), CompareOp::Eq, num(3))),
        )),
    );
    assert_eq!(f, expected);
    let f = round_trip("a eq 1 and b eq 2 or c eq 3", "a eq 1 and b eq 2 or c eq 3");
    assert!(matches!(f, Filter::Or(ref l, _) if matches!(**l, Filter::And(..))));
    // Grouping overrides precedence.
    let f = round_trip(
        "(a eq 1 or b eq 2) and c eq 3",
        "(a eq 1 or b eq 2) and c eq 3",
    );
    assert!(matches!(f, Filter::And(ref l, _) if matches!(**l, Filter::Or(..))));
    // Left associativity, and explicit right grouping kept.
    round_trip("a pr or b pr or c pr", "a pr or b pr or c pr");
    round_trip("a pr or (b pr or c pr)", "a pr or (b pr or c pr)");
    round_trip("a pr and (b pr and c pr)", "a pr and (b pr and c pr)");
    round_trip("a pr AND b pr Or c pr", "a pr and b pr or c pr");
}

#[test]
fn not_and_nested_groups() {
    let f = round_trip("not (title eq \"x\")", "not (title eq \"x\")");
    assert_eq!(
        f,
        Filter::Not(Box::new(cmp(p("title"), CompareOp::Eq, text("x"))))
    );
    round_trip("NOT(title pr)", "not (title pr)");
    // not binds tighter than and.
    let f = round_trip("not (a pr) and b pr", "not (a pr) and b pr");
    assert!(matches!(f, Filter::And(ref l, _) if matches!(**l, Filter::Not(_))));
    round_trip(
        "((a pr)) and (not ((b pr or (c pr and d pr))))",
        "a pr and not (b pr or c pr and d pr)",
    );
    round_trip("not (not (a pr))", "not (not (a pr))");
}

#[test]
fn attribute_paths() {
    let f = round_trip(
        "name.familyName co \"O'Malley\"",
        "name.familyName co \"O'Malley\"",
    );
    assert_eq!(
        f,
        cmp(
            AttrPath {
                urn: None,
                attr: "name".into(),
                sub: Some("familyName".into())
            },
            CompareOp::Co,
            text("O'Malley")
        )
    );
    let f = round_trip(
        "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
    );
    assert_eq!(
        f,
        cmp(
            AttrPath {
                urn: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()),
                attr: "userName".into(),
                sub: None
            },
            CompareOp::Sw,
            text("J")
        )
    );
    let f = parse_filter(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"26118915\"",
    )
    .unwrap();
    assert_eq!(
        f,
        cmp(
            AttrPath {
                urn: Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".into()),
                attr: "manager".into(),
                sub: Some("value".into())
            },
            CompareOp::Eq,
            text("26118915")
        )
    );
    round_trip(
        "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
        "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
    );
    round_trip("members.$ref pr", "members.$ref pr");
    round_trip("x-custom_attr2 pr", "x-custom_attr2 pr");
}

#[test]
fn value_paths() {
    let f = round_trip(
        "emails[type eq \"work\" and value co \"@example.com\"]",
        "emails[type eq \"work\" and value co \"@example.com\"]",
    );
    let Filter::ValuePath { path, filter } = f else {
        panic!()
    };
    assert_eq!(path, p("emails"));
    assert!(matches!(*filter, Filter::And(..)));
    round_trip(
        "userType eq \"Employee\" and emails[type eq \"work\" or (primary eq true and not (value ew \".org\"))]",
        "userType eq \"Employee\" and emails[type eq \"work\" or primary eq true and not (value ew \".org\")]",
    );
    round_trip(
        "emails[type eq \"work\"] or emails[value pr]",
        "emails[type eq \"work\"] or emails[value pr]",
    );
    round_trip(
        "urn:ietf:params:scim:schemas:core:2.0:User:emails[ type  eq  \"x\" ]",
        "urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"x\"]",
    );
}

#[test]
fn error_messages_carry_positions() {
    assert_eq!(
        err("userName \"bjensen\""),
        "expected a comparison operator after \"userName\", found string \"bjensen\" at position 9"
    );
    assert_eq!(
        err("userName"),
        "expected a comparison operator after \"userName\" at position 8"
    );
    assert_eq!(err(""), "empty filter at position 0");
    assert_eq!(err("   "), "empty filter at position 3");
    assert_eq!(
        err("userName eq \"bjensen"),
        "unterminated string literal at position 12"
    );
    assert_eq!(
        err("userName eq"),
        "expected a value (string, number, true, false or null) after \"eq\", found the end of the input at position 11"
    );
    assert!(err("userName eq bjensen").contains("expected a value"));
    assert_eq!(
        err("userName like \"x\""),
        "unknown operator \"like\" (expected eq, ne, co, sw, ew, gt, ge, lt, le or pr) at position 9"
    );
    assert_eq!(
        err("userName eq \"x\" foo"),
        "expected \"and\", \"or\" or the end of the filter, found \"foo\" at position 16"
    );
    assert_eq!(
        err("userName eq \"x\" \"y\""),
        "unexpected string \"y\" after the value of \"userName\" at position 16"
    );
    assert_eq!(
        err("(userName eq \"x\""),
        "expected ')' to close the '(' at position 0, found the end of the input at position 16"
    );
    assert_eq!(
        err("userName eq \"x\")"),
        "unbalanced ')': no matching '(' at position 15"
    );
    assert_eq!(
        err("title pr \"x\""),
        "the \"pr\" operator takes no value at position 9"
    );
    assert_eq!(
        err("title pr true"),
        "the \"pr\" operator takes no value at position 9"
    );
    assert_eq!(
        err("emails[type[value eq \"x\"] eq \"y\"]"),
        "value filters cannot be nested at position 11"
    );
    assert_eq!(
        err("emails[type eq \"work\""),
        "expected ']' to close the '[' at position 6, found the end of the input at position 21"
    );
    assert!(err("emails[type eq \"work\"].value").contains("expected a comparison operator"));
    assert!(err("emails[type eq \"work\"].value.x eq 1").contains("one sub-attribute"));
    assert!(err("emails[emails.type eq \"work\"]").contains("plain sub-attribute name"));
    assert!(err("name.givenName[x eq 1]").contains("top-level attribute"));
    assert_eq!(
        err("not title pr"),
        "expected '(' after \"not\", found \"title\" at position 4"
    );
    assert_eq!(
        err("title eq \"x\" and"),
        "expected an attribute path, found the end of the input at position 16"
    );
    assert_eq!(
        err("title eq \"x\" or or"),
        "expected an attribute path, found \"or\" at position 16"
    );
    assert_eq!(err("title # 1"), "unexpected character '#' at position 6");
    // Positions count characters, not bytes: after a string with a two-byte character,
    // after Unicode whitespace, and an escape before a multi-byte character.
    assert_eq!(
        err("title eq \"é\" # 1"),
        "unexpected character '#' at position 13"
    );
    assert_eq!(
        err("\u{3000}title # 1"),
        "unexpected character '#' at position 7"
    );
    assert_eq!(
        err("title eq \"ü\" and x eq 1x"),
        "invalid number \"1x\" at position 22"
    );
    assert!(err("a eq \"\\é\"").starts_with("invalid string literal"));
    assert_eq!(err("a eq \"é"), "unterminated string literal at position 5");
    assert_eq!(err("a eq 01"), "invalid number \"01\" at position 5");
    assert_eq!(err("a eq 1.5.3"), "invalid number \"1.5.3\" at position 5");
    assert_eq!(err("a eq 5x"), "invalid number \"5x\" at position 5");
    assert_eq!(err("a eq \"\\q\""), err("a eq \"\\q\""));
    assert!(err("a eq \"\\q\"").starts_with("invalid string literal"));
    assert!(err("a eq \"\\ud800\"").starts_with("invalid string literal"));
    assert!(err("name.given.family eq 1").contains("at most one sub-attribute level"));
    assert!(err("foo:bar eq 1").contains("must be a URN"));
    assert!(err("urn:x: eq 1").contains("missing attribute name"));
    assert!(err("()").contains("expected an attribute path, found ')'"));
    assert!(err("emails[]").contains("expected an attribute path, found ']'"));
    assert!(err("1 eq 1").contains("expected an attribute path, found number 1"));
    assert_eq!(err("2fa eq 1"), "invalid number \"2fa\" at position 0");
    // Error positions count characters, not bytes.
    assert_eq!(err("title eq \"é\" x"), err("title eq \"e\" x"));
    // The error type exposes its parts.
    assert_eq!(
        parse_filter("title xx 1"),
        Err(FilterError::Syntax {
            message: "unknown operator \"xx\" (expected eq, ne, co, sw, ew, gt, ge, lt, le or pr)"
                .into(),
            position: 6
        })
    );
}

#[test]
fn size_limits() {
    use crate::scim::filter::{MAX_DEPTH, MAX_TERMS};
    let nested = |n: usize| format!("{}title pr{}", "(".repeat(n), ")".repeat(n));
    assert!(parse_filter(&nested(MAX_DEPTH)).is_ok());
    assert!(err(&nested(MAX_DEPTH + 1)).starts_with("filter nested too deeply"));
    let nots = |n: usize| format!("{}title pr{}", "not (".repeat(n), ")".repeat(n));
    assert!(parse_filter(&nots(MAX_DEPTH)).is_ok());
    assert!(err(&nots(100_000)).starts_with("filter nested too deeply"));
    let chain = |n: usize| vec!["title pr"; n].join(" and ");
    assert!(parse_filter(&chain(MAX_TERMS)).is_ok());
    assert!(err(&chain(100_000)).starts_with("filter too long"));
    assert!(err(&"(".repeat(1_000_000)).starts_with("filter nested too deeply"));
}

#[test]
fn patch_paths() {
    let pp = parse_patch_path("members[value eq \"2819c223\"]").unwrap();
    assert_eq!(pp.attr, p("members"));
    assert_eq!(
        pp.filter,
        Some(cmp(p("value"), CompareOp::Eq, text("2819c223")))
    );
    assert_eq!(pp.sub_attr, None);

    let pp = parse_patch_path("emails[type eq \"work\"].value").unwrap();
    assert_eq!(pp.attr, p("emails"));
    assert_eq!(pp.sub_attr.as_deref(), Some("value"));
    assert_eq!(pp.to_string(), "emails[type eq \"work\"].value");

    let pp = parse_patch_path(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    )
    .unwrap();
    assert_eq!(
        pp.attr.urn.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    assert_eq!(pp.attr.attr, "employeeNumber");
    assert!(pp.filter.is_none());

    let pp = parse_patch_path("name.givenName").unwrap();
    assert_eq!(pp.attr.sub.as_deref(), Some("givenName"));

    let pp = parse_patch_path(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    )
    .unwrap();
    assert_eq!(pp.attr.attr, "manager");
    assert_eq!(pp.attr.sub.as_deref(), Some("value"));

    let pp =
        parse_patch_path("addresses[type eq \"work\" and primary eq true].streetAddress").unwrap();
    assert!(matches!(pp.filter, Some(Filter::And(..))));

    for bad in [
        "",
        "emails[type eq \"work\"",
        "emails[type eq \"work\"].",
        "emails[type eq \"work\"].value.x",
        "emails[type eq \"work\"] extra",
        "emails.value[type eq \"work\"]",
        "name.givenName eq \"x\"",
        "\"userName\"",
        "emails[type eq \"work\"][value eq \"x\"]",
    ] {
        assert!(parse_patch_path(bad).is_err(), "{bad} should fail");
    }
    assert_eq!(
        parse_patch_path("emails[type eq \"work\"] extra")
            .unwrap_err()
            .to_string(),
        "unexpected \"extra\" in path at position 23"
    );
}
