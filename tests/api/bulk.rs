//! `/device/bulk`: overrides for many devices at once, validated whole, applied all or none.

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

const APP: &str = "app_bulk";

async fn setup(server: &TestServer) {
    server.create_app(APP).await;
    server.create_channel(APP, "beta", json!({})).await;
    server.create_bundle(APP, "2.0.0").await;
    for i in 0..5 {
        server.report(APP, &format!("d{i}")).await;
    }
}

async fn channel_of(server: &TestServer, device: &str) -> Value {
    let (_, body) = server
        .get(&format!("/device/?app_id={APP}&device_id={device}"), ADMIN)
        .await;
    body.get("channel").cloned().unwrap_or(Value::Null)
}

#[actix_web::test]
async fn bulk_link_answers_per_device_and_dry_runs_change_nothing() {
    let server = TestServer::new().await;
    setup(&server).await;
    let ids: Vec<String> = (0..300).map(|i| format!("d{i}")).collect();

    let (status, body) = server
        .post(
            "/device/bulk",
            ADMIN,
            json!({"app_id": APP, "device_ids": ids, "channel": "beta", "dry_run": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["results"].as_array().unwrap().len(), 300);
    assert_eq!(
        body["results"][0],
        json!({"device_id": "d0", "changed": true,
               "before": {"channel": null, "version_override": null},
               "after": {"channel": "beta", "version_override": null}})
    );
    assert_eq!(
        channel_of(&server, "d0").await,
        Value::Null,
        "a dry run wrote"
    );

    // Duplicates (also by case) count once.
    let mut with_duplicates = ids.clone();
    with_duplicates.push("D0".into());
    let (status, body) = server
        .post("/device/bulk", ADMIN, json!({"app_id": APP, "device_ids": with_duplicates, "channel": "beta", "version_id": "2.0.0"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["dry_run"], false);
    assert_eq!(body["results"].as_array().unwrap().len(), 300);
    assert_eq!(channel_of(&server, "d3").await, "beta");
    let (_, device) = server
        .get(&format!("/device/?app_id={APP}&device_id=d4"), ADMIN)
        .await;
    assert_eq!(device["version_override"], "2.0.0");
    // Devices that have not checked in yet get theirs on their first report.
    server.report(APP, "d250").await;
    assert_eq!(channel_of(&server, "d250").await, "beta");

    // Linking again to the same channel changes nothing.
    let (_, body) = server
        .post(
            "/device/bulk",
            ADMIN,
            json!({"app_id": APP, "device_ids": ["d1"], "channel": "beta"}),
        )
        .await;
    assert_eq!(body["results"][0]["changed"], false);
}

#[actix_web::test]
async fn a_bulk_request_is_validated_whole_before_anything_is_written() {
    let server = TestServer::new().await;
    setup(&server).await;
    let too_many: Vec<String> = (0..1001).map(|i| format!("x{i}")).collect();
    let cases = [
        (
            json!({"app_id": APP, "channel": "beta"}),
            StatusCode::BAD_REQUEST,
            "missing_device_ids",
        ),
        (
            json!({"app_id": APP, "device_ids": "d0", "channel": "beta"}),
            StatusCode::BAD_REQUEST,
            "invalid_device_ids",
        ),
        (
            json!({"app_id": APP, "device_ids": [], "channel": "beta"}),
            StatusCode::BAD_REQUEST,
            "invalid_device_ids",
        ),
        (
            json!({"app_id": APP, "device_ids": too_many, "channel": "beta"}),
            StatusCode::BAD_REQUEST,
            "invalid_device_ids",
        ),
        (
            json!({"app_id": APP, "device_ids": ["d0", "d1", "bad\u{1}"], "channel": "beta"}),
            StatusCode::BAD_REQUEST,
            "invalid_device_ids",
        ),
        (
            json!({"app_id": APP, "device_ids": ["d0", 7], "channel": "beta"}),
            StatusCode::BAD_REQUEST,
            "invalid_device_ids",
        ),
        (
            json!({"app_id": APP, "device_ids": ["d0"]}),
            StatusCode::BAD_REQUEST,
            "missing_channel_or_version",
        ),
        (
            json!({"app_id": APP, "device_ids": ["d0"], "channel": "nope"}),
            StatusCode::NOT_FOUND,
            "channel_not_found",
        ),
        (
            json!({"app_id": APP, "device_ids": ["d0"], "channel": "beta", "version_id": "9.9.9"}),
            StatusCode::NOT_FOUND,
            "version_not_found",
        ),
        (
            json!({"app_id": APP, "device_ids": ["d0"], "channel": "beta", "dry_run": "no"}),
            StatusCode::BAD_REQUEST,
            "invalid_dry_run",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = server.post("/device/bulk", ADMIN, body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (_, answer) = server
        .post(
            "/device/bulk",
            ADMIN,
            json!({"app_id": APP, "device_ids": ["d0", "d1", "bad\u{1}"], "channel": "beta"}),
        )
        .await;
    assert_eq!(answer["moreInfo"]["index"], 2);
    assert_eq!(
        channel_of(&server, "d0").await,
        Value::Null,
        "a refused bulk request wrote"
    );

    let read = server.key("read", &[]).await;
    let (status, _) = server
        .post(
            "/device/bulk",
            &read,
            json!({"app_id": APP, "device_ids": ["d0"], "channel": "beta"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn bulk_unlink_removes_overrides_all_at_once() {
    let server = TestServer::new().await;
    setup(&server).await;
    server
        .post(
            "/device/bulk",
            ADMIN,
            json!({"app_id": APP, "device_ids": ["d0", "d1"], "channel": "beta"}),
        )
        .await;

    let (_, body) = server
        .delete(
            "/device/bulk",
            ADMIN,
            Some(json!({"app_id": APP, "device_ids": ["d0", "d1", "d2"], "dry_run": true})),
        )
        .await;
    let changed: Vec<bool> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["changed"].as_bool().unwrap())
        .collect();
    assert_eq!(changed, [true, true, false]);
    assert_eq!(channel_of(&server, "d0").await, "beta", "a dry run wrote");

    let (status, body) = server
        .delete(
            "/device/bulk",
            ADMIN,
            Some(json!({"app_id": APP, "device_ids": ["d0", "d1", "d2"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"][1]["before"]["channel"], "beta");
    assert_eq!(
        body["results"][1]["after"],
        json!({"channel": null, "version_override": null})
    );
    assert_eq!(channel_of(&server, "d0").await, Value::Null);
    assert_eq!(channel_of(&server, "d1").await, Value::Null);
    // Devices stay; only overrides went.
    let (_, page) = server.get(&format!("/device/?app_id={APP}"), ADMIN).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 5);
    assert!(server.store.check(false).unwrap().is_clean());
}
