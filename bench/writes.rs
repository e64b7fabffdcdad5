//! The check-in write path in process, without HTTP: how many changed check-ins per second the
//! store absorbs, and what applying them costs, on a seeded data directory (bench/seed.rs).
//!
//!     DATA_DIR=/tmp/bench-data N=1000000 SECS=10 THREADS=2 cargo bench --bench writes
//!
//! Each thread checks in devices picked at random with a new version name each time, as
//! bench/run.sh's `checkin_new` scenario does, BATCH of them per store call (default 1). Two rates are printed: check-ins answered per
//! second, and the same count over the time including the final flush to disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common.rs"]
mod common;

use device_registry::store::prelude::*;
use device_registry::store::sled::SledStore;
use device_registry::store::{CheckIn, Upsert};

fn main() {
    let dir = PathBuf::from(std::env::var("DATA_DIR").expect("DATA_DIR"));
    let total = common::env_or("N", 1_000_000);
    let secs = common::env_or("SECS", 10);
    let threads = common::env_or("THREADS", 2);
    let batch = common::env_or("BATCH", 1) as usize;
    let options = common::sled_options();
    let store = SledStore::open(&dir, &options).expect("open store");
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                let mut now = 1_800_000_000_000_000 + t;
                while Instant::now() < deadline {
                    let mut check_ins = Vec::with_capacity(batch);
                    for _ in 0..batch {
                        let i = common::xorshift(&mut seed) % total + 1;
                        let report = common::report(i, format!("2.0.{}", (seed >> 24) % 1_000_000));
                        now += threads;
                        check_ins.push(CheckIn {
                            app_id: "app_bench".to_owned(),
                            device_id: format!("device_{i:09}"),
                            report,
                            now,
                            touch_interval: 1,
                            rollout: None,
                        });
                    }
                    let outcomes = store.upsert_devices(&check_ins).expect("check-ins");
                    assert!(outcomes.iter().all(|o| *o != Upsert::AppNotFound));
                    done.fetch_add(batch as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let acknowledged = started.elapsed().as_secs_f64();
    store.flush().expect("flush");
    let applied = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed) as f64;
    println!(
        "{n} changed check-ins on {threads} threads in batches of {batch}: answered at {:.0}/s, flushed at {:.0}/s",
        n / acknowledged,
        n / applied
    );
}
