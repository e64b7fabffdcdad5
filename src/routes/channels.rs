//! `/channel`: update channels of an app (spec section 4).

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::input::{invalid, Input};
use super::{body_or_query_input, json_input, needs, ok, resource, visible_app, Authorized};
use crate::error::{ApiError, Code, Field};
use crate::ids;
use crate::model::{Channel, ChannelPatch, DisableAutoUpdate};
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
    );
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
        "created_at": format_micros(channel.created_at),
        "updated_at": format_micros(channel.updated_at),
    })
}

fn parse_patch(input: &Input) -> Result<ChannelPatch, ApiError> {
    let version = match input.raw(Field::Version) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(name)) if ids::is_valid_name(name) => Some(Some(name.clone())),
        Some(other) => {
            return Err(invalid(
                Field::Version,
                "a bundle version name or null",
                Some(other),
            ));
        }
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
    })
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
    visible_app(&state, &caller, &app_id)?;
    let now = state.clock.now();
    let (app, channel_name, written) = (app_id.clone(), name.clone(), patch.clone());
    let upserted = off_workers(&state.store, move |store| {
        store.upsert_channel(&app, &channel_name, &written, now)
    });
    let (status, channel) = match upserted.await? {
        UpsertChannel::Created(channel) => (actix_web::http::StatusCode::CREATED, channel),
        UpsertChannel::Updated(channel) => (actix_web::http::StatusCode::OK, channel),
        UpsertChannel::AppNotFound => {
            return Err(ApiError::new(Code::AppNotFound).info("app_id", app_id))
        }
        UpsertChannel::VersionNotFound => {
            let version = patch.version.flatten().unwrap_or_default();
            return Err(ApiError::new(Code::VersionNotFound).info("version", version));
        }
    };
    Ok(
        HttpResponse::build(status)
            .json(json!({"status": "ok", "channel": channel_json(&channel)})),
    )
}

async fn get_channels(
    caller: Authorized<needs::Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let name = input.name(Field::Channel)?;
    visible_app(&state, &caller, &app_id)?;
    match name {
        Some(name) => {
            let channel = state
                .store
                .current()?
                .channel(&app_id, &name)?
                .ok_or_else(|| ApiError::new(Code::ChannelNotFound).info("channel", name))?;
            Ok(HttpResponse::Ok().json(channel_json(&channel)))
        }
        None => {
            let channels: Vec<Value> = state
                .store
                .current()?
                .channels(&app_id)?
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
    visible_app(&state, &caller, &app_id)?;
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
