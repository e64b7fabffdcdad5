//! `/device`: the Devices API of the seed (spec section 3).

mod audit;
mod erase;
mod export;
mod list;
mod overrides;
mod resolve;
mod summary;

use actix_web::http::header::ContentType;
use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};

use super::input::{invalid, Input};
use super::plugin;
use super::{body_or_query_input, json_input, needs, ok, resource, visible_app, Authorized};
use crate::error::{ApiError, Code, Field};
use crate::ids;
use crate::model::{Cursor, DeviceFilter, DeviceListQuery, DeviceOrder, DevicePage, Platform};
use crate::render::cursor::{format_cursor, parse_cursor};
use crate::render::device::{DeviceView, DEVICE_JSON_BYTES};
use crate::render::json as json_out;
use crate::state::AppState;
use crate::store::{
    off_workers, BulkOutcome, EraseTarget, OverrideAction, OverrideChange, OverrideWrite,
};
use crate::timefmt::{format_micros, parse_rfc3339};
use serde_json::json;

// What the concerns share, and the handlers `configure` routes to.
use audit::audit_log;
use erase::erase_device;
use export::export_devices;
use list::{get_devices, parse_filter};
use overrides::{bulk_link, bulk_unlink, link_device, overrides_json, unlink_device};
use resolve::resolve_device;
use summary::summary;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;
/// Rows a filtered page may examine (see [`DeviceListQuery::max_examined`]).
pub const MAX_EXAMINED_PER_PAGE: usize = 10_000;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resource("/device/resolve").route(crate::routes::get().to(resolve_device)));
    cfg.service(resource("/device/export").route(crate::routes::get().to(export_devices)));
    cfg.service(resource("/device/erase").route(web::post().to(erase_device)));
    cfg.service(resource("/device/audit").route(crate::routes::get().to(audit_log)));
    cfg.service(resource("/device/summary").route(crate::routes::get().to(summary)));
    cfg.service(
        resource("/device/bulk")
            .route(web::post().to(bulk_link))
            .route(web::delete().to(bulk_unlink)),
    );
    cfg.service(
        resource("/device")
            .route(crate::routes::get().to(get_devices))
            .route(web::post().to(link_device))
            .route(web::delete().to(unlink_device)),
    );
}

fn json_answer(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

fn parse_limit(input: &Input) -> Result<usize, ApiError> {
    let Some(text) = input.str(Field::Limit)? else {
        return Ok(DEFAULT_LIMIT);
    };
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse::<usize>().ok())
        .flatten()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or_else(|| {
            invalid(
                Field::Limit,
                "an integer from 1 to 1000",
                input.raw(Field::Limit),
            )
        })
}
