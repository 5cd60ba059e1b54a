//! Password hashing (argon2id) and the strength rules every new password must meet.

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordVerifier};

/// Why a password was refused; the message is shown to the person choosing it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("密码至少需要 {0} 个字符 (at least {0} characters)")]
    TooShort(usize),
    #[error("密码不能包含登录名或姓名 (must not contain your sign-in name or your name)")]
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

/// Password hashes computed at once, process-wide: each argon2id run holds 19 MiB, so a burst of
/// sign-ins queues here instead of each taking its own memory (one per core).
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    tokio::sync::Semaphore::new(cores.clamp(1, 16))
});

/// How long an attempt waits for a hashing slot before it is answered "busy, try again".
pub const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Every hashing slot stayed taken for [`QUEUE_WAIT`]: answer 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("服务器繁忙，请稍后再试 (too many sign-ins at once; try again in a few seconds)")]
pub struct Busy;

/// Runs `work` on the blocking pool once a hashing slot is free. The slot is held until the work
/// ends, even if the request that asked for it has gone.
async fn bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
    let permit = tokio::time::timeout(QUEUE_WAIT, HASHING.acquire())
        .await
        .map_err(|_| Busy)?
        .map_err(|_| Busy)?;
    tokio::task::spawn_blocking(move || {
        let _slot = permit;
        work()
    })
    .await
    .map_err(|_| Busy)
}

/// [`verify`] within the bound on hashes in flight.
pub async fn verify_bounded(password: String, stored: String) -> Result<bool, Busy> {
    bounded(move || verify(&password, &stored)).await
}

/// [`hash`] within the bound on hashes in flight.
pub async fn hash_bounded(
    password: String,
) -> Result<Result<String, argon2::password_hash::Error>, Busy> {
    bounded(move || hash(&password)).await
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
