//! `GET /device/resolve`: what `/updates` would answer, and why.

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

async fn explain(server: &TestServer, app: &str, device: &str) -> Value {
    let (status, body) = server
        .get(
            &format!("/device/resolve?app_id={app}&device_id={device}"),
            ADMIN,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Every situation answers through resolve exactly as through `/updates` for the same device.
#[actix_web::test]
async fn resolve_answers_what_updates_answers() {
    let server = TestServer::new().await;
    server.create_app("app_explain").await;
    for version in ["1.1.0", "2.0.0"] {
        server.create_bundle("app_explain", version).await;
    }
    server
        .create_channel(
            "app_explain",
            "production",
            json!({"public": true, "version": "1.1.0"}),
        )
        .await;
    server
        .create_channel("app_explain", "next", json!({"version": "2.0.0"}))
        .await;
    // (device, its report, an override to set first)
    let cases: Vec<(&str, Value, Option<Value>)> = vec![
        ("offered", json!({}), None),
        ("current", json!({"version_name": "1.1.0"}), None),
        ("private", json!({"defaultChannel": "next"}), None),
        ("linked", json!({}), Some(json!({"channel": "next"}))),
        ("pinned", json!({}), Some(json!({"version_id": "2.0.0"}))),
        ("nowhere", json!({"defaultChannel": "missing"}), None),
        (
            "android-off",
            json!({"platform": "android", "defaultChannel": "next"}),
            None,
        ),
    ];
    for (device, fields, link) in cases {
        if let Some(link) = link {
            let mut body = json!({"app_id": "app_explain", "device_id": device});
            body.as_object_mut()
                .unwrap()
                .extend(link.as_object().unwrap().clone());
            server.post("/device", ADMIN, body).await;
        }
        // The device as /stats records it, explained, then asked through /updates (which then
        // records an offered bundle as the device's version, as Capgo does).
        server
            .report_with("app_explain", device, fields.clone())
            .await;
        let explained = explain(&server, "app_explain", device).await;
        let from_updates = server.check_in("app_explain", device, fields).await;
        assert_eq!(explained["answer"], from_updates, "{device}");
    }
}

#[actix_web::test]
async fn the_trace_names_the_deciding_step_and_rule() {
    let server = TestServer::new().await;
    server.create_app("app_trace").await;
    server.create_bundle("app_trace", "2.0.0").await;
    server
        .create_channel(
            "app_trace",
            "production",
            json!({"public": true, "version": "2.0.0"}),
        )
        .await;
    server.check_in("app_trace", "d", json!({})).await;
    let body = explain(&server, "app_trace", "d").await;
    assert_eq!(body["answer"]["error"], "disable_auto_update_to_major");
    assert_eq!(body["source"], "public_channel");
    assert_eq!(
        body["precedence"],
        json!([
            {"step": "version_override", "applied": false, "detail": "none"},
            {"step": "channel_override", "applied": false, "detail": "none"},
            {"step": "default_channel", "applied": false, "detail": "not sent"},
            {"step": "public_channel", "applied": true, "detail": "channel production"},
        ])
    );
    assert_eq!(
        body["rules"],
        json!([
            {"rule": "no_new_version_available", "passed": true},
            {"rule": "disabled_platform_ios", "passed": true},
            {"rule": "disable_auto_update_to_major", "passed": false},
        ])
    );

    // Pinned: the override decides, no channel rule is consulted beyond "up to date".
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_trace", "device_id": "d", "version_id": "2.0.0"}),
        )
        .await;
    let body = explain(&server, "app_trace", "d").await;
    assert_eq!(body["answer"]["version"], "2.0.0");
    assert_eq!(body["source"], "version_override");
    assert_eq!(
        body["precedence"][0],
        json!({"step": "version_override", "applied": true, "detail": "pinned to bundle 2.0.0"})
    );
    assert_eq!(
        body["rules"],
        json!([{"rule": "no_new_version_available", "passed": true}])
    );
}

#[actix_web::test]
async fn resolve_needs_a_known_device_and_a_key() {
    let server = TestServer::new().await;
    server.create_app("app_unknown_dev").await;
    let (status, body) = server
        .get(
            "/device/resolve?app_id=app_unknown_dev&device_id=ghost",
            ADMIN,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("device_not_found"))
    );
    let (status, body) = server
        .get("/device/resolve?app_id=app_unknown_dev", ADMIN)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_device_id"))
    );
    let (status, _) = server
        .call(
            actix_web::http::Method::GET,
            "/device/resolve?app_id=app_unknown_dev&device_id=x",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A device whose native version is not semver (the plugin API refuses one; this one was
    // imported) explains that.
    let report = device_registry::model::DeviceReport {
        custom_id: String::new(),
        version_name: Some("1.0.0".into()),
        version_build: "not-semver".into(),
        os_version: String::new(),
        plugin_version: String::new(),
        platform: device_registry::model::Platform::Ios,
        is_prod: true,
        is_emulator: false,
        default_channel: None,
        install_source: None,
        key_id: None,
    };
    let odd = device_registry::model::Device {
        app_id: "app_unknown_dev".into(),
        device_id: "odd".into(),
        updated_at: START,
        report,
        rollout: None,
    };
    assert!(server
        .store
        .import_devices("app_unknown_dev", &[odd])
        .unwrap());
    let body = explain(&server, "app_unknown_dev", "odd").await;
    assert_eq!(body["answer"]["error"], "semver_error");
}
