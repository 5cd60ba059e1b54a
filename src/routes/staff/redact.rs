//! The redaction editor (issue 34): on a material's own page, staff draw boxes over a picture,
//! each page of a PDF or a video (mouse, finger, or typed as numbers — the keyboard's way), give
//! each a reason, preview the result, and save: a new redacted copy from the original
//! (`redaction::create`). The page lists every redaction of the material with who made it, and
//! asks an officer to confirm having watched a video's copy in full before it is shown.

use super::*;
use crate::db::entities::{material, redaction};
use crate::redaction::{Areas, MAX_AREAS, RedactionError, Shape};
use crate::vocab::{RedactionReason, RedactionState};

/// One row of the box table, as the form shows it (per cent, as typed).
#[derive(Default)]
pub(super) struct Row {
    pub page: String,
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub x2: String,
    pub y2: String,
    pub w2: String,
    pub h2: String,
    pub start: String,
    pub end: String,
    pub reason: String,
    pub note: String,
}

/// One earlier redaction, for the history.
pub(super) struct Version {
    pub id: Uuid,
    /// When, who, how many boxes and why.
    pub line: String,
    pub state: String,
    pub current: bool,
    pub sha256: String,
    /// The copy's SM3 (issue 36), empty for a copy made before.
    pub sm3: String,
    pub reviewable: bool,
    pub reviewed_by: Option<String>,
    pub progress: Option<u32>,
    pub failure: Option<String>,
}

#[derive(Template)]
#[template(path = "staff/redact.html")]
struct RedactPage {
    layout: Layout,
    case: case::Model,
    material: material::Model,
    csrf_token: String,
    /// `picture`, `pdf` or `video`.
    shape: &'static str,
    pages: Vec<u32>,
    reasons: Vec<crate::routes::Choice>,
    rows: Vec<(usize, Row)>,
    versions: Vec<Version>,
    message: Option<String>,
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Picture => "picture",
        Shape::Pdf => "pdf",
        Shape::Video => "video",
    }
}

fn fmt(v: f64) -> String {
    let s = format!("{:.2}", v * 100.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The rows of the form for `areas` (the current boxes, to start from), with empty rows to add
/// more: at least five, three more than the boxes, at most `MAX_AREAS`.
fn rows_of(areas: &Areas) -> Vec<(usize, Row)> {
    let mut rows: Vec<Row> = areas
        .boxes
        .iter()
        .map(|a| Row {
            page: if a.page == 0 {
                String::new()
            } else {
                a.page.to_string()
            },
            x: fmt(a.rect.x),
            y: fmt(a.rect.y),
            w: fmt(a.rect.w),
            h: fmt(a.rect.h),
            reason: a.reason.clone(),
            note: a.note.clone(),
            ..Row::default()
        })
        .chain(areas.tracks.iter().map(|t| Row {
            x: fmt(t.from.x),
            y: fmt(t.from.y),
            w: fmt(t.from.w),
            h: fmt(t.from.h),
            x2: fmt(t.to.x),
            y2: fmt(t.to.y),
            w2: fmt(t.to.w),
            h2: fmt(t.to.h),
            start: format!("{}", t.start),
            end: format!("{}", t.end),
            reason: t.reason.clone(),
            note: t.note.clone(),
            ..Row::default()
        }))
        .collect();
    let total = (rows.len() + 3).clamp(5, MAX_AREAS);
    rows.resize_with(total, Row::default);
    rows.into_iter().enumerate().collect()
}

/// The rows as the officer typed them (a refused form comes back as it was sent).
fn rows_sent(pairs: &[(String, String)]) -> Vec<(usize, Row)> {
    let mut rows: std::collections::BTreeMap<usize, Row> = Default::default();
    for (k, v) in pairs {
        let Some((i, field)) = k.strip_prefix("box").and_then(|k| k.split_once('.')) else {
            continue;
        };
        let Some(i) = i.parse::<usize>().ok().filter(|i| *i < MAX_AREAS) else {
            continue;
        };
        let row = rows.entry(i).or_default();
        let v: String = v.chars().take(600).collect();
        match field {
            "page" => row.page = v,
            "x" => row.x = v,
            "y" => row.y = v,
            "w" => row.w = v,
            "h" => row.h = v,
            "x2" => row.x2 = v,
            "y2" => row.y2 = v,
            "w2" => row.w2 = v,
            "h2" => row.h2 = v,
            "start" => row.start = v,
            "end" => row.end = v,
            "reason" => row.reason = v,
            "note" => row.note = v,
            _ => {}
        }
    }
    let mut rows: Vec<Row> = rows.into_values().collect();
    let total = rows.len().clamp(5, MAX_AREAS);
    rows.resize_with(total, Row::default);
    rows.into_iter().enumerate().collect()
}

async fn versions(state: &AppState, material_id: Uuid) -> AppResult<Vec<Version>> {
    let locale = Locale::current();
    let rows = crate::redaction::history(&state.db, material_id)
        .await
        .map_err(AppError::from)?;
    Ok(rows
        .into_iter()
        .map(
            |(r, made_by, reviewed_by): (redaction::Model, String, Option<String>)| {
                let reasons = r
                    .reason_words()
                    .into_iter()
                    .map(|w| locale.label(w))
                    .collect::<Vec<_>>()
                    .join(if locale == Locale::En { ", " } else { "、" });
                Version {
                    id: r.id,
                    line: locale.tf(
                        "redact.version",
                        &[
                            ("time", &cst(r.made_at)),
                            ("who", &made_by),
                            ("n", &Areas::from_json(&r.areas).len().to_string()),
                            ("reasons", &reasons),
                        ],
                    ),
                    state: locale.label(r.state),
                    current: r.replaced_by.is_none(),
                    sha256: r.sha256.clone().unwrap_or_default(),
                    sm3: r.sm3.clone().unwrap_or_default(),
                    reviewable: r.replaced_by.is_none() && r.state == RedactionState::Unreviewed,
                    reviewed_by,
                    progress: crate::redaction::progress(r.id).map(|f| (f * 100.0).round() as u32),
                    failure: r.failure.clone(),
                }
            },
        )
        .collect())
}

async fn page(
    state: &AppState,
    staff: &StaffUser,
    permit: &crate::policy::CasePermit,
    case: case::Model,
    material_id: Uuid,
    sent: Option<(&[(String, String)], String)>,
) -> AppResult<HttpResponse> {
    let (material, shape) = crate::redaction::redactable(&state.db, permit, material_id).await?;
    let pages = if shape == Shape::Pdf {
        let n = crate::routes::rendered::page_count(state, &material)
            .await
            .map_err(AppError::internal)?;
        (1..=n).collect()
    } else {
        Vec::new()
    };
    let (rows, message) = match sent {
        Some((pairs, message)) => (rows_sent(pairs), Some(message)),
        None => {
            let current = crate::materials::redactions::current_of(&state.db, material.id).await?;
            let areas = current
                .map(|r| Areas::from_json(&r.areas))
                .unwrap_or_default();
            (rows_of(&areas), None)
        }
    };
    let mut layout = Layout::for_user(&staff.0);
    layout.scripts.push(crate::assets::url("redact.js"));
    let status = if message.is_some() {
        actix_web::http::StatusCode::BAD_REQUEST
    } else {
        actix_web::http::StatusCode::OK
    };
    render_status(
        status,
        &RedactPage {
            layout,
            csrf_token: staff.0.csrf_token.clone(),
            shape: shape_name(shape),
            pages,
            reasons: crate::routes::choices(RedactionReason::ALL),
            rows,
            versions: versions(state, material.id).await?,
            message,
            case,
            material,
        },
    )
}

/// `GET /staff/cases/{id}/materials/{material_id}/redact`: the editor, starting from the
/// current boxes, with the history of the material's redactions.
pub async fn view_redact_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (case_id, material_id) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    page(&state, &staff, &permit, case, material_id, None).await
}

/// `POST /staff/cases/{id}/materials/{material_id}/redact`: makes a new redacted copy from
/// the original with the boxes of the form (`box{i}.…`, see `redaction::Areas`). A refused
/// form comes back with what was typed and the reason.
pub async fn redact_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (case_id, material_id) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    let (_, shape) = crate::redaction::redactable(&state.db, &permit, material_id).await?;
    // What the parties are shown changes: as for a release, a recent second factor.
    staff.0.require_step_up(&format!(
        "/staff/cases/{case_id}/materials/{material_id}/redact"
    ))?;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .take(MAX_AREAS * 14 + 8)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let made = match Areas::from_form(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        shape == Shape::Video,
    ) {
        Ok(areas) => {
            crate::redaction::create(&state, &staff.0.account, &permit, material_id, areas).await
        }
        Err(e) => Err(e),
    };
    match made {
        Ok(r) => Ok(flash::see_other(
            &format!("/staff/cases/{case_id}/materials/{material_id}/redact#history"),
            Flash::new(if r.state == RedactionState::Ready {
                "redacted"
            } else {
                "redaction_queued"
            })
            .with("n", Areas::from_json(&r.areas).len()),
        )),
        Err(RedactionError::Invalid(m)) => {
            page(
                &state,
                &staff,
                &permit,
                case,
                material_id,
                Some((&pairs, m)),
            )
            .await
        }
        // The file cannot be drawn: said on the page. Every slot busy, or the renderer
        // missing: a 503 to come back to, as for any rendering.
        Err(RedactionError::Render(crate::render::RenderError::Unreadable(why))) => {
            let m = format!("无法生成遮挡副本：{why} (the redacted copy could not be made: {why})");
            page(
                &state,
                &staff,
                &permit,
                case,
                material_id,
                Some((&pairs, m)),
            )
            .await
        }
        Err(RedactionError::Render(e)) => Err(crate::routes::rendered::render_error(e)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    watched: String,
}

/// `POST /staff/cases/{id}/redactions/{redaction_id}/review`: an officer confirms having
/// watched the whole of a video's redacted copy (已逐帧复核).
pub async fn redaction_review_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    form: web::Form<ReviewForm>,
) -> AppResult<HttpResponse> {
    let (case_id, redaction_id) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    let watched = form.watched == "yes";
    match crate::redaction::review(&state, &staff.0.account, &permit, redaction_id, watched).await {
        Ok(r) => Ok(flash::see_other(
            &format!(
                "/staff/cases/{case_id}/materials/{}/redact#history",
                r.material_id
            ),
            Flash::new("redaction_reviewed"),
        )),
        Err(RedactionError::Invalid(m)) => {
            let material_id = redaction::Entity::find_by_id(redaction_id)
                .one(&state.db)
                .await?
                .map(|r| r.material_id)
                .ok_or(AppError::NotFound)?;
            page(&state, &staff, &permit, case, material_id, Some((&[], m))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The material as staff asked to open it: one of its redacted copies when the query names one
/// (`?redaction=<id>`, staff of the brigade only), itself otherwise.
pub async fn redaction_asked(
    state: &AppState,
    req: &HttpRequest,
    permit: &crate::policy::CasePermit,
    material: material::Model,
) -> AppResult<material::Model> {
    let asked = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "redaction")
        .map(|(_, v)| v.into_owned());
    let Some(asked) = asked else {
        return Ok(material);
    };
    if !permit.unredacted {
        return Err(AppError::NotFound);
    }
    let id = Uuid::parse_str(&asked).map_err(|_| AppError::NotFound)?;
    let row = redaction::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|r| r.material_id == material.id)
        .ok_or(AppError::NotFound)?;
    // Whatever its state: staff look at a copy to review it before anyone else sees it.
    let shown = redaction::Model {
        state: RedactionState::Ready,
        ..row
    };
    crate::materials::redactions::shown_as(material, Some(&shown)).ok_or(AppError::NotFound)
}

/// Whether staff asked for one page of a PDF drawn for the redaction editor
/// (`?page=n&editor=1`); elsewhere staff open the PDF itself.
pub fn page_asked(req: &HttpRequest, material: &material::Model) -> bool {
    let query: Vec<_> = url::form_urlencoded::parse(req.query_string().as_bytes()).collect();
    material.content_type == "application/pdf"
        && query.iter().any(|(k, _)| k == "page")
        && query.iter().any(|(k, v)| k == "editor" && v == "1")
}
