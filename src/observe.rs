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
    let request_id = rand::random::<u64>();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    // What the log line needs is gathered only when it will be written.
    let logged = log::log_enabled!(log::Level::Info).then(|| {
        let client = state
            .as_ref()
            .map(|state| crate::routes::client_ip(request.request(), state).to_string())
            .unwrap_or_default();
        (client, request.path().to_owned())
    });
    let method = request.method().clone();
    let response = service.call(request);
    async move {
        let mut result = response.await;
        let elapsed = started.elapsed();
        let status = match &mut result {
            Ok(response) => {
                let mut id = [0u8; 16];
                let id = hex16(request_id, &mut id);
                response.headers_mut().insert(
                    REQUEST_ID,
                    HeaderValue::from_bytes(id).expect("hex is a valid header value"),
                );
                let route = response.request().match_name().unwrap_or("unmatched");
                let status = response.status().as_u16();
                if let Some(state) = &state {
                    state
                        .metrics
                        .record_request(route, method.as_str(), status, elapsed);
                }
                status
            }
            Err(error) => {
                let status = error.as_response_error().status_code().as_u16();
                if let Some(state) = &state {
                    state
                        .metrics
                        .record_request("unmatched", method.as_str(), status, elapsed);
                }
                status
            }
        };
        if let Some((client, path)) = logged {
            log::info!(
                "request_id={request_id:016x} client={client} method={method} path={path:?} status={status} duration_ms={:.3}",
                elapsed.as_secs_f64() * 1e3
            );
        }
        result
    }
}

/// `value` as 16 lowercase hex digits, without allocating.
fn hex16(value: u64, out: &mut [u8; 16]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = DIGITS[((value >> (60 - 4 * i)) & 0xF) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_16_hex_digits() {
        let mut out = [0u8; 16];
        assert_eq!(
            super::hex16(0x00ab_cdef_0123_4567, &mut out),
            b"00abcdef01234567"
        );
    }
}
