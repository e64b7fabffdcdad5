//! `POST /stats`: the plugin's events, one object or an array of them (plugins from 8.42 queue
//! events and send arrays; their download worker still sends single objects). Every event but
//! a failure report records its device. Arrays are answered as Capgo answers them: one result
//! per event, in order, with its `index`; a bad event is reported in its place and the others
//! are still recorded. All events of an array belong to one app.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{
    app_not_found, not_understood, parse_device_body, record_check_ins, refusal_with, DeviceBody,
    APP_NOT_FOUND,
};
use crate::error::{ApiError, Field};
use crate::ids;
use crate::routes::input::{check_app_id, invalid, missing, parse_json, Input};
use crate::state::AppState;
use crate::store::{off_workers, VersionEvent};

struct StatsEvent {
    device: DeviceBody,
    action: String,
}

/// What bundle health counts: installs, downloads, and every failure the plugin reports
/// (Capgo's `stats_action` values ending in `_fail`). A fixed list: clients cannot make the
/// store keep counters for actions of their own invention.
const COUNTED_ACTIONS: [&str; 17] = [
    "set",
    "download_complete",
    "set_fail",
    "update_fail",
    "download_fail",
    "windows_path_fail",
    "canonical_path_fail",
    "directory_path_fail",
    "unzip_fail",
    "low_mem_fail",
    "decrypt_fail",
    "checksum_fail",
    "download_manifest_file_fail",
    "download_manifest_checksum_fail",
    "download_manifest_brotli_fail",
    "finish_download_fail",
    "manifest_path_fail",
];

impl StatsEvent {
    /// What the event counts for in the bundle's health (`GET /bundle/health`), if anything: an
    /// install (`set`), a download (`download_complete`) or a failure (every `*_fail` action,
    /// Capgo's rule), of a production build on a physical device (as Capgo's auto-pause counts
    /// them: test devices would skew a rollout's failure rate). The bundle is the event's
    /// `version_name` (manifest file failures send `version:file`: the bundle is before `:`).
    fn version_event(&self, day: u32) -> Option<VersionEvent> {
        let report = &self.device.report;
        let counted = COUNTED_ACTIONS.contains(&self.action.as_str());
        if !counted || !report.is_prod || report.is_emulator {
            return None;
        }
        let version = report.version_name.as_deref()?.split(':').next()?;
        (!version.is_empty()).then(|| VersionEvent {
            app_id: self.device.app_id.clone(),
            version: version.to_owned(),
            day,
            action: self.action.clone(),
        })
    }

    /// A failure report says the device could not apply something: it is not a sign of life
    /// that should refresh the registry (and its `version_name` is the version that failed).
    fn is_failure(&self) -> bool {
        self.action.ends_with("_fail")
    }
}

fn parse_event(fields: Map<String, Value>) -> Result<StatsEvent, ApiError> {
    let input = Input::from_map(fields);
    let device = parse_device_body(&input)?;
    let action = input.required_str(Field::Action)?;
    if action.is_empty() || action.len() > 128 || ids::has_control(action) {
        return Err(invalid(
            Field::Action,
            "1 to 128 bytes without control characters",
            input.raw(Field::Action),
        ));
    }
    Ok(StatsEvent {
        device,
        action: action.to_owned(),
    })
}

pub async fn stats(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    crate::routes::plugin_allowed(&req, &state)?;
    let bytes = crate::routes::body(req.headers(), payload, &state).await?;
    match parse_json(req.headers(), &bytes)? {
        Value::Object(fields) => single(&state, fields).await,
        Value::Array(items) => batch(&state, items).await,
        _ => Err(not_understood(
            "Invalid JSON body: expected an event object or an array of them",
        )),
    }
}

/// Records the devices of the events that are signs of life, and counts what the events say
/// about bundles; `false` when the app is unknown (and nothing was recorded).
async fn record(state: &AppState, app_id: &str, events: &[&StatsEvent]) -> Result<bool, ApiError> {
    let alive: Vec<&DeviceBody> = events
        .iter()
        .filter(|event| !event.is_failure())
        .map(|event| &event.device)
        .collect();
    let known = if alive.is_empty() {
        // Nothing to record, but an unknown app is still reported as such.
        let app = app_id.to_owned();
        crate::store::read(&state.store, move |store| store.app_exists(&app)).await?
    } else {
        record_check_ins(state, &alive).await?
    };
    if known {
        let day = crate::health::day_of(state.clock.now());
        let counted: Vec<(VersionEvent, String)> = events
            .iter()
            .filter_map(|event| {
                let counted = event.version_event(day)?;
                Some((counted, event.device.device_id.clone()))
            })
            .collect();
        if !counted.is_empty() {
            off_workers(&state.store, move |store| {
                // Only about bundles the app has, from devices it knows (a failure report does
                // not record its device): an unauthenticated client can neither make counters
                // for bundles of its invention nor report failures for devices never seen.
                let mut bundles: std::collections::HashMap<String, bool> = Default::default();
                let mut kept = Vec::with_capacity(counted.len());
                for (event, device_id) in counted {
                    let bundle_known = match bundles.get(&event.version) {
                        Some(known) => *known,
                        None => {
                            let known = store.bundle(&event.app_id, &event.version)?.is_some();
                            bundles.insert(event.version.clone(), known);
                            known
                        }
                    };
                    if bundle_known && store.device_exists(&event.app_id, &device_id)? {
                        kept.push(event);
                    }
                }
                store.count_version_events(&kept)
            })
            .await?;
        }
    }
    Ok(known)
}

async fn single(state: &AppState, fields: Map<String, Value>) -> Result<HttpResponse, ApiError> {
    let event = parse_event(fields)?;
    if !record(state, &event.device.app_id, &[&event]).await? {
        return Ok(app_not_found());
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ok"})))
}

/// The `app_id` of an array item, as a string, if it has one.
fn item_app_id(item: &Value) -> Option<&str> {
    item.get("app_id").and_then(Value::as_str)
}

async fn batch(state: &AppState, items: Vec<Value>) -> Result<HttpResponse, ApiError> {
    let Some(first) = items.first() else {
        return Ok(HttpResponse::Ok().json(json!({"status": "ok", "results": []})));
    };
    // The first event names the batch's app: without a usable one the request is not understood.
    let app_id = item_app_id(first)
        .ok_or_else(|| missing(Field::AppId))?
        .to_owned();
    check_app_id(&app_id)?;
    // As Capgo answers it: a later event without a valid app id, or of another app, refuses the
    // whole batch (nothing is recorded).
    for item in &items[1..] {
        match item_app_id(item) {
            Some(other) if other == app_id => {}
            Some(other) if check_app_id(other).is_ok() => {
                return Ok(refusal_with(
                    "mixed_app_ids",
                    "All events in a batch must have the same app_id",
                    &[],
                ))
            }
            _ => {
                return Ok(refusal_with(
                    "invalid_app_id",
                    "Every event of a batch needs a valid app_id",
                    &[],
                ))
            }
        }
    }

    let parsed: Vec<Result<StatsEvent, ApiError>> = items
        .into_iter()
        .map(|item| match item {
            Value::Object(fields) => parse_event(fields),
            _ => Err(not_understood(
                "Invalid JSON body: an event is not an object",
            )),
        })
        .collect();
    let good: Vec<&StatsEvent> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
    let app_known = record(state, &app_id, &good).await?;
    let results: Vec<Value> = parsed
        .iter()
        .enumerate()
        .map(|(index, event)| match event {
            Ok(_) if app_known => json!({"status": "ok", "index": index}),
            Ok(_) => json!({
                "status": "error",
                "error": APP_NOT_FOUND.0,
                "message": APP_NOT_FOUND.1,
                "index": index,
            }),
            Err(error) => json!({
                "status": "error",
                "error": error.code(),
                "message": error.message_text(),
                "moreInfo": error.more_info(),
                "index": index,
            }),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"status": "ok", "results": results})))
}
