//! One-shot messages after an action ("材料已公开", "您已安全退出"): the redirect that follows a
//! form carries the message in a short-lived cookie, the next page shows it once at the top
//! (`role="status"`, so screen readers announce it), and the answer of that page clears it.
//!
//! The cookie holds a catalog key of the `flash.` section and its arguments, never text: a
//! forged cookie can only show one of the portal's own messages, escaped like any other text.

use std::cell::RefCell;

use actix_web::HttpResponse;
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// The cookie that carries a message to the next page.
pub const COOKIE: &str = "portal-flash";

/// A message for the next page: a key of the catalog's `flash.` section and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    key: String,
    args: Vec<(String, String)>,
}

impl Flash {
    /// The message `flash.<name>`.
    pub fn new(name: &str) -> Self {
        Flash {
            key: format!("flash.{name}"),
            args: Vec::new(),
        }
    }

    /// With `%{name}` in the message replaced by `value`.
    pub fn with(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.args.push((name.to_owned(), value.to_string()));
        self
    }

    fn encode(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.append_pair("k", &self.key);
        for (name, value) in &self.args {
            out.append_pair(name, value);
        }
        out.finish()
    }

    /// A cookie's message, if it names one of the catalog's `flash.` messages (anything else
    /// is ignored: a message the portal never sends is not shown).
    fn decode(value: &str) -> Option<Flash> {
        let mut key = None;
        let mut args = Vec::new();
        for (name, value) in url::form_urlencoded::parse(value.as_bytes()) {
            if name == "k" {
                key = Some(value.into_owned());
            } else if args.len() < 8 {
                args.push((name.into_owned(), value.chars().take(200).collect()));
            }
        }
        let key = key.filter(|k| {
            k.strip_prefix("flash.").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            }) && crate::i18n::Locale::Zh.t(k) != k.as_str()
        })?;
        Some(Flash { key, args })
    }

    /// With `%{name}` replaced by `date`, shown in the format of the page's language.
    pub fn with_date(self, name: &str, date: time::Date) -> Self {
        self.with(name, date)
    }

    /// The message in `locale` (an argument that is a date, `YYYY-MM-DD`, in its format: the
    /// message may be shown in another language than the action's).
    pub fn text(&self, locale: crate::i18n::Locale) -> String {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let args: Vec<(&str, String)> = self
            .args
            .iter()
            .map(|(n, v)| {
                let shown =
                    time::Date::parse(v, &format).map_or_else(|_| v.clone(), |d| locale.date(d));
                (n.as_str(), shown)
            })
            .collect();
        let args: Vec<(&str, &str)> = args.iter().map(|(n, v)| (*n, v.as_str())).collect();
        locale.tf(&self.key, &args)
    }

    /// The cookie that carries this message to the next page (a minute at most). Not marked
    /// `Secure`: it carries nothing secret, and error answers (an expired session) set it
    /// without knowing how the portal is served.
    pub fn cookie(&self) -> Cookie<'static> {
        Cookie::build(COOKIE, self.encode())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(Duration::seconds(60))
            .finish()
    }
}

/// `303 See Other` to `location`, carrying `flash` to the page there.
pub fn see_other(location: &str, flash: Flash) -> HttpResponse {
    let mut res = super::see_other(location);
    flash.attach(&mut res);
    res
}

impl Flash {
    /// Sets the cookie on `res` (a cookie this module built always encodes: plain ASCII).
    pub fn attach(&self, res: &mut HttpResponse) {
        let _ = res.add_cookie(&self.cookie());
    }
}

tokio::task_local! {
    static PENDING: RefCell<Pending>;
}

#[derive(Default)]
struct Pending {
    flash: Option<Flash>,
    shown: bool,
}

/// The message this request's page is to show, taken (a page shows it once).
pub fn take() -> Option<Flash> {
    PENDING
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let flash = p.flash.take();
            p.shown |= flash.is_some();
            flash
        })
        .ok()
        .flatten()
}

/// Middleware: a `GET` that brings a message makes it available to its page ([`take`]); once a
/// page has shown it, the answer clears the cookie.
pub async fn show_once(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let flash = (req.method() == Method::GET)
        .then(|| req.cookie(COOKIE))
        .flatten()
        .map(|c| Flash::decode(c.value()));
    let Some(flash) = flash else {
        return next.call(req).await;
    };
    let pending = RefCell::new(Pending {
        flash,
        shown: false,
    });
    let (mut res, shown) = PENDING
        .scope(pending, async move {
            let res = next.call(req).await;
            let shown = PENDING.with(|p| p.borrow().shown);
            (res, shown)
        })
        .await;
    if shown && let Ok(res) = res.as_mut() {
        let mut gone = Cookie::build(COOKIE, "").path("/").finish();
        gone.make_removal();
        let _ = res.response_mut().add_cookie(&gone);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_its_cookie_and_a_forged_one_is_ignored() {
        let flash = Flash::new("released").with("title", "现场图 & <b>");
        assert_eq!(Flash::decode(&flash.encode()), Some(flash));
        assert_eq!(Flash::decode("k=error.not_found.title"), None);
        assert_eq!(Flash::decode("k=flash.no_such_message"), None);
        assert_eq!(Flash::decode("k=flash."), None);
        assert_eq!(Flash::decode("title=x"), None);
    }
}
