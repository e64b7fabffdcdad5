//! The embedded engine: sled trees laid out as `keys.rs` describes.
//!
//! Consistency: a device record and its time-index entry change in one atomic write over both
//! trees (`atomic.rs`: an intent, then plain writes; never a sled transaction, which would stop
//! every read of the process), the old record naming the index entry to remove. Changes to the
//! registry's shape (apps, channels, bundles, and every delete that cascades) hold `registry`
//! exclusively, while device writes (check-ins, overrides) hold it shared: a link can never slip
//! in between the check that a channel exists and that channel's deletion, and no check-in
//! recreates a device of an app that is being deleted.
//!
//! One file per concern: `atomic` (atomic writes over several trees), `records` (the engine's
//! own records and their formats), `registry` (apps, channels, bundles, the cascade that removes
//! an app), `devices` (check-ins, imports, reads, the summary, erasure), `list` (the page
//! planner), `counters` (per-app device counters), `overrides`, `audit`, `retention`,
//! `api_keys`, `maintenance` (flush, health, sizes, the offline check). This file opens the store
//! and holds what they share.

mod api_keys;
mod atomic;
mod audit;
mod backup;
mod compact;
mod counters;
mod devices;
mod durable;
mod erase;
#[cfg(test)]
pub(crate) mod fixtures;
mod list;
mod maintenance;
mod overrides;
mod records;
mod registry;
mod reopen;
mod retention;
mod version_events;

pub use compact::Compacted;
pub use reopen::{SledReopen, REOPEN_ROOM};

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sled::{Db, IVec, Tree};

use super::keys::{self, decode_payload, decode_value, encode_value, Record, ValueError};
use super::{
    ApiKeys, Audit, BulkOutcome, Change, CheckIn, CheckReport, Counts, CreateApp, CreateBundle,
    DeleteOutcome, DeviceOverrides, Devices, EraseTarget, Erased, Expired, Maintenance, NewApiKey,
    OverrideAction, OverrideChange, OverrideWrite, Registry, Retention, StoreError, StoreFuture,
    StoreResult, Upsert, UpsertChannel, VersionEvent, VersionHealth, WriteStats,
};
use crate::model::{
    Actor, ApiKey, App, AuditAction, AuditEntry, AuditPage, Bundle, Channel, ChannelPatch, Cursor,
    Device, DeviceEntry, DeviceListQuery, DeviceOrder, DevicePage, DeviceReport, DeviceSummary,
    ManifestEntry, NewBundle, Overrides, PatchRefusal, Platform, Rollout, RolloutAudit,
    RolloutDecision,
};
use crate::timefmt::Micros;

// What the concerns share, so that each reaches the others' parts through `use super::*`.
use atomic::View;
use audit::write_audit;
use counters::{
    apply_counts, count_deltas, dimension, read_count, split_rollout_value, DAY_MICROS,
};
use devices::index_custom_id;
use durable::{CheckInWriter, GroupCommit, OverrideWriter};
use maintenance::HealthProbe;
use records::{AppRecord, DeviceRecord, StoredAuditEntry, StoredBundle, StoredChannel};
use registry::{BundleIds, DELETE_CHUNK};

/// How to open the store.
#[derive(Debug, Clone)]
pub struct SledOptions {
    pub cache_bytes: u64,
    /// Background flush period; `None` flushes only when asked.
    pub flush_every_ms: Option<u64>,
    /// Whether durable writes (registry changes, erasures, changes of overrides) are on disk
    /// before they return (`storage.durability = "flush"`).
    pub durable: bool,
    /// Free bytes the disk keeps: below them, check-ins of new devices are refused.
    pub min_free_bytes: u64,
    /// Opens files that lost their last writes (see `MARKER`) instead of refusing them.
    pub accept_lost_writes: bool,
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
    version_events: Tree,
    /// Writes cut short by a crash (see `atomic.rs`): empty once the store is open.
    intents: Tree,
    /// Numbers the intents of this process.
    intent_seq: AtomicU64,
    /// Atomic writes take turns (see `atomic.rs`). Holds why one was cut short by a failure
    /// after its intent was written: no later write may land before opening the store again
    /// completes it.
    writer: Mutex<Option<String>>,
    registry: RwLock<()>,
    budget: WriteBudget,
    bundle_ids: BundleIds,
    health: HealthProbe,
    durable: bool,
    /// The free-space floor (see [`SledOptions::min_free_bytes`]), and the last reading.
    min_free: FreeSpace,
    /// Flushes shared by durable writes.
    commits: GroupCommit,
    /// The last write the disk refused: sled may go on taking small writes after its log failed
    /// to grow, so the health check answers this rather than its own write's luck, and the
    /// store is opened again (see `reopen.rs`) once the disk has room.
    write_fault: Mutex<Option<String>>,
    /// The directory and the store's id, for its marker; the lock orders generations.
    dir: std::path::PathBuf,
    id: String,
    generation: Mutex<()>,
    check_in_writer: CheckInWriter,
    override_writer: OverrideWriter,
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        match error {
            // A full disk, a file the process may no longer write: not the request's fault,
            // and possibly gone by the next attempt.
            sled::Error::Io(io) => StoreError::Unavailable(io.to_string()),
            sled::Error::Corruption { .. } => StoreError::Corrupt {
                tree: "(log)",
                detail: error.to_string(),
            },
            other => StoreError::Engine(other.to_string()),
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

/// Opens sled; a panic inside it (which damaged files can cause) is reported as corruption.
fn open_catching_panics(config: &sled::Config) -> StoreResult<Result<Db, sled::Error>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())).map_err(|panic| {
        StoreError::Damaged(format!(
            "the store's files are damaged: sled could not read them ({})",
            panic_reason(panic.as_ref())
        ))
    })
}

/// What a caught panic said, for the one line that reports it.
pub fn panic_reason(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message")
}

/// The file beside the store that says a store lives in this directory: the store's id, and
/// the generation its files had reached when last flushed on purpose (`keys.rs`). A directory
/// whose marker names a store that its files no longer hold (emptied, removed), or a generation
/// they no longer reach (truncated: sled reads a shortened log as a shorter history, without
/// an error), is refused, not silently started with less.
const MARKER: &str = "device-registry.store";

/// What a marker says. Markers written before generations hold only the id.
struct Marker {
    id: String,
    generation: Option<u64>,
}

fn read_marker(path: &Path) -> StoreResult<Option<Marker>> {
    let marker = path.join(MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(text) => {
            let mut words = text.split_whitespace();
            let id = words.next().unwrap_or_default().to_owned();
            let generation = words.next().and_then(|word| word.parse().ok());
            Ok(Some(Marker { id, generation }))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StoreError::Damaged(format!(
            "{} cannot be read: {error}",
            marker.display()
        ))),
    }
}

/// Written aside and renamed: a crash never leaves a marker half written.
fn write_marker(path: &Path, id: &str, generation: u64) -> StoreResult<()> {
    let marker = path.join(MARKER);
    let aside = path.join(format!("{MARKER}.new"));
    std::fs::write(&aside, format!("{id} {generation}\n"))
        .and_then(|()| std::fs::File::open(&aside)?.sync_all())
        .and_then(|()| std::fs::rename(&aside, &marker))
        .map_err(|error| {
            StoreError::Unavailable(format!("{} cannot be written: {error}", marker.display()))
        })
}

fn held_generation(db: &Db) -> StoreResult<u64> {
    Ok(db
        .get(keys::STORE_GENERATION)?
        .and_then(|bytes| Some(u64::from_be_bytes(bytes.as_ref().try_into().ok()?)))
        .unwrap_or(0))
}

/// Checks that the files hold the store the marker names, at least at the generation it names,
/// and answers the store's id. With `accept_lost_writes` (`check --repair`), files that lost
/// their last writes are taken as they are, and said so.
fn check_identity(path: &Path, db: &Db, accept_lost_writes: bool) -> StoreResult<String> {
    let marker = read_marker(path)?;
    let held = db
        .get(keys::STORE_ID)?
        .map(|id| String::from_utf8_lossy(&id).into_owned());
    let shown = path.join(MARKER).display().to_string();
    let restore = "Restore the directory from a backup, or start on an empty one and restore a \
                   dump into it (`device-registry restore`, README: Backups)";
    match (marker, held) {
        (Some(marker), Some(held)) if marker.id == held => {
            let generation = held_generation(db)?;
            match marker.generation {
                Some(marked) if generation < marked && accept_lost_writes => log::warn!(
                    "the store's files lost their last writes (generation {generation} of \
                     {marked}): taking them as they are"
                ),
                Some(marked) if generation < marked => {
                    return Err(StoreError::Damaged(format!(
                        "{shown} says this store was flushed at generation {marked}, but its \
                         files hold generation {generation}: they lost their last writes \
                         (truncated or damaged). {restore}; or run `check --repair` to keep \
                         what they hold"
                    )))
                }
                _ => {}
            }
            Ok(held)
        }
        (Some(marker), held) => Err(StoreError::Damaged(format!(
            "{shown} says store {} lives here, but the store's files hold {}: they were \
             damaged, truncated or removed. {restore}",
            marker.id,
            held.map_or("nothing".to_owned(), |held| format!("store {held}")),
        ))),
        // A new store, or one from before markers: it gets (or keeps) its id; the marker is
        // written with the first generation.
        (None, Some(held)) => Ok(held),
        (None, None) => {
            let id = format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            );
            db.insert(keys::STORE_ID, id.as_bytes())?;
            Ok(id)
        }
    }
}

/// The disk's free space against a floor, read at most once a second (a check-in costs no
/// system call).
struct FreeSpace {
    path: std::path::PathBuf,
    floor: u64,
    /// When it was last read, and whether it was above the floor.
    last: Mutex<Option<(Instant, bool)>>,
}

impl FreeSpace {
    fn new(path: &Path, floor: u64) -> Self {
        Self {
            path: path.to_owned(),
            floor,
            last: Mutex::new(None),
        }
    }

    /// Whether the disk has room for new devices.
    fn room(&self) -> bool {
        if self.floor == 0 {
            return true;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, room)) = *last {
            if at.elapsed() < Duration::from_secs(1) {
                return room;
            }
        }
        // A disk that cannot be read is given the benefit of the doubt: writes will say.
        let room = fs2::available_space(&self.path).map_or(true, |free| free >= self.floor);
        if !room {
            log::error!(
                "the disk of {} has less than {} bytes free: new devices are refused",
                self.path.display(),
                self.floor
            );
        }
        *last = Some((Instant::now(), room));
        room
    }
}

/// Counts entries, stopping at the first error: a read that fails may fail again on every
/// step, and counting its errors would never end (a `/metrics` scrape once spun a core so).
fn count_entries<T>(entries: impl Iterator<Item = sled::Result<T>>) -> StoreResult<usize> {
    let mut count = 0;
    for entry in entries {
        entry?;
        count += 1;
    }
    Ok(count)
}

/// The range of an app-scoped tree that holds one app's keys.
fn app_range(app_id: &str) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let prefix = keys::app_prefix(app_id);
    let end = keys::prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix), end)
}

impl SledStore {
    /// Opens the store, with its writer threads (which hold it weakly: it closes when the last
    /// `Arc` goes), and finishes the app deletions a crash interrupted.
    pub fn open(path: &Path, options: &SledOptions) -> StoreResult<Arc<Self>> {
        let store = Self::open_files(path, options)?;
        store.finish_deletions()?;
        Ok(store)
    }

    /// [`SledStore::open`] without finishing interrupted deletions, which the caller must then
    /// do with [`SledStore::finish_deletions`]: reading the files and finishing the work that
    /// remains in them can then be watched differently (the server reads them under a silent
    /// panic hook, and finishes with its usual one).
    pub fn open_files(path: &Path, options: &SledOptions) -> StoreResult<Arc<Self>> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(options.flush_every_ms);
        // The store's file lock outlives a closed store for a moment (sled's threads let it go
        // after the last handle): a reopen in the same process waits for it, briefly. Another
        // process that holds it is an error once the wait is over.
        let deadline = Instant::now() + Duration::from_secs(5);
        let db = loop {
            match open_catching_panics(&config)? {
                // sled reports the lock as an `Other` I/O error that names it.
                Err(sled::Error::Io(error))
                    if error.to_string().contains("could not acquire lock")
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                opened => break opened?,
            }
        };
        let id = check_identity(path, &db, options.accept_lost_writes)?;
        let apps = db.open_tree("apps")?;
        let channels = db.open_tree("channels")?;
        let bundles = db.open_tree("bundles")?;
        let devices = db.open_tree("devices")?;
        let devices_by_time = db.open_tree("devices_by_time")?;
        let overrides = db.open_tree("overrides")?;
        let overrides_by_time = db.open_tree("overrides_by_time")?;
        let audit = db.open_tree("audit")?;
        let audit_by_device = db.open_tree("audit_by_device")?;
        let device_counts = db.open_tree("device_counts")?;
        let devices_by_custom_id = db.open_tree("devices_by_custom_id")?;
        let api_keys = db.open_tree("api_keys")?;
        let version_events = db.open_tree("version_events")?;
        version_events.set_merge_operator(version_events::add_counts);
        let intents = db.open_tree("intents")?;
        let store = Arc::new_cyclic(|store| Self {
            apps,
            channels,
            bundles,
            devices,
            devices_by_time,
            overrides,
            overrides_by_time,
            audit,
            audit_by_device,
            device_counts,
            devices_by_custom_id,
            api_keys,
            version_events,
            intents,
            intent_seq: AtomicU64::new(0),
            writer: Mutex::new(None),
            durable: options.durable,
            min_free: FreeSpace::new(path, options.min_free_bytes),
            commits: GroupCommit::new(),
            write_fault: Mutex::new(None),
            dir: path.to_owned(),
            id,
            generation: Mutex::new(()),
            // Check-ins are not flushed one by one: they reach the disk with the periodic flush.
            check_in_writer: CheckInWriter::start(store.clone(), false),
            override_writer: OverrideWriter::start(store.clone(), options.durable),
            registry: RwLock::new(()),
            bundle_ids: BundleIds::default(),
            health: HealthProbe::default(),
            budget: WriteBudget {
                unflushed: AtomicU64::new(0),
                limit: options.max_unflushed_writes(),
                flushes: GroupCommit::new(),
            },
            db,
        });
        store.replay_intents()?;
        store.record_generation()?;
        store.fold_counter_shards()?;
        Ok(store)
    }

    /// Makes the writes so far durable when the store is opened durable, sharing the flush
    /// with concurrent durable writes.
    fn commit(&self) -> StoreResult<()> {
        if self.durable {
            self.commits.commit(|| self.flush_counted())?;
        }
        Ok(())
    }

    /// Flushes, and takes what was unflushed when it started off the budget.
    fn flush_counted(&self) -> StoreResult<()> {
        let covered = self.budget.unflushed.load(Ordering::SeqCst);
        self.noting_faults(self.db.flush().map_err(StoreError::from))?;
        let _ = self
            .budget
            .unflushed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_sub(covered))
            });
        Ok(())
    }

    /// Makes everything written so far durable, as a new generation of the store that its
    /// marker records: files that later hold less (truncated) are then refused when opened.
    fn record_generation(&self) -> StoreResult<()> {
        let _ordered = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        let next = held_generation(&self.db)? + 1;
        self.db
            .insert(keys::STORE_GENERATION, &next.to_be_bytes())?;
        self.flush_counted()?;
        // After the flush: the marker never names a generation the files do not hold.
        write_marker(&self.dir, &self.id, next)
    }

    /// Passes `result` on, remembering an I/O failure for the health check.
    fn noting_faults<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if let Err(StoreError::Unavailable(why)) = &result {
            *self.write_fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
        }
        result
    }

    /// Counts `writes` against the budget; past it, waits for a (shared) flush.
    fn spend(&self, writes: u64) -> StoreResult<()> {
        let pending = self.budget.unflushed.fetch_add(writes, Ordering::SeqCst) + writes;
        if pending >= self.budget.limit {
            self.budget.flushes.commit(|| self.flush_counted())?;
        }
        Ok(())
    }

    /// Every tree a device has entries in, in the order the writes that remove devices whole
    /// (erasure, expiry) name them.
    fn device_trees(&self) -> [&Tree; 8] {
        [
            &self.devices,
            &self.devices_by_time,
            &self.overrides,
            &self.overrides_by_time,
            &self.audit,
            &self.audit_by_device,
            &self.device_counts,
            &self.devices_by_custom_id,
        ]
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

    /// Reserves `n` numbers of the named sequence (see `keys.rs`) and answers the first. Called
    /// before the atomic write that uses the numbers (a compare-and-swap of its own). A new
    /// sequence starts above every number sled's id generator has given, so that it never repeats
    /// one handed out before sequences existed.
    fn reserve(&self, name: &str, n: u64) -> StoreResult<u64> {
        let key = keys::sequence(name);
        let corrupt = || StoreError::Corrupt {
            tree: "(default)",
            detail: format!("sequence {name} is not a number"),
        };
        match self.db.get(&key)? {
            // A damaged counter must not start numbering over.
            Some(bytes) if bytes.len() != 8 => return Err(corrupt()),
            Some(bytes) if n == 0 => return Ok(read_count(&bytes)),
            _ => {}
        }
        if !self.db.contains_key(&key)? {
            let start = self.db.generate_id()? + 1;
            // Another writer may have started it meanwhile: then its start stands.
            let _ = self.db.compare_and_swap(
                &key,
                None as Option<&[u8]>,
                Some(&start.to_be_bytes()),
            )?;
        }
        let next = self
            .db
            .update_and_fetch(&key, |old| {
                let old = old.map_or(1, read_count);
                Some((old + n).to_be_bytes().to_vec())
            })?
            .map_or(1, |bytes| read_count(&bytes));
        Ok(next - n)
    }

    fn app_entries<'a>(
        &self,
        tree: &'a Tree,
        app_id: &str,
    ) -> impl Iterator<Item = StoreResult<(IVec, IVec)>> + 'a {
        tree.range(app_range(app_id))
            .map(|entry| entry.map_err(StoreError::from))
    }
}
