//! The registry's storage, as the handlers see it: operations named after what they mean, with no
//! engine types. [`sled::SledStore`] is the embedded engine; another engine (a distributed one)
//! implements [`Store`] and nothing above this module changes.
//!
//! Calls are synchronous. Request handlers run those that may wait (every call that takes the
//! registry's lock, disk I/O) through [`off_workers`], the one way off the request workers, so
//! that a long operation never parks them; reads go through [`read`], which runs them inline
//! where the engine answers them from memory (sled: a hop to the blocking pool costs a quarter
//! of a check-in's throughput, bench/RESULTS.md) and off the workers where they wait for a
//! database (PostgreSQL).

pub mod backup;
pub mod handle;
pub mod keys;
pub mod postgres;
pub mod sled;

pub use backup::Backup;
pub use handle::StoreHandle;

use crate::model::{
    Actor, ApiKey, App, AuditAction, AuditEntry, AuditPage, Bundle, Channel, ChannelPatch, Device,
    DeviceEntry, DeviceListQuery, DevicePage, DeviceReport, DeviceSummary, NewBundle, Overrides,
    Rollout, RolloutAudit, RolloutDecision,
};
use crate::timefmt::Micros;

/// What an engine can fail with. The first three are faults a client should simply retry
/// (503 with `Retry-After`); the last two are bugs or damage (500, and a loud log line).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The engine cannot serve now: an I/O error (a full disk), a database out of reach.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The disk is below its free-space floor: new devices wait for space (logged by the engine
    /// when it reads the disk, not once per refused request).
    #[error("storage full: {0}")]
    Full(String),
    /// The engine did not answer in time.
    #[error("storage timed out: {0}")]
    Timeout(String),
    /// A write lost to concurrent writes more times than it retries.
    #[error("storage conflict: {0}")]
    Conflict(String),
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    /// The store's files as a whole: unreadable, or not the store the directory held.
    #[error("{0}")]
    Damaged(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again shortly.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Full(_)
                | StoreError::Timeout(_)
                | StoreError::Conflict(_)
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A store call that completes later: a write queued with concurrent callers' (see
/// [`Devices::check_in`], [`DeviceOverrides::apply_overrides`]).
pub type StoreFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<T>> + Send + 'static>>;

/// What the engine's write path has done, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Durable writes acknowledged, and the flushes they shared.
    pub commits: u64,
    pub flushes: u64,
    /// Changes of overrides, and the transactions they shared.
    pub override_writes: u64,
    pub override_batches: u64,
    /// Check-ins that changed a device, and the transactions they shared.
    pub check_in_writes: u64,
    pub check_in_batches: u64,
}

/// Runs store calls that may wait (see the module's documentation) on the blocking pool, and
/// answers their result. A call that panics is an engine error, never a lost request.
pub async fn off_workers<T, F>(store: &StoreHandle, work: F) -> StoreResult<T>
where
    F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    let store = store.current()?;
    tokio::task::spawn_blocking(move || work(store.as_ref()))
        .await
        .unwrap_or_else(|error| Err(StoreError::Engine(format!("a store call failed: {error}"))))
}

/// Runs a read: on the calling request worker when the engine answers reads from memory (a hop
/// to the blocking pool would cost more than the read), on the blocking pool otherwise, as
/// [`off_workers`] runs every call that may wait.
pub async fn read<T, F>(store: &StoreHandle, work: F) -> StoreResult<T>
where
    F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    let current = store.current()?;
    if current.reads_from_memory() {
        return work(current.as_ref());
    }
    tokio::task::spawn_blocking(move || work(current.as_ref()))
        .await
        .unwrap_or_else(|error| Err(StoreError::Engine(format!("a store call failed: {error}"))))
}

/// Outcome of a check-in (spec section 5, `touch_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    /// A field changed: rewritten with `updated_at` = now.
    Updated,
    /// Nothing changed but the record was older than `touch_interval`: `updated_at` = now.
    Touched,
    /// Nothing changed and the record is fresh: nothing written.
    Unchanged,
    AppNotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateApp {
    Created(App),
    AlreadyExists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertChannel {
    Created(Channel),
    Updated(Channel),
    AppNotFound,
    /// A bundle the patch names (the channel's or the rollout's) does not exist.
    VersionNotFound(String),
    /// The patch changes a rollout and the channel has none.
    NoRollout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateBundle {
    Created(Bundle),
    AlreadyExists,
    AppNotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// A bundle still used by a channel or a version override.
    InUse,
}

/// What one call of [`Retention::expire_before`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub devices: usize,
    /// Overrides of devices that never checked in (those of expired devices go with them).
    pub orphan_overrides: usize,
    /// The call stopped at its limit: call again for the rest.
    pub more: bool,
}

/// How many entries each tree holds (a full scan: for checks and tests, not for requests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub apps: usize,
    pub devices: usize,
    pub devices_by_time: usize,
    pub overrides: usize,
    pub overrides_by_time: usize,
}

/// What [`Maintenance::check`] found (and, when asked, repaired).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub devices: usize,
    pub index_entries: usize,
    /// Devices whose time-index entry is missing.
    pub missing_index_entries: usize,
    /// Time-index entries with no device, or naming another `updated_at` than the device's.
    pub stale_index_entries: usize,
    /// Overrides of devices that never checked in, without the entry that makes them expire.
    pub unexpirable_overrides: usize,
    /// Devices, overrides, channels or bundles of an app that does not exist.
    pub orphan_records: usize,
    /// Overrides naming a channel or bundle that does not exist.
    pub dangling_overrides: usize,
    /// Records that do not decode.
    pub corrupt_records: usize,
    /// Device counters that differ from a recount of the records.
    pub wrong_counters: usize,
    /// Imports that began and never ended (a crash, a kill): their last devices may lack their
    /// overrides until the same source is imported again. A repair forgets them (it cannot
    /// finish them; `check` has named them).
    pub interrupted_imports: Vec<String>,
    /// The first problems found, described.
    pub examples: Vec<String>,
    pub repaired: bool,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        !self.needs_repair() && self.interrupted_imports.is_empty()
    }

    /// Problems that `check --repair` fixes (an interrupted import needs its source instead).
    pub fn needs_repair(&self) -> bool {
        self.missing_index_entries
            + self.stale_index_entries
            + self.unexpirable_overrides
            + self.orphan_records
            + self.dangling_overrides
            + self.corrupt_records
            + self.wrong_counters
            > 0
    }
}

/// A device's overrides before and after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideChange {
    pub device_id: String,
    pub before: Overrides,
    pub after: Overrides,
}

impl OverrideChange {
    /// Whether the channel or the pinned version differs (not merely when it was set).
    pub fn changed(&self) -> bool {
        self.before.channel != self.after.channel || self.before.version != self.after.version
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkOutcome {
    Applied(Vec<OverrideChange>),
    AppNotFound,
    ChannelNotFound,
    VersionNotFound,
}

/// Who makes a change of overrides, and when: what the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub actor: Actor,
    pub at: Micros,
}

/// Which devices an erasure removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraseTarget<'a> {
    Device(&'a str),
    /// Every device of the app reporting this custom id (read from the custom-id index).
    CustomId(&'a str),
}

/// What an erasure removed for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub device_id: String,
    /// Whether it had checked in (a record and a time-index entry were removed).
    pub record: bool,
    pub overrides: Overrides,
}

/// What a change of overrides does to each of its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideAction {
    /// Sets the given overrides (at least one), keeping the device's other one.
    Link {
        channel: Option<String>,
        version: Option<String>,
    },
    /// Removes both overrides.
    Unlink,
    /// Removes the channel override, keeping a version override (a device leaving the channel
    /// it chose through `/channel_self`).
    UnlinkChannel,
}

impl OverrideAction {
    /// How the audit log names a change this action made.
    pub fn audit_action(&self) -> AuditAction {
        match self {
            OverrideAction::Link { .. } => AuditAction::Link,
            OverrideAction::Unlink | OverrideAction::UnlinkChannel => AuditAction::Unlink,
        }
    }

    /// The overrides a device has after this action, if it had `before`.
    pub fn apply(&self, before: &Overrides, at: Micros) -> Overrides {
        match self {
            OverrideAction::Link { channel, version } => {
                let mut after = before.clone();
                if let Some(channel) = channel {
                    after.channel = Some(channel.clone());
                }
                if let Some(version) = version {
                    after.version = Some(version.clone());
                }
                after.set_at = at;
                after
            }
            OverrideAction::Unlink => Overrides::default(),
            OverrideAction::UnlinkChannel => Overrides {
                channel: None,
                ..before.clone()
            },
        }
    }
}

/// One request's change of overrides: the same action on each of its devices, which need not
/// have checked in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideWrite {
    pub app_id: String,
    pub device_ids: Vec<String>,
    pub action: OverrideAction,
    pub change: Change,
}

/// One device's check-in, as [`Devices::check_in`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    pub app_id: String,
    pub device_id: String,
    pub report: DeviceReport,
    pub now: Micros,
    pub touch_interval: Micros,
    /// The device's rollout decision after this check-in: `None` keeps the stored one (a
    /// `/stats` event), `Some(decision)` stores it (`/updates`, which resolved the device).
    pub rollout: Option<Option<RolloutDecision>>,
}

impl CheckIn {
    /// A check-in reporting `report` at `now`, keeping the device's rollout decision.
    pub fn reporting(
        app_id: &str,
        device_id: &str,
        report: &DeviceReport,
        now: Micros,
        touch_interval: Micros,
    ) -> Self {
        CheckIn {
            app_id: app_id.to_owned(),
            device_id: device_id.to_owned(),
            report: report.clone(),
            now,
            touch_interval,
            rollout: None,
        }
    }

    /// Whether this check-in leaves a device's stored report and rollout decision as they are.
    pub fn decides_nothing_new(
        &self,
        report: &DeviceReport,
        rollout: &Option<RolloutDecision>,
    ) -> bool {
        report.is_unchanged_by(&self.report)
            && self
                .rollout
                .as_ref()
                .is_none_or(|decision| decision == rollout)
    }

    /// The `touch_interval` rule: a device that reports nothing new and was written less than
    /// `touch_interval` ago is not written again.
    pub fn changes_nothing(
        &self,
        report: &DeviceReport,
        rollout: &Option<RolloutDecision>,
        updated_at: Micros,
    ) -> bool {
        self.decides_nothing_new(report, rollout)
            && self.now.saturating_sub(updated_at) < self.touch_interval
    }
}

/// The audit entry of a channel upsert that changed the channel's rollout (by hand, or by its
/// guard: the patch's `guard_triggered` says why); `None` when the rollout is as it was. Its
/// number is the engine's to set.
pub fn rollout_change(
    channel: &Channel,
    before: Option<Rollout>,
    patch: &ChannelPatch,
    change: Change,
) -> Option<AuditEntry> {
    (channel.rollout != before).then(|| AuditEntry {
        at: change.at,
        seq: 0,
        device_id: String::new(),
        actor: change.actor,
        action: AuditAction::Rollout,
        before: Overrides::default(),
        after: Overrides::default(),
        rollout: Some(RolloutAudit {
            channel: channel.name.clone(),
            before,
            after: channel.rollout.clone(),
            reason: patch.guard_triggered.as_ref().map(|(_, why)| why.clone()),
        }),
    })
}

/// The bundle and the day whose event counters a channel's rollout takes as its baseline, when
/// the patch that made `channel` from a channel whose rollout was `before` started a new one
/// (what the bundle's counters already hold today is not the new rollout's).
pub fn started_rollout(
    channel: &Channel,
    before: &Option<Rollout>,
    now: Micros,
) -> Option<(String, u32)> {
    let rollout = channel.rollout.as_ref()?;
    (before.as_ref().map(|r| r.id) != Some(rollout.id))
        .then(|| (rollout.version.clone(), crate::health::day_of(now)))
}

/// Sets a started rollout's baseline from its bundle's counters of `day`.
pub fn set_baseline(channel: &mut Channel, day: u32, counts: &[(u32, String, u64)]) {
    if let Some(rollout) = channel.rollout.as_mut() {
        let today = crate::health::BundleHealth::from_counts(day, day, counts).totals;
        rollout.baseline = (today.attempts(), today.failed());
    }
}

/// An API key to store: its description and the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret_hash: [u8; 32],
}

/// The storage contract, one part per concern; an engine implements every part, and handlers hold
/// an `Arc<dyn Store>`. What every call promises, on every engine:
///
/// - **Atomic per record**: a device changes with its index entries and counters, an override
///   with its audit and expiry entries, all of them or none; a reader never sees a record
///   without its index entries or the reverse. Calls that change many devices (deleting an app
///   or a channel, erasing a custom id's devices) do it in bounded steps, each atomic, ordered so
///   that calling again after a crash midway finishes the work; those say so.
/// - **Read your writes**: once a call returns, every later call on this store, from any thread
///   (on a shared engine, from any node), sees its effect.
/// - **Durability**: a registry change (apps, channels, bundles, API keys), an erasure and a
///   change of overrides through [`DeviceOverrides::apply_overrides`] are on disk when they
///   return, when the store is opened durable (`storage.durability = "flush"`); check-ins,
///   expiry and imports reach the disk with the engine's periodic flush (or
///   [`Maintenance::flush`]). Callers never flush or batch themselves.
/// - **Bounded**: a call's cost follows what it reads or changes, stated where it is not one
///   record.
pub trait Store:
    Registry
    + Devices
    + DeviceOverrides
    + Retention
    + Audit
    + ApiKeys
    + Maintenance
    + VersionHealth
    + Backup
{
}

impl<T> Store for T where
    T: Registry
        + Devices
        + DeviceOverrides
        + Retention
        + Audit
        + ApiKeys
        + Maintenance
        + VersionHealth
        + Backup
{
}

/// Apps, their channels and their bundles. Changes to these are rare and durable; a channel made
/// public makes the others private in the same step, and a deleted channel takes the overrides
/// that point at it (in bounded steps, see [`Registry::delete_channel`]).
pub trait Registry: Send + Sync + 'static {
    fn create_app(&self, app_id: &str, name: &str, now: Micros) -> StoreResult<CreateApp>;
    fn app(&self, app_id: &str) -> StoreResult<Option<App>>;
    fn app_exists(&self, app_id: &str) -> StoreResult<bool>;
    fn apps(&self) -> StoreResult<Vec<App>>;
    /// Removes the app with its channels, bundles, devices, index entries and overrides, in
    /// bounded steps: the app's own record first (nothing new joins it), its contents after,
    /// under a durable deletion mark that makes the store finish a deletion a crash cut short
    /// when it next opens. Costs what the app holds.
    fn delete_app(&self, app_id: &str) -> StoreResult<bool>;

    /// Creates the channel with the defaults, or updates it; then, if it is public, makes the
    /// other channels that overlap it on a platform private. A change of its rollout is in the
    /// audit log, by `change.actor`, in the same step.
    fn upsert_channel(
        &self,
        app_id: &str,
        name: &str,
        patch: &ChannelPatch,
        change: Change,
    ) -> StoreResult<UpsertChannel>;
    fn channel(&self, app_id: &str, name: &str) -> StoreResult<Option<Channel>>;
    fn channels(&self, app_id: &str) -> StoreResult<Vec<Channel>>;
    /// Removes the channel and the channel overrides that point at it (each recorded in the
    /// audit log as `change`): the overrides first, in bounded transactions, the channel last,
    /// so that after a crash midway calling again finishes it.
    fn delete_channel(
        &self,
        app_id: &str,
        name: &str,
        change: Change,
    ) -> StoreResult<DeleteOutcome>;

    fn create_bundle(&self, bundle: &NewBundle, now: Micros) -> StoreResult<CreateBundle>;
    fn bundle(&self, app_id: &str, version: &str) -> StoreResult<Option<Bundle>>;
    /// Newest first.
    fn bundles(&self, app_id: &str) -> StoreResult<Vec<Bundle>>;
    /// Refuses (`InUse`) while a channel or a version override uses the bundle.
    fn delete_bundle(&self, app_id: &str, version: &str) -> StoreResult<DeleteOutcome>;
}

/// Devices: check-ins, reads, pages, the summary, imports and erasure. A device's record, its
/// time-index entry, its custom-id entry and its counters change together.
pub trait Devices: Send + Sync + 'static {
    /// Records a check-in with the `touch_interval` rule; nothing for an unknown app.
    fn upsert_device(
        &self,
        app_id: &str,
        device_id: &str,
        report: &DeviceReport,
        now: Micros,
        touch_interval: Micros,
    ) -> StoreResult<Upsert>;
    /// Records check-ins, in order, one outcome each, on the calling thread.
    fn upsert_devices(&self, check_ins: &[CheckIn]) -> StoreResult<Vec<Upsert>>;
    /// Records check-ins as the plugin API does, one outcome each, in order: those that write
    /// nothing (an unknown app, a device reporting nothing new within `touch_interval`) are
    /// answered from a read on the calling thread; the others are queued with concurrent
    /// callers' into shared transactions, and the future resolves once they are applied (in
    /// memory: check-ins reach the disk with the periodic flush).
    fn check_in(&self, check_ins: Vec<CheckIn>) -> StoreFuture<Vec<Upsert>>;
    /// Writes many devices of one app as given (their own `updated_at`, no `touch_interval`),
    /// replacing those that exist; `false` for an unknown app. For imports and seeding: one
    /// transaction per call, so callers pass batches of a few thousand.
    fn import_devices(&self, app_id: &str, devices: &[Device]) -> StoreResult<bool>;
    fn device(&self, app_id: &str, device_id: &str) -> StoreResult<Option<DeviceEntry>>;
    /// Whether the device is in the registry (one key lookup).
    fn device_exists(&self, app_id: &str, device_id: &str) -> StoreResult<bool>;
    /// A device's kept rollout decision, if any: one read of its record, nothing else built
    /// (`/updates` asks on every check-in on a channel with a rollout).
    fn rollout_decision(
        &self,
        app_id: &str,
        device_id: &str,
    ) -> StoreResult<Option<RolloutDecision>>;
    /// One page, a range scan of the index of the query's order: its cost follows the page
    /// (and, with filters, at most `query.max_examined` devices), never its depth.
    fn list_devices(&self, app_id: &str, query: &DeviceListQuery) -> StoreResult<DevicePage>;
    /// How the app's devices are spread, from counters kept with the records (no scan of the
    /// devices); "seen in the last N days" reads the time index only for the boundary day.
    fn device_summary(&self, app_id: &str, now: Micros) -> StoreResult<DeviceSummary>;
    /// Removes devices for good: their records, index entries and overrides, each device whole,
    /// in transactions of a bounded number of devices (a custom id thousands report is not one
    /// transaction). Idempotent: after a crash midway, calling again removes the rest. Returns
    /// what was removed (nothing when nothing matched).
    fn erase_devices(
        &self,
        app_id: &str,
        target: EraseTarget<'_>,
        change: Change,
    ) -> StoreResult<Vec<Erased>>;
}

/// Channel and version overrides set through the Devices API (and by plugins before 7.34).
/// Each change is atomic with its audit entry and its expiry-index entry.
pub trait DeviceOverrides: Send + Sync + 'static {
    /// Applies the writes, in order, in one transaction, on the calling thread (imports, tests;
    /// the server goes through [`DeviceOverrides::apply_overrides`]). Each is checked on its
    /// own (its app, and the channel and version it links to): a refused write changes nothing
    /// and the others still apply. One outcome per write.
    fn write_overrides(&self, writes: &[OverrideWrite]) -> StoreResult<Vec<BulkOutcome>>;
    /// Applies one change of overrides as the Devices API does: queued with concurrent callers'
    /// into shared transactions, resolved once applied and (when the store is durable) on disk.
    fn apply_overrides(&self, write: OverrideWrite) -> StoreFuture<BulkOutcome>;
    /// What [`DeviceOverrides::write_overrides`] would do with this write, changing nothing.
    fn preview_overrides(&self, write: &OverrideWrite) -> StoreResult<BulkOutcome>;
    /// The device's overrides (empty when it has none), whether or not it has checked in.
    fn overrides(&self, app_id: &str, device_id: &str) -> StoreResult<Overrides>;
}

/// The audit log of override changes, written by the calls that make the changes.
pub trait Audit: Send + Sync + 'static {
    /// Newest first, from before `before` (an entry's (at, seq)); one device's when
    /// `device_id` is given.
    fn audit(
        &self,
        app_id: &str,
        device_id: Option<&str>,
        before: Option<(Micros, u64)>,
        limit: usize,
    ) -> StoreResult<AuditPage>;
}

/// What the periodic sweep removes. Each call is bounded by `limit` and costs what it removes
/// (plus the number of apps), never the number of devices; `more` says when to call again.
pub trait Retention: Send + Sync + 'static {
    /// Deletes, oldest first, up to `limit` devices whose `updated_at` is before `cutoff`, with
    /// their index entries and overrides; then up to `limit` overrides set before `cutoff` for
    /// devices that never checked in.
    fn expire_before(&self, cutoff: Micros, limit: usize, now: Micros) -> StoreResult<Expired>;
    /// Deletes up to `limit` audit entries older than `cutoff`; `true` when there may be more.
    fn expire_audit_before(&self, cutoff: Micros, limit: usize) -> StoreResult<(usize, bool)>;
    /// Deletes up to `limit` version event counters of days before `day` (kept as long as the
    /// audit log); `true` when there may be more.
    fn expire_version_events_before(&self, day: u32, limit: usize) -> StoreResult<(usize, bool)>;
}

/// What devices report about bundles through `/stats` (installs, downloads, failures), as
/// counters per app, bundle, day and action: never the events themselves.
pub trait VersionHealth: Send + Sync + 'static {
    /// Adds one to each event's counter. Counters reach the disk with the periodic flush, as
    /// check-ins do.
    fn count_version_events(&self, events: &[VersionEvent]) -> StoreResult<()>;
    /// A bundle's counters from `first_day` to `last_day` (included), by day: (day, action,
    /// count). Costs what the bundle's counters of those days hold.
    fn version_events(
        &self,
        app_id: &str,
        version: &str,
        first_day: u32,
        last_day: u32,
    ) -> StoreResult<Vec<(u32, String, u64)>>;
}

/// One event a device reported about a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEvent {
    pub app_id: String,
    pub version: String,
    /// Days since 1970.
    pub day: u32,
    pub action: String,
}

/// API keys, by the SHA-256 of their secret (the secret itself is never stored).
pub trait ApiKeys: Send + Sync + 'static {
    fn create_api_key(&self, key: &NewApiKey) -> StoreResult<()>;
    /// Creates the key only while the store holds none, atomically: of several nodes starting
    /// together on an empty store, one creates it. `false` when a key existed.
    fn create_first_api_key(&self, key: &NewApiKey) -> StoreResult<bool>;
    fn next_api_key_id(&self) -> StoreResult<u64>;
    fn api_key_by_hash(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<ApiKey>>;
    fn api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    fn delete_api_key(&self, id: u64) -> StoreResult<bool>;
}

/// What operators and the server itself need of the store; no request of a client reaches
/// these but `/health` and `/metrics`.
pub trait Maintenance: Send + Sync + 'static {
    /// Whether reads answer from memory without waiting (see [`read`]): sled's do, a database's
    /// wait for it.
    fn reads_from_memory(&self) -> bool;
    /// Makes every write so far durable (disk I/O: callers run it off the request workers).
    fn flush(&self) -> StoreResult<()>;
    /// What the write path has done (batches, shared flushes), for `/metrics`.
    fn write_stats(&self) -> WriteStats;
    /// Proves the store is open and writable: a small write to a scratch record, at most once
    /// a second (calls in between answer the last probe's result).
    fn health(&self) -> StoreResult<()>;
    /// Bytes the store occupies on disk.
    fn size_on_disk(&self) -> StoreResult<u64>;
    /// Devices per app (a scan of the device keys: callers cache it).
    fn device_counts(&self) -> StoreResult<Vec<(String, usize)>>;
    /// How many entries each tree holds (a full scan: for checks and tests).
    fn counts(&self) -> StoreResult<Counts>;
    /// Verifies that every index entry matches its primary record and the reverse, and that
    /// every record belongs to an existing app; with `repair`, rebuilds the indexes from the
    /// primary records and removes what belongs to no app. Meant for a store no server is using.
    fn check(&self, repair: bool) -> StoreResult<CheckReport>;
    /// Records durably that an import of `source` has begun (`pending`) or ended, so that
    /// [`Maintenance::check`] names an import a crash cut short.
    fn mark_import(&self, source: &str, pending: bool) -> StoreResult<()>;
    /// The sources of imports marked pending and never ended (cheap: read at startup).
    fn interrupted_imports(&self) -> StoreResult<Vec<String>>;
}

/// Every part of the contract, for code that holds a concrete engine (`use store::prelude::*`).
pub mod prelude {
    pub use super::{
        ApiKeys, Audit, Backup, DeviceOverrides, Devices, Maintenance, Registry, Retention, Store,
        VersionHealth,
    };
}
