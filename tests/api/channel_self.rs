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

fn with_channel(app_id: &str, channel: &str) -> Value {
    let mut body = device_body(app_id, "d");
    body["channel"] = json!(channel);
    body
}

#[actix_web::test]
async fn a_device_may_choose_only_self_settable_private_channels() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_cs").await;
    let (status, answer) = server
        .plugin("/channel_self", with_channel("app_cs", "beta"))
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"status": "ok", "allowSet": true}))
    );
    for (channel, code) in [
        ("nope", "channel_not_found"),
        ("production", "public_channel_self_set_not_allowed"),
        ("internal", "channel_self_set_not_allowed"),
    ] {
        let (status, answer) = server
            .plugin("/channel_self", with_channel("app_cs", channel))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (answer["error"].as_str(), answer["kind"].as_str()),
            (Some(code), Some("failed")),
            "{channel}"
        );
    }
    // Nothing is stored: no override, no device.
    let (status, _) = server
        .get("/device/?app_id=app_cs&device_id=d", ADMIN)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, answer) = server
        .plugin("/channel_self", with_channel("app_unknown", "beta"))
        .await;
    assert_eq!(answer["error"], "app_not_found");
    let (status, answer) = server
        .plugin("/channel_self", device_body("app_cs", "d"))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_channel"))
    );
}

#[actix_web::test]
async fn put_answers_the_override_else_the_default() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_put").await;
    let put = |body: Value| server.call(Method::PUT, "/channel_self", None, Some(body));
    let (_, answer) = put(device_body("app_put", "d")).await;
    assert_eq!(
        answer,
        json!({"channel": "production", "status": "default", "allowSet": false})
    );
    let mut with_default = device_body("app_put", "d");
    with_default["defaultChannel"] = json!("beta");
    let (_, answer) = put(with_default.clone()).await;
    assert_eq!(
        answer,
        json!({"channel": "beta", "status": "default", "allowSet": true})
    );
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_put", "device_id": "d", "channel": "internal"}),
        )
        .await;
    let (_, answer) = put(with_default).await;
    assert_eq!(
        answer,
        json!({"channel": "internal", "status": "override", "allowSet": false})
    );

    server.create_app("app_put_empty").await;
    let (status, answer) = put(device_body("app_put_empty", "d")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::OK, Some("no_channel"))
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
async fn delete_is_ok_for_a_valid_device() {
    let server = TestServer::new().await;
    app_with_channels(&server, "app_del_cs").await;
    let (status, answer) = server
        .call(
            Method::DELETE,
            "/channel_self",
            None,
            Some(device_body("app_del_cs", "d")),
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"status": "ok"})));
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
}
