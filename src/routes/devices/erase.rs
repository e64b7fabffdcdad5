//! `POST /device/erase`: devices removed for good.

use super::*;
use crate::error::Field;

/// `POST /device/erase {"app_id", "device_id"}` or `{"app_id", "custom_id"}` (mode `all`): removes
/// the device(s) for good, with their index entries and overrides, and answers what was removed.
pub(super) async fn erase_device(
    caller: Authorized<needs::DevicesAll>,
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = json_input(&req, payload, &state).await?;
    let app_id = input.app_id()?;
    let device_id = input.device_id()?;
    let custom_id = input.parsed(
        Field::CustomId,
        "1 to 256 bytes without control characters",
        |text| ids::normalize_custom_id(text).filter(|id| !id.is_empty()),
    )?;
    let by_custom_id = match (&device_id, &custom_id) {
        (Some(_), None) => false,
        (None, Some(_)) => true,
        (None, None) => return Err(crate::routes::input::missing(Field::DeviceIdOrCustomId)),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                Field::Target,
                "either device_id or custom_id, not both",
                None,
            ))
        }
    };
    visible_app(&state, &caller, &app_id).await?;
    let erase_app = app_id.clone();
    let change = crate::routes::change_by(&caller, &state);
    let needle = device_id
        .clone()
        .or_else(|| custom_id.clone())
        .unwrap_or_default();
    let erased = off_workers(&state.store, move |store| {
        let target = if by_custom_id {
            EraseTarget::CustomId(&needle)
        } else {
            EraseTarget::Device(&needle)
        };
        store.erase_devices(&erase_app, target, change)
    })
    .await?;
    if erased.is_empty() {
        let error = ApiError::new(Code::DeviceNotFound);
        return Err(match (device_id, custom_id) {
            (Some(device_id), _) => error.info("device_id", device_id),
            (_, Some(custom_id)) => error.info("custom_id", custom_id),
            _ => error,
        });
    }
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
