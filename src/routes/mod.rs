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
pub mod errors;
pub mod flash;
pub mod health;
pub mod inbox;
pub mod once;
pub mod public;
pub mod review;
pub mod second_factor;
pub mod staff;
pub mod static_files;
pub mod uploads;
pub mod verify;

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
    /// What the last action did, shown once at the top of this page (`flash`).
    pub flash: Option<String>,
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
        let here = crate::telemetry::RequestContext::current()
            .map(|c| c.path)
            .filter(|p| p.starts_with('/') && !p.starts_with("/language"))
            .unwrap_or_else(|| "/".to_owned());
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        Layout {
            css_url: crate::assets::url("portal.css"),
            emblem_url: crate::assets::url("emblem.svg"),
            scripts: Vec::new(),
            user: None,
            locale,
            switch_url: format!("/language?to={}&next={next}", other.code()),
            flash: flash::take().map(|f| f.text(locale)),
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
            ..Layout::new()
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

/// One path of the portal: the methods it answers and how its resource is built.
pub struct RouteSpec {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    build: fn(Resource) -> Resource,
}

/// Every route of the portal, in matching order. `configure` registers exactly these, and the
/// authorisation matrix test reads this list, so a route added without a matrix entry fails it.
///
/// actix-web tries the routes in this order, testing each pattern with parameters as a regular
/// expression: the bytes of evidence, the busiest route, come first (no other pattern has its
/// five segments), so its requests do not pay for the regular expressions of the routes above it
/// (~5 % of a 20 KiB download's CPU when it came twenty-second).
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        path: "/cases/{id}/materials/{material_id}/{mode}",
        methods: &["GET"],
        build: |r| r.route(get().to(content::material_content_get)),
    },
    RouteSpec {
        path: "/",
        methods: &["GET"],
        build: |r| r.route(get().to(public::view_landing_get)),
    },
    RouteSpec {
        path: "/healthz",
        methods: &["GET"],
        build: |r| r.route(get().to(health::healthz)),
    },
    RouteSpec {
        path: "/readyz",
        methods: &["GET"],
        build: |r| r.route(get().to(health::readyz)),
    },
    RouteSpec {
        path: "/static/{hash}/{name}",
        methods: &["GET"],
        build: |r| r.route(get().to(static_files::asset)),
    },
    RouteSpec {
        path: "/verify",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(verify::view_verify_get))
                .route(web::post().to(verify::view_verify_post))
        },
    },
    RouteSpec {
        path: "/.well-known/evidence-portal/manifest-key.pem",
        methods: &["GET"],
        build: |r| r.route(get().to(bundles::manifest_key_pem)),
    },
    RouteSpec {
        path: "/.well-known/jwks.json",
        methods: &["GET"],
        build: |r| r.route(get().to(bundles::jwks)),
    },
    RouteSpec {
        path: "/language",
        methods: &["GET"],
        build: |r| r.route(get().to(public::language_get)),
    },
    RouteSpec {
        path: "/apply",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(apply::view_apply_get))
                .route(web::post().to(apply::apply_post))
        },
    },
    RouteSpec {
        path: "/apply/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(apply::view_apply_status_get)),
    },
    RouteSpec {
        path: "/apply/{id}/voucher",
        methods: &["POST"],
        build: |r| r.route(web::post().to(apply::apply_voucher_post)),
    },
    RouteSpec {
        path: "/login",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(auth::view_login_get))
                .route(web::post().to(auth::view_login_post))
        },
    },
    RouteSpec {
        path: "/login/second-factor",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(second_factor::view_challenge_get))
                .route(web::post().to(second_factor::challenge_post))
        },
    },
    RouteSpec {
        path: "/account/second-factor",
        methods: &["GET"],
        build: |r| r.route(get().to(second_factor::view_manage_get)),
    },
    RouteSpec {
        path: "/account/second-factor/totp",
        methods: &["POST"],
        build: |r| r.route(web::post().to(second_factor::totp_begin_post)),
    },
    RouteSpec {
        path: "/account/second-factor/totp/confirm",
        methods: &["POST"],
        build: |r| r.route(web::post().to(second_factor::totp_confirm_post)),
    },
    RouteSpec {
        path: "/account/second-factor/{id}/remove",
        methods: &["POST"],
        build: |r| r.route(web::post().to(second_factor::remove_post)),
    },
    RouteSpec {
        path: "/logout",
        methods: &["POST"],
        build: |r| r.route(web::post().to(auth::logout_post)),
    },
    RouteSpec {
        path: "/activate",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(auth::view_activate_get))
                .route(web::post().to(auth::view_activate_post))
        },
    },
    RouteSpec {
        path: "/account",
        methods: &["GET"],
        build: |r| r.route(get().to(account::view_account_get)),
    },
    RouteSpec {
        path: "/account/password",
        methods: &["POST"],
        build: |r| r.route(web::post().to(account::password_post)),
    },
    RouteSpec {
        path: "/account/tokens",
        methods: &["POST"],
        build: |r| r.route(web::post().to(account::token_create_post)),
    },
    RouteSpec {
        path: "/account/tokens/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(account::token_created_get)),
    },
    RouteSpec {
        path: "/account/tokens/{id}/revoke",
        methods: &["POST"],
        build: |r| r.route(web::post().to(account::token_revoke_post)),
    },
    RouteSpec {
        path: "/account/notifications",
        methods: &["POST"],
        build: |r| r.route(web::post().to(account::notifications_post)),
    },
    RouteSpec {
        path: "/inbox",
        methods: &["GET"],
        build: |r| r.route(get().to(inbox::view_inbox_get)),
    },
    RouteSpec {
        path: "/inbox/read",
        methods: &["POST"],
        build: |r| r.route(web::post().to(inbox::inbox_read_post)),
    },
    RouteSpec {
        path: "/api/whoami",
        methods: &["GET"],
        build: |r| r.route(get().to(api::whoami)),
    },
    RouteSpec {
        path: "/cases",
        methods: &["GET"],
        build: |r| r.route(get().to(cases::view_my_cases_get)),
    },
    RouteSpec {
        path: "/cases/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(cases::view_case_get)),
    },
    RouteSpec {
        path: "/cases/{id}/bundle.zip",
        methods: &["GET"],
        build: |r| r.route(get().to(bundles::bundle_get)),
    },
    RouteSpec {
        path: "/cases/{id}/review",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(review::view_review_get))
                .route(web::post().to(review::review_file_post))
        },
    },
    RouteSpec {
        path: "/cases/{id}/materials/{material_id}",
        methods: &["GET"],
        build: |r| r.route(get().to(cases::view_material_get)),
    },
    RouteSpec {
        path: "/staff",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_queue_get)),
    },
    RouteSpec {
        path: "/staff/audit",
        methods: &["GET"],
        build: |r| r.route(get().to(audit::view_audit_get)),
    },
    RouteSpec {
        path: "/staff/audit.csv",
        methods: &["GET"],
        build: |r| r.route(get().to(audit::audit_csv_get)),
    },
    RouteSpec {
        path: "/admin/audit/verify",
        methods: &["POST"],
        build: |r| r.route(web::post().to(audit::audit_verify_post)),
    },
    RouteSpec {
        path: "/staff/cases",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(staff::view_cases_get))
                .route(web::post().to(staff::case_create_post))
        },
    },
    RouteSpec {
        path: "/staff/cases/new",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_case_new_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_case_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/edit",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(staff::view_case_edit_get))
                .route(web::post().to(staff::case_edit_post))
        },
    },
    RouteSpec {
        path: "/staff/cases/{id}/upload",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_upload_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/status",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::case_status_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/milestones",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::milestone_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/parties",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::party_register_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/parties/{party_id}/notice",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::party_notice_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/parties/{party_id}/code",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::party_code_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/parties/{party_id}/reset",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::party_reset_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/delegations",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::delegation_grant_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/delegations/{delegation_id}/notice",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::delegation_notice_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/delegations/{delegation_id}/revoke",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::delegation_revoke_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/materials",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::material_upload_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/release",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::materials_release_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/materials/{material_id}/{decision}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::material_decide_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/reviews/{application_id}/{step}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::review_step_post)),
    },
    RouteSpec {
        path: "/staff/applications",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_ledger_get)),
    },
    RouteSpec {
        path: "/staff/applications.csv",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::ledger_csv_get)),
    },
    RouteSpec {
        path: "/staff/applications/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_access_application_get)),
    },
    RouteSpec {
        path: "/staff/applications/{id}/proof",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::access_proof_get)),
    },
    RouteSpec {
        path: "/staff/applications/{id}/{decision}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::access_decide_post)),
    },
    RouteSpec {
        path: "/admin",
        methods: &["GET"],
        build: |r| r.route(get().to(admin::view_admin_get)),
    },
    RouteSpec {
        path: "/admin/departments",
        methods: &["POST"],
        build: |r| r.route(web::post().to(admin::department_create_post)),
    },
    RouteSpec {
        path: "/admin/departments/{id}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(admin::department_contact_post)),
    },
    RouteSpec {
        path: "/admin/accounts",
        methods: &["POST"],
        build: |r| r.route(web::post().to(admin::account_create_post)),
    },
    RouteSpec {
        path: "/admin/accounts/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(admin::account_code_get)),
    },
    RouteSpec {
        path: "/admin/accounts/{id}/{action}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(admin::account_action_post)),
    },
];

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

/// Times shown to people: China Standard Time.
pub fn cst(t: time::OffsetDateTime) -> String {
    crate::i18n::Locale::current().time(t)
}
