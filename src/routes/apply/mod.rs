//! The public access application (查询申请) of a vehicle owner or an insurer's staff member:
//! the form (no account needed) here; its private status page, the query voucher (查询凭证) of
//! an approved application — printable, with the one-time code that opens the account — and
//! the ways back to them in `status`.

mod status;

pub use status::{
    apply_voucher_post, claim_post, scope_text, view_apply_mine_get, view_apply_status_get,
    view_apply_voucher_get, view_claim_get,
};

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use uuid::Uuid;

use super::auth::{anonymous_token, with_cookie};
use super::{Layout, render, render_status};
use crate::applications::{ApplicationError, access};
use crate::auth::client_of;
use crate::db::entities::{case, department};
use crate::error::AppResult;
use crate::state::AppState;

/// What a proof may be: a signed authorisation or certificate, scanned or as a PDF.
const PROOF_TYPES: &[&str] = &["application/pdf", "image/jpeg", "image/png"];

pub struct Brigade {
    pub id: Uuid,
    pub name: String,
    /// How the brigade's case numbers look, digits hidden (`京公交认字〔××××〕第×××××号`), from
    /// its newest case, as a sentence: what to look for on the papers, no case's number itself.
    pub format: Option<String>,
}

#[derive(Template)]
#[template(path = "public/apply.html")]
struct ApplyPage {
    layout: Layout,
    csrf_token: String,
    brigades: Vec<Brigade>,
    typed: access::NewAccess,
    error: Option<(&'static str, String)>,
    /// How the outcome will reach an applicant here (`apply.told.*`).
    told: String,
}

async fn brigades(state: &AppState) -> AppResult<Vec<Brigade>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let mut out = Vec::new();
    for d in crate::accounts::departments(&state.db).await? {
        let d: department::Model = d;
        let newest = case::Entity::find()
            .filter(case::Column::DepartmentId.eq(d.id))
            .order_by_desc(case::Column::CreatedAt)
            .one(&state.db)
            .await?;
        let format = newest.map(|c| {
            let format: String = c
                .case_number
                .chars()
                .map(|ch| if ch.is_numeric() { '×' } else { ch })
                .collect();
            crate::i18n::Locale::current().tf(
                "apply.case_number_format",
                &[("brigade", &d.name), ("format", &format)],
            )
        });
        out.push(Brigade {
            id: d.id,
            name: d.name,
            format,
        });
    }
    Ok(out)
}

/// The form's frame: its script shows the chosen brigade's case-number format only.
fn apply_layout() -> Layout {
    let mut layout = Layout::new();
    layout.scripts.push(crate::assets::url("page-actions.js"));
    layout
}

/// `GET /apply`
pub async fn view_apply_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    let page = ApplyPage {
        layout: apply_layout(),
        csrf_token,
        brigades: brigades(&state).await?,
        typed: access::NewAccess {
            kind: "insurer".into(),
            ..Default::default()
        },
        error: None,
        told: crate::notifications::Told::offered(state.channels).key("apply.told"),
    };
    with_cookie(render(&page)?, cookie)
}

fn set(typed: &mut access::NewAccess, name: &str, value: String) {
    match name {
        "kind" => typed.kind = value,
        "brigade" => typed.brigade = value,
        "case_number" => typed.case_number = value,
        "applicant_name" => typed.applicant_name = value,
        "organisation" => typed.organisation = value,
        "credit_code" => typed.credit_code = value,
        "plate" => typed.plate = value,
        "policy_no" => typed.policy_no = value,
        "mobile" => typed.mobile = value,
        "email" => typed.email = value,
        _ => {}
    }
}

/// `POST /apply` (multipart: the fields, then the `proof` file). Counted against the address's
/// limit before anything is read (refusals count there); the proof is stored only once the
/// fields have passed their checks; and only a submission whose fields and proof both passed
/// is counted against the case's limit, just before filing — junk cannot use up a case's day.
pub async fn apply_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let client = client_of(&req);
    let now = state.audit.now();
    access::within_limits(
        &state.db,
        state.settings.applications_per_hour,
        client.0.as_deref(),
        None,
        now,
    )
    .await??;
    let rule = super::uploads::Rule {
        file_field: "proof",
        max_files: 1,
        // Ten fields and the proof; a few to spare for what a browser adds.
        max_parts: 24,
        field_limit: 4096,
        text_limit: 16 * 1024,
        allowed: PROOF_TYPES,
        allowed_text: "PDF、JPEG、PNG",
        file_limit: crate::applications::FILE_BYTES,
    };
    let mut typed = access::NewAccess::default();
    let mut checked: Option<Result<access::Checked, ApplicationError>> = None;
    let mut proof = None;
    let mut budget = super::uploads::Budget::of(&rule);
    let read: AppResult<()> = async {
        while let Some(field) = payload.next().await {
            let field = field.map_err(super::uploads::multipart_error)?;
            budget.part()?;
            if field.name() != Some(rule.file_field) {
                let (name, value) =
                    super::uploads::read_text(field, rule.field_limit, &mut budget).await?;
                set(&mut typed, &name, value);
                continue;
            }
            if checked.is_some() {
                super::uploads::drain(field).await?;
                continue;
            }
            checked = match access::check(&state.db, &typed).await {
                Ok(c) => {
                    match super::uploads::receive_file(&state, c.case.id, field, &rule).await? {
                        super::uploads::FilePart::Kept(received) => {
                            proof = Some(received);
                            Some(Ok(c))
                        }
                        super::uploads::FilePart::Refused(problem) => {
                            Some(Err(ApplicationError::field("proof", &problem)))
                        }
                        // No file chosen: as if the part were absent (a later one may carry it).
                        super::uploads::FilePart::NotChosen => None,
                    }
                }
                Err(e) => {
                    super::uploads::drain(field).await?;
                    Some(Err(e))
                }
            };
        }
        Ok(())
    }
    .await;
    if let Err(e) = read {
        super::uploads::discard(&state, proof.iter()).await;
        return Err(e);
    }
    let outcome = match (checked, &proof) {
        (Some(Ok(c)), Some(p)) => {
            // Well-formed: now, and only now, it counts against the case.
            let counted = access::within_limits(&state.db, 0, None, Some(c.case.id), now).await;
            match counted {
                Ok(Ok(())) => access::file(&state.db, &state.audit, &state.key, c, p, client).await,
                Ok(Err(over)) => {
                    super::uploads::discard(&state, proof.iter()).await;
                    return Err(over.into());
                }
                Err(e) => {
                    super::uploads::discard(&state, proof.iter()).await;
                    return Err(e.into());
                }
            }
        }
        (Some(Err(e)), _) => Err(e),
        (None, _) | (Some(Ok(_)), None) => match access::check(&state.db, &typed).await {
            Err(e) => Err(e),
            Ok(_) => Err(ApplicationError::field(
                "proof",
                "请上传签字的授权书或证明材料（PDF、JPEG 或 PNG） (upload the signed authorisation or proof: PDF, JPEG or PNG)",
            )),
        },
    };
    match outcome {
        Ok(filed) => {
            let mut res = super::see_other(&format!(
                "/apply/{}?key={}&new=1",
                filed.application.id, filed.status_key
            ));
            // The way back from this browser (`/apply/mine`), should the link be lost.
            status::remember(
                &state,
                &req,
                &mut res,
                filed.application.id,
                &filed.status_key,
            )?;
            Ok(res)
        }
        Err(e) => {
            super::uploads::discard(&state, proof.iter()).await;
            let field = match &e {
                ApplicationError::Field { field, .. } => *field,
                ApplicationError::Refused { .. } => "",
                _ => return Err(e.into()),
            };
            let (csrf_token, cookie) = anonymous_token(&req, &state);
            let page = ApplyPage {
                layout: apply_layout(),
                csrf_token,
                brigades: brigades(&state).await?,
                typed,
                error: Some((field, crate::i18n::pick(&e.to_string()))),
                told: crate::notifications::Told::offered(state.channels).key("apply.told"),
            };
            with_cookie(
                render_status(actix_web::http::StatusCode::BAD_REQUEST, &page)?,
                cookie,
            )
        }
    }
}
