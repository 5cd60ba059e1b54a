//! What interrupted uploads leave in a store, and how they are found: staging files in a
//! directory store, and (on S3) multipart uploads noted by the portal when they begin — the
//! listing object_store lacks.

use super::*;

/// Where the portal notes the multipart uploads in progress: one small object per upload, naming
/// the object and the upload id, removed when the upload completes or is aborted. What a killed
/// process leaves here, `gc` aborts.
const UPLOADS_PREFIX: &str = "_portal/uploads";

#[derive(serde::Serialize, serde::Deserialize)]
struct UploadNote {
    path: String,
    upload_id: String,
}

impl Store {
    /// A multipart upload whose id is noted in the store first (`_portal/uploads/…`) and the
    /// note removed once the upload is completed or aborted, so that `gc` can abort what a
    /// killed process left. Parts of `PART_SIZE`, `PARTS_IN_FLIGHT` at a time.
    pub(super) async fn put_noted_multipart<S, E>(
        &self,
        multipart: Arc<dyn MultipartStore>,
        key: &ObjectKey,
        head: Vec<Bytes>,
        mut body: std::pin::Pin<&mut S>,
        mut meter: Meter,
    ) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let id = self
            .within(async { Ok(multipart.create_multipart(&key.0).await?) })
            .await?;
        let note_key = ObjectKey(Path::from(format!("{UPLOADS_PREFIX}/{}", Uuid::now_v7())));
        let note = serde_json::to_vec(&UploadNote {
            path: key.0.to_string(),
            upload_id: id.clone(),
        })
        .map_err(|e| StoreError::Config(e.to_string()))?;
        if let Err(e) = self.put_small(&note_key, Bytes::from(note)).await {
            let _ = multipart.abort_multipart(&key.0, &id).await;
            return Err(e);
        }
        let outcome = self
            .upload_parts(&multipart, key, &id, head, body.as_mut(), &mut meter)
            .await;
        let result = match outcome {
            Ok(parts) => self
                .within(async { Ok(multipart.complete_multipart(&key.0, &id, parts).await?) })
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                if let Err(e) = self.delete(&note_key).await {
                    tracing::warn!(error = %e, "a completed upload's note stays; gc removes it");
                }
                Ok(meter.finish())
            }
            Err(e) => {
                match multipart.abort_multipart(&key.0, &id).await {
                    Ok(()) => {
                        let _ = self.delete(&note_key).await;
                    }
                    Err(abort) => {
                        tracing::warn!(error = %abort, "aborting a multipart upload failed; gc aborts it")
                    }
                }
                Err(e)
            }
        }
    }

    /// Sends `head` then the rest of `body` as parts of `PART_SIZE`, `PARTS_IN_FLIGHT` at a
    /// time, metered; the parts' ids in order.
    async fn upload_parts<S, E>(
        &self,
        multipart: &Arc<dyn MultipartStore>,
        key: &ObjectKey,
        id: &object_store::MultipartId,
        head: Vec<Bytes>,
        mut body: std::pin::Pin<&mut S>,
        meter: &mut Meter,
    ) -> Result<Vec<PartId>, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use futures_util::stream::FuturesOrdered;
        let mut parts: Vec<PartId> = Vec::new();
        let mut in_flight = FuturesOrdered::new();
        let mut pending: Vec<Bytes> = head;
        let mut pending_len: usize = pending.iter().map(Bytes::len).sum();
        let mut index = 0usize;
        let mut ended = false;
        while !ended || pending_len > 0 {
            if !ended && pending_len < PART_SIZE {
                match body.next().await {
                    Some(Ok(chunk)) => {
                        meter.add(&chunk)?;
                        pending_len += chunk.len();
                        pending.push(chunk);
                    }
                    Some(Err(e)) => return Err(StoreError::Body(e.into())),
                    None => ended = true,
                }
                continue;
            }
            let payload = PutPayload::from_iter(std::mem::take(&mut pending));
            pending_len = 0;
            let (multipart, path, id) = (multipart.clone(), key.0.clone(), id.clone());
            let part = index;
            index += 1;
            in_flight.push_back(async move {
                Ok::<_, StoreError>(multipart.put_part(&path, &id, part, payload).await?)
            });
            if in_flight.len() >= PARTS_IN_FLIGHT {
                let next = self
                    .within(async { in_flight.next().await.transpose() })
                    .await?;
                parts.extend(next);
            }
        }
        while let Some(done) = self
            .within(async { in_flight.next().await.transpose() })
            .await?
        {
            parts.push(done);
        }
        Ok(parts)
    }

    /// Incomplete multipart uploads noted by an upload that did not finish (its process was
    /// killed, or its abort failed), older than `older_than`: the object each was becoming.
    /// Aborted, and their notes removed, when `delete`. Stores without a multipart API have none.
    pub async fn abandoned_uploads(
        &self,
        older_than: time::OffsetDateTime,
        delete: bool,
    ) -> Result<Vec<(String, time::OffsetDateTime)>, StoreError> {
        let Some(multipart) = self.multipart.clone() else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for (note, modified) in self.objects_under(UPLOADS_PREFIX).await? {
            if modified > older_than {
                continue;
            }
            let note_key = ObjectKey::from_stored(&note)?;
            let Ok(upload) =
                serde_json::from_slice::<UploadNote>(&self.get_small(&note_key).await?)
            else {
                continue;
            };
            if delete {
                let path = Path::parse(&upload.path)
                    .map_err(|e| StoreError::Config(format!("note {note}: {e}")))?;
                match self
                    .within(async {
                        Ok(multipart.abort_multipart(&path, &upload.upload_id).await?)
                    })
                    .await
                {
                    // Already gone (completed, or aborted by a lifecycle rule): only the note stays.
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                self.delete(&note_key).await?;
            }
            found.push((upload.path, modified));
        }
        Ok(found)
    }

    /// The staging files of uploads a dead process left in a directory store (`…#N` beside
    /// the object they were becoming; object_store's listing never shows them), older than
    /// `older_than`: their paths relative to the store, modification times and sizes. Removed
    /// too when `delete`. Other stores have none (for S3 see [`Store::abandoned_uploads`]).
    pub async fn staging_leftovers(
        &self,
        older_than: time::OffsetDateTime,
        delete: bool,
    ) -> Result<Vec<(String, time::OffsetDateTime, u64)>, StoreError> {
        let Some(root) = self.root.clone() else {
            return Ok(Vec::new());
        };
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut dirs = vec![root.clone()];
            while let Some(dir) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        dirs.push(path);
                        continue;
                    }
                    if !entry.file_name().to_string_lossy().contains('#') {
                        continue;
                    }
                    let modified = meta
                        .modified()
                        .ok()
                        .map(time::OffsetDateTime::from)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                    if modified > older_than {
                        continue;
                    }
                    if delete {
                        std::fs::remove_file(&path).map_err(|e| {
                            StoreError::Config(format!("cannot remove {}: {e}", path.display()))
                        })?;
                    }
                    let relative = path
                        .strip_prefix(&root)
                        .unwrap_or(&path)
                        .display()
                        .to_string();
                    found.push((relative, modified, meta.len()));
                }
            }
            Ok(found)
        })
        .await
        .map_err(|e| StoreError::Config(format!("cannot walk the store: {e}")))?
    }
}
