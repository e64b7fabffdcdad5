//! `POST /updates`: what should this device run? Records the check-in and answers the bundle,
//! or the refusal, as `resolve` decides it.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{answer_json, app_not_found, device_call, record_check_ins_on};
use crate::error::{ApiError, Field};
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
        return Err(missing(Field::VersionBuild));
    };
    // An unknown app has no overrides and no channels: it resolves to a refusal, and the
    // check-in below says that the app is unknown, with no lookup of its own on this hot path.
    let dice = state.dice.clone();
    let (device, answer) = crate::store::read(&state.store, move |store| {
        let overrides = store.overrides(&device.app_id, &device.device_id)?;
        let (app_id, device_id) = (&device.app_id, &device.device_id);
        let mut stored = || store.rollout_decision(app_id, device_id);
        let mut rollouts = resolve::Rollouts {
            stored: &mut stored,
            dice: dice.as_ref(),
            decided: None,
        };
        let answer = resolve::resolve(
            store,
            &device.app_id,
            &device.report,
            &native,
            &overrides,
            &mut rollouts,
            &mut resolve::Trace::off(),
        )?;
        let decided = rollouts.decided;
        let mut device = device;
        device.rollout = decided;
        // As Capgo records it, a device offered a bundle shows that bundle as its version from
        // then on (until it reports another).
        if let Answer::Update { bundle, .. } = &answer {
            device.report.version_name = Some(bundle.version.clone());
        }
        Ok((device, answer))
    })
    .await?;
    let store = state.store.current()?;
    if !record_check_ins_on(&state, store.as_ref(), &[&device]).await? {
        return Ok(app_not_found());
    }
    Ok(HttpResponse::Ok().json(answer_json(&answer, &device.report.plugin_version)))
}

/// `POST /updates/manifest_size`: how much of a manifest bundle is left to download. Plugins
/// from 8.x ask when their app calls `getLatest({includeBundleSize: true})` on an answer that
/// carries a manifest. This server hosts no files (a manifest's files are at their own URLs),
/// so every file it is asked about is `size_unknown`, in Capgo's shape: the files
/// deduplicated, those without a `file_hash` dropped.
pub async fn manifest_size(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (input, device) = device_call(&req, payload, &state).await?;
    let app = device.app_id.clone();
    if !crate::store::read(&state.store, move |store| store.app_exists(&app)).await? {
        return Ok(app_not_found());
    }
    let listed = input
        .raw(Field::Manifest)
        .or_else(|| input.raw(Field::Files));
    let mut seen = std::collections::HashSet::new();
    let files: Vec<Value> = listed
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|file| {
            let text = |key: &str| file.get(key).and_then(Value::as_str);
            let hash = text("file_hash").filter(|hash| !hash.is_empty())?;
            let (name, url) = (text("file_name"), text("download_url"));
            seen.insert((name, hash, url)).then(|| {
                json!({"file_name": name, "file_hash": hash, "download_url": url,
                       "error": "size_unknown"})
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "totalSize": 0,
        "knownFiles": 0,
        "unknownFiles": files.len(),
        "files": files,
    })))
}
