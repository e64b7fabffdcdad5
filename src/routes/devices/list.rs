//! `GET /device`: one device, or a page of them with the list's order, cursor and filters.

use super::*;
use crate::error::Field;

/// `{"data": [devices], "nextCursor"?, "hasMore"}`.
pub(super) fn device_list_json(page: &DevicePage) -> Vec<u8> {
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

pub(super) fn parse_list_query(input: &Input) -> Result<DeviceListQuery, ApiError> {
    let limit = parse_limit(input)?;
    let order = match input.str(Field::Order)? {
        None => DeviceOrder::DeviceId,
        Some("asc") => DeviceOrder::UpdatedAsc,
        Some("desc") => DeviceOrder::UpdatedDesc,
        Some(_) => {
            return Err(invalid(
                Field::Order,
                "asc or desc",
                input.raw(Field::Order),
            ))
        }
    };
    // An instant before 1970 lists everything, as every device is later than it.
    let updated_after = input.parsed(Field::UpdatedAt, "expected an RFC 3339 instant", |text| {
        parse_rfc3339(text).map(|micros| u64::try_from(micros).unwrap_or(0))
    })?;
    let after = input.parsed(
        Field::Cursor,
        "expected the nextCursor of a previous page, <updated_at>|<device_id>",
        parse_cursor,
    )?;
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
pub(super) fn parse_filter(input: &Input) -> Result<DeviceFilter, ApiError> {
    let text = |field: Field, allow_empty: bool| -> Result<Option<String>, ApiError> {
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
    let platform = match input.str(Field::Platform)? {
        None => None,
        Some(value) => Some(Platform::parse(value).ok_or_else(|| {
            invalid(
                Field::Platform,
                "ios, android or electron",
                input.raw(Field::Platform),
            )
        })?),
    };
    Ok(DeviceFilter {
        // Stored custom ids are trimmed; a filter for one is too.
        custom_id: text(Field::CustomId, true)?.map(|id| id.trim().to_owned()),
        custom_id_prefix: text(Field::CustomIdPrefix, false)?,
        platform,
        version_name: text(Field::VersionName, false)?,
        channel: input.name(Field::Channel)?,
        has_override: input.bool(Field::HasOverride)?,
        is_prod: input.bool(Field::IsProd)?,
        is_emulator: input.bool(Field::IsEmulator)?,
    })
}

/// What a `GET /device` asks for.
enum Wanted {
    One(String),
    Page(DeviceListQuery),
}

/// One device, or why not: the app's existence is read only when the device is not found.
async fn one_device(
    state: &AppState,
    app_id: String,
    device_id: String,
) -> Result<HttpResponse, ApiError> {
    let (entry, app_exists) = crate::store::read(&state.store, {
        let (app_id, device_id) = (app_id.clone(), device_id.clone());
        move |store| match store.device(&app_id, &device_id)? {
            Some(entry) => Ok((Some(entry), true)),
            None => Ok((None, store.app_exists(&app_id)?)),
        }
    })
    .await?;
    let Some(entry) = entry else {
        return Err(if app_exists {
            ApiError::new(Code::DeviceNotFound).info("device_id", device_id.as_str())
        } else {
            crate::routes::app_not_found(&app_id)
        });
    };
    let mut body = Vec::with_capacity(DEVICE_JSON_BYTES);
    DeviceView::from(&entry).write_json(&mut body);
    Ok(json_answer(body))
}

pub(super) async fn get_devices(
    caller: Authorized<needs::DevicesRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    caller.require_app(&app_id)?;
    // The app's existence is read only where the answer does not already prove it (a device
    // found, a page with devices: devices belong to an existing app); a request that is also
    // malformed says first that the app is missing, as everywhere.
    let wanted = input.device_id().and_then(|device_id| match device_id {
        Some(device_id) => Ok(Wanted::One(device_id)),
        None => parse_list_query(&input).map(Wanted::Page),
    });
    let query = match wanted {
        Ok(Wanted::Page(query)) => query,
        Ok(Wanted::One(device_id)) => return one_device(&state, app_id, device_id).await,
        Err(error) => {
            visible_app(&state, &caller, &app_id).await?;
            return Err(error);
        }
    };

    let (page, app_exists) = crate::store::read(&state.store, {
        let app_id = app_id.clone();
        move |store| {
            let page = store.list_devices(&app_id, &query)?;
            let exists = !page.devices.is_empty() || store.app_exists(&app_id)?;
            Ok((page, exists))
        }
    })
    .await?;
    if !app_exists {
        return Err(crate::routes::app_not_found(&app_id));
    }
    Ok(json_answer(device_list_json(&page)))
}
