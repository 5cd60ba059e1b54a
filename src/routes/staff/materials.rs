//! Staff pages for a case's evidence: uploads (streamed, refused or cut ones leave nothing) and
//! the decision to release or withhold.

use super::*;
use crate::routes::flash::{self, Flash};
use crate::vocab::{MaterialKind, MaterialState};

/// A multipart upload read: its text fields, the file of `file_field` (already in the store),
/// and why the file was refused, if it was. The caller removes the file if it refuses the rest.
pub(super) type UploadParts = (
    std::collections::HashMap<String, String>,
    Option<crate::materials::Received>,
    Option<String>,
);

/// One file and the form's fields (each at most 4 KiB, 16 KiB and 16 parts in all): see
/// `routes::uploads::read`.
pub(super) async fn read_upload(
    state: &AppState,
    case_id: Uuid,
    payload: &mut actix_multipart::Multipart,
    file_field: &str,
    allowed: &'static [&'static str],
    allowed_text: &'static str,
) -> AppResult<UploadParts> {
    let rule = crate::routes::uploads::Rule {
        file_field,
        max_files: 1,
        // A handful of fields and the file (a page sends fewer than ten).
        max_parts: 16,
        field_limit: 4096,
        text_limit: 16 * 1024,
        allowed,
        allowed_text,
        file_limit: u64::MAX,
    };
    let form = crate::routes::uploads::read(state, case_id, payload, &rule).await?;
    let fields = form.fields.into_iter().collect();
    Ok((fields, form.files.into_iter().next(), form.problem))
}

/// Removes a stored file whose record was refused: nothing half-done stays behind.
pub(super) async fn discard(state: &AppState, file: Option<&crate::materials::Received>) {
    crate::routes::uploads::discard(state, file.into_iter()).await;
}

#[derive(serde::Serialize)]
struct Uploaded {
    id: Uuid,
    title: String,
    sha256: String,
    /// Hex SM3 (issue 36).
    sm3: Option<String>,
    size: i64,
    content_type: String,
    duplicate_of: Option<Uuid>,
}

/// `POST /staff/cases/{id}/materials`: one file (`file`) with its `kind` and `title`, as a
/// multipart form; the upload page sends one request per file. Answers JSON to scripts
/// (`Accept: application/json`) and a redirect to the case page otherwise. New material is a
/// draft.
pub async fn material_upload_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    use crate::materials::MaterialError;
    let (permit, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    let (fields, file, problem) = read_upload(
        &state,
        case.id,
        &mut payload,
        "file",
        crate::materials::EVIDENCE_TYPES,
        crate::materials::EVIDENCE_TYPES_TEXT,
    )
    .await?;
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or("").to_owned();
    let outcome = match (&file, problem) {
        (_, Some(p)) => Err(MaterialError::Invalid(p)),
        (None, None) => Err(MaterialError::Invalid(t("staff.materials.file_missing"))),
        (Some(f), None) => {
            let account = &staff.0.account;
            crate::materials::upload(
                &state.db,
                &state.audit,
                account,
                &permit,
                f,
                &field("kind"),
                &field("title"),
                Uuid::parse_str(field("supersedes").trim()).ok(),
                client_of(&req),
            )
            .await
        }
    };
    let wants_json = crate::telemetry::RequestContext::current().is_some_and(|c| c.wants_json);
    match outcome {
        Ok((m, duplicate)) if wants_json => Ok(HttpResponse::Created().json(Uploaded {
            id: m.id,
            title: m.title,
            sha256: m.sha256,
            sm3: m.sm3,
            size: m.size,
            content_type: m.content_type,
            duplicate_of: duplicate.map(|d| d.id),
        })),
        Ok((m, duplicate)) => Ok(flash::see_other(
            &format!("/staff/cases/{}#materials", case.id),
            Flash::new(if duplicate.is_some() {
                "uploaded_duplicate"
            } else {
                "uploaded"
            })
            .with("title", &m.title),
        )),
        Err(e) => {
            discard(&state, file.as_ref()).await;
            match e {
                MaterialError::Invalid(m) if !wants_json => {
                    refused(&state, &staff, case, CaseError::Invalid(m)).await
                }
                other => Err(other.into()),
            }
        }
    }
}

/// `POST /staff/cases/{id}/release` (form: `material` repeated): releases several drafts at
/// once, each decided and audited on its own; the officer is told how many went out, and which
/// could not (already decided, or not this case's).
pub async fn materials_release_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    use crate::materials::MaterialError;
    let (permit, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    staff
        .0
        .require_step_up(&format!("/staff/cases/{}#materials", case.id))?;
    let ids: Vec<Uuid> = url::form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "material")
        .filter_map(|(_, v)| Uuid::parse_str(v.trim()).ok())
        .take(500)
        .collect();
    if ids.is_empty() {
        return refused(
            &state,
            &staff,
            case,
            CaseError::Invalid("请先勾选要公开的材料 (tick the material to release first)".into()),
        )
        .await;
    }
    // Only what is not out yet: releasing a released item again would say nothing new.
    let (released, skipped) = match crate::materials::release_many(
        &state.db,
        &state.audit,
        state.channels,
        &staff.0.account,
        &permit,
        &ids,
    )
    .await
    {
        Ok(counts) => counts,
        Err(MaterialError::Invalid(_) | MaterialError::NotFound) => (0, ids.len()),
        Err(e) => return Err(e.into()),
    };
    Ok(flash::see_other(
        &format!("/staff/cases/{}#materials", case.id),
        Flash::new(if skipped == 0 {
            "released_many"
        } else {
            "released_some"
        })
        .with("n", released)
        .with("skipped", skipped),
    ))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    ground: String,
    #[serde(default)]
    note: String,
}

/// `POST /staff/cases/{id}/materials/{material_id}/{release|withhold}`
pub async fn material_decide_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid, String)>,
    form: web::Form<DecisionForm>,
) -> AppResult<HttpResponse> {
    use crate::materials::{Decision, MaterialError};
    let (case_id, material_id, action) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    let form = form.into_inner();
    let decision = match action.as_str() {
        "release" => Decision::Release,
        "withhold" => Decision::Withhold {
            ground: form.ground,
            note: form.note,
        },
        _ => return Err(AppError::NotFound),
    };
    let account = &staff.0.account;
    let decided = crate::materials::decide(
        &state.db,
        &state.audit,
        state.channels,
        account,
        &permit,
        material_id,
        decision,
    )
    .await;
    match decided {
        Ok(m) => Ok(flash::see_other(
            &format!("/staff/cases/{case_id}#materials"),
            Flash::new(match m.state {
                MaterialState::Released => "released",
                MaterialState::Withheld => "withheld",
                MaterialState::Draft => "saved",
            })
            .with("title", &m.title),
        )),
        Err(MaterialError::Invalid(m)) => {
            refused(&state, &staff, case, CaseError::Invalid(m)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "staff/upload.html")]
struct UploadPage {
    layout: Layout,
    case: case::Model,
    csrf_token: String,
    kinds: Vec<crate::routes::Choice>,
    limit: String,
    /// The picker shows only the types the portal accepts.
    accept: String,
}

/// `GET /staff/cases/{id}/upload`: several files at once, each with its kind, title and
/// progress bar (one request per file; needs JavaScript — the case page has a plain form).
pub async fn view_upload_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (_, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    let mut layout = Layout::for_user(&staff.0);
    layout.scripts.push(crate::assets::url("upload.js"));
    render(&UploadPage {
        layout,
        csrf_token: staff.0.csrf_token.clone(),
        kinds: crate::routes::choices(&MaterialKind::EVIDENCE),
        limit: human_size(state.settings.max_upload_bytes as i64),
        case,
        accept: crate::materials::EVIDENCE_TYPES.join(","),
    })
}

#[derive(Deserialize)]
pub struct ProvesForm {
    #[serde(default)]
    proves: String,
}

/// `POST /staff/cases/{id}/materials/{material_id}/proves` (form: `proves`): what the material
/// proves (证明对象), printed in the evidence index of every bundle; empty clears it. Audited.
pub async fn material_proves_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    form: web::Form<ProvesForm>,
) -> AppResult<HttpResponse> {
    use crate::materials::MaterialError;
    let (case_id, material_id) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    let saved = crate::materials::set_proves(
        &state.db,
        &state.audit,
        &staff.0.account,
        &permit,
        material_id,
        &form.proves,
    )
    .await;
    match saved {
        Ok(m) => Ok(flash::see_other(
            &format!("/staff/cases/{case_id}#materials"),
            Flash::new("saved").with("title", &m.title),
        )),
        Err(MaterialError::Invalid(m)) => {
            refused(&state, &staff, case, CaseError::Invalid(m)).await
        }
        Err(e) => Err(e.into()),
    }
}
