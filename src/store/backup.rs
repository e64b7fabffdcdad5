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
        // The parts kept apart in the line go back where the model keeps them.
        match &mut record {
            DumpRecord::Bundle { bundle, manifest } => bundle.manifest = std::mem::take(manifest),
            DumpRecord::Channel {
                channel,
                rollout,
                rollouts_started,
            } => {
                channel.rollout = rollout.take();
                channel.rollouts_started = *rollouts_started;
            }
            DumpRecord::Audit { entry, rollout, .. } => entry.rollout = rollout.take(),
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
