//! Erasure ([`Devices::erase_devices`]): a device, or every device reporting a custom id, removed
//! for good with its index entries, counters and overrides, each recorded in the audit log.

use super::devices::index_custom_id;
use super::*;

impl SledStore {
    /// See [`Devices::erase_devices`].
    pub(super) fn erase(
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
        // An atomic write per chunk: erasing the devices of a custom id that thousands report must
        // not become one write over all of them. Erasure is idempotent, so a crash midway
        // leaves the rest to a retry.
        let mut erased = Vec::new();
        for (device_ids, seqs) in device_ids
            .chunks(DELETE_CHUNK)
            .zip(seqs.chunks(DELETE_CHUNK))
        {
            erased.extend(self.erase_chunk(app_id, device_ids, seqs, change)?);
        }
        self.commit()?;
        Ok(erased)
    }

    /// Erases these devices, in one atomic write (see [`Devices::erase_devices`]).
    fn erase_chunk(
        &self,
        app_id: &str,
        device_ids: &[String],
        seqs: &[u64],
        change: Change,
    ) -> StoreResult<Vec<Erased>> {
        let erased = self.atomically(
            self.device_trees(),
            |[
                devices,
                devices_by_time,
                overrides,
                overrides_by_time,
                audit,
                audit_by_device,
                counts,
                custom_ids,
            ]| {
                    let mut erased = Vec::with_capacity(device_ids.len());
                    for (i, device_id) in device_ids.iter().enumerate() {
                        let key = keys::app_scoped(app_id, device_id);
                        let record = match devices.take(key.as_slice())? {
                            Some(bytes) => {
                                let old: DeviceRecord = decode("devices", &bytes)?;
                                apply_counts(counts, &count_deltas(app_id, Some(&old), None))?;
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
                        let removed_overrides = match overrides.take(key.as_slice())? {
                            Some(bytes) => {
                                let old: Overrides = decode("overrides", &bytes)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures::*;

    #[test]
    fn erasing_a_custom_id_that_many_devices_report_erases_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.create_app("app", "app", 1).unwrap();
        let count = DELETE_CHUNK * 2 + 3;
        let devices: Vec<Device> = (0..count)
            .map(|i| Device {
                app_id: "app".into(),
                device_id: format!("d{i:05}"),
                updated_at: 10 + i as u64,
                report: DeviceReport {
                    custom_id: "everyone".into(),
                    ..report()
                },
                rollout: None,
            })
            .collect();
        assert!(store.import_devices("app", &devices).unwrap());
        let change = Change {
            actor: Actor::Admin,
            at: 100,
        };
        let erased = store
            .erase_devices("app", EraseTarget::CustomId("everyone"), change)
            .unwrap();
        assert_eq!(erased.len(), count);
        assert_eq!(store.counts().unwrap().devices, 0);
        assert!(store.check(false).unwrap().is_clean());
    }
}
