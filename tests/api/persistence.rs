//! Data survives a restart: everything written is there when the store is reopened.

use std::sync::Arc;

use actix_web::http::StatusCode;
use device_registry::clock::ManualClock;
use serde_json::json;

use crate::common::*;

#[actix_web::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let (device_before, key) = {
        let server = TestServer::open(dir.path(), config(), clock.clone()).await;
        server.create_app("app_keep").await;
        server
            .create_channel("app_keep", "beta", json!({"public": true}))
            .await;
        server.create_bundle("app_keep", "1.0.0").await;
        for i in 0..300 {
            clock.advance(SECOND);
            server.report("app_keep", &format!("d{i:03}")).await;
        }
        server
            .post("/device", ADMIN, json!({"app_id": "app_keep", "device_id": "d007", "channel": "beta", "version_id": "1.0.0"}))
            .await;
        let key = server.key("read", &["app_keep"]).await;
        let (_, device) = server
            .get("/device/?app_id=app_keep&device_id=d007", ADMIN)
            .await;
        (device, key)
    };

    let server = TestServer::open(dir.path(), config(), clock.clone()).await;
    let (status, device) = server
        .get("/device/?app_id=app_keep&device_id=d007", &key)
        .await;
    assert_eq!(status, StatusCode::OK, "the key did not survive");
    assert_eq!(device, device_before);
    assert_eq!(device["channel"], "beta");
    assert_eq!(device["version_override"], "1.0.0");
    assert_eq!(device["version"], 1);
    let (_, page) = server
        .get("/device/?app_id=app_keep&order=desc&limit=1000", ADMIN)
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 300);
    assert_eq!(page["data"][0]["device_id"], "d299");
    let (_, channel) = server
        .get("/channel?app_id=app_keep&channel=beta", ADMIN)
        .await;
    assert_eq!(channel["public"], true);
    // Counters carry on: the next bundle gets the next id.
    assert_eq!(server.create_bundle("app_keep", "1.1.0").await, 2);
}
