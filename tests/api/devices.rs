//! `/device`: list, single, link, unlink (spec section 3).

use std::collections::HashSet;

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// The device ids of a list page, in order.
pub fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Walks every page of a list and returns the device ids in the order they came.
async fn walk(server: &TestServer, app_id: &str, extra: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut uri = format!("/device/?app_id={app_id}&limit={limit}{extra}");
        if let Some(cursor) = &cursor {
            uri.push_str(&format!("&cursor={}", urlencode(cursor)));
        }
        let (status, page) = server.get(&uri, ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let batch = ids(&page);
        assert!(batch.len() <= limit);
        seen.extend(batch);
        match page["hasMore"].as_bool().unwrap() {
            true => cursor = Some(page["nextCursor"].as_str().unwrap().to_owned()),
            false => {
                assert!(
                    page.get("nextCursor").is_none(),
                    "nextCursor without hasMore: {page}"
                );
                return seen;
            }
        }
    }
}

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn an_app_without_devices_lists_nothing() {
    let server = TestServer::new().await;
    server.create_app("app_empty").await;
    let (status, body) = server.get("/device/?app_id=app_empty", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"data": [], "hasMore": false}));
}

#[actix_web::test]
async fn a_reported_device_reads_back_as_the_seed_describes() {
    let server = TestServer::new().await;
    server.create_app("app_123").await;
    let bundle_id = server.create_bundle("app_123", "1.0.0").await;
    server.report_with("app_123", "DEVICE_456", json!({})).await;

    let expected = json!({
        "updated_at": "2024-01-01T00:00:00Z",
        "device_id": "device_456",
        "custom_id": "test-device-1",
        "version": bundle_id,
        "version_name": "1.0.0",
        "app_id": "app_123",
        "platform": "ios",
        "plugin_version": "5.0.0",
        "os_version": "17.0",
        "version_build": "1",
        "is_prod": true,
        "is_emulator": false,
    });
    let (status, single) = server
        .get("/device/?app_id=app_123&device_id=device_456", ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(single, expected);
    // Upper-case ids are the same device, everywhere.
    let (_, upper) = server
        .get("/device?app_id=app_123&device_id=DEVICE_456", ADMIN)
        .await;
    assert_eq!(upper, expected);

    let (status, list) = server.get("/device/?app_id=app_123", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!({"data": [expected], "hasMore": false}));
}

#[actix_web::test]
async fn version_is_null_when_no_bundle_has_that_name() {
    let server = TestServer::new().await;
    server.create_app("app_nobundle").await;
    server.report("app_nobundle", "d1").await;
    let (_, device) = server
        .get("/device/?app_id=app_nobundle&device_id=d1", ADMIN)
        .await;
    assert_eq!(device["version"], Value::Null);
    assert_eq!(device["version_name"], "1.0.0");
}

#[actix_web::test]
async fn list_only_parameters_are_ignored_for_a_single_device() {
    let server = TestServer::new().await;
    server.create_app("app_single").await;
    server.report("app_single", "d1").await;
    let (status, device) = server
        .get(
            "/device/?app_id=app_single&device_id=d1&limit=5000&order=sideways&cursor=x",
            ADMIN,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(device["device_id"], "d1");
}

#[actix_web::test]
async fn an_unknown_device_is_404() {
    let server = TestServer::new().await;
    server.create_app("app_404").await;
    let (status, body) = server
        .get("/device/?app_id=app_404&device_id=nobody", ADMIN)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        error(
            "device_not_found",
            "Device not found",
            json!({"device_id": "nobody"})
        )
    );
}

#[actix_web::test]
async fn app_id_is_checked_before_the_app() {
    let server = TestServer::new().await;
    let (status, body) = server.get("/device/", ADMIN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        error("missing_app_id", "Missing required field app_id", json!({}))
    );

    let (status, body) = server.get("/device/?app_id=.bad", ADMIN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_app_id");
    assert_eq!(body["moreInfo"], json!({"app_id": ".bad"}));

    let (status, body) = server.get("/device/?app_id=app_missing", ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        error(
            "app_not_found",
            "App not found",
            json!({"app_id": "app_missing"})
        )
    );
}

#[actix_web::test]
async fn limits_outside_1_to_1000_are_refused() {
    let server = TestServer::new().await;
    server.create_app("app_limit").await;
    for bad in [
        "0",
        "-1",
        "1.5",
        "abc",
        "1001",
        "",
        "%201",
        "99999999999999999999999",
    ] {
        let (status, body) = server
            .get(&format!("/device/?app_id=app_limit&limit={bad}"), ADMIN)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={bad}");
        assert_eq!(body["error"], "invalid_limit", "limit={bad}");
        assert_eq!(body["status"], "KO");
    }
    for good in ["1", "1000", "50"] {
        let (status, _) = server
            .get(&format!("/device/?app_id=app_limit&limit={good}"), ADMIN)
            .await;
        assert_eq!(status, StatusCode::OK, "limit={good}");
    }
}

#[actix_web::test]
async fn bad_order_updated_at_and_cursor_are_refused() {
    let server = TestServer::new().await;
    server.create_app("app_params").await;
    let cases = [
        ("order=ASC", "invalid_order"),
        ("order=", "invalid_order"),
        ("order=random", "invalid_order"),
        ("updated_at=yesterday", "invalid_updated_at"),
        ("updated_at=2024-01-01", "invalid_updated_at"),
        ("cursor=garbage", "invalid_cursor"),
        ("cursor=", "invalid_cursor"),
        ("cursor=2024-01-01T00:00:00Z%7C", "invalid_cursor"),
        ("cursor=not-a-time%7Cdevice_456", "invalid_cursor"),
    ];
    for (query, code) in cases {
        let (status, body) = server
            .get(&format!("/device/?app_id=app_params&{query}"), ADMIN)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"], code, "{query}");
    }
}

#[actix_web::test]
async fn the_seed_cursor_form_is_accepted() {
    let server = TestServer::new().await;
    server.create_app("app_seedcursor").await;
    for id in ["device_455", "device_456", "device_457"] {
        server.report("app_seedcursor", id).await;
    }
    let (status, page) = server
        .get(
            "/device/?app_id=app_seedcursor&cursor=2024-01-01T00:00:00Z|device_456",
            ADMIN,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), ["device_457"]);
}

/// 1,200 devices over a spread of times, with ties, walked in every order with a page size that
/// does not divide the total: each comes exactly once, in the documented order.
#[actix_web::test]
async fn cursors_walk_every_device_exactly_once_in_each_order() {
    let server = TestServer::new().await;
    server.create_app("app_walk").await;
    let mut expected: Vec<(u64, String)> = Vec::new();
    for i in 0..1200u64 {
        // Ties: three devices share each instant; ids are not in time order.
        let at = START + (i / 3) * SECOND + 123;
        server.clock.set(at);
        let id = format!("dev|{:04}", (i * 7919) % 1200);
        server.report("app_walk", &id).await;
        expected.push((at, id));
    }

    let mut by_id: Vec<String> = expected.iter().map(|(_, id)| id.clone()).collect();
    by_id.sort();
    let mut by_time = expected.clone();
    by_time.sort();
    let asc: Vec<String> = by_time.iter().map(|(_, id)| id.clone()).collect();
    let desc: Vec<String> = asc.iter().rev().cloned().collect();

    for (extra, want) in [("", &by_id), ("&order=asc", &asc), ("&order=desc", &desc)] {
        let got = walk(&server, "app_walk", extra, 97).await;
        assert_eq!(got.len(), 1200, "order {extra}");
        assert_eq!(
            got.iter().collect::<HashSet<_>>().len(),
            1200,
            "duplicates in {extra}"
        );
        assert_eq!(&got, want, "order {extra}");
    }
    // The largest page size walks the same.
    assert_eq!(walk(&server, "app_walk", "&order=asc", 1000).await, asc);
}

#[actix_web::test]
async fn updated_at_lists_only_strictly_later_devices_in_every_order() {
    let server = TestServer::new().await;
    server.create_app("app_since").await;
    for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        server.clock.set(START + i as u64 * HOUR);
        server.report("app_since", id).await;
    }
    // Exactly the instant of "c": "c" itself is not strictly later.
    let since = "2024-01-01T02:00:00Z";
    let (_, page) = server
        .get(
            &format!("/device/?app_id=app_since&updated_at={since}"),
            ADMIN,
        )
        .await;
    assert_eq!(ids(&page), ["d", "e"]);
    let (_, page) = server
        .get(
            &format!("/device/?app_id=app_since&order=asc&updated_at={since}"),
            ADMIN,
        )
        .await;
    assert_eq!(ids(&page), ["d", "e"]);
    let (_, page) = server
        .get(
            &format!("/device/?app_id=app_since&order=desc&updated_at={since}"),
            ADMIN,
        )
        .await;
    assert_eq!(ids(&page), ["e", "d"]);
    // Combined with a cursor and a small page.
    assert_eq!(
        walk(
            &server,
            "app_since",
            "&order=desc&updated_at=2024-01-01T00:30:00%2B00:00",
            1
        )
        .await,
        ["e", "d", "c", "b"]
    );
    assert_eq!(
        walk(&server, "app_since", "&updated_at=2024-01-01T00:30:00Z", 1).await,
        ["b", "c", "d", "e"]
    );
    // Before the epoch: everything.
    let (_, page) = server
        .get(
            "/device/?app_id=app_since&updated_at=1960-01-01T00:00:00Z",
            ADMIN,
        )
        .await;
    assert_eq!(ids(&page).len(), 5);
}

#[actix_web::test]
async fn a_check_in_moves_a_device_in_time_order_but_not_in_id_order() {
    let server = TestServer::new().await;
    server.create_app("app_move").await;
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        server.clock.set(START + i as u64 * HOUR);
        server.report("app_move", id).await;
    }
    server.clock.set(START + 5 * HOUR);
    server
        .report_with("app_move", "a", json!({"version_name": "1.0.1"}))
        .await;
    let (_, page) = server
        .get("/device/?app_id=app_move&order=asc", ADMIN)
        .await;
    assert_eq!(ids(&page), ["b", "c", "a"]);
    let (_, page) = server.get("/device/?app_id=app_move", ADMIN).await;
    assert_eq!(ids(&page), ["a", "b", "c"]);
    assert_eq!(page["data"][0]["updated_at"], "2024-01-01T05:00:00Z");
}

#[actix_web::test]
async fn next_cursor_is_the_last_row_of_the_page() {
    let server = TestServer::new().await;
    server.create_app("app_cursor").await;
    server.clock.set(START + 500_000);
    server.report("app_cursor", "a").await;
    server.report("app_cursor", "b").await;
    let (_, page) = server
        .get("/device/?app_id=app_cursor&limit=1", ADMIN)
        .await;
    assert_eq!(page["nextCursor"], "2024-01-01T00:00:00.500000Z|a");
    assert_eq!(page["hasMore"], true);
    let (_, page) = server
        .get("/device/?app_id=app_cursor&limit=2", ADMIN)
        .await;
    assert_eq!(page["hasMore"], false);
    assert!(page.get("nextCursor").is_none());
}

#[actix_web::test]
async fn devices_of_other_apps_never_show() {
    let server = TestServer::new().await;
    for app in ["app_a", "app_a.b", "app_ab"] {
        server.create_app(app).await;
        server.report(app, &format!("{app}-device")).await;
    }
    for order in ["", "&order=asc", "&order=desc"] {
        let (_, page) = server
            .get(&format!("/device/?app_id=app_a{order}"), ADMIN)
            .await;
        assert_eq!(ids(&page), ["app_a-device"], "{order}");
    }
}

#[actix_web::test]
async fn linking_sets_overrides_that_show_on_the_device() {
    let server = TestServer::new().await;
    server.create_app("app_link").await;
    server.create_channel("app_link", "beta", json!({})).await;
    server
        .create_channel("app_link", "production", json!({}))
        .await;
    server.create_bundle("app_link", "1.1.0").await;
    server.create_bundle("app_link", "1.2.0").await;
    server.report("app_link", "device_456").await;

    // The seed's "beta device registration".
    let (status, body) = server
        .post(
            "/device/",
            ADMIN,
            json!({"app_id": "app_link", "device_id": "device_456", "channel": "beta"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (_, device) = server
        .get("/device/?app_id=app_link&device_id=device_456", ADMIN)
        .await;
    assert_eq!(device["channel"], "beta");
    assert!(device.get("version_override").is_none());

    // The seed's "version override"; the channel override stays.
    let (status, _) = server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_link", "device_id": "DEVICE_456", "version_id": "1.1.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, device) = server
        .get("/device/?app_id=app_link&device_id=device_456", ADMIN)
        .await;
    assert_eq!(
        (&device["channel"], &device["version_override"]),
        (&json!("beta"), &json!("1.1.0"))
    );

    // Both at once replace both.
    server
        .post("/device", ADMIN, json!({"app_id": "app_link", "device_id": "device_456", "channel": "production", "version_id": "1.2.0"}))
        .await;
    let (_, device) = server
        .get("/device/?app_id=app_link&device_id=device_456", ADMIN)
        .await;
    assert_eq!(
        (&device["channel"], &device["version_override"]),
        (&json!("production"), &json!("1.2.0"))
    );

    // The list shows them too.
    let (_, page) = server.get("/device/?app_id=app_link", ADMIN).await;
    assert_eq!(page["data"][0]["channel"], "production");
}

#[actix_web::test]
async fn a_device_can_be_linked_before_it_checks_in() {
    let server = TestServer::new().await;
    server.create_app("app_early").await;
    server.create_channel("app_early", "beta", json!({})).await;
    let (status, _) = server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_early", "device_id": "future", "channel": "beta"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Not a device until it checks in...
    let (status, _) = server
        .get("/device/?app_id=app_early&device_id=future", ADMIN)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // ...and then it has its override.
    server.report("app_early", "FUTURE").await;
    let (_, device) = server
        .get("/device/?app_id=app_early&device_id=future", ADMIN)
        .await;
    assert_eq!(device["channel"], "beta");
}

#[actix_web::test]
async fn linking_checks_in_the_documented_order() {
    let server = TestServer::new().await;
    server.create_app("app_checks").await;
    server.create_channel("app_checks", "beta", json!({})).await;
    let cases = [
        (
            json!({"device_id": "d"}),
            StatusCode::BAD_REQUEST,
            "missing_app_id",
        ),
        (
            json!({"app_id": "bad id", "device_id": "d"}),
            StatusCode::BAD_REQUEST,
            "invalid_app_id",
        ),
        (
            json!({"app_id": "app_checks"}),
            StatusCode::BAD_REQUEST,
            "missing_device_id",
        ),
        (
            json!({"app_id": "app_checks", "device_id": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_device_id",
        ),
        (
            json!({"app_id": "app_checks", "device_id": 42}),
            StatusCode::BAD_REQUEST,
            "invalid_device_id",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "x".repeat(129)}),
            StatusCode::BAD_REQUEST,
            "invalid_device_id",
        ),
        (
            json!({"app_id": "app_other", "device_id": "d", "channel": "beta"}),
            StatusCode::NOT_FOUND,
            "app_not_found",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "d", "channel": "nope"}),
            StatusCode::NOT_FOUND,
            "channel_not_found",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "d", "version_id": "9.9.9"}),
            StatusCode::NOT_FOUND,
            "version_not_found",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "d", "channel": "beta", "version_id": "9.9.9"}),
            StatusCode::NOT_FOUND,
            "version_not_found",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "d"}),
            StatusCode::BAD_REQUEST,
            "missing_channel_or_version",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "d", "channel": null}),
            StatusCode::BAD_REQUEST,
            "missing_channel_or_version",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "d", "channel": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_channel",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "d", "channel": ["beta"]}),
            StatusCode::BAD_REQUEST,
            "invalid_channel",
        ),
        (
            json!({"app_id": "app_checks", "device_id": "d", "version_id": 3}),
            StatusCode::BAD_REQUEST,
            "invalid_version_id",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = server.post("/device", ADMIN, body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert_eq!(answer["status"], "KO");
    }
    let (_, answer) = server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_checks", "device_id": "d", "channel": "nope"}),
        )
        .await;
    assert_eq!(
        answer,
        error(
            "channel_not_found",
            "Channel not found",
            json!({"channel": "nope"})
        )
    );
    let (_, answer) = server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_checks", "device_id": "d", "version_id": "9.9.9"}),
        )
        .await;
    assert_eq!(
        answer,
        error(
            "version_not_found",
            "Version not found",
            json!({"version_id": "9.9.9"})
        )
    );
    // Nothing was linked by any of them.
    server.report("app_checks", "d").await;
    let (_, device) = server
        .get("/device/?app_id=app_checks&device_id=d", ADMIN)
        .await;
    assert!(device.get("channel").is_none() && device.get("version_override").is_none());
}

#[actix_web::test]
async fn unlinking_removes_both_overrides_and_keeps_the_device() {
    let server = TestServer::new().await;
    server.create_app("app_unlink").await;
    server.create_channel("app_unlink", "beta", json!({})).await;
    server.create_bundle("app_unlink", "1.1.0").await;
    server.report("app_unlink", "device_456").await;
    server
        .post("/device", ADMIN, json!({"app_id": "app_unlink", "device_id": "device_456", "channel": "beta", "version_id": "1.1.0"}))
        .await;

    // The seed sends a JSON body with DELETE.
    let (status, body) = server
        .delete(
            "/device/",
            ADMIN,
            Some(json!({"app_id": "app_unlink", "device_id": "device_456"})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, device) = server
        .get("/device/?app_id=app_unlink&device_id=device_456", ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(device.get("channel").is_none() && device.get("version_override").is_none());

    // Idempotent, also by query string and for a device that does not exist.
    let (status, _) = server
        .delete(
            "/device?app_id=app_unlink&device_id=device_456",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .delete("/device?app_id=app_unlink&device_id=ghost", ADMIN, None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Its errors.
    let (status, body) = server.delete("/device?device_id=x", ADMIN, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_app_id"))
    );
    let (status, body) = server
        .delete("/device?app_id=app_unlink", ADMIN, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_device_id"))
    );
    let (status, body) = server
        .delete("/device?app_id=app_gone&device_id=x", ADMIN, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("app_not_found"))
    );
}

/// A filtered page in device-id order stops after `max_examined` rows and says where to go on,
/// so that walking the cursors still finds every match exactly once.
#[actix_web::test]
async fn a_filtered_page_examines_a_bounded_number_of_rows() {
    use device_registry::model::{DeviceListQuery, DeviceOrder};

    let server = TestServer::new().await;
    server.create_app("app_bound").await;
    for i in 0..40 {
        // Only every tenth device is recent enough to match.
        server
            .clock
            .set(START + if i % 10 == 9 { HOUR } else { 0 } + i);
        server.report("app_bound", &format!("d{i:02}")).await;
    }
    let mut query = DeviceListQuery {
        order: DeviceOrder::DeviceId,
        after: None,
        updated_after: Some(START + HOUR / 2),
        limit: 50,
        max_examined: 5,
        filter: Default::default(),
    };
    let mut found = Vec::new();
    let mut pages = 0;
    loop {
        let page = server.store.list_devices("app_bound", &query).unwrap();
        pages += 1;
        found.extend(page.devices.iter().map(|e| e.device.device_id.clone()));
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(found, ["d09", "d19", "d29", "d39"]);
    assert!(pages >= 7, "the bound was not applied: {pages} pages");
}

/// The bound also holds for filters in time order: every match still comes exactly once.
#[actix_web::test]
async fn a_selective_filter_in_time_order_is_bounded_and_complete() {
    use device_registry::model::{DeviceFilter, DeviceListQuery, DeviceOrder};

    let server = TestServer::new().await;
    server.create_app("app_bound_time").await;
    for i in 0..40u64 {
        server.clock.set(START + i * SECOND);
        let custom_id = if i % 10 == 3 { "needle" } else { "hay" };
        server
            .report_with(
                "app_bound_time",
                &format!("d{i:02}"),
                json!({"custom_id": custom_id, "version_name": custom_id}),
            )
            .await;
    }
    for order in [
        DeviceOrder::UpdatedAsc,
        DeviceOrder::UpdatedDesc,
        DeviceOrder::DeviceId,
    ] {
        let mut query = DeviceListQuery {
            order,
            after: None,
            updated_after: None,
            limit: 50,
            max_examined: 4,
            // version_name has no index: a bounded scan.
            filter: DeviceFilter {
                version_name: Some("needle".into()),
                ..Default::default()
            },
        };
        let (mut found, mut pages) = (Vec::new(), 0);
        loop {
            let page = server.store.list_devices("app_bound_time", &query).unwrap();
            pages += 1;
            found.extend(page.devices.iter().map(|e| e.device.device_id.clone()));
            match page.next {
                Some(cursor) => query.after = Some(cursor),
                None => break,
            }
        }
        let mut expected = vec!["d03", "d13", "d23", "d33"];
        if order == DeviceOrder::UpdatedDesc {
            expected.reverse();
        }
        assert_eq!(found, expected, "{order:?}");
        assert!(
            pages >= 9,
            "{order:?}: the bound was not applied ({pages} pages)"
        );

        // custom_id has an index: the same devices in one page, whatever the bound.
        query.filter = DeviceFilter {
            custom_id: Some("needle".into()),
            ..Default::default()
        };
        query.after = None;
        let page = server.store.list_devices("app_bound_time", &query).unwrap();
        let ids: Vec<String> = page
            .devices
            .iter()
            .map(|e| e.device.device_id.clone())
            .collect();
        assert_eq!(ids, expected, "{order:?}: custom id index");
        assert!(page.next.is_none());
    }
}
