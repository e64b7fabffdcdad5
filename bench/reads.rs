//! The store's read paths in process, without HTTP: single devices and pages of 50 at random
//! depth in each order, as bench/run.sh asks for them, on a seeded data directory
//! (bench/seed.rs). One thread; prints operations per second for each.
//!
//!     DATA_DIR=/tmp/bench-data N=1000000 OPS=200000 cargo bench --bench reads

use std::path::PathBuf;
use std::time::Instant;

#[path = "common.rs"]
mod common;

use device_registry::model::{Cursor, DeviceFilter, DeviceListQuery, DeviceOrder};
use device_registry::store::prelude::*;
use device_registry::store::sled::{SledOptions, SledStore};

fn main() {
    let dir = PathBuf::from(std::env::var("DATA_DIR").expect("DATA_DIR"));
    let total = common::env_or("N", 1_000_000);
    let ops = common::env_or("OPS", 200_000);
    let options = SledOptions {
        cache_bytes: 128 << 20,
        flush_every_ms: None,
        durable: false,
        min_free_bytes: 0,
        accept_lost_writes: false,
    };
    let store = SledStore::open(&dir, &options).expect("open store");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || common::xorshift(&mut seed) % total + 1;
    let started = Instant::now();
    for _ in 0..ops {
        let device = store
            .device("app_bench", &format!("device_{:09}", next()))
            .expect("read");
        assert!(device.is_some());
    }
    let rate = ops as f64 / started.elapsed().as_secs_f64();
    println!("single device: {rate:.0}/s");

    // Pages of 50: by device id from a random device, then in both time orders from a cursor
    // at a random moment of the seeded 90 days (as bench/run.sh's page_desc asks).
    let pages = ops / 10;
    for order in [
        DeviceOrder::DeviceId,
        DeviceOrder::UpdatedAsc,
        DeviceOrder::UpdatedDesc,
    ] {
        let started = Instant::now();
        for _ in 0..pages {
            let after = match order {
                DeviceOrder::DeviceId => Cursor {
                    updated_at: 0,
                    device_id: format!("device_{:09}", next()),
                },
                _ => Cursor {
                    updated_at: common::SINCE + next() * common::NINETY_DAYS / total,
                    device_id: "device_999999999".into(),
                },
            };
            let query = DeviceListQuery {
                order,
                after: Some(after),
                updated_after: None,
                limit: 50,
                max_examined: 10_000,
                filter: DeviceFilter::default(),
            };
            store.list_devices("app_bench", &query).expect("page");
        }
        let rate = pages as f64 / started.elapsed().as_secs_f64();
        println!("page of 50 at random depth, {order:?}: {rate:.0}/s");
    }
}
