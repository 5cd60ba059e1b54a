//! The one place that answers "may this actor do this to this case?" — every route that touches a
//! case asks here, through `cases::authorize`, and gets either a `CasePermit` (which the domain
//! functions require) or a denial with its reason and the status to answer.
//!
//! The rules (MPS Order 146, DESIGN §1):
//! - staff: everything on their own brigade's cases; another brigade's cases do not exist (404);
//! - admins: may view any case and its access history; they do not run cases or download;
//! - parties: only cases they are a party of; nothing while `investigating`; view only while
//!   `disclosing` (Art. 63); view and download once `served` or `closed` (Art. 65);
//! - agents: as their principal, but only within a current, unrevoked delegation;
//! - anyone else: the case does not exist (404).
//!
//! And over accounts (DESIGN §4): a person's account spans every case they are party or agent
//! to, so staff may issue a code for, or reset, only an account whose cases and delegations all
//! lie in their own brigade ([`may_credential`]); anything wider is an administrator's act.

use time::OffsetDateTime;

use crate::db::entities::{account, case, case_party, delegation, material};
use crate::vocab::{CaseStatus, MaterialKind, MaterialState, Role};

/// What someone wants to do with a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaseAction {
    /// Open the case page (status, deadlines, list of released materials).
    View,
    /// Open a released material in the viewer.
    ViewMaterial,
    /// Download a released material, or the bundle.
    Download,
    /// Read who accessed the case's evidence.
    ViewAccessHistory,
    /// Staff work: edit, move status, register parties and agents, upload, release, withhold.
    Manage,
}

impl CaseAction {
    pub const ALL: [CaseAction; 5] = [
        CaseAction::View,
        CaseAction::ViewMaterial,
        CaseAction::Download,
        CaseAction::ViewAccessHistory,
        CaseAction::Manage,
    ];
}

/// The facts about the actor's relation to a case that the rules need.
#[derive(Clone, Debug)]
pub struct CaseFacts {
    pub case: case::Model,
    /// The actor's own party row on this case, if the actor is a party of it.
    pub party: Option<case_party::Model>,
    /// The actor's delegations on this case, if the actor is an agent.
    pub delegations: Vec<delegation::Model>,
}

/// Proof that policy allowed `action` on `case_id` for `actor_id`. Only `decide` makes one: the
/// private field keeps every other module of the crate from building it (`#[non_exhaustive]`
/// would not).
#[allow(clippy::manual_non_exhaustive)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasePermit {
    pub actor_id: uuid::Uuid,
    pub case_id: uuid::Uuid,
    pub action: CaseAction,
    /// The party the actor acts as or for (parties and agents), for labelling.
    pub as_party: Option<uuid::Uuid>,
    _private: (),
}

/// Why not, and what to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// Stable, audited: `not_related`, `other_brigade`, `not_open`, `view_only`,
    /// `delegation_expired`, `delegation_revoked`, `role`.
    pub reason: &'static str,
    /// The case's existence is private to this actor: answer 404, not 403.
    pub hide: bool,
}

fn deny(reason: &'static str, hide: bool) -> Result<CasePermit, Denied> {
    Err(Denied { reason, hide })
}

/// May `actor` issue an access code for, or reset, an account whose cases and delegations
/// belong to `departments`? Administrators may; staff only when every one of them is their own
/// brigade (an account on no case yet is theirs to credential).
pub fn may_credential(
    actor: &account::Model,
    departments: &std::collections::BTreeSet<uuid::Uuid>,
) -> bool {
    match (actor.role, actor.department_id) {
        (Role::Admin, _) => true,
        (Role::Staff, Some(own)) => departments.iter().all(|d| *d == own),
        (Role::Staff, None) | (Role::Party | Role::Agent, _) => false,
    }
}

/// Who may read the access-audit log, and how much of it: administrators all of it, staff the
/// events of their own brigade's cases; parties and agents only their case's history (on the
/// case page, through `decide`).
pub fn audit_scope(actor: &account::Model) -> Result<crate::audit::read::Scope, Denied> {
    match (actor.role, actor.department_id) {
        (Role::Admin, _) => Ok(crate::audit::read::Scope::All),
        (Role::Staff, Some(department)) => Ok(crate::audit::read::Scope::Brigade(department)),
        (Role::Staff, None) | (Role::Party | Role::Agent, _) => Err(Denied {
            reason: "role",
            hide: false,
        }),
    }
}

/// Decides whether `actor` may do `action` to the case described by `facts`, at `now`.
pub fn decide(
    actor: &account::Model,
    action: CaseAction,
    facts: &CaseFacts,
    now: OffsetDateTime,
) -> Result<CasePermit, Denied> {
    let permit = |as_party| CasePermit {
        actor_id: actor.id,
        case_id: facts.case.id,
        action,
        as_party,
        _private: (),
    };
    if actor.disabled {
        return deny("disabled", true);
    }
    match actor.role {
        Role::Staff => {
            if actor.department_id == Some(facts.case.department_id) {
                Ok(permit(None))
            } else {
                deny("other_brigade", true)
            }
        }
        Role::Admin => match action {
            CaseAction::View | CaseAction::ViewAccessHistory => Ok(permit(None)),
            _ => deny("role", false),
        },
        Role::Party => match &facts.party {
            Some(p) if p.account_id == actor.id => {
                stage(action, &facts.case).map(|()| permit(Some(p.id)))
            }
            _ => deny("not_related", true),
        },
        Role::Agent => {
            let mine: Vec<&delegation::Model> = facts
                .delegations
                .iter()
                .filter(|d| d.agent_account_id == actor.id && d.case_id == facts.case.id)
                .collect();
            if mine.is_empty() {
                return deny("not_related", true);
            }
            match mine.iter().find(|d| d.current(now)) {
                Some(d) => stage(action, &facts.case).map(|()| permit(Some(d.principal_party_id))),
                None if mine.iter().all(|d| d.revoked_at.is_some()) => {
                    deny("delegation_revoked", false)
                }
                None => deny("delegation_expired", false),
            }
        }
    }
}

/// What the case's stage allows a party (or an agent acting for one).
fn stage(action: CaseAction, case: &case::Model) -> Result<(), Denied> {
    use CaseStatus::{Closed, Disclosing, Investigating, Served};
    let (open_for_viewing, open_for_download) = match case.status {
        Investigating => (false, false),
        Disclosing => (true, false),
        Served | Closed => (true, true),
    };
    match action {
        CaseAction::Manage => Err(Denied {
            reason: "role",
            hide: false,
        }),
        _ if !open_for_viewing => Err(Denied {
            reason: "not_open",
            hide: false,
        }),
        CaseAction::Download if !open_for_download => Err(Denied {
            reason: "view_only",
            hide: false,
        }),
        _ => Ok(()),
    }
}

/// Whether a material that policy let the actor reach at case level may itself be shown to them.
/// Staff (own brigade) see every material in every state, superseded ones included; parties and
/// agents see only released, current evidence — never drafts, withheld items, superseded
/// versions or the internal authorisation documents, whose existence is hidden from them (404;
/// the case page tells them how many items were withheld and on which grounds, DESIGN §1).
pub fn material_visible(
    permit: &CasePermit,
    actor: &account::Model,
    material: &material::Model,
) -> Result<(), Denied> {
    if material.case_id != permit.case_id {
        return Err(Denied {
            reason: "other_case",
            hide: true,
        });
    }
    if actor.role == Role::Staff {
        return Ok(());
    }
    let evidence = material.kind != MaterialKind::Authorisation;
    let current = material.superseded_by.is_none();
    match material.state {
        MaterialState::Released if evidence && current => Ok(()),
        MaterialState::Withheld => Err(Denied {
            reason: "withheld",
            hide: true,
        }),
        MaterialState::Released => Err(Denied {
            reason: "superseded",
            hide: true,
        }),
        MaterialState::Draft => Err(Denied {
            reason: "not_released",
            hide: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
