//! Staff work on applications on the case page: the parties' review applications (forwarding,
//! the authority's acceptance or refusal, the conclusion) and the list of the owners' and
//! insurers' access applications, each with how long it has waited. Deciding an access
//! application is `decision`; the ledger is `ledger`.

use super::*;
use crate::applications::{ApplicationError, review};
use crate::db::entities::{access_application, material, review_application};
use crate::vocab::{AccessState, ReviewState};

/// One review application as the staff case page shows it, with the form of its next step.
pub struct ReviewRow {
    pub id: Uuid,
    pub receipt_no: String,
    pub party: String,
    pub filed_at: String,
    /// How long ago it was filed ("2天前").
    pub age: String,
    /// Filed and not yet forwarded: the last day to forward it (Art. 72), and whether it passed.
    pub forward_by: Option<(String, bool)>,
    pub state: String,
    pub grounds: String,
    /// (material id, "kind: title") of the contested items and the attachments.
    pub contested: Vec<(Uuid, String)>,
    pub attachments: Vec<(Uuid, String)>,
    pub steps: Vec<String>,
    /// `forward`, `decide` (accept or refuse), `conclude`, or "" when nothing is left to do.
    pub next: &'static str,
}

/// One access application on the case page.
pub struct AccessRow {
    pub id: Uuid,
    pub receipt_no: String,
    pub applicant: String,
    pub filed_at: String,
    /// How long ago it was filed ("2天前").
    pub age: String,
    pub state: String,
    pub pending: bool,
}

#[derive(Default)]
pub struct CaseApplications {
    pub reviews: Vec<ReviewRow>,
    pub access: Vec<AccessRow>,
}

/// "保险公司 李明（中国人民财产保险）": the role, the name and the company.
pub(super) fn applicant_of(a: &access_application::Model) -> String {
    let locale = Locale::current();
    match &a.organisation {
        Some(org) => format!("{} {}（{org}）", locale.label(a.kind), a.applicant_name),
        None => format!("{} {}", locale.label(a.kind), a.applicant_name),
    }
}

/// The applications of a case, for its staff page.
pub async fn of_case(state: &AppState, case: &case::Model) -> AppResult<CaseApplications> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    let locale = Locale::current();
    let now = state.clock.now();
    let today = crate::applications::today(now);
    let apps = review::of_case(&state.db, case.id).await?;
    let parties = cases::parties(&state.db, case.id).await?;
    let materials = crate::materials::all_of_case(&state.db, case.id).await?;
    let named = |json: &str| -> Vec<(Uuid, String)> {
        review::ids(json)
            .into_iter()
            .filter_map(|id| materials.iter().find(|m| m.id == id))
            .map(|m: &material::Model| {
                (
                    m.id,
                    locale.tf(
                        "review.kind_title",
                        &[("kind", &locale.label(m.kind)), ("title", &m.title)],
                    ),
                )
            })
            .collect()
    };
    let reviews = apps
        .iter()
        .map(|a: &review_application::Model| {
            let mut steps = crate::routes::review::step_lines(a);
            if let Some(reason) = &a.refusal_reason {
                steps.push(format!("{}{reason}", locale.t("review.refusal_reason")));
            }
            ReviewRow {
                id: a.id,
                receipt_no: a.receipt_no.clone(),
                party: parties
                    .iter()
                    .find(|(p, _)| p.id == a.party_id)
                    .map(|(p, _)| party_named(&p.label, &p.name))
                    .unwrap_or_default(),
                filed_at: cst(a.filed_at),
                age: super::queue::age(a.filed_at, now),
                forward_by: (a.state == ReviewState::Filed).then(|| {
                    let last = crate::applications::ledger::forward_by(a.filed_at);
                    (locale.date(last), last < today)
                }),
                state: locale.label(a.state),
                grounds: a.grounds.clone(),
                contested: named(&a.contested),
                attachments: named(&a.attachments),
                steps,
                next: match a.state {
                    ReviewState::Filed => "forward",
                    ReviewState::Forwarded => "decide",
                    ReviewState::Accepted => "conclude",
                    ReviewState::Refused | ReviewState::Concluded => "",
                },
            }
        })
        .collect();
    let access = access_application::Entity::find()
        .filter(access_application::Column::CaseId.eq(case.id))
        .order_by_desc(access_application::Column::FiledAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|a| AccessRow {
            id: a.id,
            receipt_no: a.receipt_no.clone(),
            applicant: applicant_of(&a),
            filed_at: cst(a.filed_at),
            age: super::queue::age(a.filed_at, now),
            state: locale.label(a.state),
            pending: a.state == AccessState::Pending,
        })
        .collect();
    Ok(CaseApplications { reviews, access })
}

/// The files a review conclusion may be: a PDF or a scan.
const CONCLUSION_TYPES: &[&str] = &["application/pdf", "image/jpeg", "image/png"];

/// `POST /staff/cases/{id}/reviews/{application_id}/{step}` (multipart, like every form of the
/// panel): `forward` (`on`, `authority`), `accept` (`on`), `refuse` (`on`, `reason`),
/// `conclude` (`on`, the `conclusion` file).
pub async fn review_step_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid, String)>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let (case_id, application_id, step) = path.into_inner();
    if !matches!(step.as_str(), "forward" | "accept" | "refuse" | "conclude") {
        return Err(AppError::NotFound);
    }
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    let rule = crate::routes::uploads::Rule {
        file_field: "conclusion",
        max_files: 1,
        // `on`, `authority` or `reason`, and the file.
        max_parts: 16,
        field_limit: 4096,
        text_limit: 16 * 1024,
        allowed: CONCLUSION_TYPES,
        allowed_text: "PDF、JPEG、PNG",
        file_limit: u64::MAX,
    };
    let mut form = crate::routes::uploads::read(&state, case.id, &mut payload, &rule).await?;
    let on = form.get("on").to_owned();
    let parsed = match (step.as_str(), &form.problem) {
        (_, Some(p)) => Err(ApplicationError::field("conclusion", p)),
        ("forward", None) => Ok(review::Step::Forward {
            on,
            authority: form.get("authority").to_owned(),
        }),
        ("accept", None) => Ok(review::Step::Accept { on }),
        ("refuse", None) => Ok(review::Step::Refuse {
            on,
            reason: form.get("reason").to_owned(),
        }),
        _ => match form.files.pop() {
            Some(conclusion) => Ok(review::Step::Conclude { on, conclusion }),
            None => Err(ApplicationError::field(
                "conclusion",
                "请上传复核结论文件 (upload the review conclusion)",
            )),
        },
    };
    let conclusion_key = match &parsed {
        Ok(review::Step::Conclude { conclusion, .. }) => Some(conclusion.key.clone()),
        _ => None,
    };
    let outcome = match parsed {
        Ok(step) => {
            review::step(
                &state.db,
                &state.audit,
                state.channels,
                &staff.0.account,
                &permit,
                &case,
                application_id,
                step,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(app) => Ok(flash::see_other(
            &format!("/staff/cases/{}#review-applications", case.id),
            Flash::new("review_step").with("receipt", &app.receipt_no),
        )),
        Err(e) => {
            crate::routes::uploads::discard(&state, form.files.iter()).await;
            if let Some(key) = conclusion_key
                && let Err(err) = state.store.delete(&key).await
            {
                tracing::warn!(error = %err, "could not remove a refused conclusion; gc will");
            }
            match e {
                ApplicationError::Field { message, .. }
                | ApplicationError::Refused { message, .. } => {
                    refused(&state, &staff, case, CaseError::Invalid(message)).await
                }
                other => Err(other.into()),
            }
        }
    }
}
