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
use crate::model::{Channel, DeviceReport, Platform};
use crate::resolve::{self, coerce_native_version, semver_error, Answer, Kind, Refusal};
use crate::state::AppState;
use crate::store::{CheckIn, Upsert};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resource("/stats").route(web::post().to(stats)))
        .service(resource("/updates").route(web::post().to(updates)))
        .service(
            resource("/channel_self")
                .route(web::post().to(channel_self_set))
                .route(web::put().to(channel_self_get))
                .route(web::get().to(channel_self_list))
                .route(web::delete().to(channel_self_unset)),
        );
}

/// A refusal as the plugin reads it: HTTP 200 `{"error", "message", "kind"}`.
pub fn refusal(refusal: &Refusal) -> HttpResponse {
    HttpResponse::Ok().json(refusal_json(refusal))
}

pub fn app_not_found() -> HttpResponse {
    refusal(&Refusal::new(
        "app_not_found",
        "App not found",
        Kind::Failed,
    ))
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

/// An optional short field: absent, `null` and `""` all mean "not given", as the plugin sends
/// `""` for what it does not know.
fn optional_text(input: &Input, field: &str) -> Result<Option<String>, ApiError> {
    Ok(Some(short_text(input, field)?).filter(|text| !text.is_empty()))
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
            install_source: optional_text(input, "install_source")?,
            key_id: optional_text(input, "key_id")?,
        },
    })
}

/// Records check-ins, in order; `false` when the app is unknown (and nothing was stored). The
/// store settles those that write nothing from one read; the others go through the check-in
/// writer, which shares one transaction among the check-ins of concurrent requests.
pub async fn record_check_ins(state: &AppState, devices: &[&DeviceBody]) -> Result<bool, ApiError> {
    let now = state.clock.now();
    let check_ins: Vec<CheckIn> = devices
        .iter()
        .map(|device| CheckIn {
            app_id: device.app_id.clone(),
            device_id: device.device_id.clone(),
            report: device.report.clone(),
            now,
            touch_interval: state.touch_interval,
        })
        .collect();
    let settled = state.store.settle_check_ins(&check_ins)?;
    if settled.contains(&Some(Upsert::AppNotFound)) {
        return Ok(false);
    }
    let writes: Vec<CheckIn> = check_ins
        .into_iter()
        .zip(settled)
        .filter_map(|(check_in, outcome)| outcome.is_none().then_some(check_in))
        .collect();
    if writes.is_empty() {
        return Ok(true);
    }
    let outcomes = state.check_in_writer.write_all(writes).await?;
    Ok(!outcomes.contains(&Upsert::AppNotFound))
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
    super::plugin_allowed(&req, &state)?;
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

    // A failure report says the device could not apply something: it is not a sign of life
    // that should refresh the registry.
    let alive: Vec<&DeviceBody> = events
        .iter()
        .filter(|e| !e.action.ends_with("_fail"))
        .map(|e| &e.device)
        .collect();
    if !record_check_ins(&state, &alive).await? {
        return Ok(app_not_found());
    }
    let results = vec![json!({"status": "ok"}); events.len()];
    if events.iter().all(|e| e.action.ends_with("_fail")) {
        // Nothing was recorded, but an unknown app is still reported as such.
        if let Some(first) = events.first() {
            if !state.store.app_exists(&first.device.app_id)? {
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

/// A plugin call's body (read once the client is within its rate limit) and the device it
/// describes.
async fn device_call(
    req: &HttpRequest,
    payload: Payload,
    state: &AppState,
) -> Result<(Input, DeviceBody), ApiError> {
    super::plugin_allowed(req, state)?;
    let input = super::json_input(req, payload, state).await?;
    let device = parse_device_body(&input)?;
    Ok((input, device))
}

/// `POST /updates`: records the check-in, then answers what the device should run.
async fn updates(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, device) = device_call(&req, payload, &state).await?;
    // Unknown apps and unreadable native versions store nothing; an unknown app is the answer
    // even when the version is unreadable too.
    let Some(native) = coerce_native_version(&device.report.version_build) else {
        if !state.store.app_exists(&device.app_id)? {
            return Ok(app_not_found());
        }
        return Ok(refusal(&semver_error(&device.report.version_build)));
    };
    // The check-in itself says when the app is unknown: no lookup of its own on this hot path.
    if !record_check_ins(&state, &[&device]).await? {
        return Ok(app_not_found());
    }
    let overrides = state.store.overrides(&device.app_id, &device.device_id)?;
    let answer = resolve::resolve(
        state.store.as_ref(),
        &device.app_id,
        &device.report,
        &native,
        &overrides,
        &mut resolve::Trace::off(),
    )?;
    Ok(HttpResponse::Ok().json(answer_json(&answer)))
}

/// The body of an `/updates` answer: the bundle to install, or the refusal.
pub fn answer_json(answer: &Answer) -> Value {
    match answer {
        Answer::Update { bundle, .. } => json!({
            "version": bundle.version,
            "url": bundle.external_url,
            "checksum": bundle.checksum,
            "session_key": bundle.session_key.as_deref().unwrap_or_default(),
        }),
        Answer::Refused { refusal, .. } => refusal_json(refusal),
    }
}

fn refusal_json(refusal: &Refusal) -> Value {
    json!({"error": refusal.error, "message": refusal.message, "kind": refusal.kind.as_str()})
}

fn channel_not_found() -> HttpResponse {
    refusal(&Refusal::new(
        "channel_not_found",
        "Channel not found",
        Kind::Failed,
    ))
}

/// `POST /channel_self`: may the device choose this channel? Nothing is stored: current plugins
/// keep the choice and send it as `defaultChannel`.
async fn channel_self_set(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (input, device) = device_call(&req, payload, &state).await?;
    let name = input.required_name("channel")?;
    if !state.store.app_exists(&device.app_id)? {
        return Ok(app_not_found());
    }
    let Some(channel) = state.store.channel(&device.app_id, &name)? else {
        return Ok(channel_not_found());
    };
    if channel.public {
        return Ok(refusal(&Refusal::new(
            "public_channel_self_set_not_allowed",
            "A public channel cannot be chosen: it is the default already",
            Kind::Failed,
        )));
    }
    if !channel.allow_device_self_set {
        return Ok(refusal(&Refusal::new(
            "channel_self_set_not_allowed",
            "This channel does not allow devices to choose it",
            Kind::Failed,
        )));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ok", "allowSet": true})))
}

/// `PUT /channel_self`: the channel the device is on: its override, else its default channel
/// or the public channel.
async fn channel_self_get(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, device) = device_call(&req, payload, &state).await?;
    let store = state.store.as_ref();
    if !store.app_exists(&device.app_id)? {
        return Ok(app_not_found());
    }
    let overrides = store.overrides(&device.app_id, &device.device_id)?;
    if let Some(name) = &overrides.channel {
        if let Some(channel) = store.channel(&device.app_id, name)? {
            return Ok(HttpResponse::Ok().json(json!({
                "channel": channel.name,
                "status": "override",
                "allowSet": channel.allow_device_self_set,
            })));
        }
    }
    let default = match &device.report.default_channel {
        Some(name) => store.channel(&device.app_id, name)?,
        None => None,
    };
    let channel = match default {
        Some(channel) => Some(channel),
        None => resolve::public_channel(store, &device.app_id, device.report.platform)?,
    };
    Ok(match channel {
        Some(channel) => HttpResponse::Ok().json(json!({
            "channel": channel.name,
            "status": "default",
            "allowSet": channel.allow_device_self_set,
        })),
        None => refusal(&Refusal::new(
            "no_channel",
            "no default channel or override",
            Kind::Failed,
        )),
    })
}

/// Whether a device of this kind may pick the channel (or fall back to it, when public).
fn selectable(
    channel: &Channel,
    platform: Option<Platform>,
    is_emulator: bool,
    is_prod: bool,
) -> bool {
    (channel.allow_device_self_set || channel.public)
        && platform.is_none_or(|p| channel.allows_platform(p))
        && if is_emulator {
            channel.allow_emulator
        } else {
            channel.allow_device
        }
        && if is_prod {
            channel.allow_prod
        } else {
            channel.allow_dev
        }
}

/// `GET /channel_self?app_id&platform&is_emulator&is_prod`: the channels a device may pick.
async fn channel_self_list(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::plugin_allowed(&req, &state)?;
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let platform = match input.str("platform")? {
        None => None,
        Some(text) => Some(Platform::parse(text).ok_or_else(|| {
            invalid(
                "platform",
                "ios, android or electron",
                input.raw("platform"),
            )
        })?),
    };
    let is_emulator = input.bool("is_emulator")?.unwrap_or(false);
    let is_prod = input.bool("is_prod")?.unwrap_or(true);
    if !state.store.app_exists(&app_id)? {
        return Ok(app_not_found());
    }
    let channels: Vec<Value> = state
        .store
        .channels(&app_id)?
        .iter()
        .filter(|channel| selectable(channel, platform, is_emulator, is_prod))
        .map(|channel| {
            json!({
                "id": channel.id,
                "name": channel.name,
                "public": channel.public,
                "allow_self_set": channel.allow_device_self_set,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(channels))
}

/// `DELETE /channel_self`: the device goes back to its default. Nothing is stored server-side
/// for a self-set channel, so there is nothing to remove; the request is still validated.
async fn channel_self_unset(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::plugin_allowed(&req, &state)?;
    let input = super::body_or_query_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    input.required_device_id()?;
    if !state.store.app_exists(&app_id)? {
        return Ok(app_not_found());
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ok"})))
}
