//! Administration: brigades and accounts (create, disable, re-enable, reset with a new access
//! code). Admins only: every handler takes `AdminUser`.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::{Layout, confirm, cst, render};
use crate::accounts::{self, AccountError, NewAccount};
use crate::auth::AdminUser;
use crate::auth::identifier::Identifier;
use crate::error::{AppError, AppResult};
use crate::i18n::t;
use crate::routes::flash::{self, Flash};
use crate::state::AppState;
use crate::vocab::Role;

pub struct DepartmentRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub address: String,
    pub phone: String,
    pub office_hours: String,
}

pub struct AccountRow {
    pub id: Uuid,
    pub name: String,
    pub login: String,
    pub role: String,
    pub department: String,
    pub status: String,
    pub disabled: bool,
    /// A staff member: an administrator may reset their second factor here.
    pub staff: bool,
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct AdminPage {
    layout: Layout,
    csrf_token: String,
    departments: Vec<DepartmentRow>,
    accounts: Vec<AccountRow>,
    error: Option<String>,
    /// SMS and e-mail given up for good: someone was not told.
    failed: Vec<FailedRow>,
}

pub struct FailedRow {
    pub when: String,
    pub case: String,
    pub text: String,
    pub delivery: String,
}

#[derive(Template)]
#[template(path = "admin/code_issued.html")]
struct CodeIssuedPage {
    layout: Layout,
    name: String,
    login: String,
    role: String,
    code: String,
    expires: String,
    public_url: String,
}

async fn admin_page(
    state: &AppState,
    admin: &AdminUser,
    error: Option<String>,
) -> AppResult<AdminPage> {
    let departments = accounts::departments(&state.db).await?;
    let accounts = accounts::recent(&state.db, 200)
        .await?
        .into_iter()
        .map(|a| AccountRow {
            staff: a.role == crate::vocab::Role::Staff,
            department: a
                .department_id
                .and_then(|d| departments.iter().find(|x| x.id == d))
                .map(|d| d.name.clone())
                .unwrap_or_default(),
            status: t(if a.disabled {
                "admin.accounts.disabled"
            } else if a.password_hash.is_none() {
                "admin.accounts.not_activated"
            } else {
                "admin.accounts.active"
            }),
            disabled: a.disabled,
            id: a.id,
            name: a.display_name,
            login: a.login_masked,
            role: crate::i18n::label(a.role),
        })
        .collect();
    let locale = crate::i18n::Locale::current();
    let failed = crate::notifications::failed(&state.db, 50)
        .await?
        .into_iter()
        .map(|(d, n)| {
            let params: serde_json::Value = serde_json::from_str(&n.params).unwrap_or_default();
            FailedRow {
                when: super::cst(d.created_at),
                case: params["case"].as_str().unwrap_or("").to_owned(),
                text: super::inbox::text_of(&n.event, &params),
                delivery: super::inbox::delivery_state(locale, &state.key, &d),
            }
        })
        .collect();
    Ok(AdminPage {
        failed,
        layout: Layout::for_user(&admin.0),
        csrf_token: admin.0.csrf_token.clone(),
        departments: departments
            .into_iter()
            .map(|d| DepartmentRow {
                id: d.id,
                code: d.code,
                name: d.name,
                address: d.address.unwrap_or_default(),
                phone: d.phone.unwrap_or_default(),
                office_hours: d.office_hours.unwrap_or_default(),
            })
            .collect(),
        accounts,
        error,
    })
}

/// `GET /admin`
pub async fn view_admin_get(
    admin: AdminUser,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    render(&admin_page(&state, &admin, None).await?)
}

fn account_error(e: AccountError) -> Result<String, AppError> {
    match e {
        AccountError::Db(e) => Err(e.into()),
        AccountError::Audit(e) => Err(AppError::Unavailable {
            part: "audit",
            cause: Some(Box::new(e)),
        }),
        AccountError::NotFound => Err(AppError::NotFound),
        other => Ok(crate::i18n::pick(&other.to_string())),
    }
}

async fn refused(state: &AppState, admin: &AdminUser, message: String) -> AppResult<HttpResponse> {
    super::render_status(
        actix_web::http::StatusCode::BAD_REQUEST,
        &admin_page(state, admin, Some(message)).await?,
    )
}

#[derive(Deserialize)]
pub struct DepartmentForm {
    code: String,
    name: String,
}

#[derive(Deserialize)]
pub struct ContactForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    office_hours: String,
}

/// `POST /admin/departments/{id}`: how parties reach the brigade (shown on their case pages
/// and printed notices).
pub async fn department_contact_post(
    admin: AdminUser,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<ContactForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let contact = accounts::BrigadeContact {
        address: form.address,
        phone: form.phone,
        office_hours: form.office_hours,
    };
    let id = path.into_inner();
    match accounts::set_department_contact(&state.db, &state.audit, admin.0.actor(), id, contact)
        .await
    {
        Ok(d) => Ok(flash::see_other(
            "/admin",
            Flash::new("brigade_saved").with("name", d.name),
        )),
        Err(e) => refused(&state, &admin, account_error(e)?).await,
    }
}

/// `POST /admin/departments`
pub async fn department_create_post(
    admin: AdminUser,
    state: web::Data<AppState>,
    form: web::Form<DepartmentForm>,
) -> AppResult<HttpResponse> {
    let code = form.code.trim();
    let name = form.name.trim();
    if code.is_empty() || code.len() > 32 || name.is_empty() || name.chars().count() > 100 {
        return refused(&state, &admin, t("admin.brigades.invalid")).await;
    }
    match accounts::create_department(&state.db, &state.audit, admin.0.actor(), code, name).await {
        Ok(_) => Ok(flash::see_other(
            "/admin",
            Flash::new("brigade_created").with("name", name),
        )),
        Err(e) => refused(&state, &admin, account_error(e)?).await,
    }
}

#[derive(Deserialize)]
pub struct AccountForm {
    role: String,
    /// username (staff), citizen ID or passport (party), licence or mobile (agent).
    identifier: String,
    /// `passport` for a foreign party.
    #[serde(default)]
    id_kind: String,
    name: String,
    #[serde(default)]
    department_id: String,
}

fn parse_identifier(form: &AccountForm) -> Result<(Role, Identifier), String> {
    let role = Role::parse(&form.role)
        .filter(|r| *r != Role::Admin)
        .ok_or_else(|| t("admin.new.type_missing"))?;
    Identifier::for_role(role, &form.identifier, form.id_kind == "passport")
        .map_err(|e| match role {
            Role::Agent => t("admin.new.agent_identifier_invalid"),
            _ => crate::i18n::pick(&e.to_string()),
        })
        .map(|id| (role, id))
}

/// `POST /admin/accounts`: creates the account and shows its first access code once.
pub async fn account_create_post(
    admin: AdminUser,
    state: web::Data<AppState>,
    form: web::Form<AccountForm>,
) -> AppResult<HttpResponse> {
    // A new account's first access code opens it: asked like a reset.
    admin.0.require_step_up("/admin#accounts")?;
    let (role, id) = match parse_identifier(&form) {
        Ok(x) => x,
        Err(msg) => return refused(&state, &admin, msg).await,
    };
    let name = form.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return refused(&state, &admin, t("admin.new.name_invalid")).await;
    }
    let department_id = if role == Role::Staff {
        match Uuid::parse_str(form.department_id.trim()) {
            Ok(d) => Some(d),
            Err(_) => return refused(&state, &admin, t("admin.new.brigade_missing")).await,
        }
    } else {
        None
    };
    let new = NewAccount {
        role,
        identifier: id,
        display_name: name,
        department_id,
    };
    match accounts::create(&state.db, &state.key, &state.audit, admin.0.actor(), new).await {
        Ok((account, code)) => code_page(&state, account, code, Flash::new("account_created")),
        Err(e) => refused(&state, &admin, account_error(e)?).await,
    }
}

/// `303` to the account's page, carrying its new access code sealed for that page only.
fn code_page(
    state: &AppState,
    account: crate::db::entities::account::Model,
    code: crate::auth::access_code::IssuedCode,
    flash: Flash,
) -> AppResult<HttpResponse> {
    let path = format!("/admin/accounts/{}", account.id);
    let sealed = super::once::seal_code(&state.key, &path, &code, state.settings.served_over_tls())
        .ok_or_else(|| AppError::internal("cannot seal the access code"))?;
    let mut res = flash::see_other(&path, flash);
    res.add_cookie(&sealed).map_err(AppError::internal)?;
    Ok(res)
}

/// `GET /admin/accounts/{id}`: the access code just issued for the account, shown this once
/// (printable); afterwards the accounts list.
pub async fn account_code_get(
    admin: AdminUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    use sea_orm::EntityTrait;
    let account = crate::db::entities::account::Entity::find_by_id(path.into_inner())
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound)?;
    let Some((code, expires)) = super::once::open_code(&state.key, &req) else {
        return Ok(super::see_other("/admin#accounts"));
    };
    let mut res = render(&CodeIssuedPage {
        layout: Layout::for_user(&admin.0),
        role: crate::i18n::label(account.role),
        name: account.display_name,
        login: account.login_masked,
        code,
        expires: cst(expires),
        public_url: format!("{}activate", state.settings.public_url),
    })?;
    res.add_cookie(&super::once::cleared(req.path()))
        .map_err(AppError::internal)?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct AccountActionForm {
    /// Why (a reset only): recorded and shown to the person.
    #[serde(default)]
    reason: String,
    /// The reset's confirmation box.
    #[serde(default)]
    confirm: Option<String>,
    /// Disabling: the confirmation page's answer.
    #[serde(default)]
    confirmed: String,
}

/// `POST /admin/accounts/{id}/{disable|enable|reset}`
pub async fn account_action_post(
    admin: AdminUser,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    form: web::Form<AccountActionForm>,
) -> AppResult<HttpResponse> {
    let (id, action) = path.into_inner();
    let actor = admin.0.actor();
    let form = form.into_inner();
    if matches!(action.as_str(), "reset" | "reset-second-factor") && form.confirm.is_none() {
        let message = crate::i18n::t("admin.accounts.reset_unconfirmed");
        return refused(&state, &admin, message).await;
    }
    if action == "disable" && !confirm::confirmed(&form.confirmed) {
        use sea_orm::EntityTrait;
        let target = crate::db::entities::account::Entity::find_by_id(id)
            .one(&state.db)
            .await?
            .ok_or(AppError::NotFound)?;
        let who = format!("{}（{}）", target.display_name, target.login_masked);
        return confirm::ask(
            Layout::for_user(&admin.0),
            &admin.0.csrf_token,
            confirm::Ask {
                what: "disable_account",
                args: &[("name", &who)],
                action: format!("/admin/accounts/{id}/disable"),
                fields: Vec::new(),
                back: "/admin#accounts".into(),
            },
        );
    }
    // The most sensitive acts ask for a fresh second factor.
    if matches!(
        action.as_str(),
        "disable" | "enable" | "reset" | "reset-second-factor"
    ) {
        admin.0.require_step_up("/admin#accounts")?;
    }
    if action == "reset-second-factor" {
        let by = accounts::ResetBy {
            actor,
            label: crate::i18n::t("admin.accounts.reset_by_admin"),
            reason: form.reason,
        };
        return match accounts::reset_second_factor(&state.db, &state.audit, state.channels, by, id)
            .await
        {
            Ok(acc) => Ok(flash::see_other(
                "/admin#accounts",
                Flash::new("second_factor_reset").with("name", &acc.display_name),
            )),
            Err(e) => refused(&state, &admin, account_error(e)?).await,
        };
    }
    let result = match action.as_str() {
        "disable" | "enable" => {
            accounts::set_disabled(&state.db, &state.audit, actor, id, action == "disable")
                .await
                .map(|_| None)
        }
        "reset" => {
            let by = accounts::ResetBy {
                actor,
                label: crate::i18n::t("admin.accounts.reset_by_admin"),
                reason: form.reason,
            };
            accounts::reset(&state.db, &state.key, &state.audit, state.channels, by, id)
                .await
                .map(Some)
        }
        _ => return Err(AppError::NotFound),
    };
    match result {
        Ok(None) => Ok(flash::see_other(
            "/admin#accounts",
            Flash::new(if action == "disable" {
                "account_disabled"
            } else {
                "account_enabled"
            }),
        )),
        Ok(Some((account, code))) => code_page(&state, account, code, Flash::new("account_reset")),
        Err(e) => refused(&state, &admin, account_error(e)?).await,
    }
}
