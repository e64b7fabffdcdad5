//! `GET /device/audit`: every override change, who made it and when, newest first.

use actix_web::http::StatusCode;
use device_registry::clock::Clock;
use device_registry::sweep;
use serde_json::{json, Value};

use crate::common::*;

const APP: &str = "app_audit";
const DAY: u64 = 86_400 * SECOND;

async fn audit(server: &TestServer, query: &str) -> Value {
    let (status, body) = server
        .get(&format!("/device/audit?app_id={APP}{query}"), ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn summary(page: &Value) -> Vec<(String, String, String)> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["device_id"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn every_override_change_is_recorded_newest_first() {
    let server = TestServer::new().await;
    server.create_app(APP).await;
    server.create_channel(APP, "beta", json!({})).await;
    server.create_channel(APP, "alpha", json!({})).await;
    server.report(APP, "d1").await;
    let key = server.key("all", &[]).await;
    let (_, keys) = server.get("/apikey", ADMIN).await;
    let key_id = keys[0]["id"].as_u64().unwrap();

    server
        .post(
            "/device",
            &key,
            json!({"app_id": APP, "device_id": "d1", "channel": "beta"}),
        )
        .await;
    server.clock.advance(SECOND);
    // The same link again changes nothing and is not recorded.
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": APP, "device_id": "d1", "channel": "beta"}),
        )
        .await;
    server
        .post(
            "/device/bulk",
            ADMIN,
            json!({"app_id": APP, "device_ids": ["d2", "d3"], "channel": "alpha"}),
        )
        .await;
    server.clock.advance(SECOND);
    server
        .delete(
            "/device",
            ADMIN,
            Some(json!({"app_id": APP, "device_id": "d2"})),
        )
        .await;
    server
        .delete(
            "/channel",
            ADMIN,
            Some(json!({"app_id": APP, "channel": "alpha"})),
        )
        .await;
    server.clock.advance(SECOND);
    server
        .post(
            "/device/erase",
            ADMIN,
            json!({"app_id": APP, "device_id": "d1"}),
        )
        .await;

    let page = audit(&server, "").await;
    let key_label = format!("key:{key_id}");
    assert_eq!(
        summary(&page),
        [
            ("d1".into(), "erase".into(), "admin".into()),
            ("d3".into(), "channel_deleted".into(), "admin".into()),
            ("d2".into(), "unlink".into(), "admin".into()),
            ("d3".into(), "link".into(), "admin".into()),
            ("d2".into(), "link".into(), "admin".into()),
            ("d1".into(), "link".into(), key_label.clone()),
        ]
    );
    assert_eq!(
        page["data"][5],
        json!({"at": "2024-01-01T00:00:00Z", "device_id": "d1", "actor": key_label, "action": "link",
               "before": {"channel": null, "version_override": null},
               "after": {"channel": "beta", "version_override": null}})
    );
    assert_eq!(page["data"][0]["before"]["channel"], "beta");
    assert_eq!(page["hasMore"], false);
    assert!(page.get("nextCursor").is_none());
    // Never a secret anywhere.
    assert!(!page.to_string().contains(&key));

    let only_d2 = audit(&server, "&device_id=D2").await;
    assert_eq!(
        summary(&only_d2),
        [
            ("d2".into(), "unlink".into(), "admin".into()),
            ("d2".into(), "link".into(), "admin".into())
        ]
    );
}

#[actix_web::test]
async fn the_audit_log_pages_with_a_cursor_and_expires() {
    let server = TestServer::new().await;
    server.create_app(APP).await;
    server.create_channel(APP, "a", json!({})).await;
    server.create_channel(APP, "b", json!({})).await;
    for i in 0..30 {
        // Several entries share an instant: the cursor still orders them.
        if i % 3 == 0 {
            server.clock.advance(SECOND);
        }
        let channel = if i % 2 == 0 { "a" } else { "b" };
        server
            .post(
                "/device",
                ADMIN,
                json!({"app_id": APP, "device_id": "d", "channel": channel}),
            )
            .await;
    }
    for query in ["", "&device_id=d"] {
        let mut seen: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = format!("{query}&limit=7");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={}", crate::devices::urlencode(c)));
            }
            let page = audit(&server, &q).await;
            seen.extend(page["data"].as_array().unwrap().iter().cloned());
            if page["hasMore"] != true {
                break;
            }
            cursor = Some(page["nextCursor"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.len(), 30, "{query}");
        // Newest first: the channel alternates back from the last link ("b").
        let channels: Vec<&str> = seen
            .iter()
            .map(|e| e["after"]["channel"].as_str().unwrap())
            .collect();
        assert!(
            channels.windows(2).all(|w| w[0] != w[1]),
            "{query}: {channels:?}"
        );
        assert_eq!(channels[0], "b");
    }
    let (status, body) = server
        .get(&format!("/device/audit?app_id={APP}&cursor=nope"), ADMIN)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_cursor"))
    );

    // A year later the sweep removes the entries (the device is long gone too).
    server.clock.advance(366 * DAY);
    let retention = sweep::Retention {
        device_ttl: 90 * DAY,
        audit_ttl: 365 * DAY,
    };
    let report = sweep::sweep_once(server.store.as_ref(), server.clock.now(), retention, 8);
    assert_eq!(report.audit_entries, 30);
    assert_eq!(report.orphan_overrides, 1);
    // What remains is the sweep's own record of expiring the never-seen device's override.
    let page = audit(&server, "").await;
    assert_eq!(
        summary(&page),
        [("d".into(), "expire".into(), "sweep".into())]
    );
}
