//! Materials: receiving uploaded files into the store (type sniffed from the bytes, size limited,
//! hashed on the way) and recording them. Evidence work (release, withhold, viewing) builds on it.

use actix_multipart::Field;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::entities::material;
use crate::store::{ObjectKey, Store, StoreError, Stored};

/// Bytes looked at to recognise a file's type.
const SNIFF_BYTES: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("不支持的文件类型：只接受 {0}")]
    Type(&'static str),
    #[error("文件为空")]
    Empty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A file now complete in the store, not yet recorded (the caller writes the row, or deletes the
/// object if it cannot).
#[derive(Debug)]
pub struct Received {
    pub material_id: Uuid,
    pub key: ObjectKey,
    pub stored: Stored,
    pub content_type: &'static str,
    pub original_name: String,
}

/// A file name as display text: NFC-ish trimmed, control and bidi characters removed, ≤ 200
/// characters. Never used in a path or key.
pub fn display_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control() && !matches!(*c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}'))
        .collect();
    let name = cleaned.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let name: String = name.chars().take(200).collect();
    if name.is_empty() {
        "未命名文件".into()
    } else {
        name
    }
}

/// Streams one multipart file field into the store under a new material id of `case_id`,
/// refusing types outside `allowed` (MIME types) before anything is stored.
pub async fn receive(
    store: &Store,
    case_id: Uuid,
    field: Field,
    limit: u64,
    allowed: &'static [&'static str],
    allowed_text: &'static str,
) -> Result<Received, UploadError> {
    let original_name = display_name(
        field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .unwrap_or(""),
    );
    // Fused: actix-multipart panics if a finished field is polled again.
    let mut field = field.fuse();
    // Gather the first bytes to recognise the type.
    let mut head: Vec<Bytes> = Vec::new();
    let mut seen = 0;
    while seen < SNIFF_BYTES {
        match field.next().await {
            Some(Ok(chunk)) => {
                seen += chunk.len();
                head.push(chunk);
            }
            Some(Err(e)) => {
                return Err(
                    StoreError::Body(Box::new(std::io::Error::other(e.to_string()))).into(),
                );
            }
            None => break,
        }
    }
    if seen == 0 {
        return Err(UploadError::Empty);
    }
    let first: Vec<u8> = head
        .iter()
        .flat_map(|b| b.iter().copied())
        .take(SNIFF_BYTES)
        .collect();
    let content_type = infer::get(&first)
        .map(|t| t.mime_type())
        .filter(|m| allowed.contains(m))
        .ok_or(UploadError::Type(allowed_text))?;
    let material_id = Uuid::now_v7();
    let key = ObjectKey::material(case_id, material_id);
    let rest = field.map_err(|e| std::io::Error::other(e.to_string()));
    let body =
        futures_util::stream::iter(head.into_iter().map(Ok::<Bytes, std::io::Error>)).chain(rest);
    let stored = store.put_stream(&key, body, limit).await?;
    Ok(Received {
        material_id,
        key,
        stored,
        content_type,
        original_name,
    })
}

/// Records a received file as a material row.
pub async fn record(
    db: &impl ConnectionTrait,
    case_id: Uuid,
    received: &Received,
    kind: &str,
    title: &str,
    state: &str,
    uploaded_by: Uuid,
) -> Result<material::Model, DbErr> {
    material::ActiveModel {
        id: Set(received.material_id),
        case_id: Set(case_id),
        kind: Set(kind.to_owned()),
        title: Set(title.to_owned()),
        original_name: Set(received.original_name.clone()),
        content_type: Set(received.content_type.to_owned()),
        size: Set(received.stored.size as i64),
        sha256: Set(received.stored.sha256.clone()),
        crc32: Set(i64::from(received.stored.crc32)),
        object_key: Set(received.key.as_str().to_owned()),
        state: Set(state.to_owned()),
        withhold_ground: Set(None),
        withhold_note: Set(None),
        uploaded_by: Set(uploaded_by),
        uploaded_at: Set(OffsetDateTime::now_utc()),
        decided_by: Set(None),
        decided_at: Set(None),
        superseded_by: Set(None),
    }
    .insert(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn file_names_are_display_text_only() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\scans\\授权委托书.pdf"), "授权委托书.pdf");
        assert_eq!(display_name("evil\u{202E}fdp.exe"), "evilfdp.exe");
        assert_eq!(display_name("a\u{0007}b.pdf"), "ab.pdf");
        assert_eq!(display_name(""), "未命名文件");
        assert_eq!(display_name(&"长".repeat(300)).chars().count(), 200);
    }
}
