//! Pages anyone may see without signing in.

use actix_web::HttpResponse;
use askama::Template;

use super::{Layout, render};
use crate::error::AppResult;

#[derive(Template)]
#[template(path = "public/landing.html")]
struct LandingPage {
    layout: Layout,
}

/// `GET /`: what the service is and how a party gets access.
pub async fn view_landing_get() -> AppResult<HttpResponse> {
    render(&LandingPage {
        layout: Layout::new(),
    })
}
