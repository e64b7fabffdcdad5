//! `/app`: the apps devices belong to (spec section 4). Writes need `all`.

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::input::{check_app_id, invalid};
use super::{json_input, needs, ok, resource, visible_app, Authorized};
use crate::error::{ApiError, Code, Field};
use crate::ids;
use crate::model::App;
use crate::state::AppState;
use crate::store::off_workers;
use crate::store::CreateApp;
use crate::timefmt::format_micros;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        resource("/app")
            .route(crate::routes::get().to(list_apps))
            .route(web::post().to(create_app)),
    )
    .service(
        resource("/app/{app_id}")
            .route(crate::routes::get().to(get_app))
            .route(web::delete().to(delete_app)),
    );
}

pub fn app_json(app: &App) -> Value {
    json!({
        "app_id": app.app_id,
        "name": app.name,
        "created_at": format_micros(app.created_at),
    })
}

async fn create_app(
    caller: Authorized<needs::All>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let name = match input.str(Field::Name)? {
        None => app_id.clone(),
        Some(name) if !name.trim().is_empty() && name.len() <= 256 && !ids::has_control(name) => {
            name.trim().to_owned()
        }
        Some(_) => {
            return Err(invalid(
                Field::Name,
                "1 to 256 bytes without control characters",
                input.raw(Field::Name),
            ))
        }
    };
    caller.require_app(&app_id)?;
    let now = state.clock.now();
    let target = app_id.clone();
    let created = off_workers(&state.store, move |store| {
        store.create_app(&target, &name, now)
    });
    match created.await? {
        CreateApp::Created(app) => Ok(HttpResponse::Created().json(app_json(&app))),
        CreateApp::AlreadyExists => {
            Err(ApiError::new(Code::AppIdAlreadyExists).info("app_id", app_id))
        }
    }
}

async fn list_apps(
    caller: Authorized<needs::Read>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let apps: Vec<Value> = crate::store::read(&state.store, |store| store.apps())
        .await?
        .iter()
        .filter(|app| caller.can_access(&app.app_id))
        .map(app_json)
        .collect();
    Ok(HttpResponse::Ok().json(apps))
}

async fn get_app(
    caller: Authorized<needs::Read>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let app_id = path.into_inner();
    check_app_id(&app_id)?;
    caller.require_app(&app_id)?;
    let app = crate::store::read(&state.store, {
        let app_id = app_id.clone();
        move |store| store.app(&app_id)
    })
    .await?
    .ok_or_else(|| super::app_not_found(&app_id))?;
    Ok(HttpResponse::Ok().json(app_json(&app)))
}

async fn delete_app(
    caller: Authorized<needs::All>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let app_id = path.into_inner();
    check_app_id(&app_id)?;
    visible_app(&state, &caller, &app_id).await?;
    let target = app_id.clone();
    let deleted = off_workers(&state.store, move |store| store.delete_app(&target)).await?;
    if !deleted {
        return Err(ApiError::new(Code::AppNotFound).info("app_id", app_id));
    }
    Ok(ok())
}
