//! Asking before the irreversible: a page that says in plain words what an act will do, with
//! the same form again and a button that confirms it — a step that needs no JavaScript. The
//! handler runs the act only when its form says `confirmed=yes`; anything else shows this page
//! and changes nothing.

use actix_web::HttpResponse;
use askama::Template;

use super::{Layout, render};
use crate::error::AppResult;

/// The form field that says the person saw the consequence and confirmed.
pub const FIELD: &str = "confirmed";

/// A form whose only field (besides the CSRF token) is the confirmation.
#[derive(serde::Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub confirmed: String,
}

/// Whether a form's `confirmed` field confirms.
pub fn confirmed(value: &str) -> bool {
    value == "yes"
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    csrf_token: String,
    title: String,
    consequence: String,
    action: String,
    fields: Vec<(String, String)>,
    confirm_label: String,
    back: String,
}

/// What to ask: the catalog's `confirm.<what>.title`, `.text` (with `args`) and `.button`, and
/// the form to post again.
pub struct Ask<'a> {
    pub what: &'a str,
    pub args: &'a [(&'a str, &'a str)],
    /// Where the form posts (the act itself).
    pub action: String,
    /// The form's own fields, posted again unchanged.
    pub fields: Vec<(String, String)>,
    /// Where "go back" leads.
    pub back: String,
}

/// The confirmation page of `ask`, for the signed-in person of `layout`.
pub fn ask(layout: Layout, csrf_token: &str, ask: Ask<'_>) -> AppResult<HttpResponse> {
    let locale = layout.locale;
    let key = |part: &str| format!("confirm.{}.{part}", ask.what);
    render(&ConfirmPage {
        title: locale.t(&key("title")).into_owned(),
        consequence: locale.tf(&key("text"), ask.args),
        confirm_label: locale.t(&key("button")).into_owned(),
        layout,
        csrf_token: csrf_token.to_owned(),
        action: ask.action,
        fields: ask.fields,
        back: ask.back,
    })
}
