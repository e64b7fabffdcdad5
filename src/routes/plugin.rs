//! The plugin API (spec section 5): unauthenticated endpoints spoken by capacitor-updater.
//! Refusals are HTTP 200 `{"error", "message", "kind"}`, as current plugins expect; a body that
//! cannot be understood is a 400 in the contract's error shape.

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::input::{invalid, parse_json, Input};
use super::resource;
use crate::error::{ApiError, Code};
use crate::ids;
use crate::model::{DeviceReport, Platform};
use crate::state::AppState;
use crate::store::Upsert;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resource("/stats").route(web::post().to(stats)));
}

/// `kind` of a plugin refusal.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    UpToDate,
    Blocked,
    Failed,
}

pub fn refusal(error: &str, message: &str, kind: Kind) -> HttpResponse {
    let kind = match kind {
        Kind::UpToDate => "up_to_date",
        Kind::Blocked => "blocked",
        Kind::Failed => "failed",
    };
    HttpResponse::Ok().json(json!({"error": error, "message": message, "kind": kind}))
}

pub fn app_not_found() -> HttpResponse {
    refusal("app_not_found", "App not found", Kind::Failed)
}

/// A device as the plugin describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceBody {
    pub app_id: String,
    pub device_id: String,
    pub report: DeviceReport,
}

/// A short free-text field of the plugin body (versions, os): at most 256 bytes, no controls.
fn short_text(input: &Input, field: &str) -> Result<String, ApiError> {
    match input.str(field)? {
        None => Ok(String::new()),
        Some(text) if text.len() <= 256 && !ids::has_control(text) => Ok(text.to_owned()),
        Some(_) => Err(invalid(
            field,
            "at most 256 bytes without control characters",
            input.raw(field),
        )),
    }
}

pub fn parse_device_body(input: &Input) -> Result<DeviceBody, ApiError> {
    let app_id = input.app_id()?;
    let device_id = input.required_device_id()?;
    let platform_text = input.required_str("platform")?;
    let platform = Platform::parse(platform_text).ok_or_else(|| {
        invalid(
            "platform",
            "ios, android or electron",
            input.raw("platform"),
        )
    })?;
    let custom_id = match input.str("custom_id")? {
        None => String::new(),
        Some(text) => ids::normalize_custom_id(text).ok_or_else(|| {
            invalid(
                "custom_id",
                "at most 256 bytes without control characters",
                input.raw("custom_id"),
            )
        })?,
    };
    let version_build = short_text(input, "version_build")?;
    let version_name = match short_text(input, "version_name")?.as_str() {
        "" => None,
        // `builtin` is the bundle shipped in the native build: record the native version.
        "builtin" => Some(version_build.clone()).filter(|v| !v.is_empty()),
        name => Some(name.to_owned()),
    };
    let default_channel = input.name("defaultChannel")?;
    Ok(DeviceBody {
        app_id,
        device_id,
        report: DeviceReport {
            custom_id,
            version_name,
            version_build,
            os_version: short_text(input, "version_os")?,
            plugin_version: short_text(input, "plugin_version")?,
            platform,
            is_prod: input.bool("is_prod")?.unwrap_or(true),
            is_emulator: input.bool("is_emulator")?.unwrap_or(false),
            default_channel,
        },
    })
}

/// Records a check-in; `false` when the app is unknown (and nothing was stored).
pub fn record_check_in(state: &AppState, device: &DeviceBody) -> Result<bool, ApiError> {
    let outcome = state.store.upsert_device(
        &device.app_id,
        &device.device_id,
        &device.report,
        state.clock.now(),
        state.touch_interval,
    )?;
    Ok(outcome != Upsert::AppNotFound)
}

struct StatsEvent {
    device: DeviceBody,
    action: String,
}

fn parse_event(fields: Map<String, Value>) -> Result<StatsEvent, ApiError> {
    let input = Input::from_map(fields);
    let device = parse_device_body(&input)?;
    let action = input.required_str("action")?;
    if action.is_empty() || action.len() > 128 || ids::has_control(action) {
        return Err(invalid(
            "action",
            "1 to 128 bytes without control characters",
            input.raw("action"),
        ));
    }
    Ok(StatsEvent {
        device,
        action: action.to_owned(),
    })
}

/// `POST /stats`: one event or an array of events of one app. Every event is validated before
/// any is recorded, so that a bad event changes nothing.
async fn stats(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let bytes = super::body(req.headers(), payload, &state).await?;
    let not_an_object = || {
        ApiError::new(Code::InvalidJsonBody)
            .message("Invalid JSON body: expected an event object or an array of them")
    };
    let (is_array, objects) = match parse_json(req.headers(), &bytes)? {
        Value::Object(fields) => (false, vec![fields]),
        Value::Array(items) => {
            let objects = items
                .into_iter()
                .map(|item| match item {
                    Value::Object(fields) => Ok(fields),
                    _ => Err(not_an_object()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            (true, objects)
        }
        _ => return Err(not_an_object()),
    };
    let events = objects
        .into_iter()
        .enumerate()
        .map(|(index, fields)| {
            parse_event(fields).map_err(|e| if is_array { e.info("index", index) } else { e })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(first) = events.first() {
        if events
            .iter()
            .any(|e| e.device.app_id != first.device.app_id)
        {
            return Err(ApiError::new(Code::InvalidJsonBody).message(
                "Invalid JSON body: all events of one request must have the same app_id",
            ));
        }
    }

    let mut results = Vec::with_capacity(events.len());
    for event in &events {
        // A failure report says the device could not apply something: it is not a sign of life
        // that should refresh the registry.
        if !event.action.ends_with("_fail") && !record_check_in(&state, &event.device)? {
            return Ok(app_not_found());
        }
        results.push(json!({"status": "ok"}));
    }
    if events.iter().all(|e| e.action.ends_with("_fail")) {
        // Nothing was recorded, but an unknown app is still reported as such.
        if let Some(first) = events.first() {
            if state.store.app(&first.device.app_id)?.is_none() {
                return Ok(app_not_found());
            }
        }
    }
    Ok(if is_array {
        HttpResponse::Ok().json(json!({"status": "ok", "results": results}))
    } else {
        HttpResponse::Ok().json(json!({"status": "ok"}))
    })
}
