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
//! - vehicle owners and insurers: on an approved access application of theirs for the case,
//!   until its last day or until staff revoke it — the case page and the granted kinds of material, viewed or (if
//!   granted) downloaded, under the same stages as parties; never the access history;
//! - anyone else: the case does not exist (404).
//!
//! And over accounts (DESIGN §4): a person's account spans every case they are party or agent
//! to, so staff may issue a code for, or reset, only an account whose cases and delegations all
//! lie in their own brigade ([`may_credential`]); anything wider is an administrator's act.

use time::OffsetDateTime;

use crate::db::entities::{access_application, account, case, case_party, delegation, material};
use crate::vocab::{AccessMode, AccessState, CaseStatus, MaterialKind, MaterialState, Role};

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
    /// The actor's approved (and revoked) access applications for this case, if an owner or
    /// insurer.
    pub grants: Vec<access_application::Model>,
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
    /// The kinds of material the actor may see, where an access application limits them
    /// (owners and insurers); `None`: every kind of evidence.
    pub kinds: Option<Vec<MaterialKind>>,
    /// Whether stored originals may leave for this actor (Art. 65 copying: staff of the case's
    /// brigade; parties, agents, owners and insurers once they may download). Otherwise they
    /// receive renderings only (`render`), and the store refuses to open an original for
    /// anything but rendering (`store::Store::open_evidence`).
    pub originals: bool,
    /// Whether the actor sees a redacted material's original (issue 34): staff of the case's
    /// brigade only. Everyone else is shown the current redacted copy in its place, and nothing
    /// of a material whose redaction is not ready yet.
    pub unredacted: bool,
    _private: (),
}

/// Why not, and what to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// Stable, audited: `not_related`, `other_brigade`, `not_open`, `view_only`,
    /// `delegation_expired`, `delegation_revoked`, `grant_expired`, `grant_revoked`,
    /// `grant_view_only`, `role`.
    pub reason: &'static str,
    /// The case's existence is private to this actor: answer 404, not 403.
    pub hide: bool,
}

fn deny<T>(reason: &'static str, hide: bool) -> Result<T, Denied> {
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
        (Role::Staff, None) | (Role::Party | Role::Agent | Role::Owner | Role::Insurer, _) => false,
    }
}

/// Who may read the access-audit log, and how much of it: administrators all of it, staff the
/// events of their own brigade's cases; parties and agents only their case's history (on the
/// case page, through `decide`).
pub fn audit_scope(actor: &account::Model) -> Result<crate::audit::read::Scope, Denied> {
    match (actor.role, actor.department_id) {
        (Role::Admin, _) => Ok(crate::audit::read::Scope::All),
        (Role::Staff, Some(department)) => Ok(crate::audit::read::Scope::Brigade(department)),
        (Role::Staff, None) | (Role::Party | Role::Agent | Role::Owner | Role::Insurer, _) => {
            Err(Denied {
                reason: "role",
                hide: false,
            })
        }
    }
}

/// Decides whether `actor` may do `action` to the case described by `facts`, at `now`.
pub fn decide(
    actor: &account::Model,
    action: CaseAction,
    facts: &CaseFacts,
    now: OffsetDateTime,
) -> Result<CasePermit, Denied> {
    let mut permit = decide_action(actor, action, facts, now)?;
    permit.originals = action == CaseAction::Download
        || decide_action(actor, CaseAction::Download, facts, now).is_ok();
    permit.unredacted = actor.role == Role::Staff
        && (action == CaseAction::Manage
            || decide_action(actor, CaseAction::Manage, facts, now).is_ok());
    Ok(permit)
}

fn decide_action(
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
        kinds: None,
        originals: false,
        unredacted: false,
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
            let principal = agent_principal(actor, facts, now)?;
            stage(action, &facts.case).map(|()| permit(Some(principal)))
        }
        Role::Owner | Role::Insurer => {
            let grant = grant_in_force(actor, action, facts, now)?;
            stage(action, &facts.case).map(|()| CasePermit {
                kinds: Some(grant.kinds()),
                ..permit(None)
            })
        }
    }
}

/// The party an agent acts for on this case now: the principal of a current delegation, or
/// why there is none (never related, revoked, or expired).
fn agent_principal(
    actor: &account::Model,
    facts: &CaseFacts,
    now: OffsetDateTime,
) -> Result<uuid::Uuid, Denied> {
    let mine: Vec<&delegation::Model> = facts
        .delegations
        .iter()
        .filter(|d| d.agent_account_id == actor.id && d.case_id == facts.case.id)
        .collect();
    if mine.is_empty() {
        return deny("not_related", true);
    }
    match mine.iter().find(|d| d.current(now)) {
        Some(d) => Ok(d.principal_party_id),
        None if mine.iter().all(|d| d.revoked_at.is_some()) => deny("delegation_revoked", false),
        None => deny("delegation_expired", false),
    }
}

/// The owner's or insurer's grant in force on this case that allows `action`, or why there is
/// none (never granted, revoked, expired, view only, or an action no grant gives).
fn grant_in_force<'f>(
    actor: &account::Model,
    action: CaseAction,
    facts: &'f CaseFacts,
    now: OffsetDateTime,
) -> Result<&'f access_application::Model, Denied> {
    let mine: Vec<&access_application::Model> = facts
        .grants
        .iter()
        .filter(|g| g.account_id == Some(actor.id) && g.case_id == facts.case.id)
        .filter(|g| g.kind == actor.role)
        // A grant counts only for the account its applicant proved to control: a
        // stranger's application giving this account's number grants it nothing.
        .filter(|g| g.account_verified)
        .collect();
    if mine.is_empty() {
        return deny("not_related", true);
    }
    let Some(grant) = mine.iter().find(|g| g.in_force(now)).copied() else {
        return if mine.iter().all(|g| g.state == AccessState::Revoked) {
            deny("grant_revoked", false)
        } else {
            deny("grant_expired", false)
        };
    };
    match action {
        CaseAction::ViewAccessHistory | CaseAction::Manage => deny("role", false),
        CaseAction::Download if grant.granted_mode != Some(AccessMode::Download) => {
            deny("grant_view_only", false)
        }
        _ => Ok(grant),
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
    let evidence = material.kind.is_evidence();
    let current = material.superseded_by.is_none();
    if let Some(kinds) = &permit.kinds
        && !kinds.contains(&material.kind)
    {
        return Err(Denied {
            reason: "not_granted",
            hide: true,
        });
    }
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
mod tests;
