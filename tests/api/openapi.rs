//! The OpenAPI document describes exactly what the server serves.

use std::collections::BTreeSet;

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;

use crate::common::*;

#[actix_web::test]
async fn the_document_describes_every_route_and_method_the_server_has() {
    let server = TestServer::new().await;
    let (status, _, document) = server.send(TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    // The per-field codes, from the one list of fields.
    let codes = &document["components"]["x-field-error-codes"];
    assert_eq!(
        codes["defaultChannel"],
        serde_json::json!(["missing_default_channel", "invalid_default_channel"])
    );
    assert_eq!(
        codes["app_id"],
        serde_json::json!(["missing_app_id", "invalid_app_id"])
    );
    let paths = document["paths"].as_object().unwrap();

    // Every registered route is documented, and nothing else is.
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let registered: BTreeSet<&str> = device_registry::routes::registered_paths()
        .into_iter()
        .collect();
    assert_eq!(documented, registered, "routes and document differ");

    // Each documented method is served; every other method answers 405.
    for (path, operations) in paths {
        let concrete = path.replace("{app_id}", "app_doc").replace("{id}", "1");
        for method in ["get", "post", "put", "delete", "patch"] {
            let request = TestRequest::default()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(&concrete)
                .insert_header(("authorization", ADMIN))
                .insert_header(("content-type", "application/json"))
                .set_payload("{}");
            let (status, text) = server.send_text(request.to_request()).await;
            let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if operations.get(method).is_some() {
                assert_ne!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is documented but not served"
                );
                assert_ne!(
                    body["error"], "not_found",
                    "{method} {path} is documented but not routed"
                );
                let codes = operations[method]["x-error-codes"].as_array().unwrap();
                if let Some(code) = body["error"].as_str() {
                    assert!(
                        codes.iter().any(|c| c == code),
                        "{method} {path} answered {code}, not in its document"
                    );
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
}

/// The examples in the document are the server's own answers to a scripted session, on a fixed
/// clock. Run with `UPDATE_OPENAPI_EXAMPLES=1` to rewrite `src/openapi/examples.json` after a
/// deliberate change; otherwise any difference fails.
#[actix_web::test]
async fn the_document_examples_are_real_answers() {
    use serde_json::{json, Map, Value};

    let server = TestServer::new().await;
    let mut recorded = Map::new();
    let mut record = |key: &str, status: StatusCode, body: Value| {
        recorded.insert(
            key.to_owned(),
            json!({"status": status.as_u16(), "body": body}),
        );
    };
    let (s, b) = server
        .post(
            "/app",
            ADMIN,
            json!({"app_id": "app_123", "name": "My app"}),
        )
        .await;
    record("POST /app", s, b);
    let (s, b) = server.get("/app", ADMIN).await;
    record("GET /app", s, b);
    let (s, b) = server.post("/bundle", ADMIN, json!({"app_id": "app_123", "version": "1.1.0", "external_url": "https://cdn.example.com/1.1.0.zip", "checksum": "3f2a"})).await;
    record("POST /bundle", s, b);
    let (s, b) = server.post("/channel", ADMIN, json!({"app_id": "app_123", "channel": "production", "public": true, "version": "1.1.0"})).await;
    record("POST /channel", s, b);
    server.create_channel("app_123", "beta", json!({})).await;
    // A device on a current plugin, which keeps its channel itself and can go back to builtin.
    let mut check_in = device_body("app_123", "device_456");
    check_in["plugin_version"] = json!("8.51.14");
    let mut event = check_in.clone();
    event["action"] = json!("get");
    let (s, b) = server.plugin("/stats", event).await;
    record("POST /stats", s, b);
    let (s, b) = server.plugin("/updates", check_in).await;
    record("POST /updates", s, b);
    let (s, b) = server.get("/device/?app_id=app_123", ADMIN).await;
    record("GET /device", s, b);
    let (s, b) = server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_123", "device_id": "device_456", "channel": "beta"}),
        )
        .await;
    record("POST /device", s, b);
    // The beta channel has no bundle: the device is sent back to its builtin bundle.
    let (s, b) = server
        .get("/device/resolve?app_id=app_123&device_id=device_456", ADMIN)
        .await;
    record("GET /device/resolve", s, b);
    let (s, b) = server.post("/device/bulk", ADMIN, json!({"app_id": "app_123", "device_ids": ["device_456", "device_789"], "channel": "production", "dry_run": true})).await;
    record("POST /device/bulk", s, b);
    let (s, b) = server
        .delete(
            "/device",
            ADMIN,
            Some(json!({"app_id": "app_123", "device_id": "device_456"})),
        )
        .await;
    record("DELETE /device", s, b);
    let (s, b) = server.get("/device/audit?app_id=app_123", ADMIN).await;
    record("GET /device/audit", s, b);
    let (s, b) = server
        .post(
            "/device/erase",
            ADMIN,
            json!({"app_id": "app_123", "device_id": "device_456"}),
        )
        .await;
    record("POST /device/erase", s, b);
    let (s, b) = server
        .get("/channel?app_id=app_123&channel=beta", ADMIN)
        .await;
    record("GET /channel", s, b);
    let (s, b) = server.get("/bundle?app_id=app_123", ADMIN).await;
    record("GET /bundle", s, b);

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/openapi/examples.json");
    let recorded = Value::Object(recorded);
    if std::env::var_os("UPDATE_OPENAPI_EXAMPLES").is_some() {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&recorded).unwrap() + "\n",
        )
        .unwrap();
    }
    let committed: Value = serde_json::from_str(device_registry::openapi::EXAMPLES).unwrap();
    assert_eq!(committed, recorded, "the document's examples are not what the server answers (UPDATE_OPENAPI_EXAMPLES=1 rewrites them)");

    // And the document serves them.
    let document = device_registry::openapi::document();
    assert_eq!(
        document["paths"]["/device"]["get"]["responses"]["200"]["content"]["application/json"]
            ["example"],
        recorded["GET /device"]["body"]
    );
}
