//! [`Maintenance`]: flush, health, sizes and counts, and the offline check that verifies (and
//! repairs) every index against the primary records.

use super::*;

/// Counts (and describes) the entries of an index that no record expects; sorts `expected`.
pub(super) fn stale_entries(
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
pub(super) const CHECK_EXAMPLES: usize = 20;

impl CheckReport {
    fn note(&mut self, problem: String) {
        if self.examples.len() < CHECK_EXAMPLES {
            self.examples.push(problem);
        }
    }
}

/// An app-scoped record that passed the checks common to all: its key splits, its app exists,
/// its value decodes.
pub(super) struct Scoped<T> {
    app_id: String,
    name: String,
    value: T,
}

/// A counter's key as an operator reads it: `app_id dimension=value (shard n)`.
fn describe_count_key(key: &[u8]) -> String {
    match keys::split_device_count(key) {
        Some((app_id, dim, shard, value)) => {
            let name = match dim {
                dimension::TOTAL => "total",
                dimension::PLATFORM => "platform",
                dimension::VERSION_NAME => "version_name",
                dimension::VERSION_BUILD => "version_build",
                dimension::PROD => "is_prod",
                dimension::EMULATOR => "is_emulator",
                dimension::SEEN_DAY => "seen_day",
                _ => "unknown",
            };
            let value = if dim == dimension::SEEN_DAY {
                value
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_or_else(|_| "?".to_owned(), |day| day.to_string())
            } else {
                String::from_utf8_lossy(value).into_owned()
            };
            format!("{app_id} {name}={value:?} (shard {shard})")
        }
        None => format!("{:?} (malformed)", String::from_utf8_lossy(key)),
    }
}

impl SledStore {
    /// The checks every app-scoped record gets; `None` (with the problem noted) when it fails one.
    pub(super) fn check_scoped<'t, T: Record>(
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

    pub(super) fn check_store(&self, repair: bool) -> StoreResult<CheckReport> {
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
            for (key, delta) in count_deltas(app_id, None, Some(&record)) {
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
            match self.devices_by_time.get(&time_key)? {
                None => {
                    report.missing_index_entries += 1;
                    report.note(format!(
                        "device {app_id}/{device_id} has no time-index entry"
                    ));
                }
                // The entry's copy of the record (none in entries older than copies) must be
                // the record.
                Some(copy) if !copy.is_empty() && copy.as_ref() != encode_value(&record) => {
                    report.stale_index_entries += 1;
                    report.note(format!(
                        "the time-index entry of {app_id}/{device_id} holds another record"
                    ));
                }
                Some(_) => {}
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

        // Bundle health counters of apps that are gone.
        for key in self.version_events.iter().keys() {
            let key = key?;
            match keys::split_version_event(&key) {
                Some((app_id, version, _, _)) if !app_exists(app_id)? => {
                    report.orphan_records += 1;
                    report.note(format!("counter of {app_id}/{version} of a missing app"));
                    orphan_keys.push((&self.version_events, key.clone()));
                }
                Some(_) => {}
                None => report.corrupt_records += 1,
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
                report.note(format!(
                    "device counter {} differs from a recount",
                    describe_count_key(&key)
                ));
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
            let Ok(audit) = audit::decode_audit(&value) else {
                report.corrupt_records += 1;
                continue;
            };
            if audit.rollout.is_some() {
                // A channel's rollout change: no device index entry.
                continue;
            }
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

        // An interrupted import is named: only its source can finish it. A repair forgets it
        // (the operator who repairs has read its name; otherwise a lost file would keep the
        // store unclean for good).
        report.interrupted_imports = self.interrupted_imports()?;
        if repair && !report.interrupted_imports.is_empty() {
            for source in &report.interrupted_imports {
                self.db.remove(keys::import_pending(source))?;
            }
            self.db.flush()?;
            report.repaired = true;
        }
        if repair && report.needs_repair() {
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

    pub(super) fn rebuild_time_index(&self) -> StoreResult<()> {
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
                encode_value(&record),
            )?;
        }
        Ok(())
    }

    pub(super) fn rebuild_override_index(&self, override_times: &[Vec<u8>]) -> StoreResult<()> {
        self.overrides_by_time.clear()?;
        for key in override_times {
            self.overrides_by_time
                .insert(key.as_slice(), &[] as &[u8])?;
        }
        Ok(())
    }

    /// Clears override fields naming a channel or bundle that no longer exists.
    pub(super) fn remove_dangling_overrides(&self) -> StoreResult<()> {
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

/// How often the health check really writes: a load balancer probing every few milliseconds
/// costs one write a second, and a store that stops taking writes is seen within that second
/// (as is its recovery).
const HEALTH_PROBE_EVERY: Duration = Duration::from_secs(1);

/// The last write probe of the health check, and when it was made.
pub(super) struct HealthProbe {
    last: Mutex<Option<(Instant, StoreResult<()>)>>,
    writes: AtomicU64,
}

impl Default for HealthProbe {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
            writes: AtomicU64::new(0),
        }
    }
}

impl HealthProbe {
    /// The last probe's result while it is recent, else `write`'s.
    fn probe(&self, write: impl FnOnce() -> StoreResult<()>) -> StoreResult<()> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < HEALTH_PROBE_EVERY {
                return result.clone();
            }
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        let result = write();
        *last = Some((Instant::now(), result.clone()));
        result
    }
}

impl Maintenance for SledStore {
    fn reads_from_memory(&self) -> bool {
        true
    }

    fn write_stats(&self) -> WriteStats {
        let (commits, flushes) = self.commits.totals();
        let (override_writes, override_batches) = self.override_writer.totals();
        let (check_in_writes, check_in_batches) = self.check_in_writer.totals();
        WriteStats {
            commits,
            flushes,
            override_writes,
            override_batches,
            check_in_writes,
            check_in_batches,
        }
    }

    fn check(&self, repair: bool) -> StoreResult<CheckReport> {
        let report = self.check_store(repair)?;
        // A repair may have removed bundles (of apps that are gone).
        self.forget_bundle_ids();
        Ok(report)
    }

    fn mark_import(&self, source: &str, pending: bool) -> StoreResult<()> {
        let key = keys::import_pending(source);
        if pending {
            self.db.insert(key, &[] as &[u8])?;
        } else {
            self.db.remove(key)?;
        }
        self.flush_counted()
    }

    fn interrupted_imports(&self) -> StoreResult<Vec<String>> {
        self.db
            .scan_prefix(keys::import_pending(""))
            .keys()
            .map(|key| {
                let key = key?;
                keys::split_import_pending(&key)
                    .map(str::to_owned)
                    .ok_or_else(|| corrupt_key("(default)"))
            })
            .collect()
    }

    fn counts(&self) -> StoreResult<Counts> {
        Ok(Counts {
            apps: count_entries(self.apps.iter().keys())?,
            devices: count_entries(self.devices.iter().keys())?,
            devices_by_time: count_entries(self.devices_by_time.iter().keys())?,
            overrides: count_entries(self.overrides.iter().keys())?,
            overrides_by_time: count_entries(self.overrides_by_time.iter().keys())?,
        })
    }

    fn flush(&self) -> StoreResult<()> {
        self.record_generation()
    }

    fn health(&self) -> StoreResult<()> {
        if let Some(fault) = self
            .write_fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(StoreError::Unavailable(format!("a write failed: {fault}")));
        }
        self.health.probe(|| {
            // The default tree's key for it (see keys.rs). Flushed: sled takes writes in memory
            // on a full disk, and only its log's writes say the disk refuses them.
            self.db
                .insert(b"health_probe", &self.db.generate_id()?.to_be_bytes())?;
            self.flush_counted()
        })
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        Ok(self.db.size_on_disk()?)
    }

    fn device_counts(&self) -> StoreResult<Vec<(String, usize)>> {
        let mut counts = Vec::new();
        for app_id in self.apps.iter().keys() {
            let app_id = app_id?;
            let app_id = String::from_utf8(app_id.to_vec()).map_err(|_| corrupt_key("apps"))?;
            let devices = count_entries(self.devices.range(app_range(&app_id)).keys())?;
            counts.push((app_id, devices));
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_stops_at_a_read_that_keeps_failing() {
        // A failing read may yield its error on every step: counting must end at the first.
        let failing = std::iter::repeat_with(|| -> sled::Result<()> {
            Err(sled::Error::Io(std::io::Error::other(
                "No space left on device",
            )))
        });
        assert!(matches!(
            count_entries(failing),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(count_entries(vec![Ok(()), Ok(())].into_iter()).unwrap(), 2);
    }

    #[test]
    fn counter_keys_are_described_as_operators_read_them() {
        let mut key = keys::app_prefix("app");
        key.extend_from_slice(&[dimension::VERSION_NAME, 3]);
        key.extend_from_slice(b"1.0.0");
        assert_eq!(
            describe_count_key(&key),
            "app version_name=\"1.0.0\" (shard 3)"
        );
        let mut day = keys::app_prefix("app");
        day.extend_from_slice(&[dimension::SEEN_DAY, 0]);
        day.extend_from_slice(&20_000u32.to_be_bytes());
        assert_eq!(describe_count_key(&day), "app seen_day=\"20000\" (shard 0)");
    }

    #[test]
    fn frequent_health_checks_write_once_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for _ in 0..1_000 {
            store.health().unwrap();
        }
        assert!(store.health.writes.load(Ordering::Relaxed) <= 2);
        // A failed probe is answered as failed until the next one.
        let probe = HealthProbe::default();
        assert!(probe
            .probe(|| Err(StoreError::Unavailable("disk full".into())))
            .is_err());
        assert!(probe.probe(|| Ok(())).is_err());
    }
    use crate::store::sled::fixtures::*;

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
            rollout: None,
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
        // A bundle health counter of an app that is gone.
        store
            .count_version_events(&[crate::store::VersionEvent {
                app_id: "gone".into(),
                version: "1.0.0".into(),
                day: 1,
                action: "set".into(),
            }])
            .unwrap();

        let found = store.check(false).unwrap();
        assert_eq!(found.missing_index_entries, 1, "{found:?}");
        assert_eq!(found.stale_index_entries, 2, "{found:?}");
        assert_eq!(found.unexpirable_overrides, 1, "{found:?}");
        assert_eq!(found.orphan_records, 2, "{found:?}");
        assert_eq!(found.dangling_overrides, 2, "{found:?}");
        assert!(!found.repaired && !found.examples.is_empty());

        assert!(store.check(true).unwrap().repaired);
        let after = store.check(false).unwrap();
        assert!(after.is_clean(), "{after:?}");
        assert_eq!((after.devices, after.index_entries), (10, 10));
    }
}
