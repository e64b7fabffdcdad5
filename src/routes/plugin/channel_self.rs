//! `/channel_self`: a device choosing its channel, as Capgo answers each plugin release
//! (`plugin_runtime/plugins/channel_self.ts`). Plugins from 7.34 keep the channel they set and
//! send it as `defaultChannel`, so nothing is stored for them; older ones expect the server to
//! keep it, as the device's channel override (shown as `channel` by `GET /device`). `PUT`
//! answers the channel `/updates` would use, so that the two never disagree: the plugin keeps
//! the channel `PUT` names and sends it back as `defaultChannel`.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::DeviceBody;
use super::{app_not_found, device_call, parse_device_body, record_check_ins, refusal_with};
use crate::error::{ApiError, Field};
use crate::model::{Actor, Channel, Overrides, Platform};
use crate::plugin_version;
use crate::resolve::{self, Source};
use crate::routes::input::Input;
use crate::state::AppState;
use crate::store::{BulkOutcome, Change, OverrideAction, OverrideWrite};

fn channel_not_found(extra: &[(&str, &str)]) -> HttpResponse {
    refusal_with("channel_not_found", "Cannot find channel", extra)
}

fn cannot_override() -> HttpResponse {
    refusal_with(
        "cannot_override",
        "Cannot change device override current channel don't allow it",
        &[],
    )
}

/// What a `/channel_self` call reads of the store about one device, in one trip (see
/// [`crate::store::read`]); `None` when the app does not exist.
struct Seen {
    /// The device's overrides (empty for a plugin that keeps its channel itself).
    overrides: Overrides,
    /// Whether its channel override is one devices may not leave (an operator linked it to a
    /// channel that does not allow self-set).
    fixed: bool,
    /// The channel the call names, if it names one.
    named: Option<Channel>,
}

async fn seen(
    state: &AppState,
    device: &DeviceBody,
    named: Option<String>,
) -> Result<Option<Seen>, ApiError> {
    let (app_id, device_id) = (device.app_id.clone(), device.device_id.clone());
    let stored_by_server = !plugin_version::keeps_channel_locally(&device.report.plugin_version);
    let seen = crate::store::read(&state.store, move |store| {
        if !store.app_exists(&app_id)? {
            return Ok(None);
        }
        let overrides = if stored_by_server {
            store.overrides(&app_id, &device_id)?
        } else {
            Overrides::default()
        };
        let fixed = match &overrides.channel {
            Some(current) => store
                .channel(&app_id, current)?
                .is_some_and(|channel| !channel.allow_device_self_set),
            None => false,
        };
        let named = match named {
            Some(name) => store.channel(&app_id, &name)?,
            None => None,
        };
        Ok(Some(Seen {
            overrides,
            fixed,
            named,
        }))
    })
    .await?;
    Ok(seen)
}

/// Changes the device's channel override, as a plugin before 7.34 asks it to; `None` when the
/// change was applied, else the refusal (the channel was deleted meanwhile).
async fn write_channel_override(
    state: &AppState,
    device: &DeviceBody,
    action: OverrideAction,
) -> Result<Option<HttpResponse>, ApiError> {
    let write = OverrideWrite {
        app_id: device.app_id.clone(),
        device_ids: vec![device.device_id.clone()],
        action,
        change: Change {
            actor: Actor::Device,
            at: state.clock.now(),
        },
    };
    Ok(match state.store.current()?.apply_overrides(write).await? {
        BulkOutcome::Applied(_) => None,
        BulkOutcome::AppNotFound => Some(app_not_found()),
        BulkOutcome::ChannelNotFound | BulkOutcome::VersionNotFound => Some(channel_not_found(&[])),
    })
}

/// The device's check-in (every successful `/channel_self` call is a sign of life), then `ok`.
async fn answer(
    state: &AppState,
    device: &DeviceBody,
    body: Value,
) -> Result<HttpResponse, ApiError> {
    if !record_check_ins(state, &[device]).await? {
        return Ok(app_not_found());
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /channel_self`: may the device choose this channel? A plugin from 7.34 keeps it;
/// for an older one the choice becomes the device's channel override (and choosing the
/// platform's public channel removes it).
pub async fn set(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (input, device) = device_call(&req, payload, &state).await?;
    let name = match input.str(Field::Channel)? {
        None | Some("") => {
            return Ok(refusal_with(
                "missing_channel",
                "Cannot find channel in body",
                &[],
            ))
        }
        Some(_) => input.required_name(Field::Channel)?,
    };
    let Some(seen) = seen(&state, &device, Some(name.clone())).await? else {
        return Ok(app_not_found());
    };
    let app_id = device.app_id.as_str();
    let stored_by_server = !plugin_version::keeps_channel_locally(&device.report.plugin_version);
    let overrides = seen.overrides;
    if stored_by_server && seen.fixed {
        return Ok(cannot_override());
    }
    let about: [(&str, &str); 2] = [("channel", &name), ("app_id", app_id)];
    let Some(channel) = seen.named else {
        return Ok(channel_not_found(&about));
    };
    if !channel.allow_device_self_set {
        return Ok(if channel.public {
            refusal_with(
                "public_channel_self_set_not_allowed",
                "This channel is public and does not allow device self-assignment. Unset the \
                 channel and the device will automatically use the public channel.",
                &about,
            )
        } else {
            refusal_with(
                "channel_self_set_not_allowed",
                "This channel does not allow devices to self associate",
                &about,
            )
        });
    }
    // Not in Capgo, which takes the channel and then answers `no_channel` on every update.
    if !channel.allows_platform(device.report.platform) {
        return Ok(refusal_with(
            "channel_self_set_not_allowed",
            "This channel does not allow devices of this platform",
            &about,
        ));
    }
    if !stored_by_server {
        return answer(&state, &device, json!({"status": "ok", "allowSet": true})).await;
    }
    // The platform's public channel is where the device goes without an override.
    let action = if channel.public {
        (overrides.channel.is_some()).then_some(OverrideAction::UnlinkChannel)
    } else {
        (overrides.channel.as_deref() != Some(name.as_str())).then(|| OverrideAction::Link {
            channel: Some(name.clone()),
            version: None,
        })
    };
    if let Some(action) = action {
        if let Some(refusal) = write_channel_override(&state, &device, action).await? {
            return Ok(refusal);
        }
    }
    answer(&state, &device, json!({"status": "ok"})).await
}

/// `PUT /channel_self`: the channel the device is on, as `/updates` chooses it from what the
/// device asks for: its usable `defaultChannel`, else the public channel (`"status":
/// "default"`). No channel is `channel_not_found`, whatever the reason, so that a private
/// channel's name is never confirmed. A plugin before 7.34 is answered its channel override
/// first (`"status": "override"`, with `allowSet`), as it does not keep what it is told; a later
/// one keeps any channel this answer names as its own default channel (from 8.47.9), so it is
/// never told an operator's link: it would keep asking for that channel once unlinked.
pub async fn get(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, device) = device_call(&req, payload, &state).await?;
    let keeps_channel = plugin_version::keeps_channel_locally(&device.report.plugin_version);
    let (app_id, device_id, report) = (
        device.app_id.clone(),
        device.device_id.clone(),
        device.report.clone(),
    );
    let chosen = crate::store::read(&state.store, move |store| {
        if !store.app_exists(&app_id)? {
            return Ok(None);
        }
        let overrides = if keeps_channel {
            Overrides::default()
        } else {
            store.overrides(&app_id, &device_id)?
        };
        let chosen = resolve::choose_channel(
            store,
            &app_id,
            &report,
            &overrides,
            &mut resolve::Trace::off(),
        )?;
        Ok(Some(chosen))
    })
    .await?;
    let Some(chosen) = chosen else {
        return Ok(app_not_found());
    };
    let body = match chosen {
        None => return Ok(channel_not_found(&[])),
        Some((channel, Source::ChannelOverride)) => json!({
            "channel": channel.name,
            "status": "override",
            "allowSet": channel.allow_device_self_set,
        }),
        // As Capgo answers it: no `allowSet` (iOS reads its absence as true).
        Some((channel, _)) => json!({"channel": channel.name, "status": "default"}),
    };
    answer(&state, &device, body).await
}

/// Whether a device of this kind may pick the channel (or fall back to it, when public).
fn selectable(
    channel: &Channel,
    platform: Option<Platform>,
    is_emulator: bool,
    is_prod: bool,
) -> bool {
    platform.map_or(channel.allow_device_self_set || channel.public, |p| {
        resolve::default_channel_usable(channel, p)
    }) && if is_emulator {
        channel.allow_emulator
    } else {
        channel.allow_device
    } && if is_prod {
        channel.allow_prod
    } else {
        channel.allow_dev
    }
}

/// `GET /channel_self?app_id&platform&is_emulator&is_prod`: the channels a device may pick
/// (plugins send every field of their body in the query; the others are ignored).
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crate::routes::plugin_allowed(&req, &state)?;
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let platform = input.parsed(Field::Platform, "ios, android or electron", Platform::parse)?;
    let is_emulator = input.bool(Field::IsEmulator)?.unwrap_or(false);
    let is_prod = input.bool(Field::IsProd)?.unwrap_or(true);
    let channels = crate::store::read(&state.store, move |store| {
        if !store.app_exists(&app_id)? {
            return Ok(None);
        }
        store.channels(&app_id).map(Some)
    })
    .await?;
    let Some(channels) = channels else {
        return Ok(app_not_found());
    };
    let channels: Vec<Value> = channels
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

/// `DELETE /channel_self`: the device goes back to its default channel. Plugins from 7.34 do
/// this on their own (and send no request); for an older one the channel override it chose
/// is removed, unless it is on a channel devices may not leave (`cannot_override`). The
/// device is described by a JSON body (what plugins send) or the query string.
pub async fn unset(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    crate::routes::plugin_allowed(&req, &state)?;
    let input = crate::routes::body_or_query_input(&req, payload, &state).await?;
    let device = parse_device_body(&input)?;
    let Some(seen) = seen(&state, &device, None).await? else {
        return Ok(app_not_found());
    };
    if plugin_version::keeps_channel_locally(&device.report.plugin_version) {
        return answer(&state, &device, json!({"status": "ok"})).await;
    }
    if seen.overrides.channel.is_none() || seen.fixed {
        return Ok(cannot_override());
    }
    if let Some(refusal) =
        write_channel_override(&state, &device, OverrideAction::UnlinkChannel).await?
    {
        return Ok(refusal);
    }
    answer(&state, &device, json!({"status": "ok"})).await
}
