//! The retention sweep at scale: seeds N devices (default 1,000,000) through the store, 10% of
//! them last seen long ago, then times a sweep with nothing to expire and one that expires them.
//!
//!     cargo bench --bench sweep                 # N=1000000 EXPIRED=100000
//!     N=200000 EXPIRED=20000 cargo bench --bench sweep

use std::time::Instant;

#[path = "common.rs"]
mod common;

use device_registry::model::Device;
use device_registry::store::prelude::*;
use device_registry::store::sled::{SledOptions, SledStore};
use device_registry::sweep::{sweep_once, Retention, BATCH};

const DAY: u64 = 86_400_000_000;
const T0: u64 = 1_767_225_600_000_000; // 2026-01-01

fn main() {
    let total = common::env_or("N", 1_000_000) as usize;
    let expired = common::env_or("EXPIRED", total as u64 / 10) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SledOptions {
        cache_bytes: 512 * 1024 * 1024,
        flush_every_ms: Some(500),
        durable: false,
        min_free_bytes: 0,
        accept_lost_writes: false,
    };
    let store = SledStore::open(dir.path(), &options).expect("open store");
    store.create_app("app_bench", "bench", T0).expect("app");
    let ttl = 90 * DAY;
    let retention = Retention {
        device_ttl: ttl,
        audit_ttl: 365 * DAY,
    };

    let seeding = Instant::now();
    let mut batch = Vec::with_capacity(2_000);
    for i in 0..total {
        let report = common::report(i as u64, format!("1.0.{}", i % 50));
        // The first `expired` devices were last seen at T0, the rest 100 days later.
        let seen = if i < expired {
            T0 + i as u64
        } else {
            T0 + 100 * DAY + i as u64
        };
        batch.push(Device {
            app_id: "app_bench".into(),
            device_id: format!("device_{i:09}"),
            updated_at: seen,
            report,
            rollout: None,
        });
        if batch.len() == 2_000 || i + 1 == total {
            assert!(store.import_devices("app_bench", &batch).expect("import"));
            batch.clear();
        }
    }
    store.flush().expect("flush");
    let seeded = seeding.elapsed();
    println!(
        "seeded {total} devices in {:.1}s ({:.0}/s)",
        seeded.as_secs_f64(),
        total as f64 / seeded.as_secs_f64()
    );

    // Nothing older than the TTL yet.
    let started = Instant::now();
    let report = sweep_once(store.as_ref(), T0 + ttl - 1, retention, BATCH);
    let idle = started.elapsed();
    assert_eq!(report.devices, 0);
    println!(
        "sweep with 0 expired: {:.3} ms ({} batch)",
        idle.as_secs_f64() * 1e3,
        report.batches
    );

    let started = Instant::now();
    let report = sweep_once(store.as_ref(), T0 + 100 * DAY, retention, BATCH);
    let busy = started.elapsed();
    assert_eq!(report.devices, expired);
    println!(
        "sweep with {expired} expired: {:.2} s ({} batches, {:.0} devices/s)",
        busy.as_secs_f64(),
        report.batches,
        expired as f64 / busy.as_secs_f64()
    );
    let counts = store.counts().expect("counts");
    assert_eq!(counts.devices, total - expired);
    assert_eq!(counts.devices_by_time, total - expired);
    println!(
        "after: {} devices, {} time-index entries",
        counts.devices, counts.devices_by_time
    );
}
