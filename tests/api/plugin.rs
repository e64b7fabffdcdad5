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
        json!({"status": "ok", "results": [{"status": "ok", "index": 0}, {"status": "ok", "index": 1}]})
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
async fn a_bad_event_is_400_alone_and_reported_in_its_place_in_an_array() {
    let server = TestServer::new().await;
    server.create_app("app_bad").await;
    let mut good = device_body("app_bad", "good");
    good["action"] = json!("get");
    let with = |field: &str, value: Value| {
        let mut event = good.clone();
        event["device_id"] = json!("bad");
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
        (with("device_id", json!("a\u{0}b")), "invalid_device_id"),
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
        (with("version_build", json!("1.2.3.4")), "semver_error"),
        (
            with("defaultChannel", json!("x".repeat(200))),
            "invalid_default_channel",
        ),
    ];
    for (event, code) in cases {
        // Alone: a 400, and nothing is recorded.
        let (status, answer) = server.plugin("/stats", event.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{event}"
        );
        assert_eq!(
            device(&server, "app_bad", "bad").await.0,
            StatusCode::NOT_FOUND
        );
        // Second in an array: reported at its index, and the good event is still recorded.
        let (status, answer) = server
            .plugin("/stats", json!([good.clone(), event.clone()]))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["results"][0], json!({"status": "ok", "index": 0}));
        let bad = &answer["results"][1];
        assert_eq!(
            (
                bad["status"].as_str(),
                bad["error"].as_str(),
                bad["index"].as_u64()
            ),
            (Some("error"), Some(code), Some(1)),
            "{answer}"
        );
        assert!(
            bad["message"].is_string() && bad["moreInfo"].is_object(),
            "{answer}"
        );
    }
    assert_eq!(device(&server, "app_bad", "good").await.0, StatusCode::OK);
    assert_eq!(
        device(&server, "app_bad", "bad").await.0,
        StatusCode::NOT_FOUND
    );

    for body in [
        json!("text"),
        json!(42),
        json!([1]),
        json!(null),
        json!([{"device_id": "d"}]),
    ] {
        let (status, answer) = server.plugin("/stats", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
}

#[actix_web::test]
async fn an_array_is_one_app_or_refused_whole() {
    let server = TestServer::new().await;
    server.create_app("app_one").await;
    server.create_app("app_two").await;
    let event = |app: &str, id: &str| {
        let mut body = device_body(app, id);
        body["action"] = json!("set");
        body
    };
    // As Capgo answers it: another app, or no valid app id, after the first event refuses the
    // whole array (HTTP 200), and nothing is recorded.
    let (status, answer) = server
        .plugin(
            "/stats",
            json!([event("app_one", "a"), event("app_two", "b")]),
        )
        .await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::OK,
            json!({"error": "mixed_app_ids", "message": "All events in a batch must have the same app_id"})
        )
    );
    let mut no_app = event("app_one", "c");
    no_app.as_object_mut().unwrap().remove("app_id");
    let (status, answer) = server
        .plugin("/stats", json!([event("app_one", "a"), no_app]))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::OK, Some("invalid_app_id"))
    );
    // The first event's app id is the batch's: without a valid one the body is a 400.
    let mut bad_first = event("app_one", "a");
    bad_first["app_id"] = json!("not an app id");
    let (status, answer) = server.plugin("/stats", json!([bad_first])).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_app_id"))
    );
    let (_, page) = server.get("/device/?app_id=app_one", ADMIN).await;
    assert_eq!(page["data"], json!([]));

    // An array for an app this server does not know: every event says so.
    let (status, answer) = server
        .plugin(
            "/stats",
            json!([event("app_none", "a"), event("app_none", "b")]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"status": "ok", "results": [
            {"status": "error", "error": "app_not_found", "message": "App not found", "index": 0},
            {"status": "error", "error": "app_not_found", "message": "App not found", "index": 1},
        ]})
    );
}

#[actix_web::test]
async fn empty_strings_mean_not_given() {
    let server = TestServer::new().await;
    server.create_app("app_empty").await;
    let mut event = device_body("app_empty", "d");
    event["action"] = json!("set");
    event["custom_id"] = json!("user-1");
    event["install_source"] = json!(" Google_Play ");
    event["key_id"] = json!("MIIBCgKCAQEAuH5c0F1x");
    let (status, answer) = server.plugin("/stats", event.clone()).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "ok"})));
    let (_, d) = device(&server, "app_empty", "d").await;
    assert_eq!(
        (&d["custom_id"], &d["install_source"], &d["key_id"]),
        (
            &json!("user-1"),
            &json!("google_play"),
            &json!("MIIBCgKCAQEAuH5c0F1x")
        )
    );
    // What the plugin sends when it knows nothing: "" everywhere, and no key_id. The stored
    // values stay, as Capgo keeps them; the empty default channel is no channel.
    for field in ["custom_id", "install_source", "defaultChannel"] {
        event[field] = json!("");
    }
    event.as_object_mut().unwrap().remove("key_id");
    event["version_os"] = json!("17.1");
    let (status, answer) = server.plugin("/stats", event.clone()).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "ok"})));
    // No channel of its own: the public channel's (this app has none).
    let (status, answer) = server.plugin("/updates", event.clone()).await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::OK,
            json!({"error": "no_channel", "message": "no default channel or override", "kind": "failed"})
        )
    );
    let (_, d) = device(&server, "app_empty", "d").await;
    assert_eq!(d["os_version"], "17.1");
    assert_eq!(
        (&d["custom_id"], &d["install_source"], &d["key_id"]),
        (
            &json!("user-1"),
            &json!("google_play"),
            &json!("MIIBCgKCAQEAuH5c0F1x")
        )
    );
    // An empty key_id is "not given" too.
    event["key_id"] = json!("");
    let (status, _) = server.plugin("/stats", event).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        device(&server, "app_empty", "d").await.1["key_id"],
        "MIIBCgKCAQEAuH5c0F1x"
    );
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

#[actix_web::test]
async fn below_the_free_space_floor_new_devices_wait_and_known_ones_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(device_registry::clock::ManualClock::new(START));
    {
        let server = TestServer::open(dir.path(), config(), clock.clone()).await;
        server.create_app("app_full").await;
        server.report("app_full", "known").await;
    }
    // A floor no disk has room for.
    let mut full = config();
    full.storage.min_free = device_registry::config::ByteSize(u64::MAX / 2);
    let server = TestServer::open(dir.path(), full, clock).await;
    let mut event = device_body("app_full", "new");
    event["action"] = json!("get");
    let (status, headers, body) = server
        .send(
            actix_web::test::TestRequest::post()
                .uri("/stats")
                .set_json(event),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("store_unavailable")),
        "{body}"
    );
    assert_eq!(headers.get("retry-after").unwrap(), "300");
    assert_eq!(
        device(&server, "app_full", "new").await.0,
        StatusCode::NOT_FOUND
    );
    // A known device is still written.
    server
        .report_with("app_full", "known", json!({"version_os": "18.0"}))
        .await;
    assert_eq!(
        device(&server, "app_full", "known").await.1["os_version"],
        "18.0"
    );
}
