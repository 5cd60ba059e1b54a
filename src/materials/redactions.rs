//! What a material is shown as, outside the brigade, once staff have redacted it (issue 34):
//! the current redacted copy in place of the original — its object, hash, size and type — and
//! nothing at all while a video's copy is being made or waits for an officer's review. Staff of
//! the case's brigade (`CasePermit::unredacted`) keep the original. Making a redaction is
//! `redaction`'s work; this module only reads.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::db::entities::{material, redaction};
use crate::vocab::{RedactionReason, RedactionState};

/// The current redaction of each redacted material of a case (the newest of each).
pub async fn current_of_case(
    db: &impl ConnectionTrait,
    case_id: Uuid,
) -> Result<HashMap<Uuid, redaction::Model>, DbErr> {
    Ok(redaction::Entity::find()
        .filter(redaction::Column::CaseId.eq(case_id))
        .filter(redaction::Column::ReplacedBy.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.material_id, r))
        .collect())
}

/// The current redaction of one material, if it has one.
pub async fn current_of(
    db: &impl ConnectionTrait,
    material_id: Uuid,
) -> Result<Option<redaction::Model>, DbErr> {
    redaction::Entity::find()
        .filter(redaction::Column::MaterialId.eq(material_id))
        .filter(redaction::Column::ReplacedBy.is_null())
        .one(db)
        .await
}

/// Every redaction of a material, newest first (the staff's history).
pub async fn history(
    db: &impl ConnectionTrait,
    material_id: Uuid,
) -> Result<Vec<redaction::Model>, DbErr> {
    redaction::Entity::find()
        .filter(redaction::Column::MaterialId.eq(material_id))
        .order_by_desc(redaction::Column::MadeAt)
        .all(db)
        .await
}

/// How `material` is shown to someone who does not see originals: itself when it has no
/// redaction, its redacted copy in its place when that is ready, and nothing (`None`) while a
/// copy is being made, waits for review, or could not be made.
pub fn shown_as(
    material: material::Model,
    current: Option<&redaction::Model>,
) -> Option<material::Model> {
    let Some(r) = current else {
        return Some(material);
    };
    if r.state != RedactionState::Ready {
        return None;
    }
    let (Some(sha256), Some(size), Some(crc32)) = (r.sha256.clone(), r.size, r.crc32) else {
        return None;
    };
    let name = redacted_name(&material.original_name, &r.content_type);
    Some(material::Model {
        object_key: r.object_key.clone(),
        content_type: r.content_type.clone(),
        sha256,
        sm3: r.sm3.clone(),
        size,
        crc32,
        original_name: name,
        ..material
    })
}

/// Whether a material as shown is a redacted copy (its bytes are a redaction's object): the
/// access events of such a view say so, and the history shows it.
pub fn is_redacted_copy(shown: &material::Model) -> bool {
    shown.object_key.contains("/redactions/")
}

/// What a material as shown is made from: its redaction's id when it is a redacted copy, its own
/// id otherwise (what per-person transcodes are kept under).
pub fn source_id(shown: &material::Model) -> Uuid {
    shown
        .object_key
        .rsplit_once("/redactions/")
        .and_then(|(_, id)| Uuid::parse_str(id).ok())
        .unwrap_or(shown.id)
}

/// `scene.jpg` of a copy in `image/png` is `scene（遮挡处理）.png`: the name says what it is and
/// its extension matches its bytes.
pub fn redacted_name(original: &str, content_type: &str) -> String {
    let stem = match original.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => original,
    };
    let ext = match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "application/pdf" => "pdf",
        "video/mp4" => "mp4",
        _ => "bin",
    };
    format!("{stem}（遮挡处理）.{ext}")
}

/// How many of the shown materials are redacted copies, for each reason (reasons with none
/// left out): what the party is told beside the withheld counts.
pub fn reason_counts<'a>(
    shown: impl Iterator<Item = &'a redaction::Model>,
) -> Vec<(RedactionReason, usize)> {
    let mut counts: HashMap<RedactionReason, usize> = HashMap::new();
    for r in shown {
        for reason in r.reason_words() {
            *counts.entry(reason).or_default() += 1;
        }
    }
    RedactionReason::ALL
        .iter()
        .filter_map(|r| counts.get(r).map(|n| (*r, *n)))
        .collect()
}

/// What a party is told of the redacted copies among the materials shown: how many, and why.
pub fn told(view: &super::PartyView) -> Option<String> {
    if view.redactions.is_empty() {
        return None;
    }
    let locale = crate::i18n::Locale::current();
    let reasons: Vec<String> = view
        .redacted
        .iter()
        .map(|(reason, _)| locale.label(*reason))
        .collect();
    let separator = if locale == crate::i18n::Locale::En {
        ", "
    } else {
        "、"
    };
    Some(locale.tf(
        "redact.told",
        &[
            ("n", &view.redactions.len().to_string()),
            ("reasons", &reasons.join(separator)),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_named_for_what_it_is() {
        assert_eq!(
            redacted_name("现场.jpg", "image/jpeg"),
            "现场（遮挡处理）.jpg"
        );
        assert_eq!(
            redacted_name("scan.webp", "image/png"),
            "scan（遮挡处理）.png"
        );
        assert_eq!(
            redacted_name("noext", "application/pdf"),
            "noext（遮挡处理）.pdf"
        );
        assert_eq!(
            redacted_name(".hidden", "video/mp4"),
            ".hidden（遮挡处理）.mp4"
        );
    }
}
