//! The applicant's way back to an access application's status page from a browser that did not
//! file it (issue 31): its receipt number and the mobile number it gave bring a one-time code,
//! texted to that number through the outbox ([`ask`]); the code typed renews the application's
//! status key ([`enter`]) — the old link stops working — and the new link is the caller's to
//! show once.
//!
//! Nothing here tells whether a receipt number exists or which number it gave: [`ask`] answers
//! alike for every well-formed pair, and [`enter`] refuses a wrong code, a spent one and an
//! unknown receipt in the same words. Both are counted per address, and the codes texted also
//! per application, so the form can neither flood a phone nor serve to guess. Every request is
//! audited (`access.lookup`), the mobile number masked and the code never.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::access::{OverLimit, next_minute, status_hash};
use crate::audit::{Action, Actor, Audit, Event as AuditEvent, Outcome};
use crate::auth::identifier::{Identifier, parse_mobile};
use crate::auth::throttle::{address_bucket, count_rate};
use crate::db::entities::{access_application, account, application_lookup};
use crate::keys::ServerKey;
use crate::notifications::{Channels, Event};

/// How long a code works.
pub const CODE_MINUTES: i64 = 10;
/// Wrong codes that end a code.
pub const CODE_TRIES: i32 = 5;
/// Requests for a code from one address in an hour, whatever they name.
pub const ASKS_PER_ADDRESS_PER_HOUR: i32 = 10;
/// Codes texted for one application in an hour: a phone is not flooded.
pub const CODES_PER_APPLICATION_PER_HOUR: i32 = 3;
/// Codes typed from one address in an hour, whatever they name: no guessing across codes.
pub const TRIES_PER_ADDRESS_PER_HOUR: i32 = 20;

/// Why a request was not answered as asked.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Fields that break their rule, each with its words ("中文 (English)"): the form marks
    /// them all. Their form alone is checked: nothing is said of any application.
    #[error("{}", .0.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join(" "))]
    Fields(Vec<(&'static str, String)>),
    /// The address has asked (`limit` `lookup`) or tried (`lookup_code`) as often as an hour
    /// allows: the catalog's `error.rate_limited.<limit>` says so.
    #[error("too many requests from this address")]
    OverLimit(OverLimit),
    /// A code that opens nothing — wrong, spent, expired, replaced, or for a receipt number no
    /// application has: the same words for each.
    #[error(
        "验证码不正确或已失效。验证码10分钟内有效，最多可输入5次，重新获取后以最新的为准。 (the code is wrong or no longer valid: a code works for 10 minutes and 5 tries, and only the newest one asked for)"
    )]
    WrongCode,
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<LookupError> for crate::error::AppError {
    fn from(e: LookupError) -> Self {
        use crate::error::AppError;
        match e {
            LookupError::OverLimit(o) => o.into(),
            LookupError::Db(e) => e.into(),
            LookupError::Audit(e) => e.into(),
            e @ (LookupError::Fields(_) | LookupError::WrongCode) => {
                AppError::bad_request("invalid_lookup", e.to_string())
            }
        }
    }
}

/// A receipt number (or a code) as typed, as stored: full-width folded, spaces dropped, upper
/// case.
pub fn receipt_text(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    raw.nfkc()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

/// `CX`, eight digits, `-`, eight digits (`super::receipt_no`).
fn plausible_receipt(receipt: &str) -> bool {
    let b = receipt.as_bytes();
    b.len() == 19
        && receipt.starts_with("CX")
        && b[10] == b'-'
        && b[2..10].iter().chain(&b[11..]).all(u8::is_ascii_digit)
}

fn code_hash(key: &ServerKey, lookup: Uuid, code: &str) -> String {
    hex::encode(key.mac(
        b"application-lookup-code",
        format!("{lookup}:{code}").as_bytes(),
    ))
}

/// Counts a request of `what` (`ask` or `code`) against its address's hourly limit.
async fn within_address(
    db: &DatabaseConnection,
    what: &str,
    allowed: i32,
    address: Option<&str>,
    now: OffsetDateTime,
) -> Result<Result<(), OverLimit>, sea_orm::DbErr> {
    let Some(address) = address else {
        return Ok(Ok(()));
    };
    let key = format!("lookup:{what}:{}", address_bucket(address));
    let rate = count_rate(db, &key, Duration::hours(1), allowed, now).await?;
    Ok(if rate.within {
        Ok(())
    } else {
        Err(OverLimit {
            limit: if what == "ask" {
                "lookup"
            } else {
                "lookup_code"
            },
            allowed,
            until: next_minute(rate.until),
        })
    })
}

fn event(outcome: Outcome, client: &(Option<String>, Option<String>)) -> AuditEvent {
    AuditEvent::new(Actor::ANONYMOUS, Action::AccessLookup, outcome)
        .client(client.0.clone(), client.1.clone())
}

/// Counts this try against its address's hourly limit for `step`; over it, the refusal is
/// audited and returned.
async fn counted(
    db: &DatabaseConnection,
    audit: &Audit,
    step: &str,
    limit: i32,
    client: &(Option<String>, Option<String>),
    now: OffsetDateTime,
) -> Result<(), LookupError> {
    let counted = within_address(db, step, limit, client.0.as_deref(), now).await?;
    if let Err(over) = counted {
        let details = serde_json::json!({"step": step, "result": "address_limit"});
        audit
            .record(event(Outcome::Denied, client).details(details))
            .await?;
        return Err(LookupError::OverLimit(over));
    }
    Ok(())
}

/// The receipt number and mobile as typed, cleaned; or what is wrong with each, by field.
fn typed(
    typed_receipt: &str,
    typed_mobile: &str,
) -> Result<(String, String), Vec<(&'static str, String)>> {
    let receipt = receipt_text(typed_receipt);
    let mut wrong = Vec::new();
    if !plausible_receipt(&receipt) {
        wrong.push((
            "receipt_no",
            "受理编号的格式如 CX20261207-04718263，见提交申请后的页面或短信 (a receipt number looks like CX20261207-04718263: see the page shown after applying)".to_owned(),
        ));
    }
    let mobile = parse_mobile(typed_mobile);
    if let Err(e) = &mobile {
        wrong.push(("mobile", e.to_string()));
    }
    match mobile {
        Ok(m) if wrong.is_empty() => Ok((receipt, m)),
        _ => Err(wrong),
    }
}

/// A request for a code with a receipt number and a mobile number as typed: where they are an
/// application's and this installation sends SMS, a code is texted to that number (through the
/// outbox, as a notification of the application's account) — unless the application has had
/// its three this hour. The answer is the same whether or not any of that happened.
pub async fn ask(
    db: &DatabaseConnection,
    audit: &Audit,
    key: &ServerKey,
    channels: Channels,
    typed_receipt: &str,
    typed_mobile: &str,
    client: (Option<String>, Option<String>),
) -> Result<(), LookupError> {
    let now = audit.now();
    // Counted before anything is read: junk and refusals count too.
    counted(db, audit, "ask", ASKS_PER_ADDRESS_PER_HOUR, &client, now).await?;
    let (receipt, mobile) = match typed(typed_receipt, typed_mobile) {
        Ok(typed) => typed,
        Err(wrong) => {
            let fields: Vec<&str> = wrong.iter().map(|(f, _)| *f).collect();
            let details =
                serde_json::json!({"step": "ask", "result": "malformed", "fields": fields});
            audit
                .record(event(Outcome::Denied, &client).details(details))
                .await?;
            return Err(LookupError::Fields(wrong));
        }
    };
    let masked = Identifier::Mobile(mobile.clone()).masked();
    let app = matching(db, key, &receipt, &mobile).await?;
    let denied = |result: &str, app: Option<&access_application::Model>| {
        let mut e = event(Outcome::Denied, &client).details(serde_json::json!({
            "step": "ask", "receipt": receipt, "mobile": masked, "result": result,
            "application_id": app.map(|a| a.id),
        }));
        if let Some(app) = app {
            e = e.case(app.case_id);
        }
        e
    };
    let Some(app) = app else {
        audit.record(denied("no_match", None)).await?;
        return Ok(());
    };
    // Told through the account the application has (its inbox, and the SMS to the number it
    // gave): none where the number opens another role's account (`access::file`).
    let person = match app.account_id {
        Some(id) => account::Entity::find_by_id(id).one(db).await?,
        None => None,
    };
    let Some(person) = person.filter(|a| !a.disabled && channels.sms) else {
        audit.record(denied("no_channel", Some(&app))).await?;
        return Ok(());
    };
    let rate = count_rate(
        db,
        &format!("lookup:application:{}", app.id),
        Duration::hours(1),
        CODES_PER_APPLICATION_PER_HOUR,
        now,
    )
    .await?;
    if !rate.within {
        audit
            .record(denied("application_limit", Some(&app)))
            .await?;
        return Ok(());
    }
    let id = Uuid::now_v7();
    audit
        .record(
            event(Outcome::Allowed, &client)
                .case(app.case_id)
                .details(serde_json::json!({
                    "step": "ask", "receipt": receipt, "mobile": masked, "result": "texted",
                    "application_id": app.id, "lookup_id": id,
                })),
        )
        .await?;
    text_code(db, key, channels, &person, &app, id, now).await
}

/// An application's status link renewed: its new key, shown once.
pub struct Renewed {
    pub application_id: Uuid,
    pub receipt_no: String,
    pub status_key: String,
}

/// A code typed for a receipt number: if it is the newest asked for the application, within its
/// ten minutes, its five tries and unused, it is used up and the application's status key
/// replaced (the old link opens nothing any more). Anything else is [`LookupError::WrongCode`],
/// a wrong code counting against its code.
pub async fn enter(
    db: &DatabaseConnection,
    audit: &Audit,
    key: &ServerKey,
    typed_receipt: &str,
    typed_code: &str,
    client: (Option<String>, Option<String>),
) -> Result<Renewed, LookupError> {
    let now = audit.now();
    counted(db, audit, "code", TRIES_PER_ADDRESS_PER_HOUR, &client, now).await?;
    let code = receipt_text(typed_code);
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        let details =
            serde_json::json!({"step": "code", "result": "malformed", "fields": ["code"]});
        audit
            .record(event(Outcome::Denied, &client).details(details))
            .await?;
        return Err(LookupError::Fields(vec![(
            "code",
            "请输入短信中的6位数字验证码 (type the 6-digit code of the SMS)".to_owned(),
        )]));
    }
    let receipt = receipt_text(typed_receipt);
    let (app, newest) = newest_code(db, &receipt).await?;
    let receipt_shown: String = receipt.chars().take(40).collect();
    let denied = |result: &str, lookup: Option<Uuid>, failures: Option<i32>| {
        let mut e = event(Outcome::Denied, &client).details(serde_json::json!({
            "step": "code", "receipt": receipt_shown, "result": result,
            "application_id": app.as_ref().map(|a| a.id), "lookup_id": lookup,
            "failures": failures,
        }));
        if let Some(app) = &app {
            e = e.case(app.case_id);
        }
        e
    };
    let open = |l: &application_lookup::Model| {
        l.used_at.is_none() && l.expires_at > now && l.failures < CODE_TRIES
    };
    let (Some(app), Some(lookup)) = (&app, newest.filter(open)) else {
        audit.record(denied("no_code", None, None)).await?;
        return Err(LookupError::WrongCode);
    };
    let given = code_hash(key, lookup.id, &code);
    let right: bool = {
        use subtle::ConstantTimeEq;
        given.as_bytes().ct_eq(lookup.code_hash.as_bytes()).into()
    };
    if !right {
        let failures = failed_once_more(db, lookup.id).await?;
        audit
            .record(denied("wrong_code", Some(lookup.id), failures))
            .await?;
        return Err(LookupError::WrongCode);
    }
    // Used once: of two tries at once, one claims it.
    if !claimed(db, lookup.id, now).await? {
        audit
            .record(denied("no_code", Some(lookup.id), None))
            .await?;
        return Err(LookupError::WrongCode);
    }
    audit
        .record(
            event(Outcome::Allowed, &client)
                .case(app.case_id)
                .details(serde_json::json!({
                    "step": "code", "receipt": app.receipt_no, "result": "rotated",
                    "application_id": app.id, "lookup_id": lookup.id,
                })),
        )
        .await?;
    let status_key = hex::encode(rand::random::<[u8; 16]>());
    access_application::Entity::update_many()
        .col_expr(
            access_application::Column::StatusKeyHash,
            Expr::value(status_hash(key, app.id, &status_key)),
        )
        .filter(access_application::Column::Id.eq(app.id))
        .exec(db)
        .await?;
    Ok(Renewed {
        application_id: app.id,
        receipt_no: app.receipt_no.clone(),
        status_key,
    })
}

/// The application with this receipt number whose applicant gave this mobile (by its keyed
/// hash), if any.
async fn matching(
    db: &DatabaseConnection,
    key: &ServerKey,
    receipt: &str,
    mobile: &str,
) -> Result<Option<access_application::Model>, sea_orm::DbErr> {
    let hash = key.contact_hash(crate::keys::Contact::Mobile, mobile);
    Ok(access_application::Entity::find()
        .filter(access_application::Column::ReceiptNo.eq(receipt))
        .one(db)
        .await?
        .filter(|a| a.mobile_hash.as_deref() == Some(hash.as_str())))
}

/// Texts a new code to the application's number, and keeps its hash with the lookup `id`, in
/// one transaction.
async fn text_code(
    db: &DatabaseConnection,
    key: &ServerKey,
    channels: Channels,
    person: &account::Model,
    app: &access_application::Model,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), LookupError> {
    let txn = db.begin().await?;
    let receipt = app.receipt_no.clone();
    let event = Event::AccessLookupCode { receipt };
    let texted =
        crate::notifications::text_to(&txn, channels, person, &app.mobile, &event, now).await?;
    if let Some(note) = texted {
        application_lookup::ActiveModel {
            id: Set(id),
            application_id: Set(app.id),
            code_hash: Set(code_hash(
                key,
                id,
                &crate::notifications::code_of(key, note),
            )),
            created_at: Set(now),
            expires_at: Set(now + Duration::minutes(CODE_MINUTES)),
            failures: Set(0),
            used_at: Set(None),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The application a (plausible) receipt number names, and its newest code.
async fn newest_code(
    db: &DatabaseConnection,
    receipt: &str,
) -> Result<
    (
        Option<access_application::Model>,
        Option<application_lookup::Model>,
    ),
    sea_orm::DbErr,
> {
    use application_lookup::Column as L;
    if !plausible_receipt(receipt) {
        return Ok((None, None));
    }
    let Some(app) = access_application::Entity::find()
        .filter(access_application::Column::ReceiptNo.eq(receipt))
        .one(db)
        .await?
    else {
        return Ok((None, None));
    };
    let newest = application_lookup::Entity::find()
        .filter(L::ApplicationId.eq(app.id))
        .order_by_desc(L::CreatedAt)
        .order_by_desc(L::Id)
        .one(db)
        .await?;
    Ok((Some(app), newest))
}

/// Counts a wrong code against the lookup; its failures now (none if it was used meanwhile).
async fn failed_once_more(
    db: &DatabaseConnection,
    lookup: Uuid,
) -> Result<Option<i32>, sea_orm::DbErr> {
    use application_lookup::Column as L;
    let counted = application_lookup::Entity::update_many()
        .col_expr(L::Failures, Expr::col(L::Failures).add(1))
        .filter(L::Id.eq(lookup))
        .filter(L::UsedAt.is_null())
        .exec_with_returning(db)
        .await?;
    Ok(counted.first().map(|l| l.failures))
}

/// Uses the code once: of two tries at once, one claims it (still open, not over its tries).
async fn claimed(
    db: &DatabaseConnection,
    lookup: Uuid,
    now: OffsetDateTime,
) -> Result<bool, sea_orm::DbErr> {
    use application_lookup::Column as L;
    Ok(application_lookup::Entity::update_many()
        .col_expr(L::UsedAt, Expr::value(now))
        .filter(L::Id.eq(lookup))
        .filter(L::UsedAt.is_null())
        .filter(L::Failures.lt(CODE_TRIES))
        .filter(L::ExpiresAt.gt(now))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_are_read_as_people_type_them() {
        assert_eq!(
            receipt_text(" cx20261207－04718263 "),
            "CX20261207-04718263"
        );
        assert_eq!(
            receipt_text("ＣＸ2026 1207-0471 8263"),
            "CX20261207-04718263"
        );
        assert!(plausible_receipt("CX20261207-04718263"));
        for wrong in [
            "FH20261207-04718263",
            "CX2026120704718263",
            "CX20261207-0471826",
            "",
        ] {
            assert!(!plausible_receipt(wrong), "{wrong}");
        }
    }
}
