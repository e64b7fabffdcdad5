//! Links and unlinks: `POST`/`DELETE /device` for one device, `/device/bulk` for up to 1,000 at
//! once, all through the override writer (durable when answered).

use super::*;
use crate::error::Field;

/// Writes (or, with `dry_run`, previews) a change of overrides, and renders the store's
/// refusals as the contract's errors; shared by the single and the bulk link and unlink. An
/// applied write is durable when this returns (see `DeviceOverrides::apply_overrides`).
pub(super) async fn write_overrides(
    state: &AppState,
    write: OverrideWrite,
    dry_run: bool,
) -> Result<Vec<OverrideChange>, ApiError> {
    let (channel, version) = match &write.action {
        OverrideAction::Link { channel, version } => (channel.clone(), version.clone()),
        OverrideAction::Unlink | OverrideAction::UnlinkChannel => (None, None),
    };
    let app_id = write.app_id.clone();
    let outcome = if dry_run {
        off_workers(&state.store, move |store| store.preview_overrides(&write)).await?
    } else {
        state.store.current()?.apply_overrides(write).await?
    };
    match outcome {
        BulkOutcome::Applied(changes) => Ok(changes),
        BulkOutcome::AppNotFound => Err(crate::routes::app_not_found(&app_id)),
        BulkOutcome::ChannelNotFound => {
            Err(ApiError::new(Code::ChannelNotFound).info("channel", channel.unwrap_or_default()))
        }
        BulkOutcome::VersionNotFound => {
            Err(ApiError::new(Code::VersionNotFound)
                .info("version_id", version.unwrap_or_default()))
        }
    }
}

/// What a link request asks for; at least one of the two.
pub(super) fn link_action(
    channel: Option<String>,
    version: Option<String>,
) -> Result<OverrideAction, ApiError> {
    if channel.is_none() && version.is_none() {
        return Err(ApiError::new(Code::MissingChannelOrVersion));
    }
    Ok(OverrideAction::Link { channel, version })
}

pub(super) async fn link_device(
    caller: Authorized<needs::DevicesWrite>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_id = input.required_device_id()?;
    let (channel, version) = (input.name(Field::Channel)?, input.name(Field::VersionId)?);
    visible_app(&state, &caller, &app_id).await?;
    // After the app: the contract checks the app before what is linked to it.
    let action = link_action(channel, version)?;
    let write = OverrideWrite {
        app_id,
        device_ids: vec![device_id],
        action,
        change: crate::routes::change_by(&caller, &state),
    };
    write_overrides(&state, write, false).await?;
    Ok(ok())
}

pub(super) async fn unlink_device(
    caller: Authorized<needs::DevicesWrite>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = body_or_query_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_id = input.required_device_id()?;
    visible_app(&state, &caller, &app_id).await?;
    let write = OverrideWrite {
        app_id,
        device_ids: vec![device_id],
        action: OverrideAction::Unlink,
        change: crate::routes::change_by(&caller, &state),
    };
    write_overrides(&state, write, false).await?;
    Ok(ok())
}

/// Devices one bulk call may change.
pub const MAX_BULK: usize = 1000;

/// `device_ids` of a bulk call: 1 to 1000 valid ids, lowercased, duplicates dropped.
pub(super) fn parse_device_ids(input: &Input) -> Result<Vec<String>, ApiError> {
    let bad = |expected: &str| invalid(Field::DeviceIds, expected, input.raw(Field::DeviceIds));
    let items = match input.raw(Field::DeviceIds) {
        None | Some(serde_json::Value::Null) => {
            return Err(crate::routes::input::missing(Field::DeviceIds))
        }
        Some(serde_json::Value::Array(items)) => items,
        Some(_) => return Err(bad("an array of device ids")),
    };
    if items.is_empty() || items.len() > MAX_BULK {
        return Err(bad("1 to 1000 device ids"));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let id = item
            .as_str()
            .and_then(ids::normalize_device_id)
            .ok_or_else(|| {
                bad("device ids of 1 to 128 bytes without control characters").info("index", index)
            })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

pub(super) fn overrides_json(overrides: &crate::model::Overrides) -> serde_json::Value {
    json!({"channel": overrides.channel, "version_override": overrides.version})
}

pub(super) fn bulk_answer(changes: &[crate::store::OverrideChange], dry_run: bool) -> HttpResponse {
    let results: Vec<serde_json::Value> = changes
        .iter()
        .map(|change| {
            json!({
                "device_id": change.device_id,
                "changed": change.changed(),
                "before": overrides_json(&change.before),
                "after": overrides_json(&change.after),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({"status": "ok", "dry_run": dry_run, "results": results}))
}

/// `POST /device/bulk {"app_id", "device_ids", "channel"?, "version_id"?, "dry_run"?}`: links up to
/// 1000 devices at once, all or none, after validating the whole request.
pub(super) async fn bulk_link(
    caller: Authorized<needs::DevicesWrite>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_ids = parse_device_ids(&input)?;
    let (channel, version) = (input.name(Field::Channel)?, input.name(Field::VersionId)?);
    let dry_run = input.bool(Field::DryRun)?.unwrap_or(false);
    visible_app(&state, &caller, &app_id).await?;
    let action = link_action(channel, version)?;
    let write = OverrideWrite {
        app_id,
        device_ids,
        action,
        change: crate::routes::change_by(&caller, &state),
    };
    let changes = write_overrides(&state, write, dry_run).await?;
    Ok(bulk_answer(&changes, dry_run))
}

/// `DELETE /device/bulk {"app_id", "device_ids", "dry_run"?}`: removes the overrides of up to 1000
/// devices at once, all or none.
pub(super) async fn bulk_unlink(
    caller: Authorized<needs::DevicesWrite>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_ids = parse_device_ids(&input)?;
    let dry_run = input.bool(Field::DryRun)?.unwrap_or(false);
    visible_app(&state, &caller, &app_id).await?;
    let write = OverrideWrite {
        app_id,
        device_ids,
        action: OverrideAction::Unlink,
        change: crate::routes::change_by(&caller, &state),
    };
    let changes = write_overrides(&state, write, dry_run).await?;
    Ok(bulk_answer(&changes, dry_run))
}
