//! Login identifiers: how each kind is normalised, looked up (by keyed hash) and displayed.

use crate::keys::ServerKey;

/// A staff or admin username: 3–32 of `a-z 0-9 . _ -`, case-insensitive.
pub fn normalise_username(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim().to_ascii_lowercase();
    let ok_len = (3..=32).contains(&name.len());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_chars {
        Ok(name)
    } else {
        Err("用户名须为 3–32 个字符，只能包含小写字母、数字和 . _ - (3–32 of a-z 0-9 . _ -)")
    }
}

/// The look-up key of a normalised identifier: hex HMAC under the server key, so the database
/// never holds a clear ID number and cannot be searched without the key.
pub fn login_key(key: &ServerKey, normalised: &str) -> String {
    hex::encode(key.mac(b"login-identifier", normalised.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalise_username("  Admin.Li ").unwrap(), "admin.li");
        assert!(normalise_username("ab").is_err());
        assert!(normalise_username("li wei").is_err());
        assert!(normalise_username("管理员").is_err());
    }

    #[test]
    fn login_keys_depend_on_the_server_key() {
        let a = login_key(&ServerKey::for_tests(1), "admin");
        let b = login_key(&ServerKey::for_tests(2), "admin");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(a, login_key(&ServerKey::for_tests(1), "admin"));
    }
}
