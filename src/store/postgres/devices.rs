//! Devices ([`Devices`]): check-ins (compare-and-set on the row's revision, retried against the
//! winner of a race), imports, reads, the summary and erasure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::registry::write_audit;
use super::Cached;
use super::{
    api, db, from_json, overrides_from, report_from, run, spawn, sql_error, to_json, PostgresStore,
    TxResult, REPORT_COLUMNS, RETRIES,
};
use crate::model::{
    AuditAction, AuditEntry, Device, DeviceEntry, DeviceListQuery, DevicePage, DeviceReport,
    DeviceSummary, Overrides, RolloutDecision, SEEN_DAYS,
};
use crate::store::{
    Change, CheckIn, Devices, EraseTarget, Erased, StoreError, StoreFuture, StoreResult, Upsert,
};
use crate::timefmt::Micros;

/// A device's columns for an entry: the device, its overrides and its bundle's id, from
/// `devices d`, `overrides o` and `bundles b` (read by [`entry_from`]).
pub(crate) const ENTRY_COLUMNS: &str = "d.device_id, d.updated_at, d.revision, custom_id, \
     version_name, version_build, os_version, plugin_version, platform, is_prod, is_emulator, \
     default_channel, install_source, key_id, d.rollout, o.channel, o.version, o.set_at, b.id";

/// The condition that the app of `d` exists and is not being deleted: devices of an app being
/// deleted are gone for readers at once, as the app is.
pub(crate) const APP_LIVE: &str =
    "EXISTS (SELECT 1 FROM apps a WHERE a.app_id = d.app_id AND NOT a.deleting)";

/// The joins [`ENTRY_COLUMNS`] reads from, after `FROM devices d`.
pub(crate) const ENTRY_JOINS: &str = "LEFT JOIN overrides o ON o.app_id = d.app_id \
     AND o.device_id = d.device_id LEFT JOIN bundles b ON b.app_id = d.app_id \
     AND b.version = d.version_name";

/// A device's own columns, as [`entry_row`] reads them (the first columns of an entry too).
pub(crate) const DEVICE_ROW_COLUMNS: &str = "device_id, updated_at, revision, custom_id, \
     version_name, version_build, os_version, plugin_version, platform, is_prod, is_emulator, \
     default_channel, install_source, key_id, rollout";

/// A device from a row whose first columns are [`DEVICE_ROW_COLUMNS`].
pub(crate) fn entry_row(app_id: &str, row: &Row) -> StoreResult<Device> {
    let rollout: Option<serde_json::Value> = row.get(14);
    Ok(Device {
        app_id: app_id.to_owned(),
        device_id: row.get(0),
        updated_at: api(row.get(1)),
        report: report_from(row, 3)?,
        rollout: rollout.map(|r| from_json("devices", r)).transpose()?,
    })
}

pub(crate) fn entry_from(app_id: &str, row: &Row) -> StoreResult<DeviceEntry> {
    let bundle_id: Option<i64> = row.get(18);
    Ok(DeviceEntry {
        device: entry_row(app_id, row)?,
        overrides: overrides_from(row, 15),
        bundle_id: bundle_id.map(api),
    })
}

/// A device as stored, with the revision a write compares against.
#[derive(Clone)]
struct Stored {
    revision: i64,
    updated_at: Micros,
    report: DeviceReport,
    rollout: Option<RolloutDecision>,
}

type Key = (String, String);

/// Devices erased per transaction.
const ERASE_CHUNK: usize = 512;

/// Device rows as column arrays, for one `unnest` statement.
#[derive(Default)]
struct DeviceColumns {
    app_id: Vec<String>,
    device_id: Vec<String>,
    updated_at: Vec<i64>,
    custom_id: Vec<String>,
    version_name: Vec<Option<String>>,
    version_build: Vec<String>,
    os_version: Vec<String>,
    plugin_version: Vec<String>,
    platform: Vec<&'static str>,
    is_prod: Vec<bool>,
    is_emulator: Vec<bool>,
    default_channel: Vec<Option<String>>,
    install_source: Vec<Option<String>>,
    key_id: Vec<Option<String>>,
    rollout: Vec<Option<serde_json::Value>>,
    revision: Vec<i64>,
}

impl DeviceColumns {
    fn push(
        &mut self,
        app_id: &str,
        device_id: &str,
        updated_at: Micros,
        report: &DeviceReport,
        rollout: &Option<RolloutDecision>,
        revision: i64,
    ) {
        self.app_id.push(app_id.to_owned());
        self.device_id.push(device_id.to_owned());
        self.updated_at.push(db(updated_at));
        self.custom_id.push(report.custom_id.clone());
        self.version_name.push(report.version_name.clone());
        self.version_build.push(report.version_build.clone());
        self.os_version.push(report.os_version.clone());
        self.plugin_version.push(report.plugin_version.clone());
        self.platform.push(report.platform.as_str());
        self.is_prod.push(report.is_prod);
        self.is_emulator.push(report.is_emulator);
        self.default_channel.push(report.default_channel.clone());
        self.install_source.push(report.install_source.clone());
        self.key_id.push(report.key_id.clone());
        self.rollout.push(rollout.as_ref().map(to_json));
        self.revision.push(revision);
    }

    fn is_empty(&self) -> bool {
        self.app_id.is_empty()
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 16] {
        [
            &self.app_id,
            &self.device_id,
            &self.updated_at,
            &self.custom_id,
            &self.version_name,
            &self.version_build,
            &self.os_version,
            &self.plugin_version,
            &self.platform,
            &self.is_prod,
            &self.is_emulator,
            &self.default_channel,
            &self.install_source,
            &self.key_id,
            &self.rollout,
            &self.revision,
        ]
    }
}

/// `unnest` of [`DeviceColumns::params`], as `u`.
const UNNEST_DEVICES: &str = "unnest($1::text[], $2::text[], $3::bigint[], $4::text[], \
     $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[], $11::bool[], \
     $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::bigint[]) AS u(app_id, device_id, \
     updated_at, custom_id, version_name, version_build, os_version, plugin_version, platform, \
     is_prod, is_emulator, default_channel, install_source, key_id, rollout, revision)";

/// The columns a device row is inserted with (its revision is the sequence's), and the same
/// read from [`UNNEST_DEVICES`].
const DEVICE_INSERT_COLUMNS: &str = "app_id, device_id, updated_at, custom_id, version_name, \
     version_build, os_version, plugin_version, platform, is_prod, is_emulator, default_channel, \
     install_source, key_id, rollout";
const U_INSERT_COLUMNS: &str = "u.app_id, u.device_id, u.updated_at, u.custom_id, \
     u.version_name, u.version_build, u.os_version, u.plugin_version, u.platform, u.is_prod, \
     u.is_emulator, u.default_channel, u.install_source, u.key_id, u.rollout";

const SET_FROM_U: &str = "updated_at = u.updated_at, custom_id = u.custom_id, \
     version_name = u.version_name, version_build = u.version_build, \
     os_version = u.os_version, plugin_version = u.plugin_version, platform = u.platform, \
     is_prod = u.is_prod, is_emulator = u.is_emulator, default_channel = u.default_channel, \
     install_source = u.install_source, key_id = u.key_id, rollout = u.rollout";

fn keys_of(rows: &[Row]) -> HashSet<Key> {
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

impl PostgresStore {
    /// The stored state of these devices, and which of their apps exist: one statement.
    async fn read_for_check_ins(
        client: &impl GenericClient,
        keys: &[Key],
    ) -> TxResult<(HashSet<String>, HashMap<Key, Stored>)> {
        let (apps, devices): (Vec<&str>, Vec<&str>) = keys
            .iter()
            .map(|(app, device)| (app.as_str(), device.as_str()))
            .unzip();
        let select = client
            .prepare_cached(&format!(
                "SELECT k.app_id, k.device_id, a.app_id IS NOT NULL, d.revision, d.updated_at, \
                     {REPORT_COLUMNS}, d.rollout \
                 FROM unnest($1::text[], $2::text[]) AS k(app_id, device_id) \
                 LEFT JOIN apps a ON a.app_id = k.app_id AND NOT a.deleting \
                 LEFT JOIN devices d ON d.app_id = k.app_id AND d.device_id = k.device_id"
            ))
            .await?;
        let rows = client.query(&select, &[&apps, &devices]).await?;
        let mut known = HashSet::new();
        let mut stored = HashMap::with_capacity(rows.len());
        for row in &rows {
            if row.get::<_, bool>(2) {
                known.insert(row.get(0));
            }
            // No revision: no device (its other columns are null too).
            let Some(revision) = row.get::<_, Option<i64>>(3) else {
                continue;
            };
            let rollout: Option<serde_json::Value> = row.get(16);
            stored.insert(
                (row.get(0), row.get(1)),
                Stored {
                    revision,
                    updated_at: api(row.get(4)),
                    report: report_from(row, 5)?,
                    rollout: rollout.map(|r| from_json("devices", r)).transpose()?,
                },
            );
        }
        Ok((known, stored))
    }

    /// Records check-ins in order, one outcome each (see [`Devices::check_in`]). Each round reads
    /// the devices still open, judges every check-in against the state before it (a device
    /// named twice sees its first check-in), and writes the devices that changed in two
    /// statements: inserts that yield to a device created meanwhile, updates that apply only to
    /// the revision read. The check-ins of a device that lost such a race are judged again.
    pub(crate) async fn record_check_ins(&self, check_ins: &[CheckIn]) -> StoreResult<Vec<Upsert>> {
        let mut outcomes: Vec<Option<Upsert>> = vec![None; check_ins.len()];
        let client = self.client().await?;
        for _round in 0..RETRIES {
            let open: Vec<usize> = (0..check_ins.len())
                .filter(|i| outcomes[*i].is_none())
                .collect();
            if open.is_empty() {
                break;
            }
            let mut keys: Vec<Key> = open
                .iter()
                .map(|i| {
                    (
                        check_ins[*i].app_id.clone(),
                        check_ins[*i].device_id.clone(),
                    )
                })
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let (known_apps, read) = Self::read_for_check_ins(&client, &keys)
                .await
                .map_err(super::TxError::into_store)?;
            // The state each check-in is judged against, as the batch changes it.
            let mut state: HashMap<Key, Option<Stored>> = HashMap::new();
            let mut written_keys: HashSet<Key> = HashSet::new();
            // Every check-in of a device judged this round, written or not: if the device's
            // write loses a race, all of them are judged again (against the winner).
            let mut judged: HashMap<Key, Vec<usize>> = HashMap::new();
            for index in &open {
                let check_in = &check_ins[*index];
                if !known_apps.contains(&check_in.app_id) {
                    outcomes[*index] = Some(Upsert::AppNotFound);
                    continue;
                }
                let key = (check_in.app_id.clone(), check_in.device_id.clone());
                judged.entry(key.clone()).or_default().push(*index);
                let current = state
                    .entry(key.clone())
                    .or_insert_with(|| read.get(&key).cloned());
                let outcome = match current.as_ref() {
                    None => Upsert::Created,
                    Some(old)
                        if check_in.changes_nothing(&old.report, &old.rollout, old.updated_at) =>
                    {
                        outcomes[*index] = Some(Upsert::Unchanged);
                        continue;
                    }
                    Some(old) if check_in.decides_nothing_new(&old.report, &old.rollout) => {
                        Upsert::Touched
                    }
                    Some(_) => Upsert::Updated,
                };
                let (report, rollout) = match current.as_ref() {
                    None => (check_in.report.clone(), check_in.rollout.clone().flatten()),
                    Some(old) => (
                        old.report.updated_with(&check_in.report),
                        match &check_in.rollout {
                            Some(decision) => decision.clone(),
                            None => old.rollout.clone(),
                        },
                    ),
                };
                *current = Some(Stored {
                    revision: current.as_ref().map_or(0, |old| old.revision),
                    updated_at: check_in.now,
                    report,
                    rollout,
                });
                outcomes[*index] = Some(outcome);
                written_keys.insert(key);
            }
            if written_keys.is_empty() {
                continue;
            }
            let (mut inserts, mut updates) = (DeviceColumns::default(), DeviceColumns::default());
            for key in &written_keys {
                let Some(Some(new)) = state.get(key) else {
                    continue;
                };
                match read.get(key) {
                    None => {
                        inserts.push(&key.0, &key.1, new.updated_at, &new.report, &new.rollout, 0)
                    }
                    Some(old) => updates.push(
                        &key.0,
                        &key.1,
                        new.updated_at,
                        &new.report,
                        &new.rollout,
                        old.revision,
                    ),
                }
            }
            let insert = async {
                if inserts.is_empty() {
                    return Ok(Vec::new());
                }
                let statement = client
                    .prepare_cached(&format!(
                        "INSERT INTO devices ({DEVICE_INSERT_COLUMNS}) SELECT {U_INSERT_COLUMNS} FROM {UNNEST_DEVICES} \
                         ON CONFLICT (app_id, device_id) DO NOTHING RETURNING app_id, device_id"
                    ))
                    .await?;
                client.query(&statement, &inserts.params()).await
            };
            let update = async {
                if updates.is_empty() {
                    return Ok(Vec::new());
                }
                let statement = client
                    .prepare_cached(&format!(
                        "UPDATE devices d SET {SET_FROM_U}, revision = nextval('device_revisions') \
                         FROM {UNNEST_DEVICES} WHERE d.app_id = u.app_id \
                         AND d.device_id = u.device_id AND d.revision = u.revision \
                         RETURNING d.app_id, d.device_id"
                    ))
                    .await?;
                client.query(&statement, &updates.params()).await
            };
            let (inserted, updated) = futures_util::future::join(insert, update).await;
            // The two statements commit on their own: what one wrote stands if the other fails.
            let updated = keys_of(&updated.map_err(sql_error)?);
            let inserted = match inserted {
                Ok(rows) => keys_of(&rows),
                // An app deleted since the read: its new devices are judged again (next round
                // finds the app gone).
                Err(error)
                    if error.code()
                        == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) =>
                {
                    HashSet::new()
                }
                Err(error) => return Err(sql_error(error)),
            };
            let mut written = 0u64;
            for key in &written_keys {
                if inserted.contains(key) || updated.contains(key) {
                    written += 1;
                } else {
                    // Another writer got there first: this device's check-ins are judged again.
                    for index in &judged[key] {
                        outcomes[*index] = None;
                    }
                }
            }
            self.check_in_writes.fetch_add(written, Ordering::Relaxed);
            self.check_in_batches.fetch_add(1, Ordering::Relaxed);
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.ok_or_else(|| {
                    StoreError::Conflict("check-ins kept losing to concurrent writes".into())
                })
            })
            .collect()
    }

    /// Writes devices as given (see [`Devices::import_devices`]).
    pub(crate) async fn import_rows(
        client: &impl GenericClient,
        app_id: &str,
        devices: &[Device],
    ) -> TxResult<bool> {
        let exists = client
            .row_opt(
                "SELECT 1 FROM apps WHERE app_id = $1 AND NOT deleting",
                &[&app_id],
            )
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        // One statement may not change a row twice: the last of a device's rows wins, as
        // writing them in order would have it.
        let mut last: BTreeMap<&str, &Device> = BTreeMap::new();
        for device in devices {
            last.insert(&device.device_id, device);
        }
        let mut rows = DeviceColumns::default();
        for device in last.values() {
            rows.push(
                app_id,
                &device.device_id,
                device.updated_at,
                &device.report,
                &device.rollout,
                0,
            );
        }
        if rows.is_empty() {
            return Ok(true);
        }
        client
                .run(
                    &format!(
                        "INSERT INTO devices ({DEVICE_INSERT_COLUMNS}) SELECT {U_INSERT_COLUMNS} FROM {UNNEST_DEVICES} \
                         ON CONFLICT (app_id, device_id) DO UPDATE SET \
                         updated_at = excluded.updated_at, custom_id = excluded.custom_id, \
                         version_name = excluded.version_name, \
                         version_build = excluded.version_build, \
                         os_version = excluded.os_version, \
                         plugin_version = excluded.plugin_version, platform = excluded.platform, \
                         is_prod = excluded.is_prod, is_emulator = excluded.is_emulator, \
                         default_channel = excluded.default_channel, \
                         install_source = excluded.install_source, key_id = excluded.key_id, \
                         rollout = excluded.rollout, revision = nextval('device_revisions')"
                    ),
                    &rows.params(),
                )
                .await
                .map_err(|error| {
                    if error.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
                    {
                        super::TxError::Store(StoreError::Conflict(format!(
                            "app {app_id} was deleted during the import"
                        )))
                    } else {
                        super::TxError::Sql(error)
                    }
                })?;
        Ok(true)
    }

    async fn read_entry(&self, app_id: &str, device_id: &str) -> StoreResult<Option<DeviceEntry>> {
        let client = self.client().await?;
        client
            .row_opt(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM devices d {ENTRY_JOINS} \
                     WHERE d.app_id = $1 AND d.device_id = $2 AND {APP_LIVE}"
                ),
                &[&app_id, &device_id],
            )
            .await
            .map_err(sql_error)?
            .map(|row| entry_from(app_id, &row))
            .transpose()
    }

    /// Erases these devices with their overrides, in the caller's transaction, each recorded in
    /// the audit log; answers what was removed, in the order given.
    async fn erase_in(
        tx: &impl GenericClient,
        app_id: &str,
        device_ids: &[String],
        change: Change,
    ) -> TxResult<Vec<Erased>> {
        let removed: HashSet<String> = tx
            .rows(
                "DELETE FROM devices WHERE app_id = $1 AND device_id = ANY($2) RETURNING device_id",
                &[&app_id, &device_ids],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut overrides: HashMap<String, Overrides> = HashMap::new();
        for row in tx
            .rows(
                "DELETE FROM overrides WHERE app_id = $1 AND device_id = ANY($2) \
                 RETURNING device_id, channel, version, set_at",
                &[&app_id, &device_ids],
            )
            .await?
        {
            overrides.insert(row.get(0), overrides_from(&row, 1));
        }
        let mut erased = Vec::new();
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        for device_id in device_ids {
            if !seen.insert(device_id) {
                continue;
            }
            let record = removed.contains(device_id);
            let gone = overrides.remove(device_id).unwrap_or_default();
            if record || !gone.is_empty() {
                entries.push(AuditEntry::of_change(
                    device_id,
                    0,
                    (change.actor, change.at),
                    AuditAction::Erase,
                    &gone,
                    &Overrides::default(),
                ));
                erased.push(Erased {
                    device_id: device_id.clone(),
                    record,
                    overrides: gone,
                });
            }
        }
        write_audit(tx, app_id, &entries).await?;
        Ok(erased)
    }
}

impl Devices for PostgresStore {
    fn upsert_device(
        &self,
        app_id: &str,
        device_id: &str,
        report: &DeviceReport,
        now: Micros,
        touch_interval: Micros,
    ) -> StoreResult<Upsert> {
        let check_in = CheckIn::reporting(app_id, device_id, report, now, touch_interval);
        let mut outcomes = self.upsert_devices(std::slice::from_ref(&check_in))?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Engine("a check-in went unanswered".into()))
    }

    fn upsert_devices(&self, check_ins: &[CheckIn]) -> StoreResult<Vec<Upsert>> {
        run(self.record_check_ins(check_ins))
    }

    fn check_in(&self, check_ins: Vec<CheckIn>) -> StoreFuture<Vec<Upsert>> {
        let store = self.shared();
        spawn(async move { store.record_check_ins(&check_ins).await })
    }

    fn import_devices(&self, app_id: &str, devices: &[Device]) -> StoreResult<bool> {
        run(async {
            let client = self.client().await?;
            Self::import_rows(&client, app_id, devices)
                .await
                .map_err(super::TxError::into_store)
        })
    }

    fn device(&self, app_id: &str, device_id: &str) -> StoreResult<Option<DeviceEntry>> {
        run(self.read_entry(app_id, device_id))
    }

    fn device_exists(&self, app_id: &str, device_id: &str) -> StoreResult<bool> {
        run(async {
            let client = self.client().await?;
            let row = client
                .row_opt(
                    "SELECT 1 FROM devices WHERE app_id = $1 AND device_id = $2",
                    &[&app_id, &device_id],
                )
                .await
                .map_err(sql_error)?;
            Ok(row.is_some())
        })
    }

    fn rollout_decision(
        &self,
        app_id: &str,
        device_id: &str,
    ) -> StoreResult<Option<RolloutDecision>> {
        run(async {
            let client = self.client().await?;
            let row = client
                .row_opt(
                    "SELECT rollout FROM devices WHERE app_id = $1 AND device_id = $2",
                    &[&app_id, &device_id],
                )
                .await
                .map_err(sql_error)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let rollout: Option<serde_json::Value> = row.get(0);
            rollout.map(|r| from_json("devices", r)).transpose()
        })
    }

    fn list_devices(&self, app_id: &str, query: &DeviceListQuery) -> StoreResult<DevicePage> {
        run(self.page(app_id, query))
    }

    /// Counted by the database at each call (one scan of the app's devices, one of its
    /// overrides): no counters to keep in step, a cost that follows the app's size.
    fn device_summary(&self, app_id: &str, now: Micros) -> StoreResult<DeviceSummary> {
        run(async {
            let client = self.client().await?;
            let windows: Vec<i64> = SEEN_DAYS
                .iter()
                .map(|days| db(now.saturating_sub(days * 86_400_000_000)))
                .collect();
            let statement = client
                .prepare_cached(
                    "SELECT GROUPING(platform, version_name, version_build)::int, platform, \
                     version_name, version_build, count(*), \
                     count(*) FILTER (WHERE is_prod), count(*) FILTER (WHERE is_emulator), \
                     count(*) FILTER (WHERE updated_at > $2), \
                     count(*) FILTER (WHERE updated_at > $3), \
                     count(*) FILTER (WHERE updated_at > $4) \
                     FROM devices WHERE app_id = $1 \
                     GROUP BY GROUPING SETS ((platform), (version_name), (version_build), ())",
                )
                .await
                .map_err(sql_error)?;
            let rollouts = client
                .prepare_cached(
                    "SELECT (rollout->>'channel_id')::bigint, (rollout->>'rollout_id')::bigint, \
                     count(*) FROM devices WHERE app_id = $1 AND rollout IS NOT NULL \
                     AND (rollout->>'selected')::boolean GROUP BY 1, 2",
                )
                .await
                .map_err(sql_error)?;
            let channels = client
                .prepare_cached(
                    "SELECT o.channel, count(*) FROM overrides o JOIN devices d \
                     ON d.app_id = o.app_id AND d.device_id = o.device_id \
                     WHERE o.app_id = $1 AND o.channel IS NOT NULL GROUP BY o.channel",
                )
                .await
                .map_err(sql_error)?;
            let (groups, selected, linked) = futures_util::future::try_join3(
                client.query(
                    &statement,
                    &[&app_id, &windows[0], &windows[1], &windows[2]],
                ),
                client.query(&rollouts, &[&app_id]),
                client.query(&channels, &[&app_id]),
            )
            .await
            .map_err(sql_error)?;
            let mut summary = DeviceSummary::default();
            for row in &groups {
                let count = api(row.get(4));
                // GROUPING's bits, from the first argument: 1 where a column is grouped out.
                match row.get::<_, i32>(0) {
                    0b011 => {
                        summary.platforms.insert(row.get(1), count);
                    }
                    0b101 => {
                        // No name and an empty one count together, as the sled engine counts.
                        let name: Option<String> = row.get(2);
                        *summary
                            .version_names
                            .entry(name.unwrap_or_default())
                            .or_default() += count;
                    }
                    0b110 => {
                        summary.version_builds.insert(row.get(3), count);
                    }
                    _ => {
                        summary.total = count;
                        summary.prod = api(row.get(5));
                        summary.emulator = api(row.get(6));
                        summary.seen = [api(row.get(7)), api(row.get(8)), api(row.get(9))];
                    }
                }
            }
            for row in &selected {
                let (channel_id, rollout_id): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
                if let (Some(channel_id), Some(rollout_id)) = (channel_id, rollout_id) {
                    summary
                        .rollouts_selected
                        .insert((api(channel_id), api(rollout_id)), api(row.get(2)));
                }
            }
            for row in &linked {
                summary.channels.insert(row.get(0), api(row.get(1)));
            }
            Ok(summary)
        })
    }

    fn erase_devices(
        &self,
        app_id: &str,
        target: EraseTarget<'_>,
        change: Change,
    ) -> StoreResult<Vec<Erased>> {
        run(async {
            let device_ids: Vec<String> = match target {
                EraseTarget::Device(device_id) => vec![device_id.to_owned()],
                // Empty custom ids are nobody's (the sled engine does not index them).
                EraseTarget::CustomId(custom_id) => {
                    let client = self.client().await?;
                    client
                        .rows(
                            "SELECT device_id FROM devices WHERE app_id = $1 AND custom_id = $2 \
                             AND custom_id <> '' ORDER BY device_id",
                            &[&app_id, &custom_id],
                        )
                        .await
                        .map_err(sql_error)?
                        .iter()
                        .map(|row| row.get(0))
                        .collect()
                }
            };
            // A transaction per chunk, as the sled engine erases: thousands of devices reporting
            // one custom id are not one transaction. Erasure is idempotent: after a failure
            // midway, calling again erases the rest.
            let mut erased = Vec::with_capacity(device_ids.len());
            for chunk in device_ids.chunks(ERASE_CHUNK) {
                erased.extend(serializable!(self, |tx| {
                    Self::erase_in(&tx, app_id, chunk, change).await
                })?);
            }
            Ok(erased)
        })
    }
}

impl PostgresStore {
    /// The store as an owned handle, for work that outlives the call (futures on the engine's
    /// runtime).
    pub(crate) fn shared(&self) -> Arc<PostgresStore> {
        self.this
            .upgrade()
            .expect("a PostgreSQL store is used through its Arc")
    }
}
