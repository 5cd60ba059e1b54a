//! What is shown once — the access code of a printed notice, a new API token — on a page that a
//! reload cannot repeat: the action that makes it answers `303` to a page of its own, carrying
//! the secret sealed (AES-256-GCM under a key derived from the server key, bound to that page's
//! path) in a two-minute cookie that only that path receives. The page shows the secret and
//! clears the cookie; reloaded, it shows itself without the secret and says how to get a new one.
//! Nothing is stored in clear anywhere, and no second account or token is ever made by a reload.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;

use crate::keys::ServerKey;

/// The cookie that carries a sealed secret to its page.
pub const COOKIE: &str = "portal-once";

fn key(server: &ServerKey) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, &server.derive("shown-once"))
        .ok()
        .map(LessSafeKey::new)
}

/// The cookie that takes `secret` to the page at `path` (and nowhere else).
pub fn seal(server: &ServerKey, path: &str, secret: &str, secure: bool) -> Option<Cookie<'static>> {
    let key = key(server)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let mut sealed = secret.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(path.as_bytes()),
        &mut sealed,
    )
    .ok()?;
    let mut value = nonce.to_vec();
    value.extend_from_slice(&sealed);
    Some(
        Cookie::build(
            COOKIE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
        )
        .path(path.to_owned())
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(Duration::seconds(120))
        .finish(),
    )
}

/// The secret sealed for this request's path, if the request brings one.
pub fn open(server: &ServerKey, req: &HttpRequest) -> Option<String> {
    let cookie = req.cookie(COOKIE)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cookie.value())
        .ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut sealed = sealed.to_vec();
    let plain = key(server)?
        .open_in_place(nonce, Aad::from(req.path().as_bytes()), &mut sealed)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// The cookie that takes a new access code (and its expiry) to the page at `path`.
pub fn seal_code(
    server: &ServerKey,
    path: &str,
    code: &crate::auth::access_code::IssuedCode,
    secure: bool,
) -> Option<Cookie<'static>> {
    let secret = format!("{}|{}", code.code, code.expires_at.unix_timestamp());
    seal(server, path, &secret, secure)
}

/// The access code (and its expiry) sealed for this request's path, if any.
pub fn open_code(server: &ServerKey, req: &HttpRequest) -> Option<(String, time::OffsetDateTime)> {
    let sealed = open(server, req)?;
    let (code, expires) = sealed.split_once('|')?;
    let expires = time::OffsetDateTime::from_unix_timestamp(expires.parse().ok()?).ok()?;
    Some((code.to_owned(), expires))
}

/// The cookie that clears a shown secret (same path as the one that brought it).
pub fn cleared(path: &str) -> Cookie<'static> {
    let mut gone = Cookie::build(COOKIE, "").path(path.to_owned()).finish();
    gone.make_removal();
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_opens_only_on_its_own_page_and_under_its_own_key() {
        let server = ServerKey::for_tests(1);
        let path = "/staff/cases/a/parties/b/notice";
        let cookie = seal(&server, path, "K7Q2-M9XD", false).unwrap();
        assert_eq!(cookie.path(), Some(path));
        let req = |p: &str, value: &str| {
            actix_web::test::TestRequest::get()
                .uri(p)
                .cookie(Cookie::new(COOKIE, value.to_owned()))
                .to_http_request()
        };
        assert_eq!(
            open(&server, &req(path, cookie.value())).as_deref(),
            Some("K7Q2-M9XD")
        );
        let elsewhere = "/staff/cases/a/parties/c/notice";
        assert_eq!(open(&server, &req(elsewhere, cookie.value())), None);
        assert_eq!(
            open(&ServerKey::for_tests(2), &req(path, cookie.value())),
            None
        );
        let mut tampered = cookie.value().to_owned();
        tampered.pop();
        assert_eq!(open(&server, &req(path, &tampered)), None);
        assert_eq!(open(&server, &req(path, "")), None);
    }
}
