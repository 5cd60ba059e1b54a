//! Unit tests of `policy`.

use super::*;
use crate::vocab::MaterialKind;
use time::macros::datetime;
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

fn account(role: Role, department: Option<Uuid>) -> account::Model {
    account::Model {
        id: Uuid::now_v7(),
        role,
        display_name: "x".into(),
        login_key: "k".into(),
        login_masked: "m".into(),
        password_hash: Some("h".into()),
        department_id: department,
        disabled: false,
        failed_logins: 0,
        locked_until: None,
        created_at: NOW,
        updated_at: NOW,
        mobile: None,
        email: None,
        notify_sms: false,
        notify_email: false,
        unread_notifications: 0,
        organisation: None,
        second_factor_grace_until: None,
        second_factor_failures: 0,
        second_factor_locked_until: None,
        language: None,
        care: false,
    }
}

fn case(department: Uuid, status: CaseStatus) -> case::Model {
    case::Model {
        id: Uuid::now_v7(),
        department_id: department,
        case_number: "A1".into(),
        occurred_at: NOW,
        place: "p".into(),
        summary: "s".into(),
        fatal: true,
        complex: false,
        status,
        service_kind: None,
        served_on: None,
        created_by: Uuid::nil(),
        created_at: NOW,
        updated_at: NOW,
        status_changed_by: None,
        status_changed_at: None,
    }
}

fn party_row(case: &case::Model, account: &account::Model) -> case_party::Model {
    case_party::Model {
        id: Uuid::now_v7(),
        case_id: case.id,
        account_id: account.id,
        label: "甲".into(),
        role: crate::vocab::PartyRole::Driver,
        name: "x".into(),
        created_by: Uuid::nil(),
        created_at: NOW,
        mobile: None,
    }
}

fn delegation(
    case: &case::Model,
    agent: &account::Model,
    until: OffsetDateTime,
    revoked: bool,
) -> delegation::Model {
    delegation::Model {
        id: Uuid::now_v7(),
        case_id: case.id,
        principal_party_id: Uuid::now_v7(),
        agent_account_id: agent.id,
        valid_from: NOW - time::Duration::days(1),
        valid_until: until,
        revoked_at: revoked.then_some(NOW),
        revoked_by: None,
        authorisation_material_id: None,
        created_by: Uuid::nil(),
        created_at: NOW,
        law_firm: None,
    }
}

fn facts(case: case::Model) -> CaseFacts {
    CaseFacts {
        case,
        party: None,
        delegations: Vec::new(),
        grants: Vec::new(),
    }
}

fn allowed(actor: &account::Model, f: &CaseFacts) -> Vec<CaseAction> {
    CaseAction::ALL
        .into_iter()
        .filter(|a| decide(actor, *a, f, NOW).is_ok())
        .collect()
}

#[test]
fn staff_run_their_own_brigades_cases_only() {
    let dep = Uuid::now_v7();
    let staff = account(Role::Staff, Some(dep));
    assert_eq!(
        allowed(&staff, &facts(case(dep, CaseStatus::Investigating))),
        CaseAction::ALL.to_vec()
    );
    let other = facts(case(Uuid::now_v7(), CaseStatus::Served));
    let d = decide(&staff, CaseAction::View, &other, NOW).unwrap_err();
    assert_eq!(
        d,
        Denied {
            reason: "other_brigade",
            hide: true
        }
    );
}

#[test]
fn parties_see_their_case_by_stage() {
    let party = account(Role::Party, None);
    for (status, expected) in [
        (CaseStatus::Investigating, vec![]),
        (
            CaseStatus::Disclosing,
            vec![
                CaseAction::View,
                CaseAction::ViewMaterial,
                CaseAction::ViewAccessHistory,
            ],
        ),
        (
            CaseStatus::Served,
            vec![
                CaseAction::View,
                CaseAction::ViewMaterial,
                CaseAction::Download,
                CaseAction::ViewAccessHistory,
            ],
        ),
        (
            CaseStatus::Closed,
            vec![
                CaseAction::View,
                CaseAction::ViewMaterial,
                CaseAction::Download,
                CaseAction::ViewAccessHistory,
            ],
        ),
    ] {
        let c = case(Uuid::now_v7(), status);
        let mut f = facts(c.clone());
        f.party = Some(party_row(&c, &party));
        assert_eq!(allowed(&party, &f), expected, "{status}");
    }
    let c = case(Uuid::now_v7(), CaseStatus::Disclosing);
    let mut f = facts(c.clone());
    f.party = Some(party_row(&c, &party));
    assert_eq!(
        decide(&party, CaseAction::Download, &f, NOW)
            .unwrap_err()
            .reason,
        "view_only"
    );
    // Another case: it does not exist for them.
    let stranger = facts(case(Uuid::now_v7(), CaseStatus::Served));
    assert_eq!(
        decide(&party, CaseAction::View, &stranger, NOW).unwrap_err(),
        Denied {
            reason: "not_related",
            hide: true
        }
    );
}

#[test]
fn agents_act_within_a_current_delegation() {
    let agent = account(Role::Agent, None);
    let c = case(Uuid::now_v7(), CaseStatus::Served);
    let mut f = facts(c.clone());
    f.delegations = vec![delegation(
        &c,
        &agent,
        NOW + time::Duration::days(30),
        false,
    )];
    assert!(decide(&agent, CaseAction::Download, &f, NOW).is_ok());
    assert!(decide(&agent, CaseAction::Manage, &f, NOW).is_err());

    f.delegations = vec![delegation(
        &c,
        &agent,
        NOW - time::Duration::hours(1),
        false,
    )];
    assert_eq!(
        decide(&agent, CaseAction::View, &f, NOW)
            .unwrap_err()
            .reason,
        "delegation_expired"
    );
    f.delegations = vec![delegation(&c, &agent, NOW + time::Duration::days(30), true)];
    assert_eq!(
        decide(&agent, CaseAction::View, &f, NOW)
            .unwrap_err()
            .reason,
        "delegation_revoked"
    );
    f.delegations = vec![];
    assert!(decide(&agent, CaseAction::View, &f, NOW).unwrap_err().hide);
}

#[test]
fn admins_view_but_do_not_run_or_download() {
    let admin = account(Role::Admin, None);
    let f = facts(case(Uuid::now_v7(), CaseStatus::Served));
    assert_eq!(
        allowed(&admin, &f),
        vec![CaseAction::View, CaseAction::ViewAccessHistory]
    );
}

fn material(
    case: &case::Model,
    kind: MaterialKind,
    state: MaterialState,
    superseded: bool,
) -> material::Model {
    material::Model {
        id: Uuid::now_v7(),
        case_id: case.id,
        kind,
        title: "t".into(),
        original_name: "n".into(),
        content_type: "application/pdf".into(),
        size: 1,
        sha256: "0".repeat(64),
        crc32: 0,
        object_key: "k".into(),
        state,
        withhold_ground: None,
        withhold_note: None,
        uploaded_by: Uuid::nil(),
        uploaded_at: NOW,
        decided_by: None,
        decided_at: None,
        superseded_by: superseded.then(Uuid::now_v7),
        sm3: None,
        proves: None,
    }
}

#[test]
fn parties_see_only_released_current_evidence_and_staff_see_all() {
    let dep = Uuid::now_v7();
    let staff = account(Role::Staff, Some(dep));
    let party = account(Role::Party, None);
    let c = case(dep, CaseStatus::Served);
    let mut f = facts(c.clone());
    f.party = Some(party_row(&c, &party));
    let party_permit = decide(&party, CaseAction::ViewMaterial, &f, NOW).unwrap();
    let staff_permit = decide(&staff, CaseAction::ViewMaterial, &f, NOW).unwrap();
    for (kind, state, superseded, party_sees) in [
        (
            MaterialKind::SceneDiagram,
            MaterialState::Released,
            false,
            true,
        ),
        (
            MaterialKind::SceneDiagram,
            MaterialState::Released,
            true,
            false,
        ),
        (
            MaterialKind::SurveyRecord,
            MaterialState::Draft,
            false,
            false,
        ),
        (
            MaterialKind::ExpertOpinion,
            MaterialState::Withheld,
            false,
            false,
        ),
        (
            MaterialKind::Authorisation,
            MaterialState::Draft,
            false,
            false,
        ),
        (
            MaterialKind::Authorisation,
            MaterialState::Released,
            false,
            false,
        ),
    ] {
        let m = material(&c, kind, state, superseded);
        assert_eq!(
            material_visible(&party_permit, &party, &m).is_ok(),
            party_sees,
            "{kind} {state} {superseded}"
        );
        assert!(
            material_visible(&party_permit, &party, &m)
                .err()
                .is_none_or(|d| d.hide)
        );
        assert!(
            material_visible(&staff_permit, &staff, &m).is_ok(),
            "staff see {kind} {state}"
        );
    }
    // A material of another case never passes on this case's permit.
    let elsewhere = material(
        &case(dep, CaseStatus::Served),
        MaterialKind::SceneDiagram,
        MaterialState::Released,
        false,
    );
    assert!(material_visible(&staff_permit, &staff, &elsewhere).is_err());
}

#[test]
fn disabled_accounts_get_nothing() {
    let dep = Uuid::now_v7();
    let mut staff = account(Role::Staff, Some(dep));
    staff.disabled = true;
    assert!(allowed(&staff, &facts(case(dep, CaseStatus::Served))).is_empty());
}

fn grant(
    case: &case::Model,
    holder: &account::Model,
    mode: crate::vocab::AccessMode,
    last_day: time::Date,
) -> access_application::Model {
    access_application::Model {
        id: Uuid::now_v7(),
        receipt_no: "CX".into(),
        kind: holder.role,
        case_id: case.id,
        department_id: case.department_id,
        applicant_name: "李明".into(),
        organisation: None,
        credit_code: None,
        plate: "京A12345".into(),
        policy_no: None,
        mobile: "13700001111".into(),
        email: None,
        mobile_hash: None,
        proof_key: "k".into(),
        proof_name: "p.pdf".into(),
        proof_type: "application/pdf".into(),
        proof_size: 1,
        proof_sha256: "0".repeat(64),
        state: crate::vocab::AccessState::Approved,
        status_key_hash: String::new(),
        filed_at: NOW,
        decided_by: None,
        decided_at: None,
        refusal_reason: None,
        granted_kinds: Some("scene_diagram,scene_photo".into()),
        granted_mode: Some(mode),
        granted_until: Some(last_day),
        account_id: Some(holder.id),
        account_verified: true,
        voucher_code: None,
        voucher_code_expires_at: None,
    }
}

#[test]
fn a_grant_its_applicant_never_proved_opens_nothing() {
    use crate::vocab::AccessMode;
    let insurer = account(Role::Insurer, None);
    let c = case(Uuid::now_v7(), CaseStatus::Served);
    let mut f = facts(c.clone());
    let mut g = grant(&c, &insurer, AccessMode::Download, NOW.date());
    g.account_verified = false;
    f.grants = vec![g];
    assert!(allowed(&insurer, &f).is_empty());
    assert_eq!(
        decide(&insurer, CaseAction::View, &f, NOW).unwrap_err(),
        Denied {
            reason: "not_related",
            hide: true
        }
    );
}

#[test]
fn owners_and_insurers_see_the_granted_kinds_until_the_last_day() {
    use crate::vocab::AccessMode;
    let insurer = account(Role::Insurer, None);
    let c = case(Uuid::now_v7(), CaseStatus::Served);
    let mut f = facts(c.clone());
    // NOW is 20:00 CST on 24 November: a grant whose last day is the 24th holds until midnight.
    f.grants = vec![grant(&c, &insurer, AccessMode::Download, NOW.date())];
    assert_eq!(
        allowed(&insurer, &f),
        vec![
            CaseAction::View,
            CaseAction::ViewMaterial,
            CaseAction::Download
        ]
    );
    let permit = decide(&insurer, CaseAction::ViewMaterial, &f, NOW).unwrap();
    for (kind, sees) in [
        (MaterialKind::SceneDiagram, true),
        (MaterialKind::ScenePhoto, true),
        (MaterialKind::SurveyRecord, false),
        (MaterialKind::ExpertOpinion, false),
    ] {
        let m = material(&c, kind, MaterialState::Released, false);
        assert_eq!(
            material_visible(&permit, &insurer, &m).is_ok(),
            sees,
            "{kind}"
        );
    }
    let draft = material(&c, MaterialKind::SceneDiagram, MaterialState::Draft, false);
    assert!(material_visible(&permit, &insurer, &draft).is_err());
    // The next day: ended, and said so (not hidden).
    let tomorrow = NOW + time::Duration::hours(4);
    let d = decide(&insurer, CaseAction::View, &f, tomorrow).unwrap_err();
    assert_eq!(
        d,
        Denied {
            reason: "grant_expired",
            hide: false
        }
    );
    // View only: no download, explained.
    f.grants = vec![grant(&c, &insurer, AccessMode::View, NOW.date())];
    assert_eq!(
        decide(&insurer, CaseAction::Download, &f, NOW)
            .unwrap_err()
            .reason,
        "grant_view_only"
    );
    // A grant of another role, another account or another case gives nothing, hidden.
    let owner = account(Role::Owner, None);
    assert!(decide(&owner, CaseAction::View, &f, NOW).unwrap_err().hide);
    let other = facts(case(Uuid::now_v7(), CaseStatus::Served));
    assert!(
        decide(&insurer, CaseAction::View, &other, NOW)
            .unwrap_err()
            .hide
    );
    // Not under investigation, like the parties; never the access history.
    let mut inv = facts(case(c.department_id, CaseStatus::Investigating));
    inv.grants = vec![grant(&inv.case, &insurer, AccessMode::Download, NOW.date())];
    assert_eq!(
        decide(&insurer, CaseAction::View, &inv, NOW)
            .unwrap_err()
            .reason,
        "not_open"
    );
    assert!(decide(&insurer, CaseAction::ViewAccessHistory, &f, NOW).is_err());
    assert!(decide(&insurer, CaseAction::Manage, &f, NOW).is_err());
}

#[test]
fn a_revoked_grant_opens_nothing_and_says_so() {
    use crate::vocab::{AccessMode, AccessState};
    let insurer = account(Role::Insurer, None);
    let c = case(Uuid::now_v7(), CaseStatus::Served);
    let mut f = facts(c.clone());
    let mut g = grant(
        &c,
        &insurer,
        AccessMode::Download,
        NOW.date() + time::Duration::days(30),
    );
    g.state = AccessState::Revoked;
    f.grants = vec![g.clone()];
    assert!(allowed(&insurer, &f).is_empty());
    assert_eq!(
        decide(&insurer, CaseAction::View, &f, NOW).unwrap_err(),
        Denied {
            reason: "grant_revoked",
            hide: false
        }
    );
    // Another grant of the same holder, in force, still opens the case.
    let mut current = grant(&c, &insurer, AccessMode::View, NOW.date());
    current.id = Uuid::now_v7();
    f.grants = vec![g, current];
    assert!(decide(&insurer, CaseAction::View, &f, NOW).is_ok());
}
