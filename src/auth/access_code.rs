//! One-time access codes: how a party, agent or staff member first proves who they are.
//!
//! 10 symbols from a 32-symbol alphabet without look-alikes (no 0/O, 1/I) = 50 bits, printed as
//! `ABCDE-FGHJK`, valid 14 days, single use. Stored only as a keyed hash bound to the account;
//! issuing a new code revokes the account's earlier unused ones.

use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::entities::activation;
use crate::keys::ServerKey;

pub const VALIDITY: Duration = Duration::days(14);
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const LENGTH: usize = 10;

/// A code as handed to the person, shown once.
#[derive(Clone, Debug)]
pub struct IssuedCode {
    pub code: String,
    pub expires_at: OffsetDateTime,
}

fn generate() -> String {
    let mut rng = rand::rng();
    let raw: String = (0..LENGTH)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &raw[..5], &raw[5..])
}

/// What people type, as compared: upper case, no spaces or hyphens, full-width folded.
pub fn normalise(input: &str) -> String {
    super::identifier::clean(input).to_ascii_uppercase()
}

fn hash(key: &ServerKey, account_id: Uuid, normalised: &str) -> String {
    let message = format!("{account_id}:{normalised}");
    hex::encode(key.mac(b"access-code", message.as_bytes()))
}

/// Issues a new code for `account_id`, revoking its earlier unused codes. Run it inside the
/// caller's transaction so the code and whatever prompted it commit together.
pub async fn issue(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account_id: Uuid,
    issued_by: Option<Uuid>,
) -> Result<IssuedCode, DbErr> {
    let now = OffsetDateTime::now_utc();
    activation::Entity::update_many()
        .col_expr(
            activation::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(activation::Column::AccountId.eq(account_id))
        .filter(activation::Column::UsedAt.is_null())
        .filter(activation::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    let code = generate();
    let expires_at = now + VALIDITY;
    activation::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        code_hash: Set(hash(key, account_id, &normalise(&code))),
        created_by: Set(issued_by),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(IssuedCode { code, expires_at })
}

/// Why a code was not accepted (all shown to the person the same way).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Wrong,
    Expired,
    Used,
}

impl Refused {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::Wrong => "wrong_code",
            Refused::Expired => "expired_code",
            Refused::Used => "used_code",
        }
    }
}

/// The id of the live code matching `input` for this account, or why there is none.
pub async fn check(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account_id: Uuid,
    input: &str,
) -> Result<Result<Uuid, Refused>, DbErr> {
    let wanted = hash(key, account_id, &normalise(input));
    let Some(code) = activation::Entity::find()
        .filter(activation::Column::AccountId.eq(account_id))
        .filter(activation::Column::CodeHash.eq(wanted))
        .one(db)
        .await?
    else {
        return Ok(Err(Refused::Wrong));
    };
    Ok(if code.used_at.is_some() {
        Err(Refused::Used)
    } else if code.revoked_at.is_some() {
        Err(Refused::Wrong)
    } else if code.expires_at <= OffsetDateTime::now_utc() {
        Err(Refused::Expired)
    } else {
        Ok(code.id)
    })
}

/// Marks a checked code used; false if another request used it first (single use under races).
pub async fn mark_used(db: &impl ConnectionTrait, code_id: Uuid) -> Result<bool, DbErr> {
    let now = OffsetDateTime::now_utc();
    let marked = activation::Entity::update_many()
        .col_expr(
            activation::Column::UsedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(activation::Column::Id.eq(code_id))
        .filter(activation::Column::UsedAt.is_null())
        .filter(activation::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(marked.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        for _ in 0..200 {
            let code = generate();
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(
                code.chars()
                    .filter(|c| *c != '-')
                    .all(|c| ALPHABET.contains(&(c as u8)))
            );
            assert!(!code.contains(['0', 'O', '1', 'I']));
        }
        // 10 symbols of 32: 50 bits.
        assert!(LENGTH as f64 * (ALPHABET.len() as f64).log2() >= 40.0);
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(normalise(" abcde-fghjk "), "ABCDEFGHJK");
        assert_eq!(normalise("ＡＢＣＤＥ ＦＧＨＪＫ"), "ABCDEFGHJK");
    }
}
