//! The error contract: every malformed request gets a 4xx JSON body in the contract's shape
//! and changes nothing; unknown routes and methods answer JSON too (spec section 2).

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::common::*;

fn assert_error_shape(status: StatusCode, body: &Value, context: &str) {
    assert!(status.is_client_error(), "{context}: {status} {body}");
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("{context}: {body}"));
    assert_eq!(object.len(), 4, "{context}: {body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')),
        "{context}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{context}"
    );
    assert!(body["moreInfo"].is_object(), "{context}");
    assert_eq!(body["status"], "KO", "{context}");
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = TestServer::new().await;
    let (status, body) = server.get("/nowhere", ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, error("not_found", "Not found", json!({})));
    // (`/` leads to the console: tests/api/console.rs.)
    let (status, body) = server.get("/console/nowhere.js", ADMIN).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Each with the methods the resource answers (RFC 9110's `Allow`).
    for (method, path, allow) in [
        (Method::PUT, "/device", "GET, HEAD, POST, DELETE"),
        (Method::PATCH, "/device/", "GET, HEAD, POST, DELETE"),
        (Method::DELETE, "/apikey", "GET, HEAD, POST"),
        (Method::PUT, "/app", "GET, HEAD, POST"),
        (Method::POST, "/app/app_1", "GET, HEAD, DELETE"),
        (Method::GET, "/stats", "POST"),
        (Method::HEAD, "/stats", "POST"),
        (Method::POST, "/console", "GET, HEAD"),
    ] {
        let (status, headers, body) = server
            .send(
                TestRequest::default()
                    .method(method.clone())
                    .uri(path)
                    .insert_header(("authorization", ADMIN)),
            )
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(headers.get("allow").unwrap(), allow, "{method} {path}");
        if method != Method::HEAD {
            assert_eq!(
                body,
                error("method_not_allowed", "Method not allowed", json!({})),
                "{method} {path}"
            );
        }
    }
}

#[actix_web::test]
async fn head_answers_where_get_does() {
    let server = TestServer::new().await;
    server.create_app("app_head").await;
    for path in [
        "/health",
        "/openapi.json",
        "/app",
        "/channel?app_id=app_head",
        "/device?app_id=app_head",
    ] {
        let (status, _, _) = server
            .send(
                TestRequest::default()
                    .method(Method::HEAD)
                    .uri(path)
                    .insert_header(("authorization", ADMIN)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "HEAD {path}");
    }
    // As GET does, HEAD needs the key.
    let (status, _, _) = server
        .send(TestRequest::default().method(Method::HEAD).uri("/app"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let mut config = config();
    config.server.max_body = device_registry::config::ByteSize(1024);
    let server = TestServer::with_config(config).await;
    server.create_app("app_big").await;
    let big = json!({"app_id": "app_big", "device_id": "d", "channel": "x".repeat(2000)});
    for uri in [
        "/device", "/channel", "/stats", "/app", "/apikey", "/bundle",
    ] {
        let (status, body) = server.post(uri, ADMIN, big.clone()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert_eq!(
            body,
            error(
                "payload_too_large",
                "Request body is too large",
                json!({"limit": 1024})
            )
        );
    }
    // Also without a Content-Length to go by (a chunked body).
    let request = TestRequest::post()
        .uri("/stats")
        .insert_header(("content-type", "application/json"))
        .set_payload(big.to_string());
    let mut request = request.to_request();
    request.headers_mut().remove("content-length");
    let (status, body) = server.send_raw(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[actix_web::test]
async fn non_json_bodies_are_415_or_400() {
    let server = TestServer::new().await;
    server.create_app("app_json").await;
    let send = |content_type: &'static str, payload: &'static str| {
        TestRequest::post()
            .uri("/device")
            .insert_header(("authorization", ADMIN))
            .insert_header(("content-type", content_type))
            .set_payload(payload)
    };
    let (status, _, body) = server.send(send("text/plain", "app_id=app_json")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"], "unsupported_media_type");
    let (status, _, body) = server
        .send(send("application/x-www-form-urlencoded", "app_id=x"))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    // A compressed body is refused as such, on the plugin endpoints too, not read as bad JSON.
    for uri in ["/device", "/stats", "/updates"] {
        let gzip = TestRequest::post()
            .uri(uri)
            .insert_header(("authorization", ADMIN))
            .insert_header(("content-type", "application/json"))
            .insert_header(("content-encoding", "gzip"))
            .set_payload(&[0x1f, 0x8b, 0x08, 0x00][..]);
        let (status, _, body) = server.send(gzip).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported_media_type")
            ),
            "{uri}: {body}"
        );
    }
    // Before the body is read: an encoded body past the size limit is still 415, not 413.
    let huge = TestRequest::post()
        .uri("/device")
        .insert_header(("authorization", ADMIN))
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-encoding", "br"))
        .set_payload(vec![b' '; 4 << 20]);
    let (status, _, body) = server.send(huge).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["moreInfo"]["content_encoding"], "br", "{body}");
    // An encoding that is not even text is not identity.
    let unreadable = TestRequest::post()
        .uri("/device")
        .insert_header(("authorization", ADMIN))
        .insert_header(("content-type", "application/json"))
        .insert_header((
            "content-encoding",
            actix_web::http::header::HeaderValue::from_bytes(b"gz\xffip").unwrap(),
        ))
        .set_payload(r#"{"app_id": "app_json"}"#);
    let (status, _, body) = server.send(unreadable).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    for payload in [
        "{",
        "",
        "[]",
        "\"text\"",
        "{\"app_id\": }",
        "nul",
        "{\"a\":1}{\"b\":2}",
    ] {
        let (status, _, body) = server.send(send("application/json", payload)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{payload}");
        assert_eq!(body["error"], "invalid_json_body", "{payload}");
    }
    // Deeply nested JSON is refused, not a stack overflow.
    let deep: &'static str =
        Box::leak(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_boxed_str());
    let mut config = config();
    config.server.max_body = device_registry::config::ByteSize(1 << 20);
    let roomy = TestServer::with_config(config).await;
    let (status, _, body) = roomy.send(send("application/json", deep)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json_body"))
    );
}

/// Malformed requests of every kind: each gets a 4xx in the contract's shape.
#[actix_web::test]
async fn a_catalogue_of_malformed_requests_gets_4xx_json() {
    let server = TestServer::new().await;
    server.create_app("app_bad").await;
    server.create_channel("app_bad", "beta", json!({})).await;
    let get = |uri: &str| {
        TestRequest::get()
            .uri(uri)
            .insert_header(("authorization", ADMIN))
    };
    let post_raw = |uri: &str, payload: &str| {
        TestRequest::post()
            .uri(uri)
            .insert_header(("authorization", ADMIN))
            .insert_header(("content-type", "application/json"))
            .set_payload(payload.to_owned())
    };
    let delete_raw = |uri: &str| {
        TestRequest::delete()
            .uri(uri)
            .insert_header(("authorization", ADMIN))
    };
    let cases: Vec<(&str, TestRequest)> = vec![
        ("no app_id", get("/device/")),
        ("empty app_id", get("/device/?app_id=")),
        ("app_id with space", get("/device/?app_id=a%20b")),
        (
            "app_id too long",
            get(&format!("/device/?app_id={}", "a".repeat(129))),
        ),
        ("app_id non-ascii", get("/device/?app_id=%C3%A9")),
        (
            "device_id control",
            get("/device/?app_id=app_bad&device_id=%07"),
        ),
        (
            "device_id too long",
            get(&format!(
                "/device/?app_id=app_bad&device_id={}",
                "d".repeat(129)
            )),
        ),
        ("limit zero", get("/device/?app_id=app_bad&limit=0")),
        ("limit negative", get("/device/?app_id=app_bad&limit=-1")),
        ("limit fraction", get("/device/?app_id=app_bad&limit=1.5")),
        ("limit word", get("/device/?app_id=app_bad&limit=abc")),
        ("limit too big", get("/device/?app_id=app_bad&limit=1001")),
        ("order", get("/device/?app_id=app_bad&order=up")),
        ("updated_at", get("/device/?app_id=app_bad&updated_at=now")),
        ("cursor no bar", get("/device/?app_id=app_bad&cursor=abc")),
        (
            "cursor bad time",
            get("/device/?app_id=app_bad&cursor=2024-99-01T00:00:00Z%7Cd"),
        ),
        (
            "cursor empty id",
            get("/device/?app_id=app_bad&cursor=2024-01-01T00:00:00Z%7C"),
        ),
        (
            "repeated parameter",
            get("/device/?app_id=app_bad&app_id=app_bad"),
        ),
        ("invalid utf-8 in query", get("/device/?app_id=%FF%FE")),
        ("unknown app", get("/device/?app_id=app_nope")),
        (
            "unknown device",
            get("/device/?app_id=app_bad&device_id=nobody"),
        ),
        ("body not json", post_raw("/device", "{not json")),
        ("body array", post_raw("/device", "[]")),
        ("body number", post_raw("/device", "42")),
        ("body empty", post_raw("/device", "")),
        (
            "app_id number",
            post_raw(
                "/device",
                r#"{"app_id": 1, "device_id": "d", "channel": "beta"}"#,
            ),
        ),
        (
            "device_id object",
            post_raw(
                "/device",
                r#"{"app_id": "app_bad", "device_id": {}, "channel": "beta"}"#,
            ),
        ),
        (
            "channel number",
            post_raw(
                "/device",
                r#"{"app_id": "app_bad", "device_id": "d", "channel": 5}"#,
            ),
        ),
        (
            "neither link",
            post_raw("/device", r#"{"app_id": "app_bad", "device_id": "d"}"#),
        ),
        (
            "unknown channel",
            post_raw(
                "/device",
                r#"{"app_id": "app_bad", "device_id": "d", "channel": "nope"}"#,
            ),
        ),
        (
            "unknown version",
            post_raw(
                "/device",
                r#"{"app_id": "app_bad", "device_id": "d", "version_id": "0.0.1"}"#,
            ),
        ),
        (
            "trailing garbage",
            post_raw("/device", r#"{"app_id": "app_bad"} x"#),
        ),
        (
            "invalid utf-8 body",
            post_raw("/device", "{\"app_id\": \"\u{fffd}\"}"),
        ),
        ("delete no device", delete_raw("/device?app_id=app_bad")),
        (
            "delete bad body",
            post_raw("/device", "{").method(Method::DELETE),
        ),
        (
            "channel bad bool",
            post_raw(
                "/channel",
                r#"{"app_id": "app_bad", "channel": "c", "public": "true!"}"#,
            ),
        ),
        (
            "channel enum",
            post_raw(
                "/channel",
                r#"{"app_id": "app_bad", "channel": "c", "disableAutoUpdate": 3}"#,
            ),
        ),
        (
            "bundle bad semver",
            post_raw(
                "/bundle",
                r#"{"app_id": "app_bad", "version": "one", "external_url": "https://x/y", "checksum": "c"}"#,
            ),
        ),
        (
            "bundle bad url",
            post_raw(
                "/bundle",
                r#"{"app_id": "app_bad", "version": "1.0.0", "external_url": "javascript:alert(1)", "checksum": "c"}"#,
            ),
        ),
        (
            "apikey bad mode",
            post_raw("/apikey", r#"{"name": "k", "mode": "root"}"#),
        ),
        ("apikey bad id", delete_raw("/apikey/-1")),
        ("apikey unknown id", delete_raw("/apikey/999999")),
        ("app path invalid", get("/app/..")),
        ("stats not json", post_raw("/stats", "platform=ios")),
        (
            "stats missing fields",
            post_raw("/stats", r#"{"action": "get"}"#),
        ),
        (
            "stats bad platform",
            post_raw(
                "/stats",
                r#"{"app_id": "app_bad", "device_id": "d", "platform": "symbian", "action": "get"}"#,
            ),
        ),
        (
            "stats array of junk",
            post_raw("/stats", r#"[7, {"app_id": "app_bad"}]"#),
        ),
    ];
    assert!(cases.len() >= 40);
    for (name, request) in cases {
        let (status, _, body) = server.send(request).await;
        assert_error_shape(status, &body, name);
    }
    // Nothing changed, and the server is healthy.
    let (status, page) = server.get("/device/?app_id=app_bad", ADMIN).await;
    assert_eq!(
        (status, page),
        (StatusCode::OK, json!({"data": [], "hasMore": false}))
    );
    let (status, _, health) = server.send(TestRequest::get().uri("/health")).await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok"})));
}

#[actix_web::test]
async fn one_trailing_slash_reaches_the_resource_and_two_do_not() {
    let server = TestServer::new().await;
    server.create_app("app_slash").await;
    let (status, body) = server.get("/app/app_slash/", ADMIN).await;
    assert_eq!(
        (status, &body["app_id"]),
        (StatusCode::OK, &json!("app_slash"))
    );
    let (status, body) = server
        .plugin("/updates/", device_body("app_slash", "d1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .get("/device/?app_id=app_slash&device_id=d1", ADMIN)
        .await;
    assert_eq!((status, &body["device_id"]), (StatusCode::OK, &json!("d1")));
    for path in [
        "/device//?app_id=app_slash",
        "//",
        "/console//",
        "/app_slash/",
    ] {
        let (status, body) = server.get(path, ADMIN).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
}
