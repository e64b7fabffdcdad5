//! sled's write primitives at the registry's scale, before choosing a write path (issue "The
//! sled engine's write path", item 1): what a changed device costs when written as
//!
//! - `insert`: the record alone, one `Tree::insert` each (no index: the floor);
//! - `batch-1tree`: the record alone, `Tree::apply_batch` of B records;
//! - `tx-4trees`: the record, its time-index move, a counter and a custom-id entry in a
//!   transaction over four trees, B devices per transaction (what the engine does today);
//! - `batch-tagged`: the same five writes per device in ONE tree whose keys start with a tag
//!   byte per kind, one `apply_batch` of B devices (atomic, no transaction);
//!
//! at batch sizes 1 to 1,000, on N seeded devices (default 1,000,000), one thread, SECS seconds
//! each. Prints devices per second.
//!
//!     N=1000000 SECS=3 cargo bench --bench sled_primitives

// Raw sled, measured as it is: its batches and transactions included.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use sled::{Batch, Transactional, Tree};

#[path = "common.rs"]
mod common;

const RECORD: usize = 150;

fn device_key(i: u64) -> Vec<u8> {
    format!("app_bench\u{ff}device_{i:09}").into_bytes()
}

fn time_key(at: u64, i: u64) -> Vec<u8> {
    let mut key = b"app_bench\xff".to_vec();
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(format!("device_{i:09}").as_bytes());
    key
}

fn tagged(tag: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(tag);
    out.extend_from_slice(key);
    out
}

struct Trees {
    devices: Tree,
    by_time: Tree,
    counts: Tree,
    custom_ids: Tree,
    tagged: Tree,
}

fn seed(trees: &Trees, total: u64) {
    let value = vec![7u8; RECORD];
    for chunk in (1..=total).collect::<Vec<_>>().chunks(10_000) {
        let (mut devices, mut by_time, mut all) =
            (Batch::default(), Batch::default(), Batch::default());
        for &i in chunk {
            devices.insert(device_key(i), value.clone());
            by_time.insert(time_key(i, i), &[] as &[u8]);
            all.insert(tagged(0, &device_key(i)), value.clone());
            all.insert(tagged(1, &time_key(i, i)), &[] as &[u8]);
        }
        trees.devices.apply_batch(devices).unwrap();
        trees.by_time.apply_batch(by_time).unwrap();
        trees.tagged.apply_batch(all).unwrap();
    }
}

/// Runs `write(batch of device numbers, their new time)` for `secs`; devices per second.
fn measure(secs: u64, total: u64, batch: usize, mut write: impl FnMut(&[u64], u64)) -> f64 {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut now = total + 1;
    let mut done = 0u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut picks = Vec::with_capacity(batch);
    while Instant::now() < deadline {
        picks.clear();
        for _ in 0..batch {
            picks.push(common::xorshift(&mut seed) % total + 1);
        }
        now += 1;
        write(&picks, now);
        done += batch as u64;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

fn open(path: &std::path::Path) -> (sled::Db, Trees) {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(96 << 20)
        .flush_every_ms(Some(500))
        .open()
        .expect("open");
    let trees = Trees {
        devices: db.open_tree("devices").unwrap(),
        by_time: db.open_tree("devices_by_time").unwrap(),
        counts: db.open_tree("device_counts").unwrap(),
        custom_ids: db.open_tree("devices_by_custom_id").unwrap(),
        tagged: db.open_tree("tagged").unwrap(),
    };
    (db, trees)
}

/// Copies the seeded directory (so that every measurement starts from the same store, not from
/// the backlog the previous one left sled's flusher).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn main() {
    let total = common::env_or("N", 1_000_000);
    let secs = common::env_or("SECS", 3);
    let seeded = tempfile::tempdir().expect("temp dir");
    let seeding = Instant::now();
    {
        let (db, trees) = open(seeded.path());
        seed(&trees, total);
        db.flush().expect("flush");
    }
    println!(
        "seeded {total} devices (both layouts) in {:.1}s",
        seeding.elapsed().as_secs_f64()
    );
    let value = vec![9u8; RECORD];
    println!("| batch | insert | batch-1tree | tx-4trees | batch-tagged |");
    println!("|---|---|---|---|---|");
    for batch in [1usize, 10, 100, 1_000] {
        let mut rates = Vec::new();
        for variant in 0..4 {
            let copy = tempfile::tempdir().expect("temp dir");
            copy_dir(seeded.path(), copy.path());
            let (db, trees) = open(copy.path());
            let rate = measure(secs, total, batch, |picks, now| match variant {
                0 => {
                    for &i in picks {
                        trees.devices.insert(device_key(i), value.clone()).unwrap();
                    }
                }
                1 => {
                    let mut writes = Batch::default();
                    for &i in picks {
                        writes.insert(device_key(i), value.clone());
                    }
                    trees.devices.apply_batch(writes).unwrap();
                }
                2 => {
                    (
                        &trees.devices,
                        &trees.by_time,
                        &trees.counts,
                        &trees.custom_ids,
                    )
                        .transaction(|(devices, by_time, counts, custom_ids)| {
                            for &i in picks {
                                devices.insert(device_key(i), value.clone())?;
                                by_time.remove(time_key(i, i))?;
                                by_time.insert(time_key(now, i), &[] as &[u8])?;
                                counts.insert(
                                    format!("app_bench\u{ff}v{}", i % 50).as_bytes(),
                                    &now.to_be_bytes(),
                                )?;
                                custom_ids.insert(
                                    format!("app_bench\u{ff}c{i}\u{ff}{i}").as_bytes(),
                                    &[] as &[u8],
                                )?;
                            }
                            Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
                        })
                        .unwrap();
                }
                _ => {
                    let mut writes = Batch::default();
                    for &i in picks {
                        writes.insert(tagged(0, &device_key(i)), value.clone());
                        writes.remove(tagged(1, &time_key(i, i)));
                        writes.insert(tagged(1, &time_key(now, i)), &[] as &[u8]);
                        writes.insert(
                            tagged(2, format!("app_bench\u{ff}v{}", i % 50).as_bytes()),
                            &now.to_be_bytes(),
                        );
                        writes.insert(
                            tagged(3, format!("app_bench\u{ff}c{i}\u{ff}{i}").as_bytes()),
                            &[] as &[u8],
                        );
                    }
                    trees.tagged.apply_batch(writes).unwrap();
                }
            });
            drop((trees, db));
            rates.push(rate);
        }
        println!(
            "| {batch} | {:.0} | {:.0} | {:.0} | {:.0} |",
            rates[0], rates[1], rates[2], rates[3]
        );
    }
}
