//! The plain HTTP listener of a server that speaks HTTPS (`server.redirect_http`): it answers
//! ACME's HTTP-01 validations, serves the plugin endpoints as they are (a plugin must not be
//! sent a redirect for a POST with a body: it would not follow it), and sends everything else
//! to the same path over HTTPS with a 308, which keeps the method and the body.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::future::{ready, LocalBoxFuture};
use futures_util::FutureExt;

use crate::state::AppState;

const ACME_CHALLENGES: &str = "/.well-known/acme-challenge/";
const PLUGIN_PATHS: [&str; 4] = [
    "/updates",
    "/updates/manifest_size",
    "/stats",
    "/channel_self",
];

/// Middleware: passes requests over TLS (and every request of a server without HTTPS) through.
pub fn divert<S, B>(
    request: ServiceRequest,
    service: &S,
) -> LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B, BoxBody>>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    // Requests over TLS, and every request of a server without HTTPS, pass through: one flag
    // and one lookup on the hot path.
    let https = match request.app_config().secure() {
        true => None,
        false => request
            .app_data::<web::Data<AppState>>()
            .and_then(|state| state.https.clone()),
    };
    let plugin = || PLUGIN_PATHS.contains(&request.path().trim_end_matches('/'));
    let Some(https) = https.filter(|_| !plugin()) else {
        return service
            .call(request)
            .map(|response| response.map(ServiceResponse::map_into_left_body))
            .boxed_local();
    };
    let response = if let Some(token) = request.path().strip_prefix(ACME_CHALLENGES) {
        match https.tokens.answer(token) {
            Some(answer) => HttpResponse::Ok()
                .content_type("application/octet-stream")
                .body(answer),
            None => HttpResponse::NotFound().finish(),
        }
    } else {
        // The name the client asked for (its own Host header: never X-Forwarded-Host or
        // Forwarded, which anyone can write), without its port: the HTTPS port is ours.
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .filter(|host| {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("localhost")
            .to_owned();
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
            _ => host,
        };
        let port = match https.port {
            443 => String::new(),
            port => format!(":{port}"),
        };
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str());
        HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, format!("https://{name}{port}{target}")))
            .finish()
    };
    ready(Ok(request.into_response(response).map_into_right_body())).boxed_local()
}
