//! Password hashing (argon2id) and the strength rules every new password must meet.

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordVerifier};

/// Why a password was refused; the message is shown to the person choosing it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("密码至少需要 {0} 个字符 (at least {0} characters)")]
    TooShort(usize),
    #[error("密码不能与登录名相同或包含登录名 (must not contain the sign-in name)")]
    ContainsIdentifier,
    #[error("密码过于常见或容易猜到，请换一个 (too common or easy to guess)")]
    TooGuessable,
}

/// Minimum length for parties, agents and staff (issue 4); admins hold the keys to every brigade
/// and need a longer one.
pub const MIN_LENGTH: usize = 8;
pub const MIN_LENGTH_ADMIN: usize = 12;

/// Checks a new password against the rules. `identifiers` are the person's own sign-in name and
/// display name, which must not be (part of) the password.
pub fn check_strength(
    password: &str,
    identifiers: &[&str],
    min_length: usize,
) -> Result<(), WeakPassword> {
    if password.chars().count() < min_length {
        return Err(WeakPassword::TooShort(min_length));
    }
    let lower = password.to_lowercase();
    if identifiers
        .iter()
        .map(|i| i.trim().to_lowercase())
        .any(|i| i.chars().count() >= 3 && lower.contains(&i))
    {
        return Err(WeakPassword::ContainsIdentifier);
    }
    // zxcvbn knows the common-password lists and keyboard patterns; score 3 ≈ 10^8 guesses.
    let estimate = zxcvbn::zxcvbn(password, identifiers);
    if (estimate.score() as u8) < 3 {
        return Err(WeakPassword::TooGuessable);
    }
    Ok(())
}

/// An argon2id PHC string with a fresh salt. Slow on purpose: call it off the async workers.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Whether `password` matches the stored PHC string. A malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused() {
        assert_eq!(
            check_strength("short", &[], 8),
            Err(WeakPassword::TooShort(8))
        );
        assert_eq!(
            check_strength("password123", &[], 8),
            Err(WeakPassword::TooGuessable)
        );
        assert_eq!(
            check_strength("12345678", &[], 8),
            Err(WeakPassword::TooGuessable)
        );
        assert_eq!(
            check_strength("zhangwei-Qx7!pL", &["zhangwei"], 8),
            Err(WeakPassword::ContainsIdentifier)
        );
        assert_eq!(
            check_strength("Tr0ub4dor&3xyz", &[], 16),
            Err(WeakPassword::TooShort(16))
        );
    }

    #[test]
    fn strong_passwords_pass_and_verify() {
        let pw = "河边-Falcon-Quartz-42";
        check_strength(pw, &["admin"], MIN_LENGTH_ADMIN).unwrap();
        let stored = hash(pw).unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify(pw, &stored));
        assert!(!verify("河边-Falcon-Quartz-43", &stored));
        assert!(!verify(pw, "not a hash"));
    }
}
