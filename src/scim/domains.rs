//! Clients limited to their email domains (Resolver's `emailDomains`): an IdP registered
//! with `--email-domain contoso.com` may manage only users of that domain. The rules:
//!
//! - `contoso.com` matches addresses `…@contoso.com` exactly (case-insensitive);
//! - `*.contoso.com` matches every subdomain (`…@eu.contoso.com`), not `contoso.com`
//!   itself (list both when both are meant).
//!
//! A restricted client *sees* a user when the user's `userName` is an address in its
//! domains; others are absent from its lists, filters and `totalResults`, and 404 by id. It
//! may *write* a user only when the `userName` and every `emails` value are in its domains.
//! Group members it cannot see are neither shown to it nor removed by its writes, and it
//! cannot add them. No rule (the default) means unrestricted.

use serde_json::Value;

use super::error::ScimError;

/// A client's domain rules, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDomains(Vec<Rule>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Exact(String),
    Subdomains(String),
}

/// Parse and validate one domain rule; the error is one sentence.
pub fn parse_rule(input: &str) -> Result<String, String> {
    let s = input.trim().to_ascii_lowercase();
    let (wild, name) = match s.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, s.as_str()),
    };
    let bad = |why: &str| format!("`{input}` is not an email domain: {why}");
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > 253 {
        return Err(bad("it is longer than 253 characters"));
    }
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return Err(bad("IP literals are not domains"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(bad(
            "use a domain with at least two labels, such as contoso.com",
        ));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad(
                "each label is 1 to 63 letters, digits or inner hyphens (write internationalised domains in their xn-- form)",
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("the last label cannot be all digits"));
    }
    Ok(if wild {
        format!("*.{name}")
    } else {
        name.to_string()
    })
}

impl EmailDomains {
    /// Rules from their stored (already validated) form; `None` when there are none.
    pub fn from_rules(rules: &[String]) -> Option<EmailDomains> {
        let parsed: Vec<Rule> = rules
            .iter()
            .map(|r| match r.strip_prefix("*.") {
                Some(d) => Rule::Subdomains(d.to_ascii_lowercase()),
                None => Rule::Exact(r.to_ascii_lowercase()),
            })
            .collect();
        (!parsed.is_empty()).then_some(EmailDomains(parsed))
    }

    /// The rules as written (`contoso.com, *.contoso.com`).
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|r| match r {
                Rule::Exact(d) => d.clone(),
                Rule::Subdomains(d) => format!("*.{d}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether `address` (`local@domain`) is in these domains.
    pub fn allows(&self, address: &str) -> bool {
        let Some((local, domain)) = address.trim().rsplit_once('@') else {
            return false;
        };
        if local.is_empty() {
            return false;
        }
        let domain = domain.to_ascii_lowercase();
        self.0.iter().any(|r| match r {
            Rule::Exact(d) => domain == *d,
            Rule::Subdomains(d) => domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        })
    }

    /// Whether a user document (its `userName`) is visible to the client.
    pub fn sees_user(&self, doc: &Value) -> bool {
        user_name(doc).is_some_and(|u| self.allows(u))
    }

    /// Refuse a user document whose `userName` or any `emails` value is outside.
    pub fn check_user(&self, doc: &Value) -> Result<(), ScimError> {
        let outside = |what: &str, value: &str| {
            ScimError::new(
                403,
                None,
                format!(
                    "{what} `{value}` is outside the email domains of this client ({})",
                    self.describe()
                ),
            )
        };
        match user_name(doc) {
            Some(u) if self.allows(u) => {}
            Some(u) => return Err(outside("userName", u)),
            None => return Err(outside("userName", "")),
        }
        if let Some(Value::Array(emails)) = field(doc, "emails") {
            for e in emails {
                if let Some(v) = e.get("value").and_then(Value::as_str)
                    && !self.allows(v)
                {
                    return Err(outside("email", v));
                }
            }
        }
        Ok(())
    }

    /// SQL `LIKE` patterns (with `\` as the escape) that a visible user's `user_name`
    /// matches: one per rule. Domains hold only letters, digits, `-` and `.`, so nothing
    /// in them needs escaping.
    pub fn like_patterns(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|r| match r {
                Rule::Exact(d) => format!("%_@{d}"),
                Rule::Subdomains(d) => format!("%_@%_.{d}"),
            })
            .collect()
    }
}

fn field<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn user_name(doc: &Value) -> Option<&str> {
    field(doc, "userName")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_are_validated() {
        assert_eq!(parse_rule(" Contoso.COM ").unwrap(), "contoso.com");
        assert_eq!(parse_rule("*.contoso.com").unwrap(), "*.contoso.com");
        for bad in [
            "",
            "@x",
            "*.",
            "*",
            "contoso",
            "10.0.0.1",
            "[::1]",
            "a..b",
            "-a.com",
            "a.b-",
            "x.123",
            "exa mple.com",
            "*.*.a.com",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            parse_rule("@x")
                .unwrap_err()
                .contains("not an email domain")
        );
    }

    #[test]
    fn addresses_match_exact_domains_and_subdomain_rules() {
        let d = EmailDomains::from_rules(&["contoso.com".into(), "*.fabrikam.com".into()]).unwrap();
        assert!(d.allows("alice@contoso.com"));
        assert!(d.allows("Alice@CONTOSO.com"));
        assert!(!d.allows("alice@eu.contoso.com"), "exact means exact");
        assert!(!d.allows("alice@evilcontoso.com"));
        assert!(d.allows("bob@eu.fabrikam.com"));
        assert!(
            !d.allows("bob@fabrikam.com"),
            "a subdomain rule is not the apex"
        );
        assert!(!d.allows("bob@evil-fabrikam.com"));
        assert!(!d.allows("@contoso.com") && !d.allows("contoso.com"));
        assert_eq!(EmailDomains::from_rules(&[]), None);
        let user = json!({"userName": "a@contoso.com", "emails": [{"value": "a@contoso.com"}, {"value": "a@gmail.com"}]});
        assert!(d.sees_user(&user));
        let err = d.check_user(&user).unwrap_err();
        assert!(
            err.detail.contains("a@gmail.com")
                && err.detail.contains("contoso.com, *.fabrikam.com"),
            "{}",
            err.detail
        );
    }
}
