//! Reading multipart forms that carry files: each file streamed into the store as it arrives
//! (type sniffed, size limited, hashed), the text fields kept, and anything refused or cut off
//! leaving nothing behind. Staff uploads, agents' authorisations, review applications and the
//! public access application all read their forms here.
//!
//! Every form is capped in its parts and its text ([`Budget`]): a page of the portal sends a
//! few dozen fields at most, so a body of thousands of fields is refused (413) at the first
//! part past the cap instead of being read to its end. A file input left empty arrives, as
//! browsers send it, as a part without a file name or bytes: it is no file, not an empty one.

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
    /// Parts the form may have — text fields, files, and the empty parts of file inputs left
    /// empty or fields no page sends alike; the first part past it is refused (413).
    pub max_parts: usize,
    /// Bytes a text field may hold.
    pub field_limit: usize,
    /// Bytes all text fields together may hold, their names included; past it, refused (413).
    pub text_limit: usize,
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

/// What a form may still send: parts and bytes of text, from its [`Rule`]'s caps. Every part
/// is taken from it as it begins — kept, refused, drained or skipped alike — and every chunk
/// of text as it arrives, so a form past a cap is refused before the rest is read.
#[derive(Clone, Debug)]
pub struct Budget {
    max_parts: usize,
    text_limit: usize,
    parts: usize,
    text: usize,
}

impl Budget {
    pub fn of(rule: &Rule<'_>) -> Self {
        Budget {
            max_parts: rule.max_parts,
            text_limit: rule.text_limit,
            parts: 0,
            text: 0,
        }
    }

    /// Takes one part: refused (413) past the form's `max_parts`.
    pub fn part(&mut self) -> AppResult<()> {
        self.parts = self.parts.saturating_add(1);
        if self.parts > self.max_parts {
            return Err(AppError::FormTooLarge {
                message: format!(
                    "表单字段过多：本表单最多 {n} 项，请从页面重新提交 (the form has too many fields: at most {n}; send it again from its page)",
                    n = self.max_parts
                ),
            });
        }
        Ok(())
    }

    /// Takes `bytes` of text: refused (413) past the form's `text_limit` in all.
    pub fn text(&mut self, bytes: usize) -> AppResult<()> {
        self.text = self.text.saturating_add(bytes);
        if self.text > self.text_limit {
            return Err(AppError::FormTooLarge {
                message: format!(
                    "表单文字过多：所有字段合计不超过 {n} 字节 (the form carries too much text: at most {n} bytes in all its fields)",
                    n = self.text_limit
                ),
            });
        }
        Ok(())
    }
}

/// A file part, read.
pub enum FilePart {
    /// In the store now.
    Kept(Received),
    /// Refused, and why (the type, an empty file, a name that claims another type).
    Refused(String),
    /// No file: the part a browser sends for a file input left empty (no file name, no bytes).
    NotChosen,
}

/// Reads the whole form, storing its files under `case_id`.
pub async fn read(
    state: &AppState,
    case_id: Uuid,
    payload: &mut actix_multipart::Multipart,
    rule: &Rule<'_>,
) -> AppResult<Form> {
    let mut form = Form::default();
    let mut budget = Budget::of(rule);
    let read = async {
        while let Some(field) = payload.next().await {
            let field = field.map_err(multipart_error)?;
            budget.part()?;
            if field.name() == Some(rule.file_field) {
                if form.files.len() >= rule.max_files || form.problem.is_some() {
                    let chosen = drain(field).await?;
                    if chosen && form.files.len() >= rule.max_files && rule.max_files > 1 {
                        form.problem = Some(format!(
                            "最多上传{n}个文件 (at most {n} files)",
                            n = rule.max_files
                        ));
                    }
                    continue;
                }
                match receive_file(state, case_id, field, rule).await? {
                    FilePart::Kept(received) => form.files.push(received),
                    FilePart::Refused(problem) => form.problem = Some(problem),
                    FilePart::NotChosen => {}
                }
            } else {
                let (name, value) = read_text(field, rule.field_limit, &mut budget).await?;
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

/// The file name a part was sent with, if any ("" when a browser's file input was left empty).
fn file_name(field: &actix_multipart::Field) -> Option<String> {
    field
        .content_disposition()
        .and_then(|cd| cd.get_filename())
        .map(str::to_owned)
}

/// Streams one file field into the store under `case_id`: the file, why it was refused (type,
/// emptiness, a name that claims another type), or no file at all (a file input left empty).
/// Too large, a store that is full or unavailable, and a cut connection are errors.
pub async fn receive_file(
    state: &AppState,
    case_id: Uuid,
    field: actix_multipart::Field,
    rule: &Rule<'_>,
) -> AppResult<FilePart> {
    let limit = rule.file_limit.min(state.settings.max_upload_bytes);
    let name = file_name(&field).unwrap_or_default();
    let field_name = field.name().unwrap_or("").to_owned();
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
        Ok(r) => Ok(FilePart::Kept(r)),
        Err(crate::materials::UploadError::Store(crate::store::StoreError::TooLarge { limit })) => {
            Err(AppError::PayloadTooLarge { limit })
        }
        Err(crate::materials::UploadError::Store(e)) => Err(e.into()),
        Err(crate::materials::UploadError::Empty) if name.trim().is_empty() => {
            Ok(FilePart::NotChosen)
        }
        Err(crate::materials::UploadError::Empty) => Ok(FilePart::Refused(empty_file(
            &field_name,
            &crate::materials::display_name(&name),
        ))),
        Err(e) => Ok(FilePart::Refused(e.to_string())),
    }
}

/// Why a chosen file of 0 bytes is refused, naming the form's field and the file.
fn empty_file(field: &str, file: &str) -> String {
    format!(
        "“{field}”中的文件“{file}”是空文件（0 字节），请重新选择 (the file “{file}” in the field “{field}” is empty: 0 bytes; choose it again)"
    )
}

/// A text field: its name and value (at most `limit` bytes; more is refused), taken from the
/// form's `budget` as it arrives.
pub async fn read_text(
    mut field: actix_multipart::Field,
    limit: usize,
    budget: &mut Budget,
) -> AppResult<(String, String)> {
    let name = field.name().unwrap_or("").to_owned();
    budget.text(name.len())?;
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
        budget.text(chunk.len())?;
        value.extend_from_slice(&chunk);
    }
    Ok((name, String::from_utf8_lossy(&value).into_owned()))
}

/// Reads a field to its end without keeping it: whether it was a file chosen (a file name or
/// bytes), not the empty part of a file input left empty.
pub async fn drain(mut field: actix_multipart::Field) -> AppResult<bool> {
    let mut chosen = file_name(&field).is_some_and(|n| !n.trim().is_empty());
    while let Some(chunk) = field.next().await {
        chosen |= !chunk.map_err(multipart_error)?.is_empty();
    }
    Ok(chosen)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(max_parts: usize, text_limit: usize) -> Rule<'static> {
        Rule {
            file_field: "file",
            max_files: 1,
            max_parts,
            field_limit: 4096,
            text_limit,
            file_limit: 0,
            allowed: &[],
            allowed_text: "",
        }
    }

    #[test]
    fn the_part_past_the_cap_is_refused_with_413_and_says_why() {
        let mut budget = Budget::of(&rule(2, 10));
        assert!(budget.part().is_ok() && budget.part().is_ok());
        let e = budget.part().unwrap_err();
        assert_eq!(e.code(), "form_too_large");
        assert!(e.to_string().contains("最多 2 项") && e.to_string().contains("at most 2"));
        let e = budget.text(11).unwrap_err();
        assert!(e.to_string().contains("10 字节") && e.to_string().contains("at most 10 bytes"));
    }

    #[derive(Clone, Debug)]
    enum Step {
        Part,
        Text(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![Just(Step::Part), (0usize..5000).prop_map(Step::Text)]
    }

    proptest! {
        /// Whatever a form sends, in any order: each part and each chunk of text is accepted
        /// exactly while the totals so far stay within the caps, and once a cap is passed
        /// nothing more of that kind is accepted.
        #[test]
        fn a_budget_accepts_exactly_what_fits(
            max_parts in 0usize..64,
            text_limit in 0usize..100_000,
            steps in proptest::collection::vec(step(), 0..200),
        ) {
            let mut budget = Budget::of(&rule(max_parts, text_limit));
            let (mut parts, mut text) = (0usize, 0usize);
            let (mut parts_refused, mut text_refused) = (false, false);
            for s in steps {
                match s {
                    Step::Part => {
                        parts += 1;
                        let ok = budget.part().is_ok();
                        prop_assert_eq!(ok, parts <= max_parts);
                        prop_assert!(!(ok && parts_refused));
                        parts_refused |= !ok;
                    }
                    Step::Text(n) => {
                        text += n;
                        let ok = budget.text(n).is_ok();
                        prop_assert_eq!(ok, text <= text_limit);
                        prop_assert!(!(ok && text_refused));
                        text_refused |= !ok;
                    }
                }
            }
        }
    }
}
