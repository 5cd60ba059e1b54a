//! E-mail through SMTP (`lettre`): `PORTAL_SMTP_URL` names the server, the encryption and the
//! credentials — `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://…:465` (TLS from
//! the first byte), `smtp://host:25` (plain, for a relay on the same host) — and
//! `PORTAL_MAIL_FROM` the sender. Plain text in the recipient's language, worded as their inbox
//! words it; the delivery's idempotency key is the Message-ID, so a resent message is recognisable as the
//! same one.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::sms::Outcome;

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The Message-ID's domain: the portal's host.
    domain: String,
}

impl Mailer {
    /// A mailer for `url`, or why not (a malformed URL or sender).
    pub fn new(
        url: &str,
        from: &str,
        domain: &str,
        timeout: std::time::Duration,
    ) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("not an SMTP URL: {e}"))?
            .timeout(Some(timeout))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("not a sender address: {e}"))?;
        Ok(Mailer {
            transport,
            from,
            domain: domain.to_owned(),
        })
    }

    pub async fn send(&self, to: &str, subject: &str, text: &str, key: &str) -> Outcome {
        let Ok(to) = to.parse::<Mailbox>() else {
            return Outcome::Final("not an e-mail address".into());
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{key}@{}>", self.domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned());
        let message = match message {
            Ok(m) => m,
            Err(e) => return Outcome::Final(format!("message not built: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Delivered,
            Err(e) if e.is_permanent() => Outcome::Final(format!(
                "mail server refused the message ({})",
                e.status().map(|c| c.to_string()).unwrap_or_default()
            )),
            Err(e) if e.is_timeout() => Outcome::Retry("mail server did not answer in time".into()),
            Err(e) if e.is_transient() => Outcome::Retry(format!(
                "mail server asked to try later ({})",
                e.status().map(|c| c.to_string()).unwrap_or_default()
            )),
            Err(_) => Outcome::Retry("mail server unreachable".into()),
        }
    }
}
