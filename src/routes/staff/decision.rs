//! The officer's decision page for an owner's or insurer's application: the applicant and
//! their proof shown in the page, the case's vehicles with the application's plate checked
//! against them, the kinds to grant with how many released materials of each the case has, and
//! the decision (approve with a scope, or refuse); on an approved grant, revoking or shortening
//! it. The proof is served here too, to the brigade handling the case, audited.

use super::*;
use crate::applications::vehicles::{self, PlateCheck};
use crate::applications::{ApplicationError, access, fields, grant, revoke};
use crate::db::entities::access_application;
use crate::vocab::{AccessMode, AccessState};

/// A kind of material to grant, with how many released, current materials of it the case has.
struct KindChoice {
    value: &'static str,
    label: String,
    released: u64,
}

/// A vehicle of the case, as the decision page lists it.
struct VehicleLine {
    plate: String,
    insurer: String,
    description: String,
    /// The application's plate.
    applied_for: bool,
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
    /// How the proof shows in the page: `pdf` (a frame), `image`, or `other` (a link).
    proof_shape: &'static str,
    vehicles: Vec<VehicleLine>,
    /// `none` (no vehicles recorded), `unmatched`, `insurer` (recorded with another) or `matches`.
    plate_check: &'static str,
    /// For `insurer`: the insurer recorded for the plate.
    recorded_insurer: String,
    kinds: Vec<KindChoice>,
    modes: Vec<super::super::Choice>,
    until: String,
    scope: Option<String>,
    decided: Option<String>,
    error: Option<(&'static str, String)>,
    /// The applicant's number already had an account, made by other applications: a warning.
    shared_number: Option<String>,
    /// An approved grant still in force: the form to revoke it, and (when it runs past today)
    /// to shorten it, against its last day.
    amendable: bool,
    shortenable: bool,
    shown_until: String,
    today: String,
    /// The latest day a shortened grant may end (the day before its last).
    shorten_latest: String,
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

/// The case's vehicles and how the application's plate compares with them.
async fn vehicles_section(
    state: &AppState,
    app: &access_application::Model,
) -> AppResult<(Vec<VehicleLine>, &'static str, String)> {
    let recorded = vehicles::of_case(&state.db, app.case_id).await?;
    let plate = fields::plate_text(&app.plate);
    let (check, insurer) = match vehicles::check(app, &recorded) {
        PlateCheck::NoneRecorded => ("none", String::new()),
        PlateCheck::Unmatched => ("unmatched", String::new()),
        PlateCheck::InsurerDiffers { recorded } => ("insurer", recorded),
        PlateCheck::Matches => ("matches", String::new()),
    };
    let lines = recorded
        .into_iter()
        .map(|v| VehicleLine {
            applied_for: v.plate == plate,
            plate: v.plate,
            insurer: v.insurer.unwrap_or_default(),
            description: v.description.unwrap_or_default(),
        })
        .collect();
    Ok((lines, check, insurer))
}

/// The kinds to grant, each with the released, current materials of it in the case.
async fn kinds_section(state: &AppState, case_id: Uuid) -> AppResult<Vec<KindChoice>> {
    let released = cases::released_by_kind(&state.db, case_id).await?;
    let locale = Locale::current();
    Ok(MaterialKind::EVIDENCE
        .iter()
        .map(|k| KindChoice {
            value: k.as_str(),
            label: locale.label(*k),
            released: released.get(k).copied().unwrap_or(0),
        })
        .collect())
}

async fn access_page(
    state: &AppState,
    staff: &StaffUser,
    app: access_application::Model,
    case: case::Model,
    error: Option<(&'static str, String)>,
) -> AppResult<AccessPage> {
    let locale = Locale::current();
    let now = state.audit.now();
    let today = crate::applications::today(now);
    let scope = matches!(app.state, AccessState::Approved | AccessState::Revoked)
        .then(|| crate::routes::apply::scope_text(&app, "staff.access.staff_scope"));
    let shared_number = shared_number_warning(state, &app).await?;
    let (vehicles, plate_check, recorded_insurer) = vehicles_section(state, &app).await?;
    let amendable = app.state == AccessState::Approved && app.in_force(now);
    let last = app.granted_until.unwrap_or(today);
    Ok(AccessPage {
        shared_number,
        layout: Layout::for_user(&staff.0),
        csrf_token: staff.0.csrf_token.clone(),
        applicant: super::applications::applicant_of(&app),
        filed_at: cst(app.filed_at),
        state: locale.label(app.state),
        proof_shape: match app.proof_type.as_str() {
            "application/pdf" => "pdf",
            t if t.starts_with("image/") => "image",
            _ => "other",
        },
        vehicles,
        plate_check,
        recorded_insurer,
        kinds: kinds_section(state, case.id).await?,
        decided: app.decided_at.map(cst),
        modes: super::super::choices(AccessMode::ALL),
        until: (today + time::Duration::days(30)).to_string(),
        scope,
        amendable,
        shortenable: amendable && last > today,
        shown_until: last.to_string(),
        today: today.to_string(),
        shorten_latest: (last - time::Duration::days(1)).to_string(),
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

/// The page again (400) with why the decision was refused, next to its form.
async fn refused_decision(
    state: &AppState,
    staff: &StaffUser,
    app: access_application::Model,
    case: case::Model,
    e: ApplicationError,
) -> AppResult<HttpResponse> {
    let field = match &e {
        ApplicationError::Field { field, .. } => *field,
        ApplicationError::Refused { .. } => "",
        _ => return Err(e.into()),
    };
    let message = crate::i18n::pick(&e.to_string());
    render_status(
        actix_web::http::StatusCode::BAD_REQUEST,
        &access_page(state, staff, app, case, Some((field, message))).await?,
    )
}

/// The confirmation's key for what reached the applicant: `{decided}.sms_email` … `.none`.
async fn reached_key(
    state: &AppState,
    app: &access_application::Model,
    decided: &str,
    event: &str,
) -> AppResult<String> {
    let reached = match app.account_id {
        Some(id) => crate::notifications::reached(&state.db, id, app.case_id, event).await?,
        None => crate::notifications::Reached::default(),
    };
    Ok(match reached {
        r if r.told.any() => r.told.key(decided),
        r if r.inbox => format!("{decided}.inbox"),
        _ => format!("{decided}.none"),
    })
}

/// `POST /staff/applications/{id}/{decision}`: `approve` (`kind` repeated, `mode`, `until`),
/// `refuse` (`reason`); on an approved grant, `revoke` (`reason`) or `shorten` (`until`), each
/// with the last day the page showed (`shown_until`) and confirmed first.
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
        "revoke" | "shorten" => {
            let amend = Amend::of_form(decision == "revoke", &pairs);
            let (permit, app, case) = authorize_application(&state, &staff, &req, id).await?;
            return amend_post(&state, &staff, permit, app, case, amend).await;
        }
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
            let how = reached_key(&state, &app, decided, event).await?;
            Ok(flash::see_other(
                &format!("/staff/applications/{}", app.id),
                Flash::new(&how).with("receipt", &app.receipt_no),
            ))
        }
        Err(e) => refused_decision(&state, &staff, app, case, e).await,
    }
}

/// A revocation or a shortening as posted.
struct Amend {
    /// The confirmation's catalog name (`confirm.<what>.*`).
    what: &'static str,
    amendment: revoke::Amendment,
    shown_until: String,
    /// The form's fields, posted again by the confirmation.
    fields: Vec<(String, String)>,
    confirmed: bool,
}

impl Amend {
    /// A revocation (`revoke`: `reason`) or a shortening (`until`) from the posted form.
    fn of_form(revoking: bool, pairs: &[(String, String)]) -> Amend {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let amendment = if revoking {
            revoke::Amendment::Revoke {
                reason: get("reason"),
            }
        } else {
            revoke::Amendment::Shorten {
                until: get("until"),
            }
        };
        Amend {
            what: if revoking {
                "revoke_access"
            } else {
                "shorten_access"
            },
            amendment,
            shown_until: get("shown_until"),
            fields: pairs
                .iter()
                .filter(|(n, _)| matches!(n.as_str(), "reason" | "until" | "shown_until"))
                .cloned()
                .collect(),
            confirmed: confirm::confirmed(&get(confirm::FIELD)),
        }
    }
}

/// Revokes or shortens a grant: checked, then confirmed (what it does, in plain words), then
/// applied; the officer's page again with the reason if refused.
async fn amend_post(
    state: &AppState,
    staff: &StaffUser,
    permit: crate::policy::CasePermit,
    app: access_application::Model,
    case: case::Model,
    amend: Amend,
) -> AppResult<HttpResponse> {
    let checked = match revoke::check(&app, amend.amendment, &amend.shown_until, state.audit.now())
    {
        Ok(c) => c,
        Err(e) => return refused_decision(state, staff, app, case, e).await,
    };
    if !amend.confirmed {
        let locale = Locale::current();
        let until = match &checked.change {
            revoke::Change::Shorten { until } => locale.date(*until),
            revoke::Change::Revoke { .. } => locale.date(checked.shown_until),
        };
        let applicant = super::applications::applicant_of(&app);
        return confirm::ask(
            Layout::for_user(&staff.0),
            &staff.0.csrf_token,
            confirm::Ask {
                what: amend.what,
                args: &[("applicant", &applicant), ("until", &until)],
                action: format!(
                    "/staff/applications/{}/{}",
                    app.id,
                    if amend.what == "revoke_access" {
                        "revoke"
                    } else {
                        "shorten"
                    }
                ),
                fields: amend.fields,
                back: format!("/staff/applications/{}", app.id),
            },
        );
    }
    let revoked = matches!(checked.change, revoke::Change::Revoke { .. });
    match revoke::amend(
        &state.db,
        &state.audit,
        state.channels,
        &staff.0.account,
        &permit,
        &app,
        &case,
        checked,
    )
    .await
    {
        Ok(changed) => {
            let (done, event) = if revoked {
                ("access_revoked", "access.revoked")
            } else {
                ("access_shortened", "access.shortened")
            };
            let how = reached_key(state, &changed, done, event).await?;
            let mut message = Flash::new(&how).with("receipt", &changed.receipt_no);
            if let Some(until) = changed.granted_until.filter(|_| !revoked) {
                message = message.with_date("until", until);
            }
            Ok(flash::see_other(
                &format!("/staff/applications/{}", changed.id),
                message,
            ))
        }
        Err(e) => refused_decision(state, staff, app, case, e).await,
    }
}

/// `GET /staff/applications/{id}/proof`: the applicant's authorisation or proof, inline, to
/// the brigade handling the case — framed by the decision page, never by another site; the view
/// is audited (`access.proof_view`) before the first byte. Not evidence of the case: it stays
/// out of the parties' access history.
pub async fn access_proof_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    use actix_web::http::header;
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
    let disposition = header::ContentDisposition {
        disposition: header::DispositionType::Inline,
        parameters: vec![header::DispositionParam::FilenameExt(
            header::ExtendedValue {
                charset: header::Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: app.proof_name.clone().into_bytes(),
            },
        )],
    };
    // As evidence is viewed (`content`): the type sniffed when it was received (and
    // `nosniff` on every answer), nothing active, framed by the portal's own pages only.
    Ok(HttpResponse::Ok()
        .content_type(app.proof_type.clone())
        .insert_header(disposition)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; img-src 'self'; frame-ancestors 'self'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "SAMEORIGIN"))
        .no_chunking(app.proof_size as u64)
        .streaming(object.body))
}
