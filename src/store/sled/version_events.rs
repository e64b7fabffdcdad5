//! [`VersionHealth`]: counters of what devices report about bundles, one key per app, bundle,
//! day and action (`keys.rs`), added to by sled's merge operator: a count needs no read and no
//! transaction, so `/stats` events cost one in-memory write each.

use super::*;

/// sled's merge operator of `version_events`: adds the merged u64 to the stored one.
pub(super) fn add_counts(_key: &[u8], stored: Option<&[u8]>, added: &[u8]) -> Option<Vec<u8>> {
    let sum = read_count(stored.unwrap_or(&[])).saturating_add(read_count(added));
    Some(sum.to_be_bytes().to_vec())
}

impl VersionHealth for SledStore {
    fn count_version_events(&self, events: &[VersionEvent]) -> StoreResult<()> {
        for event in events {
            let key = keys::version_event(&event.app_id, &event.version, event.day, &event.action);
            self.noting_faults(
                self.version_events
                    .merge(key, 1u64.to_be_bytes())
                    .map_err(StoreError::from),
            )?;
        }
        self.spend(events.len() as u64)
    }

    fn version_events(
        &self,
        app_id: &str,
        version: &str,
        first_day: u32,
        last_day: u32,
    ) -> StoreResult<Vec<(u32, String, u64)>> {
        let prefix = keys::version_days(app_id, version);
        let start = keys::version_event(app_id, version, first_day, "");
        let end = match last_day.checked_add(1) {
            Some(next) => Bound::Excluded(keys::version_event(app_id, version, next, "")),
            None => keys::prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded),
        };
        let mut counts = Vec::new();
        for entry in self.version_events.range((Bound::Included(start), end)) {
            let (key, value) = entry?;
            let (_, _, day, action) =
                keys::split_version_event(&key).ok_or_else(|| corrupt_key("version_events"))?;
            counts.push((day, action.to_owned(), read_count(&value)));
        }
        Ok(counts)
    }
}

impl SledStore {
    /// Removes the counters of days before `day`, up to `limit` (counters are few: apps x
    /// bundles x days x actions); answers how many, and whether some are left.
    pub(super) fn expire_version_events(
        &self,
        day: u32,
        limit: usize,
    ) -> StoreResult<(usize, bool)> {
        // Each counter stands alone: removed one by one (never a sled batch: see atomic.rs).
        let mut removed = 0;
        for key in self.version_events.iter().keys() {
            let key = key?;
            let (_, _, at, _) =
                keys::split_version_event(&key).ok_or_else(|| corrupt_key("version_events"))?;
            if at < day {
                if removed == limit.max(1) {
                    return Ok((removed, true));
                }
                self.version_events.remove(key)?;
                removed += 1;
            }
        }
        Ok((removed, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures::*;

    fn event(version: &str, day: u32, action: &str) -> VersionEvent {
        VersionEvent {
            app_id: "app".into(),
            version: version.into(),
            day,
            action: action.into(),
        }
    }

    #[test]
    fn events_add_up_per_bundle_day_and_action_and_expire_by_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .count_version_events(&[
                event("1.0.0", 10, "set"),
                event("1.0.0", 10, "set"),
                event("1.0.0", 10, "download_fail"),
                event("1.0.0", 11, "set"),
                event("1.0.0", 12, "set"),
                event("1.0.1", 11, "set"),
            ])
            .unwrap();
        assert_eq!(
            store.version_events("app", "1.0.0", 10, 11).unwrap(),
            vec![
                (10, "download_fail".to_owned(), 1),
                (10, "set".to_owned(), 2),
                (11, "set".to_owned(), 1),
            ]
        );
        assert_eq!(
            store
                .version_events("app", "1.0.0", 12, u32::MAX)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store.version_events("other", "1.0.0", 0, u32::MAX).unwrap(),
            vec![]
        );

        // Kept across a restart.
        store.flush().unwrap();
        drop(store);
        let store = open(dir.path());
        assert_eq!(
            store
                .version_events("app", "1.0.1", 0, u32::MAX)
                .unwrap()
                .len(),
            1
        );

        assert_eq!(store.expire_version_events(12, 1).unwrap(), (1, true));
        assert_eq!(store.expire_version_events(12, 10).unwrap(), (3, false));
        assert_eq!(store.expire_version_events(12, 10).unwrap(), (0, false));
        assert_eq!(
            store.version_events("app", "1.0.0", 0, u32::MAX).unwrap(),
            vec![(12, "set".to_owned(), 1)]
        );
        assert_eq!(
            store.version_events("app", "1.0.1", 0, u32::MAX).unwrap(),
            vec![]
        );
    }
}
