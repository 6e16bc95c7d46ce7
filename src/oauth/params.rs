//! Request parameters of the OAuth2 endpoints, read from an
//! `application/x-www-form-urlencoded` body or a query string. RFC 6749 §3.1/§3.2: a
//! parameter sent more than once is an error, and a parameter sent empty is treated as
//! omitted. A body larger than the server's `max_body_bytes` is refused (413) while it is
//! read, before any of it is parsed.
//!
//! Parsing is linear in the input and bounded before client authentication: no OAuth2 or
//! login request has more than a dozen parameters, so more than [`MAX_PARAMS`] pairs are
//! refused as soon as the one past the limit is seen, so the scan for repeats is at most
//! 64 × 64 comparisons (before the limit, a list scanned per pair made a 0.9 MB body of
//! 100,000 pairs cost 53 s of CPU; a hash set of the names then cost 1–2 % of every
//! request).

use std::borrow::Cow;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;

use super::error::OAuthError;

/// Parsed, de-duplicated parameters.
#[derive(Clone, Default)]
pub struct Params(Vec<(String, String)>);

/// Secrets never reach a log through `Debug`: only the names are printed.
impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// Most parameters (empty ones included) a request may carry.
pub const MAX_PARAMS: usize = 64;

impl Params {
    /// Parse urlencoded text; a repeated parameter, or more than [`MAX_PARAMS`] of them,
    /// is `invalid_request`.
    ///
    /// Nearly every body is plain: no `%`, no `+`, valid UTF-8 (ours and the IdPs' ids,
    /// secrets and tokens need no escaping). Its names and values are then slices of it,
    /// exactly as the `url` crate would decode them, and are taken without its per-byte
    /// decoding, which was most of this function's cost (bench/RESULTS.md). Any other body
    /// goes through the crate.
    pub fn parse(text: &[u8]) -> Result<Params, OAuthError> {
        let plain = memchr::memchr2(b'%', b'+', text).is_none();
        if plain && let Ok(text) = std::str::from_utf8(text) {
            let pairs = text
                .split('&')
                .filter(|seq| !seq.is_empty())
                .map(|seq| seq.split_once('=').unwrap_or((seq, "")))
                .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)));
            return Params::collect(pairs);
        }
        Params::collect(url::form_urlencoded::parse(text))
    }

    fn collect<'a>(
        pairs: impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    ) -> Result<Params, OAuthError> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(4);
        for (n, (k, v)) in pairs.enumerate() {
            if n >= MAX_PARAMS {
                return Err(OAuthError::InvalidRequest(format!(
                    "the request has more than {MAX_PARAMS} parameters"
                )));
            }
            if v.is_empty() {
                continue;
            }
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(OAuthError::InvalidRequest(format!(
                    "the parameter `{}` is repeated",
                    crate::text::printable(&k, 64)
                )));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(out))
    }

    /// Read a POST body of at most `limit` bytes and parse it (content type checked first).
    pub async fn read_form(
        req: &HttpRequest,
        payload: web::Payload,
        limit: usize,
    ) -> Result<Params, OAuthError> {
        let body = crate::body::read(req, payload, limit)
            .await
            .map_err(|e| match e {
                crate::body::BodyError::TooLarge(n) => OAuthError::BodyTooLarge(n),
                e => OAuthError::InvalidRequest(e.to_string()),
            })?;
        Params::from_form(req, &body)
    }

    /// Parse a POST body after checking its content type.
    pub fn from_form(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
        // Compared as bytes: `to_str`'s check of every byte is not needed to compare.
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map_or(&b""[..], |v| v.as_bytes());
        let mime = ct.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
        if !mime.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
            return Err(OAuthError::InvalidRequest(
                "the request body must be application/x-www-form-urlencoded".into(),
            ));
        }
        Params::parse(body)
    }

    /// A parameter's value, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("the parameter `{name}` is missing")))
    }

    /// Every (name, value) pair, in request order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_ignored() {
        let p = Params::parse(b"grant_type=client_credentials&scope=&a=%20b").unwrap();
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("a"), Some(" b"));
        let err = Params::parse(b"scope=a&scope=b").unwrap_err();
        assert!(matches!(err, OAuthError::InvalidRequest(m) if m.contains("`scope`")));
    }

    /// Regression: the duplicate check scanned the list per pair, so 100,000 pairs took
    /// 53 s of CPU before client authentication.
    #[test]
    fn a_hundred_thousand_pairs_are_refused_at_once() {
        let body: String = (0..100_000).map(|i| format!("p{i}=v&")).collect();
        let started = std::time::Instant::now();
        let err = Params::parse(body.as_bytes()).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        assert!(matches!(err, OAuthError::InvalidRequest(m) if m.contains("more than 64")));
        // Sixty-four distinct parameters are fine.
        let body: String = (0..64).map(|i| format!("p{i}=v&")).collect();
        assert_eq!(Params::parse(body.as_bytes()).unwrap().pairs().count(), 64);
    }

    /// The plain-body shortcut reads every body as the `url` crate does: the same pairs,
    /// in the same order, or the same refusal.
    #[test]
    fn plain_bodies_parse_as_the_crate_parses_them() {
        fn by_crate(text: &[u8]) -> Result<Params, OAuthError> {
            Params::collect(url::form_urlencoded::parse(text))
        }
        let check = |text: &[u8]| match (Params::parse(text), by_crate(text)) {
            (Ok(a), Ok(b)) => assert_eq!(a.0, b.0, "{:?}", String::from_utf8_lossy(text)),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("{:?}: {a:?} vs {b:?}", String::from_utf8_lossy(text)),
        };
        for text in [
            &b""[..],
            b"&",
            b"&&a=1&&",
            b"a",
            b"a=",
            b"=b",
            b"=",
            b"a==b",
            b"a=b=c&d",
            b"grant_type=client_credentials&scope=user-directory.read.all",
            b"a=1&a=2",
            b"a=1&a=",
            b"a=%41&b=+",
            b"caf\xc3\xa9=\xc3\xa9",
            b"bad=\xff\xfe",
            b"k=\xe2\x82",
        ] {
            check(text);
        }
        let alphabet = b"ab=&%+\xc3\xa9\xff0";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let text: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i * 5)) % alphabet.len() as u64) as usize])
                .collect();
            check(&text);
        }
    }

    /// The form's media type, in any case, with or without parameters; anything else is
    /// refused before the body is parsed.
    #[test]
    fn only_form_bodies_are_parsed() {
        let with = |ct: Option<&[u8]>| {
            let mut req = actix_web::test::TestRequest::default();
            if let Some(ct) = ct {
                req = req.insert_header((
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_bytes(ct).unwrap(),
                ));
            }
            Params::from_form(&req.to_http_request(), b"a=1")
        };
        for ct in [
            &b"application/x-www-form-urlencoded"[..],
            b"Application/X-WWW-Form-URLEncoded",
            b"application/x-www-form-urlencoded; charset=UTF-8",
            b"application/x-www-form-urlencoded ;charset=utf-8",
        ] {
            let p = with(Some(ct)).unwrap_or_else(|e| panic!("{ct:?}: {e:?}"));
            assert_eq!(p.get("a"), Some("1"));
        }
        for ct in [
            None,
            Some(&b""[..]),
            Some(b"application/json"),
            Some(b"application/x-www-form-urlencodedx"),
            Some(b"application/x-www-form-\xffurlencoded"),
            Some(b"text/plain; application/x-www-form-urlencoded"),
        ] {
            let err = with(ct).unwrap_err();
            assert!(
                matches!(err, OAuthError::InvalidRequest(ref m) if m.contains("x-www-form-urlencoded")),
                "{ct:?}: {err:?}"
            );
        }
    }

    #[test]
    fn debug_shows_names_only() {
        let p = Params::parse(b"client_secret=sgcs_hunter2").unwrap();
        let printed = format!("{p:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
