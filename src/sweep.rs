//! Retention (spec section 6): devices not seen for `retention.device_ttl` are deleted with
//! their index entries and overrides, and so are overrides of devices that never checked in
//! once they are that old. One task, started once, runs a sweep every `sweep_interval`; each
//! sweep works in bounded batches on the blocking pool, so requests keep flowing, and stops
//! between batches when the server shuts down.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::background::Background;
use crate::clock::Clock;
use crate::health::day_of;
use crate::metrics::Metrics;
use crate::store::{off_workers, Expired, Store, StoreHandle, StoreResult};
use crate::timefmt::{format_micros, Micros};

/// Entries removed per store call by [`sweep_once`]'s callers in tools and tests, and by the
/// server's expiry of audit entries and version counters.
pub const BATCH: usize = 1_000;

/// Devices expired per store call by the server's sweep, each call followed by a pause as long
/// as it took, so that the sweep takes at most half of the store's time and the machine's: one
/// call is about a millisecond of work (sled's engine writes 32 devices per atomic write).
/// Pausing after each one, rather than after 1,000 devices, is what keeps single reads' p99
/// under 5 ms beside a large expiry (bench/RESULTS.md: 12 ms with the pause after 1,000, 2.5 ms
/// with it after 32; 1.9 ms once sled's writes stopped holding reads out).
pub const DEVICE_BATCH: usize = 32;

/// Up to [`BATCH`] devices, [`DEVICE_BATCH`] per store call, each call followed by a pause as
/// long as it took, on the calling (blocking) thread: a timer's millisecond granularity would
/// double the sweep's time. One batch of the server's sweep.
fn expire_paced(store: &dyn Store, cutoff: Micros, now: Micros) -> StoreResult<Expired> {
    let mut expired = Expired::default();
    let mut room = BATCH;
    while room > 0 {
        let started = std::time::Instant::now();
        let limit = room.min(DEVICE_BATCH);
        room -= limit;
        let step = store.expire_before(cutoff, limit, now)?;
        expired.devices += step.devices;
        expired.orphan_overrides += step.orphan_overrides;
        expired.more = step.more;
        if !step.more {
            break;
        }
        std::thread::sleep(started.elapsed());
    }
    Ok(expired)
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub devices: usize,
    pub orphan_overrides: usize,
    /// Audit entries older than `retention.audit_ttl`.
    pub audit_entries: usize,
    /// Version event counters (`/bundle/health`) of days older than `retention.audit_ttl`.
    pub version_counters: usize,
    pub batches: usize,
    pub failed_batches: usize,
}

/// Errors tolerated within one sweep before it gives up until the next tick.
const MAX_FAILED_BATCHES: usize = 3;

impl SweepReport {
    /// Takes in one batch's result; `true` while the sweep should go on.
    fn record(&mut self, batch: StoreResult<Expired>) -> bool {
        match batch {
            Ok(expired) => {
                self.devices += expired.devices;
                self.orphan_overrides += expired.orphan_overrides;
                self.batches += 1;
                expired.more
            }
            Err(error) => {
                self.failed_batches += 1;
                log::error!("sweep batch failed: {error}");
                self.failed_batches < MAX_FAILED_BATCHES
            }
        }
    }

    /// Takes in one batch of audit expiry; `true` while there is more.
    fn record_audit(&mut self, batch: StoreResult<(usize, bool)>) -> bool {
        let removed = self.record_removed(batch, "audit expiry");
        self.audit_entries += removed.0;
        removed.1
    }

    /// Takes in one batch of version counter expiry; `true` while there is more.
    fn record_version_counters(&mut self, batch: StoreResult<(usize, bool)>) -> bool {
        let removed = self.record_removed(batch, "version counter expiry");
        self.version_counters += removed.0;
        removed.1
    }

    fn record_removed(&mut self, batch: StoreResult<(usize, bool)>, what: &str) -> (usize, bool) {
        batch.unwrap_or_else(|error| {
            self.failed_batches += 1;
            log::error!("{what} batch failed: {error}");
            (0, false)
        })
    }
}

/// How long things are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub device_ttl: Micros,
    pub audit_ttl: Micros,
}

/// Runs one sweep to completion on the calling thread (blocking).
pub fn sweep_once(
    store: &dyn Store,
    now: Micros,
    retention: Retention,
    batch: usize,
) -> SweepReport {
    let cutoff = now.saturating_sub(retention.device_ttl);
    let mut report = SweepReport::default();
    while report.record(store.expire_before(cutoff, batch, now)) {}
    let audit_cutoff = now.saturating_sub(retention.audit_ttl);
    while report.record_audit(store.expire_audit_before(audit_cutoff, batch)) {}
    let day = day_of(audit_cutoff);
    while report.record_version_counters(store.expire_version_events_before(day, batch)) {}
    report
}

/// Starts the periodic sweep on the current runtime. The first sweep runs at once.
pub fn spawn(
    store: Arc<StoreHandle>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    retention: Retention,
    interval: Duration,
) -> Background {
    Background::spawn(move |mut stopped| async move {
        loop {
            let started = std::time::Instant::now();
            let report = sweep_until_stopped(&store, &clock, retention, &stopped).await;
            let took = started.elapsed();
            metrics.record_sweep(&report);
            if report.devices
                + report.orphan_overrides
                + report.audit_entries
                + report.version_counters
                > 0
                || report.failed_batches > 0
            {
                log::info!(
                    "sweep: removed {} devices, {} orphan overrides, {} audit entries and {} version counters; devices not seen since {} ({} batches, {} failed, {} ms)",
                    report.devices,
                    report.orphan_overrides,
                    report.audit_entries,
                    report.version_counters,
                    format_micros(clock.now().saturating_sub(retention.device_ttl)),
                    report.batches,
                    report.failed_batches,
                    took.as_millis(),
                );
            }
            if *stopped.borrow() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stopped.changed() => return,
            }
        }
    })
}

/// One sweep, a batch at a time on the blocking pool, checking for shutdown between batches.
async fn sweep_until_stopped(
    store: &StoreHandle,
    clock: &Arc<dyn Clock>,
    retention: Retention,
    stopped: &watch::Receiver<bool>,
) -> SweepReport {
    let now = clock.now();
    let cutoff = now.saturating_sub(retention.device_ttl);
    let mut report = SweepReport::default();
    while !*stopped.borrow() {
        // Paced within the batch (see `expire_paced`), so that the sweep takes at most half of
        // the store's time and reads keep flowing while it works through a large expiry.
        let batch = off_workers(store, move |store| expire_paced(store, cutoff, now)).await;
        if !report.record(batch) {
            break;
        }
    }
    let audit_cutoff = now.saturating_sub(retention.audit_ttl);
    while !*stopped.borrow() {
        let batch = off_workers(store, move |store| {
            store.expire_audit_before(audit_cutoff, BATCH)
        })
        .await;
        if !report.record_audit(batch) {
            break;
        }
    }
    let day = day_of(audit_cutoff);
    while !*stopped.borrow() {
        let batch = off_workers(store, move |store| {
            store.expire_version_events_before(day, BATCH)
        })
        .await;
        if !report.record_version_counters(batch) {
            break;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;
    use crate::store::sled::fixtures;

    #[test]
    fn a_paced_batch_expires_up_to_batch_devices_in_small_calls() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixtures::open_with_beta(dir.path());
        let check_ins: Vec<_> = (0..BATCH + 40)
            .map(|i| crate::store::CheckIn {
                app_id: "app".into(),
                device_id: format!("old-{i:05}"),
                report: fixtures::report(),
                now: 10 + i as u64,
                touch_interval: 1,
                rollout: None,
            })
            .collect();
        store.write_check_ins(&check_ins).unwrap();
        store
            .upsert_device("app", "fresh", &fixtures::report(), 5_000, 1)
            .unwrap();

        let first = expire_paced(store.as_ref(), 2_000, 3_000).unwrap();
        assert_eq!((first.devices, first.more), (BATCH, true));
        let second = expire_paced(store.as_ref(), 2_000, 3_000).unwrap();
        assert_eq!((second.devices, second.more), (40, false));
        let counts = store.counts().unwrap();
        assert_eq!((counts.devices, counts.devices_by_time), (1, 1));
        assert!(store.check(false).unwrap().is_clean());
    }
}
