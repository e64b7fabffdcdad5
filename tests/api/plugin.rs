//! `POST /stats`: how devices arrive (spec section 5).

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

async fn device(server: &TestServer, app: &str, id: &str) -> (StatusCode, Value) {
    server
        .get(&format!("/device/?app_id={app}&device_id={id}"), ADMIN)
        .await
}

#[actix_web::test]
async fn an_array_of_events_reports_each() {
    let server = TestServer::new().await;
    server.create_app("app_stats").await;
    let mut a = device_body("app_stats", "a");
    a["action"] = json!("set");
    let mut b = device_body("app_stats", "b");
    b["action"] = json!("download_complete");
    let (status, body) = server.plugin("/stats", json!([a, b])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "ok", "results": [{"status": "ok"}, {"status": "ok"}]})
    );
    assert_eq!(device(&server, "app_stats", "a").await.0, StatusCode::OK);
    assert_eq!(device(&server, "app_stats", "b").await.0, StatusCode::OK);
    let (status, body) = server.plugin("/stats", json!([])).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "ok", "results": []}))
    );
}

#[actix_web::test]
async fn events_of_one_device_apply_in_order() {
    let server = TestServer::new().await;
    server.create_app("app_stats").await;
    let event = |version: &str, action: &str| {
        let mut body = device_body("app_stats", "d");
        body["version_name"] = json!(version);
        body["action"] = json!(action);
        body
    };
    // The failure report refreshes nothing; of the others, the last one wins.
    let (status, _) = server
        .plugin(
            "/stats",
            json!([
                event("1.0.1", "set"),
                event("1.0.2", "set"),
                event("9.9.9", "update_fail"),
                event("1.0.3", "set"),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = device(&server, "app_stats", "d").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version_name"], json!("1.0.3"), "{body}");
}

#[actix_web::test]
async fn a_device_that_changes_and_changes_back_in_one_array_ends_as_it_began() {
    let server = TestServer::new().await;
    server.create_app("app_stats").await;
    let event = |version: &str| {
        let mut body = device_body("app_stats", "d");
        body["version_name"] = json!(version);
        body["action"] = json!("set");
        body
    };
    let (status, _) = server.plugin("/stats", json!([event("1.0.0")])).await;
    assert_eq!(status, StatusCode::OK);
    // A new bundle set, then the old one back (a rollback): the last report is the state.
    let (status, _) = server
        .plugin("/stats", json!([event("2.0.0"), event("1.0.0")]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = device(&server, "app_stats", "d").await;
    assert_eq!(body["version_name"], json!("1.0.0"), "{body}");
}

#[actix_web::test]
async fn an_unknown_app_stores_nothing() {
    let server = TestServer::new().await;
    let mut event = device_body("app_unknown", "d");
    event["action"] = json!("get");
    let (status, body) = server.plugin("/stats", event.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"error": "app_not_found", "message": "App not found", "kind": "failed"})
    );
    event["action"] = json!("download_fail");
    let (_, body) = server.plugin("/stats", event).await;
    assert_eq!(body["error"], "app_not_found");
    // Creating the app later shows no trace of those reports.
    server.create_app("app_unknown").await;
    let (_, page) = server.get("/device/?app_id=app_unknown", ADMIN).await;
    assert_eq!(page, json!({"data": [], "hasMore": false}));
}

#[actix_web::test]
async fn failure_reports_do_not_refresh_devices() {
    let server = TestServer::new().await;
    server.create_app("app_fail").await;
    let mut event = device_body("app_fail", "d");
    event["action"] = json!("update_fail");
    let (status, body) = server.plugin("/stats", event).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(
        device(&server, "app_fail", "d").await.0,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn a_bad_event_is_400_and_stores_nothing() {
    let server = TestServer::new().await;
    server.create_app("app_bad").await;
    let mut good = device_body("app_bad", "good");
    good["action"] = json!("get");
    let with = |field: &str, value: Value| {
        let mut event = good.clone();
        if value.is_null() {
            event.as_object_mut().unwrap().remove(field);
        } else {
            event[field] = value;
        }
        event
    };
    let cases = [
        (with("platform", Value::Null), "missing_platform"),
        (with("platform", json!("windows")), "invalid_platform"),
        (with("device_id", Value::Null), "missing_device_id"),
        (with("device_id", json!("a\u{0}b")), "invalid_device_id"),
        (with("app_id", json!("")), "invalid_app_id"),
        (with("action", Value::Null), "missing_action"),
        (with("is_prod", json!("yes")), "invalid_is_prod"),
        (
            with("custom_id", json!("x".repeat(300))),
            "invalid_custom_id",
        ),
        (
            with("version_name", json!("v".repeat(300))),
            "invalid_version_name",
        ),
        (with("defaultChannel", json!("")), "invalid_default_channel"),
    ];
    for (event, code) in cases {
        // Alone and second in an array after a good event: neither is recorded.
        for body in [event.clone(), json!([good.clone(), event.clone()])] {
            let (status, answer) = server.plugin("/stats", body.clone()).await;
            assert_eq!(
                (status, answer["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some(code)),
                "{body}"
            );
        }
    }
    for body in [json!("text"), json!(42), json!([1]), json!(null)] {
        let (status, answer) = server.plugin("/stats", body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_json_body")),
            "{body}"
        );
    }
    let mut other_app = good.clone();
    other_app["app_id"] = json!("app_other");
    let (status, answer) = server
        .plugin("/stats", json!([good.clone(), other_app]))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json_body"))
    );

    let (_, page) = server.get("/device/?app_id=app_bad", ADMIN).await;
    assert_eq!(page["data"], json!([]));
}

#[actix_web::test]
async fn an_unchanged_report_rewrites_only_after_touch_interval() {
    let server = TestServer::new().await;
    server.create_app("app_touch").await;
    server.report("app_touch", "d").await;
    let updated_at = |device: &Value| device["updated_at"].as_str().unwrap().to_owned();

    // Within the hour, the same report writes nothing.
    server.clock.advance(HOUR - SECOND);
    server.report("app_touch", "d").await;
    let (_, d) = device(&server, "app_touch", "d").await;
    assert_eq!(updated_at(&d), "2024-01-01T00:00:00Z");

    // A change is written at once.
    server
        .report_with("app_touch", "d", json!({"version_os": "17.1"}))
        .await;
    let (_, d) = device(&server, "app_touch", "d").await;
    assert_eq!(updated_at(&d), "2024-01-01T00:59:59Z");
    assert_eq!(d["os_version"], "17.1");

    // Once the record is an hour old, the same report refreshes it.
    server.clock.advance(HOUR);
    server
        .report_with("app_touch", "d", json!({"version_os": "17.1"}))
        .await;
    let (_, d) = device(&server, "app_touch", "d").await;
    assert_eq!(updated_at(&d), "2024-01-01T01:59:59Z");
    // And the time index moved with it.
    let (_, page) = server
        .get(
            "/device/?app_id=app_touch&order=asc&updated_at=2024-01-01T01:00:00Z",
            ADMIN,
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn report_fields_are_recorded_as_the_plugin_sends_them() {
    let server = TestServer::new().await;
    server.create_app("app_fields").await;
    server
        .report_with(
            "app_fields",
            "d",
            json!({"version_name": "builtin", "version_build": "2.3.4", "platform": "android",
                   "is_emulator": true, "is_prod": false, "custom_id": "  user 42  "}),
        )
        .await;
    let (_, d) = device(&server, "app_fields", "d").await;
    assert_eq!(d["version_name"], "2.3.4");
    assert_eq!(d["version_build"], "2.3.4");
    assert_eq!(d["platform"], "android");
    assert_eq!(d["is_emulator"], true);
    assert_eq!(d["is_prod"], false);
    assert_eq!(d["custom_id"], "user 42");

    // Minimal body: defaults for what the plugin leaves out.
    let (status, _) = server
        .plugin("/stats", json!({"app_id": "app_fields", "device_id": "min", "platform": "electron", "action": "get"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, d) = device(&server, "app_fields", "min").await;
    assert_eq!(
        d,
        json!({"updated_at": "2024-01-01T00:00:00Z", "device_id": "min", "custom_id": "", "version": null,
               "version_name": null, "app_id": "app_fields", "platform": "electron", "plugin_version": "",
               "os_version": "", "version_build": "", "is_prod": true, "is_emulator": false})
    );
}
