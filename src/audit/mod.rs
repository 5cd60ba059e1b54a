//! The access-audit log: the one place that writes audit events.
//!
//! `Audit::record(event)` returns only once the event is durably committed (and its sequence
//! number known), or an error if it could not be — callers then refuse to serve. Concurrent
//! calls are batched into one transaction by one writer task per process (group commit) through
//! a bounded queue. Each batch locks the chain head, so several instances on one PostgreSQL
//! still write one chain. The chain format is specified in [`chain`].

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod read;
pub mod restored;
pub mod transfers;
pub mod verify;
mod writer;

use std::time::Duration;

use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use verify::{Broken, Verified, verify};

/// Queue length before `record` callers wait (back-pressure instead of unbounded memory).
const QUEUE: usize = 8192;
/// How long `record` waits for its commit before giving up with an error.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(20);

/// What happened. The dotted names are stable: they are stored, hashed and exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Action {
    AuthLogin,
    AuthLogout,
    AuthActivate,
    AuthPasswordChange,
    CsrfReject,
    AccessDenied,
    AccountCreate,
    AccountDisable,
    AccountEnable,
    AccountReset,
    AccessCodeIssue,
    TokenCreate,
    TokenRevoke,
    DepartmentCreate,
    DepartmentUpdate,
    CaseCreate,
    CaseUpdate,
    CaseStatus,
    CaseView,
    PartyRegister,
    DelegationGrant,
    DelegationRevoke,
    MaterialUpload,
    MaterialRelease,
    MaterialWithhold,
    MaterialSupersede,
    MaterialView,
    /// What a rendered view delivered: its code and SHA-256, after the view's own event (`of`).
    MaterialRendered,
    MaterialDownload,
    RedactionCreate,
    RedactionReview,
    RedactionRelease,
    BundleDownload,
    TransferEnd,
    AuditView,
    AuditExport,
    AuditVerify,
    NotificationSent,
    NotificationFailed,
    AccountNotifications,
    CaseMilestone,
    ReviewFile,
    ReviewStep,
    AccessApply,
    AccessDecide,
    AccessVoucher,
    AccessClaim,
    AccessProofView,
    AccessRevoke,
    AccessShorten,
    /// The applicant's way back to an application from another browser: a code asked for
    /// with its receipt and mobile numbers, and typed (the status link renewed).
    AccessLookup,
    AuthSecondFactor,
    SecondFactorEnrol,
    SecondFactorRemove,
    SecondFactorReset,
    /// The installation was restored from a backup: the backup's chain head, when it was
    /// taken, and the events lost after it (`backup::restore`; `audit verify` reads it).
    SystemRestore,
}

impl Action {
    /// Every action, for filters.
    pub const ALL: [Action; 56] = [
        Action::AuthLogin,
        Action::AuthLogout,
        Action::AuthActivate,
        Action::AuthPasswordChange,
        Action::CsrfReject,
        Action::AccessDenied,
        Action::AccountCreate,
        Action::AccountDisable,
        Action::AccountEnable,
        Action::AccountReset,
        Action::AccessCodeIssue,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::DepartmentCreate,
        Action::DepartmentUpdate,
        Action::CaseCreate,
        Action::CaseUpdate,
        Action::CaseStatus,
        Action::CaseView,
        Action::PartyRegister,
        Action::DelegationGrant,
        Action::DelegationRevoke,
        Action::MaterialUpload,
        Action::MaterialRelease,
        Action::MaterialWithhold,
        Action::MaterialSupersede,
        Action::MaterialView,
        Action::MaterialRendered,
        Action::MaterialDownload,
        Action::RedactionCreate,
        Action::RedactionReview,
        Action::RedactionRelease,
        Action::BundleDownload,
        Action::TransferEnd,
        Action::AuditView,
        Action::AuditExport,
        Action::AuditVerify,
        Action::NotificationSent,
        Action::NotificationFailed,
        Action::AccountNotifications,
        Action::CaseMilestone,
        Action::ReviewFile,
        Action::ReviewStep,
        Action::AccessApply,
        Action::AccessDecide,
        Action::AccessVoucher,
        Action::AccessClaim,
        Action::AccessProofView,
        Action::AccessRevoke,
        Action::AccessShorten,
        Action::AccessLookup,
        Action::AuthSecondFactor,
        Action::SecondFactorEnrol,
        Action::SecondFactorRemove,
        Action::SecondFactorReset,
        Action::SystemRestore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::AuthLogin => "auth.login",
            Action::AuthLogout => "auth.logout",
            Action::AuthActivate => "auth.activate",
            Action::AuthPasswordChange => "auth.password_change",
            Action::CsrfReject => "auth.csrf_reject",
            Action::AccessDenied => "access.denied",
            Action::AccountCreate => "account.create",
            Action::AccountDisable => "account.disable",
            Action::AccountEnable => "account.enable",
            Action::AccountReset => "account.reset",
            Action::AccessCodeIssue => "access_code.issue",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::DepartmentCreate => "department.create",
            Action::DepartmentUpdate => "department.update",
            Action::CaseCreate => "case.create",
            Action::CaseUpdate => "case.update",
            Action::CaseStatus => "case.status",
            Action::CaseView => "case.view",
            Action::PartyRegister => "party.register",
            Action::DelegationGrant => "delegation.grant",
            Action::DelegationRevoke => "delegation.revoke",
            Action::MaterialUpload => "material.upload",
            Action::MaterialRelease => "material.release",
            Action::MaterialWithhold => "material.withhold",
            Action::MaterialSupersede => "material.supersede",
            Action::MaterialView => "material.view",
            Action::MaterialRendered => "material.rendered",
            Action::MaterialDownload => "material.download",
            Action::RedactionCreate => "redaction.create",
            Action::RedactionReview => "redaction.review",
            Action::RedactionRelease => "redaction.release",
            Action::BundleDownload => "bundle.download",
            Action::TransferEnd => "transfer.end",
            Action::AuditView => "audit.view",
            Action::AuditExport => "audit.export",
            Action::AuditVerify => "audit.verify",
            Action::NotificationSent => "notification.sent",
            Action::NotificationFailed => "notification.failed",
            Action::AccountNotifications => "account.notifications",
            Action::CaseMilestone => "case.milestone",
            Action::ReviewFile => "review.file",
            Action::ReviewStep => "review.step",
            Action::AccessApply => "access.apply",
            Action::AccessDecide => "access.decide",
            Action::AccessVoucher => "access.voucher",
            Action::AccessClaim => "access.claim",
            Action::AccessProofView => "access.proof_view",
            Action::AccessRevoke => "access.revoke",
            Action::AccessShorten => "access.shorten",
            Action::AccessLookup => "access.lookup",
            Action::AuthSecondFactor => "auth.second_factor",
            Action::SecondFactorEnrol => "second_factor.enrol",
            Action::SecondFactorRemove => "second_factor.remove",
            Action::SecondFactorReset => "second_factor.reset",
            Action::SystemRestore => "system.restore",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// Who acted. `role` is `admin`, `staff`, `party`, `agent`, `anonymous` or `system` (the CLI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub role: &'static str,
}

impl Actor {
    /// A signed-in account acting in its role.
    pub fn account(id: Uuid, role: crate::vocab::Role) -> Actor {
        Actor {
            id: Some(id),
            role: role.as_str(),
        }
    }

    /// The actor of a stored event (its role as the event recorded it).
    pub fn recorded(id: Option<Uuid>, role: &str) -> Actor {
        let role = match crate::vocab::Role::parse(role) {
            Some(role) => role.as_str(),
            None if role == Actor::SYSTEM.role => Actor::SYSTEM.role,
            None => Actor::ANONYMOUS.role,
        };
        Actor { id, role }
    }

    pub const ANONYMOUS: Actor = Actor {
        id: None,
        role: "anonymous",
    };
    pub const SYSTEM: Actor = Actor {
        id: None,
        role: "system",
    };
}

/// One event to record. Build it with [`Event::new`] and the `with_*` methods.
#[derive(Clone, Debug)]
pub struct Event {
    pub actor: Actor,
    pub action: Action,
    pub outcome: Outcome,
    pub case_id: Option<Uuid>,
    pub material_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(actor: Actor, action: Action, outcome: Outcome) -> Self {
        Event {
            actor,
            action,
            outcome,
            case_id: None,
            material_id: None,
            client_ip: None,
            user_agent: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn case(mut self, case_id: Uuid) -> Self {
        self.case_id = Some(case_id);
        self
    }

    pub fn material(mut self, material_id: Uuid) -> Self {
        self.material_id = Some(material_id);
        self
    }

    /// The client's address and user agent (the latter cut to 512 bytes).
    pub fn client(mut self, ip: Option<String>, user_agent: Option<String>) -> Self {
        self.client_ip = ip;
        self.user_agent = user_agent.map(|ua| truncate(ua, 512));
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A committed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub seq: i64,
    pub hash: String,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log could not commit: {0}")]
    Commit(String),
    #[error("the audit log did not commit within {0:?}")]
    Timeout(Duration),
    #[error("the audit writer has stopped")]
    Stopped,
}

struct Pending {
    event: Event,
    done: oneshot::Sender<Result<Recorded, AuditError>>,
}

/// The handle every part of the portal records through. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    queue: mpsc::Sender<Pending>,
    /// The clock events are stamped by, which access decisions read too (tests move it).
    clock: crate::clock::Clock,
}

impl Audit {
    /// Starts this process's writer task on the current Tokio runtime.
    pub fn start(db: DatabaseConnection, clock: crate::clock::Clock) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer::run(db, clock.clone(), rx));
        Audit { queue, clock }
    }

    /// The time by the portal's clock (events are stamped by it; access is decided at it).
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Records `event`; returns once it is durably committed.
    pub async fn record(&self, event: Event) -> Result<Recorded, AuditError> {
        let action = event.action.as_str();
        let (done, committed) = oneshot::channel();
        let wait = async {
            self.queue
                .send(Pending { event, done })
                .await
                .map_err(|_| AuditError::Stopped)?;
            committed.await.map_err(|_| AuditError::Stopped)?
        };
        let result = match tokio::time::timeout(COMMIT_TIMEOUT, wait).await {
            Ok(result) => result,
            Err(_) => Err(AuditError::Timeout(COMMIT_TIMEOUT)),
        };
        if let Err(e) = &result {
            tracing::error!(action, error = %e, "audit event not recorded");
        }
        result
    }
}

/// The audit log could not commit: nothing may be served (503, try again).
impl From<AuditError> for crate::error::AppError {
    fn from(e: AuditError) -> Self {
        crate::error::AppError::Unavailable {
            part: "audit",
            cause: Some(Box::new(e)),
        }
    }
}
