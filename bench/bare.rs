//! A bare actix-web server answering `GET /health` with the bytes device-registry answers, on
//! the same worker count: the ceiling the request pipeline is measured against (bench/run.sh).
//!
//!     BIND=127.0.0.1:18098 cargo bench --bench bare

use actix_web::{web, App, HttpResponse, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:18098".into());
    HttpServer::new(|| {
        App::new().route(
            "/health",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(r#"{"status":"ok"}"#)
            }),
        )
    })
    .bind(bind)?
    .run()
    .await
}
