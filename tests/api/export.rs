//! Export: every device, streamed a page at a time, as NDJSON or CSV; the same offline.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use device_registry::clock::ManualClock;
use device_registry::render::device::CSV_COLUMNS;
use serde_json::{json, Value};

use crate::common::*;
use crate::process::BINARY;

async fn export(server: &TestServer, query: &str) -> (StatusCode, String) {
    let request = TestRequest::get()
        .uri(&format!("/device/export?{query}"))
        .insert_header(("authorization", ADMIN))
        .to_request();
    server.send_text(request).await
}

#[actix_web::test]
async fn ndjson_export_lists_every_device_once_as_get_renders_it() {
    let server = TestServer::new().await;
    server.create_app("app_export").await;
    server.create_channel("app_export", "beta", json!({})).await;
    for i in 0..1_500 {
        server.report("app_export", &format!("d{i:04}")).await;
    }
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_export", "device_id": "d0007", "channel": "beta"}),
        )
        .await;

    let (status, text) = export(&server, "app_id=app_export").await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1_500);
    let ids: Vec<&str> = lines
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1_500);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "not in device id order"
    );
    for line in [&lines[0], &lines[7], &lines[1_499]] {
        let id = line["device_id"].as_str().unwrap();
        let (_, single) = server
            .get(&format!("/device/?app_id=app_export&device_id={id}"), ADMIN)
            .await;
        assert_eq!(line, &single);
    }
    assert_eq!(lines[7]["channel"], "beta");
}

#[actix_web::test]
async fn csv_export_has_a_header_and_quotes_what_it_must() {
    let server = TestServer::new().await;
    server.create_app("app_csv").await;
    server
        .report_with("app_csv", "a", json!({"custom_id": "user, \"42\""}))
        .await;
    server.report("app_csv", "b").await;
    let (status, text) = export(&server, "app_id=app_csv&format=csv").await;
    assert_eq!(status, StatusCode::OK);
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), CSV_COLUMNS.join(","));
    let first = lines.next().unwrap();
    assert_eq!(
        first,
        r#"2024-01-01T00:00:00Z,a,"user, ""42""",,1.0.0,app_csv,ios,5.0.0,17.0,1,true,false,,,,"#
    );
    assert!(lines.next().unwrap().contains(",b,"));
    assert_eq!(lines.next(), None);
}

#[actix_web::test]
async fn export_input_is_checked() {
    let server = TestServer::new().await;
    server.create_app("app_exp_checks").await;
    let (status, body) = server
        .get("/device/export?app_id=app_exp_checks&format=xml", ADMIN)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_format"))
    );
    let (status, body) = server.get("/device/export?app_id=app_none", ADMIN).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("app_not_found"))
    );
    let key = server.key("read", &["app_other"]).await;
    let (status, _) = server
        .get("/device/export?app_id=app_exp_checks", &key)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn the_offline_export_matches_the_http_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let over_http = {
        let server = TestServer::open(dir.path(), config(), clock.clone()).await;
        server.create_app("app_offline").await;
        for i in 0..1_200 {
            clock.advance(SECOND);
            server.report("app_offline", &format!("d{i:04}")).await;
        }
        export(&server, "app_id=app_offline").await.1
    };
    let output = Command::new(BINARY)
        .args(["export", "--app", "app_offline", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap(), over_http);

    let unknown = Command::new(BINARY)
        .args(["export", "--app", "app_nope", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!unknown.status.success());
}

#[actix_web::test]
async fn csv_export_defuses_what_a_spreadsheet_would_run() {
    let server = TestServer::new().await;
    server.create_app("app_formula").await;
    server
        .report_with(
            "app_formula",
            "a",
            json!({"custom_id": "=HYPERLINK(\"http://evil.example\",\"x\")", "version_os": "+1"}),
        )
        .await;
    let (status, text) = export(&server, "app_id=app_formula&format=csv").await;
    assert_eq!(status, StatusCode::OK);
    let row = text.lines().nth(1).unwrap();
    assert!(
        row.contains(r#","'=HYPERLINK(""http://evil.example"",""x"")","#),
        "{row}"
    );
    assert!(row.contains(",'+1,"), "{row}");
}
