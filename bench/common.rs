//! What the benchmarks share: their knobs, their random picks and the device they report.
// Each benchmark includes this module and uses part of it.
#![allow(dead_code)]

use device_registry::model::{DeviceReport, Platform};

/// Seeded devices were last seen over the 90 days from 2026-08-01T00:00:00Z.
pub const SINCE: u64 = 1_785_542_400_000_000;
pub const NINETY_DAYS: u64 = 90 * 86_400_000_000;

/// A numeric knob from the environment.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How the benchmarks open sled: the server's default cache (`CACHE_MB` to change it), its
/// background flush, nothing flushed per write.
pub fn sled_options() -> device_registry::store::sled::SledOptions {
    let server_default = device_registry::config::StorageConfig::default().cache.0;
    device_registry::store::sled::SledOptions {
        cache_bytes: env_or("CACHE_MB", server_default >> 20) << 20,
        flush_every_ms: Some(500),
        durable: false,
        min_free_bytes: 0,
        accept_lost_writes: false,
    }
}

/// The next number of a xorshift sequence: a cheap, repeatable uniform pick (not for secrets).
pub fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Device `i` as the benchmarks report it (bench/run.sh's Lua scripts send the same fields).
pub fn report(i: u64, version_name: String) -> DeviceReport {
    DeviceReport {
        custom_id: format!("c{i}"),
        version_name: Some(version_name),
        version_build: "1".into(),
        os_version: "17.0".into(),
        plugin_version: "6.0.0".into(),
        platform: if i % 2 == 0 {
            Platform::Ios
        } else {
            Platform::Android
        },
        is_prod: true,
        is_emulator: false,
        default_channel: None,
        install_source: None,
        key_id: None,
    }
}
