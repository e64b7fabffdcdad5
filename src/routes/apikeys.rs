//! `/apikey`: API keys (spec section 4). Everything here needs mode `all`, but for
//! `/apikey/current`, which tells any key what it is (the console decides what to show by it).

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::input::{invalid, Input};
use super::{json_input, needs, ok, resource, Authorized};
use crate::auth;
use crate::error::{ApiError, Code, Field};
use crate::ids;
use crate::model::{ApiKey, Mode};
use crate::state::AppState;
use crate::store::off_workers;
use crate::timefmt::format_micros;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        resource("/apikey")
            .route(crate::routes::get().to(list_keys))
            .route(web::post().to(create_key)),
    )
    .service(resource("/apikey/current").route(crate::routes::get().to(current_key)))
    .service(resource("/apikey/{id}").route(web::delete().to(delete_key)));
}

/// A key as listed: never its secret, which is not stored.
pub fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "mode": format!("{:?}", key.mode).to_lowercase(),
        "limited_to_apps": key.limited_to_apps,
        "expires_at": key.expires_at.map(format_micros),
        "created_at": format_micros(key.created_at),
    })
}

fn parse_apps(input: &Input) -> Result<Vec<String>, ApiError> {
    let bad = || {
        invalid(
            Field::LimitedToApps,
            "an array of app ids",
            input.raw(Field::LimitedToApps),
        )
    };
    match input.raw(Field::LimitedToApps) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= 1000 => {
            let mut apps = Vec::with_capacity(items.len());
            for item in items {
                let app_id = item
                    .as_str()
                    .filter(|a| ids::is_valid_app_id(a))
                    .ok_or_else(bad)?;
                if !apps.iter().any(|a| a == app_id) {
                    apps.push(app_id.to_owned());
                }
            }
            Ok(apps)
        }
        Some(_) => Err(bad()),
    }
}

async fn create_key(
    caller: Authorized<needs::All>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let name = input.required_str(Field::Name)?;
    if name.trim().is_empty() || name.len() > 128 || ids::has_control(name) {
        return Err(invalid(
            Field::Name,
            "1 to 128 bytes without control characters",
            input.raw(Field::Name),
        ));
    }
    let mode_text = input.required_str(Field::Mode)?;
    let mode = Mode::parse(mode_text).ok_or_else(|| {
        invalid(
            Field::Mode,
            "one of read, upload, write, all",
            input.raw(Field::Mode),
        )
    })?;
    let limited_to_apps = parse_apps(&input)?;
    let now = state.clock.now();
    let expires_at = input.instant(Field::ExpiresAt)?;
    if expires_at.is_some_and(|at| at <= now) {
        return Err(invalid(
            Field::ExpiresAt,
            "an instant in the future",
            input.raw(Field::ExpiresAt),
        ));
    }

    // A key cannot create a key wider than itself: not more apps, not a longer life.
    if !caller.limited_to_apps.is_empty() {
        let outside: Vec<&String> = limited_to_apps
            .iter()
            .filter(|a| !caller.can_access(a))
            .collect();
        if limited_to_apps.is_empty() || !outside.is_empty() {
            return Err(ApiError::new(Code::CannotAccessApp)
                .message("A key limited to some apps can only create keys limited to those apps")
                .info("limited_to_apps", caller.limited_to_apps.clone()));
        }
    }
    if let Some(limit) = caller.expires_at {
        if expires_at.is_none_or(|at| at > limit) {
            return Err(ApiError::new(Code::InsufficientPermissions)
                .message("A key that expires can only create keys that expire no later")
                .info("expires_at", format_micros(limit)));
        }
    }

    let name = name.trim().to_owned();
    let (key, secret) = off_workers(&state.store, move |store| {
        auth::create_key(store, &name, mode, limited_to_apps, expires_at, now)
    })
    .await?;
    let mut body = key_json(&key);
    body["key"] = Value::String(secret);
    Ok(HttpResponse::Created().json(body))
}

async fn list_keys(
    caller: Authorized<needs::All>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let keys: Vec<Value> = off_workers(&state.store, |store| store.api_keys())
        .await?
        .iter()
        .filter(|key| caller.covers(key))
        .map(key_json)
        .collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// The calling key as listed; the configured admin key, which is not stored, as `admin`.
async fn current_key(
    caller: Authorized<needs::Read>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(id) = caller.key_id else {
        return Ok(HttpResponse::Ok().json(json!({
            "id": null,
            "name": "admin",
            "mode": "all",
            "limited_to_apps": [],
            "expires_at": null,
            "created_at": null,
        })));
    };
    let key = off_workers(&state.store, move |store| {
        Ok(store.api_keys()?.into_iter().find(|key| key.id == id))
    })
    .await?
    // Revoked between authentication and this read.
    .ok_or(ApiError::new(Code::InvalidApiKey))?;
    Ok(HttpResponse::Ok().json(key_json(&key)))
}

async fn delete_key(
    caller: Authorized<needs::All>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let text = path.into_inner();
    let id: u64 = text.parse().map_err(|_| {
        invalid(
            Field::Id,
            "a key id, as GET /apikey lists it",
            Some(&Value::String(text.clone())),
        )
    })?;
    let not_found = || ApiError::new(Code::ApiKeyNotFound).info("id", id);
    // Keys outside the caller's reach are reported as absent, as if they did not exist.
    let key = off_workers(&state.store, |store| store.api_keys())
        .await?
        .into_iter()
        .find(|key| key.id == id)
        .filter(|key| caller.covers(key))
        .ok_or_else(not_found)?;
    if !off_workers(&state.store, move |store| store.delete_api_key(key.id)).await? {
        return Err(not_found());
    }
    Ok(ok())
}
