//! SMS through an HTTP gateway, in the shape the Chinese providers share: a JSON POST naming a
//! template and its parameters, signed with a shared secret. The portal's request:
//!
//! ```text
//! POST {PORTAL_SMS_URL}
//! Content-Type: application/json
//! X-Portal-Timestamp: 1764400000            (Unix seconds)
//! X-Portal-Signature: hex(HMAC-SHA256(PORTAL_SMS_SECRET, "{timestamp}\n{body}"))
//! Idempotency-Key: {key}                     (also `out_id` in the body)
//!
//! {"phone":"13800138000","template":"case.served","lang":"zh-CN","params":{...},"text":"【…】…","out_id":"{key}"}
//! ```
//!
//! `lang` is the recipient's language (`zh-CN` or `en`), the one `text` is written in alone:
//! a relay picks the provider's template registered for that language.
//!
//! A 2xx answer is delivered; 408, 429 and 5xx, a refused connection or no answer within the
//! deadline are tried again later; any other 4xx is final (a wrong number stays wrong). A small
//! relay in front of a provider maps `template` to the provider's own template code and
//! signature scheme (see the README).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// One SMS to send.
pub struct Sms<'a> {
    pub phone: &'a str,
    pub template: &'a str,
    /// The language of `text` (the recipient's).
    pub lang: &'a str,
    pub params: &'a serde_json::Value,
    pub text: &'a str,
    pub key: &'a str,
}

/// What became of a send.
#[derive(Debug)]
pub enum Outcome {
    Delivered,
    /// Try again later; why (no personal data).
    Retry(String),
    /// Do not try again; why.
    Final(String),
}

#[derive(Clone)]
pub struct Gateway {
    url: url::Url,
    secret: String,
    client: reqwest::Client,
}

impl Gateway {
    pub fn new(url: url::Url, secret: String, timeout: std::time::Duration) -> Gateway {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Gateway {
            url,
            secret,
            client,
        }
    }

    pub async fn send(&self, sms: &Sms<'_>, now_unix: i64) -> Outcome {
        let body = serde_json::json!({
            "phone": sms.phone,
            "template": sms.template,
            "lang": sms.lang,
            "params": sms.params,
            "text": sms.text,
            "out_id": sms.key,
        })
        .to_string();
        let signature = sign(&self.secret, now_unix, &body);
        let sent = self
            .client
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .header("X-Portal-Timestamp", now_unix.to_string())
            .header("X-Portal-Signature", signature)
            .header("Idempotency-Key", sms.key)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(res) if res.status().is_success() => Outcome::Delivered,
            Ok(res) => {
                let status = res.status();
                let why = format!("gateway answered {}", status.as_u16());
                if status.is_server_error()
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                {
                    Outcome::Retry(why)
                } else {
                    Outcome::Final(why)
                }
            }
            Err(e) if e.is_timeout() => Outcome::Retry("gateway did not answer in time".into()),
            Err(e) if e.is_connect() => Outcome::Retry("gateway refused the connection".into()),
            Err(_) => Outcome::Retry("gateway request failed".into()),
        }
    }
}

/// The request's signature: hex HMAC-SHA256 of `"{timestamp}\n{body}"` under the shared secret.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = super::sign("s", 1, "{}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, super::sign("s", 2, "{}"));
        assert_ne!(a, super::sign("s", 1, "{ }"));
        assert_ne!(a, super::sign("t", 1, "{}"));
    }
}
