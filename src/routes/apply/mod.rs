//! The public access application (查询申请) of a vehicle owner or an insurer's staff member:
//! the form (no account needed) here; its private status page, the query voucher (查询凭证) of
//! an approved application — printable, with the one-time code that opens the account — and
//! the ways back to them in `status`.

mod lookup;
mod status;

pub use lookup::{apply_find_code_post, apply_find_post, view_apply_find_get};
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
use crate::applications::access::{self, CheckError, Checked, held};
use crate::applications::fields::FieldErrors;
use crate::auth::{client_of, csrf};
use crate::db::entities::{case, department};
use crate::error::AppResult;
use crate::materials::Received;
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
    /// Each field that breaks a rule and why (in the page's language), in the form's order:
    /// marked at its field and listed in the summary at the top.
    errors: Vec<(&'static str, String)>,
    /// The applicant's own earlier application like this one: why the box must be ticked.
    duplicate: Option<String>,
    /// The proof kept from the last try (its token rides in a hidden field).
    held: Option<held::Held>,
    /// How the outcome will reach an applicant here (`apply.told.*`).
    told: String,
}

impl ApplyPage {
    async fn new(
        state: &AppState,
        csrf_token: String,
        typed: access::NewAccess,
    ) -> AppResult<Self> {
        Ok(ApplyPage {
            layout: apply_layout(),
            csrf_token,
            brigades: brigades(state).await?,
            typed,
            errors: Vec::new(),
            duplicate: None,
            held: None,
            told: crate::notifications::Told::offered(state.channels).key("apply.told"),
        })
    }

    /// Why `field` is refused, if it is.
    fn message(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    fn invalid(&self, field: &str) -> bool {
        self.message(field).is_some()
    }

    /// Where the summary's link to `field` leads: its input (the first radio button of `kind`).
    fn anchor<'a>(&self, field: &'a str) -> &'a str {
        if field == "kind" {
            "kind-insurer"
        } else {
            field
        }
    }
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
    let typed = access::NewAccess {
        kind: "insurer".into(),
        ..Default::default()
    };
    let page = ApplyPage::new(&state, csrf_token, typed).await?;
    with_cookie(render(&page)?, cookie)
}

/// What the form sends besides the application's fields.
#[derive(Default)]
struct Sent {
    typed: access::NewAccess,
    /// The token of the proof held from the last try (`held`), if the page carried one.
    held: String,
    /// Ticked under the warning of a duplicate: file it all the same.
    confirm_duplicate: bool,
}

fn set(sent: &mut Sent, name: &str, value: String) {
    let typed = &mut sent.typed;
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
        "held_proof" => sent.held = value,
        "confirm_duplicate" => sent.confirm_duplicate = !value.trim().is_empty(),
        _ => {}
    }
}

/// The proof's part, as read.
enum Upload {
    /// None sent, or a file input left empty.
    Absent,
    /// In the store now (the handler removes it if the answer is an error).
    Kept(Received),
    /// Refused, and why (its type, an empty file, a name that claims another type).
    Refused(String),
}

fn rule() -> super::uploads::Rule<'static> {
    super::uploads::Rule {
        file_field: "proof",
        max_files: 1,
        // Twelve fields and the proof; a few to spare for what a browser adds.
        max_parts: 24,
        field_limit: 4096,
        text_limit: 16 * 1024,
        allowed: PROOF_TYPES,
        allowed_text: "PDF、JPEG、PNG",
        file_limit: crate::applications::FILE_BYTES,
    }
}

fn fields_of(checked: Result<Checked, CheckError>) -> AppResult<Result<Checked, FieldErrors>> {
    match checked {
        Ok(c) => Ok(Ok(c)),
        Err(CheckError::Fields(f)) => Ok(Err(f)),
        Err(CheckError::Db(e)) => Err(e.into()),
    }
}

/// Reads the form, storing the proof as it arrives once its type has passed: under its case
/// when the fields before it passed their checks, else with the held proofs (`held`), to be
/// kept for the next try. Also the fields' check as of the proof, unless a field came after it.
async fn read_form(
    state: &AppState,
    payload: &mut actix_multipart::Multipart,
) -> AppResult<(Sent, Upload, Option<Result<Checked, FieldErrors>>)> {
    let rule = rule();
    let (mut sent, mut upload, mut checked) = (Sent::default(), Upload::Absent, None);
    let mut budget = super::uploads::Budget::of(&rule);
    let read: AppResult<()> = async {
        while let Some(field) = payload.next().await {
            let field = field.map_err(super::uploads::multipart_error)?;
            budget.part()?;
            if field.name() != Some(rule.file_field) {
                let (name, value) =
                    super::uploads::read_text(field, rule.field_limit, &mut budget).await?;
                set(&mut sent, &name, value);
                checked = None;
                continue;
            }
            if !matches!(upload, Upload::Absent) {
                super::uploads::drain(field).await?;
                continue;
            }
            let fields = fields_of(access::check(&state.db, &sent.typed).await)?;
            let under = fields.as_ref().map_or(held::HELD_UNDER, |c| c.case.id);
            upload = match super::uploads::receive_file(state, under, field, &rule).await? {
                super::uploads::FilePart::Kept(received) => Upload::Kept(received),
                super::uploads::FilePart::Refused(problem) => Upload::Refused(problem),
                // No file chosen: as if the part were absent (a later one may carry it).
                super::uploads::FilePart::NotChosen => Upload::Absent,
            };
            checked = Some(fields);
        }
        Ok(())
    }
    .await;
    if let Err(e) = read {
        if let Upload::Kept(received) = &upload {
            super::uploads::discard(state, std::iter::once(received)).await;
        }
        return Err(e);
    }
    Ok((sent, upload, checked))
}

/// The proof a submission goes on with.
enum Proof<'a> {
    /// Chosen this time.
    Fresh(&'a Received),
    /// Held from the last try.
    Held(Received, held::Held),
}

impl Proof<'_> {
    fn received(&self) -> &Received {
        match self {
            Proof::Fresh(r) => r,
            Proof::Held(r, _) => r,
        }
    }

    /// Kept for the next try: sealed for `browser` now if fresh, its token carried on if held
    /// (its time is not extended).
    fn hold(
        self,
        state: &AppState,
        browser: &str,
        now: time::OffsetDateTime,
    ) -> Option<held::Held> {
        match self {
            Proof::Fresh(r) => held::hold(&state.key, browser, r, now),
            Proof::Held(_, h) => Some(h),
        }
    }
}

/// What becomes of a form.
enum Answer {
    Filed(access::Filed),
    /// Back to the form: every field that breaks a rule, the applicant's own earlier
    /// application like this one, the proof kept.
    Again {
        errors: FieldErrors,
        duplicate: Option<crate::db::entities::access_application::Model>,
        held: Option<held::Held>,
    },
}

const NO_PROOF: &str = "请上传签字的授权书或证明材料（PDF、JPEG 或 PNG） (upload the signed authorisation or proof: PDF, JPEG or PNG)";
const LAPSED: &str = "上次上传的文件已超过保留时间，请重新选择文件 (the file uploaded earlier is no longer kept: choose it again)";

/// Which proof the submission goes on with, and if none why (for the `proof` field), or the
/// one held that stays on offer. A new file replaces the one held (removed now); with none
/// chosen, the one held is used.
async fn which_proof<'a>(
    state: &AppState,
    upload: &'a Upload,
    opened: held::Opened,
) -> (Option<Proof<'a>>, Option<&'a str>, Option<held::Held>) {
    match (upload, opened) {
        (Upload::Kept(fresh), held::Opened::Held(replaced, _)) => {
            super::uploads::discard(state, std::iter::once(&replaced)).await;
            (Some(Proof::Fresh(fresh)), None, None)
        }
        (Upload::Kept(fresh), _) => (Some(Proof::Fresh(fresh)), None, None),
        // The new file is refused; the one held stays on offer.
        (Upload::Refused(why), held::Opened::Held(_, h)) => (None, Some(why.as_str()), Some(h)),
        (Upload::Refused(why), _) => (None, Some(why.as_str()), None),
        (Upload::Absent, held::Opened::Held(r, h)) => (Some(Proof::Held(r, h)), None, None),
        (Upload::Absent, held::Opened::Lapsed) => (None, Some(LAPSED), None),
        (Upload::Absent, held::Opened::None) => (None, Some(NO_PROOF), None),
    }
}

/// Decides on a form that was read: back to the form (every problem at once, or the warning
/// of a duplicate, the proof kept), refused by the case's limit, or filed. A fresh upload
/// stays the caller's to remove when this is an error; a held one refused by the case's limit
/// is removed here (nothing is kept).
async fn answer(
    state: &AppState,
    sent: &Sent,
    upload: &Upload,
    checked: Option<Result<Checked, FieldErrors>>,
    browser: &str,
    client: (Option<String>, Option<String>),
) -> AppResult<Answer> {
    let now = state.audit.now();
    let opened = held::open(
        &state.db,
        &state.store,
        &state.key,
        browser,
        &sent.held,
        PROOF_TYPES,
        now,
    )
    .await?;
    let checked = match checked {
        Some(c) => c,
        None => fields_of(access::check(&state.db, &sent.typed).await)?,
    };
    let (proof, problem, kept) = which_proof(state, upload, opened).await;
    let (checked, proof) = match (checked, proof) {
        (Ok(c), Some(p)) => (c, p),
        (checked, proof) => {
            let mut errors = checked.err().unwrap_or_default();
            if let Some(problem) = problem {
                errors.add("proof", problem);
            }
            let held = match proof {
                Some(p) => p.hold(state, browser, now),
                None => kept,
            };
            return Ok(Answer::Again {
                errors,
                duplicate: None,
                held,
            });
        }
    };
    if !sent.confirm_duplicate
        && let Some(earlier) = access::earlier_same(&state.db, &state.key, &checked, now).await?
    {
        return Ok(Answer::Again {
            errors: FieldErrors::default(),
            duplicate: Some(earlier),
            held: proof.hold(state, browser, now),
        });
    }
    // Well-formed: now, and only now, it counts against the case.
    if let Err(over) = access::within_limits(&state.db, 0, None, Some(checked.case.id), now).await?
    {
        if let Proof::Held(r, _) = &proof {
            super::uploads::discard(state, std::iter::once(r)).await;
        }
        return Err(over.into());
    }
    let filed = access::file(
        &state.db,
        &state.audit,
        &state.key,
        checked,
        proof.received(),
        client,
    )
    .await?;
    Ok(Answer::Filed(filed))
}

/// `POST /apply` (multipart: the fields, then the `proof` file). Counted against the address's
/// limit before anything is read (refusals count there). A proof whose type passed is kept when
/// the fields are refused (held for the next try, `held`); only a submission whose fields and
/// proof both passed is counted against the case's limit, just before filing — junk cannot use
/// up a case's day.
pub async fn apply_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let client = client_of(&req);
    access::within_limits(
        &state.db,
        state.settings.applications_per_hour,
        client.0.as_deref(),
        None,
        state.audit.now(),
    )
    .await??;
    let (sent, upload, checked) = read_form(&state, &mut payload).await?;
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    // A held proof is the browser's: bound to its anonymous cookie (the one set now, if none came).
    let anonymous = csrf::anonymous_cookie(state.settings.served_over_tls());
    let browser = match (&cookie, req.cookie(anonymous)) {
        (Some(new), _) => new.value().to_owned(),
        (None, Some(sent)) => sent.value().to_owned(),
        (None, None) => String::new(),
    };
    let answer = answer(&state, &sent, &upload, checked, &browser, client).await;
    let (errors, duplicate, held) = match answer {
        Err(e) => {
            if let Upload::Kept(received) = &upload {
                super::uploads::discard(&state, std::iter::once(received)).await;
            }
            return Err(e);
        }
        Ok(Answer::Filed(filed)) => {
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
            return Ok(res);
        }
        Ok(Answer::Again {
            errors,
            duplicate,
            held,
        }) => (errors, duplicate, held),
    };
    let locale = crate::i18n::Locale::current();
    let mut page = ApplyPage::new(&state, csrf_token, sent.typed).await?;
    page.errors = errors
        .into_list()
        .into_iter()
        .map(|(field, message)| (field, crate::i18n::pick(&message)))
        .collect();
    page.duplicate = duplicate.map(|earlier| {
        locale.tf(
            "apply.duplicate",
            &[
                ("on", &locale.time(earlier.filed_at)),
                ("receipt", &earlier.receipt_no),
            ],
        )
    });
    page.held = held;
    with_cookie(
        render_status(actix_web::http::StatusCode::BAD_REQUEST, &page)?,
        cookie,
    )
}
