//! `device-registry import`: what export writes loads back, idempotently; bad lines are
//! reported by number and skipped whole.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use actix_web::test::TestRequest;
use device_registry::clock::ManualClock;
use serde_json::json;

use crate::common::*;
use crate::process::BINARY;

const APP: &str = "app_import";

async fn export(server: &TestServer, format: &str) -> String {
    let request = TestRequest::get()
        .uri(&format!("/device/export?app_id={APP}&format={format}"))
        .insert_header(("authorization", ADMIN))
        .to_request();
    server.send_text(request).await.1
}

/// An app with the channel and bundle that overrides name.
async fn registry(server: &TestServer) {
    server.create_app(APP).await;
    server.create_channel(APP, "beta", json!({})).await;
    server.create_bundle(APP, "2.0.0").await;
}

fn import(dir: &Path, file: &Path, extra: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("import")
        .arg(file)
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[actix_web::test]
async fn an_export_imports_back_identically_and_idempotently() {
    let source = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let (ndjson, csv) = {
        let server = TestServer::open(source.path(), config(), clock.clone()).await;
        registry(&server).await;
        for i in 0..1_200 {
            clock.advance(SECOND);
            server
                .report_with(
                    APP,
                    &format!("d{i:04}"),
                    // Device-reported fields can be formulas: CSV defuses them, and import
                    // reads them back as they were.
                    json!({"custom_id": if i % 100 == 7 { format!("=HYPERLINK(\"x{i}\")") } else { format!("user, {i}") },
                           "install_source": if i % 3 == 0 { "google_play" } else { "" },
                           "key_id": if i % 4 == 0 { "MIIBCgKCAQEAx+/9" } else { "" }}),
                )
                .await;
        }
        server
            .post(
                "/device/bulk",
                ADMIN,
                json!({"app_id": APP, "device_ids": ["d0001", "d0002"], "channel": "beta"}),
            )
            .await;
        server
            .post(
                "/device",
                ADMIN,
                json!({"app_id": APP, "device_id": "d0003", "version_id": "2.0.0"}),
            )
            .await;
        (
            export(&server, "ndjson").await,
            export(&server, "csv").await,
        )
    };
    let files = tempfile::tempdir().unwrap();
    for (name, text) in [("devices.ndjson", &ndjson), ("devices.csv", &csv)] {
        let file = files.path().join(name);
        std::fs::write(&file, text).unwrap();
        let target = tempfile::tempdir().unwrap();
        {
            let server = TestServer::open(target.path(), config(), clock.clone()).await;
            registry(&server).await;
        }
        for round in 0..2 {
            let output = import(target.path(), &file, &[]);
            assert!(
                output.status.success(),
                "{name} round {round}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&output.stdout).trim(),
                "imported 1200 devices, skipped 0 lines"
            );
        }
        let server = TestServer::open(target.path(), config(), clock.clone()).await;
        assert_eq!(
            export(&server, "ndjson").await,
            ndjson,
            "{name}: the import differs from the export"
        );
        assert!(server.store.check(false).unwrap().is_clean());
    }
}

#[actix_web::test]
async fn bad_lines_are_reported_by_number_and_skipped_whole() {
    let target = tempfile::tempdir().unwrap();
    {
        let server =
            TestServer::open(target.path(), config(), Arc::new(ManualClock::new(START))).await;
        registry(&server).await;
    }
    let good = |id: &str| {
        json!({"updated_at": "2024-01-01T00:00:00Z", "device_id": id, "app_id": APP, "platform": "ios",
               "custom_id": "", "version_name": "1.0.0", "version_build": "1", "os_version": "17",
               "plugin_version": "6.0.0", "is_prod": true, "is_emulator": false})
    };
    let mut with_missing_channel = good("g4");
    with_missing_channel["channel"] = json!("nope");
    let mut other_app = good("g5");
    other_app["app_id"] = json!("app_elsewhere");
    let mut bad_platform = good("g6");
    bad_platform["platform"] = json!("palm");
    let lines = [
        good("g1").to_string(),
        "{not json".to_owned(),
        json!({"app_id": APP, "platform": "ios", "updated_at": "2024-01-01T00:00:00Z"}).to_string(),
        with_missing_channel.to_string(),
        other_app.to_string(),
        bad_platform.to_string(),
        String::new(),
        good("g8").to_string(),
    ];
    let file = target.path().join("mixed.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = import(target.path(), &file, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "line 2: invalid_json_body",
        "line 3: missing_device_id",
        "line 4: channel_not_found: nope",
        "line 5: app_not_found: app_elsewhere",
        "line 6: invalid_platform",
    ] {
        assert!(stderr.contains(expected), "{expected} not in:\n{stderr}");
    }
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "imported 2 devices, skipped 5 lines"
    );

    // --create-apps makes the unknown app and takes its line.
    let output = import(target.path(), &file, &["--create-apps"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "imported 3 devices, skipped 4 lines"
    );

    let server = TestServer::open(target.path(), config(), Arc::new(ManualClock::new(START))).await;
    let (_, page) = server.get(&format!("/device/?app_id={APP}"), ADMIN).await;
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["g1", "g8"], "a bad line was half-written");
}

#[actix_web::test]
async fn a_csv_of_an_earlier_release_still_imports() {
    let target = tempfile::tempdir().unwrap();
    {
        let server =
            TestServer::open(target.path(), config(), Arc::new(ManualClock::new(START))).await;
        registry(&server).await;
    }
    // The export's columns before install_source and key_id, and a header naming an unknown
    // column, which is no export's.
    let earlier = "updated_at,device_id,custom_id,version,version_name,app_id,platform,\
                   plugin_version,os_version,version_build,is_prod,is_emulator,channel,\
                   version_override\n\
                   2024-01-01T00:00:00Z,old1,user 1,,1.0.0,app_import,ios,6.0.0,17.0,1,true,false,beta,\n";
    let file = target.path().join("earlier.csv");
    std::fs::write(&file, earlier).unwrap();
    let output = import(target.path(), &file, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let unknown = target.path().join("unknown.csv");
    std::fs::write(&unknown, "updated_at,device_id,app_id,platform,colour\n").unwrap();
    let output = import(target.path(), &unknown, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1: the first line is not"));

    let server = TestServer::open(target.path(), config(), Arc::new(ManualClock::new(START))).await;
    let (_, device) = server
        .get(&format!("/device/?app_id={APP}&device_id=old1"), ADMIN)
        .await;
    assert_eq!(
        device,
        json!({"updated_at": "2024-01-01T00:00:00Z", "device_id": "old1", "custom_id": "user 1",
               "version": null, "version_name": "1.0.0", "app_id": APP, "platform": "ios",
               "plugin_version": "6.0.0", "os_version": "17.0", "version_build": "1",
               "is_prod": true, "is_emulator": false, "channel": "beta"})
    );
}

/// What `check` prints and whether it calls the store clean.
fn check(dir: &Path) -> (bool, String) {
    let output = Command::new(BINARY)
        .arg("check")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn an_interrupted_import_is_named_by_check_until_it_is_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("devices.ndjson");
    // One line more than a batch: the first batch is written while lines remain.
    let lines: String = (0..2_001)
        .map(|i| {
            format!(
                "{}\n",
                json!({"app_id": APP, "device_id": format!("d{i}"), "platform": "ios",
                       "updated_at": "2026-11-01T00:00:00Z", "channel": "beta"})
            )
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let source = std::fs::canonicalize(&file).unwrap().display().to_string();
    {
        let store = open_store(&dir.path().join("data"));
        let now = device_registry::timefmt::system_now();
        store.create_app(APP, APP, now).unwrap();
        store
            .upsert_channel(
                APP,
                "beta",
                &Default::default(),
                device_registry::store::Change {
                    actor: device_registry::model::Actor::Admin,
                    at: now,
                },
            )
            .unwrap();
        // The import is pending from before its first write to its end.
        let (mut lines_read, mut pending_at) = (0, Vec::new());
        let report = device_registry::import::import(
            store.as_ref(),
            &source,
            std::io::BufReader::new(std::fs::File::open(&file).unwrap()),
            device_registry::export::Format::Ndjson,
            false,
            now,
            |_| {
                lines_read += 1;
                if lines_read == 1 || lines_read == 2_001 {
                    pending_at.push(store.check(false).unwrap().interrupted_imports);
                }
            },
        )
        .unwrap();
        assert_eq!(report.imported, 2_001);
        assert_eq!(pending_at, [vec![], vec![source.clone()]]);
        assert!(store.check(false).unwrap().is_clean());
        // A kill in the middle of the next import of the same file leaves it pending.
        store.mark_import(&source, true).unwrap();
    }
    let data = dir.path().join("data");
    let (clean, printed) = check(&data);
    assert!(!clean, "{printed}");
    assert!(
        printed.contains(&format!(
            "the import of {source} was interrupted: import it again to finish it"
        )),
        "{printed}"
    );
    assert!(printed.contains("1 interrupted imports"), "{printed}");
    assert!(
        printed.contains("or run again with --repair to forget them"),
        "{printed}"
    );

    let output = import(&data, &file, &[]);
    assert!(output.status.success(), "{output:?}");
    let (clean, printed) = check(&data);
    assert!(clean, "{printed}");

    // A file that is gone can only be forgotten: --repair does it, and says so.
    open_store(&data).mark_import("/gone.ndjson", true).unwrap();
    let repaired = Command::new(BINARY)
        .args(["check", "--repair", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&repaired.stdout);
    assert!(repaired.status.success(), "{printed}");
    assert!(
        printed.contains("forgot the 1 interrupted imports") && printed.contains("clean now"),
        "{printed}"
    );
    assert!(check(&data).0);
}

#[test]
fn the_server_warns_at_startup_of_an_interrupted_import() {
    let dir = tempfile::tempdir().unwrap();
    open_store(dir.path())
        .mark_import("/srv/dump.ndjson", true)
        .unwrap();
    let mut server = crate::process::start(dir.path(), Some(ADMIN));
    assert_eq!(crate::process::terminate(&mut server).code(), Some(0));
    let logged = server.stderr();
    assert!(
        logged.contains(
            "the import of /srv/dump.ndjson was interrupted: its last devices may lack their \
             overrides until it is imported again"
        ),
        "{logged}"
    );
}
