//! The console's files as the server serves them (the browser tests drive the console itself),
//! and `GET /apikey/current`, which it signs in with.

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::json;

use crate::common::{error, TestServer, ADMIN};

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; \
    frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

#[actix_web::test]
async fn the_console_is_served_with_a_strict_policy() {
    let server = TestServer::new().await;
    for (path, content_type, marker) in [
        (
            "/console",
            "text/html; charset=utf-8",
            "<title>device-registry console</title>",
        ),
        (
            "/console/",
            "text/html; charset=utf-8",
            "/console/console.js",
        ),
        (
            "/console/console.js",
            "text/javascript; charset=utf-8",
            "setRouter(showCurrent)",
        ),
        (
            "/console/devices.js",
            "text/javascript; charset=utf-8",
            "export async function renderDevices(",
        ),
        (
            "/console/console.css",
            "text/css; charset=utf-8",
            ":focus-visible",
        ),
    ] {
        let request = TestRequest::get().uri(path).to_request();
        let (status, headers, body) = server.send_text_with_headers(request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("content-security-policy"), POLICY, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        assert!(body.contains(marker), "{path}");

        // Revalidation: the same validator answers 304 without a body, a stale one the file.
        let etag = header("etag");
        let request = TestRequest::get()
            .uri(path)
            .insert_header(("if-none-match", etag.as_str()))
            .to_request();
        let (status, headers, body) = server.send_text_with_headers(request).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_MODIFIED, ""),
            "{path}"
        );
        assert_eq!(headers.get("etag").unwrap().to_str().unwrap(), etag);
        let request = TestRequest::get()
            .uri(path)
            .insert_header(("if-none-match", "\"stale\""))
            .to_request();
        assert_eq!(server.send_text(request).await.0, StatusCode::OK, "{path}");
    }
}

#[actix_web::test]
async fn the_root_redirects_to_the_console_and_other_methods_are_refused() {
    let server = TestServer::new().await;
    let request = TestRequest::get().uri("/").to_request();
    let (status, headers, body) = server.send_text_with_headers(request).await;
    assert_eq!((status, body.as_str()), (StatusCode::FOUND, ""));
    assert_eq!(headers.get("location").unwrap(), "/console");

    for path in ["/", "/console", "/console/console.js"] {
        let (status, body) = server.call(Method::POST, path, None, None).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::METHOD_NOT_ALLOWED,
                error("method_not_allowed", "Method not allowed", json!({}))
            ),
            "{path}"
        );
    }
    let (status, body) = server
        .call(Method::GET, "/console/missing.js", None, None)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            error("not_found", "Not found", json!({}))
        )
    );
}

#[actix_web::test]
async fn a_key_can_read_what_it_is_and_nothing_of_its_secret() {
    let server = TestServer::new().await;
    let (status, body) = server.get("/apikey/current", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": null, "name": "admin", "mode": "all", "limited_to_apps": [],
               "expires_at": null, "created_at": null})
    );

    let (_, created) = server
        .post(
            "/apikey",
            ADMIN,
            json!({"name": "viewer", "mode": "read", "limited_to_apps": ["app_console"],
                   "expires_at": "2030-01-01T00:00:00Z"}),
        )
        .await;
    let secret = created["key"].as_str().unwrap();
    let (status, body) = server.get("/apikey/current", secret).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": created["id"], "name": "viewer", "mode": "read",
               "limited_to_apps": ["app_console"], "expires_at": "2030-01-01T00:00:00Z",
               "created_at": created["created_at"]})
    );

    let (status, body) = server
        .call(Method::GET, "/apikey/current", None, None)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            error("no_key_provided", "No API key provided", json!({}))
        )
    );
    let (status, body) = server.get("/apikey/current", "not-a-key").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            error("invalid_apikey", "Invalid API key", json!({}))
        )
    );
    // Revoked: refused like any unknown key.
    let (status, _) = server
        .delete(&format!("/apikey/{}", created["id"]), ADMIN, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.get("/apikey/current", secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
