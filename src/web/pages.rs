//! The server-rendered pages: login, consent and error. Plain `format!` with every
//! interpolated value passed through [`escape`]; no scripts, no external assets (a strict
//! Content-Security-Policy is sent with each page, see [`super::html`]).

use crate::model::{Client, IdpKind, Scope};
use crate::oauth::params::Params;

/// HTML-escape text for element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:28rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.3rem;margin-top:0}\
label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;\
padding:.5rem;box-sizing:border-box}button{margin-top:1rem;padding:.5rem 1.2rem;margin-right:.5rem}\
.error{color:#a40000;background:#fde8e8;padding:.6rem;border-radius:4px}\
.muted{color:#555;font-size:.9rem}li{margin:.3rem 0}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · scimgate</title><style>{STYLE}</style></head>\
<body><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// Hidden inputs that carry the authorization request and the CSRF token through a form.
fn hidden(params: &Params, csrf: &str) -> String {
    let mut out = format!(
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
        escape(csrf)
    );
    for name in crate::oauth::authorize::PARAMS {
        if let Some(v) = params.get(name) {
            out.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(v)
            ));
        }
    }
    out
}

fn error_block(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", code_spans(e)))
        .unwrap_or_default()
}

/// Escape `text` and show its `quoted` names (the messages are written for terminals,
/// with backticks) as `<code>` rather than as literal backticks; an unpaired backtick
/// stays as it is.
pub fn code_spans(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let paired = parts.len() - (parts.len() + 1) % 2;
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && i >= paired {
            out.push('`');
        }
        if i % 2 == 1 && i < paired {
            out.push_str("<code>");
            out.push_str(&escape(part));
            out.push_str("</code>");
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// The login form.
pub fn login(client: &Client, params: &Params, csrf: &str, error: Option<&str>) -> String {
    let body = format!(
        "<h1>Sign in</h1><p>{} asks to connect to scimgate. Sign in to continue.</p>{}\
<form method=\"post\" action=\"/oauth2/authorize\">{}\
<input type=\"hidden\" name=\"action\" value=\"login\">\
<label for=\"username\">User name</label>\
<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
        escape(&client.name),
        error_block(error),
        hidden(params, csrf)
    );
    layout("Sign in", &body)
}

fn idp_words(client: &Client) -> String {
    let idp = &client.idp;
    let kind = match idp.kind {
        IdpKind::Entra => "Microsoft Entra ID",
        IdpKind::Okta => "Okta",
        IdpKind::Custom => "a custom identity provider",
    };
    let mut parts = vec![format!("Registered for {kind}")];
    if let Some(app) = &idp.app_id {
        parts.push(format!("application {}", escape(app)));
    }
    if let Some(t) = &idp.tenant {
        parts.push(format!("tenant {}", escape(t)));
    }
    let mut s = parts.join(", ");
    if let Some(owner) = &idp.owner {
        s.push_str(&format!("; owner: {}", escape(owner)));
    }
    s
}

/// The consent screen: who asks, for what, and where the answer goes.
pub fn consent(
    client: &Client,
    scopes: &[Scope],
    redirect_uri: &str,
    user: &str,
    params: &Params,
    csrf: &str,
) -> String {
    let items: String = scopes
        .iter()
        .map(|s| {
            format!(
                "<li>{} <span class=\"muted\">({})</span></li>",
                escape(s.describe()),
                escape(s.name())
            )
        })
        .collect();
    let host = url::Url::parse(redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| redirect_uri.to_string());
    let body = format!(
        "<h1>Allow {name}?</h1>\
<p><strong>{name}</strong> <span class=\"muted\">(client {id})</span> wants to:</p><ul>{items}</ul>\
<p class=\"muted\">{idp}.</p>\
<p class=\"muted\">Signed in as {user}. After your answer you will be sent to {host}.</p>\
<form method=\"post\" action=\"/oauth2/authorize\">{hidden}\
<input type=\"hidden\" name=\"action\" value=\"consent\">\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        name = escape(&client.name),
        id = escape(&client.id),
        idp = idp_words(client),
        user = escape(user),
        host = escape(&host),
        hidden = hidden(params, csrf),
    );
    layout("Allow access", &body)
}

/// An error the user must read (never a redirect to an untrusted URI).
pub fn error(message: &str) -> String {
    layout(
        "Cannot continue",
        &format!(
            "<h1>This request cannot continue</h1>{}<p class=\"muted\">Close this page and \
start again from the application that sent you here.</p>",
            error_block(Some(message))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#x27;"
        );
        assert_eq!(escape("plain text"), "plain text");
    }

    #[test]
    fn backticks_become_code_and_stay_escaped() {
        assert_eq!(
            code_spans("the `redirect_uri` <x> is not registered"),
            "the <code>redirect_uri</code> &lt;x&gt; is not registered"
        );
        assert_eq!(code_spans("`<b>`"), "<code>&lt;b&gt;</code>");
        assert_eq!(code_spans("one ` alone"), "one ` alone");
        assert_eq!(code_spans("`a` and ` b"), "<code>a</code> and ` b");
        assert_eq!(code_spans("plain"), "plain");
    }

    #[test]
    fn hidden_fields_are_escaped() {
        let p = Params::parse(b"state=%22%3E%3Cscript%3E&client_id=cl_1").unwrap();
        let h = hidden(&p, "tok");
        assert!(h.contains("value=\"&quot;&gt;&lt;script&gt;\""), "{h}");
        assert!(!h.contains("<script>"), "{h}");
    }
}
