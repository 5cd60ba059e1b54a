//! The second factor of staff and administrators: an authenticator app (TOTP, RFC 6238, through
//! `totp-rs`) and ten one-time recovery codes. A session of a staff or administrator account
//! does nothing until it passes one (`sessions.second_factor_at`); an account without one is
//! sent to enrol it first. The most sensitive acts ask again when the last pass is older than
//! [`STEP_UP`].
//!
//! - TOTP secrets are 160 random bits, sealed with AES-256-GCM under a key derived from the
//!   server key, bound to the account (never stored in the clear). Codes are checked one step
//!   either side of now; the step accepted is recorded with one conditional update, so a code is
//!   never accepted twice — not even by two requests at once.
//! - Recovery codes are `ABCDE-FGHJK` (50 bits), stored as keyed hashes, each used once (a
//!   conditional update again); enrolling anew replaces them.

use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::entities::{account, recovery_code, second_factor, session};
use crate::keys::ServerKey;
use crate::vocab::Role;

/// How recent a second factor must be for the most sensitive acts.
pub const STEP_UP: Duration = Duration::minutes(5);
/// Recovery codes made at each enrolment.
pub const RECOVERY_CODES: usize = 10;
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Whether accounts of this role need a second factor.
pub fn required(role: Role) -> bool {
    matches!(role, Role::Staff | Role::Admin)
}

/// Whether a session's last second factor is recent enough for a sensitive act.
pub fn recent(passed_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    passed_at.is_some_and(|t| now - t < STEP_UP)
}

/// A TOTP secret sealed for `account_id` (base64 of nonce and ciphertext).
pub fn seal(key: &ServerKey, account_id: Uuid, secret: &[u8]) -> Option<String> {
    key.seal("totp-secret", account_id.as_bytes(), secret)
}

/// The secret sealed for `account_id`, if this is one (another account's, or altered: none).
pub fn open(key: &ServerKey, account_id: Uuid, sealed: &str) -> Option<Vec<u8>> {
    key.open("totp-secret", account_id.as_bytes(), sealed)
}

fn totp(secret: &[u8]) -> Option<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::new(secret.to_vec().into_boxed_slice()))
        .build()
        .ok()
}

/// The code an authenticator app shows for `secret` at `t` (tests and the demo compute it).
pub fn code_at(secret: &[u8], t: OffsetDateTime) -> Option<String> {
    Some(
        totp(secret)?
            .generate(t.unix_timestamp().max(0) as u64)
            .to_string(),
    )
}

/// The time step a code of `secret` is valid for at `now` (±1 step), if any.
fn step_of(secret: &[u8], code: &str, now: OffsetDateTime) -> Option<i64> {
    let step = totp(secret)?.check(code, now.unix_timestamp().max(0) as u64)?;
    i64::try_from(step).ok()
}

/// Base32 as authenticator apps take it, in groups of four for typing.
pub fn base32(secret: &[u8]) -> String {
    let plain = totp_rs::Secret::new(secret.to_vec().into_boxed_slice()).to_base32();
    plain
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name a person gave a factor, as kept: control characters dropped, at most 50 characters,
/// trimmed; none given, the label of its kind (`totp`, `passkey`) in the page's language.
pub fn factor_name(raw: &str, kind: &str) -> String {
    let name: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(50)
        .collect::<String>()
        .trim()
        .to_owned();
    if name.is_empty() {
        crate::i18n::t(&format!("second_factor.kind.{kind}"))
    } else {
        name
    }
}

/// A TOTP enrolment waiting for its first code.
pub struct Enrolment {
    pub factor_id: Uuid,
    /// The secret in base32, grouped, for typing into an app.
    pub secret: String,
    /// The `otpauth://` address the QR code carries.
    pub uri: String,
}

/// How long an enrolment may wait for its first code.
pub const ENROLMENT_LIFETIME: time::Duration = time::Duration::minutes(15);

/// An enrolment waiting for its first code, if it belongs to `session_id` and has not expired:
/// no other session ever sees its key or confirms it.
fn pending_of(
    factor: Option<second_factor::Model>,
    account_id: Uuid,
    session_id: Uuid,
    now: OffsetDateTime,
) -> Option<second_factor::Model> {
    factor.filter(|f| {
        f.account_id == account_id
            && !f.confirmed
            && f.kind == "totp"
            && f.session_id == Some(session_id)
            && f.created_at + ENROLMENT_LIFETIME > now
    })
}

/// Starts enrolling an authenticator app for `account` in the session `session_id` (an earlier
/// unfinished one is dropped); only that session may see its key again or confirm it, within
/// [`ENROLMENT_LIFETIME`].
pub async fn begin_totp(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account: &account::Model,
    session_id: Uuid,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<Enrolment, DbErr> {
    second_factor::Entity::delete_many()
        .filter(second_factor::Column::AccountId.eq(account.id))
        .filter(second_factor::Column::Confirmed.eq(false))
        .exec(db)
        .await?;
    let secret: [u8; 20] = rand::rng().random();
    let sealed = seal(key, account.id, &secret)
        .ok_or_else(|| DbErr::Custom("cannot seal a TOTP secret".into()))?;
    let id = Uuid::now_v7();
    second_factor::ActiveModel {
        id: Set(id),
        account_id: Set(account.id),
        kind: Set("totp".into()),
        name: Set(String::new()),
        secret: Set(Some(sealed)),
        passkey: Set(None),
        confirmed: Set(false),
        last_step: Set(None),
        created_at: Set(now),
        last_used_at: Set(None),
        session_id: Set(Some(session_id)),
    }
    .insert(db)
    .await?;
    Ok(enrolment(id, &secret, account, issuer))
}

fn enrolment(factor_id: Uuid, secret: &[u8], account: &account::Model, issuer: &str) -> Enrolment {
    let plain = base32(secret).replace(' ', "");
    let label: String = url::form_urlencoded::byte_serialize(
        format!("{issuer}:{}", account.login_masked).as_bytes(),
    )
    .collect();
    let issuer_param: String = url::form_urlencoded::byte_serialize(issuer.as_bytes()).collect();
    Enrolment {
        factor_id,
        secret: base32(secret),
        uri: format!(
            "otpauth://totp/{label}?secret={plain}&issuer={issuer_param}&algorithm=SHA1&digits=6&period=30"
        ),
    }
}

/// The enrolment `factor_id` of `account` that `session_id` began, still waiting for its first
/// code and not expired, if any.
pub async fn pending_totp(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account: &account::Model,
    session_id: Uuid,
    factor_id: Uuid,
    issuer: &str,
    now: OffsetDateTime,
) -> Result<Option<Enrolment>, DbErr> {
    let factor = second_factor::Entity::find_by_id(factor_id).one(db).await?;
    Ok(pending_of(factor, account.id, session_id, now)
        .and_then(|f| f.secret.as_deref().and_then(|s| open(key, account.id, s)))
        .map(|secret| enrolment(factor_id, &secret, account, issuer)))
}

/// Adds a confirmed authenticator app with a known key (the demo's officer): no recovery codes.
pub async fn enrol_known(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account_id: Uuid,
    secret: &[u8],
    name: &str,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    let sealed = seal(key, account_id, secret)
        .ok_or_else(|| DbErr::Custom("cannot seal a TOTP secret".into()))?;
    second_factor::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        kind: Set("totp".into()),
        name: Set(name.to_owned()),
        secret: Set(Some(sealed)),
        passkey: Set(None),
        confirmed: Set(true),
        last_step: Set(None),
        created_at: Set(now),
        last_used_at: Set(None),
        session_id: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Why a code was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a current code of any of the account's factors, nor an unused recovery code.
    Wrong,
    /// A code already accepted once (its step, or an earlier one).
    Replayed,
}

impl Refused {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::Wrong => "wrong_second_factor",
            Refused::Replayed => "replayed_second_factor",
        }
    }
}

/// Accepts `step` for the factor unless it (or a later one) was accepted before: atomic.
async fn accept_step(
    db: &impl ConnectionTrait,
    factor_id: Uuid,
    step: i64,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::{Condition, Expr};
    let done = second_factor::Entity::update_many()
        .col_expr(second_factor::Column::LastStep, Expr::value(step))
        .col_expr(second_factor::Column::LastUsedAt, Expr::value(now))
        .filter(second_factor::Column::Id.eq(factor_id))
        .filter(
            Condition::any()
                .add(second_factor::Column::LastStep.is_null())
                .add(second_factor::Column::LastStep.lt(step)),
        )
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Confirms an enrolment with its first code: the factor now counts, and the account gets ten
/// new recovery codes (returned, to be shown once; earlier ones stop working).
#[allow(clippy::too_many_arguments)]
pub async fn confirm_totp(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account: &account::Model,
    session_id: Uuid,
    factor_id: Uuid,
    name: &str,
    code: &str,
    now: OffsetDateTime,
) -> Result<Result<Vec<String>, Refused>, DbErr> {
    let factor = second_factor::Entity::find_by_id(factor_id).one(db).await?;
    let Some(factor) = pending_of(factor, account.id, session_id, now) else {
        return Ok(Err(Refused::Wrong));
    };
    let Some(secret) = factor
        .secret
        .as_deref()
        .and_then(|s| open(key, account.id, s))
    else {
        return Ok(Err(Refused::Wrong));
    };
    let Some(step) = step_of(&secret, &digits(code), now) else {
        return Ok(Err(Refused::Wrong));
    };
    if !accept_step(db, factor.id, step, now).await? {
        return Ok(Err(Refused::Replayed));
    }
    let mut row: second_factor::ActiveModel = factor.into();
    row.confirmed = Set(true);
    row.name = Set(name.to_owned());
    row.update(db).await?;
    Ok(Ok(new_recovery_codes(db, key, account.id, now).await?))
}

/// Replaces the account's recovery codes with ten new ones, returned in the clear once.
pub async fn new_recovery_codes(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account_id: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<String>, DbErr> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .exec(db)
        .await?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut rng = rand::rng();
        let raw: String = (0..10)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        let code = format!("{}-{}", &raw[..5], &raw[5..]);
        recovery_code::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(account_id),
            code_hash: Set(recovery_hash(key, account_id, &raw)),
            created_at: Set(now),
            used_at: Set(None),
        }
        .insert(db)
        .await?;
        codes.push(code);
    }
    Ok(codes)
}

fn recovery_hash(key: &ServerKey, account_id: Uuid, normalised: &str) -> String {
    hex::encode(key.mac(
        b"recovery-code",
        format!("{account_id}:{normalised}").as_bytes(),
    ))
}

/// The digits of what was typed (spaces and full-width digits forgiven).
fn digits(input: &str) -> String {
    super::identifier::clean(input)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// What passed.
#[derive(Debug, PartialEq, Eq)]
pub enum Passed {
    Totp {
        factor_id: Uuid,
    },
    /// A recovery code, now used; how many are left.
    Recovery {
        left: u64,
    },
}

/// Checks a code typed at sign-in or for a sensitive act: a current TOTP code of one of the
/// account's confirmed apps, or one of its unused recovery codes.
pub async fn verify(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account_id: Uuid,
    input: &str,
    now: OffsetDateTime,
) -> Result<Result<Passed, Refused>, DbErr> {
    let cleaned = super::identifier::clean(input).to_ascii_uppercase();
    if cleaned.len() == 6 && cleaned.bytes().all(|b| b.is_ascii_digit()) {
        let factors = confirmed(db, account_id).await?;
        let mut replayed = false;
        for f in factors.iter().filter(|f| f.kind == "totp") {
            let Some(secret) = f.secret.as_deref().and_then(|s| open(key, account_id, s)) else {
                continue;
            };
            if let Some(step) = step_of(&secret, &cleaned, now) {
                if accept_step(db, f.id, step, now).await? {
                    return Ok(Ok(Passed::Totp { factor_id: f.id }));
                }
                replayed = true;
            }
        }
        return Ok(Err(if replayed {
            Refused::Replayed
        } else {
            Refused::Wrong
        }));
    }
    if cleaned.len() != 10 {
        return Ok(Err(Refused::Wrong));
    }
    use sea_orm::sea_query::Expr;
    let used = recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .filter(recovery_code::Column::CodeHash.eq(recovery_hash(key, account_id, &cleaned)))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if used.rows_affected != 1 {
        return Ok(Err(Refused::Wrong));
    }
    let left = recovery_codes_left(db, account_id).await?;
    Ok(Ok(Passed::Recovery { left }))
}

/// The unused recovery codes of an account.
pub async fn recovery_codes_left(
    db: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    recovery_code::Entity::find()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .filter(recovery_code::Column::UsedAt.is_null())
        .count(db)
        .await
}

/// The account's working factors, oldest first.
pub async fn confirmed(
    db: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Vec<second_factor::Model>, DbErr> {
    second_factor::Entity::find()
        .filter(second_factor::Column::AccountId.eq(account_id))
        .filter(second_factor::Column::Confirmed.eq(true))
        .order_by_asc(second_factor::Column::CreatedAt)
        .all(db)
        .await
}

/// Records that `session_id` passed a second factor at `now`.
pub async fn mark_session(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    session::Entity::update_many()
        .col_expr(session::Column::SecondFactorAt, Expr::value(Some(now)))
        .filter(session::Column::Id.eq(session_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes one of the account's factors; false if it was not theirs (or is gone).
pub async fn remove(
    db: &impl ConnectionTrait,
    account_id: Uuid,
    factor_id: Uuid,
) -> Result<bool, DbErr> {
    Ok(second_factor::Entity::delete_many()
        .filter(second_factor::Column::Id.eq(factor_id))
        .filter(second_factor::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Removes every factor and recovery code of an account (an administrator's or the CLI's
/// reset): at the next sign-in the person enrols anew. The caller ends their sessions.
pub async fn reset(db: &impl ConnectionTrait, account_id: Uuid) -> Result<u64, DbErr> {
    super::throttle::second_factor_passed(db, account_id).await?;
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::AccountId.eq(account_id))
        .exec(db)
        .await?;
    Ok(second_factor::Entity::delete_many()
        .filter(second_factor::Column::AccountId.eq(account_id))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 Appendix B (SHA-1, 8 digits there; the last 6 digits here).
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            let at = OffsetDateTime::from_unix_timestamp(t).unwrap();
            assert_eq!(code_at(secret, at).unwrap(), code, "{t}");
        }
    }

    #[test]
    fn codes_hold_one_step_either_side() {
        let secret = [7u8; 20];
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let step = 1_800_000_000 / 30;
        for (offset, expected) in [(-30, Some(step - 1)), (0, Some(step)), (30, Some(step + 1))] {
            let code = code_at(&secret, now + Duration::seconds(offset)).unwrap();
            assert_eq!(step_of(&secret, &code, now), expected, "{offset}");
        }
        let far = code_at(&secret, now + Duration::seconds(90)).unwrap();
        assert_eq!(step_of(&secret, &far, now), None);
    }

    #[test]
    fn sealed_secrets_open_only_for_their_account() {
        let key = ServerKey::for_tests(3);
        let a = Uuid::now_v7();
        let sealed = seal(&key, a, b"twenty bytes secret!").unwrap();
        assert_eq!(open(&key, a, &sealed).unwrap(), b"twenty bytes secret!");
        assert!(open(&key, Uuid::now_v7(), &sealed).is_none());
        assert!(open(&ServerKey::for_tests(4), a, &sealed).is_none());
        assert_ne!(seal(&key, a, b"x").unwrap(), seal(&key, a, b"x").unwrap());
    }

    #[test]
    fn factor_names_are_plain_text_of_bounded_length() {
        assert_eq!(factor_name("  工作\u{0007}手机 ", "totp"), "工作手机");
        assert_eq!(factor_name(&"长".repeat(80), "totp").chars().count(), 50);
        assert_eq!(factor_name("\n\t", "passkey"), "通行密钥");
    }

    #[test]
    fn step_up_is_five_minutes() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(recent(Some(now - Duration::minutes(4)), now));
        assert!(!recent(Some(now - Duration::minutes(5)), now));
        assert!(!recent(None, now));
    }

    proptest! {
        #[test]
        fn whatever_is_typed_never_panics(input in "\\PC{0,30}") {
            let secret = [9u8; 20];
            let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
            let _ = step_of(&secret, &digits(&input), now);
            let _ = open(&ServerKey::for_tests(1), Uuid::nil(), &input);
        }
    }
}
