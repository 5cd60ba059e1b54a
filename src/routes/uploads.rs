//! Reading multipart forms that carry files: each file streamed into the store as it arrives
//! (type sniffed, size limited, hashed), the text fields kept, and anything refused or cut off
//! leaving nothing behind. Staff uploads, agents' authorisations, review applications and the
//! public access application all read their forms here.

use futures_util::StreamExt;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::materials::Received;
use crate::state::AppState;

/// What a form may carry.
pub struct Rule<'a> {
    /// The name of the file field (repeated for several files).
    pub file_field: &'a str,
    /// Files kept at most; further ones are refused (`problem`).
    pub max_files: usize,
    /// Bytes a text field may hold.
    pub field_limit: usize,
    /// Bytes a file may hold (at most the installation's `PORTAL_MAX_UPLOAD_BYTES`).
    pub file_limit: u64,
    /// Accepted MIME types, sniffed from the bytes, and their description for the person.
    pub allowed: &'static [&'static str],
    pub allowed_text: &'static str,
}

/// A form read: its text fields in order (a repeated field appears once per value), the files
/// now in the store, and why a file was refused, if one was. The caller removes the files if it
/// refuses the rest ([`discard`]).
#[derive(Default)]
pub struct Form {
    pub fields: Vec<(String, String)>,
    pub files: Vec<Received>,
    pub problem: Option<String>,
}

impl Form {
    /// The last value of field `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of a repeated field.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Reads the whole form, storing its files under `case_id`.
pub async fn read(
    state: &AppState,
    case_id: Uuid,
    payload: &mut actix_multipart::Multipart,
    rule: &Rule<'_>,
) -> AppResult<Form> {
    let mut form = Form::default();
    let read = async {
        while let Some(field) = payload.next().await {
            let field = field.map_err(multipart_error)?;
            if field.name() == Some(rule.file_field) {
                if form.files.len() >= rule.max_files || form.problem.is_some() {
                    if form.files.len() >= rule.max_files && rule.max_files > 1 {
                        form.problem = Some(format!(
                            "最多上传{n}个文件 (at most {n} files)",
                            n = rule.max_files
                        ));
                    }
                    drain(field).await?;
                    continue;
                }
                match receive_file(state, case_id, field, rule).await? {
                    Ok(received) => form.files.push(received),
                    Err(problem) => form.problem = Some(problem),
                }
            } else {
                let name = field.name().unwrap_or("").to_owned();
                let value = read_text(field, rule.field_limit).await?;
                form.fields.push((name, value));
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = read {
        // A later field was refused or the connection was cut: the stored files go too.
        discard(state, form.files.iter()).await;
        return Err(e);
    }
    Ok(form)
}

/// Streams one file field into the store under `case_id`: the file, or why it was refused
/// (type, emptiness, a name that claims another type). Too large, a store that is full or
/// unavailable, and a cut connection are errors.
pub async fn receive_file(
    state: &AppState,
    case_id: Uuid,
    field: actix_multipart::Field,
    rule: &Rule<'_>,
) -> AppResult<Result<Received, String>> {
    let limit = rule.file_limit.min(state.settings.max_upload_bytes);
    match crate::materials::receive(
        &state.store,
        case_id,
        field,
        limit,
        rule.allowed,
        rule.allowed_text,
    )
    .await
    {
        Ok(r) => Ok(Ok(r)),
        Err(crate::materials::UploadError::Store(crate::store::StoreError::TooLarge { limit })) => {
            Err(AppError::PayloadTooLarge { limit })
        }
        Err(crate::materials::UploadError::Store(e)) => Err(e.into()),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// A text field's value (at most `limit` bytes; more is refused).
pub async fn read_text(mut field: actix_multipart::Field, limit: usize) -> AppResult<String> {
    let mut value = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(multipart_error)?;
        if value.len() + chunk.len() > limit {
            return Err(AppError::bad_request(
                "field_too_long",
                format!(
                    "表单字段过长（不超过 {limit} 字节） (a form field is longer than {limit} bytes)"
                ),
            ));
        }
        value.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&value).into_owned())
}

/// Reads a field to its end without keeping it.
pub async fn drain(mut field: actix_multipart::Field) -> AppResult<()> {
    while let Some(chunk) = field.next().await {
        chunk.map_err(multipart_error)?;
    }
    Ok(())
}

/// A multipart body that cannot be read, in words the person can act on.
pub fn multipart_error(e: actix_multipart::MultipartError) -> AppError {
    tracing::info!(error = %e, "unreadable upload");
    match e {
        actix_multipart::MultipartError::Incomplete
        | actix_multipart::MultipartError::Payload(_) => AppError::bad_request(
            "upload_incomplete",
            "上传未完成：连接中断或速度过慢，请重新上传 (the upload was cut off or too slow; upload the file again)",
        ),
        _ => AppError::bad_request(
            "bad_upload_form",
            "无法读取上传的表单：文件名或字段含有不允许的字符（如控制字符）。请重命名文件后重新上传 (the upload could not be read: a file name or field contains characters that are not allowed, such as control characters; rename the file and upload it again)",
        ),
    }
}

/// Removes stored files whose record was refused: nothing half-done stays behind (what cannot
/// be removed now, `gc` removes later: no row references it).
pub async fn discard<'a>(state: &AppState, files: impl Iterator<Item = &'a Received>) {
    for f in files {
        if let Err(e) = state.store.delete(&f.key).await {
            tracing::warn!(error = %e, "could not remove a refused upload; gc will");
        }
    }
}
