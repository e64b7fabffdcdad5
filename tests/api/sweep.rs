//! Retention: devices not seen for the TTL go, with every trace of them (spec section 6).

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use device_registry::store::Counts;
use device_registry::sweep::{self, SweepReport};
use serde_json::json;

use crate::common::*;

const DAY: u64 = 86_400 * SECOND;
const TTL: u64 = 90 * DAY;
const RETENTION: sweep::Retention = sweep::Retention {
    device_ttl: TTL,
    audit_ttl: 365 * DAY,
};

fn sweep(server: &TestServer, batch: usize) -> SweepReport {
    use device_registry::clock::Clock;
    sweep::sweep_once(server.store.as_ref(), server.clock.now(), RETENTION, batch)
}

async fn ids(server: &TestServer, app_id: &str, order: &str) -> Vec<String> {
    let (_, page) = server
        .get(
            &format!("/device/?app_id={app_id}&limit=1000{order}"),
            ADMIN,
        )
        .await;
    crate::devices::ids(&page)
}

#[actix_web::test]
async fn silent_devices_go_with_their_index_entries_and_overrides() {
    let server = TestServer::new().await;
    server.create_app("app_ret").await;
    server.create_channel("app_ret", "beta", json!({})).await;
    server.report("app_ret", "old").await;
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_ret", "device_id": "old", "channel": "beta"}),
        )
        .await;
    server.clock.advance(10 * DAY);
    server.report("app_ret", "recent").await;
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_ret", "device_id": "recent", "channel": "beta"}),
        )
        .await;

    // Nothing is old enough yet.
    server.clock.advance(TTL - 10 * DAY - SECOND);
    assert_eq!(
        sweep(&server, 100),
        SweepReport {
            batches: 1,
            ..Default::default()
        }
    );

    server.clock.advance(2 * SECOND);
    let report = sweep(&server, 100);
    assert_eq!((report.devices, report.failed_batches), (1, 0));
    let (status, _) = server
        .get("/device/?app_id=app_ret&device_id=old", ADMIN)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for order in ["", "&order=asc", "&order=desc"] {
        assert_eq!(ids(&server, "app_ret", order).await, ["recent"], "{order}");
    }
    // No trace: one device, one time entry, one override with its time entry.
    let counts = server.store.counts().unwrap();
    assert_eq!(
        counts,
        Counts {
            apps: 1,
            devices: 1,
            devices_by_time: 1,
            overrides: 1,
            overrides_by_time: 1
        }
    );
    // It comes back as a new device, without its old override.
    server.report("app_ret", "old").await;
    let (_, device) = server
        .get("/device/?app_id=app_ret&device_id=old", ADMIN)
        .await;
    assert!(device.get("channel").is_none(), "{device}");
}

#[actix_web::test]
async fn a_device_that_keeps_checking_in_stays() {
    let server = TestServer::new().await;
    server.create_app("app_alive").await;
    for _ in 0..10 {
        server.report_with("app_alive", "d", json!({})).await;
        server.clock.advance(30 * DAY);
        // touch_interval (1h) has passed: the unchanged check-in refreshes updated_at.
        server.report_with("app_alive", "d", json!({})).await;
        assert_eq!(sweep(&server, 100).devices, 0);
    }
    assert_eq!(ids(&server, "app_alive", "").await, ["d"]);
}

#[actix_web::test]
async fn overrides_of_devices_that_never_check_in_expire_after_the_ttl() {
    let server = TestServer::new().await;
    server.create_app("app_orphan").await;
    server.create_channel("app_orphan", "beta", json!({})).await;
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_orphan", "device_id": "never", "channel": "beta"}),
        )
        .await;
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_orphan", "device_id": "later", "channel": "beta"}),
        )
        .await;
    server.clock.advance(DAY);
    server.report("app_orphan", "later").await;

    server.clock.advance(TTL - DAY + SECOND);
    let report = sweep(&server, 100);
    assert_eq!((report.devices, report.orphan_overrides), (0, 1));
    // The device that checked in keeps its override for as long as it lives.
    let (_, device) = server
        .get("/device/?app_id=app_orphan&device_id=later", ADMIN)
        .await;
    assert_eq!(device["channel"], "beta");
    server.report("app_orphan", "never").await;
    let (_, device) = server
        .get("/device/?app_id=app_orphan&device_id=never", ADMIN)
        .await;
    assert!(device.get("channel").is_none());
    // A second sweep finds nothing more, and the override of "later" goes with its device.
    assert_eq!(sweep(&server, 100).orphan_overrides, 0);
    server.clock.advance(TTL + SECOND);
    assert_eq!(sweep(&server, 100).devices, 2);
    let counts = server.store.counts().unwrap();
    assert_eq!(
        counts,
        Counts {
            apps: 1,
            ..Default::default()
        }
    );
}

#[actix_web::test]
async fn large_expiries_run_in_bounded_batches() {
    let server = TestServer::new().await;
    server.create_app("app_many").await;
    server.create_app("app_many2").await;
    for i in 0..1250 {
        server
            .report(
                if i % 2 == 0 { "app_many" } else { "app_many2" },
                &format!("d{i:05}"),
            )
            .await;
    }
    server.clock.advance(DAY);
    server.report("app_many", "fresh").await;
    server.clock.advance(TTL - DAY / 2);
    let report = sweep(&server, 500);
    assert_eq!(report.devices, 1250);
    assert_eq!(report.batches, 3);
    assert_eq!(ids(&server, "app_many", "&order=asc").await, ["fresh"]);
    assert_eq!(ids(&server, "app_many2", "").await, Vec::<String>::new());
    let counts = server.store.counts().unwrap();
    assert_eq!((counts.devices, counts.devices_by_time), (1, 1));
}

#[actix_web::test]
async fn the_sweep_task_runs_periodically_and_stops_on_request() {
    let server = TestServer::new().await;
    server.create_app("app_task").await;
    server.report("app_task", "d").await;
    let clock: std::sync::Arc<dyn device_registry::clock::Clock> = server.clock.clone();
    let metrics = std::sync::Arc::new(device_registry::metrics::Metrics::new());
    let handle = sweep::spawn(
        std::sync::Arc::new(device_registry::store::StoreHandle::fixed(
            server.store.clone(),
        )),
        clock,
        metrics.clone(),
        RETENTION,
        Duration::from_millis(10),
    );
    // The first sweep finds nothing; move time past the TTL and a later tick removes the device.
    server.clock.advance(TTL + SECOND);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.store.counts().unwrap().devices > 0 {
        assert!(Instant::now() < deadline, "the sweep task did not run");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let rendered = metrics.render(&Default::default());
    assert!(
        rendered.contains("device_registry_sweep_devices_removed_total 1"),
        "{rendered}"
    );
    let stopping = Instant::now();
    handle.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(5));
}
