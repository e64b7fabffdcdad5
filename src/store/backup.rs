//! Dumps and restores: every record of a store as NDJSON, one record a line, the same on both
//! engines, so that a dump of either restores into an empty store of either.
//!
//! A dump is one consistent snapshot (sled: taken under the registry's exclusive lock, writes
//! waiting meanwhile; PostgreSQL: one REPEATABLE READ transaction, writes going on). Its lines,
//! in an order both engines produce alike, so that two dumps of the same registry are the same
//! text: a header; the sequences' positions; the API keys by id (their secrets' hashes, never a secret); then each app in
//! `app_id` byte order, with its bundles (by version), channels (by name), devices (by id),
//! overrides (by device id), audit entries (by time and number) and bundle event counters (by
//! version, day, action); an `end` line with the number of records before it, so that a
//! truncated dump is refused instead of half restored.

use serde::{Deserialize, Serialize};

use super::{StoreError, StoreResult};
use crate::model::{
    ApiKey, AuditEntry, Bundle, Channel, DeviceReport, ManifestEntry, Overrides, Rollout,
    RolloutAudit, RolloutDecision,
};
use crate::timefmt::Micros;

/// What the header says the file is.
pub const FORMAT: &str = "device-registry dump";
pub const VERSION: u32 = 1;

/// One line of a dump. Records pass one at a time: their size is not worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DumpRecord {
    Header {
        format: String,
        version: u32,
    },
    /// What the store's sequences hand out next: ids of deleted keys and numbers of expired
    /// audit entries are not handed out again after a restore.
    Sequences {
        next_api_key_id: u64,
        next_audit_seq: u64,
    },
    ApiKey {
        #[serde(flatten)]
        key: ApiKey,
        /// SHA-256 of the secret, hex.
        secret_hash: String,
    },
    App {
        app_id: String,
        name: String,
        created_at: Micros,
        /// The ids the app's next channel and bundle get (ids are never reused).
        next_channel_id: u64,
        next_bundle_id: u64,
    },
    Bundle {
        #[serde(flatten)]
        bundle: Bundle,
        manifest: Vec<ManifestEntry>,
    },
    Channel {
        #[serde(flatten)]
        channel: Channel,
        rollout: Option<Rollout>,
        rollouts_started: u64,
    },
    Device {
        app_id: String,
        device_id: String,
        updated_at: Micros,
        report: DeviceReport,
        rollout: Option<RolloutDecision>,
    },
    Overrides {
        app_id: String,
        device_id: String,
        #[serde(flatten)]
        overrides: Overrides,
    },
    Audit {
        app_id: String,
        #[serde(flatten)]
        entry: AuditEntry,
        rollout: Option<RolloutAudit>,
    },
    VersionEvent {
        app_id: String,
        version: String,
        day: u32,
        action: String,
        count: u64,
    },
    End {
        records: u64,
    },
}

impl DumpRecord {
    pub fn header() -> Self {
        DumpRecord::Header {
            format: FORMAT.into(),
            version: VERSION,
        }
    }

    pub fn bundle(bundle: Bundle) -> Self {
        let manifest = bundle.manifest.clone();
        DumpRecord::Bundle { bundle, manifest }
    }

    pub fn channel(channel: Channel) -> Self {
        let (rollout, rollouts_started) = (channel.rollout.clone(), channel.rollouts_started);
        DumpRecord::Channel {
            channel,
            rollout,
            rollouts_started,
        }
    }

    pub fn audit(app_id: &str, entry: AuditEntry) -> Self {
        let rollout = entry.rollout.clone();
        DumpRecord::Audit {
            app_id: app_id.to_owned(),
            entry,
            rollout,
        }
    }

    pub fn api_key(key: ApiKey, secret_hash: &[u8; 32]) -> Self {
        DumpRecord::ApiKey {
            key,
            secret_hash: secret_hash.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// The line of this record (without its newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A record from one line; the line's number names it in the error.
    pub fn from_line(line: &str, number: u64) -> StoreResult<Self> {
        let mut record: DumpRecord = serde_json::from_str(line)
            .map_err(|error| StoreError::Damaged(format!("dump line {number}: {error}")))?;
        // The parts kept apart in the line go back where the model keeps them too (the record
        // then equals the one written).
        match &mut record {
            DumpRecord::Bundle { bundle, manifest } => bundle.manifest.clone_from(manifest),
            DumpRecord::Channel {
                channel,
                rollout,
                rollouts_started,
            } => {
                channel.rollout.clone_from(rollout);
                channel.rollouts_started = *rollouts_started;
            }
            DumpRecord::Audit { entry, rollout, .. } => entry.rollout.clone_from(rollout),
            _ => {}
        }
        Ok(record)
    }
}

/// A key's hash from its dumped hex.
pub fn secret_hash_of(hex: &str) -> StoreResult<[u8; 32]> {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect();
    bytes
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            StoreError::Damaged(format!("a key's secret_hash is not 64 hex digits: {hex}"))
        })
}

/// Reads a dump's lines: checks the header first and the `end` line last (the number of
/// records it announces), and answers the records between them.
pub struct DumpReader<R> {
    lines: std::io::Lines<R>,
    number: u64,
    records: u64,
    ended: bool,
}

impl<R: std::io::BufRead> DumpReader<R> {
    pub fn new(reader: R) -> StoreResult<Self> {
        let mut lines = reader.lines();
        let first = lines
            .next()
            .ok_or_else(|| StoreError::Damaged("the dump is empty".into()))?
            .map_err(|error| StoreError::Damaged(format!("reading the dump: {error}")))?;
        match DumpRecord::from_line(&first, 1)? {
            DumpRecord::Header { format, version } if format == FORMAT && version == VERSION => {}
            DumpRecord::Header { format, version } => {
                return Err(StoreError::Damaged(format!(
                    "not a dump this release reads: {format:?} version {version}"
                )))
            }
            _ => return Err(StoreError::Damaged("the dump has no header line".into())),
        }
        Ok(Self {
            lines,
            number: 1,
            records: 0,
            ended: false,
        })
    }
}

impl<R: std::io::BufRead> Iterator for DumpReader<R> {
    type Item = StoreResult<DumpRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let Some(line) = self.lines.next() else {
            self.ended = true;
            return Some(Err(StoreError::Damaged(format!(
                "the dump ends after line {} without its end line: it was cut short",
                self.number
            ))));
        };
        self.number += 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                self.ended = true;
                return Some(Err(StoreError::Damaged(format!(
                    "reading the dump: {error}"
                ))));
            }
        };
        match DumpRecord::from_line(&line, self.number) {
            Ok(DumpRecord::End { records }) => {
                self.ended = true;
                if records == self.records {
                    None
                } else {
                    Some(Err(StoreError::Damaged(format!(
                        "the dump announces {records} records and holds {}",
                        self.records
                    ))))
                }
            }
            Ok(DumpRecord::Header { .. }) => Some(Err(StoreError::Damaged(format!(
                "line {}: a second header",
                self.number
            )))),
            Ok(record) => {
                self.records += 1;
                Some(Ok(record))
            }
            Err(error) => {
                self.ended = true;
                Some(Err(error))
            }
        }
    }
}

/// Writes a dump's records as lines, with the header first and the `end` line last.
pub struct DumpWriter<'w> {
    out: &'w mut dyn std::io::Write,
    records: u64,
}

impl<'w> DumpWriter<'w> {
    pub fn new(out: &'w mut dyn std::io::Write) -> StoreResult<Self> {
        let mut writer = Self { out, records: 0 };
        writer.line(&DumpRecord::header())?;
        Ok(writer)
    }

    fn line(&mut self, record: &DumpRecord) -> StoreResult<()> {
        let mut line = record.to_line();
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .map_err(|error| StoreError::Unavailable(format!("writing the dump: {error}")))
    }

    pub fn record(&mut self, record: DumpRecord) -> StoreResult<()> {
        self.records += 1;
        self.line(&record)
    }

    pub fn finish(mut self) -> StoreResult<u64> {
        let records = self.records;
        self.line(&DumpRecord::End { records })?;
        self.out
            .flush()
            .map_err(|error| StoreError::Unavailable(format!("writing the dump: {error}")))?;
        Ok(records)
    }
}

/// Devices of a dump gathered into batches of one app each, as restores import them.
pub struct DeviceBatches {
    devices: Vec<crate::model::Device>,
    size: usize,
}

impl DeviceBatches {
    pub fn new(size: usize) -> Self {
        Self {
            devices: Vec::with_capacity(size),
            size: size.max(1),
        }
    }

    /// Adds a device; answers a batch to import when one is complete (the previous app's,
    /// when this device is another app's, or a full one).
    pub fn push(&mut self, device: crate::model::Device) -> Option<Vec<crate::model::Device>> {
        let other_app = self
            .devices
            .first()
            .is_some_and(|first| first.app_id != device.app_id);
        let done = other_app.then(|| std::mem::take(&mut self.devices));
        self.devices.push(device);
        if done.is_some() {
            return done;
        }
        (self.devices.len() >= self.size).then(|| std::mem::take(&mut self.devices))
    }

    /// What remains, at the end of the dump.
    pub fn rest(&mut self) -> Vec<crate::model::Device> {
        std::mem::take(&mut self.devices)
    }
}

/// Dumps and restores (see the module's documentation).
pub trait Backup: Send + Sync + 'static {
    /// Every record of the store, one consistent snapshot, in the dump's order, given to
    /// `sink` one at a time (never all in memory).
    fn dump(&self, sink: &mut dyn FnMut(DumpRecord) -> StoreResult<()>) -> StoreResult<()>;
    /// Writes the records of a dump into this store, which must hold no app and no key (else
    /// `Damaged`, nothing written). Ids, numbers and times are kept as dumped; the store's own
    /// sequences continue after the largest. Answers the number of records written. Not atomic:
    /// a restore that fails midway leaves a partial store, to be emptied before trying again.
    fn restore(
        &self,
        records: &mut dyn Iterator<Item = StoreResult<DumpRecord>>,
    ) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, AuditAction, Device, GuardAction, Platform, RolloutGuard};

    fn device(app_id: &str, device_id: &str) -> Device {
        Device {
            app_id: app_id.into(),
            device_id: device_id.into(),
            updated_at: 7,
            report: DeviceReport {
                custom_id: "c".into(),
                version_name: Some("1.0.0".into()),
                version_build: "1".into(),
                os_version: "17".into(),
                plugin_version: "7.0.0".into(),
                platform: Platform::Android,
                is_prod: false,
                is_emulator: true,
                default_channel: Some("beta".into()),
                install_source: None,
                key_id: Some("k".into()),
            },
            rollout: Some(RolloutDecision {
                channel: "production".into(),
                channel_id: 2,
                rollout_id: 3,
                version: "1.1.0".into(),
                selected: true,
                percentage_bps: 500,
            }),
        }
    }

    /// Every kind of record, with the parts the model keeps apart from its serde fields.
    fn records() -> Vec<DumpRecord> {
        let rollout = Rollout {
            id: 3,
            version: "1.1.0".into(),
            percentage_bps: 500,
            paused: true,
            started_at: 9,
            baseline: (4, 1),
            guard: Some(RolloutGuard {
                threshold_bps: 500,
                confidence_bps: 9500,
                min_attempts: 50,
                min_failures: 5,
                action: GuardAction::Pause,
                cooldown: 60,
            }),
            guard_triggered_at: Some(10),
        };
        let mut channel = Channel::with_defaults(2, "app", "production", 1);
        channel.rollout = Some(rollout.clone());
        channel.rollouts_started = 3;
        let bundle = Bundle {
            id: 1,
            app_id: "app".into(),
            version: "1.1.0".into(),
            external_url: "https://cdn.example.com/1.1.0.zip".into(),
            checksum: "c".into(),
            session_key: None,
            min_update_version: Some("1.0.0".into()),
            created_at: 2,
            manifest: vec![ManifestEntry {
                file_name: "a.js".into(),
                file_hash: "h".into(),
                download_url: "https://cdn.example.com/a.js".into(),
            }],
        };
        let entry = AuditEntry {
            at: 11,
            seq: 12,
            device_id: String::new(),
            actor: Actor::Guard,
            action: AuditAction::Rollout,
            before: Overrides::default(),
            after: Overrides::default(),
            rollout: Some(RolloutAudit {
                channel: "production".into(),
                before: None,
                after: Some(rollout),
                reason: Some("failures".into()),
            }),
        };
        let key = ApiKey {
            id: 4,
            name: "ci".into(),
            mode: crate::model::Mode::Read,
            limited_to_apps: vec!["app".into()],
            expires_at: Some(99),
            created_at: 3,
        };
        let device = device("app", "d1");
        vec![
            DumpRecord::Sequences {
                next_api_key_id: 5,
                next_audit_seq: 13,
            },
            DumpRecord::api_key(key, &[7; 32]),
            DumpRecord::App {
                app_id: "app".into(),
                name: "App".into(),
                created_at: 1,
                next_channel_id: 3,
                next_bundle_id: 2,
            },
            DumpRecord::bundle(bundle),
            DumpRecord::channel(channel),
            DumpRecord::Device {
                app_id: device.app_id,
                device_id: device.device_id,
                updated_at: device.updated_at,
                report: device.report,
                rollout: device.rollout,
            },
            DumpRecord::Overrides {
                app_id: "app".into(),
                device_id: "never-seen".into(),
                overrides: Overrides {
                    channel: Some("beta".into()),
                    version: None,
                    set_at: 8,
                },
            },
            DumpRecord::audit("app", entry),
            DumpRecord::VersionEvent {
                app_id: "app".into(),
                version: "1.1.0".into(),
                day: 20_000,
                action: "update_fail".into(),
                count: 2,
            },
        ]
    }

    #[test]
    fn every_record_reads_back_as_written_through_a_dump() {
        let mut out = Vec::new();
        let mut writer = DumpWriter::new(&mut out).unwrap();
        for record in records() {
            writer.record(record).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), records().len() as u64);
        let read: Vec<DumpRecord> = DumpReader::new(out.as_slice())
            .unwrap()
            .collect::<StoreResult<_>>()
            .unwrap();
        assert_eq!(read, records());
        // The parts kept apart in the line are back in the model.
        match &read[4] {
            DumpRecord::Channel { channel, .. } => {
                assert_eq!(channel.rollouts_started, 3);
                assert!(channel.rollout.as_ref().is_some_and(|r| r.paused));
            }
            other => panic!("{other:?}"),
        }
        match &read[3] {
            DumpRecord::Bundle { bundle, .. } => assert_eq!(bundle.manifest.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(secret_hash_of(&"07".repeat(32)).unwrap(), [7; 32]);
        assert!(secret_hash_of("07").is_err());
    }

    #[test]
    fn a_cut_or_padded_dump_is_refused() {
        let mut out = Vec::new();
        let mut writer = DumpWriter::new(&mut out).unwrap();
        for record in records() {
            writer.record(record).unwrap();
        }
        writer.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let cut = lines[..lines.len() - 1].join("\n");
        let outcome: StoreResult<Vec<_>> = DumpReader::new(cut.as_bytes()).unwrap().collect();
        assert!(outcome.unwrap_err().to_string().contains("cut short"));
        let mut padded = lines.clone();
        padded.insert(2, lines[2]);
        let padded = padded.join("\n");
        let outcome: StoreResult<Vec<_>> = DumpReader::new(padded.as_bytes()).unwrap().collect();
        assert!(outcome.unwrap_err().to_string().contains("announces"));
    }

    #[test]
    fn devices_are_batched_by_app_and_size() {
        let mut batches = DeviceBatches::new(2);
        let mut done = Vec::new();
        for (app, id) in [("a", "1"), ("a", "2"), ("a", "3"), ("b", "1"), ("c", "1")] {
            if let Some(batch) = batches.push(device(app, id)) {
                done.push(batch);
            }
        }
        done.push(batches.rest());
        let shape: Vec<Vec<(String, String)>> = done
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .map(|d| (d.app_id.clone(), d.device_id.clone()))
                    .collect()
            })
            .collect();
        let pair = |a: &str, d: &str| (a.to_owned(), d.to_owned());
        assert_eq!(
            shape,
            vec![
                vec![pair("a", "1"), pair("a", "2")],
                vec![pair("a", "3")],
                vec![pair("b", "1")],
                vec![pair("c", "1")],
            ]
        );
    }
}
