//! `POST /device/erase`: a device removed for good, by id or by custom id, leaving nothing behind.

use actix_web::http::StatusCode;
use device_registry::store::Counts;
use serde_json::json;

use crate::common::*;

const APP: &str = "app_erase";

#[actix_web::test]
async fn erasing_by_id_or_custom_id_leaves_nothing_behind() {
    let server = TestServer::new().await;
    server.create_app(APP).await;
    server.create_channel(APP, "beta", json!({})).await;
    server
        .report_with(APP, "keep", json!({"custom_id": "user-1"}))
        .await;
    server
        .report_with(APP, "phone", json!({"custom_id": "user-42"}))
        .await;
    server
        .report_with(APP, "tablet", json!({"custom_id": "user-42"}))
        .await;
    server
        .report_with(APP, "solo", json!({"custom_id": "user-7"}))
        .await;
    server
        .post(
            "/device/bulk",
            ADMIN,
            json!({"app_id": APP, "device_ids": ["phone", "solo", "never"], "channel": "beta"}),
        )
        .await;

    let (status, body) = server
        .post(
            "/device/erase",
            ADMIN,
            json!({"app_id": APP, "custom_id": "user-42"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "ok", "removed": [
            {"device_id": "phone", "device": true, "overrides": {"channel": "beta", "version_override": null}},
            {"device_id": "tablet", "device": true, "overrides": {"channel": null, "version_override": null}},
        ]})
    );
    let (status, body) = server
        .post(
            "/device/erase",
            ADMIN,
            json!({"app_id": APP, "device_id": "SOLO"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["removed"][0]["device_id"], "solo");
    // An override of a device that never checked in is erased too.
    let (_, body) = server
        .post(
            "/device/erase",
            ADMIN,
            json!({"app_id": APP, "device_id": "never"}),
        )
        .await;
    assert_eq!(
        body["removed"],
        json!([{"device_id": "never", "device": false, "overrides": {"channel": "beta", "version_override": null}}])
    );

    for device in ["phone", "tablet", "solo"] {
        let (status, _) = server
            .get(&format!("/device/?app_id={APP}&device_id={device}"), ADMIN)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{device}");
    }
    assert_eq!(
        server.store.counts().unwrap(),
        Counts {
            apps: 1,
            devices: 1,
            devices_by_time: 1,
            overrides: 0,
            overrides_by_time: 0
        }
    );
    assert!(server.store.check(false).unwrap().is_clean());

    let (status, body) = server
        .post(
            "/device/erase",
            ADMIN,
            json!({"app_id": APP, "device_id": "phone"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("device_not_found"))
    );
}

#[actix_web::test]
async fn erasure_needs_mode_all_and_exactly_one_target() {
    let server = TestServer::new().await;
    server.create_app(APP).await;
    server.report(APP, "d").await;
    let write = server.key("write", &[]).await;
    let (status, _) = server
        .post(
            "/device/erase",
            &write,
            json!({"app_id": APP, "device_id": "d"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, code) in [
        (json!({"app_id": APP}), "missing_device_id_or_custom_id"),
        (
            json!({"app_id": APP, "device_id": "d", "custom_id": "u"}),
            "invalid_target",
        ),
        (
            json!({"app_id": APP, "custom_id": "  "}),
            "invalid_custom_id",
        ),
        (json!({"app_id": APP, "device_id": ""}), "invalid_device_id"),
    ] {
        let (status, answer) = server.post("/device/erase", ADMIN, body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
    let (status, _) = server
        .get(&format!("/device/?app_id={APP}&device_id=d"), ADMIN)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a refused erasure removed the device"
    );
}
