//! HTTP routes: one module per area, thin handlers, one template struct per page.

pub mod account;
pub mod admin;
pub mod api;
pub mod apply;
pub mod audit;
pub mod auth;
pub mod bundles;
pub mod cases;
pub mod confirm;
pub mod content;
pub mod custody;
pub mod deadline;
pub mod errors;
pub mod flash;
pub mod health;
pub mod inbox;
pub mod once;
pub mod passkeys;
pub mod public;
pub mod rendered;
pub mod review;
pub mod second_factor;
pub mod staff;
pub mod static_files;
mod table;
pub mod trace;
pub mod uploads;
pub mod verify;
pub mod video;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, Resource, Route, guard, web};
use askama::Template;

use crate::error::{AppError, AppResult};
use crate::vocab::Role;

/// What every page's layout (`templates/base.html`) needs.
pub struct Layout {
    pub css_url: &'static str,
    pub emblem_url: &'static str,
    /// Page scripts to load (versioned URLs); most pages have none.
    pub scripts: Vec<&'static str>,
    /// The signed-in person's bar (name, role, sign-out form), if any.
    pub user: Option<UserBar>,
    /// The language of the page.
    pub locale: crate::i18n::Locale,
    /// Where the language switch leads: `/language?to=…&next=<this page>`.
    pub switch_url: String,
    /// The care mode (长辈版) is on: `class="care"` on `<html>`, large text and targets.
    pub care: bool,
    /// Where the care-mode switch leads: `/care?to=on|off&next=<this page>`.
    pub care_url: String,
    /// What the last action did, shown once at the top of this page (`flash`).
    pub flash: Option<String>,
    /// Seconds a session lasts unused: signed in, `static/session.js` warns two minutes before.
    pub idle_seconds: i64,
}

pub struct UserBar {
    pub name: String,
    /// "王立（民警）" / "王立 (officer)".
    pub label: String,
    pub role_label: String,
    pub csrf_token: String,
    pub home: &'static str,
    /// Staff and administrators read the audit log.
    pub audit: bool,
    /// "消息" or "消息（3条未读）": the inbox link, with the unread count kept on the account.
    pub inbox: String,
    pub unread: bool,
}

impl Layout {
    pub fn new() -> Self {
        let locale = crate::i18n::Locale::current();
        let other = match locale {
            crate::i18n::Locale::Zh => crate::i18n::Locale::En,
            crate::i18n::Locale::En => crate::i18n::Locale::Zh,
        };
        let context = crate::telemetry::RequestContext::current();
        let care = context.as_ref().is_some_and(|c| c.care);
        let here = context
            .map(|c| c.path)
            .filter(|p| {
                let switch = p.starts_with("/language") || p == "/care" || p.starts_with("/care?");
                p.starts_with('/') && !switch
            })
            .unwrap_or_else(|| "/".to_owned());
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        Layout {
            css_url: crate::assets::url("portal.css"),
            emblem_url: crate::assets::url("emblem.svg"),
            scripts: Vec::new(),
            user: None,
            locale,
            switch_url: format!("/language?to={}&next={next}", other.code()),
            care,
            care_url: format!("/care?to={}&next={next}", if care { "off" } else { "on" }),
            flash: flash::take().map(|f| f.text(locale)),
            idle_seconds: crate::auth::session::IDLE_TIMEOUT.whole_seconds(),
        }
    }

    /// The text of catalog `key` in the page's language.
    pub fn t(&self, key: &str) -> std::borrow::Cow<'static, str> {
        self.locale.t(key)
    }

    /// The text of catalog `key` with `%{name}` replaced by `value`.
    pub fn tf(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        self.locale.tf(key, &[(name, &value.to_string())])
    }

    pub fn for_user(user: &crate::auth::CurrentUser) -> Self {
        let mut layout = Layout::new();
        // Every signed-in page: the idle warning, and "朗读" where a page offers it.
        layout.scripts.push(crate::assets::url("session.js"));
        layout.scripts.push(crate::assets::url("speak.js"));
        // Signed in, the care mode is the account's (kept by `/care` and at sign-in).
        if layout.care != user.account.care {
            let (from, to) = if layout.care {
                ("to=off", "to=on")
            } else {
                ("to=on", "to=off")
            };
            layout.care_url = layout.care_url.replacen(from, to, 1);
            layout.care = user.account.care;
        }
        Layout {
            user: Some(UserBar {
                name: user.account.display_name.clone(),
                label: crate::i18n::Locale::current().tf(
                    "nav.user",
                    &[
                        ("name", &user.account.display_name),
                        ("role", &crate::i18n::label(user.role())),
                    ],
                ),
                role_label: crate::i18n::label(user.role()),
                csrf_token: user.csrf_token.clone(),
                home: home_for(user.role()),
                audit: matches!(user.role(), Role::Staff | Role::Admin),
                inbox: match user.account.unread_notifications {
                    n if n > 0 => crate::i18n::Locale::current()
                        .tf("inbox.nav_unread", &[("n", &n.to_string())]),
                    _ => crate::i18n::t("inbox.nav"),
                },
                unread: user.account.unread_notifications > 0,
            }),
            ..layout
        }
    }
}

/// One option of a form's list of the domain's words: its stored value and its label.
pub struct Choice {
    pub value: &'static str,
    pub label: String,
}

/// The options of a list of words, labelled in the current request's language.
pub fn choices<W: crate::vocab::Word>(words: &[W]) -> Vec<Choice> {
    let locale = crate::i18n::Locale::current();
    words
        .iter()
        .map(|w| Choice {
            value: w.as_str(),
            label: locale.label(*w),
        })
        .collect()
}

/// Where each role lands after signing in.
pub fn home_for(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Staff => "/staff",
        Role::Party | Role::Agent | Role::Owner | Role::Insurer => "/cases",
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

pub use table::{ROUTES, RouteSpec};

/// Registers every route of [`ROUTES`]. Each resource catches its handlers' panics (a logged
/// 500 page instead of a dropped connection) and must start its answer within the deadline
/// (`limits::answer_in_time`); both wrap after routing, where the request may be held on to.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for spec in ROUTES {
        cfg.service(
            (spec.build)(resource(spec.path))
                .wrap(actix_web::middleware::from_fn(errors::catch_panics))
                .wrap(actix_web::middleware::from_fn(
                    crate::limits::answer_in_time,
                )),
        );
    }
}

/// A resource whose unmatched methods answer the portal's 405 page instead of an empty body.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// GET, and HEAD (same headers, no body: actix-web drops the body of HEAD responses).
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

async fn method_not_allowed() -> AppResult<HttpResponse> {
    Err(AppError::MethodNotAllowed)
}

/// The fallback for paths no route matches.
pub async fn not_found() -> AppResult<HttpResponse> {
    Err(AppError::NotFound)
}

/// Renders a page template into a `200 text/html` response.
pub fn render(page: &impl Template) -> AppResult<HttpResponse> {
    render_status(actix_web::http::StatusCode::OK, page)
}

pub fn render_status(
    status: actix_web::http::StatusCode,
    page: &impl Template,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(page.render()?))
}

/// `render` into a buffer of `capacity` bytes: a page whose size is known to be large (a case
/// of 200 materials is ~250 KB) is then written once instead of through a dozen regrowths.
pub fn render_sized(page: &impl Template, capacity: usize) -> AppResult<HttpResponse> {
    let mut html = String::with_capacity(capacity);
    page.render_into(&mut html)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(html))
}

/// `303 See Other` to `location` (after a successful form post).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location.to_owned()))
        .finish()
}

/// A QR code of `data` as inline SVG (drawn here: no outside service sees what it carries), at
/// least `size` pixels square, named `label` for assistive technology.
pub fn qr_svg(data: &str, label: &str, size: u32) -> String {
    let Ok(code) = qrcode::QrCode::new(data.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(size, size)
        .quiet_zone(true)
        .build();
    // Inline in HTML: no XML declaration.
    let start = svg.find("<svg").unwrap_or(0);
    let label = label
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    svg[start..].replacen(
        "<svg",
        &format!(r#"<svg role="img" aria-label="{label}""#),
        1,
    )
}

/// Times shown to people: China Standard Time.
pub fn cst(t: time::OffsetDateTime) -> String {
    crate::i18n::Locale::current().time(t)
}
