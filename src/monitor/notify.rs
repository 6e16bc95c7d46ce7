//! Notifications and the notifiers that deliver them: the log (always), a webhook (JSON
//! POST with an HMAC-SHA256 signature and a Slack-compatible `text` field; timeout,
//! retries with exponential backoff) and e-mail over SMTP (lettre with rustls; STARTTLS,
//! TLS or plain; several recipients). Deliveries run on their own thread so a slow
//! receiver never holds up the monitor; a delivery may carry extra recipients (a client's
//! `--alert-email`) and be told whether it arrived (the provisioning-error digest keeps
//! its errors until one does).

use std::time::Duration as StdDuration;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Value, json};

use super::config::{EmailSettings, MonitorSettings, SmtpSecurity, WebhookSettings};
use crate::time::{Timestamp, format_rfc3339};

/// How urgent a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Something an operator must hear about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// `state_change`, `token_expiry`, `secret_expiry` or `provisioning_errors`.
    pub event: &'static str,
    pub severity: Severity,
    pub client_id: String,
    pub client_name: String,
    pub token_id: Option<String>,
    /// One or two sentences, shown as is (Slack's `text`, the mail body, the log line).
    pub text: String,
    pub at: Timestamp,
    /// Event-specific fields (states, lead time, expiry).
    pub details: Value,
    /// Lines the mail body lists after the text (a digest's errors); empty for the others,
    /// whose body shows `details`.
    pub lines: Vec<String>,
}

impl Notification {
    /// The webhook body: the notification plus Slack's `text`.
    pub fn payload(&self) -> Value {
        json!({
            "text": format!("[scimgate] {}", self.text),
            "event": self.event,
            "severity": self.severity,
            "client_id": self.client_id,
            "client_name": self.client_name,
            "token_id": self.token_id,
            "timestamp": format_rfc3339(self.at),
            "details": self.details,
        })
    }

    fn subject(&self) -> String {
        let level = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "CRITICAL",
        };
        format!("[scimgate {level}] {} ({})", self.client_name, self.event)
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn post_webhook(w: &WebhookSettings, body: &[u8]) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(w.timeout))
        .build()
        .into();
    let mut req = agent
        .post(&w.url)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("scimgate/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(secret) = &w.secret {
        req = req.header("X-Scimgate-Signature", signature(secret, body));
    }
    req.send(body).map(|_| ()).map_err(|e| e.to_string())
}

/// Deliver to the webhook, retrying with backoff (0.5 s, 1 s, 2 s, …).
pub fn send_webhook(w: &WebhookSettings, n: &Notification) -> Result<(), String> {
    let body = n.payload().to_string().into_bytes();
    let mut delay = StdDuration::from_millis(500);
    let mut last = String::new();
    for attempt in 0..=w.retries {
        match post_webhook(w, &body) {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(url = %w.url, attempt = attempt + 1, error = %e, "webhook delivery failed");
                last = e;
            }
        }
        if attempt < w.retries {
            std::thread::sleep(delay);
            delay *= 2;
        }
    }
    Err(last)
}

/// Send the notification by e-mail to the recipients `to` (one message).
pub fn send_email(e: &EmailSettings, to: &[String], n: &Notification) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{Message, SmtpTransport, Transport};

    let mut builder = Message::builder()
        .from(e.from.parse().map_err(|err| format!("sender: {err}"))?)
        .subject(n.subject());
    for to in to {
        builder = builder.to(to.parse().map_err(|err| format!("recipient {to}: {err}"))?);
    }
    let body = if n.lines.is_empty() {
        format!(
            "{}\n\nclient: {} ({})\ntoken: {}\ntime: {}\ndetails: {}\n",
            n.text,
            n.client_name,
            n.client_id,
            n.token_id.as_deref().unwrap_or("-"),
            format_rfc3339(n.at),
            n.details
        )
    } else {
        format!(
            "{}\n\n{}\n\nclient: {} ({})\ntime: {}\n",
            n.text,
            n.lines.join("\n"),
            n.client_name,
            n.client_id,
            format_rfc3339(n.at),
        )
    };
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|err| err.to_string())?;
    let mut transport = match e.security {
        SmtpSecurity::None => SmtpTransport::builder_dangerous(&e.host),
        SmtpSecurity::StartTls => {
            SmtpTransport::starttls_relay(&e.host).map_err(|err| err.to_string())?
        }
        SmtpSecurity::Tls => SmtpTransport::relay(&e.host).map_err(|err| err.to_string())?,
    }
    .port(e.port)
    .timeout(Some(StdDuration::from_secs(15)));
    if let (Some(user), Some(pass)) = (&e.username, &e.password) {
        transport = transport.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    transport
        .build()
        .send(&message)
        .map(|_| ())
        .map_err(|err| err.to_string())
}

/// Told whether a delivery reached every configured notifier (`true`) or not.
pub type Done = Box<dyn FnOnce(bool) + Send>;

/// One notification on its way: with extra e-mail recipients and who to tell the outcome.
struct Delivery {
    note: Notification,
    extra_to: Vec<String>,
    done: Option<Done>,
}

/// The configured notifiers, with one delivery thread that works through notifications
/// in order (a retrying webhook delays the ones behind it rather than reordering them).
#[derive(Clone, Default)]
pub struct Notifier {
    pub webhook: Option<WebhookSettings>,
    pub email: Option<EmailSettings>,
    queue: Option<std::sync::mpsc::Sender<Delivery>>,
    pending: std::sync::Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("webhook", &self.webhook)
            .field("email", &self.email)
            .finish()
    }
}

/// Deliver `d` to every configured notifier; whether all of them took it.
fn deliver(webhook: Option<&WebhookSettings>, email: Option<&EmailSettings>, d: &Delivery) -> bool {
    let mut ok = true;
    if let Some(w) = webhook {
        if let Err(e) = send_webhook(w, &d.note) {
            tracing::error!(url = %w.url, event = d.note.event, error = %e, "webhook notification lost after retries");
            ok = false;
        }
    }
    if let Some(e) = email {
        let mut to = e.to.clone();
        for extra in &d.extra_to {
            if !to.iter().any(|t| t.eq_ignore_ascii_case(extra)) {
                to.push(extra.clone());
            }
        }
        if !to.is_empty() {
            if let Err(err) = send_email(e, &to, &d.note) {
                tracing::error!(host = %e.host, event = d.note.event, error = %err, "e-mail notification failed");
                ok = false;
            }
        }
    }
    ok
}

impl Notifier {
    pub fn from_settings(s: &MonitorSettings) -> Notifier {
        let mut n = Notifier {
            webhook: s.webhook.clone(),
            email: s.email.clone(),
            queue: None,
            pending: Default::default(),
        };
        if n.webhook.is_some() || n.email.is_some() {
            let (tx, rx) = std::sync::mpsc::channel::<Delivery>();
            let (webhook, email, pending) = (n.webhook.clone(), n.email.clone(), n.pending.clone());
            let spawned = std::thread::Builder::new()
                .name("notify".into())
                .spawn(move || {
                    for mut d in rx {
                        let ok = deliver(webhook.as_ref(), email.as_ref(), &d);
                        if let Some(done) = d.done.take() {
                            done(ok);
                        }
                        let (count, idle) = &*pending;
                        let mut c = crate::sync::lock(count);
                        *c = c.saturating_sub(1);
                        idle.notify_all();
                    }
                });
            if spawned.is_ok() {
                n.queue = Some(tx);
            }
        }
        n
    }

    /// Log the notification and queue it for the webhook and e-mail.
    pub fn send(&self, n: Notification) {
        self.send_with(n, Vec::new(), None);
    }

    /// Log the notification and queue it for the webhook and e-mail, mailing `extra_to`
    /// as well; `done` learns whether every configured notifier took it (at once, `true`,
    /// when none is configured: the log line is then the delivery).
    pub fn send_with(&self, n: Notification, extra_to: Vec<String>, done: Option<Done>) {
        // The id itself, or "-": not `Some("tok_…")` in the log line.
        let token_id = n.token_id.as_deref().unwrap_or("-");
        match n.severity {
            Severity::Critical => {
                tracing::error!(event = n.event, client_id = %n.client_id, token_id = %token_id, "{}", n.text)
            }
            Severity::Warning => {
                tracing::warn!(event = n.event, client_id = %n.client_id, token_id = %token_id, "{}", n.text)
            }
            Severity::Info => {
                tracing::info!(event = n.event, client_id = %n.client_id, token_id = %token_id, "{}", n.text)
            }
        }
        if !extra_to.is_empty() && self.email.is_none() {
            tracing::warn!(client_id = %n.client_id, event = n.event, "the client has alert e-mail addresses but no smtp_host is set: nothing is mailed");
        }
        let Some(q) = &self.queue else {
            if let Some(done) = done {
                done(true);
            }
            return;
        };
        let (count, _) = &*self.pending;
        *crate::sync::lock(count) += 1;
        if let Err(std::sync::mpsc::SendError(mut d)) = q.send(Delivery {
            note: n,
            extra_to,
            done,
        }) {
            *crate::sync::lock(count) -= 1;
            if let Some(done) = d.done.take() {
                done(false);
            }
        }
    }

    /// Wait (at most `limit`) until every queued notification was delivered or gave up.
    pub fn wait_idle(&self, limit: StdDuration) {
        let (count, done) = &*self.pending;
        let guard = crate::sync::lock(count);
        let _ = done.wait_timeout_while(guard, limit, |c| *c > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log line names the token id itself (`token_id=tok_…`), not `Some("tok_…")`.
    #[test]
    fn log_line_shows_the_token_id_plainly() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let settings = crate::settings::Settings::resolve(crate::settings::RawSettings::default())
            .unwrap()
            .monitor;
        let notifier = Notifier::from_settings(&settings);
        let n = |token_id: Option<&str>| Notification {
            event: "state_change",
            severity: Severity::Warning,
            client_id: "cl_1".into(),
            client_name: "c".into(),
            token_id: token_id.map(str::to_string),
            text: "late".into(),
            at: 0,
            details: Value::Null,
            lines: Vec::new(),
        };
        tracing::subscriber::with_default(subscriber, || {
            notifier.send(n(Some("tok_00mwtjqmmkml97dndqoa")));
            notifier.send(n(None));
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("token_id=tok_00mwtjqmmkml97dndqoa"), "{out}");
        assert!(out.contains("token_id=-"), "{out}");
        assert!(!out.contains("Some("), "{out}");
    }

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
