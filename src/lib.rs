//! device-registry: the registry of Capacitor live-update devices and the Devices API that
//! manages it. [`create_app`] builds the HTTP application for both the binary and the tests.

pub mod auth;
pub mod background;
pub mod backup_file;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod export;
pub mod guard;
pub mod health;
pub mod ids;
pub mod import;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod openapi;
pub mod plugin_version;
pub mod render;
pub mod resolve;
pub mod rollout;
pub mod routes;
pub mod server;
pub mod state;
pub mod store;
pub mod supervise;
pub mod sweep;
pub mod timefmt;
pub mod tls;

use std::panic::AssertUnwindSafe;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::ErrorHandlers;
use actix_web::{web, App};
use futures_util::FutureExt;

use error::{ApiError, Code};
pub use state::AppState;

pub fn create_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        .configure(routes::configure)
        .configure(console::configure)
        .default_service(web::to(routes::not_found))
        .wrap(ErrorHandlers::new().default_handler(routes::json_error_body))
        // A panic in a handler answers 500 `internal_error` instead of dropping the connection.
        .wrap_fn(|request, service| {
            let response = service.call(request);
            async move {
                match AssertUnwindSafe(response).catch_unwind().await {
                    Ok(result) => result,
                    Err(_) => {
                        log::error!("a request handler panicked");
                        Err(ApiError::new(Code::Internal).into())
                    }
                }
            }
        })
        .wrap_fn(|mut request, service| {
            routes::trim_trailing_slash(&mut request);
            service.call(request)
        })
        .wrap_fn(routes::plain_http::divert)
        .wrap_fn(observe::observe)
}
