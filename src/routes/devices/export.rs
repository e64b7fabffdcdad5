//! `GET /device/export`: every device of an app, streamed a page at a time.

use super::*;
use crate::error::Field;

/// `GET /device/export?app_id=[&format=csv]`: every device of the app, NDJSON by default, read
/// and sent a page at a time (never all in memory), in device id order.
pub(super) async fn export_devices(
    caller: Authorized<needs::DevicesRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let format = input
        .parsed(Field::Format, "ndjson or csv", crate::export::Format::parse)?
        .unwrap_or(crate::export::Format::Ndjson);
    visible_app(&state, &caller, &app_id).await?;
    // HEAD asks for the headers: the export itself would be read only to be thrown away.
    if req.method() == actix_web::http::Method::HEAD {
        return Ok(HttpResponse::Ok()
            .content_type(format.content_type())
            .finish());
    }
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    let fetch = move |after: Option<Cursor>| {
        let (store, app_id) = (store.clone(), app_id.clone());
        async move {
            off_workers(&store, move |store| {
                crate::export::page(store, &app_id, &DeviceFilter::default(), after)
            })
            .await
        }
    };
    let failed = move |error: &crate::store::StoreError| {
        log::error!("export failed: {error}");
        metrics.export_failed();
    };
    let pages =
        futures_util::StreamExt::map(crate::export::stream(format, fetch, failed), |text| {
            text.map(web::Bytes::from)
        });
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .streaming(pages))
}
