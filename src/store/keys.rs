//! Every byte layout of the sled store, keys and values, with their tests.
//!
//! Trees and key layouts (`0xFF` never occurs in UTF-8, so no id can forge a separator; app ids
//! are ASCII, so the first `0xFF` of a key always ends its app id):
//!
//! ```text
//! apps:            app_id                                   -> AppRecord
//! channels:        app_id 0xFF channel_name                 -> Channel
//! bundles:         app_id 0xFF version_name                 -> Bundle
//! devices:         app_id 0xFF device_id                    -> DeviceRecord
//! devices_by_time: app_id 0xFF updated_at(u64 BE µs) device_id -> DeviceRecord (a copy of the
//!                  device's record, written with it; empty in entries written before the copy
//!                  was kept: readers then read the record)
//! overrides:       app_id 0xFF device_id                    -> Overrides
//! overrides_by_time: app_id 0xFF set_at(u64 BE µs) device_id -> ()
//! audit:           app_id 0xFF at(u64 BE µs) seq(u64 BE)    -> AuditEntry
//! audit_by_device: app_id 0xFF device_id 0xFF at(u64 BE µs) seq(u64 BE) -> ()
//! device_counts:   app_id 0xFF dimension(u8) shard(u8) value -> count (u64 BE, no format byte)
//! devices_by_custom_id: app_id 0xFF custom_id 0xFF device_id -> () (non-empty custom ids only)
//!
//! `device_counts` holds, per app, how many devices have each value of a field (platform,
//! version_name, ...), maintained in the transactions that write the devices. `shard` is 0: it
//! once spread one value over 16 keys by a hash of the device id, which only multiplied the keys
//! written (sled runs transactions one at a time); stores written then are folded into shard 0
//! when opened (`counters_folded` below), and readers still add up whatever shards they find.
//! Dimension 7 counts the devices a channel's rollout selected, under `channel id (u64 BE)
//! rollout id (u64 BE)`.
//! api_keys:        sha256(secret) (32 bytes)                -> ApiKey
//! version_events:  app_id 0xFF version_name 0xFF day(u32 BE) action -> count (u64 BE, summed by
//!                  a merge operator; no format byte)
//! intents:         seq(u64 BE)                              -> the changes of one atomic write, kept
//!                  while it is applied (layout in sled/atomic.rs; empty once the store is open)
//! (default tree):  "sequence/" name                         -> next number (u64 BE, no format byte)
//! (default tree):  "deleting/" app_id                       -> () (a deletion under way)
//! (default tree):  "import_pending/" source                 -> () (an import begun, not ended)
//! (default tree):  "store_id"                               -> this store's id (also in the
//!                                                              directory's marker file)
//! (default tree):  "store_generation"                       -> u64 BE: raised at every open and
//!                                                              explicit flush (also in the marker)
//! (default tree):  "counters_folded"                        -> () (device counters all in shard 0)
//! (default tree):  "health_probe"                           -> anything (written by health checks, at most once a second)
//! ```
//!
//! Sequences number what users see: API key ids (`sequence/api_key`) and audit entries
//! (`sequence/audit`). sled's own id generator is not used for them: it jumps by a million or more
//! at every restart.
//!
//! `devices_by_time` carries each record so that a page in a time order is one range scan, as a
//! page by device id is, instead of a scan and a point lookup per row (5x the pages a second,
//! for a third more disk: bench/RESULTS.md, "The layout fix, measured").
//!
//! `overrides_by_time` lets the sweep find overrides of devices that never checked in without
//! reading every override; it has the key layout of `devices_by_time` and no value.
//!
//! Within one app, the byte order of `devices` keys is `device_id` order and that of
//! `devices_by_time` keys is (`updated_at`, `device_id`) order, so that every list order is a
//! range scan. Keys of different apps never interleave.
//!
//! Values are a format byte followed by the bincode (serde, standard config) encoding of the
//! record, so that a record can change shape without rewriting the store: each stored type says
//! its current format ([`Record::FORMAT`]) and how it reads the older ones ([`Record::upgrade`]).
//! Format history:
//!
//! ```text
//! 1  every record as first written
//! 2  device records: the report gained install_source and key_id (format 1 reads as None)
//!    channels: the rollout state followed the channel's fields (format 1 reads as none)
//!    audit entries: a rollout change followed the entry's fields (format 1 reads as none)
//!    bundles: the manifest followed the bundle's fields (format 1 reads as empty)
//! 3  device records: the rollout decision followed the report (format 2 reads as none)
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::timefmt::Micros;

pub const SEPARATOR: u8 = 0xFF;
pub const FORMAT_V1: u8 = 1;
pub const FORMAT_V2: u8 = 2;
pub const FORMAT_V3: u8 = 3;
/// No record comes near this; a length prefix beyond it is corruption.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// `deleting/<app_id>` in the default tree: an app whose deletion has begun.
pub fn deleting(app_id: &str) -> Vec<u8> {
    let mut key = b"deleting/".to_vec();
    key.extend_from_slice(app_id.as_bytes());
    key
}

/// `import_pending/<source>` in the default tree: an import of `source` that has begun and not
/// ended (so a crash in the middle of one is named by `check`).
pub fn import_pending(source: &str) -> Vec<u8> {
    let mut key = b"import_pending/".to_vec();
    key.extend_from_slice(source.as_bytes());
    key
}

pub fn split_import_pending(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key.strip_prefix(b"import_pending/")?).ok()
}

pub fn split_deleting(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key.strip_prefix(b"deleting/")?).ok()
}

/// `app_id 0xFF version_name 0xFF day action`: how many times devices reported `action` about
/// the bundle `version_name` on `day` (days since 1970).
pub fn version_event(app_id: &str, version: &str, day: u32, action: &str) -> Vec<u8> {
    let mut key = version_days(app_id, version);
    key.extend_from_slice(&day.to_be_bytes());
    key.extend_from_slice(action.as_bytes());
    key
}

/// The prefix of a bundle's `version_events` keys: its days follow in order.
pub fn version_days(app_id: &str, version: &str) -> Vec<u8> {
    let mut key = app_scoped(app_id, version);
    key.push(SEPARATOR);
    key
}

/// (app_id, version_name, day, action) of a `version_events` key.
pub fn split_version_event(key: &[u8]) -> Option<(&str, &str, u32, &str)> {
    let app_end = key.iter().position(|b| *b == SEPARATOR)?;
    let rest = &key[app_end + 1..];
    let version_end = rest.iter().position(|b| *b == SEPARATOR)?;
    let day_at = version_end + 1;
    let day = u32::from_be_bytes(rest.get(day_at..day_at + 4)?.try_into().ok()?);
    Some((
        std::str::from_utf8(&key[..app_end]).ok()?,
        std::str::from_utf8(&rest[..version_end]).ok()?,
        day,
        std::str::from_utf8(&rest[day_at + 4..]).ok()?,
    ))
}

/// The key of the store's id in the default tree.
pub const STORE_ID: &[u8] = b"store_id";

/// The key of the store's generation in the default tree.
pub const STORE_GENERATION: &[u8] = b"store_generation";

/// Present once the device counters are all in shard 0 (see `device_counts` above).
pub const COUNTERS_FOLDED: &[u8] = b"counters_folded";

/// The key of a sequence in the default tree.
pub fn sequence(name: &str) -> Vec<u8> {
    let mut key = b"sequence/".to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

/// `app_id 0xFF`: the prefix of everything an app owns in an app-scoped tree.
pub fn app_prefix(app_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(app_id.len() + 1);
    key.extend_from_slice(app_id.as_bytes());
    key.push(SEPARATOR);
    key
}

/// `app_id 0xFF name`: channels, bundles, devices and overrides.
pub fn app_scoped(app_id: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(app_id.len() + 1 + name.len());
    key.extend_from_slice(app_id.as_bytes());
    key.push(SEPARATOR);
    key.extend_from_slice(name.as_bytes());
    key
}

pub fn split_app_scoped(key: &[u8]) -> Option<(&str, &str)> {
    let at = key.iter().position(|&b| b == SEPARATOR)?;
    let app_id = std::str::from_utf8(&key[..at]).ok()?;
    let name = std::str::from_utf8(&key[at + 1..]).ok()?;
    Some((app_id, name))
}

/// `app_id 0xFF time(u64 BE) device_id`: the time indexes (`devices_by_time`, `overrides_by_time`).
pub fn device_time(app_id: &str, updated_at: Micros, device_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(app_id.len() + 9 + device_id.len());
    key.extend_from_slice(app_id.as_bytes());
    key.push(SEPARATOR);
    key.extend_from_slice(&updated_at.to_be_bytes());
    key.extend_from_slice(device_id.as_bytes());
    key
}

/// `app_id 0xFF updated_at(u64 BE)`: the first time-index key at that instant.
pub fn device_time_floor(app_id: &str, updated_at: Micros) -> Vec<u8> {
    device_time(app_id, updated_at, "")
}

pub fn split_device_time(key: &[u8]) -> Option<(&str, Micros, &str)> {
    let at = key.iter().position(|&b| b == SEPARATOR)?;
    let app_id = std::str::from_utf8(&key[..at]).ok()?;
    let time: [u8; 8] = key.get(at + 1..at + 9)?.try_into().ok()?;
    let device_id = std::str::from_utf8(&key[at + 9..]).ok()?;
    Some((app_id, u64::from_be_bytes(time), device_id))
}

/// `app_id 0xFF at(u64 BE) seq(u64 BE)`: the audit log, in time order within an app (`seq`, unique,
/// orders entries of the same microsecond).
pub fn audit(app_id: &str, at: Micros, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(app_id.len() + 17);
    key.extend_from_slice(app_id.as_bytes());
    key.push(SEPARATOR);
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub fn split_audit(key: &[u8]) -> Option<(&str, Micros, u64)> {
    let at_sep = key.iter().position(|&b| b == SEPARATOR)?;
    let app_id = std::str::from_utf8(&key[..at_sep]).ok()?;
    let rest = key.get(at_sep + 1..)?;
    if rest.len() != 16 {
        return None;
    }
    let at = u64::from_be_bytes(rest[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(rest[8..].try_into().ok()?);
    Some((app_id, at, seq))
}

/// `app_id 0xFF device_id 0xFF at(u64 BE) seq(u64 BE)`: one device's audit entries, in time order.
pub fn audit_by_device(app_id: &str, device_id: &str, at: Micros, seq: u64) -> Vec<u8> {
    let mut key = audit_device_prefix(app_id, device_id);
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// `app_id 0xFF device_id 0xFF`: the prefix of one device's audit entries.
pub fn audit_device_prefix(app_id: &str, device_id: &str) -> Vec<u8> {
    let mut key = app_scoped(app_id, device_id);
    key.push(SEPARATOR);
    key
}

pub fn split_audit_by_device(key: &[u8]) -> Option<(&str, &str, Micros, u64)> {
    let app_end = key.iter().position(|&b| b == SEPARATOR)?;
    let rest = key.get(app_end + 1..)?;
    let device_end = rest.iter().position(|&b| b == SEPARATOR)?;
    let tail = rest.get(device_end + 1..)?;
    if tail.len() != 16 {
        return None;
    }
    let app_id = std::str::from_utf8(&key[..app_end]).ok()?;
    let device_id = std::str::from_utf8(&rest[..device_end]).ok()?;
    let at = u64::from_be_bytes(tail[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(tail[8..].try_into().ok()?);
    Some((app_id, device_id, at, seq))
}

/// `app_id 0xFF custom_id 0xFF`: the prefix of the devices reporting a custom id.
pub fn custom_id_prefix(app_id: &str, custom_id: &str) -> Vec<u8> {
    let mut key = app_scoped(app_id, custom_id);
    key.push(SEPARATOR);
    key
}

/// `app_id 0xFF custom_id 0xFF device_id`: one device reporting a custom id.
pub fn custom_id(app_id: &str, custom_id: &str, device_id: &str) -> Vec<u8> {
    let mut key = custom_id_prefix(app_id, custom_id);
    key.extend_from_slice(device_id.as_bytes());
    key
}

pub fn split_custom_id(key: &[u8]) -> Option<(&str, &str, &str)> {
    let first = key.iter().position(|&b| b == SEPARATOR)?;
    let rest = &key[first + 1..];
    let second = rest.iter().position(|&b| b == SEPARATOR)?;
    Some((
        std::str::from_utf8(&key[..first]).ok()?,
        std::str::from_utf8(&rest[..second]).ok()?,
        std::str::from_utf8(&rest[second + 1..]).ok()?,
    ))
}

/// `app_id 0xFF dimension shard value`: a device counter.
pub fn device_count(app_id: &str, dimension: u8, shard: u8, value: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(app_id.len() + 3 + value.len());
    key.extend_from_slice(app_id.as_bytes());
    key.push(SEPARATOR);
    key.push(dimension);
    key.push(shard);
    key.extend_from_slice(value);
    key
}

pub fn split_device_count(key: &[u8]) -> Option<(&str, u8, u8, &[u8])> {
    let at = key.iter().position(|&b| b == SEPARATOR)?;
    let app_id = std::str::from_utf8(&key[..at]).ok()?;
    let dimension = *key.get(at + 1)?;
    let shard = *key.get(at + 2)?;
    Some((app_id, dimension, shard, &key[at + 3..]))
}

/// The smallest key greater than every key that starts with `prefix` (`None`: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("empty value")]
    Empty,
    #[error("unknown format byte {0}")]
    UnknownFormat(u8),
    #[error("bincode: {0}")]
    Decode(String),
}

/// A value kept in a tree: the format it is written in, and how values of earlier formats read.
pub trait Record: Serialize + DeserializeOwned {
    const FORMAT: u8 = FORMAT_V1;

    /// Reads a value written in an earlier `format`; `None` when there is no such format.
    fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
        let _ = (format, payload);
        None
    }
}

// The model's records, each in its first format; the engine's own records (apps, devices) say
// theirs beside their definitions.
impl Record for crate::model::Overrides {}
impl Record for crate::model::ApiKey {}

/// The bincode payload of a value (its format byte removed).
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ValueError> {
    // The limit makes a corrupt length prefix an error instead of a giant allocation
    // (found by fuzzing: an unbounded decode aborts the process).
    let config = bincode::config::standard().with_limit::<MAX_RECORD_BYTES>();
    bincode::serde::decode_from_slice(payload, config)
        .map(|(value, _)| value)
        .map_err(|e| ValueError::Decode(e.to_string()))
}

/// A payload decoded into a type that borrows its strings from it (no copy, no allocation).
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(payload: &'a [u8]) -> Result<T, ValueError> {
    let config = bincode::config::standard().with_limit::<MAX_RECORD_BYTES>();
    bincode::serde::borrow_decode_from_slice(payload, config)
        .map(|(value, _)| value)
        .map_err(|e| ValueError::Decode(e.to_string()))
}

pub fn encode_value<T: Record>(value: &T) -> Vec<u8> {
    let mut out = vec![T::FORMAT];
    // Encoding plain structs of strings, integers, options and vectors into a Vec cannot fail.
    bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())
        .expect("encoding a record into memory");
    out
}

pub fn decode_value<T: Record>(bytes: &[u8]) -> Result<T, ValueError> {
    match bytes.split_first() {
        None => Err(ValueError::Empty),
        Some((&format, payload)) if format == T::FORMAT => decode_payload(payload),
        Some((&format, payload)) => {
            T::upgrade(format, payload).unwrap_or(Err(ValueError::UnknownFormat(format)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: &[&str] = &[
        "a",
        "a|b",
        "a|",
        "|a",
        "00000000-0000-0000-0000-000000000000",
        "ab",
        "b",
        "é",
        "日本",
        "z\u{10FFFF}",
        " ",
    ];
    const APPS: &[&str] = &["a", "a.b", "a-b", "ab", "app_123", "com.example.app", "b"];
    const TIMES: &[u64] = &[
        0,
        1,
        255,
        256,
        65_535,
        1_704_067_200_000_000,
        u64::MAX - 1,
        u64::MAX,
    ];

    #[test]
    fn app_scoped_round_trip() {
        for app in APPS {
            for id in IDS {
                let key = app_scoped(app, id);
                assert_eq!(split_app_scoped(&key), Some((*app, *id)));
                assert!(key.starts_with(&app_prefix(app)));
            }
        }
    }

    #[test]
    fn device_time_round_trip() {
        for app in APPS {
            for &t in TIMES {
                for id in IDS {
                    let key = device_time(app, t, id);
                    assert_eq!(split_device_time(&key), Some((*app, t, *id)));
                }
            }
        }
    }

    #[test]
    fn app_scoped_byte_order_is_device_id_order_and_apps_do_not_interleave() {
        let mut keys: Vec<(Vec<u8>, &str, &str)> = APPS
            .iter()
            .flat_map(|app| IDS.iter().map(move |id| (app_scoped(app, id), *app, *id)))
            .collect();
        keys.sort();
        for app in APPS {
            let positions: Vec<usize> = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.1 == *app)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(positions.len(), IDS.len());
            assert!(
                positions.windows(2).all(|w| w[1] == w[0] + 1),
                "{app} interleaves"
            );
            let ids: Vec<&str> = positions.iter().map(|&i| keys[i].2).collect();
            let mut expected: Vec<&str> = IDS.to_vec();
            expected.sort();
            assert_eq!(ids, expected);
        }
    }

    #[test]
    fn device_time_byte_order_is_time_then_device_id_order() {
        let mut keys: Vec<(Vec<u8>, &str, u64, &str)> = Vec::new();
        for app in APPS {
            for &t in TIMES {
                for id in IDS {
                    keys.push((device_time(app, t, id), app, t, id));
                }
            }
        }
        keys.sort();
        for app in APPS {
            let group: Vec<(u64, &str)> = keys
                .iter()
                .filter(|k| k.1 == *app)
                .map(|k| (k.2, k.3))
                .collect();
            let mut expected = group.clone();
            expected.sort();
            assert_eq!(group, expected);
            let first = keys.iter().position(|k| k.1 == *app).unwrap();
            assert!(keys[first..first + group.len()].iter().all(|k| k.1 == *app));
        }
    }

    #[test]
    fn floor_and_prefix_end_bound_exactly_one_app() {
        for app in APPS {
            let start = device_time_floor(app, 0);
            let end = prefix_end(&app_prefix(app)).unwrap();
            for other in APPS {
                for &t in TIMES {
                    for id in IDS {
                        let key = device_time(other, t, id);
                        let inside = key >= start && key < end;
                        assert_eq!(inside, other == app, "{other} {t} {id} in {app}");
                    }
                }
            }
        }
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }

    #[test]
    fn audit_keys_round_trip_and_order_by_time_then_sequence() {
        let mut keys_in_order = Vec::new();
        for app in APPS {
            for &at in TIMES {
                for seq in [0u64, 1, 300, u64::MAX] {
                    let key = audit(app, at, seq);
                    assert_eq!(split_audit(&key), Some((*app, at, seq)));
                    keys_in_order.push((key, app, at, seq));
                    for id in IDS {
                        let by_device = audit_by_device(app, id, at, seq);
                        assert_eq!(
                            split_audit_by_device(&by_device),
                            Some((*app, *id, at, seq))
                        );
                        assert!(by_device.starts_with(&audit_device_prefix(app, id)));
                    }
                }
            }
        }
        keys_in_order.sort();
        for app in APPS {
            let group: Vec<(u64, u64)> = keys_in_order
                .iter()
                .filter(|k| k.1 == app)
                .map(|k| (k.2, k.3))
                .collect();
            let mut expected = group.clone();
            expected.sort();
            assert_eq!(group, expected);
        }
        // One device's prefix never takes in another's entries ("a" and "a|b" share a start).
        let prefix = audit_device_prefix("app", "a");
        assert!(!audit_by_device("app", "a|b", 5, 5).starts_with(&prefix));
        assert!(!audit_by_device("app", "ab", 5, 5).starts_with(&prefix));
    }

    #[test]
    fn version_event_keys_round_trip_and_order_by_day() {
        let mut keys = Vec::new();
        for app in ["a", "ab"] {
            for version in ["1.0.0", "1.0.0-beta.1", "é"] {
                for day in [0u32, 1, 255, 256, 20_000, u32::MAX] {
                    for action in ["set", "download_fail", ""] {
                        let key = version_event(app, version, day, action);
                        assert_eq!(split_version_event(&key), Some((app, version, day, action)));
                        assert!(key.starts_with(&version_days(app, version)));
                        keys.push((key, app, version, day));
                    }
                }
            }
        }
        keys.sort();
        // Within a bundle, days come in order; bundles and apps never interleave.
        for pair in keys.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if (a.1, a.2) == (b.1, b.2) {
                assert!(a.3 <= b.3);
            }
        }
        let runs = keys
            .windows(2)
            .filter(|w| (w[0].1, w[0].2) != (w[1].1, w[1].2))
            .count();
        assert_eq!(runs, 2 * 3 - 1);
    }

    #[test]
    fn device_count_keys_round_trip_and_group_by_dimension() {
        let mut keys_in_order = Vec::new();
        for app in APPS {
            for dimension in [0u8, 1, 6, 255] {
                for shard in [0u8, 7, 15] {
                    for value in [&b""[..], b"ios", b"1.0.0", &[0xFF, 0, 1]] {
                        let key = device_count(app, dimension, shard, value);
                        assert_eq!(
                            split_device_count(&key),
                            Some((*app, dimension, shard, value))
                        );
                        keys_in_order.push((key, app, dimension));
                    }
                }
            }
        }
        keys_in_order.sort();
        for app in APPS {
            let dimensions: Vec<u8> = keys_in_order
                .iter()
                .filter(|k| k.1 == app)
                .map(|k| k.2)
                .collect();
            assert!(
                dimensions.windows(2).all(|w| w[0] <= w[1]),
                "{app}: dimensions interleave"
            );
        }
    }

    #[test]
    fn custom_id_keys_round_trip_and_group_by_custom_id() {
        for app in APPS {
            for custom in ["user 42", "a", "a|b", "é"] {
                for id in IDS {
                    let key = custom_id(app, custom, id);
                    assert_eq!(split_custom_id(&key), Some((*app, custom, *id)));
                    assert!(key.starts_with(&custom_id_prefix(app, custom)));
                }
            }
        }
        // "a" never takes in "a|b" or "ab".
        let prefix = custom_id_prefix("app", "a");
        assert!(!custom_id("app", "a|b", "d").starts_with(&prefix));
        assert!(!custom_id("app", "ab", "d").starts_with(&prefix));
    }

    #[test]
    fn deletion_keys_round_trip_and_stay_apart_from_other_keys() {
        for app in APPS {
            assert_eq!(split_deleting(&deleting(app)), Some(*app));
            assert!(deleting(app).starts_with(&deleting("")));
        }
        assert_eq!(split_deleting(&sequence("audit")), None);
        assert_eq!(split_deleting(STORE_ID), None);
        for source in ["/srv/dump.ndjson", "relative/é.csv", ""] {
            assert_eq!(split_import_pending(&import_pending(source)), Some(source));
            assert!(import_pending(source).starts_with(&import_pending("")));
            assert_eq!(split_deleting(&import_pending(source)), None);
            assert!(!deleting(source).starts_with(&import_pending("")));
        }
    }

    #[test]
    fn malformed_keys_do_not_decode() {
        assert_eq!(split_app_scoped(b"no-separator"), None);
        assert_eq!(split_device_time(b"app\xFF\x00\x01"), None);
        assert_eq!(split_app_scoped(b"app\xFF\xC3"), None);
    }

    /// A record in its second format; the first lacked `note`.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        count: u64,
        note: Option<String>,
    }

    impl Record for Sample {
        const FORMAT: u8 = FORMAT_V2;

        fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
            #[derive(serde::Deserialize)]
            struct SampleV1 {
                name: String,
                count: u64,
            }
            (format == FORMAT_V1).then(|| {
                decode_payload::<SampleV1>(payload).map(|v1| Sample {
                    name: v1.name,
                    count: v1.count,
                    note: None,
                })
            })
        }
    }

    #[test]
    fn values_round_trip_and_carry_their_format() {
        let sample = Sample {
            name: "user 42".into(),
            count: 7,
            note: Some("é".into()),
        };
        let bytes = encode_value(&sample);
        assert_eq!(bytes[0], FORMAT_V2);
        assert_eq!(decode_value::<Sample>(&bytes).unwrap(), sample);

        // A value of the first format reads through the upgrade.
        let mut v1 = vec![FORMAT_V1];
        bincode::serde::encode_into_std_write(
            ("user 42", 7u64),
            &mut v1,
            bincode::config::standard(),
        )
        .unwrap();
        let upgraded = decode_value::<Sample>(&v1).unwrap();
        assert_eq!(
            upgraded,
            Sample {
                name: "user 42".into(),
                count: 7,
                note: None
            }
        );

        let mut future = bytes.clone();
        future[0] = 3;
        assert!(matches!(
            decode_value::<Sample>(&future),
            Err(ValueError::UnknownFormat(3))
        ));
        assert!(matches!(
            decode_value::<Sample>(&[]),
            Err(ValueError::Empty)
        ));
        assert!(decode_value::<Sample>(&bytes[..bytes.len() - 3]).is_err());
        // A corrupt length prefix (u64::MAX bytes of channel name) is an error, not an abort.
        let mut huge = vec![FORMAT_V1, 1, 253];
        huge.extend_from_slice(&[0xFF; 8]);
        assert!(decode_value::<crate::model::Overrides>(&huge).is_err());
    }
}
