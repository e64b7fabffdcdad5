//! Apps, channels and bundles ([`Registry`]), the per-app cache of bundle ids, and the cascade
//! that removes an app.

use super::*;

/// Rows deleted per atomic write when an app is removed.
pub(super) const DELETE_CHUNK: usize = 512;

/// Bundle ids by version name, per app, for rendering devices: a page of 50 devices names up to
/// 50 versions, each a lookup in `bundles` otherwise. Bundles change only under the registry's
/// exclusive lock, which forgets the map; `generation` keeps a map read before such a change
/// from being kept after it.
#[derive(Default)]
pub(super) struct BundleIds {
    generation: AtomicU64,
    apps: RwLock<HashMap<String, Arc<HashMap<String, u64>>>>,
}

impl SledStore {
    /// The app's bundle ids by version name (see [`BundleIds`]).
    pub(super) fn bundle_ids(&self, app_id: &str) -> StoreResult<Arc<HashMap<String, u64>>> {
        /// The leading field of a `Bundle`: bincode decodes a prefix of the record without
        /// reading (or allocating) the rest.
        #[derive(Serialize, Deserialize)]
        struct BundleId {
            id: u64,
        }
        // A bundle's record read as this prefix, in every format: `id` stays its first field.
        impl Record for BundleId {
            const FORMAT: u8 = <StoredBundle as Record>::FORMAT;

            fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
                (format == keys::FORMAT_V1).then(|| decode_payload::<BundleId>(payload))
            }
        }
        let cache = &self.bundle_ids;
        if let Some(ids) = cache
            .apps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(app_id)
        {
            return Ok(ids.clone());
        }
        let generation = cache.generation.load(Ordering::SeqCst);
        let mut ids = HashMap::new();
        for entry in self.app_entries(&self.bundles, app_id) {
            let (key, value) = entry?;
            let (_, version) =
                keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("bundles"))?;
            let bundle: BundleId = decode("bundles", &value)?;
            ids.insert(version.to_owned(), bundle.id);
        }
        let ids = Arc::new(ids);
        let mut apps = cache.apps.write().unwrap_or_else(|e| e.into_inner());
        if cache.generation.load(Ordering::SeqCst) == generation {
            apps.insert(app_id.to_owned(), ids.clone());
        }
        Ok(ids)
    }

    /// Called after bundles change (under the exclusive registry lock).
    pub(super) fn forget_bundle_ids(&self) {
        let mut apps = self
            .bundle_ids
            .apps
            .write()
            .unwrap_or_else(|e| e.into_inner());
        self.bundle_ids.generation.fetch_add(1, Ordering::SeqCst);
        apps.clear();
    }

    /// Removes every key of one app from a tree, one by one: only an app's deletion does, which
    /// a crash midway leaves to finish at the next open (`finish_deletions`).
    pub(super) fn remove_app_keys(&self, tree: &Tree, app_id: &str) -> StoreResult<()> {
        for key in tree.range(app_range(app_id)).keys() {
            tree.remove(key?)?;
        }
        Ok(())
    }

    pub(super) fn remove_app_devices(&self, app_id: &str) -> StoreResult<usize> {
        let mut removed = 0;
        loop {
            let mut chunk = Vec::with_capacity(DELETE_CHUNK);
            for entry in self.devices.range(app_range(app_id)).take(DELETE_CHUNK) {
                let (key, value) = entry?;
                let (_, device_id) =
                    keys::split_app_scoped(&key).ok_or_else(|| corrupt_key("devices"))?;
                let record: DeviceRecord = decode("devices", &value)?;
                chunk.push((
                    key.clone(),
                    keys::device_time(app_id, record.updated_at, device_id),
                ));
            }
            if chunk.is_empty() {
                break;
            }
            self.atomically(
                [&self.devices, &self.devices_by_time],
                |[devices, by_time]| {
                    for (device_key, time_key) in &chunk {
                        devices.remove(device_key)?;
                        by_time.remove(time_key.as_slice())?;
                    }
                    Ok(())
                },
            )?;
            removed += chunk.len();
        }
        // Index entries whose record is gone (none unless an earlier fault left some).
        self.remove_app_keys(&self.devices_by_time, app_id)?;
        Ok(removed)
    }
}

impl SledStore {
    /// `delete_app` with the registry lock already held (also how `create_app` finishes a
    /// deletion that failed midway).
    fn delete_app_holding_lock(&self, app_id: &str) -> StoreResult<bool> {
        self.refuse_if_torn()?;
        let pending = keys::deleting(app_id);
        if !self.apps.contains_key(app_id.as_bytes())? && !self.db.contains_key(&pending)? {
            return Ok(false);
        }
        // Said first, durably, and the app gone at once: no check-in reaches a half-deleted
        // app, and a crash (or a failure) midway leaves what remains of it to be removed when
        // the store next opens, by a second DELETE, or by creating the app again.
        self.db.insert(&pending, &[] as &[u8])?;
        self.flush_counted()?;
        self.apps.remove(app_id.as_bytes())?;
        let devices = self.remove_app_devices(app_id)?;
        self.remove_app_keys(&self.overrides, app_id)?;
        self.remove_app_keys(&self.overrides_by_time, app_id)?;
        self.remove_app_keys(&self.audit, app_id)?;
        self.remove_app_keys(&self.audit_by_device, app_id)?;
        self.remove_app_keys(&self.device_counts, app_id)?;
        self.remove_app_keys(&self.version_events, app_id)?;
        self.remove_app_keys(&self.devices_by_custom_id, app_id)?;
        self.remove_app_keys(&self.channels, app_id)?;
        self.remove_app_keys(&self.bundles, app_id)?;
        self.forget_bundle_ids();
        self.db.remove(&pending)?;
        log::info!("deleted app {app_id} with {devices} devices");
        self.commit()?;
        Ok(true)
    }

    /// Finishes the deletions of apps that a crash interrupted (see `delete_app`).
    pub fn finish_deletions(&self) -> StoreResult<()> {
        let pending: Vec<String> = self
            .db
            .scan_prefix(keys::deleting(""))
            .keys()
            .map(|key| {
                let key = key?;
                keys::split_deleting(&key)
                    .map(str::to_owned)
                    .ok_or_else(|| corrupt_key("(default)"))
            })
            .collect::<StoreResult<_>>()?;
        for app_id in pending {
            log::warn!("finishing the deletion of app {app_id}, which a crash interrupted");
            self.delete_app(&app_id)?;
        }
        Ok(())
    }
}

impl Registry for SledStore {
    fn create_app(&self, app_id: &str, name: &str, now: Micros) -> StoreResult<CreateApp> {
        let _registry = self.exclusive();
        // The remains of an app whose deletion failed midway are not a new app's: with the
        // lock held no deletion is running, so this one is finished first.
        if self.db.contains_key(keys::deleting(app_id))? {
            self.delete_app_holding_lock(app_id)?;
        }
        let app = App {
            app_id: app_id.to_owned(),
            name: name.to_owned(),
            created_at: now,
        };
        let record = AppRecord {
            app: app.clone(),
            next_channel_id: 1,
            next_bundle_id: 1,
        };
        self.refuse_if_torn()?;
        let swapped = self.apps.compare_and_swap(
            app_id.as_bytes(),
            None as Option<&[u8]>,
            Some(encode_value(&record)),
        )?;
        self.commit()?;
        Ok(match swapped {
            Ok(()) => CreateApp::Created(app),
            Err(_) => CreateApp::AlreadyExists,
        })
    }

    fn app_exists(&self, app_id: &str) -> StoreResult<bool> {
        Ok(self.apps.contains_key(app_id.as_bytes())?)
    }

    fn app(&self, app_id: &str) -> StoreResult<Option<App>> {
        Ok(self.app_record(app_id)?.map(|record| record.app))
    }

    fn apps(&self) -> StoreResult<Vec<App>> {
        self.apps
            .iter()
            .values()
            .map(|value| decode::<AppRecord>("apps", &value?).map(|record| record.app))
            .collect()
    }

    fn delete_app(&self, app_id: &str) -> StoreResult<bool> {
        let _registry = self.exclusive();
        self.delete_app_holding_lock(app_id)
    }

    fn upsert_channel(
        &self,
        app_id: &str,
        name: &str,
        patch: &ChannelPatch,
        change: Change,
    ) -> StoreResult<UpsertChannel> {
        let now = change.at;
        let _registry = self.exclusive();
        let Some(mut app) = self.app_record(app_id)? else {
            return Ok(UpsertChannel::AppNotFound);
        };
        for version in patch.bundles_named() {
            if !self
                .bundles
                .contains_key(keys::app_scoped(app_id, version))?
            {
                return Ok(UpsertChannel::VersionNotFound(version.to_owned()));
            }
        }
        let (mut channel, created) = match self.channel(app_id, name)? {
            Some(channel) => (channel, false),
            None => {
                let id = app.next_channel_id;
                app.next_channel_id += 1;
                (Channel::with_defaults(id, app_id, name, now), true)
            }
        };
        let rollout_before = channel.rollout.clone();
        if let Err(PatchRefusal::NoRollout) = patch.apply(&mut channel, now) {
            return Ok(UpsertChannel::NoRollout);
        }
        if let Some((version, day)) = crate::store::started_rollout(&channel, &rollout_before, now)
        {
            let counts = self.version_events(app_id, &version, day, day)?;
            crate::store::set_baseline(&mut channel, day, &counts);
        }
        channel.updated_at = now;
        let rollout_audit =
            match crate::store::rollout_change(&channel, rollout_before, patch, change) {
                Some(entry) => Some(AuditEntry {
                    seq: self.audit_seqs(1)?[0],
                    ..entry
                }),
                None => None,
            };

        let mut demoted = Vec::new();
        if channel.public {
            for other in self.channels(app_id)? {
                if other.name != channel.name && other.public && other.overlaps(&channel) {
                    let mut other = other;
                    other.public = false;
                    other.updated_at = now;
                    demoted.push(other);
                }
            }
        }
        self.atomically(
            [
                &self.apps,
                &self.channels,
                &self.audit,
                &self.audit_by_device,
            ],
            |[apps, channels, audit, audit_by_device]| {
                if let Some(entry) = &rollout_audit {
                    write_audit(audit, audit_by_device, app_id, entry)?;
                }
                if created {
                    apps.insert(app_id.as_bytes(), encode_value(&app))?;
                }
                for other in demoted.iter().chain(std::iter::once(&channel)) {
                    channels.insert(
                        keys::app_scoped(app_id, &other.name),
                        encode_value(&StoredChannel::of(other)),
                    )?;
                }
                Ok(())
            },
        )?;
        self.commit()?;
        Ok(if created {
            UpsertChannel::Created(channel)
        } else {
            UpsertChannel::Updated(channel)
        })
    }

    fn channel(&self, app_id: &str, name: &str) -> StoreResult<Option<Channel>> {
        self.channels
            .get(keys::app_scoped(app_id, name))?
            .map(|bytes| decode("channels", &bytes).map(StoredChannel::into_channel))
            .transpose()
    }

    fn channels(&self, app_id: &str) -> StoreResult<Vec<Channel>> {
        let stored: Vec<StoredChannel> = self.app_values(&self.channels, "channels", app_id)?;
        Ok(stored
            .into_iter()
            .map(StoredChannel::into_channel)
            .collect())
    }

    fn delete_channel(
        &self,
        app_id: &str,
        name: &str,
        change: Change,
    ) -> StoreResult<DeleteOutcome> {
        let _registry = self.exclusive();
        let channel_key = keys::app_scoped(app_id, name);
        if !self.channels.contains_key(&channel_key)? {
            return Ok(DeleteOutcome::NotFound);
        }
        let mut changed: Vec<(IVec, Overrides, Overrides)> = Vec::new();
        for entry in self.app_entries(&self.overrides, app_id) {
            let (key, value) = entry?;
            let before: Overrides = decode("overrides", &value)?;
            if before.channel.as_deref() == Some(name) {
                let mut after = before.clone();
                after.channel = None;
                changed.push((key, before, after));
            }
        }
        let seqs = self.audit_seqs(changed.len())?;
        // The overrides first, an atomic write per chunk (a channel that thousands of devices are
        // linked to must not become one write over all of them), the channel last: a crash
        // midway leaves the channel, which a second DELETE finishes removing.
        for (chunk, seqs) in changed.chunks(DELETE_CHUNK).zip(seqs.chunks(DELETE_CHUNK)) {
            self.atomically(
                [
                    &self.overrides,
                    &self.overrides_by_time,
                    &self.audit,
                    &self.audit_by_device,
                ],
                |[overrides, by_time, audit, audit_by_device]| {
                    for ((key, before, remaining), seq) in chunk.iter().zip(seqs) {
                        let (_, device_id) =
                            keys::split_app_scoped(key).ok_or_else(|| corrupt_key("overrides"))?;
                        if remaining.is_empty() {
                            overrides.remove(key)?;
                            by_time.remove(keys::device_time(
                                app_id,
                                remaining.set_at,
                                device_id,
                            ))?;
                        } else {
                            overrides.insert(key, encode_value(remaining))?;
                        }
                        let entry = Self::audit_entry(
                            device_id,
                            *seq,
                            change,
                            AuditAction::ChannelDeleted,
                            before,
                            remaining,
                        );
                        write_audit(audit, audit_by_device, app_id, &entry)?;
                    }
                    Ok(())
                },
            )?;
        }
        self.atomically([&self.channels], |[channels]| {
            channels.remove(channel_key.as_slice()).map(drop)
        })?;
        self.commit()?;
        Ok(DeleteOutcome::Deleted)
    }

    fn create_bundle(&self, bundle: &NewBundle, now: Micros) -> StoreResult<CreateBundle> {
        let _registry = self.exclusive();
        let Some(mut app) = self.app_record(&bundle.app_id)? else {
            return Ok(CreateBundle::AppNotFound);
        };
        let key = keys::app_scoped(&bundle.app_id, &bundle.version);
        if self.bundles.contains_key(&key)? {
            return Ok(CreateBundle::AlreadyExists);
        }
        let created = bundle.registered(app.next_bundle_id, now);
        app.next_bundle_id += 1;
        self.atomically([&self.apps, &self.bundles], |[apps, bundles]| {
            apps.insert(bundle.app_id.as_bytes(), encode_value(&app))?;
            bundles.insert(key.as_slice(), encode_value(&StoredBundle::of(&created)))?;
            Ok(())
        })?;
        self.forget_bundle_ids();
        self.commit()?;
        Ok(CreateBundle::Created(created))
    }

    fn bundle(&self, app_id: &str, version: &str) -> StoreResult<Option<Bundle>> {
        self.bundles
            .get(keys::app_scoped(app_id, version))?
            .map(|bytes| decode("bundles", &bytes).map(StoredBundle::into_bundle))
            .transpose()
    }

    fn bundles(&self, app_id: &str) -> StoreResult<Vec<Bundle>> {
        let stored: Vec<StoredBundle> = self.app_values(&self.bundles, "bundles", app_id)?;
        let mut bundles: Vec<Bundle> = stored.into_iter().map(StoredBundle::into_bundle).collect();
        bundles.sort_by_key(|bundle| std::cmp::Reverse(bundle.id));
        Ok(bundles)
    }

    fn delete_bundle(&self, app_id: &str, version: &str) -> StoreResult<DeleteOutcome> {
        let _registry = self.exclusive();
        let key = keys::app_scoped(app_id, version);
        if !self.bundles.contains_key(&key)? {
            return Ok(DeleteOutcome::NotFound);
        }
        let used_by_channel = self.channels(app_id)?.iter().any(|channel| {
            channel.version.as_deref() == Some(version)
                || channel.rollout.as_ref().map(|r| r.version.as_str()) == Some(version)
        });
        if used_by_channel {
            return Ok(DeleteOutcome::InUse);
        }
        // Read as a stream, stopping at the first user: never the app's overrides all at once.
        for entry in self.app_entries(&self.overrides, app_id) {
            let (_, value) = entry?;
            let overrides: Overrides = decode("overrides", &value)?;
            if overrides.version.as_deref() == Some(version) {
                return Ok(DeleteOutcome::InUse);
            }
        }
        self.atomically([&self.bundles], |[bundles]| bundles.remove(&key).map(drop))?;
        self.forget_bundle_ids();
        self.commit()?;
        Ok(DeleteOutcome::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures::*;

    #[test]
    fn a_device_names_the_bundle_of_its_version_as_bundles_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.create_app("app", "app", 1).unwrap();
        store.upsert_device("app", "d", &report(), 2, 1).unwrap();
        let bundle_id = |store: &SledStore| store.device("app", "d").unwrap().unwrap().bundle_id;
        assert_eq!(bundle_id(&store), None);
        let bundle = NewBundle {
            app_id: "app".into(),
            version: "1.0.0".into(),
            external_url: "https://example.com/1.0.0.zip".into(),
            checksum: "c".into(),
            session_key: None,
            min_update_version: None,
            manifest: Vec::new(),
        };
        let CreateBundle::Created(created) = store.create_bundle(&bundle, 3).unwrap() else {
            panic!("bundle not created");
        };
        assert_eq!(bundle_id(&store), Some(created.id));
        assert_eq!(
            store.delete_bundle("app", "1.0.0").unwrap(),
            DeleteOutcome::Deleted
        );
        assert_eq!(bundle_id(&store), None);
    }
}

#[cfg(test)]
mod delete_tests {
    use super::*;
    use crate::store::sled::fixtures::open;
    use crate::store::sled::fixtures::{at, link_to_beta, open_with_beta, report};

    #[test]
    fn a_channel_linked_to_more_devices_than_a_chunk_goes_with_all_its_links() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with_beta(dir.path());
        let ids: Vec<String> = (0..DELETE_CHUNK * 2 + 7)
            .map(|i| format!("d{i:05}"))
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        store
            .write_overrides(&[link_to_beta(&refs, at(5))])
            .unwrap();
        assert_eq!(store.counts().unwrap().overrides, ids.len());
        assert_eq!(
            store.delete_channel("app", "beta", at(6)).unwrap(),
            DeleteOutcome::Deleted
        );
        assert_eq!(store.counts().unwrap().overrides, 0);
        assert!(store.channel("app", "beta").unwrap().is_none());
        let audit = store.audit("app", None, None, 10_000).unwrap();
        let removed = audit
            .entries
            .iter()
            .filter(|entry| entry.action == AuditAction::ChannelDeleted)
            .count();
        assert_eq!(removed, ids.len());
        assert!(store.check(false).unwrap().is_clean());
    }

    #[test]
    fn deleting_an_app_leaves_the_others_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        // Names of which one is the start of another, on both sides.
        for app in ["app_big", "app_small", "app_big2", "app_bi"] {
            store.create_app(app, app, 1).unwrap();
        }
        let devices = |app: &str, n: usize| -> Vec<Device> {
            (0..n)
                .map(|i| Device {
                    app_id: app.into(),
                    device_id: format!("device_{i:07}"),
                    updated_at: 1_000 + i as u64,
                    report: report(),
                    rollout: None,
                })
                .collect()
        };
        assert!(store
            .import_devices("app_big", &devices("app_big", 2_000))
            .unwrap());
        for app in ["app_small", "app_big2", "app_bi"] {
            assert!(store.import_devices(app, &devices(app, 2)).unwrap());
        }
        let event = |app: &str| crate::store::VersionEvent {
            app_id: app.into(),
            version: "1.0.0".into(),
            day: 3,
            action: "set".into(),
        };
        store
            .count_version_events(&[event("app_big"), event("app_bi")])
            .unwrap();
        assert!(store.delete_app("app_big").unwrap());
        for app in ["app_small", "app_big2", "app_bi"] {
            let device = store.device(app, "device_0000001").unwrap();
            assert!(device.is_some(), "{app}");
        }
        // Its bundles' counters go with it; the others' stay.
        assert_eq!(
            store.version_events("app_big", "1.0.0", 0, 9).unwrap(),
            vec![]
        );
        assert_eq!(
            store.version_events("app_bi", "1.0.0", 0, 9).unwrap().len(),
            1
        );
        assert!(store.check(false).unwrap().is_clean());
    }

    #[test]
    fn creating_an_app_whose_deletion_failed_midway_finishes_the_deletion_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.create_app("app_gone", "old", 1).unwrap();
        let device = Device {
            app_id: "app_gone".into(),
            device_id: "device_1".into(),
            updated_at: 1_000,
            report: report(),
            rollout: None,
        };
        assert!(store.import_devices("app_gone", &[device]).unwrap());
        // What a deletion leaves when a write fails after its first steps.
        store
            .db
            .insert(keys::deleting("app_gone"), &[] as &[u8])
            .unwrap();
        store.apps.remove("app_gone").unwrap();
        assert_eq!(store.app("app_gone").unwrap(), None);

        let created = store.create_app("app_gone", "new", 2).unwrap();
        assert!(matches!(created, CreateApp::Created(ref app) if app.name == "new"));
        assert_eq!(store.device("app_gone", "device_1").unwrap(), None);
        assert!(!store.db.contains_key(keys::deleting("app_gone")).unwrap());
        assert!(store.check(false).unwrap().is_clean());
    }
}
