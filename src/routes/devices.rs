//! `/device`: the Devices API of the seed (spec section 3).

use actix_web::http::header::ContentType;
use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};

use super::input::{invalid, Input};
use super::plugin;
use super::{body_or_query_input, caller, json_input, ok, persist, resource, visible_app};
use crate::error::{ApiError, Code};
use crate::export;
use crate::ids;
use crate::model::{
    Cursor, DeviceFilter, DeviceListQuery, DeviceOrder, DevicePage, Mode, Platform,
};
use crate::render::cursor::{format_cursor, parse_cursor};
use crate::render::device::{DeviceView, DEVICE_JSON_BYTES};
use crate::render::json as json_out;
use crate::resolve;
use crate::state::AppState;
use crate::store::{BulkOutcome, EraseTarget, OverrideAction, OverrideChange, OverrideWrite};
use crate::timefmt::{format_micros, parse_rfc3339};
use serde_json::json;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;
/// Rows a filtered page may examine (see [`DeviceListQuery::max_examined`]).
pub const MAX_EXAMINED_PER_PAGE: usize = 10_000;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resource("/device/resolve").route(web::get().to(resolve_device)));
    cfg.service(resource("/device/export").route(web::get().to(export_devices)));
    cfg.service(resource("/device/erase").route(web::post().to(erase_device)));
    cfg.service(resource("/device/audit").route(web::get().to(audit_log)));
    cfg.service(resource("/device/summary").route(web::get().to(summary)));
    cfg.service(
        resource("/device/bulk")
            .route(web::post().to(bulk_link))
            .route(web::delete().to(bulk_unlink)),
    );
    cfg.service(
        resource("/device")
            .route(web::get().to(get_devices))
            .route(web::post().to(link_device))
            .route(web::delete().to(unlink_device)),
    );
}

/// The seed's wording for a key below `write` on the Devices API.
fn device_caller(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
) -> Result<crate::auth::Caller, ApiError> {
    caller(req, state, mode).map_err(|error| {
        if error.code() == Code::InsufficientPermissions.as_str() {
            error.message("Insufficient permissions to manage devices")
        } else {
            error
        }
    })
}

/// `{"data": [devices], "nextCursor"?, "hasMore"}`.
fn device_list_json(page: &DevicePage) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + DEVICE_JSON_BYTES * page.devices.len());
    out.extend_from_slice(b"{\"data\":[");
    for (i, entry) in page.devices.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        DeviceView::from(entry).write_json(&mut out);
    }
    out.push(b']');
    if let Some(cursor) = &page.next {
        out.extend_from_slice(b",\"nextCursor\":");
        json_out::string(&mut out, &format_cursor(cursor));
    }
    out.extend_from_slice(b",\"hasMore\":");
    json_out::boolean(&mut out, page.next.is_some());
    out.push(b'}');
    out
}

fn json_answer(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

fn parse_limit(input: &Input) -> Result<usize, ApiError> {
    let Some(text) = input.str("limit")? else {
        return Ok(DEFAULT_LIMIT);
    };
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse::<usize>().ok())
        .flatten()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or_else(|| invalid("limit", "an integer from 1 to 1000", input.raw("limit")))
}

fn parse_list_query(input: &Input) -> Result<DeviceListQuery, ApiError> {
    let limit = parse_limit(input)?;
    let order = match input.str("order")? {
        None => DeviceOrder::DeviceId,
        Some("asc") => DeviceOrder::UpdatedAsc,
        Some("desc") => DeviceOrder::UpdatedDesc,
        Some(_) => return Err(invalid("order", "asc or desc", input.raw("order"))),
    };
    let updated_after = match input.str("updated_at")? {
        None => None,
        // An instant before 1970 lists everything, as every device is later than it.
        Some(text) => Some(
            parse_rfc3339(text)
                .map(|micros| u64::try_from(micros).unwrap_or(0))
                .ok_or_else(|| {
                    invalid(
                        "updated_at",
                        "expected an RFC 3339 instant",
                        input.raw("updated_at"),
                    )
                })?,
        ),
    };
    let after = match input.str("cursor")? {
        None => None,
        Some(text) => Some(parse_cursor(text).ok_or_else(|| {
            invalid(
                "cursor",
                "expected the nextCursor of a previous page, <updated_at>|<device_id>",
                input.raw("cursor"),
            )
        })?),
    };
    Ok(DeviceListQuery {
        order,
        after,
        updated_after,
        limit,
        max_examined: MAX_EXAMINED_PER_PAGE,
        filter: parse_filter(input)?,
    })
}

/// The list filters (each optional, all combinable).
fn parse_filter(input: &Input) -> Result<DeviceFilter, ApiError> {
    let text = |field: &str, allow_empty: bool| -> Result<Option<String>, ApiError> {
        match input.str(field)? {
            None => Ok(None),
            Some(value)
                if (allow_empty || !value.is_empty())
                    && value.len() <= 256
                    && !ids::has_control(value) =>
            {
                Ok(Some(value.to_owned()))
            }
            Some(_) => Err(invalid(
                field,
                "at most 256 bytes without control characters",
                input.raw(field),
            )),
        }
    };
    let platform = match input.str("platform")? {
        None => None,
        Some(value) => Some(Platform::parse(value).ok_or_else(|| {
            invalid(
                "platform",
                "ios, android or electron",
                input.raw("platform"),
            )
        })?),
    };
    Ok(DeviceFilter {
        // Stored custom ids are trimmed; a filter for one is too.
        custom_id: text("custom_id", true)?.map(|id| id.trim().to_owned()),
        custom_id_prefix: text("custom_id_prefix", false)?,
        platform,
        version_name: text("version_name", false)?,
        channel: input.name("channel")?,
        has_override: input.bool("has_override")?,
        is_prod: input.bool("is_prod")?,
        is_emulator: input.bool("is_emulator")?,
    })
}

async fn get_devices(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Read)?;
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    visible_app(&state, &caller, &app_id)?;

    if let Some(device_id) = input.device_id()? {
        let entry = state.store.device(&app_id, &device_id)?.ok_or_else(|| {
            ApiError::new(Code::DeviceNotFound).info("device_id", device_id.as_str())
        })?;
        let mut body = Vec::with_capacity(DEVICE_JSON_BYTES);
        DeviceView::from(&entry).write_json(&mut body);
        return Ok(json_answer(body));
    }

    let query = parse_list_query(&input)?;
    let page = state.store.list_devices(&app_id, &query)?;
    Ok(json_answer(device_list_json(&page)))
}

/// Writes (or, with `dry_run`, previews) a change of overrides, and renders the store's
/// refusals as the contract's errors; shared by the single and the bulk link and unlink. An
/// applied write is durable when this returns (see `durable::OverrideWriter`).
async fn write_overrides(
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
        state.store.preview_overrides(&write)?
    } else {
        state.override_writer.write(write).await?
    };
    match outcome {
        BulkOutcome::Applied(changes) => Ok(changes),
        BulkOutcome::AppNotFound => Err(super::app_not_found(&app_id)),
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
fn link_action(
    channel: Option<String>,
    version: Option<String>,
) -> Result<OverrideAction, ApiError> {
    if channel.is_none() && version.is_none() {
        return Err(ApiError::new(Code::MissingChannelOrVersion));
    }
    Ok(OverrideAction::Link { channel, version })
}

async fn link_device(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Write)?;
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_id = input.required_device_id()?;
    let (channel, version) = (input.name("channel")?, input.name("version_id")?);
    visible_app(&state, &caller, &app_id)?;
    // After the app: the contract checks the app before what is linked to it.
    let action = link_action(channel, version)?;
    let write = OverrideWrite {
        app_id,
        device_ids: vec![device_id],
        action,
        change: super::change_by(&caller, &state),
    };
    write_overrides(&state, write, false).await?;
    Ok(ok())
}

async fn unlink_device(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Write)?;
    let input = body_or_query_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_id = input.required_device_id()?;
    visible_app(&state, &caller, &app_id)?;
    let write = OverrideWrite {
        app_id,
        device_ids: vec![device_id],
        action: OverrideAction::Unlink,
        change: super::change_by(&caller, &state),
    };
    write_overrides(&state, write, false).await?;
    Ok(ok())
}

/// `GET /device/resolve?app_id=&device_id=`: what `/updates` would answer this device now, from
/// its last reported fields, and why: each precedence step, then each channel rule checked. The
/// decisions are `/updates`' own code, with recording on; nothing is written.
async fn resolve_device(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Read)?;
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let device_id = input.required_device_id()?;
    visible_app(&state, &caller, &app_id)?;
    let entry = state
        .store
        .device(&app_id, &device_id)?
        .ok_or_else(|| ApiError::new(Code::DeviceNotFound).info("device_id", device_id.as_str()))?;
    let report = &entry.device.report;
    let mut trace = resolve::Trace::on();
    let (answer, source) = match resolve::coerce_native_version(&report.version_build) {
        None => {
            let refusal = resolve::Refusal::new(
                "semver_error",
                resolve::semver_message(&report.version_build),
                resolve::Kind::Failed,
            );
            let answer = resolve::Answer::Refused {
                refusal,
                source: None,
            };
            (plugin::answer_json(&answer), None)
        }
        Some(native) => {
            let answer = resolve::resolve(
                state.store.as_ref(),
                &app_id,
                report,
                &native,
                &entry.overrides,
                &mut trace,
            )?;
            let source = match &answer {
                resolve::Answer::Update { source, .. } => Some(*source),
                resolve::Answer::Refused { source, .. } => *source,
            };
            (plugin::answer_json(&answer), source)
        }
    };
    Ok(HttpResponse::Ok().json(json!({
        "app_id": app_id,
        "device_id": device_id,
        "answer": answer,
        "source": source.map(resolve::Source::as_str),
        "precedence": trace.precedence,
        "rules": trace.rules,
    })))
}

/// Devices one bulk call may change.
pub const MAX_BULK: usize = 1000;

/// `device_ids` of a bulk call: 1 to 1000 valid ids, lowercased, duplicates dropped.
fn parse_device_ids(input: &Input) -> Result<Vec<String>, ApiError> {
    let bad = |expected: &str| invalid("device_ids", expected, input.raw("device_ids"));
    let items = match input.raw("device_ids") {
        None | Some(serde_json::Value::Null) => return Err(super::input::missing("device_ids")),
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

fn overrides_json(overrides: &crate::model::Overrides) -> serde_json::Value {
    json!({"channel": overrides.channel, "version_override": overrides.version})
}

fn bulk_answer(changes: &[crate::store::OverrideChange], dry_run: bool) -> HttpResponse {
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
async fn bulk_link(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Write)?;
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_ids = parse_device_ids(&input)?;
    let (channel, version) = (input.name("channel")?, input.name("version_id")?);
    let dry_run = input.bool("dry_run")?.unwrap_or(false);
    visible_app(&state, &caller, &app_id)?;
    let action = link_action(channel, version)?;
    let write = OverrideWrite {
        app_id,
        device_ids,
        action,
        change: super::change_by(&caller, &state),
    };
    let changes = write_overrides(&state, write, dry_run).await?;
    Ok(bulk_answer(&changes, dry_run))
}

/// `DELETE /device/bulk {"app_id", "device_ids", "dry_run"?}`: removes the overrides of up to 1000
/// devices at once, all or none.
async fn bulk_unlink(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Write)?;
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_ids = parse_device_ids(&input)?;
    let dry_run = input.bool("dry_run")?.unwrap_or(false);
    visible_app(&state, &caller, &app_id)?;
    let write = OverrideWrite {
        app_id,
        device_ids,
        action: OverrideAction::Unlink,
        change: super::change_by(&caller, &state),
    };
    let changes = write_overrides(&state, write, dry_run).await?;
    Ok(bulk_answer(&changes, dry_run))
}

/// `POST /device/erase {"app_id", "device_id"}` or `{"app_id", "custom_id"}` (mode `all`): removes
/// the device(s) for good, with their index entries and overrides, and answers what was removed.
async fn erase_device(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::All)?;
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_id = input.device_id()?;
    let custom_id = match input.str("custom_id")? {
        None => None,
        Some(text) => Some(
            ids::normalize_custom_id(text)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    invalid(
                        "custom_id",
                        "1 to 256 bytes without control characters",
                        input.raw("custom_id"),
                    )
                })?,
        ),
    };
    let by_custom_id = match (&device_id, &custom_id) {
        (Some(_), None) => false,
        (None, Some(_)) => true,
        (None, None) => return Err(super::input::missing("device_id_or_custom_id")),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "target",
                "either device_id or custom_id, not both",
                None,
            ))
        }
    };
    visible_app(&state, &caller, &app_id)?;
    let (store, erase_app) = (state.store.clone(), app_id.clone());
    let change = super::change_by(&caller, &state);
    let needle = device_id
        .clone()
        .or_else(|| custom_id.clone())
        .unwrap_or_default();
    // Erasing by custom id scans the app's devices: off the request threads.
    let erased = web::block(move || {
        let target = if by_custom_id {
            EraseTarget::CustomId(&needle)
        } else {
            EraseTarget::Device(&needle)
        };
        store.erase_devices(&erase_app, target, change)
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal))??;
    if erased.is_empty() {
        let error = ApiError::new(Code::DeviceNotFound);
        return Err(match (device_id, custom_id) {
            (Some(device_id), _) => error.info("device_id", device_id),
            (_, Some(custom_id)) => error.info("custom_id", custom_id),
            _ => error,
        });
    }
    persist(&state).await?;
    let removed: Vec<serde_json::Value> = erased
        .iter()
        .map(|erased| {
            json!({
                "device_id": erased.device_id,
                "device": erased.record,
                "overrides": overrides_json(&erased.overrides),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"status": "ok", "removed": removed})))
}

/// An audit cursor: `<at>|<seq>` of the last entry of the previous page.
fn parse_audit_cursor(text: &str) -> Option<(u64, u64)> {
    let (at, seq) = text.split_once('|')?;
    let at = u64::try_from(parse_rfc3339(at)?).ok()?;
    Some((at, seq.parse().ok()?))
}

/// `GET /device/audit?app_id=[&device_id=][&cursor=][&limit=]`: who changed which override and
/// when, newest first.
async fn audit_log(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Read)?;
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let device_id = input.device_id()?;
    let limit = parse_limit(&input)?;
    let before = match input.str("cursor")? {
        None => None,
        Some(text) => Some(parse_audit_cursor(text).ok_or_else(|| {
            invalid(
                "cursor",
                "expected the nextCursor of a previous page",
                input.raw("cursor"),
            )
        })?),
    };
    visible_app(&state, &caller, &app_id)?;
    let page = state
        .store
        .audit(&app_id, device_id.as_deref(), before, limit)?;
    let data: Vec<serde_json::Value> = page
        .entries
        .iter()
        .map(|entry| {
            json!({
                "at": format_micros(entry.at),
                "device_id": entry.device_id,
                "actor": entry.actor.label(),
                "action": entry.action.as_str(),
                "before": overrides_json(&entry.before),
                "after": overrides_json(&entry.after),
            })
        })
        .collect();
    let mut body = json!({"data": data, "hasMore": page.next.is_some()});
    if let Some((at, seq)) = page.next {
        body["nextCursor"] = json!(format!("{}|{seq}", format_micros(at)));
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /device/summary?app_id=[&filters]`: how the app's devices are spread. Without filters it
/// reads counters kept with the records; with the list's filters it scans the matching devices.
async fn summary(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Read)?;
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let filter = parse_filter(&input)?;
    visible_app(&state, &caller, &app_id)?;
    let (store, now) = (state.store.clone(), state.clock.now());
    let filtered = filter != DeviceFilter::default();
    let counted_app = app_id.clone();
    let counted = web::block(
        move || -> crate::store::StoreResult<crate::model::DeviceSummary> {
            if !filtered {
                return store.device_summary(&counted_app, now);
            }
            let mut summary = crate::model::DeviceSummary::default();
            for devices in export::pages(store.as_ref(), &counted_app, &filter) {
                for entry in &devices? {
                    summary.add(
                        &entry.device.report,
                        &entry.overrides,
                        entry.device.updated_at,
                        now,
                    );
                }
            }
            Ok(summary)
        },
    )
    .await
    .map_err(|_| ApiError::new(Code::Internal))??;
    let total = counted.total;
    let share = |count: u64| {
        if total == 0 {
            0.0
        } else {
            (count as f64 / total as f64 * 10_000.0).round() / 10_000.0
        }
    };
    let mut versions: Vec<(&String, &u64)> = counted.version_names.iter().collect();
    versions.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let versions: Vec<serde_json::Value> = versions
        .into_iter()
        .map(|(name, count)| {
            let name = if name.is_empty() {
                serde_json::Value::Null
            } else {
                json!(name)
            };
            json!({"version_name": name, "devices": count, "share": share(*count)})
        })
        .collect();
    let natives: Vec<serde_json::Value> = counted
        .version_builds
        .iter()
        .map(|(build, count)| json!({"version_build": build, "devices": count}))
        .collect();
    let channels: Vec<serde_json::Value> = counted
        .channels
        .iter()
        .map(|(channel, count)| json!({"channel": channel, "devices": count}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "app_id": app_id,
        "total": total,
        "platforms": counted.platforms,
        "versions": versions,
        "native_versions": natives,
        "channels": channels,
        "prod": counted.prod,
        "dev": total - counted.prod.min(total),
        "emulator": counted.emulator,
        "physical": total - counted.emulator.min(total),
        "seen": {"1d": counted.seen[0], "7d": counted.seen[1], "30d": counted.seen[2]},
        "source": if filtered { "scan" } else { "counters" },
    })))
}

/// Where an export stream is.
enum ExportPosition {
    Header,
    After(Option<Cursor>),
    Done,
}

/// `GET /device/export?app_id=[&format=csv]`: every device of the app, NDJSON by default, read
/// and sent a page at a time (never all in memory), in device id order.
async fn export_devices(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = device_caller(&req, &state, Mode::Read)?;
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let format = match input.str("format")? {
        None => export::Format::Ndjson,
        Some(text) => export::Format::parse(text)
            .ok_or_else(|| invalid("format", "ndjson or csv", input.raw("format")))?,
    };
    visible_app(&state, &caller, &app_id)?;
    let store = state.store.clone();
    let pages = futures_util::stream::unfold(ExportPosition::Header, move |position| {
        let (store, app_id) = (store.clone(), app_id.clone());
        async move {
            let after = match position {
                ExportPosition::Done => return None,
                ExportPosition::Header => {
                    let header = web::Bytes::from(format.header());
                    return Some((Ok(header), ExportPosition::After(None)));
                }
                ExportPosition::After(after) => after,
            };
            let page = web::block(move || {
                export::page(store.as_ref(), &app_id, &DeviceFilter::default(), after)
            })
            .await;
            match page {
                Ok(Ok(page)) => {
                    let mut rows = String::with_capacity(page.devices.len() * 320);
                    export::render(format, &page.devices, &mut rows);
                    let next = page.next.map_or(ExportPosition::Done, |cursor| {
                        ExportPosition::After(Some(cursor))
                    });
                    Some((Ok(web::Bytes::from(rows)), next))
                }
                failed => {
                    // The answer has begun: all that can be done is to end it short.
                    let reason = match failed {
                        Ok(Err(error)) => error.to_string(),
                        Err(error) => error.to_string(),
                        Ok(Ok(_)) => unreachable!("handled above"),
                    };
                    log::error!("export failed: {reason}");
                    Some((
                        Err(std::io::Error::other("export failed")),
                        ExportPosition::Done,
                    ))
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .streaming(pages))
}
