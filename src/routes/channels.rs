//! `/channel`: update channels of an app (spec section 4).

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::input::{invalid, Input};
use super::{body_or_query_input, json_input, needs, ok, resource, visible_app, Authorized};
use crate::error::{ApiError, Code, Field};
use crate::ids;
use crate::model::{Channel, ChannelPatch, DisableAutoUpdate, GuardAction, RolloutGuard};
use crate::state::AppState;
use crate::store::off_workers;
use crate::store::{DeleteOutcome, UpsertChannel};
use crate::timefmt::format_micros;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        resource("/channel")
            .route(crate::routes::get().to(get_channels))
            .route(web::post().to(upsert_channel))
            .route(web::delete().to(delete_channel)),
    )
    .service(resource("/channel/rollout").route(web::post().to(end_rollout)));
}

pub fn disable_auto_update_str(value: DisableAutoUpdate) -> &'static str {
    match value {
        DisableAutoUpdate::Major => "major",
        DisableAutoUpdate::Minor => "minor",
        DisableAutoUpdate::Patch => "patch",
        DisableAutoUpdate::VersionNumber => "version_number",
        DisableAutoUpdate::None => "none",
    }
}

pub fn channel_json(channel: &Channel) -> Value {
    json!({
        "id": channel.id,
        "app_id": channel.app_id,
        "name": channel.name,
        "version": channel.version,
        "public": channel.public,
        "ios": channel.ios,
        "android": channel.android,
        "electron": channel.electron,
        "allow_device_self_set": channel.allow_device_self_set,
        "allow_emulator": channel.allow_emulator,
        "allow_device": channel.allow_device,
        "allow_dev": channel.allow_dev,
        "allow_prod": channel.allow_prod,
        "disableAutoUpdate": disable_auto_update_str(channel.disable_auto_update),
        "disableAutoUpdateUnderNative": channel.disable_auto_update_under_native,
        "rollout_id": channel.rollout.as_ref().map(|r| r.id),
        "rollout_version": channel.rollout.as_ref().map(|r| &r.version),
        "rollout_percentage_bps": channel.rollout.as_ref().map_or(0, |r| r.percentage_bps),
        "rollout_paused": channel.rollout.as_ref().is_some_and(|r| r.paused),
        "rollout_started_at": channel.rollout.as_ref().map(|r| format_micros(r.started_at)),
        "rollout_guard": channel.rollout.as_ref().and_then(|r| r.guard.as_ref()).map(guard_json),
        "rollout_guard_triggered_at": channel
            .rollout
            .as_ref()
            .and_then(|r| r.guard_triggered_at)
            .map(format_micros),
        "created_at": format_micros(channel.created_at),
        "updated_at": format_micros(channel.updated_at),
    })
}

/// A rollout as the audit log shows it.
pub fn rollout_json(rollout: &crate::model::Rollout) -> Value {
    json!({
        "id": rollout.id,
        "version": rollout.version,
        "percentage_bps": rollout.percentage_bps,
        "paused": rollout.paused,
        "guard": rollout.guard.as_ref().map(guard_json),
    })
}

pub fn guard_json(guard: &RolloutGuard) -> Value {
    json!({
        "threshold_bps": guard.threshold_bps,
        "confidence": f64::from(guard.confidence_bps) / 10_000.0,
        "min_attempts": guard.min_attempts,
        "min_failures": guard.min_failures,
        "action": guard.action.as_str(),
        "cooldown": format!("{}s", guard.cooldown / 1_000_000),
    })
}

/// An integer from 0 to 10,000 (a share or a rate, in basis points).
fn basis_points(value: &Value) -> Option<u16> {
    value
        .as_u64()
        .filter(|bps| *bps <= u64::from(crate::rollout::MAX_BPS))
        .map(|bps| bps as u16)
}

/// `rollout_guard`: an object, `null` (no guard), or absent.
fn parse_guard(input: &Input) -> Result<Option<Option<RolloutGuard>>, ApiError> {
    let value = match input.raw(Field::RolloutGuard) {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(None)),
        Some(value) => value,
    };
    let expected = "null or {threshold_bps: 0-10000, confidence: 0-1 exclusive (0.95), \
                    min_attempts, min_failures: counts (0), action: pause|rollback|notify \
                    (pause), cooldown: a duration (1h)}";
    let refuse = || invalid(Field::RolloutGuard, expected, Some(value));
    let Value::Object(fields) = value else {
        return Err(refuse());
    };
    const KNOWN: [&str; 6] = [
        "threshold_bps",
        "confidence",
        "min_attempts",
        "min_failures",
        "action",
        "cooldown",
    ];
    if fields.keys().any(|key| !KNOWN.contains(&key.as_str())) {
        return Err(refuse());
    }
    let count = |key: &str| match fields.get(key) {
        None => Some(0),
        Some(value) => value.as_u64(),
    };
    let threshold_bps = fields.get("threshold_bps").and_then(basis_points);
    let confidence = match fields.get("confidence") {
        None => Some(0.95),
        Some(value) => value.as_f64().filter(|c| *c > 0.0 && *c < 1.0),
    };
    let action = match fields.get("action") {
        None => Some(GuardAction::Pause),
        Some(value) => value.as_str().and_then(GuardAction::parse),
    };
    let cooldown = match fields.get("cooldown") {
        None => Some(3_600_000_000),
        Some(value) => value
            .as_str()
            .and_then(|text| text.parse::<crate::config::Duration>().ok())
            .map(crate::config::Duration::micros),
    };
    match (
        threshold_bps,
        confidence,
        count("min_attempts"),
        count("min_failures"),
        action,
        cooldown,
    ) {
        (
            Some(threshold),
            Some(confidence),
            Some(min_attempts),
            Some(min_failures),
            Some(action),
            Some(cooldown),
        ) => Ok(Some(Some(RolloutGuard {
            threshold_bps: threshold,
            confidence_bps: ((confidence * 10_000.0).round() as u16).clamp(1, 9_999),
            min_attempts,
            min_failures,
            action,
            cooldown,
        }))),
        _ => Err(refuse()),
    }
}

/// The rollout a write applies to (`rollout_id`, as `GET /channel` shows it), if it names one:
/// a client acting on what it last read, never on a rollout started since.
fn rollout_id(input: &Input) -> Result<Option<u64>, ApiError> {
    match input.raw(Field::RolloutId) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|id| id > 0) => Ok(n.as_u64()),
        Some(other) => Err(invalid(
            Field::RolloutId,
            "a rollout id, a positive integer",
            Some(other),
        )),
    }
}

fn rollout_changed(named: u64) -> ApiError {
    ApiError::new(Code::RolloutChanged).info("rollout_id", named)
}

/// A bundle's version name, `null`, or absent.
fn version_or_null(input: &Input, field: Field) -> Result<Option<Option<String>>, ApiError> {
    match input.raw(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(name)) if ids::is_valid_name(name) => Ok(Some(Some(name.clone()))),
        Some(other) => Err(invalid(field, "a bundle version name or null", Some(other))),
    }
}

fn parse_patch(input: &Input) -> Result<ChannelPatch, ApiError> {
    let version = version_or_null(input, Field::Version)?;
    let rollout_percentage_bps = match input.raw(Field::RolloutPercentageBps) {
        None => None,
        Some(value) => Some(basis_points(value).ok_or_else(|| {
            invalid(
                Field::RolloutPercentageBps,
                "basis points, an integer from 0 to 10000",
                Some(value),
            )
        })?),
    };
    let disable_auto_update = input.parsed(
        Field::DisableAutoUpdate,
        "one of major, minor, patch, version_number, none",
        DisableAutoUpdate::parse,
    )?;
    Ok(ChannelPatch {
        version,
        public: input.bool(Field::Public)?,
        ios: input.bool(Field::Ios)?,
        android: input.bool(Field::Android)?,
        electron: input.bool(Field::Electron)?,
        allow_device_self_set: input.bool(Field::AllowDeviceSelfSet)?,
        allow_emulator: input.bool(Field::AllowEmulator)?,
        allow_device: input.bool(Field::AllowDevice)?,
        allow_dev: input.bool(Field::AllowDev)?,
        allow_prod: input.bool(Field::AllowProd)?,
        disable_auto_update,
        disable_auto_update_under_native: input.bool(Field::DisableAutoUpdateUnderNative)?,
        rollout_version: version_or_null(input, Field::RolloutVersion)?,
        rollout_percentage_bps,
        rollout_paused: input.bool(Field::RolloutPaused)?,
        promote_rollout: false,
        rollout_guard: parse_guard(input)?,
        guard_triggered: None,
        if_rollout: rollout_id(input)?,
    })
}

/// Writes a patch through the store and answers the channel, or the refusal.
async fn write_patch(
    state: &AppState,
    caller: &super::Caller,
    app_id: String,
    name: String,
    patch: ChannelPatch,
    named_by_client: bool,
) -> Result<HttpResponse, ApiError> {
    let app = app_id.clone();
    let change = super::change_by(caller, state);
    // A refusal of the rollout the client named is a change since it read; others have none.
    let named = patch.if_rollout.filter(|_| named_by_client);
    let upserted = off_workers(&state.store, move |store| {
        store.upsert_channel(&app, &name, &patch, change)
    });
    let (status, channel) = match upserted.await? {
        UpsertChannel::Created(channel) => (actix_web::http::StatusCode::CREATED, channel),
        UpsertChannel::Updated(channel) => (actix_web::http::StatusCode::OK, channel),
        UpsertChannel::AppNotFound => {
            return Err(ApiError::new(Code::AppNotFound).info("app_id", app_id))
        }
        UpsertChannel::VersionNotFound(version) => {
            return Err(ApiError::new(Code::VersionNotFound).info("version", version));
        }
        UpsertChannel::NoRollout => {
            return Err(named.map_or(ApiError::new(Code::NoRollout), rollout_changed))
        }
    };
    Ok(
        HttpResponse::build(status)
            .json(json!({"status": "ok", "channel": channel_json(&channel)})),
    )
}

/// `POST /channel/rollout {"app_id", "channel", "action": "promote"|"abort"}`: ends a rollout;
/// `promote` makes its bundle the channel's, `abort` drops it.
async fn end_rollout(
    caller: Authorized<needs::Write>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let name = input.required_name(Field::Channel)?;
    let promote = input
        .parsed(Field::Action, "promote or abort", |action| match action {
            "promote" => Some(true),
            "abort" => Some(false),
            _ => None,
        })?
        .ok_or_else(|| super::input::missing(Field::Action))?;
    visible_app(&state, &caller, &app_id).await?;
    // Ends a rollout of a channel that exists: never creates one.
    let (app, wanted) = (app_id.clone(), name.clone());
    let channel = off_workers(&state.store, move |store| store.channel(&app, &wanted)).await?;
    let channel = channel
        .ok_or_else(|| ApiError::new(Code::ChannelNotFound).info("channel", name.as_str()))?;
    let named = rollout_id(&input)?;
    let Some(rollout) = &channel.rollout else {
        return Err(named.map_or(ApiError::new(Code::NoRollout), rollout_changed));
    };
    if let Some(named) = named.filter(|named| *named != rollout.id) {
        return Err(rollout_changed(named));
    }
    // Ends the rollout read here and no other: one started meanwhile, or a channel deleted
    // meanwhile (which the upsert would create again), answers no_rollout.
    let patch = ChannelPatch {
        promote_rollout: promote,
        rollout_version: (!promote).then_some(None),
        if_rollout: Some(rollout.id),
        ..ChannelPatch::default()
    };
    write_patch(&state, &caller, app_id, name, patch, named.is_some()).await
}

async fn upsert_channel(
    caller: Authorized<needs::Write>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let name = input.required_name(Field::Channel)?;
    let patch = parse_patch(&input)?;
    visible_app(&state, &caller, &app_id).await?;
    write_patch(&state, &caller, app_id, name, patch, true).await
}

async fn get_channels(
    caller: Authorized<needs::Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let name = input.name(Field::Channel)?;
    visible_app(&state, &caller, &app_id).await?;
    match name {
        Some(name) => {
            let channel = crate::store::read(&state.store, {
                let (app_id, name) = (app_id.clone(), name.clone());
                move |store| store.channel(&app_id, &name)
            })
            .await?
            .ok_or_else(|| ApiError::new(Code::ChannelNotFound).info("channel", name))?;
            Ok(HttpResponse::Ok().json(channel_json(&channel)))
        }
        None => {
            let channels: Vec<Value> =
                crate::store::read(&state.store, move |store| store.channels(&app_id))
                    .await?
                    .iter()
                    .map(channel_json)
                    .collect();
            Ok(HttpResponse::Ok().json(channels))
        }
    }
}

async fn delete_channel(
    caller: Authorized<needs::Write>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = body_or_query_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let name = input.required_name(Field::Channel)?;
    visible_app(&state, &caller, &app_id).await?;
    let change = super::change_by(&caller, &state);
    let (app, channel) = (app_id.clone(), name.clone());
    match off_workers(&state.store, move |store| {
        store.delete_channel(&app, &channel, change)
    })
    .await?
    {
        DeleteOutcome::Deleted => Ok(ok()),
        DeleteOutcome::NotFound | DeleteOutcome::InUse => {
            Err(ApiError::new(Code::ChannelNotFound).info("channel", name))
        }
    }
}
