//! Expiry ([`Retention`]): devices not seen since the cutoff, with their index entries and
//! overrides, and overrides of devices that never checked in; bounded per call.

use super::*;

impl SledStore {
    /// Deletes up to `limit` devices of one app last seen before `cutoff`, oldest first: a range
    /// scan of the time index that stops at the cutoff. Each chunk of devices goes in one
    /// atomic write with their index entries and overrides; a device that checked in since the
    /// scan is left alone. Returns (removed, visited).
    pub(super) fn expire_app_devices(
        &self,
        app_id: &str,
        cutoff: Micros,
        limit: usize,
        change: Change,
    ) -> StoreResult<(usize, usize)> {
        /// Devices per atomic write: amortises its cost, keeps each one short.
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
            removed += self.atomically(
                self.device_trees(),
                |[
                    devices,
                    by_time,
                    overrides,
                    overrides_by_time,
                    audit,
                    audit_by_device,
                    counts,
                    custom_ids,
                ]| {
                        let mut gone = 0;
                        for (i, (time_key, updated_at, device_id)) in chunk.iter().enumerate() {
                            let device_key = keys::app_scoped(app_id, device_id);
                            by_time.remove(time_key)?;
                            // The record decides, not the entry's copy: an entry left behind
                            // by damage must not take a live device with it.
                            if let Some(bytes) = devices.get(&device_key)? {
                                let record: DeviceRecord = decode("devices", &bytes)?;
                                if record.updated_at != *updated_at {
                                    // Checked in since: this entry was stale, the device lives on.
                                    continue;
                                }
                                devices.remove(device_key.as_slice())?;
                                apply_counts(counts, &count_deltas(app_id, Some(&record), None))?;
                                index_custom_id(
                                    custom_ids,
                                    app_id,
                                    device_id,
                                    Some(&record),
                                    None,
                                )?;
                            }
                            if let Some(bytes) = overrides.take(device_key.as_slice())? {
                                let old: Overrides = decode("overrides", &bytes)?;
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
    pub(super) fn expire_app_overrides(
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
        // Audit numbers for the overrides this call may remove, reserved in one write; those
        // left unused are gaps, which numbering allows.
        let visiting = count_entries(
            self.overrides_by_time
                .range(start.clone()..end.clone())
                .keys()
                .take(limit),
        )?;
        let mut seqs = self.audit_seqs(visiting)?.into_iter();
        for entry in self.overrides_by_time.range(start..end).keys().take(limit) {
            let time_key = entry?;
            visited += 1;
            let (_, set_at, device_id) = keys::split_device_time(&time_key)
                .ok_or_else(|| corrupt_key("overrides_by_time"))?;
            let device_key = keys::app_scoped(app_id, device_id);
            let seq = match seqs.next() {
                Some(seq) => seq,
                None => self.audit_seqs(1)?[0],
            };
            let gone = self.atomically(
                [
                    &self.devices,
                    &self.overrides,
                    &self.overrides_by_time,
                    &self.audit,
                    &self.audit_by_device,
                ],
                |[devices, overrides, by_time, audit, audit_by_device]| {
                    by_time.remove(&time_key)?;
                    if devices.get(&device_key)?.is_some() {
                        return Ok(false);
                    }
                    let Some(bytes) = overrides.get(&device_key)? else {
                        return Ok(false);
                    };
                    let current: Overrides = decode("overrides", &bytes)?;
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

impl Retention for SledStore {
    fn expire_audit_before(&self, cutoff: Micros, limit: usize) -> StoreResult<(usize, bool)> {
        if limit == 0 {
            return Ok((0, false));
        }
        let _registry = self.shared();
        self.expire_audit(cutoff, limit)
    }

    fn expire_version_events_before(&self, day: u32, limit: usize) -> StoreResult<(usize, bool)> {
        if limit == 0 {
            return Ok((0, false));
        }
        self.expire_version_events(day, limit)
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
        let (devices, more) = each_app_within(&app_ids, limit, |app_id, room| {
            self.expire_app_devices(app_id, cutoff, room, change)
        })?;
        expired.devices = devices;
        expired.more = more;
        if more {
            return Ok(expired);
        }
        let (orphans, more) = each_app_within(&app_ids, limit, |app_id, room| {
            self.expire_app_overrides(app_id, cutoff, room, change)
        })?;
        expired.orphan_overrides = orphans;
        expired.more = more;
        Ok(expired)
    }
}

/// Runs `step(app_id, room)` over the apps until `limit` entries were visited; `step` answers
/// (removed, visited). Answers the removed total and whether the limit cut the pass short.
fn each_app_within(
    app_ids: &[IVec],
    limit: usize,
    mut step: impl FnMut(&str, usize) -> StoreResult<(usize, usize)>,
) -> StoreResult<(usize, bool)> {
    let (mut removed, mut room) = (0, limit);
    for app_id in app_ids {
        let app_id = std::str::from_utf8(app_id).map_err(|_| corrupt_key("apps"))?;
        let (removed_here, visited) = step(app_id, room)?;
        removed += removed_here;
        room -= visited;
        if room == 0 {
            return Ok((removed, true));
        }
    }
    Ok((removed, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures::*;

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

    #[test]
    fn expiry_goes_by_the_record_whatever_the_time_entry_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with_beta(dir.path());
        for (device_id, seen) in [("copied", 10), ("bare", 11), ("moved", 12), ("recent", 50)] {
            store
                .upsert_device("app", device_id, &report(), seen, 1)
                .unwrap();
        }
        store
            .write_overrides(&[link_to_beta(&["bare"], at(11))])
            .unwrap();
        // An entry written before entries carried their record.
        let bare = keys::device_time("app", 11, "bare");
        store.devices_by_time.insert(&bare, &[] as &[u8]).unwrap();
        // An entry that damage left behind when "moved" checked in again, with its old copy.
        let stale = keys::device_time("app", 12, "moved");
        let old_copy = store.devices_by_time.get(&stale).unwrap().unwrap();
        store
            .upsert_device("app", "moved", &report(), 40, 1)
            .unwrap();
        store.devices_by_time.insert(&stale, old_copy).unwrap();

        let expired = store.expire_before(20, 100, 20).unwrap();
        assert_eq!((expired.devices, expired.more), (2, false));
        assert!(!store.device_exists("app", "copied").unwrap());
        assert!(!store.device_exists("app", "bare").unwrap());
        assert!(store.device_exists("app", "moved").unwrap());
        assert!(store.device_exists("app", "recent").unwrap());
        let counts = store.counts().unwrap();
        assert_eq!(
            (counts.devices, counts.devices_by_time, counts.overrides),
            (2, 2, 0)
        );
        assert_eq!(store.device_summary("app", 20).unwrap().total, 2);
        assert!(store.check(false).unwrap().is_clean());
    }
}
