//! Dumps and restores ([`Backup`]) of the sled engine: the dump reads every tree under the
//! registry's exclusive lock (no write in between: a consistent snapshot); a restore writes the
//! records as the engine keeps them, devices through the import path (with their indexes and
//! counters).

use super::*;
use crate::store::backup::{secret_hash_of, Backup, DeviceBatches, DumpRecord};

/// Devices written per import batch during a restore.
const RESTORE_BATCH: usize = 2_000;

impl SledStore {
    /// The records of one app, in the dump's order.
    fn dump_app(
        &self,
        record: AppRecord,
        sink: &mut dyn FnMut(DumpRecord) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let app_id = record.app.app_id.clone();
        sink(DumpRecord::App {
            app_id: app_id.clone(),
            name: record.app.name,
            created_at: record.app.created_at,
            next_channel_id: record.next_channel_id,
            next_bundle_id: record.next_bundle_id,
        })?;
        for entry in self.app_entries(&self.bundles, &app_id) {
            let (_, value) = entry?;
            let bundle = decode::<StoredBundle>("bundles", &value)?.into_bundle();
            sink(DumpRecord::bundle(bundle))?;
        }
        for entry in self.app_entries(&self.channels, &app_id) {
            let (_, value) = entry?;
            let channel = decode::<StoredChannel>("channels", &value)?.into_channel();
            sink(DumpRecord::channel(channel))?;
        }
        for entry in self.app_entries(&self.devices, &app_id) {
            let (key, value) = entry?;
            let (_, device_id) =
                keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("devices"))?;
            let record: DeviceRecord = decode("devices", &value)?;
            sink(DumpRecord::Device {
                app_id: app_id.clone(),
                device_id: device_id.to_owned(),
                updated_at: record.updated_at,
                report: record.report,
                rollout: record.rollout,
            })?;
        }
        for entry in self.app_entries(&self.overrides, &app_id) {
            let (key, value) = entry?;
            let (_, device_id) =
                keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("overrides"))?;
            sink(DumpRecord::Overrides {
                app_id: app_id.clone(),
                device_id: device_id.to_owned(),
                overrides: decode("overrides", &value)?,
            })?;
        }
        for entry in self.app_entries(&self.audit, &app_id) {
            let (_, value) = entry?;
            sink(DumpRecord::audit(&app_id, audit::decode_audit(&value)?))?;
        }
        // Keyed version first with a separator that sorts after every byte of a name: sorted
        // here by (version, day, action), as the other engine orders them (counters are few).
        let mut events = Vec::new();
        for entry in self.app_entries(&self.version_events, &app_id) {
            let (key, value) = entry?;
            let (_, version, day, action) =
                keys::split_version_event(&key).ok_or_else(|| corrupt_key("version_events"))?;
            events.push((
                version.to_owned(),
                day,
                action.to_owned(),
                read_count(&value),
            ));
        }
        events.sort();
        for (version, day, action, count) in events {
            sink(DumpRecord::VersionEvent {
                app_id: app_id.clone(),
                version,
                day,
                action,
                count,
            })?;
        }
        Ok(())
    }

    fn restore_record(
        &self,
        record: DumpRecord,
        batches: &mut DeviceBatches,
        highest: &mut (u64, u64),
    ) -> StoreResult<()> {
        match record {
            DumpRecord::Header { .. } | DumpRecord::End { .. } => {}
            DumpRecord::Sequences {
                next_api_key_id,
                next_audit_seq,
            } => {
                // Numbers below the dumped positions were handed out: move past them.
                highest.0 = highest.0.max(next_api_key_id.saturating_sub(1));
                highest.1 = highest.1.max(next_audit_seq.saturating_sub(1));
            }
            DumpRecord::ApiKey { key, secret_hash } => {
                let hash = secret_hash_of(&secret_hash)?;
                highest.0 = highest.0.max(key.id);
                self.api_keys.insert(hash, encode_value(&key))?;
            }
            DumpRecord::App {
                app_id,
                name,
                created_at,
                next_channel_id,
                next_bundle_id,
            } => {
                let record = AppRecord {
                    app: App {
                        app_id: app_id.clone(),
                        name,
                        created_at,
                    },
                    next_channel_id,
                    next_bundle_id,
                };
                self.apps.insert(app_id.as_bytes(), encode_value(&record))?;
            }
            DumpRecord::Bundle { bundle, .. } => {
                self.bundles.insert(
                    keys::app_scoped(&bundle.app_id, &bundle.version),
                    encode_value(&StoredBundle::of(&bundle)),
                )?;
            }
            DumpRecord::Channel { channel, .. } => {
                self.channels.insert(
                    keys::app_scoped(&channel.app_id, &channel.name),
                    encode_value(&StoredChannel::of(&channel)),
                )?;
            }
            DumpRecord::Device {
                app_id,
                device_id,
                updated_at,
                report,
                rollout,
            } => {
                let device = Device {
                    app_id,
                    device_id,
                    updated_at,
                    report,
                    rollout,
                };
                if let Some(batch) = batches.push(device) {
                    self.restore_devices(&batch)?;
                }
            }
            DumpRecord::Overrides {
                app_id,
                device_id,
                overrides,
            } => {
                self.atomically(
                    [&self.overrides, &self.overrides_by_time],
                    |[tree, by_time]| {
                        tree.insert(
                            keys::app_scoped(&app_id, &device_id),
                            encode_value(&overrides),
                        )?;
                        by_time.insert(
                            keys::device_time(&app_id, overrides.set_at, &device_id),
                            &[] as &[u8],
                        )?;
                        Ok(())
                    },
                )?;
            }
            DumpRecord::Audit { app_id, entry, .. } => {
                highest.1 = highest.1.max(entry.seq);
                self.atomically([&self.audit, &self.audit_by_device], |[tree, by_device]| {
                    write_audit(tree, by_device, &app_id, &entry)?;
                    Ok(())
                })?;
            }
            DumpRecord::VersionEvent {
                app_id,
                version,
                day,
                action,
                count,
            } => {
                self.version_events.insert(
                    keys::version_event(&app_id, &version, day, &action),
                    &count.to_be_bytes(),
                )?;
            }
        }
        Ok(())
    }

    fn restore_devices(&self, devices: &[Device]) -> StoreResult<()> {
        if let Some(first) = devices.first() {
            let app_id = first.app_id.clone();
            if !self.import_devices(&app_id, devices)? {
                return Err(StoreError::Damaged(format!(
                    "the dump has devices of app {app_id} before the app"
                )));
            }
        }
        Ok(())
    }
}

impl Backup for SledStore {
    fn dump(&self, sink: &mut dyn FnMut(DumpRecord) -> StoreResult<()>) -> StoreResult<()> {
        // No write in between: the snapshot is consistent (writes wait for the dump).
        let _registry = self.exclusive();
        // A write cut short is half in the trees until the store is opened again: not dumped.
        self.refuse_if_torn()?;
        sink(DumpRecord::Sequences {
            next_api_key_id: self.reserve("api_key", 0)?,
            next_audit_seq: self.reserve("audit", 0)?,
        })?;
        let mut keys: Vec<(ApiKey, [u8; 32])> = Vec::new();
        for entry in self.api_keys.iter() {
            let (hash, value) = entry?;
            let hash: [u8; 32] = hash
                .as_ref()
                .try_into()
                .map_err(|_| corrupt_key("api_keys"))?;
            keys.push((decode("api_keys", &value)?, hash));
        }
        keys.sort_by_key(|(key, _)| key.id);
        for (key, hash) in keys {
            sink(DumpRecord::api_key(key, &hash))?;
        }
        for value in self.apps.iter().values() {
            self.dump_app(decode("apps", &value?)?, sink)?;
        }
        Ok(())
    }

    fn restore(
        &self,
        records: &mut dyn Iterator<Item = StoreResult<DumpRecord>>,
    ) -> StoreResult<u64> {
        if !self.apps.is_empty() || !self.api_keys.is_empty() {
            return Err(StoreError::Damaged(
                "a dump restores into an empty store only: this one holds apps or keys".into(),
            ));
        }
        let mut written = 0;
        let mut batches = DeviceBatches::new(RESTORE_BATCH);
        let mut highest = (0, 0);
        for record in records {
            self.restore_record(record?, &mut batches, &mut highest)?;
            written += 1;
        }
        self.restore_devices(&batches.rest())?;
        // The sequences continue after what was restored.
        for (name, highest) in [("api_key", highest.0), ("audit", highest.1)] {
            let next = self.reserve(name, 0)?;
            if next <= highest {
                self.reserve(name, highest + 1 - next)?;
            }
        }
        self.forget_bundle_ids();
        self.flush_counted()?;
        Ok(written)
    }
}
