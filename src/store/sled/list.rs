//! The page planner: which index a page is a range scan of (device id, time, overrides, custom
//! id), and the filters applied while it runs.

use super::*;

/// Overrides an app may have for override filters to read them instead of scanning devices.
pub(super) const OVERRIDE_CANDIDATES: usize = 10_000;

/// Device records read for a page, with their device ids.
pub(super) type Rows = Vec<(String, DeviceRecord)>;

impl SledStore {
    /// Adds overrides and the bundle id (from the app's cached map) to device records.
    pub(super) fn entries(
        &self,
        app_id: &str,
        rows: Vec<(String, DeviceRecord)>,
    ) -> StoreResult<Vec<DeviceEntry>> {
        let bundle_ids = self.bundle_ids(app_id)?;
        // Most apps have few overrides or none: one probe saves a lookup per row.
        let app_has_overrides = self.overrides.range(app_range(app_id)).next().is_some();
        // A loop, not `collect`: collecting `Result`s loses the size hint, and growing the
        // vector copied every entry several times (callgrind).
        let mut entries = Vec::with_capacity(rows.len());
        for (device_id, record) in rows {
            let bundle_id = record
                .report
                .version_name
                .as_ref()
                .and_then(|name| bundle_ids.get(name).copied());
            let overrides = if app_has_overrides {
                self.overrides_of(app_id, &device_id)?
            } else {
                Overrides::default()
            };
            entries.push(DeviceEntry {
                device: Device {
                    app_id: app_id.to_owned(),
                    device_id,
                    updated_at: record.updated_at,
                    report: record.report,
                    rollout: record.rollout,
                },
                overrides,
                bundle_id,
            });
        }
        Ok(entries)
    }

    /// Whether a device is on the query's pages: seen after `updated_after`, and matching the
    /// filters (those on overrides read the device's overrides).
    fn wanted(
        &self,
        app_id: &str,
        device_id: &str,
        record: &DeviceRecord,
        query: &DeviceListQuery,
    ) -> StoreResult<bool> {
        if query
            .updated_after
            .is_some_and(|after| record.updated_at <= after)
        {
            return Ok(false);
        }
        let overrides = if query.filter.needs_overrides() {
            self.overrides_of(app_id, device_id)?
        } else {
            Overrides::default()
        };
        Ok(query.filter.matches(&record.report, &overrides))
    }

    /// Takes candidate rows in list order until `limit + 1` match the query, or until
    /// `max_examined` rows were examined: then the rows found so far are the page, and the cursor
    /// at the last row examined is where the next page starts.
    pub(super) fn collect_rows(
        &self,
        app_id: &str,
        candidates: impl Iterator<Item = StoreResult<(String, DeviceRecord)>>,
        query: &DeviceListQuery,
    ) -> StoreResult<(Rows, Option<Cursor>)> {
        let mut rows = Vec::with_capacity(query.limit + 1);
        let mut examined = 0;
        for candidate in candidates {
            let (device_id, record) = candidate?;
            examined += 1;
            if self.wanted(app_id, &device_id, &record, query)? {
                rows.push((device_id, record));
                if rows.len() > query.limit {
                    break;
                }
            } else if examined >= query.max_examined {
                let resume = Cursor {
                    updated_at: record.updated_at,
                    device_id,
                };
                return Ok((rows, Some(resume)));
            }
        }
        Ok((rows, None))
    }

    /// The device records of time-index entries, in the index's order: the entry's own copy, or,
    /// for an entry written before copies were kept, the record it points at.
    pub(super) fn records_from_time_index<'a>(
        &'a self,
        index: impl Iterator<Item = sled::Result<(IVec, IVec)>> + 'a,
        app_id: &'a str,
    ) -> impl Iterator<Item = StoreResult<(String, DeviceRecord)>> + 'a {
        index.filter_map(move |entry| {
            let read = || -> StoreResult<Option<(String, DeviceRecord)>> {
                let (key, copy) = entry?;
                let (_, updated_at, device_id) =
                    keys::split_device_time(&key).ok_or_else(|| corrupt_key("devices_by_time"))?;
                if !copy.is_empty() {
                    let record: DeviceRecord = decode("devices_by_time", &copy)?;
                    return Ok(Some((device_id.to_owned(), record)));
                }
                let Some(bytes) = self.devices.get(keys::app_scoped(app_id, device_id))? else {
                    log::warn!("time index entry without a device: {app_id}/{device_id}");
                    return Ok(None);
                };
                let record: DeviceRecord = decode("devices", &bytes)?;
                if record.updated_at != updated_at {
                    log::warn!("stale time index entry: {app_id}/{device_id}");
                    return Ok(None);
                }
                Ok(Some((device_id.to_owned(), record)))
            };
            read().transpose()
        })
    }

    /// Default order: a range scan of the primary tree from the cursor's device id.
    pub(super) fn rows_by_device_id(
        &self,
        app_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<(Rows, Option<Cursor>)> {
        let (start, end) = app_range(app_id);
        let start = match &query.after {
            Some(cursor) => Bound::Excluded(keys::app_scoped(app_id, &cursor.device_id)),
            None => start,
        };
        let candidates = self.devices.range((start, end)).map(|entry| {
            let (key, value) = entry?;
            let (_, device_id) =
                keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("devices"))?;
            let record: DeviceRecord = decode("devices", &value)?;
            Ok((device_id.to_owned(), record))
        });
        self.collect_rows(app_id, candidates, query)
    }

    /// Filters on overrides (`channel`, `has_override=true`) read their candidates from the app's
    /// overrides (usually far fewer than its devices) instead of scanning every device; `None`
    /// when the app has more than `OVERRIDE_CANDIDATES` of them, to scan instead.
    pub(super) fn rows_from_overrides(
        &self,
        app_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<Option<Rows>> {
        let filter = &query.filter;
        let mut candidates: Rows = Vec::new();
        for (seen, entry) in self.overrides.range(app_range(app_id)).enumerate() {
            if seen >= OVERRIDE_CANDIDATES {
                return Ok(None);
            }
            let (key, value) = entry?;
            let overrides: Overrides = decode("overrides", &value)?;
            if overrides.is_empty()
                || filter
                    .channel
                    .as_ref()
                    .is_some_and(|c| overrides.channel.as_ref() != Some(c))
            {
                continue;
            }
            // An override of a device that never checked in lists nothing.
            let Some(bytes) = self.devices.get(&key)? else {
                continue;
            };
            let record: DeviceRecord = decode("devices", &bytes)?;
            let recent = query
                .updated_after
                .is_none_or(|after| record.updated_at > after);
            if recent && filter.matches(&record.report, &overrides) {
                let (_, device_id) =
                    keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("overrides"))?;
                candidates.push((device_id.to_owned(), record));
            }
        }
        Ok(Some(page_of_candidates(candidates, query)))
    }

    /// A `custom_id` filter reads the app's index of that custom id instead of scanning devices.
    /// In device-id order (the index's own) a page is a range scan of the index from the cursor,
    /// bounded like every page by `max_examined`. Time orders need the matches sorted by time:
    /// the index is read whole only while it holds at most `max_examined` devices; beyond, `None`,
    /// and the page scans the time index instead.
    pub(super) fn rows_from_custom_id(
        &self,
        app_id: &str,
        custom_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<Option<(Rows, Option<Cursor>)>> {
        let prefix = keys::custom_id_prefix(app_id, custom_id);
        let end = keys::prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
        let by_device_id = query.order == DeviceOrder::DeviceId;
        let start = match &query.after {
            Some(cursor) if by_device_id => {
                Bound::Excluded(keys::custom_id(app_id, custom_id, &cursor.device_id))
            }
            _ => Bound::Included(prefix),
        };
        let indexed = self.devices_by_custom_id.range((start, end)).keys();
        let records = indexed.filter_map(|key| {
            let read = || -> StoreResult<Option<(String, DeviceRecord)>> {
                let key = key?;
                let (_, _, device_id) = keys::split_custom_id(&key)
                    .ok_or_else(|| corrupt_key("devices_by_custom_id"))?;
                let Some(bytes) = self.devices.get(keys::app_scoped(app_id, device_id))? else {
                    return Ok(None);
                };
                Ok(Some((device_id.to_owned(), decode("devices", &bytes)?)))
            };
            read().transpose()
        });
        if by_device_id {
            return self.collect_rows(app_id, records, query).map(Some);
        }
        let all: Rows = records
            .take(query.max_examined + 1)
            .collect::<StoreResult<_>>()?;
        if all.len() > query.max_examined {
            return Ok(None);
        }
        let mut candidates = Vec::new();
        for (device_id, record) in all {
            if self.wanted(app_id, &device_id, &record, query)? {
                candidates.push((device_id, record));
            }
        }
        Ok(Some((page_of_candidates(candidates, query), None)))
    }

    /// Time orders: a range scan of the time index, bounded by the cursor and `updated_after`.
    pub(super) fn rows_by_time(
        &self,
        app_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<(Rows, Option<Cursor>)> {
        let (app_start, app_end) = app_range(app_id);
        // Strictly later than `updated_after` is at or after the floor of the next microsecond.
        let floor = match query.updated_after {
            None => None,
            Some(after) => match after.checked_add(1) {
                Some(next) => Some(keys::device_time_floor(app_id, next)),
                None => return Ok((Vec::new(), None)),
            },
        };
        let cursor_key = query
            .after
            .as_ref()
            .map(|c| keys::device_time(app_id, c.updated_at, &c.device_id));
        match query.order {
            DeviceOrder::UpdatedAsc => {
                let start = match (cursor_key, floor) {
                    (Some(cursor), Some(floor)) if floor > cursor => Bound::Included(floor),
                    (Some(cursor), _) => Bound::Excluded(cursor),
                    (None, Some(floor)) => Bound::Included(floor),
                    (None, None) => app_start,
                };
                let index = self.devices_by_time.range((start, app_end));
                self.collect_rows(app_id, self.records_from_time_index(index, app_id), query)
            }
            DeviceOrder::UpdatedDesc => {
                let end = cursor_key.map_or(app_end, Bound::Excluded);
                let start = floor.map_or(app_start, Bound::Included);
                if matches!((&start, &end), (Bound::Included(s), Bound::Excluded(e)) if s >= e) {
                    return Ok((Vec::new(), None));
                }
                let index = self.devices_by_time.range((start, end)).rev();
                self.collect_rows(app_id, self.records_from_time_index(index, app_id), query)
            }
            DeviceOrder::DeviceId => self.rows_by_device_id(app_id, query),
        }
    }
}

/// Orders candidate rows (given in device id order) as the query asks, and takes the page after
/// its cursor: `limit + 1` rows at most.
pub(super) fn page_of_candidates(mut candidates: Rows, query: &DeviceListQuery) -> Rows {
    let position = |row: &(String, DeviceRecord)| (row.1.updated_at, row.0.clone());
    match query.order {
        DeviceOrder::DeviceId => {}
        DeviceOrder::UpdatedAsc => candidates.sort_by_key(position),
        DeviceOrder::UpdatedDesc => candidates.sort_by_key(|row| std::cmp::Reverse(position(row))),
    }
    let after_cursor = |row: &(String, DeviceRecord)| match (&query.after, query.order) {
        (None, _) => true,
        (Some(c), DeviceOrder::DeviceId) => row.0 > c.device_id,
        (Some(c), DeviceOrder::UpdatedAsc) => position(row) > (c.updated_at, c.device_id.clone()),
        (Some(c), DeviceOrder::UpdatedDesc) => position(row) < (c.updated_at, c.device_id.clone()),
    };
    candidates
        .into_iter()
        .filter(after_cursor)
        .take(query.limit + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeviceFilter;
    use crate::store::sled::fixtures::{open, report};

    /// 1,000 devices reporting the custom id `shared`, one of them an Android device.
    fn store_with_a_shared_custom_id(dir: &Path) -> Arc<SledStore> {
        let store = open(dir);
        store.create_app("app", "app", 1).unwrap();
        let devices: Vec<Device> = (0..1_000)
            .map(|i| Device {
                app_id: "app".into(),
                device_id: format!("d{i:04}"),
                updated_at: 1_000 + i,
                report: DeviceReport {
                    custom_id: "shared".into(),
                    platform: if i == 700 {
                        Platform::Android
                    } else {
                        Platform::Ios
                    },
                    ..report()
                },
                rollout: None,
            })
            .collect();
        assert!(store.import_devices("app", &devices).unwrap());
        store
    }

    /// Every page of the query, with the number of rows each examined at most.
    fn walk(store: &SledStore, order: DeviceOrder) -> (Vec<String>, usize) {
        let mut query = DeviceListQuery {
            order,
            after: None,
            updated_after: None,
            limit: 10,
            max_examined: 100,
            filter: DeviceFilter {
                custom_id: Some("shared".into()),
                platform: Some(Platform::Android),
                ..DeviceFilter::default()
            },
        };
        let (mut found, mut pages) = (Vec::new(), 0);
        loop {
            let page = store.list_devices("app", &query).unwrap();
            pages += 1;
            found.extend(page.devices.into_iter().map(|e| e.device.device_id));
            match page.next {
                Some(next) => query.after = Some(next),
                None => return (found, pages),
            }
        }
    }

    #[test]
    fn a_custom_id_filter_examines_at_most_its_bound_per_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_a_shared_custom_id(dir.path());
        // 1,000 devices share the custom id and one matches: pages of at most 100 examined rows
        // walk to it (one page reading all 1,000 before).
        for order in [
            DeviceOrder::DeviceId,
            DeviceOrder::UpdatedAsc,
            DeviceOrder::UpdatedDesc,
        ] {
            let (found, pages) = walk(&store, order);
            assert_eq!(found, ["d0700"], "{order:?}");
            assert!(pages >= 8, "{order:?}: {pages} pages");
        }
    }
}
