//! The timeline on the staff case page: every entry (corrected ones struck through, with their
//! corrections), and the form that records a milestone or corrects one.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::{authorize, refused_typed};
use crate::auth::StaffUser;
use crate::cases::timeline::{self, NewMilestone};
use crate::db::entities::case_milestone;
use crate::error::AppResult;
use crate::i18n::Locale;
use crate::routes::flash::{self, Flash};
use crate::state::AppState;

pub struct MilestoneRow {
    pub id: Uuid,
    pub date: String,
    pub stage: String,
    pub note: String,
    pub internal_note: String,
    pub automatic: bool,
    /// Corrected by a later entry: struck through, kept.
    pub replaced: bool,
    /// "更正 2026-11-20 调查取证" for a correction.
    pub corrects: String,
    /// How the correction form's list names this entry.
    pub choice: String,
}

/// The case's timeline as staff see it.
pub fn rows(entries: &[case_milestone::Model]) -> Vec<MilestoneRow> {
    let locale = Locale::current();
    let name = |e: &case_milestone::Model| {
        format!("{} {}", locale.date(e.occurred_on), locale.label(e.stage))
    };
    entries
        .iter()
        .map(|e| MilestoneRow {
            id: e.id,
            date: locale.date(e.occurred_on),
            stage: locale.label(e.stage),
            note: crate::cases::timeline::note_of(e),
            internal_note: e.internal_note.clone().unwrap_or_default(),
            automatic: e.automatic,
            replaced: entries.iter().any(|c| c.corrects == Some(e.id)),
            corrects: e
                .corrects
                .and_then(|id| entries.iter().find(|x| x.id == id))
                .map(|old| locale.tf("timeline.corrects", &[("entry", &name(old))]))
                .unwrap_or_default(),
            choice: name(e),
        })
        .collect()
}

#[derive(Deserialize)]
pub struct MilestoneForm {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    occurred_on: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    internal_note: String,
    #[serde(default)]
    corrects: String,
}

/// `POST /staff/cases/{id}/milestones`
pub async fn milestone_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<MilestoneForm>,
) -> AppResult<HttpResponse> {
    let (permit, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    let form = form.into_inner();
    let typed = vec![
        ("stage".to_owned(), form.stage.clone()),
        ("occurred_on".to_owned(), form.occurred_on.clone()),
        ("note".to_owned(), form.note.clone()),
        ("internal_note".to_owned(), form.internal_note.clone()),
        ("corrects".to_owned(), form.corrects.clone()),
    ];
    let new = NewMilestone {
        stage: form.stage,
        occurred_on: form.occurred_on,
        note: form.note,
        internal_note: form.internal_note,
        corrects: form.corrects,
    };
    match timeline::record(
        &state.db,
        &state.audit,
        &staff.0.account,
        &permit,
        &case,
        new,
    )
    .await
    {
        Ok(entry) => Ok(flash::see_other(
            &format!("/staff/cases/{}#timeline", case.id),
            Flash::new(if entry.corrects.is_some() {
                "milestone_corrected"
            } else {
                "milestone_recorded"
            })
            .with("stage", Locale::current().label(entry.stage)),
        )),
        Err(e) => refused_typed(&state, &staff, case, e, "milestone", typed).await,
    }
}
