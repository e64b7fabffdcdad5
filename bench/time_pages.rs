//! What a covering time index would buy and cost (the write-path issue, item 2), in raw sled
//! 0.34.7 without the registry's code: two stores of N devices, one with the time index as the
//! registry keeps it (keys only: a page of 50 is a range scan and 50 point lookups of records),
//! one whose time-index entries carry the record (a page is one range scan). Prints, for each,
//! the seeding rate, pages of 50 per second from a random moment, and the size on disk.
//!
//!     N=1000000 RECORD_BYTES=120 PAGES=20000 cargo bench --bench time_pages

// Raw sled, measured as it is: its batches and transactions included.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

#[path = "common.rs"]
mod common;

const APP: &[u8] = b"app_bench\0";
const BATCH: u64 = 1_000;

fn record_key(id: u64) -> Vec<u8> {
    [APP, format!("device_{id:09}").as_bytes()].concat()
}

fn time_key(updated_at: u64, id: u64) -> Vec<u8> {
    [
        APP,
        &updated_at.to_be_bytes(),
        format!("device_{id:09}").as_bytes(),
    ]
    .concat()
}

/// The store of one layout: seeds it, then times pages; answers (seed rate, pages/s, bytes).
fn measure(covering: bool, total: u64, record_bytes: usize, pages: u64) -> (f64, f64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(128 << 20)
        .flush_every_ms(Some(500))
        .open()
        .expect("open");
    let records = db.open_tree("devices").expect("tree");
    let by_time = db.open_tree("devices_by_time").expect("tree");
    let record = vec![0x5a_u8; record_bytes];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let started = Instant::now();
    let mut id = 1;
    while id <= total {
        let mut batch_records = sled::Batch::default();
        let mut batch_time = sled::Batch::default();
        for id in id..(id + BATCH).min(total + 1) {
            let updated_at = common::SINCE + common::xorshift(&mut seed) % common::NINETY_DAYS;
            batch_records.insert(record_key(id), record.clone());
            let value: &[u8] = if covering { &record } else { &[] };
            batch_time.insert(time_key(updated_at, id), value);
        }
        records.apply_batch(batch_records).expect("batch");
        by_time.apply_batch(batch_time).expect("batch");
        id += BATCH;
    }
    db.flush().expect("flush");
    let seed_rate = total as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut rows = 0u64;
    for _ in 0..pages {
        let from = common::SINCE + common::xorshift(&mut seed) % common::NINETY_DAYS;
        let start = time_key(from, 0);
        for entry in by_time.range(start..).take(50) {
            let (key, value) = entry.expect("scan");
            let row = if covering {
                value
            } else {
                let id = &key[APP.len() + 8..];
                records
                    .get([APP, id].concat())
                    .expect("get")
                    .expect("record")
            };
            rows += row.len() as u64;
        }
    }
    assert!(rows > 0);
    let page_rate = pages as f64 / started.elapsed().as_secs_f64();
    let bytes = db.size_on_disk().expect("size");
    (seed_rate, page_rate, bytes)
}

fn main() {
    let total = common::env_or("N", 1_000_000);
    let record_bytes = common::env_or("RECORD_BYTES", 120) as usize;
    let pages = common::env_or("PAGES", 20_000);
    println!("N={total}, records of {record_bytes} bytes, pages of 50 from a random moment");
    for covering in [false, true] {
        let (seed_rate, page_rate, bytes) = measure(covering, total, record_bytes, pages);
        println!(
            "{}: seeded {seed_rate:.0}/s, pages {page_rate:.0}/s, {} MiB on disk",
            if covering {
                "covering time index"
            } else {
                "keys-only time index"
            },
            bytes >> 20
        );
    }
}
