//! `GET /device/summary`: counters kept with the records agree with a brute-force count.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use device_registry::clock::Clock;
use device_registry::model::{Device, DeviceReport, Platform};
use device_registry::sweep;
use device_registry::timefmt::parse_rfc3339;
use serde_json::{json, Value};

use crate::common::*;

const APP: &str = "app_summary";
const DAY: u64 = 86_400 * SECOND;

/// The summary recomputed from the full device list.
async fn brute_force(server: &TestServer, query: &str) -> Value {
    let (_, page) = server
        .get(&format!("/device/?app_id={APP}&limit=1000{query}"), ADMIN)
        .await;
    let devices = page["data"].as_array().unwrap();
    let now = server.clock.now() as i128;
    let mut platforms: BTreeMap<String, u64> = BTreeMap::new();
    let mut names: BTreeMap<String, u64> = BTreeMap::new();
    let mut builds: BTreeMap<String, u64> = BTreeMap::new();
    let mut channels: BTreeMap<String, u64> = BTreeMap::new();
    let (mut prod, mut emulator) = (0, 0);
    let mut seen = [0u64; 3];
    for d in devices {
        *platforms
            .entry(d["platform"].as_str().unwrap().into())
            .or_default() += 1;
        *names
            .entry(d["version_name"].as_str().unwrap_or("").into())
            .or_default() += 1;
        *builds
            .entry(d["version_build"].as_str().unwrap().into())
            .or_default() += 1;
        if let Some(channel) = d["channel"].as_str() {
            *channels.entry(channel.into()).or_default() += 1;
        }
        prod += u64::from(d["is_prod"] == true);
        emulator += u64::from(d["is_emulator"] == true);
        let at = parse_rfc3339(d["updated_at"].as_str().unwrap()).unwrap();
        for (count, days) in seen.iter_mut().zip([1i128, 7, 30]) {
            if at > now - days * DAY as i128 {
                *count += 1;
            }
        }
    }
    json!({"total": devices.len(), "platforms": platforms, "names": names, "builds": builds,
           "channels": channels, "prod": prod, "emulator": emulator, "seen": seen})
}

/// The same shape, from the endpoint.
async fn reported(server: &TestServer, query: &str) -> Value {
    let (status, s) = server
        .get(&format!("/device/summary?app_id={APP}{query}"), ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    let names: BTreeMap<String, u64> = s["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version_name"].as_str().unwrap_or("").to_owned(),
                v["devices"].as_u64().unwrap(),
            )
        })
        .collect();
    let builds: BTreeMap<String, u64> = s["native_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version_build"].as_str().unwrap().to_owned(),
                v["devices"].as_u64().unwrap(),
            )
        })
        .collect();
    let channels: BTreeMap<String, u64> = s["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["channel"].as_str().unwrap().to_owned(),
                v["devices"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        s["dev"].as_u64().unwrap() + s["prod"].as_u64().unwrap(),
        s["total"].as_u64().unwrap()
    );
    json!({"total": s["total"], "platforms": s["platforms"], "names": names, "builds": builds,
           "channels": channels, "prod": s["prod"], "emulator": s["emulator"],
           "seen": [s["seen"]["1d"], s["seen"]["7d"], s["seen"]["30d"]]})
}

async fn assert_agree(server: &TestServer, when: &str) {
    assert_eq!(
        reported(server, "").await,
        brute_force(server, "").await,
        "{when}"
    );
    assert!(
        server.store.check(false).unwrap().is_clean(),
        "{when}: check"
    );
}

#[actix_web::test]
async fn counters_agree_with_a_recount_through_every_kind_of_write() {
    let server = TestServer::new().await;
    server.create_app(APP).await;
    server.create_channel(APP, "beta", json!({})).await;
    assert_agree(&server, "empty").await;

    for i in 0..60u64 {
        server.clock.advance(3_600 * SECOND * (i % 5));
        let platform = ["ios", "android", "electron"][(i % 3) as usize];
        server
            .report_with(APP, &format!("d{i:02}"), json!({"platform": platform, "version_name": format!("1.0.{}", i % 4),
                "version_build": format!("{}", i % 2 + 1), "is_prod": i % 3 != 0, "is_emulator": i % 7 == 0}))
            .await;
    }
    assert_agree(&server, "after creation").await;

    // Changes: new versions, a platform move, devices seen again days later (touch).
    server.clock.advance(3 * DAY);
    for i in 0..20u64 {
        server
            .report_with(
                APP,
                &format!("d{i:02}"),
                json!({"version_name": "2.0.0", "version_build": "2", "platform": "android"}),
            )
            .await;
    }
    server.clock.advance(10 * DAY);
    for i in 20..30u64 {
        let platform = ["ios", "android", "electron"][(i % 3) as usize];
        server
            .report_with(APP, &format!("d{i:02}"), json!({"platform": platform, "version_name": format!("1.0.{}", i % 4),
                "version_build": format!("{}", i % 2 + 1), "is_prod": i % 3 != 0, "is_emulator": i % 7 == 0}))
            .await;
    }
    server
        .post(
            "/device/bulk",
            ADMIN,
            json!({"app_id": APP, "device_ids": ["d01", "d02", "d50", "never"], "channel": "beta"}),
        )
        .await;
    assert_agree(&server, "after changes and touches").await;

    // Erasure, import, expiry.
    server
        .post(
            "/device/erase",
            ADMIN,
            json!({"app_id": APP, "device_id": "d02"}),
        )
        .await;
    let imported: Vec<Device> = (0..5)
        .map(|i| Device {
            app_id: APP.into(),
            device_id: format!("imported{i}"),
            updated_at: server.clock.now() - i * DAY,
            report: DeviceReport {
                custom_id: String::new(),
                version_name: None,
                version_build: "3".into(),
                os_version: String::new(),
                plugin_version: String::new(),
                platform: Platform::Electron,
                is_prod: false,
                is_emulator: true,
                default_channel: None,
                install_source: None,
                key_id: None,
            },
            rollout: None,
        })
        .collect();
    assert!(server.store.import_devices(APP, &imported).unwrap());
    assert!(
        server.store.import_devices(APP, &imported[..2]).unwrap(),
        "re-import"
    );
    assert_agree(&server, "after erase and import").await;

    server.clock.advance(80 * DAY);
    let retention = sweep::Retention {
        device_ttl: 90 * DAY,
        audit_ttl: 365 * DAY,
    };
    let report = sweep::sweep_once(server.store.as_ref(), server.clock.now(), retention, 16);
    assert!(report.devices > 0);
    assert_agree(&server, "after expiry").await;

    // With a filter the summary is counted over the matching devices.
    let (_, filtered) = server
        .get(
            &format!("/device/summary?app_id={APP}&platform=android"),
            ADMIN,
        )
        .await;
    assert_eq!(filtered["source"], "scan");
    let mut expected = brute_force(&server, "&platform=android").await;
    expected["total"] = json!(expected["total"]);
    assert_eq!(reported(&server, "&platform=android").await, expected);
}

#[actix_web::test]
async fn the_summary_reads_shares_and_checks_its_input() {
    let server = TestServer::new().await;
    server.create_app(APP).await;
    for (i, version) in ["1.0.0", "1.0.0", "1.0.0", "1.1.0"].iter().enumerate() {
        server
            .report_with(APP, &format!("d{i}"), json!({"version_name": version}))
            .await;
    }
    let (status, body) = server
        .get(&format!("/device/summary?app_id={APP}"), ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["source"], "counters");
    assert_eq!(
        body["versions"],
        json!([{"version_name": "1.0.0", "devices": 3, "share": 0.75}, {"version_name": "1.1.0", "devices": 1, "share": 0.25}])
    );
    assert_eq!(body["seen"], json!({"1d": 4, "7d": 4, "30d": 4}));
    let (status, body) = server
        .get(&format!("/device/summary?app_id={APP}&platform=web"), ADMIN)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_platform"))
    );
    let (status, _) = server
        .get("/device/summary?app_id=app_missing", ADMIN)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
