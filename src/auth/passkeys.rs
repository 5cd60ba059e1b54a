//! Passkeys (WebAuthn) as a second factor, through `webauthn-rs`: registering one (named, more
//! than one allowed) and signing in with one. The relying party's state between the challenge
//! and the browser's answer is kept per session in the database, so any instance may finish a
//! ceremony another began; it is deleted when used and worthless after five minutes.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};

use crate::db::entities::{account, second_factor, webauthn_challenge};

/// How long a ceremony may take.
const CEREMONY: Duration = Duration::minutes(5);

/// Why a passkey was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No ceremony in progress for this session (or it expired).
    NoChallenge,
    /// The browser's answer does not verify (another authenticator, another site, altered).
    Invalid,
}

impl Refused {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::NoChallenge => "no_passkey_challenge",
            Refused::Invalid => "invalid_passkey",
        }
    }
}

async fn keep_state(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    purpose: &str,
    state: String,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    webauthn_challenge::Entity::delete_many()
        .filter(webauthn_challenge::Column::SessionId.eq(session_id))
        .filter(webauthn_challenge::Column::Purpose.eq(purpose))
        .exec(db)
        .await?;
    webauthn_challenge::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        purpose: Set(purpose.to_owned()),
        state: Set(state),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Takes (and deletes) the state of the session's ceremony, if one is in progress and young.
async fn take_state(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    purpose: &str,
    now: OffsetDateTime,
) -> Result<Option<String>, DbErr> {
    let Some(row) = webauthn_challenge::Entity::find()
        .filter(webauthn_challenge::Column::SessionId.eq(session_id))
        .filter(webauthn_challenge::Column::Purpose.eq(purpose))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    // Deleted first: the state works once, whoever gets there first.
    let gone = webauthn_challenge::Entity::delete_many()
        .filter(webauthn_challenge::Column::Id.eq(row.id))
        .exec(db)
        .await?;
    Ok((gone.rows_affected == 1 && now - row.created_at < CEREMONY).then_some(row.state))
}

/// The account's passkeys with their factor rows.
pub async fn of_account(
    db: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Vec<(second_factor::Model, Passkey)>, DbErr> {
    Ok(super::second_factor::confirmed(db, account_id)
        .await?
        .into_iter()
        .filter(|f| f.kind == "passkey")
        .filter_map(|f| {
            let key = serde_json::from_str::<Passkey>(f.passkey.as_deref()?).ok()?;
            Some((f, key))
        })
        .collect())
}

/// Starts registering a passkey for `account` (its existing ones excluded).
pub async fn begin_registration(
    db: &impl ConnectionTrait,
    webauthn: &Webauthn,
    account: &account::Model,
    session_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<CreationChallengeResponse>, DbErr> {
    let existing: Vec<_> = of_account(db, account.id)
        .await?
        .into_iter()
        .map(|(_, k)| k.cred_id().clone())
        .collect();
    let Ok((options, state)) = webauthn.start_passkey_registration(
        account.id,
        &account.login_masked,
        &account.display_name,
        Some(existing),
    ) else {
        return Ok(None);
    };
    let state = serde_json::to_string(&state).map_err(|e| DbErr::Custom(e.to_string()))?;
    keep_state(db, session_id, "register", state, now).await?;
    Ok(Some(options))
}

/// Finishes registering: the passkey becomes one of the account's factors, named `name`.
pub async fn finish_registration(
    db: &impl ConnectionTrait,
    webauthn: &Webauthn,
    account: &account::Model,
    session_id: Uuid,
    answer: &RegisterPublicKeyCredential,
    name: &str,
    now: OffsetDateTime,
) -> Result<Result<Uuid, Refused>, DbErr> {
    let Some(state) = take_state(db, session_id, "register", now).await? else {
        return Ok(Err(Refused::NoChallenge));
    };
    let Ok(state) = serde_json::from_str::<PasskeyRegistration>(&state) else {
        return Ok(Err(Refused::NoChallenge));
    };
    let Ok(passkey) = webauthn.finish_passkey_registration(answer, &state) else {
        return Ok(Err(Refused::Invalid));
    };
    let id = Uuid::now_v7();
    second_factor::ActiveModel {
        id: Set(id),
        account_id: Set(account.id),
        kind: Set("passkey".into()),
        name: Set(name.to_owned()),
        secret: Set(None),
        passkey: Set(Some(
            serde_json::to_string(&passkey).map_err(|e| DbErr::Custom(e.to_string()))?,
        )),
        confirmed: Set(true),
        last_step: Set(None),
        created_at: Set(now),
        last_used_at: Set(None),
        session_id: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Ok(id))
}

/// Starts signing in with one of the account's passkeys; `None` if it has none.
pub async fn begin_authentication(
    db: &impl ConnectionTrait,
    webauthn: &Webauthn,
    account_id: Uuid,
    session_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<RequestChallengeResponse>, DbErr> {
    let keys: Vec<Passkey> = of_account(db, account_id)
        .await?
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let Ok((options, state)) = webauthn.start_passkey_authentication(&keys) else {
        return Ok(None);
    };
    let state = serde_json::to_string(&state).map_err(|e| DbErr::Custom(e.to_string()))?;
    keep_state(db, session_id, "authenticate", state, now).await?;
    Ok(Some(options))
}

/// Checks the browser's answer: the id of the passkey factor it proved, its use recorded (and
/// its signature counter kept).
pub async fn finish_authentication(
    db: &impl ConnectionTrait,
    webauthn: &Webauthn,
    account_id: Uuid,
    session_id: Uuid,
    answer: &PublicKeyCredential,
    now: OffsetDateTime,
) -> Result<Result<Uuid, Refused>, DbErr> {
    let Some(state) = take_state(db, session_id, "authenticate", now).await? else {
        return Ok(Err(Refused::NoChallenge));
    };
    let Ok(state) = serde_json::from_str::<PasskeyAuthentication>(&state) else {
        return Ok(Err(Refused::NoChallenge));
    };
    let Ok(result) = webauthn.finish_passkey_authentication(answer, &state) else {
        return Ok(Err(Refused::Invalid));
    };
    for (factor, mut key) in of_account(db, account_id).await? {
        if key.cred_id() != result.cred_id() {
            continue;
        }
        key.update_credential(&result);
        let mut row: second_factor::ActiveModel = factor.into();
        row.passkey = Set(Some(
            serde_json::to_string(&key).map_err(|e| DbErr::Custom(e.to_string()))?,
        ));
        row.last_used_at = Set(Some(now));
        let row = row.update(db).await?;
        return Ok(Ok(row.id));
    }
    // A passkey removed while its ceremony ran.
    Ok(Err(Refused::Invalid))
}
