//! Abuse limits: failed authentications and the plugin endpoints, per client address.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;

use crate::common::*;

fn from(ip: &'static str, key: &str) -> TestRequest {
    TestRequest::get()
        .uri("/app")
        .insert_header(("authorization", key.to_owned()))
        .insert_header(("x-forwarded-for", ip))
}

#[actix_web::test]
async fn twenty_failed_authentications_lock_the_client_out_for_the_window() {
    let mut config = config();
    config.server.client_ip_header = "x-forwarded-for".into();
    let server = TestServer::with_config(config).await;
    for _ in 0..20 {
        let (status, _, body) = server.send(from("198.51.100.7", "guess")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_apikey"))
        );
    }
    // Now even the right key is refused, with the time to wait.
    let (status, headers, body) = server.send(from("198.51.100.7", ADMIN)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body,
        error(
            "too_many_requests",
            "Too many requests",
            json!({"retryAfter": 900})
        )
    );
    assert_eq!(headers.get("retry-after").unwrap(), "900");
    // Another client is not affected.
    let (status, _, _) = server.send(from("198.51.100.8", ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    // Once the window has passed, the client may try again.
    server.clock.advance(15 * 60 * SECOND);
    let (status, _, _) = server.send(from("198.51.100.7", ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn what_a_client_writes_in_the_forwarding_header_does_not_make_it_another_client() {
    let mut config = config();
    config.server.client_ip_header = "x-forwarded-for".into();
    let server = TestServer::with_config(config).await;
    // The proxy appends the address it saw; the client rotates what it writes before it, in
    // the same line or in a line of its own (proxies that add a line leave the client's first).
    for i in 0..20 {
        let forged = format!("10.0.0.{i}");
        let request = TestRequest::get()
            .uri("/app")
            .insert_header(("authorization", "guess"));
        let request = if i % 2 == 0 {
            request.insert_header(("x-forwarded-for", format!("{forged}, 198.51.100.9")))
        } else {
            request
                .append_header(("x-forwarded-for", forged))
                .append_header(("x-forwarded-for", "198.51.100.9"))
        };
        assert_eq!(server.send(request).await.0, StatusCode::UNAUTHORIZED);
    }
    // The same client, spelt otherwise, is locked out too.
    for spelling in ["198.51.100.9", "::ffff:198.51.100.9", "198.51.100.9:4000"] {
        let (status, _, _) = server.send(from(spelling, ADMIN)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{spelling}");
    }
}

#[actix_web::test]
async fn missing_keys_do_not_count_as_failures() {
    let server = TestServer::new().await;
    for _ in 0..30 {
        let (status, _, _) = server.send(TestRequest::get().uri("/app")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = server.get("/app", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn plugin_endpoints_can_be_rate_limited_per_client() {
    let mut config = config();
    config.limits.plugin_per_minute = 5;
    let server = TestServer::with_config(config).await;
    server.create_app("app_flood").await;
    for i in 0..5 {
        server.report("app_flood", &format!("d{i}")).await;
    }
    let mut body = device_body("app_flood", "d9");
    body["action"] = json!("get");
    let (status, answer) = server.plugin("/stats", body.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests"))
    );
    let (status, _) = server.plugin("/updates", body.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Management calls are not counted against it.
    let (status, _) = server.get("/device/?app_id=app_flood", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    server.clock.advance(12 * SECOND);
    let (status, _) = server.plugin("/stats", body).await;
    assert_eq!(status, StatusCode::OK);
}
