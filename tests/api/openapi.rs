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
