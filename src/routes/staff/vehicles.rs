//! The vehicles on the staff case page (车辆): the plates of the case with their insurers where
//! known, recorded and removed by staff, against which owners' and insurers' applications are
//! checked.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::{authorize, refused_typed};
use crate::applications::vehicles::{self, NewVehicle};
use crate::auth::StaffUser;
use crate::db::entities::case;
use crate::error::{AppError, AppResult};
use crate::routes::flash::{self, Flash};
use crate::state::AppState;

pub struct VehicleRow {
    pub id: Uuid,
    pub plate: String,
    pub insurer: String,
    pub description: String,
}

/// The case's vehicles as its staff page lists them.
pub async fn rows(state: &AppState, case: &case::Model) -> AppResult<Vec<VehicleRow>> {
    Ok(vehicles::of_case(&state.db, case.id)
        .await?
        .into_iter()
        .map(|v| VehicleRow {
            id: v.id,
            plate: v.plate,
            insurer: v.insurer.unwrap_or_default(),
            description: v.description.unwrap_or_default(),
        })
        .collect())
}

#[derive(Deserialize)]
pub struct VehicleForm {
    #[serde(default)]
    plate: String,
    #[serde(default)]
    insurer: String,
    #[serde(default)]
    description: String,
}

/// `POST /staff/cases/{id}/vehicles`: records a vehicle (`plate`, `insurer`, `description`).
pub async fn vehicle_add_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<VehicleForm>,
) -> AppResult<HttpResponse> {
    let (permit, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    let form = form.into_inner();
    let typed = vec![
        ("plate".to_owned(), form.plate.clone()),
        ("insurer".to_owned(), form.insurer.clone()),
        ("description".to_owned(), form.description.clone()),
    ];
    let new = NewVehicle {
        plate: form.plate,
        insurer: form.insurer,
        description: form.description,
    };
    match vehicles::add(
        &state.db,
        &state.audit,
        &staff.0.account,
        &permit,
        &case,
        new,
    )
    .await
    {
        Ok(v) => Ok(flash::see_other(
            &format!("/staff/cases/{}#vehicles", case.id),
            Flash::new("vehicle_added").with("plate", &v.plate),
        )),
        Err(e) => refused_typed(&state, &staff, case, e, "vehicle", typed).await,
    }
}

/// `POST /staff/cases/{id}/vehicles/{vehicle_id}/remove`: removes a vehicle of the case (one
/// of another case is not found).
pub async fn vehicle_remove_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (case_id, vehicle_id) = path.into_inner();
    let (permit, case) = authorize(&state, &staff, &req, case_id).await?;
    let removed = vehicles::remove(
        &state.db,
        &state.audit,
        &staff.0.account,
        &permit,
        &case,
        vehicle_id,
    )
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(flash::see_other(
        &format!("/staff/cases/{}#vehicles", case.id),
        Flash::new("vehicle_removed").with("plate", &removed.plate),
    ))
}
