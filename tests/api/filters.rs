//! List filters, alone and combined, across pages in every order: no device lost or repeated.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;
use crate::devices::urlencode;

const APP: &str = "app_filters";

/// 240 devices whose fields vary with their number, some with overrides; returns each device's
/// `updated_at` in microseconds, to order by.
async fn fleet(server: &TestServer) -> HashMap<String, u64> {
    server.create_app(APP).await;
    server.create_channel(APP, "beta", json!({})).await;
    server.create_bundle(APP, "9.9.9").await;
    let mut times = HashMap::new();
    for i in 0..240u64 {
        let at = START + (i / 2) * SECOND; // pairs share an instant
        server.clock.set(at);
        let id = format!("dev{:03}", (i * 37) % 240);
        let platform = ["ios", "android", "electron"][(i % 3) as usize];
        server
            .report_with(
                APP,
                &id,
                json!({"platform": platform, "version_name": format!("1.0.{}", i % 4),
                       "custom_id": format!("user-{}", i % 20), "is_prod": i % 2 == 0, "is_emulator": i % 5 == 0}),
            )
            .await;
        if i % 7 == 0 {
            server
                .post(
                    "/device",
                    ADMIN,
                    json!({"app_id": APP, "device_id": id, "channel": "beta"}),
                )
                .await;
        } else if i % 11 == 0 {
            server
                .post(
                    "/device",
                    ADMIN,
                    json!({"app_id": APP, "device_id": id, "version_id": "9.9.9"}),
                )
                .await;
        }
        times.insert(id, at);
    }
    times
}

async fn walk(server: &TestServer, query: &str, order: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut uri = format!("/device/?app_id={APP}&limit=7{order}&{query}");
        if let Some(cursor) = &cursor {
            uri.push_str(&format!("&cursor={}", urlencode(cursor)));
        }
        let (status, page) = server.get(&uri, ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["device_id"].as_str().unwrap().to_owned()),
        );
        if page["hasMore"] != true {
            return seen;
        }
        cursor = Some(page["nextCursor"].as_str().unwrap().to_owned());
    }
}

#[actix_web::test]
async fn every_filter_and_combination_walks_exactly_the_matching_devices() {
    let server = TestServer::new().await;
    let times = fleet(&server).await;
    let (_, everything) = server
        .get(&format!("/device/?app_id={APP}&limit=1000"), ADMIN)
        .await;
    let all: Vec<Value> = everything["data"].as_array().unwrap().clone();
    assert_eq!(all.len(), 240);

    type Predicate = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(&str, Predicate)> = vec![
        ("custom_id=user-3", Box::new(|d| d["custom_id"] == "user-3")),
        (
            "custom_id_prefix=user-1",
            Box::new(|d| d["custom_id"].as_str().unwrap().starts_with("user-1")),
        ),
        ("platform=android", Box::new(|d| d["platform"] == "android")),
        (
            "version_name=1.0.2",
            Box::new(|d| d["version_name"] == "1.0.2"),
        ),
        ("channel=beta", Box::new(|d| d["channel"] == "beta")),
        (
            "has_override=true",
            Box::new(|d| d.get("channel").is_some() || d.get("version_override").is_some()),
        ),
        (
            "has_override=false",
            Box::new(|d| d.get("channel").is_none() && d.get("version_override").is_none()),
        ),
        ("is_prod=false", Box::new(|d| d["is_prod"] == false)),
        ("is_emulator=true", Box::new(|d| d["is_emulator"] == true)),
        (
            "platform=ios&version_name=1.0.0",
            Box::new(|d| d["platform"] == "ios" && d["version_name"] == "1.0.0"),
        ),
        (
            "is_prod=true&has_override=true&platform=electron",
            Box::new(|d| {
                d["is_prod"] == true
                    && d["platform"] == "electron"
                    && (d.get("channel").is_some() || d.get("version_override").is_some())
            }),
        ),
        (
            "custom_id_prefix=user-&updated_at=2024-01-01T00:01:00Z",
            Box::new(|d| d["updated_at"].as_str().unwrap() > "2024-01-01T00:01:00Z"),
        ),
        (
            "platform=ios&platform_unused=1&channel=beta",
            Box::new(|d| d["platform"] == "ios" && d["channel"] == "beta"),
        ),
    ];
    for (query, predicate) in &cases {
        let matching: Vec<&Value> = all.iter().filter(|d| predicate(d)).collect();
        assert!(!matching.is_empty(), "{query} matches nothing: a weak case");
        let mut by_id: Vec<String> = matching
            .iter()
            .map(|d| d["device_id"].as_str().unwrap().to_owned())
            .collect();
        by_id.sort();
        let mut by_time = by_id.clone();
        by_time.sort_by_key(|id| (times[id], id.clone()));
        let desc: Vec<String> = by_time.iter().rev().cloned().collect();
        assert_eq!(
            walk(&server, query, "").await,
            by_id,
            "{query}, default order"
        );
        assert_eq!(
            walk(&server, query, "&order=asc").await,
            by_time,
            "{query}, asc"
        );
        assert_eq!(
            walk(&server, query, "&order=desc").await,
            desc,
            "{query}, desc"
        );
    }
}

#[actix_web::test]
async fn invalid_filter_values_are_400_with_their_code() {
    let server = TestServer::new().await;
    server.create_app(APP).await;
    for (query, code) in [
        ("platform=web", "invalid_platform"),
        ("has_override=maybe", "invalid_has_override"),
        ("is_prod=1", "invalid_is_prod"),
        ("is_emulator=yes", "invalid_is_emulator"),
        ("channel=", "invalid_channel"),
        ("custom_id_prefix=", "invalid_custom_id_prefix"),
        ("version_name=%07", "invalid_version_name"),
    ] {
        let (status, body) = server
            .get(&format!("/device/?app_id={APP}&{query}"), ADMIN)
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}"
        );
    }
    let long = "x".repeat(257);
    let (status, body) = server
        .get(&format!("/device/?app_id={APP}&custom_id={long}"), ADMIN)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_custom_id"))
    );
}
