//! Staff work on applications: the parties' review applications on the case page (forwarding,
//! the authority's acceptance or refusal, the conclusion) and the owners' and insurers' access
//! applications (approve with a scope, or refuse; their proof). The ledger is `ledger`.

use super::*;
use crate::applications::{ApplicationError, access, grant, review};
use crate::db::entities::{access_application, material, review_application};
use crate::vocab::{AccessMode, AccessState, ReviewState};

/// One review application as the staff case page shows it, with the form of its next step.
pub struct ReviewRow {
    pub id: Uuid,
    pub receipt_no: String,
    pub party: String,
    pub filed_at: String,
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
    pub state: String,
    pub pending: bool,
}

#[derive(Default)]
pub struct CaseApplications {
    pub reviews: Vec<ReviewRow>,
    pub access: Vec<AccessRow>,
}

fn applicant_of(a: &access_application::Model) -> String {
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

#[derive(Template)]
#[template(path = "staff/access_application.html")]
struct AccessPage {
    layout: Layout,
    csrf_token: String,
    app: access_application::Model,
    case: case::Model,
    applicant: String,
    filed_at: String,
    state: String,
    kinds: Vec<super::super::Choice>,
    modes: Vec<super::super::Choice>,
    until: String,
    scope: Option<String>,
    decided: Option<String>,
    error: Option<(&'static str, String)>,
    /// The applicant's number already had an account, made by other applications: a warning.
    shared_number: Option<String>,
}

/// A warning for the officer when the mobile number an application gives already had an
/// account (made by another application): how many other applications it has, and that this
/// one opens nothing until its applicant signs in to that account and adds it.
async fn shared_number_warning(
    state: &AppState,
    app: &access_application::Model,
) -> AppResult<Option<String>> {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let Some(account_id) = app.account_id.filter(|_| !app.account_verified) else {
        return Ok(None);
    };
    let others = access_application::Entity::find()
        .filter(access_application::Column::AccountId.eq(account_id))
        .filter(access_application::Column::Id.ne(app.id))
        .count(&state.db)
        .await?;
    let activated = crate::db::entities::account::Entity::find_by_id(account_id)
        .one(&state.db)
        .await?
        .is_some_and(|a| a.password_hash.is_some());
    let locale = Locale::current();
    Ok(Some(locale.tf(
        if activated {
            "staff.access.shared_number_active"
        } else {
            "staff.access.shared_number"
        },
        &[("n", &others.to_string())],
    )))
}

async fn access_page(
    state: &AppState,
    staff: &StaffUser,
    app: access_application::Model,
    case: case::Model,
    error: Option<(&'static str, String)>,
) -> AppResult<AccessPage> {
    let locale = Locale::current();
    let today = crate::applications::today(state.audit.now());
    let scope = (app.state == AccessState::Approved)
        .then(|| crate::routes::apply::scope_text(&app, "staff.access.staff_scope"));
    let shared_number = shared_number_warning(state, &app).await?;
    Ok(AccessPage {
        shared_number,
        layout: Layout::for_user(&staff.0),
        csrf_token: staff.0.csrf_token.clone(),
        applicant: applicant_of(&app),
        filed_at: cst(app.filed_at),
        state: locale.label(app.state),
        decided: app.decided_at.map(cst),
        kinds: super::super::choices(&MaterialKind::EVIDENCE),
        modes: super::super::choices(AccessMode::ALL),
        until: (today + time::Duration::days(30)).to_string(),
        scope,
        app,
        case,
        error,
    })
}

/// The application `id` and its case, if the officer's brigade handles it (else not found, the
/// refusal audited by the gate).
async fn authorize_application(
    state: &AppState,
    staff: &StaffUser,
    req: &HttpRequest,
    id: Uuid,
) -> AppResult<(
    crate::policy::CasePermit,
    access_application::Model,
    case::Model,
)> {
    let (app, _) = access::with_case(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let (permit, case) = authorize(state, staff, req, app.case_id).await?;
    Ok((permit, app, case))
}

/// `GET /staff/applications/{id}`: an access application, its proof, and the decision form.
pub async fn view_access_application_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (_, app, case) = authorize_application(&state, &staff, &req, path.into_inner()).await?;
    render(&access_page(&state, &staff, app, case, None).await?)
}

/// `POST /staff/applications/{id}/{decision}`: `approve` (`kind` repeated, `mode`, `until`) or
/// `refuse` (`reason`).
pub async fn access_decide_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (id, decision) = path.into_inner();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let decision = match decision.as_str() {
        "approve" => grant::Decision::Approve {
            kinds: pairs
                .iter()
                .filter(|(n, _)| n == "kind")
                .map(|(_, v)| v.clone())
                .collect(),
            mode: get("mode"),
            until: get("until"),
        },
        "refuse" => grant::Decision::Refuse {
            reason: get("reason"),
        },
        _ => return Err(AppError::NotFound),
    };
    let (permit, app, case) = authorize_application(&state, &staff, &req, id).await?;
    match grant::decide(
        &state.db,
        &state.audit,
        state.channels,
        &staff.0.account,
        &permit,
        &app,
        &case,
        decision,
    )
    .await
    {
        Ok(app) => {
            let (decided, event) = if app.state == AccessState::Approved {
                ("access_approved", "access.approved")
            } else {
                ("access_refused", "access.refused")
            };
            // The confirmation names only the channels the applicant's message really took.
            let reached = match app.account_id {
                Some(id) => {
                    crate::notifications::reached(&state.db, id, app.case_id, event).await?
                }
                None => crate::notifications::Reached::default(),
            };
            let how = match reached {
                r if r.told.any() => r.told.key(decided),
                r if r.inbox => format!("{decided}.inbox"),
                _ => format!("{decided}.none"),
            };
            Ok(flash::see_other(
                &format!("/staff/applications/{}", app.id),
                Flash::new(&how).with("receipt", &app.receipt_no),
            ))
        }
        Err(e @ (ApplicationError::Field { .. } | ApplicationError::Refused { .. })) => {
            let field = match &e {
                ApplicationError::Field { field, .. } => *field,
                _ => "",
            };
            let message = crate::i18n::pick(&e.to_string());
            render_status(
                actix_web::http::StatusCode::BAD_REQUEST,
                &access_page(&state, &staff, app, case, Some((field, message))).await?,
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /staff/applications/{id}/proof`: the applicant's authorisation or proof, inline, to
/// the brigade handling the case; the view is audited (`access.proof_view`) before the first
/// byte. Not evidence of the case: it stays out of the parties' access history.
pub async fn access_proof_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (_, app, _) = authorize_application(&state, &staff, &req, path.into_inner()).await?;
    let client = client_of(&req);
    state
        .audit
        .record(
            crate::audit::Event::new(
                staff.0.actor(),
                crate::audit::Action::AccessProofView,
                crate::audit::Outcome::Allowed,
            )
            .client(client.0, client.1)
            .details(serde_json::json!({
                "application_id": app.id, "receipt": app.receipt_no, "case_id": app.case_id,
                "bytes": app.proof_size,
            })),
        )
        .await?;
    let key = crate::store::ObjectKey::from_stored(&app.proof_key)?;
    let object = state.store.get(&key, None).await?;
    let disposition = actix_web::http::header::ContentDisposition {
        disposition: actix_web::http::header::DispositionType::Inline,
        parameters: vec![actix_web::http::header::DispositionParam::FilenameExt(
            actix_web::http::header::ExtendedValue {
                charset: actix_web::http::header::Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: app.proof_name.clone().into_bytes(),
            },
        )],
    };
    Ok(HttpResponse::Ok()
        .content_type(app.proof_type.clone())
        .insert_header(disposition)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((
            actix_web::http::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; img-src 'self'; frame-ancestors 'self'",
        ))
        .no_chunking(app.proof_size as u64)
        .streaming(object.body))
}
