//! One attempt at a webhook: a POST of the event's JSON with shoal's headers, signed when the
//! webhook has a secret; a 2xx answer delivers it. Redirects are not followed.

use hmac::{Hmac, Mac as _};
use reqwest::header::CONTENT_TYPE;
use sha2::Sha256;

use super::NotifyError;
use super::queue::Job;
use super::{DeliveryError, WebhookTarget, hex};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("shoal/", env!("CARGO_PKG_VERSION"));

/// The client every webhook shares; `roots`, when given, are the only CAs it trusts (tests).
pub(super) fn client(roots: Vec<reqwest::Certificate>) -> Result<reqwest::Client, NotifyError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none());
    if !roots.is_empty() {
        builder = builder.tls_certs_only(roots);
    }
    builder
        .build()
        .map_err(|e| NotifyError::Client(chain(&e.without_url())))
}

/// A webhook and the client that posts to it.
pub(super) struct Webhook {
    target: WebhookTarget,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(target: WebhookTarget, client: reqwest::Client) -> Self {
        Self { target, client }
    }

    pub fn target(&self) -> &WebhookTarget {
        &self.target
    }

    /// POSTs `job`'s event once, within the webhook's timeout.
    pub async fn post(&self, job: &Job) -> Result<(), DeliveryError> {
        let timestamp = crate::clock::unix_now().to_string();
        let body = &job.event.body;
        let mut request = (self.client.post(self.target.url.clone()))
            .timeout(self.target.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header("X-Shoal-Event", job.event.kind.as_str())
            .header("X-Shoal-Delivery", job.id.as_str())
            .header("X-Shoal-Timestamp", timestamp.as_str());
        if let Some(secret) = &self.target.secret {
            let signature = signature(secret.key(), &timestamp, body).ok_or(DeliveryError::Sign)?;
            request = request.header("X-Shoal-Signature", signature);
        }
        let response = request.body(body.clone()).send().await.map_err(|e| {
            if e.is_timeout() {
                DeliveryError::Timeout(self.target.timeout)
            } else {
                DeliveryError::Request(chain(&e.without_url()))
            }
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status(status.as_u16()))
        }
    }
}

/// `X-Shoal-Signature`: `sha256=` and the hex of HMAC-SHA256 under `key` of
/// `<timestamp>.<body>`.
pub(super) fn signature(key: &[u8], timestamp: &str, body: &[u8]) -> Option<String> {
    // HMAC takes a key of any length: this never fails.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("sha256={}", hex(&mac.finalize().into_bytes())))
}

/// `error` and its causes, each said once.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::process::{Command, Stdio};

    use shoal_shared::history::{EventKind, FleetEvent};

    use super::super::testing::{
        Answer, Receiver, WAIT, event, quick, stats_until, tls_for_localhost, webhook,
    };
    use super::super::{Counts, Events, Notifications, NotifySettings, Secret};
    use super::*;

    /// HMAC-SHA256 of `data` under `key` as `openssl dgst` computes it, in hex.
    fn openssl_hmac(key: &str, data: &[u8]) -> String {
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-hmac", key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(data)
            .expect("write");
        let out = child.wait_with_output().expect("openssl ends");
        // `SHA2-256(stdin)= <hex>`
        let text = String::from_utf8(out.stdout).expect("text");
        text.rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    #[tokio::test]
    async fn each_event_is_posted_once_with_its_headers_and_a_signature_that_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_file = dir.path().join("hook.secret");
        std::fs::write(&secret_file, "s3cr3t-key\n").expect("write");
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let mut everything = Receiver::start(&[], Answer::Status(204));
        let mut completions = Receiver::start(&[], Answer::Status(200));
        let completed = Events::parse(&["completed".to_owned()]).expect("an event name");
        let settings = NotifySettings {
            webhooks: vec![
                WebhookTarget {
                    secret: Some(Secret::load(&secret_file).expect("a private secret")),
                    ..webhook(everything.url("/hooks/shoal?team=ops"))
                },
                WebhookTarget {
                    events: completed,
                    ..webhook(completions.url("/done"))
                },
            ],
            ..NotifySettings::default()
        };
        let notifications = Notifications::start_with(&settings, quick(1)).expect("start");
        let halted = event(EventKind::Halted, 1);
        notifications.send(&halted);
        let request = everything.next(WAIT).await.expect("the halted event");
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks/shoal?team=ops");
        assert_eq!(request.header("content-type"), Some("application/json"));
        let agent = concat!("shoal/", env!("CARGO_PKG_VERSION"));
        assert_eq!(request.header("user-agent"), Some(agent));
        assert_eq!(request.header("x-shoal-event"), Some("halted"));
        let id = request.header("x-shoal-delivery").expect("a delivery id");
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        let timestamp = request.header("x-shoal-timestamp").expect("a timestamp");
        let seconds: i64 = timestamp.parse().expect("unix seconds");
        assert!((seconds - crate::clock::unix_now()).abs() < 60, "{seconds}");
        let sent: FleetEvent = serde_json::from_slice(&request.body).expect("the event");
        assert_eq!(sent, halted);
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(&request.body);
        let expected = format!("sha256={}", openssl_hmac("s3cr3t-key", &signed));
        assert_eq!(request.header("x-shoal-signature"), Some(expected.as_str()));

        notifications.send(&event(EventKind::Completed, 1));
        // Deliveries go in order: had the filter let the halted event through, it would come
        // to the second webhook before this one.
        let done = completions.next(WAIT).await.expect("the completed event");
        assert_eq!(done.header("x-shoal-event"), Some("completed"));
        assert_eq!(
            done.header("x-shoal-signature"),
            None,
            "no secret, no signature"
        );
        assert_ne!(
            done.header("x-shoal-delivery"),
            Some(id),
            "an id per delivery"
        );
        let again = everything
            .next(WAIT)
            .await
            .expect("completed, to the first too");
        assert_eq!(again.header("x-shoal-event"), Some("completed"));
        let stats = stats_until(|| notifications.stats(), |s| s.webhook.delivered >= 3).await;
        assert_eq!(
            stats.webhook,
            Counts {
                delivered: 3,
                ..Counts::default()
            }
        );
        assert!(completions.pending().is_none() && everything.pending().is_none());
    }

    #[tokio::test]
    async fn https_webhooks_are_posted_over_tls_to_a_trusted_server_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tls, ca) = tls_for_localhost(dir.path());
        let mut receiver = Receiver::start_tls(&[], Answer::Status(200), tls);
        let settings = NotifySettings {
            webhooks: vec![webhook(receiver.url("/hook"))],
            ..NotifySettings::default()
        };
        let trusting = client(vec![ca]).expect("client");
        let (notifications, delivery) = Notifications::build(&settings, quick(1), trusting);
        notifications
            .spawn(delivery.expect("a target"))
            .expect("spawn");
        notifications.send(&event(EventKind::Completed, 7));
        let request = receiver.next(WAIT).await.expect("a request over TLS");
        assert_eq!(request.json()["deployment"], "d-7");

        // The CA is not the system's: the default client refuses the server.
        let untrusting = Notifications::start_with(&settings, quick(1)).expect("start");
        untrusting.send(&event(EventKind::Completed, 8));
        let stats = stats_until(|| untrusting.stats(), |s| s.webhook.failed > 0).await;
        assert_eq!(stats.webhook.failed, 1, "{stats:?}");
        assert!(receiver.pending().is_none(), "no request without trust");
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let one = signature(b"key", "1700000000", b"{}").expect("signed");
        assert_eq!(
            one,
            format!("sha256={}", openssl_hmac("key", b"1700000000.{}"))
        );
        assert_ne!(signature(b"key", "1700000001", b"{}"), Some(one.clone()));
        assert_ne!(signature(b"key", "1700000000", b"{ }"), Some(one));
    }
}
