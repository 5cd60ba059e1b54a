//! Sign-in sessions: a row per session, and a signed JWT (HS256, server-derived key) in a cookie
//! that carries its id. The row is checked on every request, so sign-out, password change and
//! disabling take effect at once; idle timeout 30 minutes, absolute 12 hours.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::config::Settings;
use crate::db::entities::{account, session};
use crate::keys::ServerKey;

pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// `last_seen_at` is written at most this often (one write per minute, not per request).
pub(super) const TOUCH_EVERY: Duration = Duration::seconds(60);

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Session id.
    pub sid: Uuid,
    /// Account id.
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
}

/// `__Host-` names need `Secure`, which browsers refuse over plain http: the prefix is used
/// whenever the portal is served over https, a plain name otherwise (local trials and tests).
pub fn cookie_name(settings: &Settings) -> &'static str {
    if settings.served_over_tls() {
        "__Host-portal-session"
    } else {
        "portal-session"
    }
}

fn jwt_key(key: &ServerKey) -> [u8; 32] {
    key.derive("session-jwt")
}

/// The session cookie carrying `token` (or, with `None`, the cookie that removes it).
pub fn cookie(settings: &Settings, token: Option<String>) -> Cookie<'static> {
    let removing = token.is_none();
    let mut c = Cookie::build(cookie_name(settings), token.unwrap_or_default())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(settings.served_over_tls())
        .finish();
    if removing {
        c.set_max_age(CookieDuration::ZERO);
    }
    c
}

/// Opens a session for `account_id` and returns it with its signed token.
pub async fn start(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    account_id: Uuid,
    client_ip: Option<String>,
    user_agent: Option<String>,
) -> Result<(session::Model, String), DbErr> {
    let now = OffsetDateTime::now_utc();
    let row = session::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + ABSOLUTE_TIMEOUT),
        revoked_at: Set(None),
        client_ip: Set(client_ip),
        user_agent: Set(user_agent.map(|mut ua| {
            ua.truncate(ua.floor_char_boundary(512));
            ua
        })),
        second_factor_at: Set(None),
    }
    .insert(db)
    .await?;
    let claims = Claims {
        sid: row.id,
        sub: account_id,
        iat: now.unix_timestamp(),
        exp: row.expires_at.unix_timestamp(),
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&jwt_key(key)),
    )
    .map_err(|e| DbErr::Custom(format!("cannot sign the session token: {e}")))?;
    Ok((row, token))
}

/// The claims of a token signed by this portal with HS256 and not expired; `None` otherwise
/// (other algorithms, including `none`, other keys and altered payloads are all refused).
pub fn decode(key: &ServerKey, token: &str) -> Option<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iat"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&jwt_key(key)), &validation)
        .ok()
        .map(|data| data.claims)
}

/// The live session and its enabled account, or `None`. Refreshes `last_seen_at`.
pub async fn resume(
    db: &impl ConnectionTrait,
    claims: &Claims,
) -> Result<Option<(session::Model, account::Model)>, DbErr> {
    use sea_orm::{QuerySelect, QueryTrait, SelectorTrait};
    // One statement for both rows, its SQL written once: every signed-in request pays for this.
    static RESUME: crate::db::Reused = crate::db::Reused::new();
    let backend = db.get_database_backend();
    let statement = RESUME.statement(backend, vec![claims.sid.into(), 1u64.into()], || {
        session::Entity::find_by_id(claims.sid)
            .find_also_related(account::Entity)
            .limit(1)
            .build(backend)
    });
    let found = match db.query_one_raw(statement).await? {
        Some(row) => Some(
            sea_orm::SelectTwoModel::<session::Model, account::Model>::from_raw_query_result(row)?,
        ),
        None => None,
    };
    let Some((row, Some(account))) = found else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    if row.account_id != claims.sub
        || row.revoked_at.is_some()
        || row.expires_at <= now
        || row.last_seen_at + IDLE_TIMEOUT <= now
    {
        return Ok(None);
    }
    if account.disabled || account.password_hash.is_none() {
        return Ok(None);
    }
    if now - row.last_seen_at >= TOUCH_EVERY {
        session::Entity::update_many()
            .col_expr(
                session::Column::LastSeenAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(session::Column::Id.eq(row.id))
            .exec(db)
            .await?;
    }
    Ok(Some((row, account)))
}

pub async fn revoke(db: &impl ConnectionTrait, session_id: Uuid) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(OffsetDateTime::now_utc()),
        )
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of an account (password change, disabling, reset), but `keep`.
pub async fn revoke_all(
    db: &impl ConnectionTrait,
    account_id: Uuid,
    keep: Option<Uuid>,
) -> Result<u64, DbErr> {
    let mut update = session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(OffsetDateTime::now_utc()),
        )
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(session::Column::Id.ne(keep));
    }
    Ok(update.exec(db).await?.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64) -> Claims {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            sid: Uuid::now_v7(),
            sub: Uuid::now_v7(),
            iat: now,
            exp: now + exp_in,
        }
    }

    fn sign(key: &ServerKey, header: Header, c: &Claims) -> String {
        jsonwebtoken::encode(&header, c, &EncodingKey::from_secret(&jwt_key(key))).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_others_are_refused() {
        let key = ServerKey::for_tests(3);
        let c = claims(3600);
        let token = sign(&key, Header::new(Algorithm::HS256), &c);
        assert_eq!(decode(&key, &token).unwrap().sid, c.sid);

        assert!(
            decode(&ServerKey::for_tests(4), &token).is_none(),
            "another key"
        );
        assert!(
            decode(
                &key,
                &sign(&key, Header::new(Algorithm::HS256), &claims(-10))
            )
            .is_none(),
            "expired"
        );
        assert!(
            decode(&key, &sign(&key, Header::new(Algorithm::HS384), &c)).is_none(),
            "other alg"
        );

        // alg: none, unsigned.
        use base64::Engine;
        let encode = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let none = format!(
            "{}.{}.",
            encode(br#"{"alg":"none","typ":"JWT"}"#),
            encode(serde_json::to_string(&c).unwrap().as_bytes())
        );
        assert!(decode(&key, &none).is_none(), "alg none");

        // A changed payload under the original signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut other = claims(3600);
        other.sid = Uuid::now_v7();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            encode(serde_json::to_string(&other).unwrap().as_bytes()),
            parts[2]
        );
        assert!(decode(&key, &forged).is_none(), "changed payload");
    }
}
