//! What a person is told about: the events of a case, of an account and of an application,
//! each with the stored word that names it (inbox rows, SMS template codes) and the parameters
//! its words take.

use time::{Date, OffsetDateTime};

/// What a person is told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Staff released materials of the case: one message per release action (a bulk release is
    /// one), with how many.
    MaterialReleased {
        count: u32,
    },
    /// Evidence opened to the parties before the determination (fatal or complex cases).
    DisclosureOpened,
    /// The determination (or certificate) was served; a review may be applied for until `deadline`.
    DeterminationServed {
        deadline: Option<Date>,
    },
    CaseClosed,
    /// The review window ends tomorrow (sent the day before its last day).
    ReviewClosingTomorrow {
        deadline: Date,
    },
    /// An agent was registered for a party (to the principal and to the agent).
    DelegationRegistered {
        until: Date,
    },
    /// A delegation ends within three days.
    DelegationEnding {
        until: Date,
    },
    DelegationRevoked,
    /// The account's access code expires within a day and has not been used.
    CodeExpiring {
        until: OffsetDateTime,
    },
    /// The account was reset: a security notice.
    AccountReset,
    /// The account's second factor was reset by an administrator: a security notice.
    SecondFactorReset,
    /// Five wrong second-factor codes in a row locked the second factor: a security notice (the
    /// password was right, so someone may hold it).
    SecondFactorLocked,
    /// A review application of the party's moved: filed (with its receipt number), forwarded,
    /// accepted, refused by the authority, concluded.
    Review {
        state: crate::vocab::ReviewState,
        receipt: String,
    },
    /// An application to query a case was approved, until its last day.
    AccessApproved {
        receipt: String,
        until: Date,
    },
    /// An application to query a case was refused (the reason is on its status page).
    AccessRefused {
        receipt: String,
    },
    /// Staff revoked the grant of an application: it opens nothing any more (the reason is on
    /// its status page).
    AccessRevoked {
        receipt: String,
    },
    /// Staff moved the last day of an application's grant earlier, to `until`.
    AccessShortened {
        receipt: String,
        until: Date,
    },
    /// A one-time code to find an application again from another browser, asked for with its
    /// receipt number and the mobile number it gave: texted to that number alone. The code is
    /// no parameter: the dispatcher computes it from the notification's id as it sends
    /// ([`super::code_of`]), so no row holds it.
    AccessLookupCode {
        receipt: String,
    },
    /// To the parties and their agents: a vehicle's owner or insurer was granted access to the
    /// case — who (the company in full, the person's name masked), which kinds, until when.
    AccessGrantedToOther {
        /// `owner` or `insurer`.
        role: crate::vocab::Role,
        /// The insurer's name, in full (a company's name is no personal data).
        organisation: Option<String>,
        /// The applicant's name, masked (`李**`).
        person: String,
        kinds: Vec<crate::vocab::MaterialKind>,
        until: Date,
    },
}

/// The stored word of [`Event::AccessLookupCode`].
const LOOKUP_CODE: &str = "access.lookup_code";

impl Event {
    /// Whether the SMS of an event (its stored word) carries a one-time code
    /// ([`super::code_of`] its notification's id): only the lookup code's.
    pub fn carries_code(word: &str) -> bool {
        word == LOOKUP_CODE
    }

    /// The stored word of the event (inbox rows, SMS template codes, audit details).
    pub fn word(&self) -> &'static str {
        match self {
            Event::MaterialReleased { .. } => "material.released",
            Event::DisclosureOpened => "case.disclosing",
            Event::DeterminationServed { .. } => "case.served",
            Event::CaseClosed => "case.closed",
            Event::ReviewClosingTomorrow { .. } => "review.closing",
            Event::DelegationRegistered { .. } => "delegation.registered",
            Event::DelegationEnding { .. } => "delegation.ending",
            Event::DelegationRevoked => "delegation.revoked",
            Event::CodeExpiring { .. } => "code.expiring",
            Event::AccountReset => "account.reset",
            Event::SecondFactorReset => "second_factor.reset",
            Event::SecondFactorLocked => "second_factor.locked",
            Event::Review { state, .. } => match state {
                crate::vocab::ReviewState::Filed => "review.filed",
                crate::vocab::ReviewState::Forwarded => "review.forwarded",
                crate::vocab::ReviewState::Accepted => "review.accepted",
                crate::vocab::ReviewState::Refused => "review.refused",
                crate::vocab::ReviewState::Concluded => "review.concluded",
            },
            Event::AccessApproved { .. } => "access.approved",
            Event::AccessRefused { .. } => "access.refused",
            Event::AccessRevoked { .. } => "access.revoked",
            Event::AccessShortened { .. } => "access.shortened",
            Event::AccessLookupCode { .. } => LOOKUP_CODE,
            // A case's event, for its parties: the portal's address follows where it fits.
            Event::AccessGrantedToOther { .. } => "case.access_granted",
        }
    }

    pub(super) fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut params = serde_json::Map::new();
        match self {
            Event::MaterialReleased { count } => {
                params.insert("count".into(), (*count).into());
            }
            Event::DeterminationServed {
                deadline: Some(deadline),
            }
            | Event::ReviewClosingTomorrow { deadline } => {
                params.insert("deadline".into(), deadline.to_string().into());
            }
            Event::DelegationRegistered { until } | Event::DelegationEnding { until } => {
                params.insert("until".into(), until.to_string().into());
            }
            Event::Review { receipt, .. }
            | Event::AccessRefused { receipt }
            | Event::AccessRevoked { receipt }
            | Event::AccessLookupCode { receipt } => {
                params.insert("receipt".into(), receipt.clone().into());
            }
            Event::AccessApproved { receipt, until }
            | Event::AccessShortened { receipt, until } => {
                params.insert("receipt".into(), receipt.clone().into());
                params.insert("until".into(), until.to_string().into());
            }
            Event::AccessGrantedToOther {
                role,
                organisation,
                person,
                kinds,
                until,
            } => {
                params.insert("role".into(), role.as_str().into());
                if let Some(org) = organisation {
                    params.insert("organisation".into(), org.clone().into());
                }
                params.insert("person".into(), person.clone().into());
                let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                params.insert("kinds".into(), kinds.join(",").into());
                params.insert("until".into(), until.to_string().into());
            }
            Event::CodeExpiring { until } => {
                let cst = until.to_offset(time::macros::offset!(+8));
                params.insert(
                    "until".into(),
                    format!("{} {:02}:{:02}", cst.date(), cst.hour(), cst.minute()).into(),
                );
            }
            _ => {}
        }
        params
    }
}
