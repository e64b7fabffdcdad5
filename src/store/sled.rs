//! The embedded engine: sled trees laid out as `keys.rs` describes.
//!
//! Consistency: a device record and its time-index entry change in one transaction over both
//! trees, the old record naming the index entry to remove. Changes to the registry's shape (apps,
//! channels, bundles, and every delete that cascades) hold `registry` exclusively, while device
//! writes (check-ins, overrides) hold it shared: a link can never slip in between the check that a
//! channel exists and that channel's deletion, and no check-in recreates a device of an app that
//! is being deleted.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Db, IVec, Transactional, Tree};

use super::keys::{self, decode_payload, decode_value, encode_value, Record, ValueError};
use super::{
    ApiKeys, Audit, BulkOutcome, Change, CheckIn, CheckReport, Counts, CreateApp, CreateBundle,
    DeleteOutcome, DeviceOverrides, Devices, EraseTarget, Erased, Expired, Maintenance, NewApiKey,
    OverrideAction, OverrideChange, OverrideWrite, Registry, Retention, StoreError, StoreResult,
    Upsert, UpsertChannel,
};
use crate::durable::GroupCommit;
use crate::model::{
    Actor, ApiKey, App, AuditAction, AuditEntry, AuditPage, Bundle, Channel, ChannelPatch, Cursor,
    Device, DeviceEntry, DeviceListQuery, DeviceOrder, DevicePage, DeviceReport, DeviceSummary,
    NewBundle, Overrides, Platform,
};
use crate::timefmt::Micros;

/// Overrides an app may have for override filters to read them instead of scanning devices.
const OVERRIDE_CANDIDATES: usize = 10_000;

/// Rows deleted per transaction when an app is removed.
const DELETE_CHUNK: usize = 512;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AppRecord {
    app: App,
    next_channel_id: u64,
    next_bundle_id: u64,
}

impl Record for AppRecord {}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceRecord {
    updated_at: Micros,
    report: DeviceReport,
}

impl Record for DeviceRecord {
    const FORMAT: u8 = keys::FORMAT_V2;

    fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
        /// A device record as format 1 wrote it: the report had no `install_source`, `key_id`.
        #[derive(Deserialize)]
        struct DeviceRecordV1 {
            updated_at: Micros,
            report: DeviceReportV1,
        }
        #[derive(Deserialize)]
        struct DeviceReportV1 {
            custom_id: String,
            version_name: Option<String>,
            version_build: String,
            os_version: String,
            plugin_version: String,
            platform: Platform,
            is_prod: bool,
            is_emulator: bool,
            default_channel: Option<String>,
        }
        (format == keys::FORMAT_V1).then(|| {
            decode_payload::<DeviceRecordV1>(payload).map(
                |DeviceRecordV1 { updated_at, report }| DeviceRecord {
                    updated_at,
                    report: DeviceReport {
                        custom_id: report.custom_id,
                        version_name: report.version_name,
                        version_build: report.version_build,
                        os_version: report.os_version,
                        plugin_version: report.plugin_version,
                        platform: report.platform,
                        is_prod: report.is_prod,
                        is_emulator: report.is_emulator,
                        default_channel: report.default_channel,
                        install_source: None,
                        key_id: None,
                    },
                },
            )
        })
    }
}

/// Device records read for a page, with their device ids.
type Rows = Vec<(String, DeviceRecord)>;

/// How to open the store.
#[derive(Debug, Clone)]
pub struct SledOptions {
    pub cache_bytes: u64,
    /// Background flush period; `None` flushes only when asked.
    pub flush_every_ms: Option<u64>,
}

impl SledOptions {
    /// Writes allowed in memory before writers wait for a flush. sled keeps about 2.5 KB per
    /// unflushed write (serialised page fragments awaiting the log), so this bounds that memory
    /// to about the page cache's size.
    pub fn max_unflushed_writes(&self) -> u64 {
        (self.cache_bytes / 2_560).max(1_000)
    }
}

/// Backpressure on writes: sled buffers unflushed writes in memory, and when writes outrun its
/// background flush that memory grows without bound (measured: ~2.5 KB per write, 1.7 GB after
/// 400k writes with a 64 MiB cache). Past `limit` unflushed writes, writers share a flush
/// before they go on, so memory stays bounded and throughput settles at what flushing sustains.
#[derive(Debug)]
struct WriteBudget {
    unflushed: AtomicU64,
    limit: u64,
    flushes: GroupCommit,
}

pub struct SledStore {
    db: Db,
    apps: Tree,
    channels: Tree,
    bundles: Tree,
    devices: Tree,
    devices_by_time: Tree,
    overrides: Tree,
    overrides_by_time: Tree,
    audit: Tree,
    audit_by_device: Tree,
    device_counts: Tree,
    devices_by_custom_id: Tree,
    api_keys: Tree,
    registry: RwLock<()>,
    budget: WriteBudget,
    bundle_ids: BundleIds,
}

/// Bundle ids by version name, per app, for rendering devices: a page of 50 devices names up to
/// 50 versions, each a lookup in `bundles` otherwise. Bundles change only under the registry's
/// exclusive lock, which forgets the map; `generation` keeps a map read before such a change
/// from being kept after it.
#[derive(Default)]
struct BundleIds {
    generation: AtomicU64,
    apps: RwLock<HashMap<String, Arc<HashMap<String, u64>>>>,
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Engine(error.to_string())
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(error: TransactionError<StoreError>) -> Self {
        match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => error.into(),
        }
    }
}

fn decode<T: Record>(tree: &'static str, bytes: &[u8]) -> StoreResult<T> {
    decode_value(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

fn corrupt_key(tree: &'static str) -> StoreError {
    StoreError::Corrupt {
        tree,
        detail: "malformed key".into(),
    }
}

/// Aborts a transaction with a store error.
fn abort(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

/// The range of an app-scoped tree that holds one app's keys.
fn app_range(app_id: &str) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let prefix = keys::app_prefix(app_id);
    let end = keys::prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix), end)
}

impl SledStore {
    pub fn open(path: &Path, options: &SledOptions) -> StoreResult<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(options.flush_every_ms)
            .open()?;
        Ok(Self {
            apps: db.open_tree("apps")?,
            channels: db.open_tree("channels")?,
            bundles: db.open_tree("bundles")?,
            devices: db.open_tree("devices")?,
            devices_by_time: db.open_tree("devices_by_time")?,
            overrides: db.open_tree("overrides")?,
            overrides_by_time: db.open_tree("overrides_by_time")?,
            audit: db.open_tree("audit")?,
            audit_by_device: db.open_tree("audit_by_device")?,
            device_counts: db.open_tree("device_counts")?,
            devices_by_custom_id: db.open_tree("devices_by_custom_id")?,
            api_keys: db.open_tree("api_keys")?,
            registry: RwLock::new(()),
            bundle_ids: BundleIds::default(),
            budget: WriteBudget {
                unflushed: AtomicU64::new(0),
                limit: options.max_unflushed_writes(),
                flushes: GroupCommit::new(),
            },
            db,
        })
    }

    /// Flushes, and takes what was unflushed when it started off the budget.
    fn flush_counted(&self) -> StoreResult<()> {
        let covered = self.budget.unflushed.load(Ordering::SeqCst);
        self.db.flush()?;
        let _ = self
            .budget
            .unflushed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_sub(covered))
            });
        Ok(())
    }

    /// Counts `writes` against the budget; past it, waits for a (shared) flush.
    fn spend(&self, writes: u64) -> StoreResult<()> {
        let pending = self.budget.unflushed.fetch_add(writes, Ordering::SeqCst) + writes;
        if pending >= self.budget.limit {
            self.budget.flushes.commit(|| self.flush_counted())?;
        }
        Ok(())
    }

    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    fn app_record(&self, app_id: &str) -> StoreResult<Option<AppRecord>> {
        self.apps
            .get(app_id.as_bytes())?
            .map(|bytes| decode("apps", &bytes))
            .transpose()
    }

    fn app_values<T: Record>(
        &self,
        tree: &Tree,
        name: &'static str,
        app_id: &str,
    ) -> StoreResult<Vec<T>> {
        self.app_entries(tree, app_id)
            .map(|entry| entry.and_then(|(_, value)| decode(name, &value)))
            .collect()
    }

    fn app_entries<'a>(
        &self,
        tree: &'a Tree,
        app_id: &str,
    ) -> impl Iterator<Item = StoreResult<(IVec, IVec)>> + 'a {
        tree.range(app_range(app_id))
            .map(|entry| entry.map_err(StoreError::from))
    }

    fn overrides_of(&self, app_id: &str, device_id: &str) -> StoreResult<Overrides> {
        Ok(self
            .overrides
            .get(keys::app_scoped(app_id, device_id))?
            .map(|bytes| decode("overrides", &bytes))
            .transpose()?
            .unwrap_or_default())
    }

    /// Why an override write cannot apply, if it cannot: its app, or what it links to, is
    /// missing.
    fn override_refusal(&self, write: &OverrideWrite) -> StoreResult<Option<BulkOutcome>> {
        let app_id = write.app_id.as_str();
        if !self.apps.contains_key(app_id.as_bytes())? {
            return Ok(Some(BulkOutcome::AppNotFound));
        }
        if let OverrideAction::Link { channel, version } = &write.action {
            if let Some(channel) = channel {
                if !self
                    .channels
                    .contains_key(keys::app_scoped(app_id, channel))?
                {
                    return Ok(Some(BulkOutcome::ChannelNotFound));
                }
            }
            if let Some(version) = version {
                if !self
                    .bundles
                    .contains_key(keys::app_scoped(app_id, version))?
                {
                    return Ok(Some(BulkOutcome::VersionNotFound));
                }
            }
        }
        Ok(None)
    }

    /// The app's bundle ids by version name (see [`BundleIds`]).
    fn bundle_ids(&self, app_id: &str) -> StoreResult<Arc<HashMap<String, u64>>> {
        /// The leading field of a `Bundle`: bincode decodes a prefix of the record without
        /// reading (or allocating) the rest.
        #[derive(Serialize, Deserialize)]
        struct BundleId {
            id: u64,
        }
        // A bundle's record read as this prefix: its format, and `id` stays its first field.
        impl Record for BundleId {
            const FORMAT: u8 = <Bundle as Record>::FORMAT;
        }
        let cache = &self.bundle_ids;
        if let Some(ids) = cache
            .apps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(app_id)
        {
            return Ok(ids.clone());
        }
        let generation = cache.generation.load(Ordering::SeqCst);
        let mut ids = HashMap::new();
        for entry in self.app_entries(&self.bundles, app_id) {
            let (key, value) = entry?;
            let (_, version) =
                keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("bundles"))?;
            let bundle: BundleId = decode("bundles", &value)?;
            ids.insert(version.to_owned(), bundle.id);
        }
        let ids = Arc::new(ids);
        let mut apps = cache.apps.write().unwrap_or_else(|e| e.into_inner());
        if cache.generation.load(Ordering::SeqCst) == generation {
            apps.insert(app_id.to_owned(), ids.clone());
        }
        Ok(ids)
    }

    /// Called after bundles change (under the exclusive registry lock).
    fn forget_bundle_ids(&self) {
        let mut apps = self
            .bundle_ids
            .apps
            .write()
            .unwrap_or_else(|e| e.into_inner());
        self.bundle_ids.generation.fetch_add(1, Ordering::SeqCst);
        apps.clear();
    }

    /// Adds overrides and the bundle id (from the app's cached map) to device records.
    fn entries(
        &self,
        app_id: &str,
        rows: Vec<(String, DeviceRecord)>,
    ) -> StoreResult<Vec<DeviceEntry>> {
        let bundle_ids = self.bundle_ids(app_id)?;
        // Most apps have few overrides or none: one probe saves a lookup per row.
        let app_has_overrides = self.overrides.range(app_range(app_id)).next().is_some();
        // A loop, not `collect`: collecting `Result`s loses the size hint, and growing the
        // vector copied every entry several times (callgrind).
        let mut entries = Vec::with_capacity(rows.len());
        for (device_id, record) in rows {
            let bundle_id = record
                .report
                .version_name
                .as_ref()
                .and_then(|name| bundle_ids.get(name).copied());
            let overrides = if app_has_overrides {
                self.overrides_of(app_id, &device_id)?
            } else {
                Overrides::default()
            };
            entries.push(DeviceEntry {
                device: Device {
                    app_id: app_id.to_owned(),
                    device_id,
                    updated_at: record.updated_at,
                    report: record.report,
                },
                overrides,
                bundle_id,
            });
        }
        Ok(entries)
    }

    /// Takes candidate rows in list order until `limit + 1` match the query, or until
    /// `max_examined` rows were examined: then the rows found so far are the page, and the cursor
    /// at the last row examined is where the next page starts.
    fn collect_rows(
        &self,
        app_id: &str,
        candidates: impl Iterator<Item = StoreResult<(String, DeviceRecord)>>,
        query: &DeviceListQuery,
    ) -> StoreResult<(Rows, Option<Cursor>)> {
        let filter = &query.filter;
        let mut rows = Vec::with_capacity(query.limit + 1);
        let mut examined = 0;
        for candidate in candidates {
            let (device_id, record) = candidate?;
            examined += 1;
            let mut wanted = query
                .updated_after
                .is_none_or(|after| record.updated_at > after);
            if wanted {
                let overrides = if filter.needs_overrides() {
                    self.overrides_of(app_id, &device_id)?
                } else {
                    Overrides::default()
                };
                wanted = filter.matches(&record.report, &overrides);
            }
            if wanted {
                rows.push((device_id, record));
                if rows.len() > query.limit {
                    break;
                }
            } else if examined >= query.max_examined {
                let resume = Cursor {
                    updated_at: record.updated_at,
                    device_id,
                };
                return Ok((rows, Some(resume)));
            }
        }
        Ok((rows, None))
    }

    /// The device records that time-index entries point at, in the index's order.
    fn records_from_time_index<'a>(
        &'a self,
        index: impl Iterator<Item = sled::Result<(IVec, IVec)>> + 'a,
        app_id: &'a str,
    ) -> impl Iterator<Item = StoreResult<(String, DeviceRecord)>> + 'a {
        index.filter_map(move |entry| {
            let read = || -> StoreResult<Option<(String, DeviceRecord)>> {
                let (key, _) = entry?;
                let (_, updated_at, device_id) =
                    keys::split_device_time(&key).ok_or_else(|| corrupt_key("devices_by_time"))?;
                let Some(bytes) = self.devices.get(keys::app_scoped(app_id, device_id))? else {
                    log::warn!("time index entry without a device: {app_id}/{device_id}");
                    return Ok(None);
                };
                let record: DeviceRecord = decode("devices", &bytes)?;
                if record.updated_at != updated_at {
                    log::warn!("stale time index entry: {app_id}/{device_id}");
                    return Ok(None);
                }
                Ok(Some((device_id.to_owned(), record)))
            };
            read().transpose()
        })
    }

    /// Default order: a range scan of the primary tree from the cursor's device id.
    fn rows_by_device_id(
        &self,
        app_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<(Rows, Option<Cursor>)> {
        let (start, end) = app_range(app_id);
        let start = match &query.after {
            Some(cursor) => Bound::Excluded(keys::app_scoped(app_id, &cursor.device_id)),
            None => start,
        };
        let candidates = self.devices.range((start, end)).map(|entry| {
            let (key, value) = entry?;
            let (_, device_id) =
                keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("devices"))?;
            let record: DeviceRecord = decode("devices", &value)?;
            Ok((device_id.to_owned(), record))
        });
        self.collect_rows(app_id, candidates, query)
    }

    /// Filters on overrides (`channel`, `has_override=true`) read their candidates from the app's
    /// overrides (usually far fewer than its devices) instead of scanning every device; `None`
    /// when the app has more than `OVERRIDE_CANDIDATES` of them, to scan instead.
    fn rows_from_overrides(
        &self,
        app_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<Option<Rows>> {
        let filter = &query.filter;
        let mut candidates: Rows = Vec::new();
        for (seen, entry) in self.overrides.range(app_range(app_id)).enumerate() {
            if seen >= OVERRIDE_CANDIDATES {
                return Ok(None);
            }
            let (key, value) = entry?;
            let overrides: Overrides = decode("overrides", &value)?;
            if overrides.is_empty()
                || filter
                    .channel
                    .as_ref()
                    .is_some_and(|c| overrides.channel.as_ref() != Some(c))
            {
                continue;
            }
            // An override of a device that never checked in lists nothing.
            let Some(bytes) = self.devices.get(&key)? else {
                continue;
            };
            let record: DeviceRecord = decode("devices", &bytes)?;
            let recent = query
                .updated_after
                .is_none_or(|after| record.updated_at > after);
            if recent && filter.matches(&record.report, &overrides) {
                let (_, device_id) =
                    keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("overrides"))?;
                candidates.push((device_id.to_owned(), record));
            }
        }
        Ok(Some(page_of_candidates(candidates, query)))
    }

    /// A `custom_id` filter reads the app's index of that custom id instead of scanning devices.
    fn rows_from_custom_id(
        &self,
        app_id: &str,
        custom_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<Rows> {
        let mut candidates: Rows = Vec::new();
        for key in self
            .devices_by_custom_id
            .scan_prefix(keys::custom_id_prefix(app_id, custom_id))
            .keys()
        {
            let key = key?;
            let (_, _, device_id) =
                keys::split_custom_id(&key).ok_or_else(|| corrupt_key("devices_by_custom_id"))?;
            let Some(bytes) = self.devices.get(keys::app_scoped(app_id, device_id))? else {
                continue;
            };
            let record: DeviceRecord = decode("devices", &bytes)?;
            let overrides = if query.filter.needs_overrides() {
                self.overrides_of(app_id, device_id)?
            } else {
                Overrides::default()
            };
            let recent = query
                .updated_after
                .is_none_or(|after| record.updated_at > after);
            if recent && query.filter.matches(&record.report, &overrides) {
                candidates.push((device_id.to_owned(), record));
            }
        }
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(page_of_candidates(candidates, query))
    }

    /// Time orders: a range scan of the time index, bounded by the cursor and `updated_after`.
    fn rows_by_time(
        &self,
        app_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<(Rows, Option<Cursor>)> {
        let (app_start, app_end) = app_range(app_id);
        // Strictly later than `updated_after` is at or after the floor of the next microsecond.
        let floor = match query.updated_after {
            None => None,
            Some(after) => match after.checked_add(1) {
                Some(next) => Some(keys::device_time_floor(app_id, next)),
                None => return Ok((Vec::new(), None)),
            },
        };
        let cursor_key = query
            .after
            .as_ref()
            .map(|c| keys::device_time(app_id, c.updated_at, &c.device_id));
        match query.order {
            DeviceOrder::UpdatedAsc => {
                let start = match (cursor_key, floor) {
                    (Some(cursor), Some(floor)) if floor > cursor => Bound::Included(floor),
                    (Some(cursor), _) => Bound::Excluded(cursor),
                    (None, Some(floor)) => Bound::Included(floor),
                    (None, None) => app_start,
                };
                let index = self.devices_by_time.range((start, app_end));
                self.collect_rows(app_id, self.records_from_time_index(index, app_id), query)
            }
            DeviceOrder::UpdatedDesc => {
                let end = cursor_key.map_or(app_end, Bound::Excluded);
                let start = floor.map_or(app_start, Bound::Included);
                if matches!((&start, &end), (Bound::Included(s), Bound::Excluded(e)) if s >= e) {
                    return Ok((Vec::new(), None));
                }
                let index = self.devices_by_time.range((start, end)).rev();
                self.collect_rows(app_id, self.records_from_time_index(index, app_id), query)
            }
            DeviceOrder::DeviceId => self.rows_by_device_id(app_id, query),
        }
    }

    /// Removes every key of one app from a tree, in one atomic batch.
    fn remove_app_keys(&self, tree: &Tree, app_id: &str) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        for key in tree.range(app_range(app_id)).keys() {
            batch.remove(key?);
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    fn remove_app_devices(&self, app_id: &str) -> StoreResult<usize> {
        let mut removed = 0;
        loop {
            let mut chunk = Vec::with_capacity(DELETE_CHUNK);
            for entry in self.devices.range(app_range(app_id)).take(DELETE_CHUNK) {
                let (key, value) = entry?;
                let (_, device_id) =
                    keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("devices"))?;
                let record: DeviceRecord = decode("devices", &value)?;
                chunk.push((
                    key.clone(),
                    keys::device_time(app_id, record.updated_at, device_id),
                ));
            }
            if chunk.is_empty() {
                break;
            }
            (&self.devices, &self.devices_by_time).transaction(|(devices, by_time)| {
                for (device_key, time_key) in &chunk {
                    devices.remove(device_key)?;
                    by_time.remove(time_key.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
            removed += chunk.len();
        }
        // Index entries whose record is gone (none unless an earlier fault left some).
        self.remove_app_keys(&self.devices_by_time, app_id)?;
        Ok(removed)
    }
}

impl SledStore {
    /// Deletes up to `limit` devices of one app last seen before `cutoff`, oldest first: a range
    /// scan of the time index that stops at the cutoff. Each chunk of devices goes in one
    /// transaction with their index entries and overrides; a device that checked in since the
    /// scan is left alone. Returns (removed, visited).
    fn expire_app_devices(
        &self,
        app_id: &str,
        cutoff: Micros,
        limit: usize,
        change: Change,
    ) -> StoreResult<(usize, usize)> {
        /// Devices per transaction: amortises its cost, keeps each one short.
        const CHUNK: usize = 32;
        let start = keys::device_time_floor(app_id, 0);
        let end = keys::device_time_floor(app_id, cutoff);
        let mut expired: Vec<(IVec, Micros, String)> = Vec::new();
        for entry in self.devices_by_time.range(start..end).keys().take(limit) {
            let time_key = entry?;
            let (_, updated_at, device_id) =
                keys::split_device_time(&time_key).ok_or_else(|| corrupt_key("devices_by_time"))?;
            let device_id = device_id.to_owned();
            expired.push((time_key, updated_at, device_id));
        }
        let mut removed = 0;
        for chunk in expired.chunks(CHUNK) {
            let seqs = self.audit_seqs(chunk.len())?;
            removed += (
                &self.devices,
                &self.devices_by_time,
                &self.overrides,
                &self.overrides_by_time,
                &self.audit,
                &self.audit_by_device,
                &self.device_counts,
                &self.devices_by_custom_id,
            )
                .transaction(
                    |(
                        devices,
                        by_time,
                        overrides,
                        overrides_by_time,
                        audit,
                        audit_by_device,
                        counts,
                        custom_ids,
                    )| {
                        let mut gone = 0;
                        for (i, (time_key, updated_at, device_id)) in chunk.iter().enumerate() {
                            let device_key = keys::app_scoped(app_id, device_id);
                            by_time.remove(time_key)?;
                            if let Some(bytes) = devices.get(&device_key)? {
                                let record: DeviceRecord =
                                    decode("devices", &bytes).map_err(abort)?;
                                if record.updated_at != *updated_at {
                                    // Checked in since: this entry was stale, the device lives on.
                                    continue;
                                }
                                devices.remove(device_key.as_slice())?;
                                apply_counts(
                                    counts,
                                    &count_deltas(app_id, device_id, Some(&record), None),
                                )?;
                                index_custom_id(
                                    custom_ids,
                                    app_id,
                                    device_id,
                                    Some(&record),
                                    None,
                                )?;
                            }
                            if let Some(bytes) = overrides.remove(device_key.as_slice())? {
                                let old: Overrides = decode("overrides", &bytes).map_err(abort)?;
                                overrides_by_time
                                    .remove(keys::device_time(app_id, old.set_at, device_id))?;
                                let entry = Self::audit_entry(
                                    device_id,
                                    seqs[i],
                                    change,
                                    AuditAction::Expire,
                                    &old,
                                    &Overrides::default(),
                                );
                                write_audit(audit, audit_by_device, app_id, &entry)?;
                            }
                            gone += 1;
                        }
                        Ok(gone)
                    },
                )?;
        }
        self.spend(expired.len() as u64)?;
        Ok((removed, expired.len()))
    }

    /// Expires overrides set before `cutoff` for devices that never checked in. An override of a
    /// device that exists lives as long as the device: its time entry is dropped (the device's
    /// own expiry removes it), so each entry is visited once. Returns (removed, visited).
    fn expire_app_overrides(
        &self,
        app_id: &str,
        cutoff: Micros,
        limit: usize,
        change: Change,
    ) -> StoreResult<(usize, usize)> {
        let start = keys::device_time_floor(app_id, 0);
        let end = keys::device_time_floor(app_id, cutoff);
        let mut removed = 0;
        let mut visited = 0;
        for entry in self.overrides_by_time.range(start..end).keys().take(limit) {
            let time_key = entry?;
            visited += 1;
            let (_, set_at, device_id) = keys::split_device_time(&time_key)
                .ok_or_else(|| corrupt_key("overrides_by_time"))?;
            let device_key = keys::app_scoped(app_id, device_id);
            let seq = self.audit_seqs(1)?[0];
            let gone = (
                &self.devices,
                &self.overrides,
                &self.overrides_by_time,
                &self.audit,
                &self.audit_by_device,
            )
                .transaction(
                    |(devices, overrides, by_time, audit, audit_by_device)| {
                        by_time.remove(&time_key)?;
                        if devices.get(&device_key)?.is_some() {
                            return Ok(false);
                        }
                        let Some(bytes) = overrides.get(&device_key)? else {
                            return Ok(false);
                        };
                        let current: Overrides = decode("overrides", &bytes).map_err(abort)?;
                        if current.set_at != set_at {
                            return Ok(false);
                        }
                        overrides.remove(device_key.as_slice())?;
                        let entry = Self::audit_entry(
                            device_id,
                            seq,
                            change,
                            AuditAction::Expire,
                            &current,
                            &Overrides::default(),
                        );
                        write_audit(audit, audit_by_device, app_id, &entry)?;
                        Ok(true)
                    },
                )?;
            if gone {
                removed += 1;
            }
        }
        Ok((removed, visited))
    }
}

/// The fields `device_counts` counts devices by (see keys.rs).
mod dimension {
    pub const TOTAL: u8 = 0;
    pub const PLATFORM: u8 = 1;
    pub const VERSION_NAME: u8 = 2;
    pub const VERSION_BUILD: u8 = 3;
    pub const PROD: u8 = 4;
    pub const EMULATOR: u8 = 5;
    /// The day (u32 BE, days since 1970) of `updated_at`.
    pub const SEEN_DAY: u8 = 6;
}
const COUNTER_SHARDS: u32 = 16;
const DAY_MICROS: u64 = 86_400_000_000;

fn counter_shard(device_id: &str) -> u8 {
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = device_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (hash % COUNTER_SHARDS) as u8
}

/// The (dimension, value) pairs a device is counted under.
fn counted(record: &DeviceRecord) -> [(u8, Vec<u8>); 7] {
    let report = &record.report;
    let flag = |on: bool| {
        if on {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        }
    };
    [
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
    ]
}

/// The `touch_interval` rule: a device that reports nothing new and was written recently is not
/// written again.
fn check_in_changes_nothing(old: &DeviceRecord, check_in: &CheckIn) -> bool {
    old.report.is_unchanged_by(&check_in.report)
        && check_in.now.saturating_sub(old.updated_at) < check_in.touch_interval
}

/// Counter changes when a device goes from `old` to `new` (`None`: absent).
fn count_deltas(
    app_id: &str,
    device_id: &str,
    old: Option<&DeviceRecord>,
    new: Option<&DeviceRecord>,
) -> Vec<(Vec<u8>, i64)> {
    let shard = counter_shard(device_id);
    let (old, new) = (old.map(counted), new.map(counted));
    let mut deltas = Vec::new();
    for i in 0..7 {
        let before = old.as_ref().map(|o| &o[i]);
        let after = new.as_ref().map(|n| &n[i]);
        if before == after {
            continue;
        }
        if let Some((dimension, value)) = before {
            deltas.push((keys::device_count(app_id, *dimension, shard, value), -1));
        }
        if let Some((dimension, value)) = after {
            deltas.push((keys::device_count(app_id, *dimension, shard, value), 1));
        }
    }
    deltas
}

fn read_count(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// Applies counter changes inside a transaction.
fn apply_counts(
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

/// Orders candidate rows (given in device id order) as the query asks, and takes the page after
/// its cursor: `limit + 1` rows at most.
fn page_of_candidates(mut candidates: Rows, query: &DeviceListQuery) -> Rows {
    let position = |row: &(String, DeviceRecord)| (row.1.updated_at, row.0.clone());
    match query.order {
        DeviceOrder::DeviceId => {}
        DeviceOrder::UpdatedAsc => candidates.sort_by_key(position),
        DeviceOrder::UpdatedDesc => candidates.sort_by_key(|row| std::cmp::Reverse(position(row))),
    }
    let after_cursor = |row: &(String, DeviceRecord)| match (&query.after, query.order) {
        (None, _) => true,
        (Some(c), DeviceOrder::DeviceId) => row.0 > c.device_id,
        (Some(c), DeviceOrder::UpdatedAsc) => position(row) > (c.updated_at, c.device_id.clone()),
        (Some(c), DeviceOrder::UpdatedDesc) => position(row) < (c.updated_at, c.device_id.clone()),
    };
    candidates
        .into_iter()
        .filter(after_cursor)
        .take(query.limit + 1)
        .collect()
}

/// Keeps `devices_by_custom_id` in step when a device goes from `old` to `new` (`None`: absent),
/// inside a transaction. Empty custom ids are not indexed.
fn index_custom_id(
    index: &TransactionalTree,
    app_id: &str,
    device_id: &str,
    old: Option<&DeviceRecord>,
    new: Option<&DeviceRecord>,
) -> Result<(), UnabortableTransactionError> {
    let old = old
        .map(|r| r.report.custom_id.as_str())
        .filter(|c| !c.is_empty());
    let new = new
        .map(|r| r.report.custom_id.as_str())
        .filter(|c| !c.is_empty());
    if old != new {
        if let Some(custom_id) = old {
            index.remove(keys::custom_id(app_id, custom_id, device_id))?;
        }
        if let Some(custom_id) = new {
            index.insert(keys::custom_id(app_id, custom_id, device_id), &[] as &[u8])?;
        }
    }
    Ok(())
}

/// Appends an audit entry, with its per-device index entry, inside a transaction.
fn write_audit(
    audit: &TransactionalTree,
    audit_by_device: &TransactionalTree,
    app_id: &str,
    entry: &AuditEntry,
) -> Result<(), UnabortableTransactionError> {
    audit.insert(
        keys::audit(app_id, entry.at, entry.seq),
        encode_value(entry),
    )?;
    audit_by_device.insert(
        keys::audit_by_device(app_id, &entry.device_id, entry.at, entry.seq),
        &[] as &[u8],
    )?;
    Ok(())
}

impl SledStore {
    /// A check-in's outcome when it writes nothing (an unknown app, or a device reporting nothing
    /// new within `touch_interval`), from one read; `None` when it would write.
    fn settled_check_in(&self, key: &[u8], check_in: &CheckIn) -> StoreResult<Option<Upsert>> {
        if !self.apps.contains_key(check_in.app_id.as_bytes())? {
            return Ok(Some(Upsert::AppNotFound));
        }
        if let Some(bytes) = self.devices.get(key)? {
            let old: DeviceRecord = decode("devices", &bytes)?;
            if check_in_changes_nothing(&old, check_in) {
                return Ok(Some(Upsert::Unchanged));
            }
        }
        Ok(None)
    }

    /// Writes the check-ins at `indexes`, in that order, in one transaction, each judged inside
    /// it; one outcome each. The caller holds the registry lock.
    fn write_check_ins_at(
        &self,
        check_ins: &[CheckIn],
        indexes: &[usize],
    ) -> StoreResult<Vec<Upsert>> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        // An app may have been deleted since the check-ins were settled.
        let mut apps_found: HashMap<&str, bool> = HashMap::new();
        for index in indexes {
            let app_id = check_ins[*index].app_id.as_str();
            if !apps_found.contains_key(app_id) {
                apps_found.insert(app_id, self.apps.contains_key(app_id.as_bytes())?);
            }
        }
        let writes: Vec<(usize, Vec<u8>)> = indexes
            .iter()
            .map(|i| {
                (
                    *i,
                    keys::app_scoped(&check_ins[*i].app_id, &check_ins[*i].device_id),
                )
            })
            .collect();
        let written = (
            &self.devices,
            &self.devices_by_time,
            &self.device_counts,
            &self.devices_by_custom_id,
        )
            .transaction(|(devices, by_time, counts, custom_ids)| {
                let mut written = Vec::with_capacity(writes.len());
                for (index, key) in &writes {
                    let check_in = &check_ins[*index];
                    let (app_id, device_id) = (&check_in.app_id, &check_in.device_id);
                    if !apps_found[app_id.as_str()] {
                        written.push(Upsert::AppNotFound);
                        continue;
                    }
                    let old: Option<DeviceRecord> = match devices.get(key)? {
                        None => None,
                        Some(bytes) => Some(decode("devices", &bytes).map_err(abort)?),
                    };
                    let outcome = match &old {
                        None => Upsert::Created,
                        // Nothing new since its last write (by an earlier check-in of the batch,
                        // say).
                        Some(old) if check_in_changes_nothing(old, check_in) => {
                            written.push(Upsert::Unchanged);
                            continue;
                        }
                        Some(old) => {
                            by_time.remove(keys::device_time(app_id, old.updated_at, device_id))?;
                            if old.report.is_unchanged_by(&check_in.report) {
                                Upsert::Touched
                            } else {
                                Upsert::Updated
                            }
                        }
                    };
                    let report = match &old {
                        None => check_in.report.clone(),
                        Some(old) => old.report.updated_with(&check_in.report),
                    };
                    let new_record = DeviceRecord {
                        updated_at: check_in.now,
                        report,
                    };
                    devices.insert(key.as_slice(), encode_value(&new_record))?;
                    by_time.insert(
                        keys::device_time(app_id, check_in.now, device_id),
                        &[] as &[u8],
                    )?;
                    apply_counts(
                        counts,
                        &count_deltas(app_id, device_id, old.as_ref(), Some(&new_record)),
                    )?;
                    index_custom_id(
                        custom_ids,
                        app_id,
                        device_id,
                        old.as_ref(),
                        Some(&new_record),
                    )?;
                    written.push(outcome);
                }
                Ok(written)
            })?;
        let changed = written
            .iter()
            .filter(|o| !matches!(o, Upsert::Unchanged | Upsert::AppNotFound))
            .count();
        self.spend(changed as u64)?;
        Ok(written)
    }

    /// Numbers for `n` audit entries, taken before a transaction: sled's id generator must not
    /// be called inside one (it can persist its counter, which deadlocks against the
    /// transaction's own locks).
    fn audit_seqs(&self, n: usize) -> StoreResult<Vec<u64>> {
        (0..n).map(|_| Ok(self.db.generate_id()?)).collect()
    }

    /// An audit entry for a change.
    fn audit_entry(
        device_id: &str,
        seq: u64,
        change: Change,
        action: AuditAction,
        before: &Overrides,
        after: &Overrides,
    ) -> AuditEntry {
        AuditEntry {
            at: change.at,
            seq,
            device_id: device_id.to_owned(),
            actor: change.actor,
            action,
            before: before.clone(),
            after: after.clone(),
        }
    }

    fn audit_page(
        &self,
        app_id: &str,
        device_id: Option<&str>,
        before: Option<(Micros, u64)>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        let mut entries: Vec<AuditEntry> = Vec::with_capacity(limit + 1);
        match device_id {
            None => {
                let (start, app_end) = app_range(app_id);
                let end = before.map_or(app_end, |(at, seq)| {
                    Bound::Excluded(keys::audit(app_id, at, seq))
                });
                for entry in self
                    .audit
                    .range((start, end))
                    .values()
                    .rev()
                    .take(limit + 1)
                {
                    entries.push(decode("audit", &entry?)?);
                }
            }
            Some(device_id) => {
                let prefix = keys::audit_device_prefix(app_id, device_id);
                let end = match before {
                    Some((at, seq)) => {
                        Bound::Excluded(keys::audit_by_device(app_id, device_id, at, seq))
                    }
                    None => keys::prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded),
                };
                for key in self
                    .audit_by_device
                    .range((Bound::Included(prefix), end))
                    .keys()
                    .rev()
                {
                    let key = key?;
                    let (_, _, at, seq) = keys::split_audit_by_device(&key)
                        .ok_or_else(|| corrupt_key("audit_by_device"))?;
                    // An index entry whose entry expired in between is passed over.
                    if let Some(value) = self.audit.get(keys::audit(app_id, at, seq))? {
                        entries.push(decode("audit", &value)?);
                        if entries.len() > limit {
                            break;
                        }
                    }
                }
            }
        }
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next = if more {
            entries.last().map(|e| (e.at, e.seq))
        } else {
            None
        };
        Ok(AuditPage { entries, next })
    }

    fn expire_audit(&self, cutoff: Micros, limit: usize) -> StoreResult<(usize, bool)> {
        let mut removed = 0;
        for app_id in self.apps.iter().keys() {
            let app_id = app_id?;
            let app_id = std::str::from_utf8(&app_id)
                .map_err(|_| corrupt_key("apps"))?
                .to_owned();
            let start = keys::audit(&app_id, 0, 0);
            let end = keys::audit(&app_id, cutoff, 0);
            let mut doomed: Vec<(IVec, Vec<u8>)> = Vec::new();
            for entry in self.audit.range(start..end).take(limit - removed) {
                let (key, value) = entry?;
                let audit: AuditEntry = decode("audit", &value)?;
                doomed.push((
                    key,
                    keys::audit_by_device(&app_id, &audit.device_id, audit.at, audit.seq),
                ));
            }
            for chunk in doomed.chunks(256) {
                (&self.audit, &self.audit_by_device).transaction(|(audit, by_device)| {
                    for (key, device_key) in chunk {
                        audit.remove(key)?;
                        by_device.remove(device_key.as_slice())?;
                    }
                    Ok::<_, ConflictableTransactionError<StoreError>>(())
                })?;
            }
            removed += doomed.len();
            if removed >= limit {
                return Ok((removed, true));
            }
        }
        Ok((removed, false))
    }
}

/// Counts (and describes) the entries of an index that no record expects; sorts `expected`.
fn stale_entries(
    index: &Tree,
    expected: &mut [Vec<u8>],
    report: &mut CheckReport,
    describe: impl Fn(&[u8]) -> String,
) -> StoreResult<()> {
    expected.sort_unstable();
    for key in index.iter().keys() {
        let key = key?;
        if expected
            .binary_search_by(|k| k.as_slice().cmp(&key))
            .is_err()
        {
            report.stale_index_entries += 1;
            report.note(describe(&key));
        }
    }
    Ok(())
}

/// How many problems a check describes in full.
const CHECK_EXAMPLES: usize = 20;

impl CheckReport {
    fn note(&mut self, problem: String) {
        if self.examples.len() < CHECK_EXAMPLES {
            self.examples.push(problem);
        }
    }
}

/// An app-scoped record that passed the checks common to all: its key splits, its app exists,
/// its value decodes.
struct Scoped<T> {
    app_id: String,
    name: String,
    value: T,
}

impl SledStore {
    /// The checks every app-scoped record gets; `None` (with the problem noted) when it fails one.
    fn check_scoped<'t, T: Record>(
        &self,
        report: &mut CheckReport,
        orphans: &mut Vec<(&'t Tree, IVec)>,
        (tree, what): (&'t Tree, &'static str),
        (key, value): (IVec, IVec),
    ) -> StoreResult<Option<Scoped<T>>> {
        let Some((app_id, name)) = keys::split_app_scoped(&key) else {
            report.corrupt_records += 1;
            report.note(format!("{what}: malformed key {key:?}"));
            return Ok(None);
        };
        if !self.apps.contains_key(app_id.as_bytes())? {
            report.orphan_records += 1;
            report.note(format!("{what} {app_id}/{name} of a missing app"));
            orphans.push((tree, key.clone()));
            return Ok(None);
        }
        let Ok(value) = decode::<T>(what, &value) else {
            report.corrupt_records += 1;
            report.note(format!("{what} {app_id}/{name} does not decode"));
            return Ok(None);
        };
        Ok(Some(Scoped {
            app_id: app_id.to_owned(),
            name: name.to_owned(),
            value,
        }))
    }

    fn check_store(&self, repair: bool) -> StoreResult<CheckReport> {
        let _registry = self.exclusive();
        let mut report = CheckReport::default();
        let app_exists = |app_id: &str| self.apps.contains_key(app_id.as_bytes());
        let mut orphan_keys: Vec<(&Tree, IVec)> = Vec::new();

        // Primary -> index.
        let mut expected_times: Vec<Vec<u8>> = Vec::new();
        let mut expected_counts: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut expected_custom_ids: Vec<Vec<u8>> = Vec::new();
        for entry in self.devices.iter() {
            report.devices += 1;
            let Some(Scoped {
                app_id,
                name: device_id,
                value: record,
            }) = self.check_scoped::<DeviceRecord>(
                &mut report,
                &mut orphan_keys,
                (&self.devices, "device"),
                entry?,
            )?
            else {
                continue;
            };
            let (app_id, device_id) = (app_id.as_str(), device_id.as_str());
            for (key, delta) in count_deltas(app_id, device_id, None, Some(&record)) {
                *expected_counts.entry(key).or_default() += delta as u64;
            }
            if !record.report.custom_id.is_empty() {
                let key = keys::custom_id(app_id, &record.report.custom_id, device_id);
                if !self.devices_by_custom_id.contains_key(&key)? {
                    report.missing_index_entries += 1;
                    report.note(format!(
                        "device {app_id}/{device_id} is missing from the custom id index"
                    ));
                }
                expected_custom_ids.push(key);
            }
            let time_key = keys::device_time(app_id, record.updated_at, device_id);
            if !self.devices_by_time.contains_key(&time_key)? {
                report.missing_index_entries += 1;
                report.note(format!(
                    "device {app_id}/{device_id} has no time-index entry"
                ));
            }
            expected_times.push(time_key);
        }
        // Index -> primary.
        report.index_entries = self.devices_by_time.len();
        stale_entries(
            &self.devices_by_time,
            &mut expected_times,
            &mut report,
            |key| {
                let shown = keys::split_device_time(key)
                    .map(|(a, t, d)| format!("{a}/{d} at {t}"))
                    .unwrap_or_else(|| format!("{key:?}"));
                format!("time-index entry {shown} matches no device")
            },
        )?;
        // Overrides.
        let mut override_times: Vec<Vec<u8>> = Vec::new();
        for entry in self.overrides.iter() {
            let Some(Scoped {
                app_id,
                name: device_id,
                value: overrides,
            }) = self.check_scoped::<Overrides>(
                &mut report,
                &mut orphan_keys,
                (&self.overrides, "override"),
                entry?,
            )?
            else {
                continue;
            };
            let (app_id, device_id) = (app_id.as_str(), device_id.as_str());
            let key = keys::app_scoped(app_id, device_id);
            let channel_missing = match &overrides.channel {
                Some(name) => !self.channels.contains_key(keys::app_scoped(app_id, name))?,
                None => false,
            };
            let bundle_missing = match &overrides.version {
                Some(name) => !self.bundles.contains_key(keys::app_scoped(app_id, name))?,
                None => false,
            };
            if channel_missing || bundle_missing || overrides.is_empty() {
                report.dangling_overrides += 1;
                report.note(format!(
                    "override of {app_id}/{device_id} names a missing channel or bundle"
                ));
            }
            let time_key = keys::device_time(app_id, overrides.set_at, device_id);
            if !self.devices.contains_key(&key)?
                && !self.overrides_by_time.contains_key(&time_key)?
            {
                report.unexpirable_overrides += 1;
                report.note(format!(
                    "override of {app_id}/{device_id} would never expire"
                ));
            }
            override_times.push(time_key);
        }
        for (tree, name) in [(&self.channels, "channel"), (&self.bundles, "bundle")] {
            for key in tree.iter().keys() {
                let key = key?;
                match keys::split_app_scoped(&key) {
                    Some((app_id, item)) if !app_exists(app_id)? => {
                        report.orphan_records += 1;
                        report.note(format!("{name} {app_id}/{item} of a missing app"));
                        orphan_keys.push((tree, key.clone()));
                    }
                    Some(_) => {}
                    None => report.corrupt_records += 1,
                }
            }
        }

        // The custom id index against the records.
        stale_entries(
            &self.devices_by_custom_id,
            &mut expected_custom_ids,
            &mut report,
            |_| "custom id index entry matching no device".to_owned(),
        )?;

        // Device counters against a recount.
        let mut stored_counts = 0;
        for entry in self.device_counts.iter() {
            let (key, value) = entry?;
            stored_counts += 1;
            if expected_counts.get(key.as_ref()) != Some(&read_count(&value)) {
                report.wrong_counters += 1;
                report.note(format!("device counter {key:?} differs from a recount"));
            }
        }
        if stored_counts != expected_counts.len() {
            report.wrong_counters += expected_counts.len().saturating_sub(stored_counts).max(1);
            report.note("device counters are missing".into());
        }

        // The audit log: entries of existing apps, each with its per-device index entry.
        let mut expected_audit_index: Vec<Vec<u8>> = Vec::new();
        for entry in self.audit.iter() {
            let (key, value) = entry?;
            let Some((app_id, _, _)) = keys::split_audit(&key) else {
                report.corrupt_records += 1;
                continue;
            };
            if !app_exists(app_id)? {
                report.orphan_records += 1;
                report.note(format!("audit entry of a missing app {app_id}"));
                orphan_keys.push((&self.audit, key.clone()));
                continue;
            }
            let Ok(audit) = decode::<AuditEntry>("audit", &value) else {
                report.corrupt_records += 1;
                continue;
            };
            let index_key = keys::audit_by_device(app_id, &audit.device_id, audit.at, audit.seq);
            if !self.audit_by_device.contains_key(&index_key)? {
                report.missing_index_entries += 1;
                report.note(format!(
                    "audit entry of {app_id}/{} has no device index entry",
                    audit.device_id
                ));
            }
            expected_audit_index.push(index_key);
        }
        stale_entries(
            &self.audit_by_device,
            &mut expected_audit_index,
            &mut report,
            |_| "audit device index entry matching no entry".to_owned(),
        )?;

        if repair && !report.is_clean() {
            // The custom id index, rebuilt from the records.
            self.devices_by_custom_id.clear()?;
            for key in &expected_custom_ids {
                self.devices_by_custom_id
                    .insert(key.as_slice(), &[] as &[u8])?;
            }
            // The counters, recounted from the records.
            self.device_counts.clear()?;
            for (key, count) in &expected_counts {
                self.device_counts
                    .insert(key.as_slice(), &count.to_be_bytes())?;
            }
            // The audit's device index, rebuilt from its entries.
            self.audit_by_device.clear()?;
            for key in &expected_audit_index {
                self.audit_by_device.insert(key.as_slice(), &[] as &[u8])?;
            }
            // Drop what belongs to no app, then rebuild both time indexes from the records.
            for (tree, key) in &orphan_keys {
                tree.remove(key)?;
            }
            self.rebuild_time_index()?;
            self.rebuild_override_index(&override_times)?;
            self.remove_dangling_overrides()?;
            self.db.flush()?;
            report.repaired = true;
        }
        Ok(report)
    }

    fn rebuild_time_index(&self) -> StoreResult<()> {
        self.devices_by_time.clear()?;
        for entry in self.devices.iter() {
            let (key, value) = entry?;
            let (Some((app_id, device_id)), Ok(record)) = (
                keys::split_app_scoped(&key),
                decode::<DeviceRecord>("devices", &value),
            ) else {
                continue;
            };
            self.devices_by_time.insert(
                keys::device_time(app_id, record.updated_at, device_id),
                &[] as &[u8],
            )?;
        }
        Ok(())
    }

    fn rebuild_override_index(&self, override_times: &[Vec<u8>]) -> StoreResult<()> {
        self.overrides_by_time.clear()?;
        for key in override_times {
            self.overrides_by_time
                .insert(key.as_slice(), &[] as &[u8])?;
        }
        Ok(())
    }

    /// Clears override fields naming a channel or bundle that no longer exists.
    fn remove_dangling_overrides(&self) -> StoreResult<()> {
        for entry in self.overrides.iter() {
            let (key, value) = entry?;
            let (Some((app_id, device_id)), Ok(mut overrides)) = (
                keys::split_app_scoped(&key),
                decode::<Overrides>("overrides", &value),
            ) else {
                continue;
            };
            if let Some(name) = &overrides.channel {
                if !self.channels.contains_key(keys::app_scoped(app_id, name))? {
                    overrides.channel = None;
                }
            }
            if let Some(name) = &overrides.version {
                if !self.bundles.contains_key(keys::app_scoped(app_id, name))? {
                    overrides.version = None;
                }
            }
            if overrides.is_empty() {
                self.overrides.remove(&key)?;
                self.overrides_by_time.remove(keys::device_time(
                    app_id,
                    overrides.set_at,
                    device_id,
                ))?;
            } else {
                self.overrides.insert(&key, encode_value(&overrides))?;
            }
        }
        Ok(())
    }
}

impl Registry for SledStore {
    fn create_app(&self, app_id: &str, name: &str, now: Micros) -> StoreResult<CreateApp> {
        let _registry = self.exclusive();
        let app = App {
            app_id: app_id.to_owned(),
            name: name.to_owned(),
            created_at: now,
        };
        let record = AppRecord {
            app: app.clone(),
            next_channel_id: 1,
            next_bundle_id: 1,
        };
        let swapped = self.apps.compare_and_swap(
            app_id.as_bytes(),
            None as Option<&[u8]>,
            Some(encode_value(&record)),
        )?;
        Ok(match swapped {
            Ok(()) => CreateApp::Created(app),
            Err(_) => CreateApp::AlreadyExists,
        })
    }

    fn app_exists(&self, app_id: &str) -> StoreResult<bool> {
        Ok(self.apps.contains_key(app_id.as_bytes())?)
    }

    fn app(&self, app_id: &str) -> StoreResult<Option<App>> {
        Ok(self.app_record(app_id)?.map(|record| record.app))
    }

    fn apps(&self) -> StoreResult<Vec<App>> {
        self.apps
            .iter()
            .values()
            .map(|value| decode::<AppRecord>("apps", &value?).map(|record| record.app))
            .collect()
    }

    fn delete_app(&self, app_id: &str) -> StoreResult<bool> {
        let _registry = self.exclusive();
        if !self.apps.contains_key(app_id.as_bytes())? {
            return Ok(false);
        }
        // Children first and the app last: a crash midway leaves an app that a second DELETE
        // finishes removing, never orphans of a vanished app.
        let devices = self.remove_app_devices(app_id)?;
        self.remove_app_keys(&self.overrides, app_id)?;
        self.remove_app_keys(&self.overrides_by_time, app_id)?;
        self.remove_app_keys(&self.audit, app_id)?;
        self.remove_app_keys(&self.audit_by_device, app_id)?;
        self.remove_app_keys(&self.device_counts, app_id)?;
        self.remove_app_keys(&self.devices_by_custom_id, app_id)?;
        self.remove_app_keys(&self.channels, app_id)?;
        self.remove_app_keys(&self.bundles, app_id)?;
        self.forget_bundle_ids();
        self.apps.remove(app_id.as_bytes())?;
        log::info!("deleted app {app_id} with {devices} devices");
        Ok(true)
    }

    fn upsert_channel(
        &self,
        app_id: &str,
        name: &str,
        patch: &ChannelPatch,
        now: Micros,
    ) -> StoreResult<UpsertChannel> {
        let _registry = self.exclusive();
        let Some(mut app) = self.app_record(app_id)? else {
            return Ok(UpsertChannel::AppNotFound);
        };
        if let Some(Some(version)) = &patch.version {
            if !self
                .bundles
                .contains_key(keys::app_scoped(app_id, version))?
            {
                return Ok(UpsertChannel::VersionNotFound);
            }
        }
        let (mut channel, created) = match self.channel(app_id, name)? {
            Some(channel) => (channel, false),
            None => {
                let id = app.next_channel_id;
                app.next_channel_id += 1;
                (Channel::with_defaults(id, app_id, name, now), true)
            }
        };
        patch.apply(&mut channel);
        channel.updated_at = now;

        let mut demoted = Vec::new();
        if channel.public {
            for other in self.channels(app_id)? {
                if other.name != channel.name && other.public && other.overlaps(&channel) {
                    let mut other = other;
                    other.public = false;
                    other.updated_at = now;
                    demoted.push(other);
                }
            }
        }
        (&self.apps, &self.channels).transaction(|(apps, channels)| {
            if created {
                apps.insert(app_id.as_bytes(), encode_value(&app))?;
            }
            for other in demoted.iter().chain(std::iter::once(&channel)) {
                channels.insert(keys::app_scoped(app_id, &other.name), encode_value(other))?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(if created {
            UpsertChannel::Created(channel)
        } else {
            UpsertChannel::Updated(channel)
        })
    }

    fn channel(&self, app_id: &str, name: &str) -> StoreResult<Option<Channel>> {
        self.channels
            .get(keys::app_scoped(app_id, name))?
            .map(|bytes| decode("channels", &bytes))
            .transpose()
    }

    fn channels(&self, app_id: &str) -> StoreResult<Vec<Channel>> {
        self.app_values(&self.channels, "channels", app_id)
    }

    fn delete_channel(
        &self,
        app_id: &str,
        name: &str,
        change: Change,
    ) -> StoreResult<DeleteOutcome> {
        let _registry = self.exclusive();
        let channel_key = keys::app_scoped(app_id, name);
        if !self.channels.contains_key(&channel_key)? {
            return Ok(DeleteOutcome::NotFound);
        }
        let mut changed: Vec<(IVec, Overrides, Overrides)> = Vec::new();
        for entry in self.app_entries(&self.overrides, app_id) {
            let (key, value) = entry?;
            let before: Overrides = decode("overrides", &value)?;
            if before.channel.as_deref() == Some(name) {
                let mut after = before.clone();
                after.channel = None;
                changed.push((key, before, after));
            }
        }
        let seqs = self.audit_seqs(changed.len())?;
        (
            &self.channels,
            &self.overrides,
            &self.overrides_by_time,
            &self.audit,
            &self.audit_by_device,
        )
            .transaction(|(channels, overrides, by_time, audit, audit_by_device)| {
                channels.remove(channel_key.as_slice())?;
                for (i, (key, before, remaining)) in changed.iter().enumerate() {
                    let (_, device_id) = keys::split_app_scoped(key)
                        .ok_or_else(|| abort(corrupt_key("overrides")))?;
                    if remaining.is_empty() {
                        overrides.remove(key)?;
                        by_time.remove(keys::device_time(app_id, remaining.set_at, device_id))?;
                    } else {
                        overrides.insert(key, encode_value(remaining))?;
                    }
                    let entry = Self::audit_entry(
                        device_id,
                        seqs[i],
                        change,
                        AuditAction::ChannelDeleted,
                        before,
                        remaining,
                    );
                    write_audit(audit, audit_by_device, app_id, &entry)?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
        Ok(DeleteOutcome::Deleted)
    }

    fn create_bundle(&self, bundle: &NewBundle, now: Micros) -> StoreResult<CreateBundle> {
        let _registry = self.exclusive();
        let Some(mut app) = self.app_record(&bundle.app_id)? else {
            return Ok(CreateBundle::AppNotFound);
        };
        let key = keys::app_scoped(&bundle.app_id, &bundle.version);
        if self.bundles.contains_key(&key)? {
            return Ok(CreateBundle::AlreadyExists);
        }
        let created = Bundle {
            id: app.next_bundle_id,
            app_id: bundle.app_id.clone(),
            version: bundle.version.clone(),
            external_url: bundle.external_url.clone(),
            checksum: bundle.checksum.clone(),
            session_key: bundle.session_key.clone(),
            min_update_version: bundle.min_update_version.clone(),
            created_at: now,
        };
        app.next_bundle_id += 1;
        (&self.apps, &self.bundles).transaction(|(apps, bundles)| {
            apps.insert(bundle.app_id.as_bytes(), encode_value(&app))?;
            bundles.insert(key.as_slice(), encode_value(&created))?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        self.forget_bundle_ids();
        Ok(CreateBundle::Created(created))
    }

    fn bundle(&self, app_id: &str, version: &str) -> StoreResult<Option<Bundle>> {
        self.bundles
            .get(keys::app_scoped(app_id, version))?
            .map(|bytes| decode("bundles", &bytes))
            .transpose()
    }

    fn bundles(&self, app_id: &str) -> StoreResult<Vec<Bundle>> {
        let mut bundles: Vec<Bundle> = self.app_values(&self.bundles, "bundles", app_id)?;
        bundles.sort_by_key(|bundle| std::cmp::Reverse(bundle.id));
        Ok(bundles)
    }

    fn delete_bundle(&self, app_id: &str, version: &str) -> StoreResult<DeleteOutcome> {
        let _registry = self.exclusive();
        let key = keys::app_scoped(app_id, version);
        if !self.bundles.contains_key(&key)? {
            return Ok(DeleteOutcome::NotFound);
        }
        let used_by_channel = self
            .channels(app_id)?
            .iter()
            .any(|channel| channel.version.as_deref() == Some(version));
        if used_by_channel {
            return Ok(DeleteOutcome::InUse);
        }
        for overrides in self.app_values::<Overrides>(&self.overrides, "overrides", app_id)? {
            if overrides.version.as_deref() == Some(version) {
                return Ok(DeleteOutcome::InUse);
            }
        }
        self.bundles.remove(key)?;
        self.forget_bundle_ids();
        Ok(DeleteOutcome::Deleted)
    }
}

impl Devices for SledStore {
    fn upsert_device(
        &self,
        app_id: &str,
        device_id: &str,
        report: &DeviceReport,
        now: Micros,
        touch_interval: Micros,
    ) -> StoreResult<Upsert> {
        let check_in = CheckIn {
            app_id: app_id.to_owned(),
            device_id: device_id.to_owned(),
            report: report.clone(),
            now,
            touch_interval,
        };
        let outcomes = self.upsert_devices(std::slice::from_ref(&check_in))?;
        Ok(outcomes[0])
    }

    fn upsert_devices(&self, check_ins: &[CheckIn]) -> StoreResult<Vec<Upsert>> {
        let _registry = self.shared();
        let settled = self.settle_check_ins(check_ins)?;
        let open: Vec<usize> = (0..check_ins.len())
            .filter(|i| settled[*i].is_none())
            .collect();
        let written = self.write_check_ins_at(check_ins, &open)?;
        let mut outcomes: Vec<Upsert> = settled
            .iter()
            .map(|outcome| outcome.unwrap_or(Upsert::Unchanged))
            .collect();
        for (index, outcome) in open.iter().zip(written) {
            outcomes[*index] = outcome;
        }
        Ok(outcomes)
    }

    fn settle_check_ins(&self, check_ins: &[CheckIn]) -> StoreResult<Vec<Option<Upsert>>> {
        let mut outcomes = Vec::with_capacity(check_ins.len());
        let mut open: HashSet<Vec<u8>> = HashSet::new();
        for check_in in check_ins {
            let key = keys::app_scoped(&check_in.app_id, &check_in.device_id);
            // A device that an earlier check-in of the slice writes is judged inside the
            // transaction, against that write: the stored record is no longer its state.
            let outcome = if open.contains(&key) {
                None
            } else {
                self.settled_check_in(&key, check_in)?
            };
            if outcome.is_none() {
                open.insert(key);
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    fn write_check_ins(&self, check_ins: &[CheckIn]) -> StoreResult<Vec<Upsert>> {
        let _registry = self.shared();
        let all: Vec<usize> = (0..check_ins.len()).collect();
        self.write_check_ins_at(check_ins, &all)
    }

    fn import_devices(&self, app_id: &str, devices: &[Device]) -> StoreResult<bool> {
        let _registry = self.shared();
        if !self.apps.contains_key(app_id.as_bytes())? {
            return Ok(false);
        }
        let rows: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = devices
            .iter()
            .map(|device| {
                let record = DeviceRecord {
                    updated_at: device.updated_at,
                    report: device.report.clone(),
                };
                (
                    keys::app_scoped(app_id, &device.device_id),
                    encode_value(&record),
                    keys::device_time(app_id, device.updated_at, &device.device_id),
                )
            })
            .collect();
        (
            &self.devices,
            &self.devices_by_time,
            &self.device_counts,
            &self.devices_by_custom_id,
        )
            .transaction(|(tx_devices, by_time, counts, custom_ids)| {
                // Devices of a batch share counters: sum the changes, then write each once.
                let mut deltas: HashMap<Vec<u8>, i64> = HashMap::new();
                for ((key, value, time_key), device) in rows.iter().zip(devices) {
                    let old: Option<DeviceRecord> =
                        match tx_devices.insert(key.as_slice(), value.as_slice())? {
                            Some(bytes) => {
                                let old: DeviceRecord = decode("devices", &bytes).map_err(abort)?;
                                by_time.remove(keys::device_time(
                                    app_id,
                                    old.updated_at,
                                    &device.device_id,
                                ))?;
                                Some(old)
                            }
                            None => None,
                        };
                    by_time.insert(time_key.as_slice(), &[] as &[u8])?;
                    let new = DeviceRecord {
                        updated_at: device.updated_at,
                        report: device.report.clone(),
                    };
                    for (counter, delta) in
                        count_deltas(app_id, &device.device_id, old.as_ref(), Some(&new))
                    {
                        *deltas.entry(counter).or_default() += delta;
                    }
                    index_custom_id(
                        custom_ids,
                        app_id,
                        &device.device_id,
                        old.as_ref(),
                        Some(&new),
                    )?;
                }
                let deltas: Vec<(Vec<u8>, i64)> = deltas
                    .into_iter()
                    .filter(|(_, delta)| *delta != 0)
                    .collect();
                apply_counts(counts, &deltas)?;
                Ok(())
            })?;
        self.spend(devices.len() as u64)?;
        Ok(true)
    }

    fn device(&self, app_id: &str, device_id: &str) -> StoreResult<Option<DeviceEntry>> {
        let Some(bytes) = self.devices.get(keys::app_scoped(app_id, device_id))? else {
            return Ok(None);
        };
        let record: DeviceRecord = decode("devices", &bytes)?;
        let mut entries = self.entries(app_id, vec![(device_id.to_owned(), record)])?;
        Ok(entries.pop())
    }

    fn list_devices(&self, app_id: &str, query: &DeviceListQuery) -> StoreResult<DevicePage> {
        let by_overrides =
            query.filter.channel.is_some() || query.filter.has_override == Some(true);
        let from_overrides = if by_overrides {
            self.rows_from_overrides(app_id, query)?
        } else {
            None
        };
        let from_custom_id = match query.filter.custom_id.as_deref().filter(|c| !c.is_empty()) {
            Some(custom_id) if from_overrides.is_none() => {
                Some(self.rows_from_custom_id(app_id, custom_id, query)?)
            }
            _ => None,
        };
        let from_overrides = from_overrides.or(from_custom_id);
        let (mut rows, resume) = match (from_overrides, query.order) {
            (Some(rows), _) => (rows, None),
            (None, DeviceOrder::DeviceId) => self.rows_by_device_id(app_id, query)?,
            (None, DeviceOrder::UpdatedAsc | DeviceOrder::UpdatedDesc) => {
                self.rows_by_time(app_id, query)?
            }
        };
        let has_more = rows.len() > query.limit;
        rows.truncate(query.limit);
        let next = if has_more {
            rows.last().map(|(device_id, record)| Cursor {
                updated_at: record.updated_at,
                device_id: device_id.clone(),
            })
        } else {
            resume
        };
        Ok(DevicePage {
            devices: self.entries(app_id, rows)?,
            next,
        })
    }

    fn erase_devices(
        &self,
        app_id: &str,
        target: EraseTarget<'_>,
        change: Change,
    ) -> StoreResult<Vec<Erased>> {
        let _registry = self.shared();
        let device_ids: Vec<String> = match target {
            EraseTarget::Device(device_id) => vec![device_id.to_owned()],
            EraseTarget::CustomId(custom_id) => {
                let mut found = Vec::new();
                for key in self
                    .devices_by_custom_id
                    .scan_prefix(keys::custom_id_prefix(app_id, custom_id))
                    .keys()
                {
                    let key = key?;
                    let (_, _, device_id) = keys::split_custom_id(&key)
                        .ok_or_else(|| corrupt_key("devices_by_custom_id"))?;
                    found.push(device_id.to_owned());
                }
                found
            }
        };
        let seqs = self.audit_seqs(device_ids.len())?;
        let erased = (
            &self.devices,
            &self.devices_by_time,
            &self.overrides,
            &self.overrides_by_time,
            &self.audit,
            &self.audit_by_device,
            &self.device_counts,
            &self.devices_by_custom_id,
        )
            .transaction(
                |(
                    devices,
                    devices_by_time,
                    overrides,
                    overrides_by_time,
                    audit,
                    audit_by_device,
                    counts,
                    custom_ids,
                )| {
                    let mut erased = Vec::with_capacity(device_ids.len());
                    for (i, device_id) in device_ids.iter().enumerate() {
                        let key = keys::app_scoped(app_id, device_id);
                        let record = match devices.remove(key.as_slice())? {
                            Some(bytes) => {
                                let old: DeviceRecord = decode("devices", &bytes).map_err(abort)?;
                                apply_counts(
                                    counts,
                                    &count_deltas(app_id, device_id, Some(&old), None),
                                )?;
                                index_custom_id(custom_ids, app_id, device_id, Some(&old), None)?;
                                devices_by_time.remove(keys::device_time(
                                    app_id,
                                    old.updated_at,
                                    device_id,
                                ))?;
                                true
                            }
                            None => false,
                        };
                        let removed_overrides = match overrides.remove(key.as_slice())? {
                            Some(bytes) => {
                                let old: Overrides = decode("overrides", &bytes).map_err(abort)?;
                                overrides_by_time
                                    .remove(keys::device_time(app_id, old.set_at, device_id))?;
                                old
                            }
                            None => Overrides::default(),
                        };
                        if record || !removed_overrides.is_empty() {
                            let entry = Self::audit_entry(
                                device_id,
                                seqs[i],
                                change,
                                AuditAction::Erase,
                                &removed_overrides,
                                &Overrides::default(),
                            );
                            write_audit(audit, audit_by_device, app_id, &entry)?;
                            erased.push(Erased {
                                device_id: device_id.clone(),
                                record,
                                overrides: removed_overrides,
                            });
                        }
                    }
                    Ok(erased)
                },
            )?;
        self.spend(device_ids.len() as u64)?;
        Ok(erased)
    }

    fn device_summary(&self, app_id: &str, now: Micros) -> StoreResult<DeviceSummary> {
        let mut summary = DeviceSummary::default();
        let mut days: std::collections::BTreeMap<u32, u64> = std::collections::BTreeMap::new();
        for entry in self.device_counts.range(app_range(app_id)) {
            let (key, value) = entry?;
            let (_, dim, _, value_bytes) =
                keys::split_device_count(&key).ok_or_else(|| corrupt_key("device_counts"))?;
            let count = read_count(&value);
            let text = || String::from_utf8_lossy(value_bytes).into_owned();
            match dim {
                dimension::TOTAL => summary.total += count,
                dimension::PLATFORM => *summary.platforms.entry(text()).or_default() += count,
                dimension::VERSION_NAME => {
                    *summary.version_names.entry(text()).or_default() += count
                }
                dimension::VERSION_BUILD => {
                    *summary.version_builds.entry(text()).or_default() += count
                }
                dimension::PROD if value_bytes == b"true" => summary.prod += count,
                dimension::EMULATOR if value_bytes == b"true" => summary.emulator += count,
                dimension::SEEN_DAY => {
                    let day = value_bytes.try_into().map(u32::from_be_bytes).unwrap_or(0);
                    *days.entry(day).or_default() += count;
                }
                _ => {}
            }
        }
        for (seen, window) in summary.seen.iter_mut().zip(crate::model::SEEN_DAYS) {
            // Whole days after the boundary's day from the counters; the boundary day itself from
            // the time index (at most a day of devices).
            let boundary = now.saturating_sub(window * DAY_MICROS);
            let boundary_day = (boundary / DAY_MICROS) as u32;
            *seen = days.range(boundary_day + 1..).map(|(_, count)| count).sum();
            let start = keys::device_time_floor(app_id, boundary.saturating_add(1));
            let end = keys::device_time_floor(app_id, (u64::from(boundary_day) + 1) * DAY_MICROS);
            if start < end {
                *seen += self.devices_by_time.range(start..end).count() as u64;
            }
        }
        for entry in self.app_entries(&self.overrides, app_id) {
            let (key, value) = entry?;
            let overrides: Overrides = decode("overrides", &value)?;
            // Only devices that exist count (an override may wait for its device).
            if let Some(channel) = overrides.channel {
                if self.devices.contains_key(&key)? {
                    *summary.channels.entry(channel).or_default() += 1;
                }
            }
        }
        Ok(summary)
    }
}

impl DeviceOverrides for SledStore {
    fn write_overrides(&self, writes: &[OverrideWrite]) -> StoreResult<Vec<BulkOutcome>> {
        let _registry = self.shared();
        // Refusals are decided before the transaction: a refused write takes no part in it.
        let refusals = writes
            .iter()
            .map(|write| self.override_refusal(write))
            .collect::<StoreResult<Vec<_>>>()?;
        let accepted = || {
            writes
                .iter()
                .zip(&refusals)
                .filter(|(_, refusal)| refusal.is_none())
                .map(|(write, _)| write)
        };
        let device_count: usize = accepted().map(|write| write.device_ids.len()).sum();
        let seqs = self.audit_seqs(device_count)?;
        let mut applied = (
            &self.overrides,
            &self.overrides_by_time,
            &self.audit,
            &self.audit_by_device,
        )
            .transaction(|(overrides, by_time, audit, audit_by_device)| {
                let mut seqs = seqs.iter().copied();
                let mut applied = Vec::with_capacity(writes.len());
                for write in accepted() {
                    let app_id = write.app_id.as_str();
                    let mut changes = Vec::with_capacity(write.device_ids.len());
                    for (device_id, seq) in write.device_ids.iter().zip(seqs.by_ref()) {
                        let key = keys::app_scoped(app_id, device_id);
                        // Reads this transaction's own writes: a device twice in a batch
                        // sees its first change.
                        let before: Overrides = match overrides.get(&key)? {
                            Some(bytes) => {
                                let old: Overrides = decode("overrides", &bytes).map_err(abort)?;
                                by_time.remove(keys::device_time(app_id, old.set_at, device_id))?;
                                old
                            }
                            None => Overrides::default(),
                        };
                        let after = write.action.apply(&before, write.change.at);
                        if after.is_empty() {
                            overrides.remove(key)?;
                        } else {
                            overrides.insert(key, encode_value(&after))?;
                            by_time.insert(
                                keys::device_time(app_id, after.set_at, device_id),
                                &[] as &[u8],
                            )?;
                        }
                        let change = OverrideChange {
                            device_id: device_id.clone(),
                            before,
                            after,
                        };
                        if change.changed() {
                            let action = match write.action {
                                OverrideAction::Link { .. } => AuditAction::Link,
                                OverrideAction::Unlink | OverrideAction::UnlinkChannel => {
                                    AuditAction::Unlink
                                }
                            };
                            let entry = Self::audit_entry(
                                device_id,
                                seq,
                                write.change,
                                action,
                                &change.before,
                                &change.after,
                            );
                            write_audit(audit, audit_by_device, app_id, &entry)?;
                        }
                        changes.push(change);
                    }
                    applied.push(changes);
                }
                Ok(applied)
            })?
            .into_iter();
        self.spend(device_count as u64)?;
        Ok(refusals
            .into_iter()
            .map(|refusal| {
                refusal.unwrap_or_else(|| BulkOutcome::Applied(applied.next().unwrap_or_default()))
            })
            .collect())
    }

    fn preview_overrides(&self, write: &OverrideWrite) -> StoreResult<BulkOutcome> {
        let _registry = self.shared();
        if let Some(refusal) = self.override_refusal(write)? {
            return Ok(refusal);
        }
        let changes = write
            .device_ids
            .iter()
            .map(|device_id| {
                let before = self.overrides_of(&write.app_id, device_id)?;
                let after = write.action.apply(&before, write.change.at);
                Ok(OverrideChange {
                    device_id: device_id.clone(),
                    before,
                    after,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(BulkOutcome::Applied(changes))
    }

    fn overrides(&self, app_id: &str, device_id: &str) -> StoreResult<Overrides> {
        self.overrides_of(app_id, device_id)
    }
}

impl Audit for SledStore {
    fn audit(
        &self,
        app_id: &str,
        device_id: Option<&str>,
        before: Option<(Micros, u64)>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        self.audit_page(app_id, device_id, before, limit)
    }
}

impl Retention for SledStore {
    fn expire_audit_before(&self, cutoff: Micros, limit: usize) -> StoreResult<(usize, bool)> {
        if limit == 0 {
            return Ok((0, false));
        }
        let _registry = self.shared();
        self.expire_audit(cutoff, limit)
    }

    fn expire_before(&self, cutoff: Micros, limit: usize, now: Micros) -> StoreResult<Expired> {
        let change = Change {
            actor: Actor::Sweep,
            at: now,
        };
        let mut expired = Expired::default();
        if limit == 0 {
            return Ok(expired);
        }
        let _registry = self.shared();
        let app_ids: Vec<IVec> = self.apps.iter().keys().collect::<sled::Result<_>>()?;
        let mut room = limit;
        for app_id in &app_ids {
            let app_id = std::str::from_utf8(app_id).map_err(|_| corrupt_key("apps"))?;
            let (removed, visited) = self.expire_app_devices(app_id, cutoff, room, change)?;
            expired.devices += removed;
            room -= visited;
            if room == 0 {
                expired.more = true;
                return Ok(expired);
            }
        }
        let mut room = limit;
        for app_id in &app_ids {
            let app_id = std::str::from_utf8(app_id).map_err(|_| corrupt_key("apps"))?;
            let (removed, visited) = self.expire_app_overrides(app_id, cutoff, room, change)?;
            expired.orphan_overrides += removed;
            room -= visited;
            if room == 0 {
                expired.more = true;
                return Ok(expired);
            }
        }
        Ok(expired)
    }
}

impl ApiKeys for SledStore {
    fn create_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        self.api_keys
            .insert(key.secret_hash, encode_value(&key.key))?;
        Ok(())
    }

    fn next_api_key_id(&self) -> StoreResult<u64> {
        Ok(self.db.generate_id()? + 1)
    }

    fn api_key_by_hash(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
        self.api_keys
            .get(secret_hash)?
            .map(|bytes| decode("api_keys", &bytes))
            .transpose()
    }

    fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> = self
            .api_keys
            .iter()
            .values()
            .map(|value| decode("api_keys", &value?))
            .collect::<StoreResult<_>>()?;
        keys.sort_by_key(|key| key.id);
        Ok(keys)
    }

    fn delete_api_key(&self, id: u64) -> StoreResult<bool> {
        for entry in self.api_keys.iter() {
            let (hash, value) = entry?;
            let key: ApiKey = decode("api_keys", &value)?;
            if key.id == id {
                self.api_keys.remove(hash)?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Maintenance for SledStore {
    fn check(&self, repair: bool) -> StoreResult<CheckReport> {
        let report = self.check_store(repair)?;
        // A repair may have removed bundles (of apps that are gone).
        self.forget_bundle_ids();
        Ok(report)
    }

    fn counts(&self) -> StoreResult<Counts> {
        Ok(Counts {
            apps: self.apps.len(),
            devices: self.devices.len(),
            devices_by_time: self.devices_by_time.len(),
            overrides: self.overrides.len(),
            overrides_by_time: self.overrides_by_time.len(),
        })
    }

    fn flush(&self) -> StoreResult<()> {
        self.flush_counted()
    }

    fn health(&self) -> StoreResult<()> {
        // The default tree holds nothing else; this key is the probe.
        self.db
            .insert(b"health_probe", &self.db.generate_id()?.to_be_bytes())?;
        Ok(())
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        Ok(self.db.size_on_disk()?)
    }

    fn device_counts(&self) -> StoreResult<Vec<(String, usize)>> {
        let mut counts = Vec::new();
        for app_id in self.apps.iter().keys() {
            let app_id = app_id?;
            let app_id = String::from_utf8(app_id.to_vec()).map_err(|_| corrupt_key("apps"))?;
            let devices = self.devices.range(app_range(&app_id)).keys().count();
            counts.push((app_id, devices));
        }
        Ok(counts)
    }
}

/// Stores for unit tests, here and in the modules built on the store.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A small store that flushes only when asked.
    pub fn open(dir: &Path) -> SledStore {
        let options = SledOptions {
            cache_bytes: 8 << 20,
            flush_every_ms: None,
        };
        SledStore::open(dir, &options).unwrap()
    }

    /// A device's report, for tests to vary.
    pub fn report() -> DeviceReport {
        DeviceReport {
            custom_id: String::new(),
            version_name: Some("1.0.0".into()),
            version_build: "1.0.0".into(),
            os_version: "17".into(),
            plugin_version: "6.0.0".into(),
            platform: crate::model::Platform::Ios,
            is_prod: true,
            is_emulator: false,
            default_channel: None,
            install_source: None,
            key_id: None,
        }
    }

    /// [`open`], with the app `app` and its channel `beta`.
    pub fn open_with_beta(dir: &Path) -> SledStore {
        let store = open(dir);
        store.create_app("app", "app", 1).unwrap();
        store
            .upsert_channel("app", "beta", &ChannelPatch::default(), 1)
            .unwrap();
        store
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{open, open_with_beta, report};
    use super::*;

    fn at(at: Micros) -> Change {
        Change {
            actor: Actor::Admin,
            at,
        }
    }

    fn link_to_beta(device_ids: &[&str], change: Change) -> OverrideWrite {
        OverrideWrite {
            app_id: "app".into(),
            device_ids: device_ids.iter().map(|id| id.to_string()).collect(),
            action: OverrideAction::Link {
                channel: Some("beta".into()),
                version: None,
            },
            change,
        }
    }

    #[test]
    fn device_records_of_the_first_format_still_read() {
        // `app_bench/device_000000001` as bb3239d (format 1) stored it, seeded by bench/seed.rs.
        let v1 = [
            0x01, 0xfd, 0xe7, 0xe3, 0xe7, 0x00, 0x3b, 0x5c, 0x06, 0x00, 0x02, 0x63, 0x31, 0x01,
            0x05, 0x31, 0x2e, 0x30, 0x2e, 0x31, 0x01, 0x31, 0x04, 0x31, 0x37, 0x2e, 0x30, 0x05,
            0x36, 0x2e, 0x30, 0x2e, 0x30, 0x01, 0x01, 0x00, 0x00,
        ];
        let record: DeviceRecord = decode("devices", &v1).unwrap();
        let expected = DeviceReport {
            custom_id: "c1".into(),
            version_name: Some("1.0.1".into()),
            version_build: "1".into(),
            os_version: "17.0".into(),
            plugin_version: "6.0.0".into(),
            platform: Platform::Android,
            is_prod: true,
            is_emulator: false,
            default_channel: None,
            install_source: None,
            key_id: None,
        };
        assert_eq!(
            (record.updated_at, &record.report),
            (1_790_258_348_286_951, &expected)
        );

        // Written again, it takes the current format and keeps what the plugin added.
        let current = DeviceRecord {
            updated_at: 43,
            report: DeviceReport {
                install_source: Some("com.android.vending".into()),
                key_id: Some("ab12cd34".into()),
                ..expected
            },
        };
        let bytes = encode_value(&current);
        assert_eq!(bytes[0], keys::FORMAT_V2);
        let read: DeviceRecord = decode("devices", &bytes).unwrap();
        assert_eq!(read.report, current.report);
    }

    #[test]
    fn a_device_names_the_bundle_of_its_version_as_bundles_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.create_app("app", "app", 1).unwrap();
        store.upsert_device("app", "d", &report(), 2, 1).unwrap();
        let bundle_id = |store: &SledStore| store.device("app", "d").unwrap().unwrap().bundle_id;
        assert_eq!(bundle_id(&store), None);
        let bundle = NewBundle {
            app_id: "app".into(),
            version: "1.0.0".into(),
            external_url: "https://example.com/1.0.0.zip".into(),
            checksum: "c".into(),
            session_key: None,
            min_update_version: None,
        };
        let CreateBundle::Created(created) = store.create_bundle(&bundle, 3).unwrap() else {
            panic!("bundle not created");
        };
        assert_eq!(bundle_id(&store), Some(created.id));
        assert_eq!(
            store.delete_bundle("app", "1.0.0").unwrap(),
            DeleteOutcome::Deleted
        );
        assert_eq!(bundle_id(&store), None);
    }

    #[test]
    fn a_batch_of_override_writes_applies_in_order_and_refusals_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with_beta(dir.path());
        let to_missing_channel = OverrideWrite {
            action: OverrideAction::Link {
                channel: Some("gone".into()),
                version: None,
            },
            ..link_to_beta(&["d2"], at(6))
        };
        let to_missing_app = OverrideWrite {
            app_id: "other".into(),
            ..link_to_beta(&["d3"], at(6))
        };
        let unlink_d1 = OverrideWrite {
            action: OverrideAction::Unlink,
            ..link_to_beta(&["d1"], at(7))
        };
        let outcomes = store
            .write_overrides(&[
                link_to_beta(&["d1", "d2"], at(5)),
                to_missing_channel,
                to_missing_app,
                unlink_d1,
                link_to_beta(&["d1"], at(8)),
            ])
            .unwrap();
        let changed = |outcome: &BulkOutcome| -> Vec<bool> {
            match outcome {
                BulkOutcome::Applied(changes) => changes.iter().map(|c| c.changed()).collect(),
                other => panic!("refused: {other:?}"),
            }
        };
        assert_eq!(outcomes.len(), 5);
        assert_eq!(changed(&outcomes[0]), vec![true, true]);
        assert_eq!(outcomes[1], BulkOutcome::ChannelNotFound);
        assert_eq!(outcomes[2], BulkOutcome::AppNotFound);
        // Later writes of the batch see the earlier ones: d1 was linked, then unlinked, then
        // linked again.
        assert_eq!(changed(&outcomes[3]), vec![true]);
        assert_eq!(changed(&outcomes[4]), vec![true]);
        assert_eq!(store.overrides("app", "d1").unwrap().set_at, 8);
        assert_eq!(
            store.overrides("app", "d2").unwrap().channel.as_deref(),
            Some("beta")
        );
        assert!(store.overrides("app", "d3").unwrap().is_empty());
        let audit = store.audit("app", None, None, 100).unwrap();
        assert_eq!(audit.entries.len(), 4);
        // One time-index entry per device with overrides, at its last change.
        assert_eq!(store.counts().unwrap().overrides_by_time, 2);
        assert!(store.check(false).unwrap().is_clean());
    }

    #[test]
    fn a_batch_of_check_ins_applies_in_order_with_the_touch_rule() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with_beta(dir.path());
        let check_in = |device_id: &str, version: &str, now: Micros| CheckIn {
            app_id: "app".into(),
            device_id: device_id.into(),
            report: DeviceReport {
                version_name: Some(version.into()),
                ..report()
            },
            now,
            touch_interval: 100,
        };
        store
            .upsert_devices(&[check_in("d1", "1.0.0", 10), check_in("d4", "1.0.0", 10)])
            .unwrap();
        let outcomes = store
            .upsert_devices(&[
                // Fresh and unchanged: settled without a write.
                check_in("d1", "1.0.0", 20),
                check_in("d2", "1.0.0", 30),
                // The same device again in the same batch sees the first check-in.
                check_in("d2", "1.0.0", 40),
                check_in("d2", "2.0.0", 50),
                CheckIn {
                    app_id: "other".into(),
                    ..check_in("d3", "1.0.0", 60)
                },
                // Unchanged but older than touch_interval: touched.
                check_in("d1", "1.0.0", 200),
                // Back to what is stored, after an earlier check-in of the batch changed it:
                // judged against that change, not against the stored record.
                check_in("d4", "3.0.0", 60),
                check_in("d4", "1.0.0", 70),
            ])
            .unwrap();
        assert_eq!(
            outcomes,
            vec![
                Upsert::Unchanged,
                Upsert::Created,
                Upsert::Unchanged,
                Upsert::Updated,
                Upsert::AppNotFound,
                Upsert::Touched,
                Upsert::Updated,
                Upsert::Updated,
            ]
        );
        let d1 = store.device("app", "d1").unwrap().unwrap();
        assert_eq!(d1.device.updated_at, 200);
        let d4 = store.device("app", "d4").unwrap().unwrap();
        assert_eq!(d4.device.updated_at, 70);
        assert_eq!(d4.device.report.version_name.as_deref(), Some("1.0.0"));
        let d2 = store.device("app", "d2").unwrap().unwrap();
        assert_eq!(d2.device.updated_at, 50);
        assert_eq!(d2.device.report.version_name.as_deref(), Some("2.0.0"));
        assert!(store.device("other", "d3").unwrap().is_none());
        // Written without settling (the writer's path): an unknown app is still refused.
        let unknown_app = CheckIn {
            app_id: "other".into(),
            ..check_in("d3", "1.0.0", 80)
        };
        assert_eq!(
            store.write_check_ins(&[unknown_app]).unwrap(),
            vec![Upsert::AppNotFound]
        );
        assert!(store.device("other", "d3").unwrap().is_none());
        // One time-index entry per device, at its last write.
        assert_eq!(store.counts().unwrap().devices_by_time, 3);
        assert!(store.check(false).unwrap().is_clean());
    }

    #[test]
    fn check_finds_and_repairs_every_kind_of_inconsistency() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with_beta(dir.path());
        for i in 0..10 {
            store
                .upsert_device("app", &format!("d{i}"), &report(), 100 + i, 1)
                .unwrap();
        }
        store
            .write_overrides(&[
                link_to_beta(&["d0"], at(5)),
                link_to_beta(&["never"], at(5)),
            ])
            .unwrap();
        assert!(store.check(false).unwrap().is_clean());

        // A lost index entry, a stale one, an unexpirable override, an orphan of a deleted app,
        // and an override whose channel vanished.
        store
            .devices_by_time
            .remove(keys::device_time("app", 101, "d1"))
            .unwrap();
        store
            .devices_by_time
            .insert(keys::device_time("app", 999, "ghost"), &[] as &[u8])
            .unwrap();
        store
            .overrides_by_time
            .remove(keys::device_time("app", 5, "never"))
            .unwrap();
        let orphan = DeviceRecord {
            updated_at: 7,
            report: report(),
        };
        store
            .devices
            .insert(keys::app_scoped("gone", "x"), encode_value(&orphan))
            .unwrap();
        store
            .channels
            .remove(keys::app_scoped("app", "beta"))
            .unwrap();
        // An audit index entry pointing at nothing.
        store
            .audit_by_device
            .insert(keys::audit_by_device("app", "x", 1, 1), &[] as &[u8])
            .unwrap();

        let found = store.check(false).unwrap();
        assert_eq!(found.missing_index_entries, 1, "{found:?}");
        assert_eq!(found.stale_index_entries, 2, "{found:?}");
        assert_eq!(found.unexpirable_overrides, 1, "{found:?}");
        assert_eq!(found.orphan_records, 1, "{found:?}");
        assert_eq!(found.dangling_overrides, 2, "{found:?}");
        assert!(!found.repaired && !found.examples.is_empty());

        assert!(store.check(true).unwrap().repaired);
        let after = store.check(false).unwrap();
        assert!(after.is_clean(), "{after:?}");
        assert_eq!((after.devices, after.index_entries), (10, 10));
    }

    #[test]
    fn expiry_removes_a_device_with_every_entry_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with_beta(dir.path());
        store.upsert_device("app", "old", &report(), 10, 1).unwrap();
        store.upsert_device("app", "new", &report(), 50, 1).unwrap();
        store
            .write_overrides(&[link_to_beta(&["old"], at(10))])
            .unwrap();
        let expired = store.expire_before(20, 100, 20).unwrap();
        assert_eq!(
            expired,
            Expired {
                devices: 1,
                orphan_overrides: 0,
                more: false
            }
        );
        let counts = store.counts().unwrap();
        assert_eq!(
            (
                counts.devices,
                counts.devices_by_time,
                counts.overrides,
                counts.overrides_by_time
            ),
            (1, 1, 0, 0)
        );
        assert!(store.check(false).unwrap().is_clean());
    }
}

#[cfg(test)]
mod import_tests {
    use super::fixtures::open;
    use super::*;
    use crate::model::Platform;

    #[test]
    fn an_imported_batch_is_all_there_before_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let report = DeviceReport {
            custom_id: String::new(),
            version_name: None,
            version_build: "1".into(),
            os_version: String::new(),
            plugin_version: String::new(),
            platform: Platform::Ios,
            is_prod: true,
            is_emulator: false,
            default_channel: None,
            install_source: None,
            key_id: None,
        };
        let devices: Vec<Device> = (0..1000u64)
            .map(|i| Device {
                app_id: "app".into(),
                device_id: format!("device_{i:09}"),
                updated_at: 1_000_000 + (i * 7919) % 5000,
                report: report.clone(),
            })
            .collect();
        {
            let store = open(dir.path());
            store.create_app("app", "app", 1).unwrap();
            assert!(store.import_devices("app", &devices).unwrap());
            assert_eq!(store.counts().unwrap().devices, 1000, "in memory");
            store.flush().unwrap();
        }
        let store = open(dir.path());
        assert_eq!(store.counts().unwrap().devices, 1000, "after reopening");
    }
}
