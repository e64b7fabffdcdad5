//! The outermost middleware: gives each request an id (the `x-request-id` answer header), logs
//! one structured line per request, and records it in the metrics. The line names the client,
//! method, path (without the query string), status and time; never a header, so never a key.

use std::future::Future;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web;

use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn observe<S, B>(
    request: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody,
{
    let started = Instant::now();
    let request_id = format!("{:016x}", rand::random::<u64>());
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let client = state
        .as_ref()
        .map(|state| crate::routes::client_ip(request.request(), state).to_string())
        .unwrap_or_default();
    let method = request.method().to_string();
    let path = request.path().to_owned();
    let response = service.call(request);
    async move {
        let mut result = response.await;
        let elapsed = started.elapsed();
        let (status, route) = match &mut result {
            Ok(response) => {
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert(REQUEST_ID, value);
                }
                let route = response
                    .request()
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".into());
                (response.status().as_u16(), route)
            }
            Err(error) => (
                error.as_response_error().status_code().as_u16(),
                "unmatched".into(),
            ),
        };
        if let Some(state) = &state {
            state
                .metrics
                .record_request(&route, &method, status, elapsed);
        }
        log::info!(
            "request_id={request_id} client={client} method={method} path={path:?} status={status} duration_ms={:.3}",
            elapsed.as_secs_f64() * 1e3
        );
        result
    }
}
