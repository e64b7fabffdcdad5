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

/// Over a real connection: a store failing after the first page still gets the failure line to
/// the client, and the chunked transfer is then broken off (no closing chunk), so a client that
/// only looks at the transfer sees it fail too.
#[test]
fn an_export_cut_by_the_store_sends_its_failure_line_then_breaks_the_transfer() {
    use std::io::{Read, Write};

    use device_registry::export::{stream, Format};
    use device_registry::model::{Cursor, DeviceEntry, DevicePage};
    use device_registry::store::StoreError;

    async fn failing_export() -> actix_web::HttpResponse {
        let fetch = |after: Option<Cursor>| async move {
            match after {
                None => Ok(DevicePage {
                    devices: vec![DeviceEntry {
                        device: seeded_device("app_cut", "d1".into(), 0),
                        overrides: Default::default(),
                        bundle_id: None,
                    }],
                    next: Some(Cursor {
                        updated_at: 0,
                        device_id: "d1".into(),
                    }),
                }),
                Some(_) => Err(StoreError::Unavailable("disk".into())),
            }
        };
        let pages = futures_util::StreamExt::map(stream(Format::Ndjson, fetch, |_| {}), |part| {
            part.map(actix_web::web::Bytes::from)
        });
        actix_web::HttpResponse::Ok().streaming(pages)
    }

    let (bound, addr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(|| {
                actix_web::App::new().route("/", actix_web::web::get().to(failing_export))
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            bound.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    let addr = addr.recv().unwrap();
    let mut connection = std::net::TcpStream::connect(addr).unwrap();
    connection
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    connection
        .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    // The server closes the connection once the stream fails.
    let _ = connection.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("\"device_id\":\"d1\""), "{answer}");
    assert!(answer.contains("\"error\":\"export_failed\""), "{answer}");
    assert!(
        !answer.ends_with("0\r\n\r\n"),
        "closed as if whole: {answer}"
    );
}
