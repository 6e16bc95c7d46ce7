//! Helpers for the OAuth2 tests: registering clients through the real `config` binary,
//! a browser-like HTTP client (cookie jar, no automatic redirects), and driving the login
//! and consent forms the way a browser would.

#![allow(dead_code)]

use reqwest::blocking::{Client as Http, Response};
use serde_json::Value;

use crate::support::{TestServer, TestStore};

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const READ: &str = "user-directory.read.all";
pub const WRITE: &str = "user-directory.write.all";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "alice-password-1";
/// RFC 7636 appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A registered client: id and (for confidential clients) secret.
#[derive(Debug, Clone)]
pub struct Registered {
    pub id: String,
    pub secret: Option<String>,
}

impl Registered {
    pub fn secret(&self) -> &str {
        self.secret.as_deref().expect("a confidential client")
    }
}

/// Register a client with `config register-api-client --json ARGS`.
pub fn register(s: &TestStore, name: &str, args: &[&str]) -> Registered {
    let mut all = vec!["register-api-client", "-n", name];
    all.extend_from_slice(args);
    let v = s.json(&all);
    Registered {
        id: v["id"].as_str().expect("client id").to_string(),
        secret: v["client_secret"].as_str().map(str::to_string),
    }
}

/// An Okta-style web client: authorization_code + refresh_token, both scopes.
pub fn code_client(s: &TestStore, extra: &[&str]) -> Registered {
    let mut args = vec![
        "-G",
        "authorization_code",
        "-G",
        "refresh_token",
        "-S",
        READ,
        "-S",
        WRITE,
        "-R",
        REDIRECT,
    ];
    args.extend_from_slice(extra);
    register(s, "Okta provisioning", &args)
}

/// A client_credentials client with the given scopes.
pub fn cc_client(s: &TestStore, scopes: &[&str], extra: &[&str]) -> Registered {
    let mut args = vec!["-G", "client_credentials"];
    for sc in scopes {
        args.extend_from_slice(&["-S", sc]);
    }
    args.extend_from_slice(extra);
    register(s, "Entra provisioning", &args)
}

/// Create the login account alice.
pub fn create_user(s: &TestStore) {
    s.config()
        .env("SCIMGATE_USER_PASSWORD", PASSWORD)
        .args(["create-user", "-u", USER])
        .assert()
        .success();
}

/// A browser: keeps cookies, does not follow redirects.
pub fn browser() -> Http {
    Http::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A browser (cookies, no redirects) calling from `source` (a loopback address such as
/// 127.0.0.2) with `headers` on every request (e.g. a proxy's `X-Forwarded-For`).
pub fn browser_with(source: Option<&str>, headers: &[(&str, &str)]) -> Http {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            reqwest::header::HeaderValue::from_str(v).expect("header value"),
        );
    }
    let mut b = Http::builder()
        .no_proxy()
        .cookie_store(true)
        .default_headers(map)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30));
    if let Some(ip) = source {
        b = b.local_address(ip.parse::<std::net::IpAddr>().expect("an IP address"));
    }
    b.build().expect("http client")
}

/// POST a form to the token endpoint (or another), with optional Basic credentials.
pub fn post_form(
    server: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Response {
    post_form_from(crate::support::http(), server, path, basic, form)
}

/// [`post_form`] from another loopback source address (e.g. 127.0.0.2): the server sees
/// a different peer, as it would a second IdP or an attacker elsewhere.
pub fn post_form_from_address(
    source: &str,
    server: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Response {
    let http = Http::builder()
        .no_proxy()
        .local_address(source.parse::<std::net::IpAddr>().expect("an IP address"))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("http client");
    post_form_from(http, server, path, basic, form)
}

fn post_form_from(
    http: Http,
    server: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Response {
    let mut req = http.post(server.url(path)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().expect("request")
}

/// Status and JSON body of a response.
pub fn status_json(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, v)
}

/// Assert an RFC 6749 §5.2 error: status and `error` code.
pub fn assert_oauth_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "errors are not cached"
    );
    let (got, v) = status_json(r);
    assert_eq!((got, v["error"].as_str()), (status, Some(code)), "{v}");
    assert!(v["error_description"].is_string(), "{v}");
    v
}

/// The value of hidden input `name` in an HTML page.
pub fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in page: {html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_string()
}

/// The authorization query for `client` with PKCE S256 and `state=xyz`.
pub fn auth_query(client: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut q: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client.into()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("state".into(), "xyz".into()),
        ("code_challenge".into(), CHALLENGE.into()),
        ("code_challenge_method".into(), "S256".into()),
    ];
    for (k, v) in extra {
        q.retain(|(name, _)| name != k);
        if !v.is_empty() {
            q.push(((*k).into(), (*v).into()));
        }
    }
    q
}

/// GET /oauth2/authorize with `query`.
pub fn get_authorize(b: &Http, server: &TestServer, query: &[(String, String)]) -> Response {
    b.get(server.url("/oauth2/authorize"))
        .query(query)
        .send()
        .expect("authorize")
}

/// Submit a form of the authorization pages: the page's hidden fields plus `fields`.
pub fn submit(b: &Http, server: &TestServer, page: &str, fields: &[(&str, &str)]) -> Response {
    submit_request(b, server, page, fields)
        .send()
        .expect("submit")
}

/// The request [`submit`] sends, to add to before sending.
pub fn submit_request(
    b: &Http,
    server: &TestServer,
    page: &str,
    fields: &[(&str, &str)],
) -> reqwest::blocking::RequestBuilder {
    let mut form: Vec<(String, String)> = Vec::new();
    for name in [
        "csrf_token",
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    ] {
        if page.contains(&format!("name=\"{name}\" value=\"")) {
            form.push((name.into(), unescape(&hidden_value(page, name))));
        }
    }
    for (k, v) in fields {
        form.push(((*k).into(), (*v).into()));
    }
    b.post(server.url("/oauth2/authorize")).form(&form)
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The query parameters of a redirect's Location.
pub fn location_params(r: &Response) -> Vec<(String, String)> {
    assert_eq!(r.status(), 303, "expected a redirect");
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location");
    assert!(loc.starts_with(REDIRECT), "{loc}");
    url::Url::parse(loc)
        .expect("absolute Location")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Log in and consent in browser `b`; returns the authorization code.
pub fn login_and_consent(b: &Http, server: &TestServer, query: &[(String, String)]) -> String {
    let page = get_authorize(b, server, query).text().expect("login page");
    assert!(page.contains("Sign in"), "{page}");
    let r = submit(
        b,
        server,
        &page,
        &[
            ("action", "login"),
            ("username", USER),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status(), 200);
    let consent = r.text().expect("consent page");
    assert!(consent.contains("Allow"), "{consent}");
    let r = submit(
        b,
        server,
        &consent,
        &[("action", "consent"), ("decision", "allow")],
    );
    let params = location_params(&r);
    param(&params, "code").expect("code").to_string()
}

/// An authorization code for `query` in browser `b`, whatever state the browser is in:
/// straight back (remembered consent), or through the login and/or consent forms.
pub fn code_for(b: &Http, server: &TestServer, query: &[(String, String)]) -> String {
    let mut r = get_authorize(b, server, query);
    if r.status() == 200 {
        let page = r.text().expect("page");
        r = if page.contains("name=\"password\"") {
            submit(
                b,
                server,
                &page,
                &[
                    ("action", "login"),
                    ("username", USER),
                    ("password", PASSWORD),
                ],
            )
        } else {
            submit(
                b,
                server,
                &page,
                &[("action", "consent"), ("decision", "allow")],
            )
        };
    }
    if r.status() == 200 {
        let page = r.text().expect("consent page");
        r = submit(
            b,
            server,
            &page,
            &[("action", "consent"), ("decision", "allow")],
        );
    }
    let params = location_params(&r);
    param(&params, "code").expect("code").to_string()
}

/// Exchange `code` at the token endpoint with client_secret_basic.
pub fn exchange(
    server: &TestServer,
    client: &Registered,
    code: &str,
    verifier: Option<&str>,
) -> Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    post_form(
        server,
        "/oauth2/token",
        Some((&client.id, client.secret())),
        &form,
    )
}

/// Introspect `token` as `client`.
pub fn introspect(server: &TestServer, client: &Registered, token: &str) -> Value {
    let r = post_form(
        server,
        "/oauth2/introspect",
        Some((&client.id, client.secret())),
        &[("token", token)],
    );
    let (status, v) = status_json(r);
    assert_eq!(status, 200, "{v}");
    v
}

/// The audit actions in the store, oldest first.
pub fn audit_actions(s: &TestStore) -> Vec<String> {
    s.audit()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `grant_type=refresh_token` with `refresh_token`, as `client` (Basic): status and body.
pub fn refresh(server: &TestServer, client: &Registered, refresh_token: &str) -> (u16, Value) {
    status_json(post_form(
        server,
        "/oauth2/token",
        Some((&client.id, client.secret())),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    ))
}

/// Access and refresh token from a fresh authorization (login, consent, code exchange).
pub fn authorize(server: &TestServer, client: &Registered) -> (String, String) {
    let code = code_for(&browser(), server, &auth_query(&client.id, &[]));
    let (status, v) = status_json(exchange(server, client, &code, Some(VERIFIER)));
    assert_eq!(status, 200, "{v}");
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// The public id of a token.
pub fn token_id(token: &str) -> String {
    scimgate::token::parse(token).unwrap().id.to_string()
}
