//! Per-app device counters (`device_counts`): what a device is counted under, and the deltas a
//! change of a device makes, summed into sharded keys.

use super::*;

/// The fields `device_counts` counts devices by (see keys.rs).
pub(super) mod dimension {
    pub const TOTAL: u8 = 0;
    pub const PLATFORM: u8 = 1;
    pub const VERSION_NAME: u8 = 2;
    pub const VERSION_BUILD: u8 = 3;
    pub const PROD: u8 = 4;
    pub const EMULATOR: u8 = 5;
    /// The day (u32 BE, days since 1970) of `updated_at`.
    pub const SEEN_DAY: u8 = 6;
    /// Devices selected by a channel's rollout: `channel id (u64 BE) rollout id (u64 BE)`.
    pub const ROLLOUT_SELECTED: u8 = 7;
}

/// The value of a [`dimension::ROLLOUT_SELECTED`] counter.
pub(super) fn rollout_value(channel_id: u64, rollout_id: u64) -> Vec<u8> {
    let mut value = channel_id.to_be_bytes().to_vec();
    value.extend_from_slice(&rollout_id.to_be_bytes());
    value
}

/// The channel id and rollout id of a [`dimension::ROLLOUT_SELECTED`] counter's value.
pub(super) fn split_rollout_value(value: &[u8]) -> Option<(u64, u64)> {
    let (channel, rollout) = value.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(channel.try_into().ok()?),
        u64::from_be_bytes(rollout.try_into().ok()?),
    ))
}

/// The shard every counter is written to. Counters were once spread over 16 shards by a hash of
/// the device id, for concurrent transactions to conflict less; sled 0.34 ran every
/// transaction under one process-wide lock, so they never ran concurrently, and the shards only
/// multiplied the keys a change writes (up to 16 per counter and batch) and a summary reads.
/// Stores written before are folded into this shard when they are opened
/// ([`SledStore::fold_counter_shards`]).
pub(super) const SHARD: u8 = 0;

pub(super) const DAY_MICROS: u64 = 86_400_000_000;

/// The (dimension, value) pairs a device is counted under.
pub(super) fn counted(record: &DeviceRecord) -> Vec<(u8, Vec<u8>)> {
    let report = &record.report;
    let flag = |on: bool| {
        if on {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        }
    };
    let mut counted = vec![
        (dimension::TOTAL, Vec::new()),
        (
            dimension::PLATFORM,
            report.platform.as_str().as_bytes().to_vec(),
        ),
        (
            dimension::VERSION_NAME,
            report.version_name.clone().unwrap_or_default().into_bytes(),
        ),
        (
            dimension::VERSION_BUILD,
            report.version_build.clone().into_bytes(),
        ),
        (dimension::PROD, flag(report.is_prod)),
        (dimension::EMULATOR, flag(report.is_emulator)),
        (
            dimension::SEEN_DAY,
            ((record.updated_at / DAY_MICROS) as u32)
                .to_be_bytes()
                .to_vec(),
        ),
    ];
    if let Some(decision) = record.rollout.as_ref().filter(|d| d.selected) {
        counted.push((
            dimension::ROLLOUT_SELECTED,
            rollout_value(decision.channel_id, decision.rollout_id),
        ));
    }
    counted
}

/// Counter changes when a device goes from `old` to `new` (`None`: absent).
pub(super) fn count_deltas(
    app_id: &str,
    old: Option<&DeviceRecord>,
    new: Option<&DeviceRecord>,
) -> Vec<(Vec<u8>, i64)> {
    let (old, new) = (
        old.map(counted).unwrap_or_default(),
        new.map(counted).unwrap_or_default(),
    );
    let mut deltas = Vec::new();
    for (dimension, value) in old.iter().filter(|pair| !new.contains(pair)) {
        deltas.push((keys::device_count(app_id, *dimension, SHARD, value), -1));
    }
    for (dimension, value) in new.iter().filter(|pair| !old.contains(pair)) {
        deltas.push((keys::device_count(app_id, *dimension, SHARD, value), 1));
    }
    deltas
}

pub(super) fn read_count(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// Applies counter changes inside an atomic write.
pub(super) fn apply_counts(counts: &View<'_>, deltas: &[(Vec<u8>, i64)]) -> StoreResult<()> {
    for (key, delta) in deltas {
        let current = counts.get(key)?.map_or(0, |bytes| read_count(&bytes)) as i64;
        let next = (current + delta).max(0) as u64;
        if next == current as u64 {
            continue;
        }
        if next == 0 {
            counts.remove(key.as_slice())?;
        } else {
            counts.insert(key.as_slice(), &next.to_be_bytes())?;
        }
    }
    Ok(())
}

/// Counter keys moved per atomic write when folding shards.
const FOLD_CHUNK: usize = 512;

impl SledStore {
    /// Folds counters written to other shards than [`SHARD`] (stores written before it was the
    /// only one) into it, once: each chunk in one atomic write, so that a crash in the middle
    /// leaves every count whole, split between the shards, and the next open goes on. A marker
    /// in the default tree says it is done.
    pub(super) fn fold_counter_shards(&self) -> StoreResult<()> {
        if self.db.contains_key(keys::COUNTERS_FOLDED)? {
            return Ok(());
        }
        let mut folded = 0usize;
        loop {
            let mut chunk: Vec<(IVec, Vec<u8>)> = Vec::with_capacity(FOLD_CHUNK);
            for key in self.device_counts.iter().keys() {
                let key = key?;
                let (app_id, dimension, shard, value) =
                    keys::split_device_count(&key).ok_or_else(|| corrupt_key("device_counts"))?;
                if shard != SHARD {
                    let target = keys::device_count(app_id, dimension, SHARD, value);
                    chunk.push((key.clone(), target));
                    if chunk.len() == FOLD_CHUNK {
                        break;
                    }
                }
            }
            if chunk.is_empty() {
                break;
            }
            self.atomically([&self.device_counts], |[counts]| {
                for (key, target) in &chunk {
                    let Some(moved) = counts.take(key)? else {
                        continue;
                    };
                    let kept = counts.get(target)?.map_or(0, |bytes| read_count(&bytes));
                    let sum = kept.saturating_add(read_count(&moved));
                    counts.insert(target.as_slice(), &sum.to_be_bytes())?;
                }
                Ok(())
            })?;
            folded += chunk.len();
        }
        self.db.insert(keys::COUNTERS_FOLDED, &[] as &[u8])?;
        self.db.flush()?;
        if folded > 0 {
            log::info!("device counters: {folded} sharded counters folded into one each");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures;

    #[test]
    fn rollout_counter_values_round_trip_and_order_by_channel_then_rollout() {
        let mut values = Vec::new();
        for channel in [0u64, 1, 255, 256, u64::MAX] {
            for rollout in [0u64, 1, 2, 65_536, u64::MAX] {
                let value = rollout_value(channel, rollout);
                assert_eq!(split_rollout_value(&value), Some((channel, rollout)));
                values.push((value, (channel, rollout)));
            }
        }
        let mut sorted = values.clone();
        sorted.sort();
        assert_eq!(sorted, values);
        assert_eq!(split_rollout_value(b"short"), None);
    }

    fn check_in(device_id: &str, report: DeviceReport, now: Micros) -> CheckIn {
        CheckIn {
            app_id: "app".into(),
            device_id: device_id.into(),
            report,
            now,
            touch_interval: 100,
            rollout: None,
        }
    }

    /// Moves every counter of `store` to the shard its device-id hash once chose, as stores
    /// written before [`SHARD`] was the only one kept them, and forgets the fold.
    fn shard_as_before(store: &SledStore) {
        let mut n = 0u8;
        let counters: Vec<(IVec, IVec)> = store.device_counts.iter().map(Result::unwrap).collect();
        for (key, value) in counters {
            let (app_id, dimension, _, counted) = keys::split_device_count(&key).unwrap();
            // Each count split over two shards, as many devices in several shards made it.
            let count = read_count(&value);
            let (first, second) = (count / 2, count - count / 2);
            store.device_counts.remove(&key).unwrap();
            for (shard, part) in [(n % 16, first), ((n % 16 + 5) % 16, second)] {
                if part > 0 {
                    let key = keys::device_count(app_id, dimension, shard, counted);
                    let before = store
                        .device_counts
                        .get(&key)
                        .unwrap()
                        .map_or(0, |b| read_count(&b));
                    store
                        .device_counts
                        .insert(key, &(before + part).to_be_bytes())
                        .unwrap();
                }
            }
            n = n.wrapping_add(3);
        }
        store.db.remove(keys::COUNTERS_FOLDED).unwrap();
        store.db.flush().unwrap();
    }

    #[test]
    fn sharded_counters_are_folded_into_one_shard_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let summary_before;
        {
            let store = fixtures::open_with_beta(dir.path());
            let check_ins: Vec<CheckIn> = (0..300)
                .map(|i| {
                    let mut report = fixtures::report();
                    report.version_name = Some(format!("1.0.{}", i % 7));
                    report.is_prod = i % 3 == 0;
                    check_in(&format!("device-{i}"), report, 1_000 + i * DAY_MICROS / 10)
                })
                .collect();
            store.write_check_ins(&check_ins).unwrap();
            summary_before = store.device_summary("app", 40 * DAY_MICROS).unwrap();
            shard_as_before(&store);
            let sharded = store
                .device_counts
                .iter()
                .keys()
                .filter(|k| keys::split_device_count(k.as_ref().unwrap()).unwrap().2 != SHARD)
                .count();
            assert!(sharded > 20, "{sharded}");
            // Readers add shards up: the summary is the same before the fold.
            assert_eq!(
                store.device_summary("app", 40 * DAY_MICROS).unwrap(),
                summary_before
            );
        }
        let store = fixtures::open(dir.path());
        assert!(store
            .device_counts
            .iter()
            .keys()
            .all(|k| keys::split_device_count(&k.unwrap()).unwrap().2 == SHARD));
        assert_eq!(
            store.device_summary("app", 40 * DAY_MICROS).unwrap(),
            summary_before
        );
        let report = store.check(false).unwrap();
        assert_eq!(report.wrong_counters, 0, "{report:?}");
        // Writes after the fold keep the counters whole.
        let mut report = fixtures::report();
        report.version_name = Some("2.0.0".into());
        store
            .write_check_ins(&[check_in("device-1", report, 50 * DAY_MICROS)])
            .unwrap();
        assert_eq!(store.check(false).unwrap().wrong_counters, 0);
        let summary = store.device_summary("app", 50 * DAY_MICROS).unwrap();
        assert_eq!(summary.version_names.get("2.0.0"), Some(&1));
        assert_eq!(summary.total, 300);
    }
}
