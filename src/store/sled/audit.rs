//! The audit log ([`Audit`]): entries written with the changes they record, pages newest first,
//! and expiry.

use super::*;

/// Appends an audit entry, with its per-device index entry, inside an atomic write.
pub(super) fn write_audit(
    audit: &View<'_>,
    audit_by_device: &View<'_>,
    app_id: &str,
    entry: &AuditEntry,
) -> StoreResult<()> {
    audit.insert(
        keys::audit(app_id, entry.at, entry.seq),
        encode_value(&StoredAuditEntry::of(entry)),
    )?;
    // A channel's rollout change concerns no device: listed with the app's entries only.
    if entry.rollout.is_none() {
        audit_by_device.insert(
            keys::audit_by_device(app_id, &entry.device_id, entry.at, entry.seq),
            &[] as &[u8],
        )?;
    }
    Ok(())
}

/// An audit entry from its stored bytes.
pub(super) fn decode_audit(bytes: &[u8]) -> StoreResult<AuditEntry> {
    decode::<StoredAuditEntry>("audit", bytes).map(StoredAuditEntry::into_entry)
}

impl SledStore {
    /// Numbers for `n` audit entries, reserved before an atomic write (see [`SledStore::reserve`]).
    pub(super) fn audit_seqs(&self, n: usize) -> StoreResult<Vec<u64>> {
        let first = self.reserve("audit", n as u64)?;
        Ok((first..first + n as u64).collect())
    }

    /// An audit entry for a change.
    pub(super) fn audit_entry(
        device_id: &str,
        seq: u64,
        change: Change,
        action: AuditAction,
        before: &Overrides,
        after: &Overrides,
    ) -> AuditEntry {
        AuditEntry::of_change(
            device_id,
            seq,
            (change.actor, change.at),
            action,
            before,
            after,
        )
    }

    pub(super) fn audit_page(
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
                    entries.push(decode_audit(&entry?)?);
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
                        entries.push(decode_audit(&value)?);
                        if entries.len() > limit {
                            break;
                        }
                    }
                }
            }
        }
        Ok(AuditPage::of(entries, limit))
    }

    pub(super) fn expire_audit(&self, cutoff: Micros, limit: usize) -> StoreResult<(usize, bool)> {
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
                let audit = decode_audit(&value)?;
                doomed.push((
                    key,
                    keys::audit_by_device(&app_id, &audit.device_id, audit.at, audit.seq),
                ));
            }
            for chunk in doomed.chunks(256) {
                self.atomically([&self.audit, &self.audit_by_device], |[audit, by_device]| {
                    for (key, device_key) in chunk {
                        audit.remove(key)?;
                        by_device.remove(device_key.as_slice())?;
                    }
                    Ok(())
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
