//! Memory under sustained writes: inserts N devices (default 1,000,000) through the store, then
//! keeps checking random devices in with changed fields for SECS seconds (default 60), printing
//! the process RSS as it goes. A bounded store shows a plateau, not a line.
//!
//!     cargo bench --bench memory                       # N=1000000 SECS=60 CACHE_MB=96
//!     N=400000 SECS=30 FLUSH_MS=100 cargo bench --bench memory

use std::time::{Duration, Instant};

#[path = "common.rs"]
mod common;

use common::env_or as env;
use device_registry::store::prelude::*;
use device_registry::store::sled::{SledOptions, SledStore};

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let total = env("N", 1_000_000);
    let secs = env("SECS", 60);
    // Also flush explicitly every this many writes (0: only the background flush).
    let flush_every_n = env("FLUSH_EVERY_N", 0);
    let options = SledOptions {
        cache_bytes: env("CACHE_MB", 96) << 20,
        flush_every_ms: Some(env("FLUSH_MS", 500)),
        durable: false,
        min_free_bytes: 0,
        accept_lost_writes: false,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path(), &options).expect("open");
    store.create_app("app_mem", "mem", 1).expect("app");
    println!(
        "cache {} MiB, flush every {} ms",
        options.cache_bytes >> 20,
        options.flush_every_ms.unwrap_or(0)
    );

    let started = Instant::now();
    let mut now = 1_767_225_600_000_000u64;
    for i in 0..total {
        now += 1;
        store
            .upsert_device(
                "app_mem",
                &format!("device_{i:09}"),
                &common::report(i, "1.0.0".into()),
                now,
                3_600_000_000,
            )
            .expect("insert");
        if flush_every_n > 0 && (i + 1) % flush_every_n == 0 {
            store.flush().expect("flush");
        }
        if (i + 1) % (total / 10).max(1) == 0 {
            println!(
                "inserted {:>9}  rss {:>7.1} MiB  ({:.0}/s)",
                i + 1,
                rss_mib(),
                (i + 1) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }

    let started = Instant::now();
    let mut next_print = Duration::from_secs(5);
    let mut updates = 0u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let i = common::xorshift(&mut seed) % total;
        now += 1;
        store
            .upsert_device(
                "app_mem",
                &format!("device_{i:09}"),
                &common::report(i, format!("1.0.{}", updates % 7 + 1)),
                now,
                3_600_000_000,
            )
            .expect("update");
        updates += 1;
        if flush_every_n > 0 && updates % flush_every_n == 0 {
            store.flush().expect("flush");
        }
        if started.elapsed() >= next_print {
            println!(
                "updated {:>9}  rss {:>7.1} MiB  ({:.0}/s)",
                updates,
                rss_mib(),
                updates as f64 / started.elapsed().as_secs_f64()
            );
            next_print += Duration::from_secs(5);
        }
    }
    println!(
        "on disk {:.1} MiB",
        store.size_on_disk().unwrap_or(0) as f64 / 1048576.0
    );
}
