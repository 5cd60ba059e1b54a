//! Identity: login identifiers, passwords, access codes, sessions, CSRF, API tokens, sign-in
//! throttling, and the extractors through which handlers get the signed-in user.

pub mod access_code;
pub mod csrf;
pub mod extract;
pub mod identifier;
pub mod password;
pub mod session;
pub mod signin;
pub mod throttle;
pub mod tokens;

pub use extract::{AdminUser, CurrentUser, DownloadUser, StaffUser};

/// The client's address (the TCP peer: the portal does not trust forwarding headers) and user
/// agent, as recorded with sessions and audit events.
pub fn client_of(req: &actix_web::HttpRequest) -> (Option<String>, Option<String>) {
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let ua = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (ip, ua)
}
