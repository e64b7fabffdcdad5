//! Channel and version overrides ([`DeviceOverrides`]): batched writes with their audit entries,
//! previews, and the checks that refuse a write.

use super::*;

impl SledStore {
    pub(super) fn overrides_of(&self, app_id: &str, device_id: &str) -> StoreResult<Overrides> {
        Ok(self
            .overrides
            .get(keys::app_scoped(app_id, device_id))?
            .map(|bytes| decode("overrides", &bytes))
            .transpose()?
            .unwrap_or_default())
    }

    /// Why an override write cannot apply, if it cannot: its app, or what it links to, is
    /// missing.
    pub(super) fn override_refusal(
        &self,
        write: &OverrideWrite,
    ) -> StoreResult<Option<BulkOutcome>> {
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
}

impl DeviceOverrides for SledStore {
    fn apply_overrides(&self, write: OverrideWrite) -> StoreFuture<BulkOutcome> {
        let applied = self.override_writer.queue_all(vec![write]);
        Box::pin(async move {
            let mut outcomes = applied.await?;
            outcomes
                .pop()
                .ok_or_else(|| StoreError::Engine("a change of overrides went unanswered".into()))
        })
    }

    fn write_overrides(&self, writes: &[OverrideWrite]) -> StoreResult<Vec<BulkOutcome>> {
        let _registry = self.shared();
        // Refusals are decided before the atomic write: a refused write takes no part in it.
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
        let mut applied = self
            .atomically(
                [
                    &self.overrides,
                    &self.overrides_by_time,
                    &self.audit,
                    &self.audit_by_device,
                ],
                |[overrides, by_time, audit, audit_by_device]| {
                    let mut seqs = seqs.iter().copied();
                    let mut applied = Vec::with_capacity(writes.len());
                    for write in accepted() {
                        let app_id = write.app_id.as_str();
                        let mut changes = Vec::with_capacity(write.device_ids.len());
                        for (device_id, seq) in write.device_ids.iter().zip(seqs.by_ref()) {
                            let key = keys::app_scoped(app_id, device_id);
                            // Reads this write's own changes: a device twice in a batch
                            // sees its first change.
                            let stored = overrides.get(&key)?;
                            let before: Overrides = match &stored {
                                Some(bytes) => {
                                    let old: Overrides = decode("overrides", bytes)?;
                                    by_time
                                        .remove(keys::device_time(app_id, old.set_at, device_id))?;
                                    old
                                }
                                None => Overrides::default(),
                            };
                            let after = write.action.apply(&before, write.change.at);
                            if after.is_empty() {
                                // An unlink of a device that has no override writes nothing.
                                if stored.is_some() {
                                    overrides.remove(key)?;
                                }
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
                                let action = write.action.audit_action();
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
                },
            )?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures::*;

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
}
