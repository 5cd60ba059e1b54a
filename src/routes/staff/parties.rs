//! Staff pages for a case's people: registering parties and printing their notices, resetting
//! an account, granting and revoking agents' delegations.

use super::materials::{discard, read_upload};
use super::*;

#[derive(Deserialize)]
pub struct PartyForm {
    name: String,
    identifier: String,
    #[serde(default)]
    id_kind: String,
    #[serde(default)]
    mobile: String,
    label: String,
    role: String,
}

#[derive(Template)]
#[template(path = "staff/notice.html")]
struct NoticePage {
    layout: Layout,
    case_id: Uuid,
    case_number: String,
    brigade: String,
    /// "张伟（当事人甲）".
    party: String,
    login: String,
    code: Option<String>,
    /// Without a code: whether the person signs in with their password (activated); else the
    /// code was shown once already (or another brigade or an administrator gave one).
    activated: bool,
    expires: String,
    portal: String,
    /// Whom the person asks: the brigade and officer handling the case.
    handling: crate::routes::cases::HandlingPanel,
    /// A QR code (inline SVG) that opens the activation page.
    qr: String,
}

/// The name of a case's brigade.
async fn brigade_name(state: &AppState, case: &case::Model) -> AppResult<String> {
    Ok(department::Entity::find_by_id(case.department_id)
        .one(&state.db)
        .await?
        .map(|d| d.name)
        .unwrap_or_default())
}

/// The QR code of the activation page, as inline SVG for the printed notice (drawn here: no
/// external service sees who is being notified).
fn activation_qr(state: &AppState) -> String {
    let url = format!("{}activate", state.settings.public_url);
    let label = crate::i18n::Locale::current().tf("staff.notice.qr_label", &[("url", &url)]);
    crate::routes::qr_svg(&url, &label, 150)
}

/// Where a party's printable notice is.
fn notice_path(case_id: Uuid, party_id: Uuid) -> String {
    format!("/staff/cases/{case_id}/parties/{party_id}/notice")
}

/// `303` to the party's notice, carrying a new access code sealed for that page only (shown
/// once: reloading the notice neither registers the party again nor shows the code again).
fn to_notice(
    state: &AppState,
    case_id: Uuid,
    party_id: Uuid,
    code: Option<crate::auth::access_code::IssuedCode>,
    flash: Flash,
) -> AppResult<HttpResponse> {
    with_code(state, &notice_path(case_id, party_id), code, flash)
}

/// `303` to the page at `path`, with `code` sealed for that page (routes::once).
fn with_code(
    state: &AppState,
    path: &str,
    code: Option<crate::auth::access_code::IssuedCode>,
    flash: Flash,
) -> AppResult<HttpResponse> {
    let mut res = flash::see_other(path, flash);
    if let Some(code) = code {
        let cookie = crate::routes::once::seal_code(
            &state.key,
            path,
            &code,
            state.settings.served_over_tls(),
        )
        .ok_or_else(|| AppError::internal("cannot seal the access code"))?;
        res.add_cookie(&cookie).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// The access code sealed for this page, if the request brings one: (code, expiry).
fn sealed_code(state: &AppState, req: &HttpRequest) -> Option<(String, OffsetDateTime)> {
    crate::routes::once::open_code(&state.key, req)
}

/// The answer of a page that may have shown a sealed code: the cookie goes with it.
fn shown(mut res: HttpResponse, req: &HttpRequest, code_shown: bool) -> AppResult<HttpResponse> {
    if code_shown {
        res.add_cookie(&crate::routes::once::cleared(req.path()))
            .map_err(AppError::internal)?;
    }
    Ok(res)
}

/// `GET /staff/cases/{id}/parties/{party_id}/notice`: the printable notice; with the access
/// code only the first time after it was issued.
pub async fn party_notice_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (case_id, party_id) = path.into_inner();
    let (_, case) = authorize(&state, &staff, &req, case_id).await?;
    let (party, account) = cases::parties(&state.db, case.id)
        .await?
        .into_iter()
        .find(|(p, _)| p.id == party_id)
        .and_then(|(p, a)| a.map(|a| (p, a)))
        .ok_or(AppError::NotFound)?;
    let code = sealed_code(&state, &req);
    let code_shown = code.is_some();
    let brigade = brigade_name(&state, &case).await?;
    let res = render(&NoticePage {
        layout: Layout::for_user(&staff.0),
        case_id: case.id,
        case_number: case.case_number.clone(),
        brigade,
        party: Locale::current().tf(
            "staff.notice.party_value",
            &[("name", &party.name), ("label", &party.label)],
        ),
        login: account.login_masked.clone(),
        activated: account.password_hash.is_some(),
        expires: code.as_ref().map(|(_, e)| cst(*e)).unwrap_or_default(),
        code: code.map(|(c, _)| c),
        portal: state.settings.public_url.to_string(),
        handling: crate::routes::cases::HandlingPanel::of(cases::handling(&state.db, &case).await?),
        qr: activation_qr(&state),
    })?;
    shown(res, &req, code_shown)
}

/// `POST /staff/cases/{id}/parties`: registers a party and shows the printable notice.
pub async fn party_register_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<PartyForm>,
) -> AppResult<HttpResponse> {
    let (permit, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    let typed: Vec<(String, String)> = [
        ("label", &form.label),
        ("name", &form.name),
        ("id_kind", &form.id_kind),
        ("identifier", &form.identifier),
        ("mobile", &form.mobile),
        ("role", &form.role),
    ]
    .into_iter()
    .map(|(f, v)| (f.to_owned(), v.clone()))
    .collect();
    let ident = if form.id_kind == "passport" {
        identifier::parse_passport(&form.identifier).map(Identifier::Passport)
    } else {
        identifier::parse_citizen_id(&form.identifier).map(Identifier::CitizenId)
    };
    let ident = match ident {
        Ok(i) => i,
        Err(e) => {
            let e = CaseError::field("identifier", e.to_string());
            return refused_typed(&state, &staff, case, e, "party", typed).await;
        }
    };
    let mobile = form.mobile.trim();
    let mobile = if mobile.is_empty() {
        None
    } else {
        match identifier::parse_mobile(mobile) {
            Ok(m) => Some(m),
            Err(e) => {
                let e = CaseError::field("mobile", e.to_string());
                return refused_typed(&state, &staff, case, e, "party", typed).await;
            }
        }
    };
    let new = NewParty {
        name: form.name.clone(),
        identifier: ident,
        mobile,
        label: form.label.clone(),
        role: form.role.clone(),
    };
    match cases::register_party(
        &state.db,
        &state.key,
        &state.audit,
        &staff.0.account,
        &permit,
        &case,
        new,
    )
    .await
    {
        Ok((party, _, code)) => {
            let flash = Flash::new("party_registered").with("label", &party.label);
            to_notice(&state, case.id, party.id, code, flash)
        }
        Err(e) => refused_typed(&state, &staff, case, e, "party", typed).await,
    }
}

/// `POST /staff/cases/{id}/parties/{party_id}/code`: the party's notice again. Never a reset:
/// an activated account keeps its password (the notice says so); one not activated yet gets a
/// fresh code if its cases are all in this brigade.
pub async fn party_code_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (case_id, party_id) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    let (party, _, code) = cases::party_notice(
        &state.db,
        &state.key,
        &state.audit,
        &staff.0.account,
        &permit,
        &case,
        party_id,
    )
    .await?;
    let flash = Flash::new(if code.is_some() {
        "code_reissued"
    } else {
        "notice_again"
    });
    to_notice(&state, case.id, party.id, code, flash)
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /staff/cases/{id}/parties/{party_id}/reset`: the explicit, confirmed reset of a party's
/// account, with a reason the party is told — only for an account wholly within this brigade.
pub async fn party_reset_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    form: web::Form<ResetForm>,
) -> AppResult<HttpResponse> {
    let (case_id, party_id) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    staff
        .0
        .require_step_up(&format!("/staff/cases/{case_id}#parties"))?;
    let found = cases::party_of(&state.db, &case, party_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let form = form.into_inner();
    if form.confirm.is_none() {
        let e = CaseError::Invalid(t("staff.parties.reset_unconfirmed"));
        return refused(&state, &staff, case, e).await;
    }
    let brigade = brigade_name(&state, &case).await?;
    match cases::reset_party_account(
        &state.db,
        &state.key,
        &state.audit,
        state.channels,
        &staff.0.account,
        brigade,
        &permit,
        &case,
        found,
        form.reason,
    )
    .await
    {
        Ok((party, _, code)) => {
            let flash = Flash::new("party_reset").with("label", &party.label);
            to_notice(&state, case.id, party.id, Some(code), flash)
        }
        Err(CaseError::Forbidden(m)) => super::render_status(
            actix_web::http::StatusCode::FORBIDDEN,
            &case_page(&state, &staff, case, Some(crate::i18n::pick(&m))).await?,
        ),
        Err(e) => refused(&state, &staff, case, e).await,
    }
}

#[derive(Template)]
#[template(path = "staff/agent_notice.html")]
struct AgentNoticePage {
    layout: Layout,
    case_id: Uuid,
    case_number: String,
    name: String,
    login: String,
    principal: String,
    period: String,
    code: Option<String>,
    activated: bool,
    expires: String,
    portal: String,
    /// Whom the person asks: the brigade and officer handling the case.
    handling: crate::routes::cases::HandlingPanel,
    /// A QR code (inline SVG) that opens the activation page.
    qr: String,
}

/// The accepted types of a signed authorisation document (a scan or a PDF).
const DOCUMENT_TYPES: &[&str] = &["application/pdf", "image/jpeg", "image/png"];

/// The delegation the agent form describes (its fields by name through `get`), or the field
/// at fault.
fn new_delegation(get: &dyn Fn(&str) -> String) -> Result<cases::NewDelegation, CaseError> {
    let principal_party_id = Uuid::parse_str(&get("principal"))
        .map_err(|_| CaseError::field("principal", t("staff.agents.principal_missing")))?;
    let agent = match identifier::parse_mobile(&get("agent_identifier")) {
        Ok(m) => Identifier::Mobile(m),
        Err(_) => Identifier::LawyerLicence(
            identifier::parse_lawyer_licence(&get("agent_identifier")).map_err(|_| {
                CaseError::field("agent_identifier", t("staff.agents.identifier_invalid"))
            })?,
        ),
    };
    Ok(cases::NewDelegation {
        principal_party_id,
        agent,
        agent_name: get("agent_name"),
        law_firm: Some(get("law_firm")),
        valid_from: parse_date(&get("valid_from"))
            .ok_or_else(|| CaseError::field("valid_from", t("staff.agents.valid_from_missing")))?,
        valid_until: parse_date(&get("valid_until")).ok_or_else(|| {
            CaseError::field("valid_until", t("staff.agents.valid_until_missing"))
        })?,
    })
}

/// `POST /staff/cases/{id}/delegations` (multipart: the fields, then the `document` file).
pub async fn delegation_grant_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let (permit, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    let (fields, document, problem) = read_upload(
        &state,
        case.id,
        &mut payload,
        "document",
        DOCUMENT_TYPES,
        "PDF、JPEG、PNG",
    )
    .await?;
    let get = |k: &str| {
        fields
            .get(k)
            .map(String::as_str)
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let parsed = new_delegation(&get);
    let outcome = match (parsed, &document, problem) {
        (_, _, Some(p)) => Err(CaseError::field("document", p)),
        (_, None, None) => Err(CaseError::field(
            "document",
            t("staff.agents.document_missing"),
        )),
        (Err(e), _, None) => Err(e),
        (Ok(new), Some(doc), None) => {
            cases::grant_delegation(
                &state.db,
                &state.key,
                &state.audit,
                state.channels,
                &staff.0.account,
                &permit,
                &case,
                new,
                doc,
            )
            .await
        }
    };
    match outcome {
        Ok((d, _, code)) => with_code(
            &state,
            &format!("/staff/cases/{}/delegations/{}/notice", case.id, d.id),
            code,
            Flash::new("agent_registered").with_date(
                "until",
                cases::delegation_days(d.valid_from, d.valid_until).1,
            ),
        ),
        Err(e) => {
            // Nothing half-done stays behind: the document goes if the delegation did not land.
            discard(&state, document.as_ref()).await;
            let typed = [
                "principal",
                "agent_name",
                "agent_identifier",
                "law_firm",
                "valid_from",
                "valid_until",
            ]
            .into_iter()
            .map(|f| (f.to_owned(), get(f)))
            .collect();
            refused_typed(&state, &staff, case, e, "agent", typed).await
        }
    }
}

/// `GET /staff/cases/{id}/delegations/{delegation_id}/notice`: the agent's printable notice;
/// with the access code only the first time after it was issued.
pub async fn delegation_notice_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (case_id, delegation_id) = path.into_inner();
    let (_, case) = authorize(&state, &staff, &req, case_id).await?;
    let (d, agent) = cases::delegations(&state.db, case.id)
        .await?
        .into_iter()
        .find(|(d, _)| d.id == delegation_id)
        .and_then(|(d, a)| a.map(|a| (d, a)))
        .ok_or(AppError::NotFound)?;
    let principal = cases::parties(&state.db, case.id)
        .await?
        .into_iter()
        .find(|(p, _)| p.id == d.principal_party_id)
        .map(|(p, _)| party_named(&p.label, &p.name))
        .unwrap_or_default();
    let code = sealed_code(&state, &req);
    let code_shown = code.is_some();
    let res = render(&AgentNoticePage {
        layout: Layout::for_user(&staff.0),
        case_id: case.id,
        case_number: case.case_number.clone(),
        name: agent.display_name,
        activated: agent.password_hash.is_some(),
        login: agent.login_masked,
        principal,
        period: period(d.valid_from, d.valid_until),
        expires: code.as_ref().map(|(_, e)| cst(*e)).unwrap_or_default(),
        code: code.map(|(c, _)| c),
        portal: state.settings.public_url.to_string(),
        handling: crate::routes::cases::HandlingPanel::of(cases::handling(&state.db, &case).await?),
        qr: activation_qr(&state),
    })?;
    shown(res, &req, code_shown)
}

/// `POST /staff/cases/{id}/delegations/{delegation_id}/revoke` (asks first: it cannot be undone)
pub async fn delegation_revoke_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    form: web::Form<confirm::ConfirmForm>,
) -> AppResult<HttpResponse> {
    let (case_id, delegation_id) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    if !confirm::confirmed(&form.confirmed) {
        let agent = cases::delegations(&state.db, case.id)
            .await?
            .into_iter()
            .find(|(d, _)| d.id == delegation_id && d.revoked_at.is_none())
            .and_then(|(_, agent)| agent)
            .ok_or(AppError::NotFound)?;
        let who = format!("{}（{}）", agent.display_name, agent.login_masked);
        return confirm::ask(
            Layout::for_user(&staff.0),
            &staff.0.csrf_token,
            confirm::Ask {
                what: "revoke_delegation",
                args: &[("agent", &who)],
                action: format!("/staff/cases/{case_id}/delegations/{delegation_id}/revoke"),
                fields: Vec::new(),
                back: format!("/staff/cases/{case_id}#agents"),
            },
        );
    }
    cases::revoke_delegation(
        &state.db,
        &state.audit,
        state.channels,
        &staff.0.account,
        &permit,
        &case,
        delegation_id,
    )
    .await?;
    Ok(flash::see_other(
        &format!("/staff/cases/{case_id}#agents"),
        Flash::new("delegation_revoked"),
    ))
}
