//! Applications to query a case by a vehicle owner or an insurer's staff member (查询申请),
//! made on a public form without an account. Staff of the brigade handling the case approve one
//! with a scope — which kinds of material, view or download, until which day — or refuse it
//! with a reason (`grant`); either way the applicant is told through their account, found or
//! made when they apply (role `owner` or `insurer`, not activated until approval), and collects
//! the query voucher (查询凭证) with its one-time code through the private link shown when
//! applying.

pub mod held;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fields::{FieldErrors, code_text, credit_code_checks, plausible_code};
pub use super::fields::{plate_text, plausible_plate};
use super::{ApplicationError, clean_text, receipt_no};
use crate::audit::{Action, Actor, Audit, Event as AuditEvent, Outcome};
use crate::auth::identifier::{Identifier, parse_mobile};
use crate::db::entities::{access_application, account, case};
use crate::keys::{Contact, ServerKey};
use crate::materials::Received;
use crate::vocab::{AccessState, Role};

/// Applications one case may receive per day.
pub const PER_CASE_PER_DAY: i32 = 10;
/// The longest a grant may run.
pub const LONGEST_GRANT_DAYS: i64 = 180;

/// What the public form sends (before checking).
#[derive(Clone, Debug, Default)]
pub struct NewAccess {
    /// `owner` or `insurer`.
    pub kind: String,
    /// The brigade's id (the form lists the brigades).
    pub brigade: String,
    pub case_number: String,
    pub applicant_name: String,
    pub organisation: String,
    pub credit_code: String,
    pub plate: String,
    pub policy_no: String,
    pub mobile: String,
    pub email: String,
}

/// A form that passed its checks, with the case it names.
#[derive(Clone, Debug)]
pub struct Checked {
    pub kind: Role,
    pub case: case::Model,
    pub applicant_name: String,
    pub organisation: Option<String>,
    pub credit_code: Option<String>,
    pub plate: String,
    pub policy_no: Option<String>,
    pub mobile: String,
    pub email: Option<String>,
}

/// Why a form did not pass [`check`].
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Every field that breaks a rule, in the form's order: the form marks them all at once.
    #[error("{0}")]
    Fields(FieldErrors),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// Checks every field of the form and finds the case it names (before any file is kept),
/// collecting all the fields that break a rule. A case number the brigade does not have is
/// refused on its field.
pub async fn check(db: &DatabaseConnection, new: &NewAccess) -> Result<Checked, CheckError> {
    let mut errors = FieldErrors::default();
    let kind = Role::parse(new.kind.trim()).filter(|r| matches!(r, Role::Owner | Role::Insurer));
    if kind.is_none() {
        errors.add(
            "kind",
            "请选择申请人身份：车辆所有人或保险公司 (choose who you are: the vehicle's owner or its insurer)",
        );
    }
    let case = named_case(db, new, &mut errors).await?;
    let name = clean_text(&new.applicant_name);
    if !(2..=50).contains(&name.chars().count()) {
        errors.add(
            "applicant_name",
            "请填写申请人姓名（2至50字） (give the applicant's name, 2 to 50 characters)",
        );
    }
    // An insurer's fields are checked only when the applicant says they are one.
    let insurer = kind == Some(Role::Insurer);
    let organisation = clean_text(&new.organisation);
    if insurer && !(4..=100).contains(&organisation.chars().count()) {
        errors.add(
            "organisation",
            "请填写保险公司名称（4至100字） (give the insurer's name, 4 to 100 characters)",
        );
    }
    let credit_code = code_text(&new.credit_code);
    if insurer && !plausible_code(&credit_code) {
        errors.add(
            "credit_code",
            "请填写保险公司的统一社会信用代码或许可证号（6至30位字母或数字） (give the insurer's unified social credit code or licence number, 6 to 30 letters or digits)",
        );
    } else if insurer && credit_code.len() == 18 && !credit_code_checks(&credit_code) {
        errors.add(
            "credit_code",
            "统一社会信用代码有误（最后一位校验码不符），请按营业执照核对 (the unified social credit code is wrong: its check character does not match; copy it from the business licence)",
        );
    }
    let plate = plate_text(&new.plate);
    if !plausible_plate(&plate) {
        errors.add(
            "plate",
            "请填写事故车辆的号牌号码，如“京A12345” (give the accident vehicle's plate number, e.g. 京A12345)",
        );
    }
    let policy_no = code_text(&new.policy_no);
    if insurer && !plausible_code(&policy_no) {
        errors.add(
            "policy_no",
            "请填写承保事故车辆的保单号（6至30位字母或数字） (give the number of the policy covering the vehicle, 6 to 30 letters or digits)",
        );
    }
    let mobile = parse_mobile(&new.mobile)
        .map_err(|e| errors.add("mobile", &e.to_string()))
        .ok();
    let email = match new.email.trim() {
        "" => Some(None),
        raw => crate::notifications::parse_email(raw).map(Some),
    };
    if email.is_none() {
        errors.add(
            "email",
            "电子邮箱格式不正确 (the e-mail address is not valid)",
        );
    }
    match (kind, case, mobile, email) {
        (Some(kind), Some(case), Some(mobile), Some(email)) if errors.is_empty() => Ok(Checked {
            kind,
            case,
            applicant_name: name,
            organisation: insurer.then_some(organisation),
            credit_code: insurer.then_some(credit_code),
            plate,
            policy_no: insurer.then_some(policy_no),
            mobile,
            email,
        }),
        _ => Err(CheckError::Fields(errors)),
    }
}

/// The case the form names — its brigade's, by the number as printed or as loosely typed — or
/// why not, on the field (`brigade`, `case_number`).
async fn named_case(
    db: &DatabaseConnection,
    new: &NewAccess,
    errors: &mut FieldErrors,
) -> Result<Option<case::Model>, sea_orm::DbErr> {
    let Ok(brigade) = Uuid::parse_str(new.brigade.trim()) else {
        errors.add(
            "brigade",
            "请选择办案大队 (choose the brigade handling the case)",
        );
        return Ok(None);
    };
    let number = clean_text(&new.case_number);
    let found = if number.is_empty() || number.chars().count() > 64 {
        None
    } else {
        match case::Entity::find()
            .filter(case::Column::DepartmentId.eq(brigade))
            .filter(case::Column::CaseNumber.eq(number.clone()))
            .one(db)
            .await?
        {
            Some(c) => Some(c),
            None => case_by_loose_number(db, brigade, &number).await?,
        }
    };
    if found.is_none() {
        errors.add(
            "case_number",
            "所选大队没有这个事故编号，请核对事故认定书或交警出具的材料上的编号 (the chosen brigade has no case with this number: check it against the determination or the papers the police gave)",
        );
    }
    Ok(found)
}

/// The applicant's own earlier application like this one — the same case, plate, name and
/// mobile number — still pending, or approved and in force: filing again is to be confirmed.
/// Matched on the mobile number given too, so that what the warning shows (when, the receipt
/// number) is about the person's own application, never another's.
pub async fn earlier_same(
    db: &DatabaseConnection,
    key: &ServerKey,
    checked: &Checked,
    now: OffsetDateTime,
) -> Result<Option<access_application::Model>, sea_orm::DbErr> {
    use sea_orm::QueryOrder;
    Ok(access_application::Entity::find()
        .filter(access_application::Column::CaseId.eq(checked.case.id))
        .filter(access_application::Column::Plate.eq(checked.plate.clone()))
        .filter(access_application::Column::ApplicantName.eq(checked.applicant_name.clone()))
        .filter(
            access_application::Column::MobileHash
                .eq(key.contact_hash(Contact::Mobile, &checked.mobile)),
        )
        .filter(
            access_application::Column::State.is_in([AccessState::Pending, AccessState::Approved]),
        )
        .order_by_desc(access_application::Column::FiledAt)
        .all(db)
        .await?
        .into_iter()
        .find(|a| a.state == AccessState::Pending || a.in_force(now)))
}

/// The brigade's case whose number reads as `typed` does once brackets, widths, spaces and
/// leading zeros are set aside (`cases::number_key`) — one only: two that would both match
/// are no match (the applicant is asked to type it as printed).
async fn case_by_loose_number(
    db: &DatabaseConnection,
    brigade: Uuid,
    typed: &str,
) -> Result<Option<case::Model>, sea_orm::DbErr> {
    use sea_orm::QuerySelect;
    let wanted = crate::cases::number_key(typed);
    let numbers: Vec<(Uuid, String)> = case::Entity::find()
        .select_only()
        .column(case::Column::Id)
        .column(case::Column::CaseNumber)
        .filter(case::Column::DepartmentId.eq(brigade))
        .into_tuple()
        .all(db)
        .await?;
    let mut matching = numbers
        .into_iter()
        .filter(|(_, n)| crate::cases::number_key(n) == wanted);
    match (matching.next(), matching.next()) {
        (Some((id, _)), None) => case::Entity::find_by_id(id).one(db).await,
        _ => Ok(None),
    }
}

/// Which limit a submission passed, and until when it holds (rounded up to the minute, as the
/// page shows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverLimit {
    /// `address` (per hour) or `case` (per day): the catalog's `error.rate_limited.<limit>`.
    pub limit: &'static str,
    pub allowed: i32,
    pub until: OffsetDateTime,
}

impl From<OverLimit> for crate::error::AppError {
    fn from(o: OverLimit) -> Self {
        crate::error::AppError::RateLimited {
            limit: o.limit,
            allowed: o.allowed,
            until: o.until,
        }
    }
}

/// `t`, or the next whole minute after it: "try again after 10:34" must not be early.
pub(super) fn next_minute(t: OffsetDateTime) -> OffsetDateTime {
    let floor = t
        .replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(t);
    if floor == t {
        t
    } else {
        floor + Duration::minutes(1)
    }
}

/// Counts a submission against the limits — per address per hour (`address`), per case per
/// day (`case_id`) — and says which one it passed, if any. Each count is one atomic upsert
/// (parallel submissions each see their own count). The address is counted before anything is
/// read, so refusals count against it; the case only once a submission's fields and proof have
/// passed, just before filing, so junk cannot use up a case's day.
pub async fn within_limits(
    db: &impl ConnectionTrait,
    per_address_per_hour: i32,
    address: Option<&str>,
    case_id: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<Result<(), OverLimit>, sea_orm::DbErr> {
    use crate::auth::throttle::count_rate;
    if let Some(a) = address {
        let rate = count_rate(
            db,
            &format!("apply:address:{}", crate::auth::throttle::address_bucket(a)),
            Duration::hours(1),
            per_address_per_hour,
            now,
        )
        .await?;
        if !rate.within {
            return Ok(Err(OverLimit {
                limit: "address",
                allowed: per_address_per_hour,
                until: next_minute(rate.until),
            }));
        }
    }
    if let Some(c) = case_id {
        let rate = count_rate(
            db,
            &format!("apply:case:{c}"),
            Duration::days(1),
            PER_CASE_PER_DAY,
            now,
        )
        .await?;
        if !rate.within {
            return Ok(Err(OverLimit {
                limit: "case",
                allowed: PER_CASE_PER_DAY,
                until: next_minute(rate.until),
            }));
        }
    }
    Ok(Ok(()))
}

pub(super) fn status_hash(key: &ServerKey, id: Uuid, status_key: &str) -> String {
    hex::encode(key.mac(
        b"access-application-status",
        format!("{id}:{status_key}").as_bytes(),
    ))
}

/// A filed application and the key of its private status link (shown once).
pub struct Filed {
    pub application: access_application::Model,
    pub status_key: String,
}

/// Files a checked application with its proof (already in the store: under the case, or held
/// from an earlier try — see `held`; the caller removes it if this refuses; `gc` would). Audited (`access.apply`, by an anonymous actor with the
/// client's address), and told to the applicant at their contact.
#[allow(clippy::too_many_arguments)]
pub async fn file(
    db: &DatabaseConnection,
    audit: &Audit,
    key: &ServerKey,
    checked: Checked,
    proof: &Received,
    client: (Option<String>, Option<String>),
) -> Result<Filed, ApplicationError> {
    let now = audit.now();
    let id = Uuid::now_v7();
    let receipt = receipt_no("CX", now);
    let status_key = hex::encode(rand::random::<[u8; 16]>());
    audit
        .record(
            AuditEvent::new(Actor::ANONYMOUS, Action::AccessApply, Outcome::Allowed)
                .case(checked.case.id)
                .client(client.0, client.1)
                .details(serde_json::json!({
                    "application_id": id, "receipt": receipt, "kind": checked.kind,
                    "mobile": Identifier::Mobile(checked.mobile.clone()).masked(),
                    "proof_size": proof.stored.size, "sha256": proof.stored.sha256,
                })),
        )
        .await?;
    let txn = db.begin().await?;
    let (account_id, made) = applicant_account(&txn, key, &checked, now).await?;
    let row = access_application::ActiveModel {
        id: Set(id),
        receipt_no: Set(receipt),
        kind: Set(checked.kind),
        case_id: Set(checked.case.id),
        department_id: Set(checked.case.department_id),
        applicant_name: Set(checked.applicant_name),
        organisation: Set(checked.organisation),
        credit_code: Set(checked.credit_code),
        plate: Set(checked.plate),
        policy_no: Set(checked.policy_no),
        mobile: Set(key.seal_contact(Contact::Mobile, &checked.mobile)),
        email: Set(checked
            .email
            .as_deref()
            .map(|e| key.seal_contact(Contact::Email, e))),
        mobile_hash: Set(Some(key.contact_hash(Contact::Mobile, &checked.mobile))),
        proof_key: Set(proof.key.as_str().to_owned()),
        proof_name: Set(proof.original_name.clone()),
        proof_type: Set(proof.content_type.to_owned()),
        proof_size: Set(proof.stored.size as i64),
        proof_sha256: Set(proof.stored.sha256.clone()),
        state: Set(AccessState::Pending),
        status_key_hash: Set(status_hash(key, id, &status_key)),
        filed_at: Set(now),
        decided_by: Set(None),
        decided_at: Set(None),
        refusal_reason: Set(None),
        granted_kinds: Set(None),
        granted_mode: Set(None),
        granted_until: Set(None),
        account_id: Set(account_id),
        // The application that made the account is the one whose voucher activates it; any
        // other giving the same number is claimed by signing in (see `grant::claim`).
        account_verified: Set(made),
        voucher_code: Set(None),
        voucher_code_expires_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Filed {
        application: row,
        status_key,
    })
}

/// The applicant's account: theirs if their mobile number already opens one of the role they
/// apply as (an insurer's staff member applying again), else a new one — not activated, no
/// password, no code, and no access until an application of it is approved. It is what the
/// applicant is told through (SMS to the mobile given, e-mail if given, and the inbox once
/// activated). A number that opens an account of another role gets none: staff are told at
/// approval; nothing here tells the public which numbers have accounts. Also says whether this
/// application made the account (only then may its voucher issue the account's first code).
async fn applicant_account(
    txn: &impl ConnectionTrait,
    key: &ServerKey,
    checked: &Checked,
    now: OffsetDateTime,
) -> Result<(Option<Uuid>, bool), ApplicationError> {
    let identifier = Identifier::Mobile(checked.mobile.clone());
    let login_key = identifier.login_key(key);
    let find = || {
        account::Entity::find()
            .filter(account::Column::LoginKey.eq(login_key.clone()))
            .one(txn)
    };
    if let Some(a) = find().await? {
        return Ok((
            (a.role == checked.kind && !a.disabled).then_some(a.id),
            false,
        ));
    }
    let id = Uuid::now_v7();
    let inserted = account::ActiveModel {
        id: Set(id),
        role: Set(checked.kind),
        display_name: Set(checked.applicant_name.clone()),
        login_key: Set(login_key.clone()),
        login_masked: Set(identifier.masked()),
        password_hash: Set(None),
        department_id: Set(None),
        disabled: Set(false),
        failed_logins: Set(0),
        locked_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        mobile: Set(Some(key.seal_contact(Contact::Mobile, &checked.mobile))),
        email: Set(checked
            .email
            .as_deref()
            .map(|e| key.seal_contact(Contact::Email, e))),
        notify_sms: Set(true),
        notify_email: Set(checked.email.is_some()),
        unread_notifications: Set(0),
        organisation: Set(checked.organisation.clone()),
        second_factor_grace_until: Set(None),
        second_factor_failures: Set(0),
        second_factor_locked_until: Set(None),
        language: Set(Some(crate::i18n::Locale::current().code().to_owned())),
        // Applied in care mode: their pages stay in it once they sign in.
        care: Set(crate::telemetry::RequestContext::current().is_some_and(|c| c.care)),
    }
    .insert(txn)
    .await;
    match inserted {
        Ok(a) => Ok((Some(a.id), true)),
        // The same number applying twice at once: the other made it.
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Ok((
                find()
                    .await?
                    .filter(|a| a.role == checked.kind && !a.disabled)
                    .map(|a| a.id),
                false,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The application `id` if `status_key` is its key (the applicant's private link).
pub async fn by_status_key(
    db: &DatabaseConnection,
    key: &ServerKey,
    id: Uuid,
    status_key: &str,
) -> Result<Option<access_application::Model>, sea_orm::DbErr> {
    use subtle::ConstantTimeEq;
    let Some(app) = access_application::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let given = status_hash(key, id, status_key.trim());
    Ok(bool::from(given.as_bytes().ct_eq(app.status_key_hash.as_bytes())).then_some(app))
}

/// An access application and the case it names (staff pages).
pub async fn with_case(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<(access_application::Model, case::Model)>, sea_orm::DbErr> {
    let Some(app) = access_application::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    Ok(case::Entity::find_by_id(app.case_id)
        .one(db)
        .await?
        .map(|c| (app, c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_holds_until_the_next_whole_minute() {
        let t = time::macros::datetime!(2026-11-28 02:33:20.5 UTC);
        assert_eq!(
            next_minute(t),
            time::macros::datetime!(2026-11-28 02:34 UTC)
        );
        let whole = time::macros::datetime!(2026-11-28 02:34 UTC);
        assert_eq!(next_minute(whole), whole);
    }
}
