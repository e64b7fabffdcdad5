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

pub(super) const COUNTER_SHARDS: u32 = 16;

pub(super) const DAY_MICROS: u64 = 86_400_000_000;

pub(super) fn counter_shard(device_id: &str) -> u8 {
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = device_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (hash % COUNTER_SHARDS) as u8
}

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
    device_id: &str,
    old: Option<&DeviceRecord>,
    new: Option<&DeviceRecord>,
) -> Vec<(Vec<u8>, i64)> {
    let shard = counter_shard(device_id);
    let (old, new) = (
        old.map(counted).unwrap_or_default(),
        new.map(counted).unwrap_or_default(),
    );
    let mut deltas = Vec::new();
    for (dimension, value) in old.iter().filter(|pair| !new.contains(pair)) {
        deltas.push((keys::device_count(app_id, *dimension, shard, value), -1));
    }
    for (dimension, value) in new.iter().filter(|pair| !old.contains(pair)) {
        deltas.push((keys::device_count(app_id, *dimension, shard, value), 1));
    }
    deltas
}

pub(super) fn read_count(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// Applies counter changes inside a transaction.
pub(super) fn apply_counts(
    counts: &TransactionalTree,
    deltas: &[(Vec<u8>, i64)],
) -> Result<(), UnabortableTransactionError> {
    for (key, delta) in deltas {
        let current = counts.get(key)?.map_or(0, |bytes| read_count(&bytes)) as i64;
        let next = (current + delta).max(0) as u64;
        if next == 0 {
            counts.remove(key.as_slice())?;
        } else {
            counts.insert(key.as_slice(), &next.to_be_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
