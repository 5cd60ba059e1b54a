//! A material's custody record (保管记录, issue 36): one signed page of what happened to it —
//! its ingest (who, when, from which address, the file's name and both digests), each change of
//! state (release, withhold with its ground, supersede, redaction), and how many times and to
//! whom (by role and masked name) it was delivered — each with its audit event's sequence
//! number, and the latest signed checkpoint of the audit chain. Read from the audit log; the
//! export is itself an audit event (`audit.export`), whose number the record carries.
//!
//! Staff of the brigade read everything; a party, agent or grantee who may see the material
//! reads what concerns them: no addresses, no internal notes, others only by role and masked
//! name.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::entities::{account, audit_event, material};
use crate::i18n::Locale;

/// Bump when the record's fields change.
pub const FORMAT: &str = "evidence-portal-custody/1";

/// Who reads the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Staff of the case's brigade: addresses and internal notes included.
    Staff,
    /// Someone of the case who may see the material: `account` is theirs (their own accesses
    /// are marked).
    Party { account: Uuid },
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub seq: i64,
    /// China Standard Time, `2026-11-25 10:33:55`.
    pub at: String,
    /// The stable action (`material.release`).
    pub action: String,
    /// The action in Chinese (the record is a Chinese document; the page shows its language).
    pub label: String,
    /// Role and masked name ("民警 张**").
    pub by: String,
    /// Ground, reasons, the material that superseded it… as recorded, less what the reader
    /// may not see.
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ingest {
    pub seq: Option<i64>,
    pub at: String,
    pub by: String,
    /// The uploader's address as recorded (staff only).
    pub address: Option<String>,
    pub original_name: String,
    pub sha256: String,
    pub sm3: Option<String>,
    pub size: i64,
}

/// What one recipient received of the material.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delivery {
    /// Role and masked name ("当事人 李**").
    pub to: String,
    pub role: String,
    /// The reader themself.
    pub mine: bool,
    pub views: u32,
    pub downloads: u32,
    pub bundles: u32,
    pub first: String,
    pub last: String,
    pub seqs: Vec<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: String,
}

/// The record as signed.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub format: &'static str,
    /// `staff` or `party`: how much it shows.
    pub view: &'static str,
    pub case_number: String,
    pub brigade: String,
    pub material_id: Uuid,
    pub title: String,
    pub kind: String,
    pub content_type: String,
    pub state: String,
    pub proves: Option<String>,
    /// Why it is withheld, as noted on file (staff only; never in the audit log).
    pub withhold_note: Option<String>,
    pub ingest: Ingest,
    pub steps: Vec<Step>,
    pub deliveries: Vec<Delivery>,
    pub delivered_times: u32,
    /// The newest signed checkpoint of the audit chain, if the store has one.
    pub checkpoint: Option<Checkpoint>,
    /// The chain's head when the record was made.
    pub head_seq: Option<i64>,
    /// The audit event of this export.
    pub export_seq: i64,
    pub generated_at: String,
    pub generated_for: String,
    /// The portal key that signs it (`manifest.jws` style).
    pub signing_key: String,
}

/// `2026-11-25 10:33:55` in China Standard Time.
pub fn cst(t: OffsetDateTime) -> String {
    t.to_offset(time::macros::offset!(+8))
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// "民警 张**" / "当事人 李**": a role and a masked name, never the full name.
fn masked(role: &str, name: Option<&String>) -> String {
    let role = crate::vocab::Role::parse(role).map_or_else(
        || Locale::Zh.t("role.user").into_owned(),
        |r| Locale::Zh.label(r),
    );
    let name = name
        .and_then(|n| n.chars().next())
        .map(|c| format!(" {c}**"))
        .unwrap_or_default();
    format!("{role}{name}")
}

/// The material's own events and the bundles that held it, in order.
async fn events_of(
    db: &DatabaseConnection,
    m: &material::Model,
) -> Result<Vec<audit_event::Model>, sea_orm::DbErr> {
    let own = audit_event::Entity::find()
        .filter(audit_event::Column::MaterialId.eq(m.id))
        .order_by_asc(audit_event::Column::Seq)
        .all(db)
        .await?;
    let id = m.id.to_string();
    let bundles = audit_event::Entity::find()
        .filter(audit_event::Column::CaseId.eq(m.case_id))
        .filter(audit_event::Column::Action.eq("bundle.download"))
        .filter(audit_event::Column::Outcome.eq("allowed"))
        .filter(audit_event::Column::Details.contains(&id))
        .order_by_asc(audit_event::Column::Seq)
        .all(db)
        .await?;
    let mut all: Vec<audit_event::Model> = own.into_iter().chain(bundles).collect();
    all.sort_by_key(|e| e.seq);
    all.dedup_by_key(|e| e.seq);
    Ok(all)
}

async fn names_of(
    db: &DatabaseConnection,
    events: &[audit_event::Model],
) -> Result<std::collections::HashMap<Uuid, String>, sea_orm::DbErr> {
    // Each person once: a material viewed thousands of times has a handful of viewers, and a
    // list of one id per event would pass the database's limit on parameters.
    let ids: std::collections::BTreeSet<Uuid> = events.iter().filter_map(|e| e.actor_id).collect();
    Ok(account::Entity::find()
        .filter(account::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, a.display_name))
        .collect())
}

/// A state change's details as the reader may see them.
fn step_details(reader: Reader, details: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for key in ["ground", "superseded_by", "reasons", "redaction", "title"] {
        if let Some(v) = details.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(g) = details["ground"]
        .as_str()
        .and_then(crate::vocab::WithholdGround::parse)
    {
        out.insert("ground_label".into(), Locale::Zh.label(g).into());
    }
    if reader == Reader::Staff
        && let Some(note) = details.get("note").filter(|v| !v.is_null())
    {
        out.insert("note".into(), note.clone());
    }
    serde_json::Value::Object(out)
}

/// What kind of delivery an allowed event is, if it is one (a view, a download, a bundle that
/// sent bytes; a `HEAD` or an unchanged answer sent none).
fn delivery_kind(e: &audit_event::Model, details: &serde_json::Value) -> Option<&'static str> {
    if e.outcome != "allowed" || details["head"] == true || details["not_modified"] == true {
        return None;
    }
    match e.action.as_str() {
        "material.view" => Some("view"),
        "material.download" => Some("download"),
        "bundle.download" => Some("bundle"),
        _ => None,
    }
}

const STEPS: [&str; 7] = [
    "material.release",
    "material.withhold",
    "material.supersede",
    "redaction.create",
    "redaction.review",
    "redaction.release",
    "audit.export",
];

/// The events read into ingest, steps and deliveries.
struct Read {
    ingest: Option<(audit_event::Model, String)>,
    steps: Vec<Step>,
    deliveries: BTreeMap<(String, Uuid), Delivery>,
}

fn read_events(
    reader: Reader,
    events: Vec<audit_event::Model>,
    names: &std::collections::HashMap<Uuid, String>,
) -> Read {
    let mut read = Read {
        ingest: None,
        steps: Vec::new(),
        deliveries: BTreeMap::new(),
    };
    for e in events {
        let details: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
        let by = masked(&e.actor_role, e.actor_id.and_then(|id| names.get(&id)));
        if e.action == "material.upload" && e.outcome == "allowed" && read.ingest.is_none() {
            read.ingest = Some((e, by));
            continue;
        }
        if let Some(kind) = delivery_kind(&e, &details) {
            let who = e.actor_id.unwrap_or_default();
            let d = read
                .deliveries
                .entry((e.actor_role.clone(), who))
                .or_default();
            if d.seqs.is_empty() {
                d.to = by;
                d.role = e.actor_role.clone();
                d.mine = reader == (Reader::Party { account: who });
                d.first = cst(e.occurred_at);
            }
            match kind {
                "view" => d.views += 1,
                "download" => d.downloads += 1,
                _ => d.bundles += 1,
            }
            d.last = cst(e.occurred_at);
            d.seqs.push(e.seq);
            continue;
        }
        // An export of the record is a step for staff; a party sees state changes only.
        let shown = STEPS.contains(&e.action.as_str())
            && e.outcome == "allowed"
            && (reader == Reader::Staff || e.action != "audit.export");
        if shown {
            read.steps.push(Step {
                seq: e.seq,
                at: cst(e.occurred_at),
                label: Locale::Zh
                    .t(&format!("audit.action.{}", e.action))
                    .into_owned(),
                action: e.action,
                by,
                details: step_details(reader, &details),
            });
        }
    }
    read
}

/// What the record is made for: the case, the material (its stored row, not a redacted copy
/// shown in its place), the reader and the export's own event.
pub struct Subject<'a> {
    pub case: &'a crate::db::entities::case::Model,
    pub material_id: Uuid,
    pub reader: Reader,
    pub reader_label: String,
    pub export_seq: i64,
    pub now: OffsetDateTime,
}

/// Builds the record from the audit log (the export's own event already recorded).
pub async fn build(
    db: &DatabaseConnection,
    store: &crate::store::Store,
    key: &crate::signing::ManifestKey,
    subject: Subject<'_>,
) -> Result<Record, super::MaterialError> {
    let m = material::Entity::find_by_id(subject.material_id)
        .one(db)
        .await?
        .filter(|m| m.case_id == subject.case.id)
        .ok_or(super::MaterialError::NotFound)?;
    let brigade = crate::db::entities::department::Entity::find_by_id(subject.case.department_id)
        .one(db)
        .await?
        .map(|d| d.name)
        .unwrap_or_default();
    let events = events_of(db, &m).await?;
    let names = names_of(db, &events).await?;
    let read = read_events(subject.reader, events, &names);
    let ingest = ingest_of(subject.reader, &m, read.ingest);
    // A checkpoint that cannot be read is left out, not a failure: the record still stands on
    // its events' numbers, which `audit verify` checks against the chain.
    let checkpoint = match crate::audit::checkpoint::latest(store, key).await {
        Ok(cp) => cp.map(|c| Checkpoint {
            seq: c.seq,
            hash: c.hash,
            at: cst(c.at),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "no checkpoint for a custody record");
            None
        }
    };
    let head_seq = crate::audit::checkpoint::head(db)
        .await?
        .map(|(seq, _)| seq);
    let deliveries: Vec<Delivery> = read.deliveries.into_values().collect();
    Ok(Record {
        format: FORMAT,
        view: match subject.reader {
            Reader::Staff => "staff",
            Reader::Party { .. } => "party",
        },
        case_number: subject.case.case_number.clone(),
        brigade,
        material_id: m.id,
        title: m.title.clone(),
        kind: Locale::Zh.label(m.kind),
        content_type: m.content_type.clone(),
        state: Locale::Zh.label(m.state),
        proves: m.proves.clone(),
        withhold_note: m
            .withhold_note
            .clone()
            .filter(|_| subject.reader == Reader::Staff),
        ingest,
        steps: read.steps,
        delivered_times: deliveries
            .iter()
            .map(|d| d.views + d.downloads + d.bundles)
            .sum(),
        deliveries,
        checkpoint,
        head_seq,
        export_seq: subject.export_seq,
        generated_at: cst(subject.now),
        generated_for: subject.reader_label,
        signing_key: key.kid().to_owned(),
    })
}

/// The ingest as recorded (its event) or, for a material recorded without one, as stored.
fn ingest_of(
    reader: Reader,
    m: &material::Model,
    event: Option<(audit_event::Model, String)>,
) -> Ingest {
    let (seq, at, by, address) = match event {
        Some((e, by)) => (Some(e.seq), e.occurred_at, by, e.client_ip),
        None => (None, m.uploaded_at, String::new(), None),
    };
    Ingest {
        seq,
        at: cst(at),
        by,
        address: address.filter(|_| reader == Reader::Staff),
        original_name: m.original_name.clone(),
        sha256: m.sha256.clone(),
        sm3: m.sm3.clone(),
        size: m.size,
    }
}

/// The record as signed bytes and their compact JWS (the key that signs bundle manifests, so
/// `/verify` and `openssl` check it the same way).
pub fn sign(
    record: &Record,
    key: &crate::signing::ManifestKey,
) -> Result<(Vec<u8>, String), String> {
    let mut bytes = serde_json::to_vec_pretty(record).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    let jws = key.sign(&bytes).map_err(|e| e.to_string())?;
    Ok((bytes, jws))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked_and_roles_named() {
        assert_eq!(masked("party", Some(&"李四".to_owned())), "当事人 李**");
        assert!(masked("system", None).chars().count() > 0);
        let staff = step_details(
            Reader::Staff,
            &serde_json::json!({"ground": "privacy", "note": "内部", "title": "t"}),
        );
        assert_eq!(staff["note"], "内部");
        let party = step_details(
            Reader::Party {
                account: Uuid::nil(),
            },
            &serde_json::json!({"ground": "privacy", "note": "内部"}),
        );
        assert!(party.get("note").is_none());
    }
}
