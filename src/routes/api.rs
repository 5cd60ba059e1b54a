//! JSON endpoints for `curl` users.

use actix_web::HttpResponse;
use serde::Serialize;

use crate::auth::DownloadUser;

#[derive(Serialize)]
struct WhoAmI<'a> {
    role: crate::vocab::Role,
    login: &'a str,
    name: &'a str,
    via: &'static str,
}

/// `GET /api/whoami`: lets an agent check a personal API token before scripting downloads
/// (`curl -H 'Authorization: Bearer ep_…' …/api/whoami`). Takes the same credentials as the
/// download routes.
pub async fn whoami(user: DownloadUser) -> HttpResponse {
    let via = match &user {
        DownloadUser::Session(_) => "session",
        DownloadUser::Token { .. } => "token",
    };
    let account = user.account();
    HttpResponse::Ok().json(WhoAmI {
        role: account.role,
        login: &account.login_masked,
        name: &account.display_name,
        via,
    })
}
