//! Who was told what, and how: the channels a promise or a confirmation may name ([`Told`],
//! [`reached`]), and where each message of a case stands for staff ([`of_case`], [`failed`]).

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Channel, Channels, State, by_id};
use crate::db::entities::{account, notification, outbox};

/// The channels besides the inbox by which someone is (or would be) told: what promises and
/// confirmations may name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Told {
    pub sms: bool,
    pub email: bool,
}

impl Told {
    /// The channels of this installation that reach `person`: those they chose, with an address.
    pub fn reaching(channels: Channels, person: &account::Model) -> Told {
        let has = |a: &Option<String>| a.as_deref().is_some_and(|a| !a.is_empty());
        Told {
            sms: channels.sms && person.notify_sms && has(&person.mobile),
            email: channels.email && person.notify_email && has(&person.email),
        }
    }

    /// What an access applicant may be promised: SMS to the number they give where this
    /// installation sends SMS, e-mail where it sends e-mail and they give an address — and
    /// nothing where their number opens no account of theirs (nobody is told then). An account
    /// made by the application chooses SMS, and e-mail with an address (`applications::access`).
    pub fn to_applicant(channels: Channels, has_account: bool, email_given: bool) -> Told {
        Told {
            sms: channels.sms && has_account,
            email: channels.email && has_account && email_given,
        }
    }

    /// [`Told::to_applicant`] for a filed application: what its applicant may be promised.
    pub fn awaited(
        channels: Channels,
        app: &crate::db::entities::access_application::Model,
    ) -> Told {
        Told::to_applicant(channels, app.account_id.is_some(), app.email.is_some())
    }

    /// What the application form may promise anyone: the installation's channels (e-mail to
    /// those who give an address).
    pub fn offered(channels: Channels) -> Told {
        Told::to_applicant(channels, true, true)
    }

    pub fn any(self) -> bool {
        self.sms || self.email
    }

    /// The catalog key `{prefix}.sms_email`, `.sms`, `.email` or `.none`.
    pub fn key(self, prefix: &str) -> String {
        let name = match (self.sms, self.email) {
            (true, true) => "sms_email",
            (true, false) => "sms",
            (false, true) => "email",
            (false, false) => "none",
        };
        format!("{prefix}.{name}")
    }
}

/// How a person was told of the latest `event` about a case: the SMS and e-mail queued for it,
/// and whether they can read their inbox (their account is activated). What a confirmation to
/// staff may claim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub told: Told,
    pub inbox: bool,
}

/// [`Reached`] for `account_id`'s latest `event` (its stored word) about `case_id`.
pub async fn reached(
    db: &impl ConnectionTrait,
    account_id: Uuid,
    case_id: Uuid,
    event: &str,
) -> Result<Reached, DbErr> {
    use sea_orm::QueryOrder;
    let inbox = account::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .is_some_and(|a| a.password_hash.is_some() && !a.disabled);
    let Some(note) = notification::Entity::find()
        .filter(notification::Column::AccountId.eq(account_id))
        .filter(notification::Column::CaseId.eq(case_id))
        .filter(notification::Column::Event.eq(event))
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .one(db)
        .await?
    else {
        return Ok(Reached::default());
    };
    let mut told = Told::default();
    for d in outbox::Entity::find()
        .filter(outbox::Column::NotificationId.eq(note.id))
        .all(db)
        .await?
    {
        match Channel::parse(&d.channel) {
            Some(Channel::Sms) => told.sms = true,
            Some(Channel::Email) => told.email = true,
            None => {}
        }
    }
    Ok(Reached { told, inbox })
}

/// One notification of a case as staff see it: to whom, what, and where each SMS or e-mail stands.
pub struct Sent {
    pub notification: notification::Model,
    pub recipient: String,
    /// The recipient can read their inbox (their account is activated and not disabled).
    pub inbox_open: bool,
    pub deliveries: Vec<outbox::Model>,
}

/// The latest `limit` notifications of a case, newest first, with their deliveries.
pub async fn of_case(
    db: &impl ConnectionTrait,
    case_id: Uuid,
    limit: u64,
) -> Result<Vec<Sent>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let notes = notification::Entity::find()
        .filter(notification::Column::CaseId.eq(case_id))
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = notes.iter().map(|n| n.id).collect();
    let people: Vec<Uuid> = notes.iter().map(|n| n.account_id).collect();
    let mut deliveries: std::collections::HashMap<Uuid, Vec<outbox::Model>> =
        std::collections::HashMap::new();
    for d in outbox::Entity::find()
        .filter(outbox::Column::NotificationId.is_in(ids))
        .order_by_asc(outbox::Column::Channel)
        .all(db)
        .await?
    {
        deliveries.entry(d.notification_id).or_default().push(d);
    }
    let people: std::collections::HashMap<Uuid, (String, bool)> = account::Entity::find()
        .filter(account::Column::Id.is_in(people))
        .all(db)
        .await?
        .into_iter()
        .map(|a| {
            let open = a.password_hash.is_some() && !a.disabled;
            (a.id, (a.display_name, open))
        })
        .collect();
    Ok(notes
        .into_iter()
        .map(|n| {
            let (recipient, inbox_open) = people.get(&n.account_id).cloned().unwrap_or_default();
            Sent {
                recipient,
                inbox_open,
                deliveries: deliveries.remove(&n.id).unwrap_or_default(),
                notification: n,
            }
        })
        .collect())
}

/// Deliveries given up for good, newest first, with the case they were about (for
/// administrators: someone was not told and may need a call).
pub async fn failed(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<(outbox::Model, notification::Model)>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let rows = outbox::Entity::find()
        .filter(outbox::Column::State.eq(State::Failed.as_str()))
        .order_by_desc(outbox::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?;
    let notes = by_id(db, rows.iter().map(|d| d.notification_id).collect()).await?;
    Ok(rows
        .into_iter()
        .filter_map(|d| notes.get(&d.notification_id).cloned().map(|n| (d, n)))
        .collect())
}
