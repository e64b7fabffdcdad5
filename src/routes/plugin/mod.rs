//! The plugin API (spec section 5): unauthenticated endpoints spoken by capacitor-updater,
//! answered as Capgo's server answers them (`plugin_runtime/`). Refusals are HTTP 200
//! `{"error", "message", ...}` (with `kind` on `/updates`), as the plugin reads them; a body that
//! cannot be understood is a 400 in the contract's error shape. What each plugin release sends,
//! and what it reads back, is in `tests/plugin_corpus/`.

mod channel_self;
mod stats;
mod updates;

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use semver::Version;
use serde_json::{json, Map, Value};

use super::input::{invalid, Input};
use super::resource;
use crate::error::{ApiError, Code, Field};
use crate::ids;
use crate::model::{DeviceReport, Platform};
use crate::resolve::{self, coerce_native_version, Answer, Kind, Refusal};
use crate::state::AppState;
use crate::store::{CheckIn, Upsert};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resource("/stats").route(web::post().to(stats::stats)))
        .service(resource("/updates").route(web::post().to(updates::updates)))
        .service(resource("/updates/manifest_size").route(web::post().to(updates::manifest_size)))
        .service(
            resource("/channel_self")
                .route(web::post().to(channel_self::set))
                .route(web::put().to(channel_self::get))
                .route(crate::routes::get().to(channel_self::list))
                .route(web::delete().to(channel_self::unset)),
        );
}

/// A refusal as the plugin reads it: HTTP 200 `{"error", "message", ...}`.
fn refused(body: Value) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// A refusal of `/channel_self` or `/stats`: `{"error", "message"}` and the fields Capgo sends
/// with it. (No `kind`: Capgo sends one on `/updates` answers only; our `app_not_found` carries
/// one on every endpoint.)
fn refusal_with(error: &str, message: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let mut body = Map::new();
    body.insert("error".into(), error.into());
    body.insert("message".into(), message.into());
    for (key, value) in extra {
        body.insert((*key).into(), (*value).into());
    }
    refused(Value::Object(body))
}

const APP_NOT_FOUND: (&str, &str) = ("app_not_found", "App not found");

/// Our answer for an app this server does not know (Capgo's cloud answers `on_premise_app`).
fn app_not_found() -> HttpResponse {
    refused(refusal_json(&Refusal::new(
        APP_NOT_FOUND.0,
        APP_NOT_FOUND.1,
        Kind::Failed,
    )))
}

/// The body of an `/updates` answer: the bundle to install, or the refusal, as the plugin of
/// `plugin_version` reads it (a bundle's manifest goes only to the releases that read one).
pub fn answer_json(answer: &Answer, plugin_version: &str) -> Value {
    match answer {
        Answer::Update { bundle, .. } => {
            let mut body = json!({
                "version": bundle.version,
                "url": bundle.external_url,
                "checksum": bundle.checksum,
                "session_key": bundle.session_key.as_deref().unwrap_or_default(),
            });
            if !bundle.manifest.is_empty() && crate::plugin_version::reads_manifest(plugin_version)
            {
                body["manifest"] = json!(bundle.manifest);
            }
            body
        }
        Answer::Refused { refusal, .. } => refusal_json(refusal),
    }
}

/// `{"error", "message", "kind"}` and, where Capgo sends them, `version`, `old`, `major`.
fn refusal_json(refusal: &Refusal) -> Value {
    let mut body = json!({
        "error": refusal.error,
        "message": refusal.message,
        "kind": refusal.kind.as_str(),
    });
    if let Some(version) = &refusal.version {
        body["version"] = json!(version);
    }
    if let Some(old) = &refusal.old {
        body["old"] = json!(old);
    }
    if refusal.major {
        body["major"] = json!(true);
    }
    body
}

/// A device as the plugin describes itself, normalised as Capgo normalises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceBody {
    pub app_id: String,
    pub device_id: String,
    pub report: DeviceReport,
    /// The native version, parsed; `None` when the plugin sent none.
    pub native: Option<Version>,
    /// The rollout decision to keep with the device (`/updates`); `None`: keep the stored one.
    pub rollout: Option<Option<crate::model::RolloutDecision>>,
}

/// A short free-text field of the plugin body (versions, os): at most 256 bytes, no controls.
fn short_text(input: &Input, field: Field) -> Result<String, ApiError> {
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
fn optional_text(input: &Input, field: Field) -> Result<Option<String>, ApiError> {
    Ok(Some(short_text(input, field)?).filter(|text| !text.is_empty()))
}

/// The native version as sent, and as Capgo reads it (`1.2` is 1.2.0, `builtin` 0.0.0); one that
/// is not semver even then is a 400 `semver_error`, as Capgo answers it. The record keeps what
/// the device sent (Capgo keeps the normalised form: see the README).
fn native_version(input: &Input) -> Result<(String, Option<Version>), ApiError> {
    let text = short_text(input, Field::VersionBuild)?;
    if text.is_empty() {
        return Ok((text, None));
    }
    match coerce_native_version(&text) {
        Some(version) => Ok((text, Some(version))),
        None => Err(ApiError::new(Code::SemverError)
            .message(resolve::semver_message(&text))
            .info("version_build", text)),
    }
}

pub fn parse_device_body(input: &Input) -> Result<DeviceBody, ApiError> {
    let app_id = input.app_id()?;
    let device_id = input.required_device_id()?;
    let platform_text = input.required_str(Field::Platform)?;
    let platform = Platform::parse(platform_text).ok_or_else(|| {
        invalid(
            Field::Platform,
            "ios, android or electron",
            input.raw(Field::Platform),
        )
    })?;
    let custom_id = input
        .parsed(
            Field::CustomId,
            "at most 256 bytes without control characters",
            ids::normalize_custom_id,
        )?
        .unwrap_or_default();
    let (version_build, native) = native_version(input)?;
    let version_name = match short_text(input, Field::VersionName)?.as_str() {
        "" => None,
        // `builtin` is the bundle shipped in the native build: its version is the native one,
        // read as semver as Capgo reads it (plugins from 8.44 send it themselves).
        "builtin" => native.as_ref().map(Version::to_string),
        name => Some(name.to_owned()),
    };
    // Plugins send `""` when the app configures no default channel.
    let default_channel = match input.str(Field::DefaultChannel)? {
        Some("") => None,
        _ => input.name(Field::DefaultChannel)?,
    };
    let install_source = optional_text(input, Field::InstallSource)?
        .map(|source| source.trim().to_ascii_lowercase())
        .filter(|source| !source.is_empty());
    Ok(DeviceBody {
        app_id,
        device_id,
        report: DeviceReport {
            custom_id,
            version_name,
            version_build,
            os_version: short_text(input, Field::VersionOs)?,
            plugin_version: short_text(input, Field::PluginVersion)?,
            platform,
            is_prod: input.bool(Field::IsProd)?.unwrap_or(true),
            is_emulator: input.bool(Field::IsEmulator)?.unwrap_or(false),
            default_channel,
            install_source,
            key_id: optional_text(input, Field::KeyId)?,
        },
        native,
        rollout: None,
    })
}

/// Records check-ins, in order (one store call: see `Devices::check_in`); `false` when the app
/// is unknown (and nothing was stored for it).
pub async fn record_check_ins(state: &AppState, devices: &[&DeviceBody]) -> Result<bool, ApiError> {
    record_check_ins_on(state, state.store.current()?.as_ref(), devices).await
}

/// [`record_check_ins`] on a store the caller already holds (one store for the whole request,
/// even if the handle's is replaced meanwhile).
pub async fn record_check_ins_on(
    state: &AppState,
    store: &dyn crate::store::Store,
    devices: &[&DeviceBody],
) -> Result<bool, ApiError> {
    let now = state.clock.now();
    let check_ins: Vec<CheckIn> = devices
        .iter()
        .map(|device| CheckIn {
            app_id: device.app_id.clone(),
            device_id: device.device_id.clone(),
            report: device.report.clone(),
            now,
            touch_interval: state.touch_interval,
            rollout: device.rollout.clone(),
        })
        .collect();
    let outcomes = store.check_in(check_ins).await?;
    Ok(!outcomes.contains(&Upsert::AppNotFound))
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

/// A 400 for a body that is not what the endpoint takes.
fn not_understood(message: &'static str) -> ApiError {
    ApiError::new(Code::InvalidJsonBody).message(message)
}
