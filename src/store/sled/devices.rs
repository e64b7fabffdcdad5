//! Devices ([`Devices`]): check-ins (settled from one read when they write nothing, else written
//! in one atomic write with their index entries and counters), imports, reads and the summary;
//! erasure is in erase.rs.

use super::*;

/// The `touch_interval` rule (see [`CheckIn::changes_nothing`]).
pub(super) fn check_in_changes_nothing(old: &DeviceRecord, check_in: &CheckIn) -> bool {
    check_in.changes_nothing(&old.report, &old.rollout, old.updated_at)
}

/// Whether a check-in leaves the device's report and rollout decision as they are.
fn decides_nothing_new(old: &DeviceRecord, check_in: &CheckIn) -> bool {
    check_in.decides_nothing_new(&old.report, &old.rollout)
}

/// Keeps `devices_by_custom_id` in step when a device goes from `old` to `new` (`None`: absent),
/// inside an atomic write. Empty custom ids are not indexed.
pub(super) fn index_custom_id(
    index: &View<'_>,
    app_id: &str,
    device_id: &str,
    old: Option<&DeviceRecord>,
    new: Option<&DeviceRecord>,
) -> StoreResult<()> {
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

impl SledStore {
    /// A check-in's outcome when it writes nothing (an unknown app, or a device reporting nothing
    /// new within `touch_interval`), from one read; `None` when it would write.
    pub(super) fn settled_check_in(
        &self,
        key: &[u8],
        check_in: &CheckIn,
    ) -> StoreResult<Option<Upsert>> {
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

    /// Writes the check-ins at `indexes`, in that order, in one atomic write, each judged inside
    /// it; one outcome each. The caller holds the registry lock.
    pub(super) fn write_check_ins_at(
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
        let written = self.atomically(
            [
                &self.devices,
                &self.devices_by_time,
                &self.device_counts,
                &self.devices_by_custom_id,
            ],
            |[devices, by_time, counts, custom_ids]| {
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
                        Some(bytes) => Some(decode("devices", &bytes)?),
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
                            if decides_nothing_new(old, check_in) {
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
                    let rollout = match (&check_in.rollout, &old) {
                        (Some(decision), _) => decision.clone(),
                        (None, Some(old)) => old.rollout.clone(),
                        (None, None) => None,
                    };
                    let new_record = DeviceRecord {
                        updated_at: check_in.now,
                        report,
                        rollout,
                    };
                    let encoded = encode_value(&new_record);
                    // The time index carries a copy of the record: time-ordered pages read no
                    // other tree (keys.rs).
                    by_time.insert(
                        keys::device_time(app_id, check_in.now, device_id),
                        encoded.as_slice(),
                    )?;
                    devices.insert(key.as_slice(), encoded)?;
                    // Applied after the new entry is in (`atomic.rs` applies every insert
                    // first): a time-ordered page read while this write lands may list the
                    // device twice, never miss it.
                    if let Some(old) = old.as_ref().filter(|old| old.updated_at != check_in.now) {
                        by_time.remove(keys::device_time(app_id, old.updated_at, device_id))?;
                    }
                    apply_counts(
                        counts,
                        &count_deltas(app_id, old.as_ref(), Some(&new_record)),
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
            },
        )?;
        let changed = written
            .iter()
            .filter(|o| !matches!(o, Upsert::Unchanged | Upsert::AppNotFound))
            .count();
        self.spend(changed as u64)?;
        Ok(written)
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
        let check_in = CheckIn::reporting(app_id, device_id, report, now, touch_interval);
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

    fn check_in(&self, check_ins: Vec<CheckIn>) -> StoreFuture<Vec<Upsert>> {
        let mut outcomes = match self.settle_check_ins(&check_ins) {
            Ok(settled) => settled,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        let (open, writes): (Vec<usize>, Vec<CheckIn>) = check_ins
            .into_iter()
            .enumerate()
            .filter(|(i, _)| outcomes[*i].is_none())
            .unzip();
        if writes.is_empty() {
            let settled = outcomes.into_iter().map(|o| o.unwrap_or(Upsert::Unchanged));
            return Box::pin(std::future::ready(Ok(settled.collect())));
        }
        if let Err(error) = self.room_for(&writes) {
            return Box::pin(std::future::ready(Err(error)));
        }
        let written = self.check_in_writer.queue_all(writes);
        Box::pin(async move {
            for (index, outcome) in open.into_iter().zip(written.await?) {
                outcomes[index] = Some(outcome);
            }
            Ok(outcomes
                .into_iter()
                .map(|o| o.unwrap_or(Upsert::Unchanged))
                .collect())
        })
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
                    rollout: device.rollout.clone(),
                };
                (
                    keys::app_scoped(app_id, &device.device_id),
                    encode_value(&record),
                    keys::device_time(app_id, device.updated_at, &device.device_id),
                )
            })
            .collect();
        self.atomically(
            [
                &self.devices,
                &self.devices_by_time,
                &self.device_counts,
                &self.devices_by_custom_id,
            ],
            |[tx_devices, by_time, counts, custom_ids]| {
                // Devices of a batch share counters: sum the changes, then write each once.
                let mut deltas: HashMap<Vec<u8>, i64> = HashMap::new();
                for ((key, value, time_key), device) in rows.iter().zip(devices) {
                    let old: Option<DeviceRecord> =
                        match tx_devices.replace(key.as_slice(), value.as_slice())? {
                            Some(bytes) => {
                                let old: DeviceRecord = decode("devices", &bytes)?;
                                by_time.remove(keys::device_time(
                                    app_id,
                                    old.updated_at,
                                    &device.device_id,
                                ))?;
                                Some(old)
                            }
                            None => None,
                        };
                    by_time.insert(time_key.as_slice(), value.as_slice())?;
                    let new = DeviceRecord {
                        updated_at: device.updated_at,
                        report: device.report.clone(),
                        rollout: device.rollout.clone(),
                    };
                    for (counter, delta) in count_deltas(app_id, old.as_ref(), Some(&new)) {
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
            },
        )?;
        self.spend(devices.len() as u64)?;
        Ok(true)
    }

    fn device_exists(&self, app_id: &str, device_id: &str) -> StoreResult<bool> {
        Ok(self
            .devices
            .contains_key(keys::app_scoped(app_id, device_id))?)
    }

    fn rollout_decision(
        &self,
        app_id: &str,
        device_id: &str,
    ) -> StoreResult<Option<RolloutDecision>> {
        match self.devices.get(keys::app_scoped(app_id, device_id))? {
            Some(bytes) => records::rollout_of(&bytes),
            None => Ok(None),
        }
    }

    fn device(&self, app_id: &str, device_id: &str) -> StoreResult<Option<DeviceEntry>> {
        // An app being deleted goes first, its devices after: they are gone for readers at once.
        if !self.apps.contains_key(app_id.as_bytes())? {
            return Ok(None);
        }
        let Some(bytes) = self.devices.get(keys::app_scoped(app_id, device_id))? else {
            return Ok(None);
        };
        let record: DeviceRecord = decode("devices", &bytes)?;
        let mut entries = self.entries(app_id, vec![(device_id.to_owned(), record)])?;
        Ok(entries.pop())
    }

    fn list_devices(&self, app_id: &str, query: &DeviceListQuery) -> StoreResult<DevicePage> {
        if !self.apps.contains_key(app_id.as_bytes())? {
            return Ok(DevicePage {
                devices: Vec::new(),
                next: None,
            });
        }
        let by_overrides =
            query.filter.channel.is_some() || query.filter.has_override == Some(true);
        let from_overrides = if by_overrides {
            self.rows_from_overrides(app_id, query)?
        } else {
            None
        };
        let from_index = match (from_overrides, query.filter.custom_id.as_deref()) {
            (Some(rows), _) => Some((rows, None)),
            (None, Some(custom_id)) if !custom_id.is_empty() => {
                self.rows_from_custom_id(app_id, custom_id, query)?
            }
            (None, _) => None,
        };
        let (mut rows, resume) = match (from_index, query.order) {
            (Some(found), _) => found,
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
        self.erase(app_id, target, change)
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
                dimension::ROLLOUT_SELECTED => {
                    if let Some(rollout) = split_rollout_value(value_bytes) {
                        *summary.rollouts_selected.entry(rollout).or_default() += count;
                    }
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
                *seen += count_entries(self.devices_by_time.range(start..end).keys())? as u64;
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

impl SledStore {
    /// What each check-in comes to without writing, from plain reads: the outcome when
    /// it writes nothing (an unknown app, or a device reporting nothing new within
    /// `touch_interval`), `None` when it must be written. A device that an earlier check-in of
    /// the slice writes is left open too: the stored record is no longer its state.
    pub fn settle_check_ins(&self, check_ins: &[CheckIn]) -> StoreResult<Vec<Option<Upsert>>> {
        let mut outcomes = Vec::with_capacity(check_ins.len());
        let mut open: HashSet<Vec<u8>> = HashSet::new();
        for check_in in check_ins {
            let key = keys::app_scoped(&check_in.app_id, &check_in.device_id);
            // A device that an earlier check-in of the slice writes is judged inside the
            // atomic write, against that write: the stored record is no longer its state.
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

    /// Writes check-ins in one atomic write, in order, each judged inside it (so a device named
    /// twice sees its first check-in, and an app deleted since settling is `AppNotFound`). The
    /// write's fixed cost (its intent) and its turn are shared by every check-in in it.
    pub fn write_check_ins(&self, check_ins: &[CheckIn]) -> StoreResult<Vec<Upsert>> {
        let _registry = self.shared();
        let all: Vec<usize> = (0..check_ins.len()).collect();
        self.write_check_ins_at(check_ins, &all)
    }
}

impl SledStore {
    /// Refuses check-ins that would create devices while the disk is below its free-space
    /// floor: known devices go on being written, new ones wait for space.
    fn room_for(&self, writes: &[CheckIn]) -> StoreResult<()> {
        if self.min_free.room() {
            return Ok(());
        }
        for check_in in writes {
            let key = keys::app_scoped(&check_in.app_id, &check_in.device_id);
            if !self.devices.contains_key(key)? {
                return Err(StoreError::Full(
                    "the disk is nearly full: new devices are refused until space returns".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures::*;

    /// A check-in of `device_id` in app `app` reporting `version` at `now`.
    fn check_in(device_id: &str, version: &str, now: Micros) -> CheckIn {
        CheckIn {
            app_id: "app".into(),
            device_id: device_id.into(),
            report: DeviceReport {
                version_name: Some(version.into()),
                ..report()
            },
            now,
            touch_interval: 100,
            rollout: None,
        }
    }

    #[test]
    fn a_batch_of_check_ins_applies_in_order_with_the_touch_rule() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with_beta(dir.path());
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
    fn an_imported_batch_is_all_there_before_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let report = crate::store::sled::fixtures::report();
        let devices: Vec<Device> = (0..1000u64)
            .map(|i| Device {
                app_id: "app".into(),
                device_id: format!("device_{i:09}"),
                updated_at: 1_000_000 + (i * 7919) % 5000,
                report: report.clone(),
                rollout: None,
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

    /// Every way a record is written leaves its copy in the time index; an entry of the older
    /// layout (no copy) still reads, and a copy that differs from its record is stale for
    /// `check` and rewritten by the repair.
    #[test]
    fn the_time_index_carries_each_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.create_app("app", "app", 1).unwrap();
        store
            .upsert_devices(&[check_in("d1", "1.0.0", 10), check_in("d2", "1.0.0", 20)])
            .unwrap();
        let imported = Device {
            app_id: "app".into(),
            device_id: "d3".into(),
            updated_at: 30,
            report: report(),
            rollout: None,
        };
        assert!(store.import_devices("app", &[imported]).unwrap());
        store
            .upsert_devices(&[check_in("d1", "2.0.0", 40)])
            .unwrap();
        let copies = || -> Vec<(Vec<u8>, Vec<u8>)> {
            store
                .devices_by_time
                .iter()
                .map(|entry| {
                    let (key, copy) = entry.unwrap();
                    let (_, _, device_id) = keys::split_device_time(&key).unwrap();
                    let record = store
                        .devices
                        .get(keys::app_scoped("app", device_id))
                        .unwrap();
                    (copy.to_vec(), record.unwrap().to_vec())
                })
                .collect()
        };
        assert_eq!(copies().len(), 3);
        assert!(copies().iter().all(|(copy, record)| copy == record));

        // An entry without a copy (written before copies were kept) reads its record.
        let d2 = keys::device_time("app", 20, "d2");
        store.devices_by_time.insert(&d2, &[] as &[u8]).unwrap();
        let query = DeviceListQuery {
            order: DeviceOrder::UpdatedAsc,
            after: None,
            updated_after: None,
            limit: 10,
            max_examined: 100,
            filter: crate::model::DeviceFilter::default(),
        };
        let page = store.list_devices("app", &query).unwrap();
        let listed: Vec<&str> = page
            .devices
            .iter()
            .map(|d| d.device.device_id.as_str())
            .collect();
        assert_eq!(listed, ["d2", "d3", "d1"]);
        assert_eq!(page.devices[0].device.updated_at, 20);
        assert!(store.check(false).unwrap().is_clean());

        // A copy that is not its record is found, and the repair writes it again.
        let d3 = keys::device_time("app", 30, "d3");
        let d1_record = store
            .devices
            .get(keys::app_scoped("app", "d1"))
            .unwrap()
            .unwrap();
        store.devices_by_time.insert(&d3, d1_record).unwrap();
        let found = store.check(false).unwrap();
        assert_eq!(found.stale_index_entries, 1);
        assert!(found.needs_repair());
        assert!(store.check(true).unwrap().repaired);
        assert!(store.check(false).unwrap().is_clean());
        assert!(copies().iter().all(|(copy, record)| copy == record));
    }
}
