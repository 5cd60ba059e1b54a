//! The way back to an application's status page from a browser that did not file it (reached
//! from "查询申请进度"): its receipt number and the mobile number it gave bring a code by SMS,
//! the code a new status link, remembered in this browser (`applications::lookup`). Where this
//! installation sends no SMS no form is offered: the page names the ways back there are.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::super::auth::{anonymous_token, with_cookie};
use super::super::{Layout, render_status};
use crate::applications::access::OverLimit;
use crate::applications::lookup::{self, LookupError};
use crate::auth::client_of;
use crate::error::AppResult;
use crate::state::AppState;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The receipt number and the mobile number.
    Ask,
    /// The code, once asked for.
    Code,
}

#[derive(Template)]
#[template(path = "public/apply_find.html")]
struct FindPage {
    layout: Layout,
    csrf_token: String,
    /// This installation sends SMS: only then is a code offered.
    sms: bool,
    step: Step,
    /// As typed (the code form carries it on).
    receipt_no: String,
    /// As typed, shown again only on a form sent back with a wrong field.
    mobile: String,
    receipt_error: Option<String>,
    mobile_error: Option<String>,
    code_error: Option<String>,
    /// Why the whole request was refused (a limit, a code that opens nothing).
    refusal: Option<String>,
}

impl FindPage {
    fn new(state: &AppState, csrf_token: String, step: Step) -> FindPage {
        FindPage {
            layout: Layout::new(),
            csrf_token,
            sms: state.channels.sms,
            step,
            receipt_no: String::new(),
            mobile: String::new(),
            receipt_error: None,
            mobile_error: None,
            code_error: None,
            refusal: None,
        }
    }

    /// The page with `error` shown where it belongs, and the status it is answered with.
    fn refused(mut self, error: LookupError) -> AppResult<(StatusCode, FindPage)> {
        let status = match error {
            LookupError::Fields(fields) => {
                for (field, message) in fields {
                    let shown = Some(crate::i18n::pick(&message));
                    match field {
                        "receipt_no" => self.receipt_error = shown,
                        "mobile" => self.mobile_error = shown,
                        _ => self.code_error = shown,
                    }
                }
                StatusCode::BAD_REQUEST
            }
            LookupError::WrongCode => {
                self.refusal = Some(crate::i18n::pick(&LookupError::WrongCode.to_string()));
                StatusCode::BAD_REQUEST
            }
            LookupError::OverLimit(over) => {
                self.refusal = Some(limit_text(over));
                StatusCode::TOO_MANY_REQUESTS
            }
            other => return Err(other.into()),
        };
        Ok((status, self))
    }
}

/// What a limit reached tells the person: how many, and until when (the words of its error
/// page, here on the form).
fn limit_text(over: OverLimit) -> String {
    let locale = crate::i18n::Locale::current();
    locale.tf(
        &format!("error.rate_limited.{}", over.limit),
        &[
            ("allowed", &over.allowed.to_string()),
            ("until", &locale.time(over.until)),
        ],
    )
}

fn answer(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    mut page: FindPage,
) -> AppResult<HttpResponse> {
    let (csrf_token, cookie) = anonymous_token(req, state);
    page.csrf_token = csrf_token;
    let mut res = render_status(status, &page)?;
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    with_cookie(res, cookie)
}

/// `GET /apply/find`: the receipt number and the mobile number (where SMS is sent), or the
/// ways back there are.
pub async fn view_apply_find_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let page = FindPage::new(&state, String::new(), Step::Ask);
    answer(&req, &state, StatusCode::OK, page)
}

#[derive(Deserialize)]
pub struct AskForm {
    #[serde(default)]
    receipt_no: String,
    #[serde(default)]
    mobile: String,
}

/// `POST /apply/find` (form: `receipt_no`, `mobile`): a code texted where the pair is an
/// application's; the same page either way, with the code's form. Without SMS, the page of
/// `GET` (nothing is sent, nothing promised).
pub async fn apply_find_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<AskForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    if !state.channels.sms {
        return view_apply_find_get(req, state).await;
    }
    let asked = lookup::ask(
        &state.db,
        &state.audit,
        &state.key,
        state.channels,
        &form.receipt_no,
        &form.mobile,
        client_of(&req),
    )
    .await;
    let (status, page) = match asked {
        Ok(()) => {
            let mut page = FindPage::new(&state, String::new(), Step::Code);
            page.receipt_no = lookup::receipt_text(&form.receipt_no);
            (StatusCode::OK, page)
        }
        Err(e) => {
            let mut page = FindPage::new(&state, String::new(), Step::Ask);
            page.receipt_no = form.receipt_no;
            page.mobile = form.mobile;
            page.refused(e)?
        }
    };
    answer(&req, &state, status, page)
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    receipt_no: String,
    #[serde(default)]
    code: String,
}

/// `POST /apply/find/code` (form: `receipt_no`, `code`): the right code renews the status link
/// (the old one stops working), remembers it in this browser and opens it; anything else is
/// the code's form again, in the same words whatever was wrong.
pub async fn apply_find_code_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let entered = lookup::enter(
        &state.db,
        &state.audit,
        &state.key,
        &form.receipt_no,
        &form.code,
        client_of(&req),
    )
    .await;
    match entered {
        Ok(renewed) => {
            let mut res = super::super::flash::see_other(
                &format!(
                    "/apply/{}?key={}",
                    renewed.application_id, renewed.status_key
                ),
                super::super::flash::Flash::new("application_found")
                    .with("receipt", &renewed.receipt_no),
            );
            super::status::remember(
                &state,
                &req,
                &mut res,
                renewed.application_id,
                &renewed.status_key,
            )?;
            Ok(res)
        }
        Err(e) => {
            let mut page = FindPage::new(&state, String::new(), Step::Code);
            page.receipt_no = lookup::receipt_text(&form.receipt_no)
                .chars()
                .take(40)
                .collect();
            let (status, page) = page.refused(e)?;
            answer(&req, &state, status, page)
        }
    }
}
