//! Seeds a data directory for bench/run.sh through the store's import path: app `app_bench`
//! with a public channel on bundle 2.0.0 (a major release that the devices' native 1.x builds may
//! not take, so that a check-in reporting what the registry holds is answered without a write:
//! a device offered a bundle is recorded with it, as Capgo records it), bundle 1.0.0 beside it,
//! and N devices shaped as pg_baseline.sh shapes its rows
//! (`device_%09d`, updated_at spread over 90 days from 2026-08-01, version_name 1.0.(i % 50),
//! platform alternating ios/android).
//!
//!     DATA_DIR=/tmp/bench-data N=1000000 cargo bench --bench seed
//!     DATABASE_URL=postgres://... N=1000000 cargo bench --bench seed   # the PostgreSQL engine

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[path = "common.rs"]
mod common;

use device_registry::model::{ChannelPatch, Device};
use device_registry::store::postgres::{PostgresOptions, PostgresStore};
use device_registry::store::sled::SledStore;
use device_registry::store::{CreateBundle, Store};

const APP: &str = "app_bench";
const BATCH: usize = 2_000;

fn main() {
    let total = common::env_or("N", 1_000_000);
    let store: Arc<dyn Store> = match std::env::var("DATABASE_URL") {
        Ok(url) => PostgresStore::open(&PostgresOptions { url, pool_size: 2 }).expect("open"),
        Err(_) => {
            let dir = PathBuf::from(std::env::var("DATA_DIR").expect("DATA_DIR or DATABASE_URL"));
            let options = common::sled_options();
            SledStore::open(&dir, &options).expect("open store")
        }
    };
    store.create_app(APP, "bench", common::SINCE).expect("app");
    for version in ["1.0.0", "2.0.0"] {
        let bundle = device_registry::model::NewBundle {
            app_id: APP.into(),
            version: version.into(),
            external_url: format!("https://cdn.example.com/{version}.zip"),
            checksum: "c".into(),
            session_key: None,
            min_update_version: None,
            manifest: Vec::new(),
        };
        assert!(matches!(
            store.create_bundle(&bundle, common::SINCE).expect("bundle"),
            CreateBundle::Created(_) | CreateBundle::AlreadyExists
        ));
    }
    let patch = ChannelPatch {
        version: Some(Some("2.0.0".into())),
        public: Some(true),
        ..ChannelPatch::default()
    };
    store
        .upsert_channel(
            APP,
            "production",
            &patch,
            device_registry::store::Change {
                actor: device_registry::model::Actor::Admin,
                at: common::SINCE,
            },
        )
        .expect("channel");

    let started = Instant::now();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 1..=total {
        common::xorshift(&mut seed);
        batch.push(Device {
            app_id: APP.into(),
            device_id: format!("device_{i:09}"),
            updated_at: common::SINCE + seed % common::NINETY_DAYS,
            report: common::report(i, format!("1.0.{}", i % 50)),
            rollout: None,
        });
        if batch.len() == BATCH || i == total {
            assert!(store.import_devices(APP, &batch).expect("import"));
            batch.clear();
        }
    }
    store.flush().expect("flush");
    let stored = store.counts().expect("counts").devices as u64;
    assert_eq!(stored, total, "the store holds {stored} of {total} devices");
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "seeded {total} devices in {elapsed:.1} s ({:.0}/s)",
        total as f64 / elapsed
    );
}
