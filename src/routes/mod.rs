//! HTTP routes: one module per area, thin handlers, one template struct per page.

pub mod health;
pub mod public;
pub mod static_files;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, Resource, Route, guard, web};
use askama::Template;

use crate::error::{AppError, AppResult};

/// What every page's layout (`templates/base.html`) needs.
pub struct Layout {
    pub css_url: &'static str,
    pub emblem_url: &'static str,
}

impl Layout {
    pub fn new() -> Self {
        Layout {
            css_url: crate::assets::url("portal.css"),
            emblem_url: crate::assets::url("emblem.svg"),
        }
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

/// Every route of the portal. Tests read the list back from here.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/").route(get().to(public::view_landing_get)))
        .service(resource("/healthz").route(get().to(health::healthz)))
        .service(resource("/readyz").route(get().to(health::readyz)))
        .service(resource("/static/{hash}/{name}").route(get().to(static_files::asset)));
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
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(page.render()?))
}
