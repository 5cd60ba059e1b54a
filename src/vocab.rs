//! The domain's words as types: who someone is, where a case stands, what a material is and
//! whether it is out. Each is stored as its readable string value (a `String` column: the
//! schema stays readable and no data moved), compared as an enum (a typo does not compile and a
//! `match` names every case), and labelled from the message catalog by `i18n::Locale::label`
//! (catalog key `<catalog>.<value>`). This module is the one place that spells the values.

use sea_orm::entity::prelude::*;

/// A word of the domain: its stored value and where the catalog keeps its labels.
pub trait Word: Copy + 'static {
    /// The catalog section of this word's labels (`role`, `status`, …).
    const CATALOG: &'static str;
    /// Every value, in the order forms and lists show them.
    const ALL: &'static [Self];
    /// The stored value.
    fn as_str(self) -> &'static str;
    /// The word a stored value or a form field names, if any.
    fn parse(value: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|w| w.as_str() == value)
    }
}

macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $catalog:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum $name {
            $( $(#[$vmeta])* #[sea_orm(string_value = $value)] $variant, )+
        }

        impl Word for $name {
            const CATALOG: &'static str = $catalog;
            const ALL: &'static [Self] = $name::ALL;
            fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $value, )+
                }
            }
        }

        impl $name {
            /// Every value, in the order forms and lists show them.
            pub const ALL: &'static [Self] = &[ $( $name::$variant ),+ ];

            /// The stored value (as [`Word::as_str`], without importing the trait).
            pub fn as_str(self) -> &'static str {
                Word::as_str(self)
            }

            /// The word a stored value or a form field names, if any.
            pub fn parse(value: &str) -> Option<Self> {
                <Self as Word>::parse(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

words! {
    /// What an account may do: run the portal, work a brigade's cases, see a case as one of its
    /// parties or as a party's agent, or query it as a vehicle's owner or insurer on an approved
    /// application.
    pub enum Role in "role" {
        Admin = "admin",
        Staff = "staff",
        Party = "party",
        Agent = "agent",
        /// The owner of an accident vehicle, on an approved application (scoped to that case).
        Owner = "owner",
        /// A staff member of the insurer covering an accident vehicle, on an approved application.
        Insurer = "insurer",
    }
}

words! {
    /// Where a case stands (Order 146): under investigation, in the Art. 63 disclosure stage
    /// (view only), determination or certificate served (the review window runs), closed.
    pub enum CaseStatus in "status" {
        Investigating = "investigating",
        Disclosing = "disclosing",
        Served = "served",
        Closed = "closed",
    }
}

words! {
    /// The stages of a case's handling as the national service's progress query names them
    /// (事故处理进度): the case's timeline is made of these.
    pub enum Stage in "stage" {
        Accepted = "accepted",
        Investigation = "investigation",
        Examination = "examination",
        Detention = "detention",
        Determination = "determination",
        ReviewApplied = "review_applied",
        ReviewConcluded = "review_concluded",
        Mediation = "mediation",
        HitAndRun = "hit_and_run",
        Closed = "closed",
    }
}

words! {
    /// What was served on the parties: an accident determination (认定书) or, where the facts
    /// cannot be established, a certificate (证明).
    pub enum ServiceKind in "service_kind" {
        Determination = "determination",
        Certificate = "certificate",
    }
}

words! {
    /// Whose part a party played in the accident.
    pub enum PartyRole in "party_role" {
        Driver = "driver",
        Passenger = "passenger",
        Pedestrian = "pedestrian",
        VehicleOwner = "vehicle_owner",
        CloseRelative = "close_relative",
        Other = "other",
    }
}

words! {
    /// What a material is. `Authorisation` (an agent's letter of authorisation) and
    /// `ReviewAttachment` are internal: registered with a delegation or a review application,
    /// never evidence (see [`MaterialKind::EVIDENCE`]).
    pub enum MaterialKind in "kind" {
        SceneDiagram = "scene_diagram",
        ScenePhoto = "scene_photo",
        SurveyRecord = "survey_record",
        InspectionReport = "inspection_report",
        ExpertOpinion = "expert_opinion",
        SimulationRecord = "simulation_record",
        Video = "video",
        DocumentCopy = "document_copy",
        Other = "other",
        ReviewConclusion = "review_conclusion",
        Authorisation = "authorisation",
        /// An attachment to a party's review application (internal: staff see it).
        ReviewAttachment = "review_attachment",
    }
}

impl MaterialKind {
    /// The kinds staff upload as evidence, in the order the case page groups them.
    pub const EVIDENCE: [MaterialKind; 10] = [
        MaterialKind::SceneDiagram,
        MaterialKind::ScenePhoto,
        MaterialKind::SurveyRecord,
        MaterialKind::InspectionReport,
        MaterialKind::ExpertOpinion,
        MaterialKind::SimulationRecord,
        MaterialKind::Video,
        MaterialKind::DocumentCopy,
        MaterialKind::Other,
        MaterialKind::ReviewConclusion,
    ];

    /// Whether this is evidence (shown to those entitled once released), not an internal
    /// document (authorisations, application attachments and proofs).
    pub fn is_evidence(self) -> bool {
        Self::EVIDENCE.contains(&self)
    }
}

words! {
    /// Whether a material is out: uploaded but not decided, released to the parties, or withheld
    /// on a ground of Art. 65.
    pub enum MaterialState in "material_state" {
        Draft = "draft",
        Released = "released",
        Withheld = "withheld",
    }
}

words! {
    /// The grounds on which material may be withheld (Art. 65).
    pub enum WithholdGround in "ground" {
        WitnessConfidentiality = "witness_confidentiality",
        StateSecret = "state_secret",
        CommercialSecret = "commercial_secret",
        PersonalPrivacy = "personal_privacy",
    }
}

words! {
    /// Where a party's review application (复核申请) stands: filed with the brigade, forwarded
    /// to the reviewing authority, accepted or refused by it, concluded.
    pub enum ReviewState in "review_state" {
        Filed = "filed",
        Forwarded = "forwarded",
        Accepted = "accepted",
        Refused = "refused",
        Concluded = "concluded",
    }
}

words! {
    /// Where an owner's or insurer's application to query a case stands: its grant ends on its
    /// last day, or earlier when staff revoke it.
    pub enum AccessState in "access_state" {
        Pending = "pending",
        Approved = "approved",
        Refused = "refused",
        /// Approved, then revoked by staff: the grant opens nothing any more.
        Revoked = "revoked",
    }
}

words! {
    /// What an approved access application lets its holder do with the granted materials.
    pub enum AccessMode in "access_mode" {
        View = "view",
        Download = "download",
    }
}

words! {
    /// Why staff blacked out part of a material (issue 34; Art. 65's personal privacy and
    /// witness confidentiality, the PIPL's least data): each box of a redaction names one.
    pub enum RedactionReason in "redaction_reason" {
        /// The face of someone not party to the case (a bystander).
        ThirdPartyFace = "third_party_face",
        /// The licence plate of a vehicle not involved.
        UninvolvedPlate = "uninvolved_plate",
        /// A third party's identity number or contact details.
        ThirdPartyIdentity = "third_party_identity",
        /// A minor.
        Minor = "minor",
        /// What would identify a witness who asked for confidentiality.
        WitnessConfidentiality = "witness_confidentiality",
        /// Anything else, explained in the box's note.
        Other = "other",
    }
}

words! {
    /// Where a redacted copy stands. Pictures and PDF pages are made at once (`ready`); a video
    /// is queued (`pending`), then waits for an officer to confirm having watched all of it
    /// (`unreviewed`) before anyone outside the brigade sees it.
    pub enum RedactionState in "redaction_state" {
        Pending = "pending",
        Unreviewed = "unreviewed",
        Ready = "ready",
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<W: Word + PartialEq + std::fmt::Debug + ActiveEnum<Value = String>>() {
        for w in W::ALL {
            assert_eq!(W::parse(w.as_str()), Some(*w));
            assert_eq!(w.to_value(), w.as_str());
            assert_eq!(W::try_from_value(&w.as_str().to_owned()).ok(), Some(*w));
        }
        assert_eq!(W::parse("Staff "), None);
        assert_eq!(W::parse(""), None);
    }

    #[test]
    fn every_word_round_trips_through_its_stored_value() {
        round_trips::<Role>();
        round_trips::<CaseStatus>();
        round_trips::<ServiceKind>();
        round_trips::<PartyRole>();
        round_trips::<MaterialKind>();
        round_trips::<MaterialState>();
        round_trips::<WithholdGround>();
        round_trips::<RedactionReason>();
        round_trips::<RedactionState>();
        round_trips::<ReviewState>();
        round_trips::<AccessState>();
        round_trips::<AccessMode>();
    }
}
