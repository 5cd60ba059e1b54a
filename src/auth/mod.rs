//! Identity: login identifiers, passwords, access codes, sessions, CSRF, API tokens, sign-in
//! throttling, and the extractors through which handlers get the signed-in user.

pub mod access_code;
pub mod csrf;
pub mod extract;
pub mod identifier;
pub mod passkeys;
pub mod password;
pub mod second_factor;
pub mod session;
pub mod signin;
pub mod throttle;
pub mod tokens;

pub use extract::{AdminUser, CurrentUser, DownloadUser, PendingUser, StaffUser, signed_in};

/// The client's address and user agent, as recorded with sessions and audit events and used by
/// the sign-in throttle. The address is the TCP peer, unless the peer is one of
/// `PORTAL_TRUSTED_PROXIES`: then it is the nearest `X-Forwarded-For` entry not itself a trusted
/// proxy (a client cannot forge its way past the proxy that appends its real address).
pub fn client_of(req: &actix_web::HttpRequest) -> (Option<String>, Option<String>) {
    let trusted: &[std::net::IpAddr] = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map_or(&[], |s| &s.settings.trusted_proxies);
    let ip = req.peer_addr().map(|a| a.ip()).map(|peer| {
        if !trusted.contains(&peer) {
            return peer;
        }
        let forwarded: Vec<std::net::IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer)
    });
    let ip = ip.map(|a| a.to_string());
    let ua = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (ip, ua)
}
