//! `/bundle`: bundles hosted elsewhere, registered so that channels and overrides can name them
//! (spec section 4).

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::input::{invalid, Input};
use super::{body_or_query_input, json_input, needs, ok, resource, visible_app, Authorized};
use crate::error::{ApiError, Code, Field};
use crate::ids;
use crate::model::{Bundle, ManifestEntry, NewBundle};
use crate::state::AppState;
use crate::store::off_workers;
use crate::store::{CreateBundle, DeleteOutcome};
use crate::timefmt::format_micros;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        resource("/bundle")
            .route(crate::routes::get().to(list_bundles))
            .route(web::post().to(create_bundle))
            .route(web::delete().to(delete_bundle)),
    )
    .service(resource("/bundle/health").route(crate::routes::get().to(bundle_health)));
}

/// `GET /bundle/health?app_id=&version=[&days=N]`: what production devices reported about a
/// bundle over the last N days (today included; default 7, at most the audit log's retention):
/// downloads, installs, failures by action, per day and in total, and the failure rate.
async fn bundle_health(
    caller: Authorized<needs::Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let version = input.required_name(Field::Version)?;
    let most = state.audit_days.max(1);
    let days = input
        .parsed(Field::Days, &format!("1 to {most}"), |text| {
            text.parse::<u32>()
                .ok()
                .filter(|days| (1..=most).contains(days))
        })?
        .unwrap_or(7.min(most));
    visible_app(&state, &caller, &app_id).await?;
    let last = crate::health::day_of(state.clock.now());
    let first = last.saturating_sub(days - 1);
    let (app, bundle) = (app_id.clone(), version.clone());
    let counts = off_workers(&state.store, move |store| {
        store.version_events(&app, &bundle, first, last)
    })
    .await?;
    let health = crate::health::BundleHealth::from_counts(first, last, &counts);
    let days: Vec<Value> = health
        .days
        .iter()
        .map(|(day, tally)| {
            json!({"date": crate::health::date(*day), "downloads": tally.downloads,
                   "installs": tally.installs, "failures": tally.failures})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "app_id": app_id,
        "version": version,
        "days": days,
        "totals": {
            "downloads": health.totals.downloads,
            "installs": health.totals.installs,
            "failures": health.totals.failures,
            "attempts": health.totals.attempts(),
        },
        "failure_rate_bps": health.totals.failure_rate_bps(),
    })))
}

pub fn bundle_json(bundle: &Bundle) -> Value {
    json!({
        "id": bundle.id,
        "app_id": bundle.app_id,
        "version": bundle.version,
        "external_url": bundle.external_url,
        "checksum": bundle.checksum,
        "session_key": bundle.session_key,
        "min_update_version": bundle.min_update_version,
        "manifest": bundle.manifest,
        "created_at": format_micros(bundle.created_at),
    })
}

/// A semver version without a leading `v`, as Capgo names bundles.
fn semver_field(input: &Input, field: Field) -> Result<Option<String>, ApiError> {
    match input.str(field)? {
        None => Ok(None),
        Some(text) if text.len() <= 128 && semver::Version::parse(text).is_ok() => {
            Ok(Some(text.to_owned()))
        }
        Some(_) => Err(invalid(
            field,
            "a semver version such as 1.2.3 (no leading v)",
            input.raw(field),
        )),
    }
}

/// A bounded string without control characters.
fn text_field(input: &Input, field: Field, max: usize) -> Result<Option<String>, ApiError> {
    match input.str(field)? {
        None => Ok(None),
        Some(text) if !text.is_empty() && text.len() <= max && !ids::has_control(text) => {
            Ok(Some(text.to_owned()))
        }
        Some(_) => Err(invalid(
            field,
            &format!("1 to {max} bytes without control characters"),
            input.raw(field),
        )),
    }
}

/// An http:// or https:// URL with a host, at most 2 KiB, no spaces or controls.
fn is_download_url(url: &str) -> bool {
    let has_scheme = url.starts_with("https://") || url.starts_with("http://");
    let host_present = url
        .split("://")
        .nth(1)
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    has_scheme
        && host_present
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// At most this many files in a manifest, and this many bytes of names, hashes and URLs in all
/// (the bundle's record must stay well under the store's record limit, `keys.rs`).
const MANIFEST_FILES: usize = 10_000;
const MANIFEST_BYTES: usize = 512 * 1024;

/// `manifest`: absent, or an array of `{file_name, file_hash, download_url}`.
fn parse_manifest(input: &Input) -> Result<Vec<ManifestEntry>, ApiError> {
    let Some(value) = input.raw(Field::Manifest) else {
        return Ok(Vec::new());
    };
    let refuse = || {
        invalid(
            Field::Manifest,
            "an array of at most 10000 {file_name, file_hash, download_url}: names and hashes \
             of 1 to 1024 bytes without controls, http(s) URLs, 512 KiB in all",
            Some(value),
        )
    };
    let entries = value
        .as_array()
        .filter(|a| a.len() <= MANIFEST_FILES)
        .ok_or_else(refuse)?;
    let bytes: usize = entries
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|fields| fields.values())
        .filter_map(Value::as_str)
        .map(str::len)
        .sum();
    let too_large = bytes > MANIFEST_BYTES;
    entries
        .iter()
        .map(|entry| {
            let text = |key: &str| {
                entry
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty() && t.len() <= 1024 && !ids::has_control(t))
            };
            let fields = entry.as_object().map_or(0, |fields| fields.len());
            match (text("file_name"), text("file_hash"), text("download_url")) {
                _ if too_large => Err(refuse()),
                (Some(file_name), Some(file_hash), Some(url))
                    if fields == 3 && is_download_url(url) =>
                {
                    Ok(ManifestEntry {
                        file_name: file_name.to_owned(),
                        file_hash: file_hash.to_owned(),
                        download_url: url.to_owned(),
                    })
                }
                _ => Err(refuse()),
            }
        })
        .collect()
}

fn parse_external_url(input: &Input) -> Result<String, ApiError> {
    let url = input.required_str(Field::ExternalUrl)?;
    if is_download_url(url) {
        Ok(url.to_owned())
    } else {
        Err(invalid(
            Field::ExternalUrl,
            "an http:// or https:// URL",
            input.raw(Field::ExternalUrl),
        ))
    }
}

async fn create_bundle(
    caller: Authorized<needs::Write>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let version = semver_field(&input, Field::Version)?
        .ok_or_else(|| super::input::missing(Field::Version))?;
    let external_url = parse_external_url(&input)?;
    let checksum = text_field(&input, Field::Checksum, 1024)?
        .ok_or_else(|| super::input::missing(Field::Checksum))?;
    let session_key = text_field(&input, Field::SessionKey, 1024)?;
    let min_update_version = semver_field(&input, Field::MinUpdateVersion)?;
    let manifest = parse_manifest(&input)?;
    visible_app(&state, &caller, &app_id).await?;
    let new = NewBundle {
        app_id: app_id.clone(),
        version: version.clone(),
        external_url,
        checksum,
        session_key,
        min_update_version,
        manifest,
    };
    let now = state.clock.now();
    match off_workers(&state.store, move |store| store.create_bundle(&new, now)).await? {
        CreateBundle::Created(bundle) => {
            Ok(HttpResponse::Created()
                .json(json!({"status": "ok", "bundle": bundle_json(&bundle)})))
        }
        CreateBundle::AlreadyExists => {
            Err(ApiError::new(Code::VersionAlreadyExists).info("version", version))
        }
        CreateBundle::AppNotFound => Err(ApiError::new(Code::AppNotFound).info("app_id", app_id)),
    }
}

async fn list_bundles(
    caller: Authorized<needs::Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    visible_app(&state, &caller, &app_id).await?;
    let bundles: Vec<Value> = crate::store::read(&state.store, move |store| store.bundles(&app_id))
        .await?
        .iter()
        .map(bundle_json)
        .collect();
    Ok(HttpResponse::Ok().json(bundles))
}

async fn delete_bundle(
    caller: Authorized<needs::Write>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = body_or_query_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let version = input.required_name(Field::Version)?;
    visible_app(&state, &caller, &app_id).await?;
    let (app, bundle) = (app_id.clone(), version.clone());
    match off_workers(&state.store, move |store| {
        store.delete_bundle(&app, &bundle)
    })
    .await?
    {
        DeleteOutcome::Deleted => Ok(ok()),
        DeleteOutcome::NotFound => {
            Err(ApiError::new(Code::VersionNotFound).info("version", version))
        }
        DeleteOutcome::InUse => {
            Err(ApiError::new(Code::CannotDeleteLinkedVersion).info("version", version))
        }
    }
}
