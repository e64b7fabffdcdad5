//! API keys: presence, validity, modes, app limits, expiry, revocation (spec sections 2 and 4).

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::json;

use crate::common::*;

#[actix_web::test]
async fn no_key_and_wrong_keys_are_401() {
    let server = TestServer::new().await;
    server.create_app("app_auth").await;
    let (status, body) = server
        .call(Method::GET, "/device/?app_id=app_auth", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        error("no_key_provided", "No API key provided", json!({}))
    );

    let (status, body) = server.get("/device/?app_id=app_auth", "not-a-key").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, error("invalid_apikey", "Invalid API key", json!({})));

    // Authentication comes before any other check, even of a malformed request.
    let (status, _) = server
        .call(Method::GET, "/device/?app_id=.bad&limit=0", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(Method::POST, "/device", None, Some(json!([1, 2])))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn keys_are_read_from_authorization_bearer_or_capgkey() {
    let server = TestServer::new().await;
    server.create_app("app_headers").await;
    for (name, value) in [
        ("authorization", ADMIN.to_owned()),
        ("authorization", format!("Bearer {ADMIN}")),
        ("capgkey", ADMIN.to_owned()),
    ] {
        let request = TestRequest::get()
            .uri("/device/?app_id=app_headers")
            .insert_header((name, value.clone()));
        let (status, _, _) = server.send(request).await;
        assert_eq!(status, StatusCode::OK, "{name}: {value}");
    }
}

#[actix_web::test]
async fn modes_gate_what_a_key_may_do() {
    let server = TestServer::new().await;
    server.create_app("app_modes").await;
    server.create_channel("app_modes", "beta", json!({})).await;
    let read = server.key("read", &[]).await;
    let upload = server.key("upload", &[]).await;
    let write = server.key("write", &[]).await;
    let link = json!({"app_id": "app_modes", "device_id": "d", "channel": "beta"});

    // Reads are open to every mode.
    for key in [&read, &upload, &write] {
        let (status, _) = server.get("/device/?app_id=app_modes", key).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server.get("/channel?app_id=app_modes", key).await;
        assert_eq!(status, StatusCode::OK);
    }

    // Device, channel and bundle writes need write.
    for key in [&read, &upload] {
        let (status, body) = server.post("/device", key, link.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            error(
                "insufficient_permissions",
                "Insufficient permissions to manage devices",
                json!({"required_mode": "write"})
            )
        );
        let (status, _) = server
            .delete("/device?app_id=app_modes&device_id=d", key, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = server
            .post(
                "/channel",
                key,
                json!({"app_id": "app_modes", "channel": "x"}),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("insufficient_permissions"))
        );
        let (status, _) = server
            .post(
                "/bundle",
                key,
                json!({"app_id": "app_modes", "version": "1.0.0"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = server.post("/device", &write, link.clone()).await;
    assert_eq!(status, StatusCode::OK);

    // Apps and keys need all.
    for key in [&read, &upload, &write] {
        let (status, _) = server.post("/app", key, json!({"app_id": "app_new"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = server.delete("/app/app_modes", key, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = server.get("/apikey", key).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = server
            .post("/apikey", key, json!({"name": "x", "mode": "read"}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // Nothing was changed by a refused write: the device's overrides (it never checked in, so
    // only its audit trail shows them) are the one link the write key made.
    let (_, audit) = server
        .get("/device/audit?app_id=app_modes&device_id=d", &read)
        .await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(
        audit["data"][0]["actor"]
            .as_str()
            .map(|a| a.starts_with("key:")),
        Some(true)
    );
    let (_, channels) = server.get("/channel?app_id=app_modes", &read).await;
    assert_eq!(channels.as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn an_app_limited_key_sees_only_its_apps() {
    let server = TestServer::new().await;
    server.create_app("app_mine").await;
    server.create_app("app_theirs").await;
    server.report("app_theirs", "secret-device").await;
    let key = server.key("all", &["app_mine"]).await;

    let (status, _) = server.get("/device/?app_id=app_mine", &key).await;
    assert_eq!(status, StatusCode::OK);
    // Another app, whether or not it exists: 403, so apps cannot be enumerated.
    for app in ["app_theirs", "app_nonexistent"] {
        let (status, body) = server.get(&format!("/device/?app_id={app}"), &key).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            error(
                "cannot_access_app",
                "You cannot access this app",
                json!({"app_id": app})
            )
        );
        let (status, _) = server
            .get(
                &format!("/device/?app_id={app}&device_id=secret-device"),
                &key,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = server.get(&format!("/app/{app}"), &key).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = server.get(&format!("/channel?app_id={app}"), &key).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = server.get(&format!("/bundle?app_id={app}"), &key).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = server
            .delete(&format!("/device?app_id={app}&device_id=x"), &key, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = server.delete("/app/app_theirs", &key, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .post("/app", &key, json!({"app_id": "app_another"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, apps) = server.get("/app", &key).await;
    let listed: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["app_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["app_mine"]);
}

#[actix_web::test]
async fn a_limited_key_cannot_create_a_wider_key() {
    let server = TestServer::new().await;
    server.create_app("app_x").await;
    let key = server.key("all", &["app_x"]).await;
    for body in [
        json!({"name": "wide", "mode": "read"}),
        json!({"name": "other", "mode": "read", "limited_to_apps": ["app_y"]}),
        json!({"name": "both", "mode": "read", "limited_to_apps": ["app_x", "app_y"]}),
    ] {
        let (status, answer) = server.post("/apikey", &key, body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("cannot_access_app")),
            "{body}"
        );
    }
    let (status, _) = server
        .post(
            "/apikey",
            &key,
            json!({"name": "narrow", "mode": "read", "limited_to_apps": ["app_x"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // It sees only keys within its own reach.
    let (_, keys) = server.get("/apikey", &key).await;
    assert!(keys
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["limited_to_apps"] == json!(["app_x"])));
}

#[actix_web::test]
async fn keys_expire_and_can_be_revoked() {
    let server = TestServer::new().await;
    server.create_app("app_expiry").await;
    let (status, created) = server
        .post(
            "/apikey",
            ADMIN,
            json!({"name": "short", "mode": "read", "expires_at": "2024-01-01T01:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = created["key"].as_str().unwrap().to_owned();
    assert_eq!(created["expires_at"], "2024-01-01T01:00:00Z");

    let (status, _) = server.get("/device/?app_id=app_expiry", &secret).await;
    assert_eq!(status, StatusCode::OK);
    server.clock.advance(HOUR);
    let (status, body) = server.get("/device/?app_id=app_expiry", &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_apikey");

    let other = server.key("read", &[]).await;
    let (_, keys) = server.get("/apikey", ADMIN).await;
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "read key")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let (status, body) = server.delete(&format!("/apikey/{id}"), ADMIN, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = server.get("/device/?app_id=app_expiry", &other).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_apikey"))
    );
    let (status, body) = server.delete(&format!("/apikey/{id}"), ADMIN, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        error("apikey_not_found", "API key not found", json!({"id": id}))
    );
}

#[actix_web::test]
async fn keys_are_created_validated_and_listed_without_secrets() {
    let server = TestServer::new().await;
    let (status, created) = server
        .post(
            "/apikey",
            ADMIN,
            json!({"name": "ci", "mode": "write", "limited_to_apps": ["app_1", "app_2"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = created["key"].as_str().unwrap();
    assert!(secret.starts_with("dr_") && secret.len() == 43);
    assert_eq!(created["mode"], "write");
    assert_eq!(created["limited_to_apps"], json!(["app_1", "app_2"]));
    assert_eq!(created["expires_at"], serde_json::Value::Null);

    let (_, keys) = server.get("/apikey", ADMIN).await;
    let listed = keys.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("key").is_none());
    assert!(!keys.to_string().contains(secret));

    let cases = [
        (json!({"mode": "read"}), "missing_name"),
        (json!({"name": "", "mode": "read"}), "invalid_name"),
        (json!({"name": "x"}), "missing_mode"),
        (json!({"name": "x", "mode": "admin"}), "invalid_mode"),
        (
            json!({"name": "x", "mode": "read", "limited_to_apps": "app_1"}),
            "invalid_limited_to_apps",
        ),
        (
            json!({"name": "x", "mode": "read", "limited_to_apps": ["bad app"]}),
            "invalid_limited_to_apps",
        ),
        (
            json!({"name": "x", "mode": "read", "expires_at": "soon"}),
            "invalid_expires_at",
        ),
        (
            json!({"name": "x", "mode": "read", "expires_at": "2023-01-01T00:00:00Z"}),
            "invalid_expires_at",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = server.post("/apikey", ADMIN, body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
    let (status, answer) = server.delete("/apikey/abc", ADMIN, None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_id"))
    );
}
