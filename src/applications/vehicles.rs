//! The vehicles of a case (车辆): staff record each plate and, where they know it, its insurer,
//! and an owner's or insurer's application is checked against them before it is decided — a
//! plate the case does not have, or an insurer other than the one recorded for it, is flagged
//! on the decision page. Recording and removing a vehicle is an update of the case (audited
//! `case.update`).
//!
//! They live with the applications, not the cases, because a plate is read as an application
//! gives it ([`super::fields::plate_text`]), and because checking applications is what they are
//! for.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::clean_text;
use super::fields::{plate_text, plausible_plate};
use crate::audit::{Action, Actor, Audit, Event, Outcome};
use crate::cases::CaseError;
use crate::db::entities::{access_application, account, case, case_vehicle};
use crate::policy::{CaseAction, CasePermit};
use crate::vocab::Role;

/// A vehicle as the staff form sends it (before checking).
#[derive(Clone, Debug, Default)]
pub struct NewVehicle {
    pub plate: String,
    /// Empty: not known.
    pub insurer: String,
    pub description: String,
}

/// The vehicles recorded on a case, in the order they were recorded.
pub async fn of_case(
    db: &impl ConnectionTrait,
    case_id: Uuid,
) -> Result<Vec<case_vehicle::Model>, DbErr> {
    case_vehicle::Entity::find()
        .filter(case_vehicle::Column::CaseId.eq(case_id))
        .order_by_asc(case_vehicle::Column::CreatedAt)
        .order_by_asc(case_vehicle::Column::Id)
        .all(db)
        .await
}

/// Records a vehicle on the permit's case: a plausible plate, not recorded on it already; the
/// insurer 4 to 100 characters if given; a description of at most 100. Audited before it is
/// kept.
pub async fn add(
    db: &DatabaseConnection,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    new: NewVehicle,
) -> Result<case_vehicle::Model, CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    debug_assert_eq!(permit.case_id, case.id);
    let plate = plate_text(&new.plate);
    if !plausible_plate(&plate) {
        return Err(CaseError::field(
            "plate",
            "请填写车辆的号牌号码，如“京A12345” (give the vehicle's plate number, e.g. 京A12345)",
        ));
    }
    let insurer = Some(clean_text(&new.insurer)).filter(|i| !i.is_empty());
    if insurer
        .as_ref()
        .is_some_and(|i| !(4..=100).contains(&i.chars().count()))
    {
        return Err(CaseError::field(
            "insurer",
            "保险公司名称为4至100字；不知道可以不填 (the insurer's name is 4 to 100 characters; leave it empty if not known)",
        ));
    }
    let description = Some(clean_text(&new.description)).filter(|d| !d.is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 100)
    {
        return Err(CaseError::field(
            "description",
            "车辆说明不超过100字 (the description is at most 100 characters)",
        ));
    }
    let already = || {
        CaseError::field(
            "plate",
            "本案已登记该号牌的车辆 (this case already has a vehicle with this plate)",
        )
    };
    if of_case(db, case.id).await?.iter().any(|v| v.plate == plate) {
        return Err(already());
    }
    let id = Uuid::now_v7();
    audit
        .record(
            Event::new(
                Actor::account(staff.id, staff.role),
                Action::CaseUpdate,
                Outcome::Allowed,
            )
            .case(case.id)
            .details(serde_json::json!({
                "vehicle": "add", "vehicle_id": id, "plate": plate, "insurer": insurer,
            })),
        )
        .await?;
    let inserted = case_vehicle::ActiveModel {
        id: Set(id),
        case_id: Set(case.id),
        plate: Set(plate),
        insurer: Set(insurer),
        description: Set(description),
        created_by: Set(staff.id),
        created_at: Set(audit.now()),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(v) => Ok(v),
        // Two officers recording the same plate at once: the unique index keeps one.
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Err(already())
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes a vehicle of the permit's case (`None`: the case has no such vehicle), audited.
pub async fn remove(
    db: &DatabaseConnection,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    vehicle_id: Uuid,
) -> Result<Option<case_vehicle::Model>, CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    debug_assert_eq!(permit.case_id, case.id);
    let Some(vehicle) = case_vehicle::Entity::find_by_id(vehicle_id)
        .one(db)
        .await?
        .filter(|v| v.case_id == case.id)
    else {
        return Ok(None);
    };
    audit
        .record(
            Event::new(
                Actor::account(staff.id, staff.role),
                Action::CaseUpdate,
                Outcome::Allowed,
            )
            .case(case.id)
            .details(serde_json::json!({
                "vehicle": "remove", "vehicle_id": vehicle.id, "plate": vehicle.plate,
                "insurer": vehicle.insurer,
            })),
        )
        .await?;
    case_vehicle::Entity::delete_by_id(vehicle.id)
        .exec(db)
        .await?;
    Ok(Some(vehicle))
}

/// How an application's plate (and, for an insurer, its company) compares with the vehicles
/// recorded on its case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlateCheck {
    /// The case has no vehicles recorded: nothing to compare with.
    NoneRecorded,
    /// The plate is none of the case's.
    Unmatched,
    /// The plate is the case's, recorded with another insurer than the applicant's company.
    InsurerDiffers { recorded: String },
    /// The plate is the case's (and the insurer, where both are known, is the applicant's).
    Matches,
}

/// Compares an application with the vehicles of its case.
pub fn check(app: &access_application::Model, vehicles: &[case_vehicle::Model]) -> PlateCheck {
    if vehicles.is_empty() {
        return PlateCheck::NoneRecorded;
    }
    let plate = plate_text(&app.plate);
    let Some(vehicle) = vehicles.iter().find(|v| v.plate == plate) else {
        return PlateCheck::Unmatched;
    };
    match (&vehicle.insurer, &app.organisation) {
        (Some(recorded), Some(applicant))
            if app.kind == Role::Insurer && !same_insurer(recorded, applicant) =>
        {
            PlateCheck::InsurerDiffers {
                recorded: recorded.clone(),
            }
        }
        _ => PlateCheck::Matches,
    }
}

/// Whether two names are of one insurer as people write them: the same once widths, spaces and
/// brackets are set aside, or one within the other (`中国人民财产保险` and
/// `中国人民财产保险股份有限公司`). Abbreviations (`人保财险`) do not match: a flag asks the officer
/// to look, it decides nothing.
pub fn same_insurer(a: &str, b: &str) -> bool {
    let key = |s: &str| -> String {
        crate::auth::identifier::clean(&clean_text(s))
            .chars()
            .filter(|c| !matches!(c, '(' | ')' | '（' | '）' | '·' | '.' | ','))
            .collect::<String>()
            .to_uppercase()
    };
    let (a, b) = (key(a), key(b));
    !a.is_empty() && !b.is_empty() && (a.contains(&b) || b.contains(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vehicle(plate: &str, insurer: Option<&str>) -> case_vehicle::Model {
        case_vehicle::Model {
            id: Uuid::now_v7(),
            case_id: Uuid::nil(),
            plate: plate_text(plate),
            insurer: insurer.map(str::to_owned),
            description: None,
            created_by: Uuid::nil(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn application(
        kind: Role,
        plate: &str,
        organisation: Option<&str>,
    ) -> access_application::Model {
        access_application::Model {
            id: Uuid::now_v7(),
            receipt_no: "CX".into(),
            kind,
            case_id: Uuid::nil(),
            department_id: Uuid::nil(),
            applicant_name: "李明".into(),
            organisation: organisation.map(str::to_owned),
            credit_code: None,
            plate: plate.into(),
            policy_no: None,
            mobile: "13700001111".into(),
            email: None,
            mobile_hash: None,
            proof_key: "k".into(),
            proof_name: "p.pdf".into(),
            proof_type: "application/pdf".into(),
            proof_size: 1,
            proof_sha256: String::new(),
            state: crate::vocab::AccessState::Pending,
            status_key_hash: String::new(),
            filed_at: time::OffsetDateTime::UNIX_EPOCH,
            decided_by: None,
            decided_at: None,
            refusal_reason: None,
            granted_kinds: None,
            granted_mode: None,
            granted_until: None,
            account_id: None,
            account_verified: false,
            voucher_code: None,
            voucher_code_expires_at: None,
        }
    }

    #[test]
    fn an_application_is_checked_against_the_plates_and_insurers_recorded() {
        let insurer = application(Role::Insurer, "京A12345", Some("中国人民财产保险"));
        assert_eq!(check(&insurer, &[]), PlateCheck::NoneRecorded);
        let other = [vehicle("京B99999", None)];
        assert_eq!(check(&insurer, &other), PlateCheck::Unmatched);
        let unknown = [vehicle("京a·12345", None)];
        assert_eq!(check(&insurer, &unknown), PlateCheck::Matches);
        let same = [vehicle("京A12345", Some("中国人民财产保险股份有限公司"))];
        assert_eq!(check(&insurer, &same), PlateCheck::Matches);
        let differs = [vehicle("京A12345", Some("中国太平洋财产保险"))];
        assert_eq!(
            check(&insurer, &differs),
            PlateCheck::InsurerDiffers {
                recorded: "中国太平洋财产保险".into()
            }
        );
        // An owner names no insurer: the plate alone is checked.
        let owner = application(Role::Owner, "京A 12345", None);
        assert_eq!(check(&owner, &differs), PlateCheck::Matches);
    }

    #[test]
    fn insurers_match_as_people_write_them() {
        assert!(same_insurer("中国人民财产保险", "中国人民财产保险"));
        assert!(same_insurer(
            "中国人民财产保险股份有限公司（北京分公司）",
            "中国人民财产保险股份有限公司北京分公司"
        ));
        assert!(same_insurer("ＰＩＣＣ", "picc property"));
        assert!(!same_insurer("中国人民财产保险", "中国太平洋财产保险"));
        assert!(!same_insurer("", "中国人民财产保险"));
    }
}
