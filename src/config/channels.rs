//! The settings of the channels people are told by: e-mail (SMTP) and the SMS gateway, each
//! a pair of settings set together or not at all, and shown in logs without their secrets.

use url::Url;

use super::ConfigError;

/// Where SMS go and the secret their requests are signed with.
#[derive(Clone)]
pub struct SmsSettings {
    pub url: Url,
    pub secret: String,
}

/// Where e-mail goes (`smtp://` or `smtps://`, with any credentials in the URL) and from whom.
#[derive(Clone)]
pub struct SmtpSettings {
    pub url: String,
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => self.url.clone(),
        };
        f.debug_struct("SmtpSettings")
            .field("url", &shown)
            .field("from", &self.from)
            .finish()
    }
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSettings")
            .field("url", &self.url.as_str())
            .field("secret", &"***")
            .finish()
    }
}

/// The e-mail settings: both the server (`PORTAL_SMTP_URL`) and the sender (`PORTAL_MAIL_FROM`),
/// or neither (no e-mail). Each as picked: (where it was read, its value).
pub(super) fn smtp_settings(
    url: Option<(String, String)>,
    from: Option<(String, String)>,
) -> Result<Option<SmtpSettings>, ConfigError> {
    Ok(match (url, from) {
        (None, None) => None,
        (Some((name, url)), from) => {
            let url = url.trim().to_owned();
            let parsed = Url::parse(&url).ok().filter(|u| {
                matches!(u.scheme(), "smtp" | "smtps")
                    && u.host_str().is_some_and(|h| !h.is_empty())
            });
            if parsed.is_none() {
                return Err(ConfigError::new(
                    &name,
                    "must be smtp://[user:pass@]host[:port][?tls=required] or smtps://…",
                ));
            }
            let Some((from_name, from)) = from else {
                return Err(ConfigError::new(
                    "PORTAL_MAIL_FROM",
                    "must be set with PORTAL_SMTP_URL: the sender, such as Evidence Portal <noreply@example.gov.cn>",
                ));
            };
            if from.trim().parse::<lettre::message::Mailbox>().is_err() {
                return Err(ConfigError::new(
                    &from_name,
                    "is not an e-mail sender such as Name <noreply@example.gov.cn>",
                ));
            }
            Some(SmtpSettings {
                url,
                from: from.trim().to_owned(),
            })
        }
        (None, Some((name, _))) => {
            return Err(ConfigError::new(&name, "needs PORTAL_SMTP_URL as well"));
        }
    })
}

/// The SMS gateway settings: both its URL (`PORTAL_SMS_URL`) and the shared secret
/// (`PORTAL_SMS_SECRET`), or neither (no SMS). Each as picked: (where it was read, its value).
pub(super) fn sms_settings(
    url: Option<(String, String)>,
    secret: Option<(String, String)>,
) -> Result<Option<SmsSettings>, ConfigError> {
    Ok(match (url, secret) {
        (None, None) => None,
        (Some((name, url)), secret) => {
            let url = Url::parse(url.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    ConfigError::new(&name, "must be the gateway's http:// or https:// URL")
                })?;
            let Some((_, secret)) = secret.filter(|(_, s)| s.trim().len() >= 16) else {
                return Err(ConfigError::new(
                    "PORTAL_SMS_SECRET",
                    "must be set with PORTAL_SMS_URL: the shared signing secret, at least 16 characters",
                ));
            };
            Some(SmsSettings {
                url,
                secret: secret.trim().to_owned(),
            })
        }
        (None, Some((name, _))) => {
            return Err(ConfigError::new(&name, "needs PORTAL_SMS_URL as well"));
        }
    })
}
