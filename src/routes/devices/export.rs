//! `GET /device/export`: every device of an app, streamed a page at a time.

use super::*;
use crate::error::Field;

/// Where an export stream is.
pub(super) enum ExportPosition {
    Header,
    After(Option<Cursor>),
    Done,
}

/// `GET /device/export?app_id=[&format=csv]`: every device of the app, NDJSON by default, read
/// and sent a page at a time (never all in memory), in device id order.
pub(super) async fn export_devices(
    caller: Authorized<needs::DevicesRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let format = match input.str(Field::Format)? {
        None => crate::export::Format::Ndjson,
        Some(text) => crate::export::Format::parse(text)
            .ok_or_else(|| invalid(Field::Format, "ndjson or csv", input.raw(Field::Format)))?,
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
            let page = off_workers(&store, move |store| {
                crate::export::page(store, &app_id, &DeviceFilter::default(), after)
            })
            .await;
            match page {
                Ok(page) => {
                    let mut rows = String::with_capacity(page.devices.len() * 320);
                    crate::export::render(format, &page.devices, &mut rows);
                    let next = page.next.map_or(ExportPosition::Done, |cursor| {
                        ExportPosition::After(Some(cursor))
                    });
                    Some((Ok(web::Bytes::from(rows)), next))
                }
                Err(error) => {
                    // The answer has begun: all that can be done is to end it short.
                    log::error!("export failed: {error}");
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
