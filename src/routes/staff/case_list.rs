//! The brigade's case list (searched, sorted, paged) and the form that opens or edits a case.

use super::*;

pub struct CaseRow {
    pub id: Uuid,
    pub number: String,
    pub occurred: String,
    pub place: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "staff/cases.html")]
struct CaseListPage {
    layout: Layout,
    rows: Vec<CaseRow>,
    q: SearchQuery,
    /// "Page 2 of 5".
    page_of: String,
    prev_link: Option<String>,
    next_link: Option<String>,
    statuses: Vec<crate::routes::Choice>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub party: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub status: String,
    /// `occurred` (newest accident first, the default), `occurred_asc`, `number`, `status`.
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: u64,
}

impl SearchQuery {
    fn link(&self, page: u64) -> String {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("number", &self.number)
            .append_pair("party", &self.party)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .append_pair("status", &self.status)
            .append_pair("sort", &self.sort)
            .append_pair("page", &page.to_string())
            .finish();
        format!("/staff/cases?{q}")
    }

    /// This list sorted by `sort` (from its first page).
    pub fn sorted(&self, sort: &str) -> String {
        SearchQuery {
            sort: sort.to_owned(),
            ..self.clone()
        }
        .link(0)
    }
}

/// `GET /staff/cases`
pub async fn view_cases_get(
    staff: StaffUser,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> AppResult<HttpResponse> {
    let q = query.into_inner();
    let department_id = staff.0.account.department_id.ok_or(AppError::Forbidden)?;
    let filter = Search {
        number: Some(q.number.clone()),
        party_name: Some(q.party.clone()),
        from: parse_date(&q.from),
        to: parse_date(&q.to),
        status: Some(q.status.clone()),
        sort: Some(q.sort.clone()),
    };
    let (found, pages) = cases::search(&state.db, department_id, &filter, q.page).await?;
    let rows = found
        .into_iter()
        .map(|c| CaseRow {
            id: c.id,
            occurred: cst(c.occurred_at),
            status: crate::i18n::label(c.status),
            number: c.case_number,
            place: c.place,
        })
        .collect();
    render(&CaseListPage {
        layout: Layout::for_user(&staff.0),
        rows,
        prev_link: (q.page > 0).then(|| q.link(q.page - 1)),
        next_link: (q.page + 1 < pages).then(|| q.link(q.page + 1)),
        page_of: Locale::current().tf(
            "staff.cases.page_of",
            &[
                ("page", &(q.page + 1).to_string()),
                ("pages", &pages.max(1).to_string()),
            ],
        ),
        statuses: crate::routes::choices(CaseStatus::ALL),
        q,
    })
}

#[derive(Template)]
#[template(path = "staff/case_form.html")]
struct CaseFormPage {
    layout: Layout,
    csrf_token: String,
    action: String,
    title: String,
    form: CaseForm,
    error: Option<String>,
    /// The field the refusal is about, marked `aria-invalid`.
    fault: Option<&'static str>,
}

impl CaseFormPage {
    /// Whether `field` is the one at fault.
    fn faulty(&self, field: &str) -> bool {
        self.fault == Some(field)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CaseForm {
    #[serde(default)]
    pub case_number: String,
    /// `YYYY-MM-DDTHH:MM`, China Standard Time (an `<input type="datetime-local">`).
    #[serde(default)]
    pub occurred_at: String,
    #[serde(default)]
    pub place: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub fatal: Option<String>,
    #[serde(default)]
    pub complex: Option<String>,
}

impl CaseForm {
    fn details(&self) -> Result<CaseDetails, CaseError> {
        let at = PrimitiveDateTime::parse(self.occurred_at.trim(), DATETIME)
            .map_err(|_| CaseError::field("occurred_at", t("staff.form.occurred_missing")))?
            .assume_offset(CST);
        Ok(CaseDetails {
            case_number: self.case_number.clone(),
            occurred_at: at,
            place: self.place.clone(),
            summary: self.summary.clone(),
            fatal: self.fatal.is_some(),
            complex: self.complex.is_some(),
        })
    }

    fn of(c: &case::Model) -> Self {
        let t = c.occurred_at.to_offset(CST);
        CaseForm {
            case_number: c.case_number.clone(),
            occurred_at: format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            ),
            place: c.place.clone(),
            summary: c.summary.clone(),
            fatal: c.fatal.then(|| "on".into()),
            complex: c.complex.then(|| "on".into()),
        }
    }
}

impl CaseFormPage {
    /// The new-case form (`case` None) or the edit form of `case`.
    fn of(
        staff: &StaffUser,
        case: Option<Uuid>,
        form: CaseForm,
        refusal: Option<(String, Option<&'static str>)>,
    ) -> Self {
        let (error, fault) = refusal.map_or((None, None), |(m, f)| (Some(m), f));
        CaseFormPage {
            layout: Layout::for_user(&staff.0),
            csrf_token: staff.0.csrf_token.clone(),
            action: case.map_or_else(
                || "/staff/cases".to_owned(),
                |id| format!("/staff/cases/{id}/edit"),
            ),
            title: t(if case.is_some() {
                "staff.form.edit_title"
            } else {
                "staff.form.new_title"
            }),
            form,
            error,
            fault,
        }
    }
}

/// A refusal's message for the person and the field it is about.
fn refusal(e: CaseError) -> Result<(String, Option<&'static str>), AppError> {
    let fault = e.fault();
    Ok((form_error(e)?, fault))
}

/// `GET /staff/cases/new`
pub async fn view_case_new_get(staff: StaffUser) -> AppResult<HttpResponse> {
    render(&CaseFormPage::of(&staff, None, CaseForm::default(), None))
}

/// `POST /staff/cases`
pub async fn case_create_post(
    staff: StaffUser,
    state: web::Data<AppState>,
    form: web::Form<CaseForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let created = match form.details() {
        Ok(d) => cases::create(&state.db, &state.audit, &staff.0.account, d).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(c) => Ok(flash::see_other(
            &format!("/staff/cases/{}", c.id),
            Flash::new("case_created").with("number", &c.case_number),
        )),
        Err(e) => render_status(
            actix_web::http::StatusCode::BAD_REQUEST,
            &CaseFormPage::of(&staff, None, form, Some(refusal(e)?)),
        ),
    }
}

/// `GET /staff/cases/{id}/edit`
pub async fn view_case_edit_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (_, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    render(&CaseFormPage::of(
        &staff,
        Some(case.id),
        CaseForm::of(&case),
        None,
    ))
}

/// `POST /staff/cases/{id}/edit`
pub async fn case_edit_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<CaseForm>,
) -> AppResult<HttpResponse> {
    let (permit, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    let id = case.id;
    let form = form.into_inner();
    let updated = match form.details() {
        Ok(d) => cases::update(&state.db, &state.audit, &staff.0.account, &permit, case, d).await,
        Err(e) => Err(e),
    };
    match updated {
        Ok(_) => Ok(flash::see_other(
            &format!("/staff/cases/{id}"),
            Flash::new("case_saved"),
        )),
        Err(e) => render_status(
            actix_web::http::StatusCode::BAD_REQUEST,
            &CaseFormPage::of(&staff, Some(id), form, Some(refusal(e)?)),
        ),
    }
}
