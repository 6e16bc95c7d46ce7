//! Which refused SCIM requests are provisioning errors: the ones an IdP reports in its own
//! console as a failure for a user or group, so an operator should hear about them.
//!
//! From Microsoft Entra ID's and Okta's SCIM documentation: a 400 (invalid value or
//! syntax), 409 (uniqueness), 412 (`If-Match` precondition), 413 (payload too large),
//! 415 (media type) or any 5xx fails the user's or group's provisioning and is shown as
//! an error there. Not these: 401 and 403 (the credential's failure, which the health
//! states report), 429 (the IdP backs off and retries), and 404 on `GET` or `DELETE`
//! (a search that finds nothing, or a resource already gone: both IdPs treat these as
//! success). A 404 on `PUT` or `PATCH` is an error: the IdP believed the resource existed.

use actix_web::http::Method;

use super::events::{Attribution, RequestEvent, Verdict};
use crate::store::ProvisioningError;

/// The provisioning errors among `events`: requests with a valid token (the credential's
/// own failures are the health states' business) refused with an IdP-reported status.
pub fn errors_of(events: &[RequestEvent]) -> Vec<ProvisioningError> {
    events
        .iter()
        .filter_map(|e| {
            let Attribution::Token {
                client_id,
                verdict: Verdict::Accepted,
                ..
            } = &e.attribution
            else {
                return None;
            };
            if !e.path.starts_with("/scim/") || !is_provisioning_error(&e.method, e.status) {
                return None;
            }
            let (resource, resource_id) = resource_of(&e.path);
            let r = e.refusal.as_deref();
            let c = r.map(|r| &r.concerned);
            let text = |s: Option<&String>| s.map(|s| storable(s));
            Some(ProvisioningError {
                client_id: client_id.clone(),
                at: e.at,
                method: e.method.as_str().to_string(),
                resource,
                resource_id: text(resource_id.as_ref()),
                user_name: text(c.and_then(|c| c.user_name.as_ref())),
                external_id: text(c.and_then(|c| c.external_id.as_ref())),
                display_name: text(c.and_then(|c| c.display_name.as_ref())),
                status: e.status,
                scim_type: r.and_then(|r| r.scim_type).map(str::to_string),
                detail: text(r.and_then(|r| r.detail.as_ref())),
                notified_at: None,
            })
        })
        .collect()
}

/// `s` as the store can keep it: what the IdP sent, with U+0000 (which PostgreSQL's text
/// cannot hold) as U+FFFD. Kept as it was, one such request failed the insert of every
/// error recorded with it, other IdPs' included.
fn storable(s: &str) -> String {
    s.replace('\0', "\u{fffd}")
}

/// Whether a request with `method` answered `status` is a provisioning error.
pub fn is_provisioning_error(method: &Method, status: u16) -> bool {
    match status {
        400 | 409 | 412 | 413 | 415 => true,
        404 => *method == Method::PUT || *method == Method::PATCH,
        500..=599 => true,
        _ => false,
    }
}

/// The SCIM endpoint and resource id a request path names: `/scim/v2/Users/abc` gives
/// `("Users", Some("abc"))`, `/scim/v2/Users` gives `("Users", None)`. Anything else
/// (`Bulk`, `.search`, an unknown path) gives its first segment after `/scim/v2`.
pub fn resource_of(path: &str) -> (String, Option<String>) {
    let rest = path.strip_prefix("/scim/v2").unwrap_or(path);
    let mut parts = rest.trim_start_matches('/').splitn(3, '/');
    let endpoint = parts
        .next()
        .unwrap_or("")
        .chars()
        .take(64)
        .collect::<String>();
    let id = parts
        .next()
        .filter(|s| !s.is_empty() && *s != ".search")
        .map(|s| s.chars().take(256).collect());
    (endpoint, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statuses_idps_report_for_a_user() {
        for s in [400, 409, 412, 413, 415, 500, 502, 503] {
            assert!(is_provisioning_error(&Method::POST, s), "{s}");
        }
        for s in [200, 201, 204, 304, 401, 403, 429] {
            assert!(!is_provisioning_error(&Method::POST, s), "{s}");
        }
        assert!(!is_provisioning_error(&Method::GET, 404));
        assert!(!is_provisioning_error(&Method::DELETE, 404));
        assert!(is_provisioning_error(&Method::PATCH, 404));
        assert!(is_provisioning_error(&Method::PUT, 404));
    }

    #[test]
    fn resource_and_id_from_the_path() {
        assert_eq!(resource_of("/scim/v2/Users"), ("Users".into(), None));
        assert_eq!(
            resource_of("/scim/v2/Users/abc"),
            ("Users".into(), Some("abc".into()))
        );
        assert_eq!(
            resource_of("/scim/v2/Groups/g1"),
            ("Groups".into(), Some("g1".into()))
        );
        assert_eq!(
            resource_of("/scim/v2/Users/.search"),
            ("Users".into(), None)
        );
        assert_eq!(resource_of("/scim/v2/Bulk"), ("Bulk".into(), None));
        let long = format!("/scim/v2/Users/{}", "x".repeat(5000));
        assert_eq!(resource_of(&long).1.unwrap().len(), 256);
    }
}
