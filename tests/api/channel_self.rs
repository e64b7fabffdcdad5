//! `/channel_self`: devices choosing their channel (spec section 5).

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

async fn app_with_channels(server: &TestServer, app_id: &str) {
    server.create_app(app_id).await;
    server
        .create_channel(app_id, "production", json!({"public": true}))
        .await;
    server
        .create_channel(app_id, "beta", json!({"allow_device_self_set": true}))
        .await;
    server.create_channel(app_id, "internal", json!({})).await;
    server
        .create_channel(
            app_id,
            "android-beta",
            json!({"allow_device_self_set": true, "ios": false, "allow_emulator": false}),
        )
        .await;
}

/// A plugin release that keeps its channel itself (7.34 on), and one that has the server keep
/// it (before 7.34), as their bodies name them.
const CURRENT: &str = "8.51.14";
const BEFORE_7_34: &str = "7.33.4";

fn body(app_id: &str, plugin_version: &str) -> Value {
    let mut body = device_body(app_id, "d");
    body["plugin_version"] = json!(plugin_version);
    body["defaultChannel"] = json!("");
    body
}

fn with_channel(app_id: &str, plugin_version: &str, channel: &str) -> Value {
    let mut body = body(app_id, plugin_version);
    body["channel"] = json!(channel);
    body
}

async fn device(server: &TestServer, app_id: &str) -> (StatusCode, Value) {
    server
        .get(&format!("/device/?app_id={app_id}&device_id=d"), ADMIN)
        .await
}

#[actix_web::test]
async fn choices_are_refused_as_capgo_refuses_them() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_cs").await;
    for plugin in [CURRENT, BEFORE_7_34] {
        for (channel, code, message) in [
            ("nope", "channel_not_found", "Cannot find channel"),
            (
                "production",
                "public_channel_self_set_not_allowed",
                "This channel is public and does not allow device self-assignment. Unset the \
                 channel and the device will automatically use the public channel.",
            ),
            (
                "internal",
                "channel_self_set_not_allowed",
                "This channel does not allow devices to self associate",
            ),
            (
                "android-beta",
                "channel_self_set_not_allowed",
                "This channel does not allow devices of this platform",
            ),
        ] {
            let (status, answer) = server
                .plugin("/channel_self", with_channel("app_cs", plugin, channel))
                .await;
            assert_eq!(
                (status, answer),
                (
                    StatusCode::OK,
                    json!({"error": code, "message": message, "channel": channel, "app_id": "app_cs"})
                ),
                "{plugin} {channel}"
            );
        }
        let (status, answer) = server
            .plugin("/channel_self", with_channel("app_cs", plugin, ""))
            .await;
        assert_eq!(
            (status, answer),
            (
                StatusCode::OK,
                json!({"error": "missing_channel", "message": "Cannot find channel in body"})
            )
        );
        let (_, answer) = server
            .plugin("/channel_self", with_channel("app_unknown", plugin, "beta"))
            .await;
        assert_eq!(answer["error"], "app_not_found");
    }
    // A refusal stores nothing: no override, no device.
    assert_eq!(device(&server, "app_cs").await.0, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_current_plugin_keeps_its_channel_and_the_server_stores_none() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_local").await;
    server.create_bundle("app_local", "1.2.0").await;
    server
        .create_channel("app_local", "beta", json!({"version": "1.2.0"}))
        .await;
    let (status, answer) = server
        .plugin("/channel_self", with_channel("app_local", CURRENT, "beta"))
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"status": "ok", "allowSet": true}))
    );
    // The device checked in; no override was stored.
    let (status, recorded) = device(&server, "app_local").await;
    assert_eq!(status, StatusCode::OK);
    assert!(recorded.get("channel").is_none(), "{recorded}");
    // The plugin now sends the channel as its default channel, and gets its bundle.
    let mut update = body("app_local", CURRENT);
    update["defaultChannel"] = json!("beta");
    let (_, answer) = server.plugin("/updates", update.clone()).await;
    assert_eq!(answer["version"], "1.2.0", "{answer}");
    // Unsetting is the plugin's own business (7.34 on sends nothing); a call is still ok.
    let (status, answer) = server
        .call(
            Method::DELETE,
            "/channel_self",
            None,
            Some(body("app_local", CURRENT)),
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "ok"})));
}

#[actix_web::test]
async fn an_older_plugin_has_the_server_keep_its_channel() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_kept").await;
    server.create_bundle("app_kept", "1.2.0").await;
    server
        .create_channel(
            "app_kept",
            "production",
            json!({"allow_device_self_set": true}),
        )
        .await;
    server
        .create_channel("app_kept", "beta", json!({"version": "1.2.0"}))
        .await;
    let set = |channel: &str| {
        server.plugin(
            "/channel_self",
            with_channel("app_kept", BEFORE_7_34, channel),
        )
    };
    let unset = || {
        server.call(
            Method::DELETE,
            "/channel_self",
            None,
            Some(body("app_kept", BEFORE_7_34)),
        )
    };
    let ok = (StatusCode::OK, json!({"status": "ok"}));
    let cannot_override = (
        StatusCode::OK,
        json!({"error": "cannot_override",
               "message": "Cannot change device override current channel don't allow it"}),
    );

    // The choice becomes the device's channel override, which /updates follows while the
    // plugin keeps sending its configured (empty) default channel.
    assert_eq!(set("beta").await, ok);
    assert_eq!(device(&server, "app_kept").await.1["channel"], "beta");
    let (_, answer) = server
        .plugin("/updates", body("app_kept", BEFORE_7_34))
        .await;
    assert_eq!(answer["version"], "1.2.0", "{answer}");
    let (_, answer) = server
        .call(
            Method::PUT,
            "/channel_self",
            None,
            Some(body("app_kept", BEFORE_7_34)),
        )
        .await;
    assert_eq!(
        answer,
        json!({"channel": "beta", "status": "override", "allowSet": true})
    );
    // Choosing the public channel is going back to the default: the override goes.
    assert_eq!(set("production").await, ok);
    assert!(device(&server, "app_kept").await.1.get("channel").is_none());
    // Nothing to unset.
    assert_eq!(unset().await, cannot_override);
    // Set, then unset.
    assert_eq!(set("beta").await, ok);
    assert_eq!(unset().await, ok);
    assert!(device(&server, "app_kept").await.1.get("channel").is_none());

    // An operator's link to a channel devices may not choose cannot be changed by the device.
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_kept", "device_id": "d", "channel": "internal", "version_id": "1.2.0"}),
        )
        .await;
    assert_eq!(set("beta").await, cannot_override);
    assert_eq!(unset().await, cannot_override);
    let (_, recorded) = device(&server, "app_kept").await;
    assert_eq!(
        (&recorded["channel"], &recorded["version_override"]),
        (&json!("internal"), &json!("1.2.0"))
    );
    // Once the operator allows self-set on it, the device may leave it; its pinned version
    // stays (only the channel was the device's to change).
    server
        .create_channel(
            "app_kept",
            "internal",
            json!({"allow_device_self_set": true}),
        )
        .await;
    assert_eq!(unset().await, ok);
    let (_, recorded) = device(&server, "app_kept").await;
    assert!(recorded.get("channel").is_none(), "{recorded}");
    assert_eq!(recorded["version_override"], "1.2.0");

    // The audit log names the device as the actor of its own changes.
    let (_, audit) = server
        .get("/device/audit?app_id=app_kept&device_id=d", ADMIN)
        .await;
    let actors: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        ["device", "admin", "device", "device", "device", "device"]
    );
}

#[actix_web::test]
async fn put_answers_the_channel_updates_uses() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_put").await;
    for plugin in [CURRENT, BEFORE_7_34] {
        let put = |default: &str| {
            let mut body = body("app_put", plugin);
            body["defaultChannel"] = json!(default);
            server.call(Method::PUT, "/channel_self", None, Some(body))
        };
        // As Capgo answers a default: no allowSet.
        let (_, answer) = put("").await;
        assert_eq!(
            answer,
            json!({"channel": "production", "status": "default"})
        );
        let (_, answer) = put("beta").await;
        assert_eq!(answer, json!({"channel": "beta", "status": "default"}));
        // A default channel /updates would not take is not confirmed either, and a private one
        // reads as one that does not exist.
        for default in ["internal", "nope", "android-beta"] {
            let (status, answer) = put(default).await;
            assert_eq!(
                (status, answer),
                (
                    StatusCode::OK,
                    json!({"error": "channel_not_found", "message": "Cannot find channel"})
                ),
                "{plugin} {default}"
            );
        }
    }
    // An operator's link: a plugin before 7.34 is told it (it keeps nothing); a later one,
    // which keeps whatever channel it is told as its own default channel, is not (it would keep
    // asking for a private channel once unlinked), and /updates serves it the link regardless.
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_put", "device_id": "d", "channel": "internal"}),
        )
        .await;
    for (plugin, expected) in [
        (
            BEFORE_7_34,
            json!({"channel": "internal", "status": "override", "allowSet": false}),
        ),
        (CURRENT, json!({"channel": "beta", "status": "default"})),
    ] {
        let mut with_default = body("app_put", plugin);
        with_default["defaultChannel"] = json!("beta");
        let (_, answer) = server
            .call(Method::PUT, "/channel_self", None, Some(with_default))
            .await;
        assert_eq!(answer, expected, "{plugin}");
    }

    server.create_app("app_put_empty").await;
    let (status, answer) = server
        .call(
            Method::PUT,
            "/channel_self",
            None,
            Some(body("app_put_empty", CURRENT)),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::OK, Some("channel_not_found"))
    );
}

#[actix_web::test]
async fn get_lists_the_channels_a_device_may_pick() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_list").await;
    let names = |answer: &Value| -> Vec<String> {
        answer
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, answer) = server
        .call(
            Method::GET,
            "/channel_self?app_id=app_list&platform=ios",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&answer), ["beta", "production"]);
    let beta = answer
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "beta")
        .unwrap();
    assert_eq!(
        beta,
        &json!({"id": 2, "name": "beta", "public": false, "allow_self_set": true})
    );
    let (_, answer) = server
        .call(
            Method::GET,
            "/channel_self?app_id=app_list&platform=android",
            None,
            None,
        )
        .await;
    assert_eq!(names(&answer), ["android-beta", "beta", "production"]);
    let (_, answer) = server
        .call(
            Method::GET,
            "/channel_self?app_id=app_list&platform=android&is_emulator=true",
            None,
            None,
        )
        .await;
    assert_eq!(names(&answer), ["beta", "production"]);
    let (status, answer) = server
        .call(
            Method::GET,
            "/channel_self?app_id=app_list&platform=web",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_platform"))
    );
    let (status, answer) = server.call(Method::GET, "/channel_self", None, None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_app_id"))
    );
}

#[actix_web::test]
async fn delete_takes_the_device_from_a_body_or_the_query() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_del_cs").await;
    let (status, answer) = server
        .call(
            Method::DELETE,
            "/channel_self?app_id=app_del_cs&device_id=d&platform=ios&plugin_version=8.51.14&is_prod=true",
            None,
            None,
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "ok"})));
    // What 5.9.5 on Android sends: a DELETE without a body, so without a device.
    let (status, answer) = server
        .call(
            Method::DELETE,
            "/channel_self?app_id=app_del_cs",
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_device_id"))
    );
    let (status, answer) = server
        .call(Method::DELETE, "/channel_self", None, None)
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_app_id"))
    );
}
