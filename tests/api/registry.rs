//! `/app`, `/channel`, `/bundle` (spec section 4).

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

#[actix_web::test]
async fn apps_are_created_listed_read_and_refused_twice() {
    let server = TestServer::new().await;
    let (status, app) = server
        .post(
            "/app",
            ADMIN,
            json!({"app_id": "com.example.app", "name": "Example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        app,
        json!({"app_id": "com.example.app", "name": "Example", "created_at": "2024-01-01T00:00:00Z"})
    );

    let (status, body) = server
        .post(
            "/app",
            ADMIN,
            json!({"app_id": "com.example.app", "name": "Again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        error(
            "app_id_already_exists",
            "App already exists",
            json!({"app_id": "com.example.app"})
        )
    );

    let (status, one) = server.get("/app/com.example.app", ADMIN).await;
    assert_eq!((status, &one), (StatusCode::OK, &app));
    let (_, all) = server.get("/app", ADMIN).await;
    assert_eq!(all, json!([app]));

    let (status, body) = server.get("/app/nope", ADMIN).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("app_not_found"))
    );
    let (status, body) = server.get("/app/-bad", ADMIN).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_app_id"))
    );
    for (body, code) in [
        (json!({"name": "x"}), "missing_app_id"),
        (json!({"app_id": "a b"}), "invalid_app_id"),
        (json!({"app_id": "ok", "name": 5}), "invalid_name"),
        (json!({"app_id": "ok", "name": "  "}), "invalid_name"),
    ] {
        let (status, answer) = server.post("/app", ADMIN, body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
}

#[actix_web::test]
async fn deleting_an_app_removes_everything_it_owns() {
    let server = TestServer::new().await;
    server.create_app("app_del").await;
    server.create_app("app_keep").await;
    server.create_channel("app_del", "beta", json!({})).await;
    server.create_bundle("app_del", "1.0.0").await;
    for i in 0..1100 {
        server.report("app_del", &format!("d{i}")).await;
    }
    server.report("app_keep", "d0").await;
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_del", "device_id": "d1", "channel": "beta"}),
        )
        .await;

    let (status, body) = server.delete("/app/app_del", ADMIN, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, _) = server.get("/app/app_del", ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.delete("/app/app_del", ADMIN, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Re-created, it starts empty: no devices, channels, bundles or overrides came back.
    server.create_app("app_del").await;
    for order in ["", "&order=asc", "&order=desc"] {
        let (_, page) = server
            .get(&format!("/device/?app_id=app_del{order}"), ADMIN)
            .await;
        assert_eq!(page, json!({"data": [], "hasMore": false}));
    }
    let (_, channels) = server.get("/channel?app_id=app_del", ADMIN).await;
    assert_eq!(channels, json!([]));
    let (_, bundles) = server.get("/bundle?app_id=app_del", ADMIN).await;
    assert_eq!(bundles, json!([]));
    server.report("app_del", "d1").await;
    let (_, device) = server
        .get("/device/?app_id=app_del&device_id=d1", ADMIN)
        .await;
    assert!(device.get("channel").is_none());
    // The other app is untouched.
    let (_, page) = server.get("/device/?app_id=app_keep", ADMIN).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn channels_are_created_with_the_defaults() {
    let server = TestServer::new().await;
    server.create_app("app_ch").await;
    let (status, body) = server
        .post(
            "/channel",
            ADMIN,
            json!({"app_id": "app_ch", "channel": "production"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let expected = json!({
        "id": 1, "app_id": "app_ch", "name": "production", "version": null, "public": false,
        "ios": true, "android": true, "electron": true, "allow_device_self_set": false,
        "allow_emulator": true, "allow_device": true, "allow_dev": true, "allow_prod": true,
        "disableAutoUpdate": "major", "disableAutoUpdateUnderNative": true,
        "rollout_id": null, "rollout_version": null, "rollout_percentage_bps": 0,
        "rollout_paused": false, "rollout_started_at": null, "rollout_guard": null,
        "rollout_guard_triggered_at": null,
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
    });
    assert_eq!(body, json!({"status": "ok", "channel": expected}));
    let (status, one) = server
        .get("/channel?app_id=app_ch&channel=production", ADMIN)
        .await;
    assert_eq!((status, one), (StatusCode::OK, expected.clone()));
    let (_, all) = server.get("/channel?app_id=app_ch", ADMIN).await;
    assert_eq!(all, json!([expected]));
    let (status, body) = server
        .get("/channel?app_id=app_ch&channel=nope", ADMIN)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        error(
            "channel_not_found",
            "Channel not found",
            json!({"channel": "nope"})
        )
    );
}

#[actix_web::test]
async fn a_channel_upsert_writes_only_the_fields_sent() {
    let server = TestServer::new().await;
    server.create_app("app_patch").await;
    server.create_bundle("app_patch", "1.0.0").await;
    server
        .create_channel(
            "app_patch",
            "beta",
            json!({"version": "1.0.0", "android": false, "disableAutoUpdate": "minor"}),
        )
        .await;
    server.clock.advance(HOUR);
    let (status, body) = server
        .post(
            "/channel",
            ADMIN,
            json!({"app_id": "app_patch", "channel": "beta", "allow_emulator": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let channel = &body["channel"];
    assert_eq!(channel["version"], "1.0.0");
    assert_eq!(channel["android"], false);
    assert_eq!(channel["disableAutoUpdate"], "minor");
    assert_eq!(channel["allow_emulator"], false);
    assert_eq!(channel["created_at"], "2024-01-01T00:00:00Z");
    assert_eq!(channel["updated_at"], "2024-01-01T01:00:00Z");
    // null unsets the bundle.
    let (_, body) = server
        .post(
            "/channel",
            ADMIN,
            json!({"app_id": "app_patch", "channel": "beta", "version": null}),
        )
        .await;
    assert_eq!(body["channel"]["version"], Value::Null);
    assert_eq!(body["channel"]["id"], 1);
}

#[actix_web::test]
async fn one_public_channel_per_platform() {
    let server = TestServer::new().await;
    server.create_app("app_pub").await;
    server
        .create_channel(
            "app_pub",
            "ios-only",
            json!({"public": true, "android": false, "electron": false}),
        )
        .await;
    server
        .create_channel(
            "app_pub",
            "android-only",
            json!({"public": true, "ios": false, "electron": false}),
        )
        .await;
    let public = |channels: &Value| -> Vec<String> {
        channels
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["public"] == true)
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, channels) = server.get("/channel?app_id=app_pub", ADMIN).await;
    assert_eq!(public(&channels), ["android-only", "ios-only"]);
    // A public channel for every platform takes over from both.
    server
        .create_channel("app_pub", "everyone", json!({"public": true}))
        .await;
    let (_, channels) = server.get("/channel?app_id=app_pub", ADMIN).await;
    assert_eq!(public(&channels), ["everyone"]);
}

#[actix_web::test]
async fn channel_input_is_validated() {
    let server = TestServer::new().await;
    server.create_app("app_chval").await;
    let cases = [
        (
            json!({"app_id": "app_chval"}),
            StatusCode::BAD_REQUEST,
            "missing_channel",
        ),
        (
            json!({"app_id": "app_chval", "channel": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_channel",
        ),
        (
            json!({"app_id": "app_chval", "channel": "a\u{7}b"}),
            StatusCode::BAD_REQUEST,
            "invalid_channel",
        ),
        (
            json!({"app_id": "app_chval", "channel": "c", "public": "yes"}),
            StatusCode::BAD_REQUEST,
            "invalid_public",
        ),
        (
            json!({"app_id": "app_chval", "channel": "c", "ios": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_ios",
        ),
        (
            json!({"app_id": "app_chval", "channel": "c", "disableAutoUpdate": "always"}),
            StatusCode::BAD_REQUEST,
            "invalid_disable_auto_update",
        ),
        (
            json!({"app_id": "app_chval", "channel": "c", "disableAutoUpdateUnderNative": "no"}),
            StatusCode::BAD_REQUEST,
            "invalid_disable_auto_update_under_native",
        ),
        (
            json!({"app_id": "app_chval", "channel": "c", "version": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_version",
        ),
        (
            json!({"app_id": "app_chval", "channel": "c", "version": "9.9.9"}),
            StatusCode::NOT_FOUND,
            "version_not_found",
        ),
        (
            json!({"app_id": "app_nochan", "channel": "c"}),
            StatusCode::NOT_FOUND,
            "app_not_found",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = server.post("/channel", ADMIN, body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (_, channels) = server.get("/channel?app_id=app_chval", ADMIN).await;
    assert_eq!(channels, json!([]), "a refused upsert created a channel");
}

#[actix_web::test]
async fn deleting_a_channel_drops_the_overrides_that_point_at_it() {
    let server = TestServer::new().await;
    server.create_app("app_chdel").await;
    server.create_channel("app_chdel", "beta", json!({})).await;
    server.create_bundle("app_chdel", "1.0.0").await;
    server.report("app_chdel", "a").await;
    server.report("app_chdel", "b").await;
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_chdel", "device_id": "a", "channel": "beta"}),
        )
        .await;
    server
        .post("/device", ADMIN, json!({"app_id": "app_chdel", "device_id": "b", "channel": "beta", "version_id": "1.0.0"}))
        .await;

    let (status, body) = server
        .delete(
            "/channel",
            ADMIN,
            Some(json!({"app_id": "app_chdel", "channel": "beta"})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (_, a) = server
        .get("/device/?app_id=app_chdel&device_id=a", ADMIN)
        .await;
    assert!(a.get("channel").is_none());
    let (_, b) = server
        .get("/device/?app_id=app_chdel&device_id=b", ADMIN)
        .await;
    assert!(b.get("channel").is_none());
    assert_eq!(b["version_override"], "1.0.0");

    let (status, body) = server
        .delete("/channel?app_id=app_chdel&channel=beta", ADMIN, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("channel_not_found"))
    );
}

#[actix_web::test]
async fn bundles_are_registered_listed_newest_first_and_validated() {
    let server = TestServer::new().await;
    server.create_app("app_b").await;
    let (status, body) = server
        .post(
            "/bundle",
            ADMIN,
            json!({"app_id": "app_b", "version": "1.0.0", "external_url": "https://cdn.example.com/1.0.0.zip",
                   "checksum": "abc", "session_key": "iv:key", "min_update_version": "0.9.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let first = json!({"id": 1, "app_id": "app_b", "version": "1.0.0", "external_url": "https://cdn.example.com/1.0.0.zip",
                       "checksum": "abc", "session_key": "iv:key", "min_update_version": "0.9.0",
                       "manifest": [], "created_at": "2024-01-01T00:00:00Z"});
    assert_eq!(body, json!({"status": "ok", "bundle": first}));
    assert_eq!(server.create_bundle("app_b", "1.10.0").await, 2);
    assert_eq!(server.create_bundle("app_b", "1.9.0-beta.1").await, 3);
    let (_, bundles) = server.get("/bundle?app_id=app_b", ADMIN).await;
    let versions: Vec<&str> = bundles
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.9.0-beta.1", "1.10.0", "1.0.0"]);

    let ok = json!({"app_id": "app_b", "version": "2.0.0", "external_url": "http://cdn.example.com/b.zip", "checksum": "c"});
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        body
    };
    let cases = [
        (
            with("version", Value::Null),
            StatusCode::BAD_REQUEST,
            "missing_version",
        ),
        (
            with("version", json!("v2.0.0")),
            StatusCode::BAD_REQUEST,
            "invalid_version",
        ),
        (
            with("version", json!("2.0")),
            StatusCode::BAD_REQUEST,
            "invalid_version",
        ),
        (
            with("external_url", Value::Null),
            StatusCode::BAD_REQUEST,
            "missing_external_url",
        ),
        (
            with("external_url", json!("ftp://x/y.zip")),
            StatusCode::BAD_REQUEST,
            "invalid_external_url",
        ),
        (
            with("external_url", json!("https://")),
            StatusCode::BAD_REQUEST,
            "invalid_external_url",
        ),
        (
            with("checksum", Value::Null),
            StatusCode::BAD_REQUEST,
            "missing_checksum",
        ),
        (
            with("checksum", json!("")),
            StatusCode::BAD_REQUEST,
            "invalid_checksum",
        ),
        (
            with("min_update_version", json!("soon")),
            StatusCode::BAD_REQUEST,
            "invalid_min_update_version",
        ),
        (
            with("manifest", json!({"file_name": "a.js"})),
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
        ),
        (
            with(
                "manifest",
                json!([{"file_name": "a.js", "file_hash": "h", "download_url": "ftp://x/a.js"}]),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
        ),
        (
            with(
                "manifest",
                json!([{"file_name": "", "file_hash": "h", "download_url": "https://x/a.js"}]),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
        ),
        (
            with(
                "manifest",
                json!([{"file_name": "a.js", "file_hash": "h", "download_url": "https://x/a",
                        "size": 3}]),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_manifest",
        ),
        (
            with("version", json!("1.0.0")),
            StatusCode::CONFLICT,
            "version_already_exists",
        ),
        (
            with("app_id", json!("app_nob")),
            StatusCode::NOT_FOUND,
            "app_not_found",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = server.post("/bundle", ADMIN, body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (_, bundles) = server.get("/bundle?app_id=app_b", ADMIN).await;
    assert_eq!(
        bundles.as_array().unwrap().len(),
        3,
        "a refused bundle was stored"
    );
}

#[actix_web::test]
async fn a_bundle_in_use_cannot_be_deleted() {
    let server = TestServer::new().await;
    server.create_app("app_bdel").await;
    server.create_bundle("app_bdel", "1.0.0").await;
    server.create_bundle("app_bdel", "1.1.0").await;
    server
        .create_channel("app_bdel", "production", json!({"version": "1.0.0"}))
        .await;
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_bdel", "device_id": "d", "version_id": "1.1.0"}),
        )
        .await;

    for version in ["1.0.0", "1.1.0"] {
        let (status, body) = server
            .delete(
                "/bundle",
                ADMIN,
                Some(json!({"app_id": "app_bdel", "version": version})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body,
            error(
                "cannot_delete_linked_version",
                "Version is used by a channel or a device override",
                json!({"version": version})
            )
        );
    }
    server
        .delete("/device?app_id=app_bdel&device_id=d", ADMIN, None)
        .await;
    let (status, _) = server
        .delete("/bundle?app_id=app_bdel&version=1.1.0", ADMIN, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .delete("/bundle?app_id=app_bdel&version=1.1.0", ADMIN, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("version_not_found"))
    );
}
