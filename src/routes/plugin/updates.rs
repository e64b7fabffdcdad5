//! `POST /updates`: what should this device run? Records the check-in and answers the bundle,
//! or the refusal, as `resolve` decides it.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};

use super::{answer_json, app_not_found, device_call, record_check_ins};
use crate::error::ApiError;
use crate::resolve::{self, Answer};
use crate::routes::input::missing;
use crate::state::AppState;

pub async fn updates(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, mut device) = device_call(&req, payload, &state).await?;
    let Some(native) = device.native.take() else {
        return Err(missing("version_build"));
    };
    // An unknown app has no overrides and no channels: it resolves to a refusal, and the
    // check-in below says that the app is unknown, with no lookup of its own on this hot path.
    let overrides = state.store.overrides(&device.app_id, &device.device_id)?;
    let answer = resolve::resolve(
        state.store.as_ref(),
        &device.app_id,
        &device.report,
        &native,
        &overrides,
        &mut resolve::Trace::off(),
    )?;
    // As Capgo records it, a device offered a bundle shows that bundle as its version from
    // then on (until it reports another).
    if let Answer::Update { bundle, .. } = &answer {
        device.report.version_name = Some(bundle.version.clone());
    }
    if !record_check_ins(&state, &[&device]).await? {
        return Ok(app_not_found());
    }
    Ok(HttpResponse::Ok().json(answer_json(&answer)))
}
