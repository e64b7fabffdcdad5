//! `/health`, `/metrics`, request ids.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;

use crate::common::*;

#[actix_web::test]
async fn health_needs_no_key() {
    let server = TestServer::new().await;
    let (status, _, body) = server.send(TestRequest::get().uri("/health")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

#[actix_web::test]
async fn every_answer_carries_a_request_id() {
    let server = TestServer::new().await;
    let (_, headers, _) = server.send(TestRequest::get().uri("/health")).await;
    let first = headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let (_, headers, _) = server.send(TestRequest::get().uri("/nowhere")).await;
    let second = headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.len(), 16);
    assert_ne!(first, second);
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_devices_by_app() {
    let server = TestServer::new().await;
    server.create_app("app_metrics").await;
    server.create_app("app_hidden").await;
    server.report("app_metrics", "d1").await;
    server.report("app_metrics", "d2").await;
    server
        .create_channel("app_metrics", "beta", json!({}))
        .await;
    let (status, _) = server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_metrics", "device_id": "d1", "channel": "beta"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server
        .get("/device/?app_id=app_metrics&device_id=d1", ADMIN)
        .await;
    server
        .get("/device/?app_id=app_metrics&device_id=nobody", ADMIN)
        .await;

    let (status, _, _) = server.send(TestRequest::get().uri("/metrics")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let key = server.key("read", &["app_metrics"]).await;
    let request = TestRequest::get()
        .uri("/metrics")
        .insert_header(("authorization", key));
    let response = actix_web::test::call_service(
        &actix_web::test::init_service(device_registry::create_app(
            device_registry::AppState::new(
                std::sync::Arc::new(device_registry::store::StoreHandle::fixed(
                    server.store.clone(),
                )),
                server.clock.clone(),
                &config(),
            ),
        ))
        .await,
        request.to_request(),
    )
    .await;
    // A fresh app over the same store sees the devices; request counts are per process.
    let text = String::from_utf8(actix_web::test::read_body(response).await.to_vec()).unwrap();
    assert!(
        text.contains("device_registry_devices{app_id=\"app_metrics\"} 2"),
        "{text}"
    );
    assert!(
        !text.contains("app_hidden"),
        "an app-limited key saw another app: {text}"
    );

    let raw = TestRequest::get()
        .uri("/metrics")
        .insert_header(("authorization", ADMIN))
        .to_request();
    let (status, text) = server.send_text(raw).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(
            "device_registry_requests_total{route=\"/device\",method=\"GET\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "device_registry_requests_total{route=\"/device\",method=\"GET\",status=\"404\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "device_registry_requests_total{route=\"/stats\",method=\"POST\",status=\"200\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains("device_registry_request_duration_seconds_count{route=\"/device\"} 3"),
        "{text}"
    );
    // Two apps, a key, a channel and a link.
    assert!(
        text.contains("device_registry_durable_commits_total 5"),
        "{text}"
    );
    assert!(
        text.contains("device_registry_override_writes_total 1"),
        "{text}"
    );
    assert!(
        text.contains("device_registry_override_batches_total 1"),
        "{text}"
    );
    // Two devices reported one after the other: two check-ins written, one transaction each.
    assert!(
        text.contains("device_registry_check_in_writes_total 2"),
        "{text}"
    );
    assert!(
        text.contains("device_registry_check_in_batches_total 2"),
        "{text}"
    );
    assert!(text.contains("device_registry_store_size_bytes "), "{text}");
    assert!(
        text.contains("device_registry_devices{app_id=\"app_hidden\"} 0"),
        "{text}"
    );
}

#[actix_web::test]
async fn concurrent_scrapes_share_one_count_of_the_devices() {
    let server = TestServer::new().await;
    server.create_app("app_scrapes").await;
    server.report("app_scrapes", "d").await;
    let scrape = || {
        let request = TestRequest::get()
            .uri("/metrics")
            .insert_header(("authorization", ADMIN))
            .to_request();
        server.send_text(request)
    };
    // Eight scrapes at once, with nothing counted yet: one scan of the device keys, whose
    // figures all eight report.
    let answers = futures_util::future::join_all((0..8).map(|_| scrape())).await;
    for (status, text) in &answers {
        assert_eq!(*status, StatusCode::OK);
        assert!(
            text.contains("device_registry_devices{app_id=\"app_scrapes\"} 1"),
            "{text}"
        );
    }
    let (_, text) = scrape().await;
    assert!(
        text.contains("device_registry_device_count_scans_total 1\n"),
        "{text}"
    );
}
