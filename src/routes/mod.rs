//! HTTP routes, one module per resource. Handlers parse, authorize, call the store, render.

pub mod apikeys;
pub mod apps;
pub mod bundles;
pub mod channels;
pub mod devices;
pub mod input;
pub mod ops;
pub mod plain_http;
pub mod plugin;

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::json;
use std::net::{IpAddr, Ipv6Addr};

use crate::auth::{self, Caller};
use crate::error::{ApiError, Code};
use crate::model::Mode;
use crate::state::AppState;
use crate::store::Change;
use input::Input;

pub fn configure(cfg: &mut ServiceConfig) {
    // The router tries resources in this order: the busiest first, and the two with a path
    // parameter (matched by regular expression) last.
    plugin::configure(cfg);
    devices::configure(cfg);
    channels::configure(cfg);
    bundles::configure(cfg);
    ops::configure(cfg);
    apps::configure(cfg);
    apikeys::configure(cfg);
}

/// A resource whose unsupported methods answer 405 in the contract's shape.
/// Every path a resource was registered for, so that tests can hold the OpenAPI document to it.
static REGISTERED: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The paths registered so far (by building the app).
pub fn registered_paths() -> Vec<&'static str> {
    REGISTERED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect()
}

/// A resource answering on `path` (and `path/`, see [`trim_trailing_slash`]), named after `path`
/// so that metrics can name the route without allocating; unsupported methods answer 405 in the
/// contract's shape. One pattern per resource: actix matches a single static pattern by string
/// comparison, but a set of patterns by regular expressions, tried on every resource in turn.
pub(crate) fn resource(path: &'static str) -> actix_web::Resource {
    REGISTERED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path);
    web::resource(path)
        .name(path)
        .default_service(web::to(method_not_allowed))
}

/// A route for `GET`, which answers `HEAD` too (its headers, without the body: the HTTP layer
/// drops a `HEAD` answer's body).
pub(crate) fn get() -> actix_web::Route {
    web::route().guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
}

/// Routes `path/` as `path` (the seed writes `/device/`): the one trailing slash is removed from
/// the request's URI before routing. Paths without one are left untouched, at no cost.
pub fn trim_trailing_slash(request: &mut actix_web::dev::ServiceRequest) {
    let path = request.path();
    if path.len() < 2 || !path.ends_with('/') {
        return;
    }
    let trimmed = &path[..path.len() - 1];
    // Only one slash comes off: `//` is not `/`, nor `/device//` `/device/`.
    if trimmed.ends_with('/') {
        return;
    }
    let path_and_query = match request.query_string() {
        "" => trimmed.to_owned(),
        query => format!("{trimmed}?{query}"),
    };
    let mut parts = request.head().uri.clone().into_parts();
    let Ok(path_and_query) = path_and_query.parse() else {
        return;
    };
    parts.path_and_query = Some(path_and_query);
    if let Ok(uri) = actix_web::http::Uri::from_parts(parts) {
        request.match_info_mut().get_mut().update(&uri);
        request.head_mut().uri = uri;
    }
}

pub async fn not_found() -> HttpResponse {
    ApiError::new(Code::NotFound).error_response()
}

/// 405 in the contract's shape, with the `Allow` header RFC 9110 asks for: the methods the
/// OpenAPI document gives the resource's path (a test holds the document to the routes), `HEAD`
/// wherever `GET` is; the console's pages answer `GET` and `HEAD` only.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut response = ApiError::new(Code::MethodNotAllowed).error_response();
    if let Some(allow) = req.match_name().and_then(allowed_methods) {
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    response
}

/// The `Allow` value of each resource, by its path (resources are named after their paths).
fn allowed_methods(path: &str) -> Option<&'static str> {
    static ALLOW: std::sync::LazyLock<std::collections::HashMap<&'static str, String>> =
        std::sync::LazyLock::new(|| {
            let mut methods: std::collections::HashMap<&str, Vec<&str>> =
                std::collections::HashMap::new();
            for operation in crate::openapi::OPERATIONS {
                let listed = methods.entry(operation.path).or_default();
                listed.push(match operation.method {
                    "get" => "GET, HEAD",
                    "post" => "POST",
                    "put" => "PUT",
                    "delete" => "DELETE",
                    "patch" => "PATCH",
                    other => other,
                });
            }
            methods
                .into_iter()
                .map(|(path, listed)| (path, listed.join(", ")))
                .collect()
        });
    if path == "/" || path.starts_with("/console") {
        return Some("GET, HEAD");
    }
    ALLOW.get(path).map(String::as_str)
}

/// The client's address: the one the outermost trusted proxy saw (`trusted_proxies` entries
/// from the right of the configured header, which each proxy appends to: what a client writes
/// there itself is further left, and never read), else the connection's peer. Normalised, so
/// that one client is one address whatever its spelling.
pub(crate) fn client_ip(req: &HttpRequest, state: &AppState) -> IpAddr {
    let peer = || req.peer_addr().map(|addr| addr.ip());
    let client = match state.client_ip_header.as_deref() {
        // Behind proxies, every request is the proxy's connection: the client is what the
        // header says, or, when it says nothing readable, one shared unknown client (never
        // the proxy's own address, which every client would then share with the proxy).
        Some(name) => {
            let lines: Vec<&str> = req
                .headers()
                .get_all(name)
                .map(|line| line.to_str().unwrap_or(""))
                .collect();
            forwarded_client(&lines.join(","), state.trusted_proxies)
        }
        None => peer(),
    };
    client
        .map(canonical_ip)
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}

/// The entry `hops` from the right of a forwarding header (`a, b, c`), as an address; `None`
/// when the header holds fewer entries (the request did not come through every proxy) or the
/// entry is not an address.
fn forwarded_client(value: &str, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    let entry = entries.len().checked_sub(hops).map(|i| entries[i])?;
    parse_ip(entry)
}

/// An address as proxies write it: bare, with a port (`1.2.3.4:80`), or bracketed (`[::1]:80`).
fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| text.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:1.2.3.4`) is the IPv4 client.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn too_many_requests(retry_after: u64) -> ApiError {
    ApiError::new(Code::TooManyRequests).info("retryAfter", retry_after)
}

/// What a route needs of the caller's key, stated in the handler's signature as the type of its
/// [`Authorized`] argument, so that no handler can forget to authenticate.
pub(crate) trait Needs {
    const MODE: Mode;
    /// The refusal's wording when the key's mode is too low, where the contract has its own.
    const DENIED: Option<&'static str> = None;
}

/// The modes routes need (see [`Needs`]); `Devices*` use the seed's wording for the Devices API.
pub(crate) mod needs {
    use super::{Mode, Needs};

    pub struct Read;
    pub struct Write;
    pub struct All;
    pub struct DevicesRead;
    pub struct DevicesWrite;
    pub struct DevicesAll;

    const DEVICES: Option<&str> = Some("Insufficient permissions to manage devices");

    impl Needs for Read {
        const MODE: Mode = Mode::Read;
    }
    impl Needs for Write {
        const MODE: Mode = Mode::Write;
    }
    impl Needs for All {
        const MODE: Mode = Mode::All;
    }
    impl Needs for DevicesRead {
        const MODE: Mode = Mode::Read;
        const DENIED: Option<&'static str> = DEVICES;
    }
    impl Needs for DevicesWrite {
        const MODE: Mode = Mode::Write;
        const DENIED: Option<&'static str> = DEVICES;
    }
    impl Needs for DevicesAll {
        const MODE: Mode = Mode::All;
        const DENIED: Option<&'static str> = DEVICES;
    }
}

/// The authenticated caller of a route that needs `N`: extracted before the body is read, so a
/// request without the right key is refused first.
pub(crate) struct Authorized<N: Needs> {
    caller: Caller,
    needs: std::marker::PhantomData<N>,
}

impl<N: Needs> std::ops::Deref for Authorized<N> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<N: Needs> actix_web::FromRequest for Authorized<N> {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<AppState>>() else {
                return Err(ApiError::new(Code::Internal));
            };
            let caller = caller(&req, state, N::MODE)
                .await
                .map_err(|error| match N::DENIED {
                    Some(wording) if error.code() == Code::InsufficientPermissions.as_str() => {
                        error.message(wording)
                    }
                    _ => error,
                })?;
            Ok(Authorized {
                caller,
                needs: std::marker::PhantomData,
            })
        })
    }
}

/// Authenticates the request and checks the key's mode. A client with too many recent failed
/// authentications is refused before its key is even looked at.
async fn caller(req: &HttpRequest, state: &AppState, mode: Mode) -> Result<Caller, ApiError> {
    let client = client_ip(req, state);
    let now = state.clock.now();
    if let Some(retry_after) = state.auth_failures.retry_after(client, now) {
        return Err(too_many_requests(retry_after));
    }
    let caller = auth::authenticate(req.headers(), state)
        .await
        .inspect_err(|error| {
            if error.code() == Code::InvalidApiKey.as_str() {
                state.auth_failures.record_failure(client, now);
            }
        })?;
    caller.require(mode)?;
    Ok(caller)
}

/// A change made now by this caller, as the audit log records it.
pub(crate) fn change_by(caller: &Caller, state: &AppState) -> Change {
    Change {
        actor: caller.actor(),
        at: state.clock.now(),
    }
}

/// The per-client limit of the plugin endpoints.
pub(crate) fn plugin_allowed(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    match state
        .plugin_limit
        .check(client_ip(req, state), state.clock.now())
    {
        Some(retry_after) => Err(too_many_requests(retry_after)),
        None => Ok(()),
    }
}

/// Checks that the app exists and the caller may see it: 403 before 404, so that nothing is
/// learnt of other apps.
pub(crate) async fn visible_app(
    state: &AppState,
    caller: &Caller,
    app_id: &str,
) -> Result<(), ApiError> {
    caller.require_app(app_id)?;
    let app = app_id.to_owned();
    if crate::store::read(&state.store, move |store| store.app_exists(&app)).await? {
        Ok(())
    } else {
        Err(app_not_found(app_id))
    }
}

pub(crate) fn app_not_found(app_id: &str) -> ApiError {
    ApiError::new(Code::AppNotFound).info("app_id", app_id)
}

pub(crate) async fn body(
    headers: &HeaderMap,
    payload: Payload,
    state: &AppState,
) -> Result<web::Bytes, ApiError> {
    input::read_body(headers, payload, state.max_body, state.body_timeout).await
}

/// A JSON object body, read within the configured limit.
pub(crate) async fn json_input(
    req: &HttpRequest,
    payload: Payload,
    state: &AppState,
) -> Result<Input, ApiError> {
    let bytes = body(req.headers(), payload, state).await?;
    Input::from_json(req.headers(), &bytes)
}

/// A JSON body if there is one, else the query string.
pub(crate) async fn body_or_query_input(
    req: &HttpRequest,
    payload: Payload,
    state: &AppState,
) -> Result<Input, ApiError> {
    let bytes = body(req.headers(), payload, state).await?;
    Input::from_body_or_query(req.headers(), &bytes, req.query_string())
}

pub(crate) fn ok() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Rewrites any error response that is not already JSON (from actix itself, say) into the
/// contract's shape, so that no client ever sees an HTML or empty error page.
pub fn json_error_body<B>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let error = match response.status() {
        StatusCode::NOT_FOUND => ApiError::new(Code::NotFound),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(Code::MethodNotAllowed),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(Code::PayloadTooLarge),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(Code::UnsupportedMediaType),
        status if status.is_client_error() => ApiError::new(Code::InvalidQuery)
            .message("Bad request")
            .info("status", status.as_u16()),
        _ => ApiError::new(Code::Internal),
    };
    let (request, _) = response.into_parts();
    let rendered: HttpResponse<BoxBody> = error.error_response();
    let response: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(request, rendered).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_what_the_trusted_proxies_saw() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        // One proxy: what a client writes itself is on the left, never read.
        assert_eq!(
            forwarded_client("6.6.6.6, 198.51.100.7", 1),
            Some(ip("198.51.100.7"))
        );
        // Two proxies: the second appended the first's address.
        assert_eq!(
            forwarded_client("198.51.100.7, 10.0.0.2", 2),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(forwarded_client("10.0.0.2", 2), None);
        assert_eq!(forwarded_client("not an address", 1), None);
        // One client, however it is spelt.
        for spelling in ["198.51.100.7", "198.51.100.7:4321", "::ffff:198.51.100.7"] {
            let parsed = forwarded_client(spelling, 1).map(canonical_ip);
            assert_eq!(parsed, Some(ip("198.51.100.7")), "{spelling}");
        }
        assert_eq!(
            forwarded_client("[2001:db8::1]:443", 1),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            forwarded_client("[2001:db8::1]", 1),
            Some(ip("2001:db8::1"))
        );
    }
}
