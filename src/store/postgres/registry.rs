//! Apps, channels and bundles ([`Registry`]).

use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::Cached;
use super::{api, db, from_json, run, sql_error, to_json, PostgresStore, TxResult};
use crate::model::{
    App, AuditAction, AuditEntry, Bundle, Channel, ChannelPatch, NewBundle, Overrides, PatchRefusal,
};
use crate::store::{
    Change, CreateApp, CreateBundle, DeleteOutcome, Registry, StoreResult, UpsertChannel,
};
use crate::timefmt::Micros;

/// Rows of a deleted app removed per statement.
const REMOVE_CHUNK: usize = 10_000;

/// Overrides of a deleted channel changed per transaction.
const DELETE_CHUNK: usize = 512; // written as such in `delete_channel_step`'s statement

pub(crate) const CHANNEL_COLUMNS: &str =
    "id, app_id, name, version, public, ios, android, electron, \
     allow_device_self_set, allow_emulator, allow_device, allow_dev, allow_prod, \
     disable_auto_update, disable_auto_update_under_native, created_at, updated_at, rollout, \
     rollouts_started";

pub(crate) const BUNDLE_COLUMNS: &str =
    "id, app_id, version, external_url, checksum, session_key, \
     min_update_version, created_at, manifest";

pub(crate) fn channel_from(row: &Row) -> StoreResult<Channel> {
    let rollout: Option<serde_json::Value> = row.get(17);
    Ok(Channel {
        id: api(row.get(0)),
        app_id: row.get(1),
        name: row.get(2),
        version: row.get(3),
        public: row.get(4),
        ios: row.get(5),
        android: row.get(6),
        electron: row.get(7),
        allow_device_self_set: row.get(8),
        allow_emulator: row.get(9),
        allow_device: row.get(10),
        allow_dev: row.get(11),
        allow_prod: row.get(12),
        disable_auto_update: from_json("channels", serde_json::Value::String(row.get(13)))?,
        disable_auto_update_under_native: row.get(14),
        created_at: api(row.get(15)),
        updated_at: api(row.get(16)),
        rollout: rollout.map(|r| from_json("channels", r)).transpose()?,
        rollouts_started: api(row.get(18)),
    })
}

pub(crate) fn bundle_from(row: &Row) -> StoreResult<Bundle> {
    Ok(Bundle {
        id: api(row.get(0)),
        app_id: row.get(1),
        version: row.get(2),
        external_url: row.get(3),
        checksum: row.get(4),
        session_key: row.get(5),
        min_update_version: row.get(6),
        created_at: api(row.get(7)),
        manifest: from_json("bundles", row.get(8))?,
    })
}

fn app_from(row: &Row) -> App {
    App {
        app_id: row.get(0),
        name: row.get(1),
        created_at: api(row.get(2)),
    }
}

/// Writes a channel whole (created or updated).
pub(crate) async fn write_channel(client: &impl GenericClient, channel: &Channel) -> TxResult<()> {
    let disable = match to_json(&channel.disable_auto_update) {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    let rollout_version = channel.rollout.as_ref().map(|r| r.version.as_str());
    client
        .run(
            &format!(
                "INSERT INTO channels ({CHANNEL_COLUMNS}, rollout_version) VALUES ($1, $2, $3, $4, \
                 $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
                 ON CONFLICT (app_id, name) DO UPDATE SET version = excluded.version, \
                 public = excluded.public, ios = excluded.ios, android = excluded.android, \
                 electron = excluded.electron, \
                 allow_device_self_set = excluded.allow_device_self_set, \
                 allow_emulator = excluded.allow_emulator, allow_device = excluded.allow_device, \
                 allow_dev = excluded.allow_dev, allow_prod = excluded.allow_prod, \
                 disable_auto_update = excluded.disable_auto_update, \
                 disable_auto_update_under_native = excluded.disable_auto_update_under_native, \
                 updated_at = excluded.updated_at, rollout = excluded.rollout, \
                 rollout_version = excluded.rollout_version, \
                 rollouts_started = excluded.rollouts_started"
            ),
            &[
                &db(channel.id),
                &channel.app_id,
                &channel.name,
                &channel.version,
                &channel.public,
                &channel.ios,
                &channel.android,
                &channel.electron,
                &channel.allow_device_self_set,
                &channel.allow_emulator,
                &channel.allow_device,
                &channel.allow_dev,
                &channel.allow_prod,
                &disable,
                &channel.disable_auto_update_under_native,
                &db(channel.created_at),
                &db(channel.updated_at),
                &channel.rollout.as_ref().map(to_json),
                &db(channel.rollouts_started),
                &rollout_version,
            ],
        )
        .await?;
    Ok(())
}

/// Inserts a bundle as given (its id too); 0 rows when the version exists.
pub(crate) async fn insert_bundle(client: &impl GenericClient, bundle: &Bundle) -> TxResult<u64> {
    Ok(client
        .run(
            &format!(
                "INSERT INTO bundles ({BUNDLE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                 $9) ON CONFLICT (app_id, version) DO NOTHING"
            ),
            &[
                &db(bundle.id),
                &bundle.app_id,
                &bundle.version,
                &bundle.external_url,
                &bundle.checksum,
                &bundle.session_key,
                &bundle.min_update_version,
                &db(bundle.created_at),
                &to_json(&bundle.manifest),
            ],
        )
        .await?)
}

/// Appends audit entries (their numbers drawn in order from the sequence).
pub(crate) async fn write_audit(
    client: &impl GenericClient,
    app_id: &str,
    entries: &[AuditEntry],
) -> TxResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut columns = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for entry in entries {
        columns.0.push(db(entry.at));
        columns.1.push(entry.device_id.as_str());
        columns.2.push(to_json(&entry.actor));
        columns.3.push(to_json(&entry.action));
        columns.4.push(to_json(&entry.before));
        columns.5.push(to_json(&entry.after));
        columns.6.push(entry.rollout.as_ref().map(to_json));
    }
    client
        .run(
            "INSERT INTO audit (app_id, at, seq, device_id, actor, action, before, after, rollout) \
             SELECT $1, u.at, nextval('audit_seq'), u.device_id, u.actor, u.action, u.before, \
                 u.after, u.rollout \
             FROM unnest($2::bigint[], $3::text[], $4::jsonb[], $5::jsonb[], $6::jsonb[], \
                 $7::jsonb[], $8::jsonb[]) WITH ORDINALITY \
                 AS u(at, device_id, actor, action, before, after, rollout, ord) \
             ORDER BY u.ord",
            &[
                &app_id,
                &columns.0,
                &columns.1,
                &columns.2,
                &columns.3,
                &columns.4,
                &columns.5,
                &columns.6,
            ],
        )
        .await?;
    Ok(())
}

impl PostgresStore {
    pub(crate) async fn read_channel(
        client: &impl GenericClient,
        app_id: &str,
        name: &str,
    ) -> TxResult<Option<Channel>> {
        let row = client
            .row_opt(
                &format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE app_id = $1 AND name = $2"),
                &[&app_id, &name],
            )
            .await?;
        Ok(row.map(|row| channel_from(&row)).transpose()?)
    }

    async fn read_channels(client: &impl GenericClient, app_id: &str) -> TxResult<Vec<Channel>> {
        let rows = client
            .rows(
                &format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE app_id = $1 ORDER BY name"),
                &[&app_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(channel_from)
            .collect::<StoreResult<Vec<_>>>()?)
    }

    /// Upserts a channel as the sled engine does (see [`Registry::upsert_channel`]), in the
    /// caller's transaction.
    async fn upsert_channel_in(
        tx: &impl GenericClient,
        app_id: &str,
        name: &str,
        patch: &ChannelPatch,
        change: Change,
    ) -> TxResult<UpsertChannel> {
        let now = change.at;
        let Some(app) = tx
            .row_opt(
                "SELECT next_channel_id FROM apps WHERE app_id = $1 AND NOT deleting FOR UPDATE",
                &[&app_id],
            )
            .await?
        else {
            return Ok(UpsertChannel::AppNotFound);
        };
        for version in patch.bundles_named() {
            let found = tx
                .row_opt(
                    "SELECT 1 FROM bundles WHERE app_id = $1 AND version = $2",
                    &[&app_id, &version],
                )
                .await?;
            if found.is_none() {
                return Ok(UpsertChannel::VersionNotFound(version.to_owned()));
            }
        }
        let (mut channel, created) = match Self::read_channel(tx, app_id, name).await? {
            Some(channel) => (channel, false),
            None => {
                let id: i64 = app.get(0);
                (Channel::with_defaults(api(id), app_id, name, now), true)
            }
        };
        let rollout_before = channel.rollout.clone();
        if let Err(PatchRefusal::NoRollout) = patch.apply(&mut channel, now) {
            return Ok(UpsertChannel::NoRollout);
        }
        if let Some((version, day)) = crate::store::started_rollout(&channel, &rollout_before, now)
        {
            let counts = Self::read_version_events(tx, app_id, &version, day, day).await?;
            crate::store::set_baseline(&mut channel, day, &counts);
        }
        channel.updated_at = now;
        if let Some(entry) = crate::store::rollout_change(&channel, rollout_before, patch, change) {
            write_audit(tx, app_id, &[entry]).await?;
        }
        if channel.public {
            for mut other in Self::read_channels(tx, app_id).await? {
                if other.name != channel.name && other.public && other.overlaps(&channel) {
                    other.public = false;
                    other.updated_at = now;
                    write_channel(tx, &other).await?;
                }
            }
        }
        if created {
            tx.run(
                "UPDATE apps SET next_channel_id = next_channel_id + 1 WHERE app_id = $1",
                &[&app_id],
            )
            .await?;
        }
        write_channel(tx, &channel).await?;
        Ok(if created {
            UpsertChannel::Created(channel)
        } else {
            UpsertChannel::Updated(channel)
        })
    }

    /// One step of a channel's deletion: up to [`DELETE_CHUNK`] of the overrides that point at
    /// it, each recorded in the audit log; the channel itself with the last of them. `None`
    /// while overrides remain (another step follows).
    async fn delete_channel_step(
        tx: &impl GenericClient,
        app_id: &str,
        name: &str,
        change: Change,
    ) -> TxResult<Option<DeleteOutcome>> {
        let exists = tx
            .row_opt(
                "SELECT 1 FROM channels WHERE app_id = $1 AND name = $2 FOR UPDATE",
                &[&app_id, &name],
            )
            .await?;
        if exists.is_none() {
            return Ok(Some(DeleteOutcome::NotFound));
        }
        let rows = tx
            .rows(
                "SELECT device_id, channel, version, set_at FROM overrides \
                 WHERE app_id = $1 AND channel = $2 ORDER BY device_id LIMIT 512 FOR UPDATE",
                &[&app_id, &name],
            )
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut device_ids: Vec<String> = Vec::with_capacity(rows.len());
        for row in &rows {
            let before = super::overrides_from(row, 1);
            let after = Overrides {
                channel: None,
                ..before.clone()
            };
            let device_id: String = row.get(0);
            entries.push(AuditEntry::of_change(
                &device_id,
                0,
                (change.actor, change.at),
                AuditAction::ChannelDeleted,
                &before,
                &after,
            ));
            device_ids.push(device_id);
        }
        // Overrides left with nothing go; those that keep a version lose their channel.
        tx.run(
            "DELETE FROM overrides WHERE app_id = $1 AND device_id = ANY($2) AND version IS NULL",
            &[&app_id, &device_ids],
        )
        .await?;
        tx.run(
            "UPDATE overrides SET channel = NULL WHERE app_id = $1 AND device_id = ANY($2)",
            &[&app_id, &device_ids],
        )
        .await?;
        write_audit(tx, app_id, &entries).await?;
        if rows.len() == DELETE_CHUNK {
            return Ok(None);
        }
        tx.run(
            "DELETE FROM channels WHERE app_id = $1 AND name = $2",
            &[&app_id, &name],
        )
        .await?;
        Ok(Some(DeleteOutcome::Deleted))
    }

    async fn create_bundle_in(
        tx: &impl GenericClient,
        bundle: &NewBundle,
        now: Micros,
    ) -> TxResult<CreateBundle> {
        let Some(app) = tx
            .row_opt(
                "SELECT next_bundle_id FROM apps WHERE app_id = $1 AND NOT deleting FOR UPDATE",
                &[&bundle.app_id],
            )
            .await?
        else {
            return Ok(CreateBundle::AppNotFound);
        };
        let created = bundle.registered(api(app.get(0)), now);
        let inserted = insert_bundle(tx, &created).await?;
        if inserted == 0 {
            return Ok(CreateBundle::AlreadyExists);
        }
        tx.run(
            "UPDATE apps SET next_bundle_id = next_bundle_id + 1 WHERE app_id = $1",
            &[&bundle.app_id],
        )
        .await?;
        Ok(CreateBundle::Created(created))
    }
}

impl PostgresStore {
    /// Removes an app marked `deleting`, in chunks, the row last.
    async fn remove_app(client: &deadpool_postgres::Object, app_id: &str) -> StoreResult<()> {
        for table in ["devices", "overrides", "audit", "version_events"] {
            loop {
                let removed = client
                    .run(
                        // Only while the app is still the one being deleted: if another node
                        // finished the deletion and the app was created again, its new rows stay.
                        &format!(
                            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} \
                             WHERE app_id = $1 LIMIT {REMOVE_CHUNK})) \
                             AND EXISTS (SELECT 1 FROM apps WHERE app_id = $1 AND deleting)"
                        ),
                        &[&app_id],
                    )
                    .await
                    .map_err(sql_error)?;
                if removed == 0 {
                    break;
                }
            }
        }
        // Channels, bundles and whatever a check-in added meanwhile go with the row.
        client
            .run(
                "DELETE FROM apps WHERE app_id = $1 AND deleting",
                &[&app_id],
            )
            .await
            .map_err(sql_error)?;
        Ok(())
    }

    /// Finishes the deletions of apps that were cut short (at start).
    pub(crate) fn finish_deletions(&self) -> StoreResult<()> {
        run(async {
            let client = self.client().await?;
            let pending: Vec<String> = client
                .rows(
                    "SELECT app_id FROM apps WHERE deleting ORDER BY app_id",
                    &[],
                )
                .await
                .map_err(sql_error)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            for app_id in pending {
                log::warn!("finishing the deletion of app {app_id}, which was cut short");
                Self::remove_app(&client, &app_id).await?;
            }
            Ok(())
        })
    }
}

impl Registry for PostgresStore {
    fn create_app(&self, app_id: &str, name: &str, now: Micros) -> StoreResult<CreateApp> {
        run(async {
            let client = self.client().await?;
            // The remains of an app whose deletion was cut short are not a new app's.
            let deleting = client
                .row_opt(
                    "SELECT 1 FROM apps WHERE app_id = $1 AND deleting",
                    &[&app_id],
                )
                .await
                .map_err(sql_error)?;
            if deleting.is_some() {
                Self::remove_app(&client, app_id).await?;
            }
            let inserted = client
                .run(
                    "INSERT INTO apps (app_id, name, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (app_id) DO NOTHING",
                    &[&app_id, &name, &db(now)],
                )
                .await
                .map_err(sql_error)?;
            self.committed();
            Ok(if inserted == 0 {
                CreateApp::AlreadyExists
            } else {
                CreateApp::Created(App {
                    app_id: app_id.to_owned(),
                    name: name.to_owned(),
                    created_at: now,
                })
            })
        })
    }

    fn app(&self, app_id: &str) -> StoreResult<Option<App>> {
        run(async {
            let client = self.client().await?;
            let row = client
                .row_opt(
                    "SELECT app_id, name, created_at FROM apps WHERE app_id = $1 AND NOT deleting",
                    &[&app_id],
                )
                .await
                .map_err(sql_error)?;
            Ok(row.as_ref().map(app_from))
        })
    }

    fn app_exists(&self, app_id: &str) -> StoreResult<bool> {
        run(async {
            let client = self.client().await?;
            let row = client
                .row_opt(
                    "SELECT 1 FROM apps WHERE app_id = $1 AND NOT deleting",
                    &[&app_id],
                )
                .await
                .map_err(sql_error)?;
            Ok(row.is_some())
        })
    }

    fn apps(&self) -> StoreResult<Vec<App>> {
        run(async {
            let client = self.client().await?;
            let rows = client
                .rows(
                    "SELECT app_id, name, created_at FROM apps WHERE NOT deleting ORDER BY app_id",
                    &[],
                )
                .await
                .map_err(sql_error)?;
            Ok(rows.iter().map(app_from).collect())
        })
    }

    /// Marks the app as being deleted first (committed: from then on it is gone for every
    /// reader and writer, on every node), then removes what it holds in chunks (each its own
    /// statement: a million devices are not one transaction's locks), the row last. A deletion
    /// cut short is finished when the store next opens, by deleting again, or by creating the
    /// app again.
    fn delete_app(&self, app_id: &str) -> StoreResult<bool> {
        run(async {
            let client = self.client().await?;
            let marked = client
                .row_opt(
                    "UPDATE apps SET deleting = true WHERE app_id = $1 RETURNING 1",
                    &[&app_id],
                )
                .await
                .map_err(sql_error)?;
            if marked.is_none() {
                return Ok(false);
            }
            self.committed();
            Self::remove_app(&client, app_id).await?;
            log::info!("deleted app {app_id}");
            Ok(true)
        })
    }

    fn upsert_channel(
        &self,
        app_id: &str,
        name: &str,
        patch: &ChannelPatch,
        change: Change,
    ) -> StoreResult<UpsertChannel> {
        run(async {
            serializable!(self, |tx| {
                Self::upsert_channel_in(&tx, app_id, name, patch, change).await
            })
        })
    }

    fn channel(&self, app_id: &str, name: &str) -> StoreResult<Option<Channel>> {
        run(async {
            let client = self.client().await?;
            Self::read_channel(&client, app_id, name)
                .await
                .map_err(super::TxError::into_store)
        })
    }

    fn channels(&self, app_id: &str) -> StoreResult<Vec<Channel>> {
        run(async {
            let client = self.client().await?;
            Self::read_channels(&client, app_id)
                .await
                .map_err(super::TxError::into_store)
        })
    }

    /// The overrides first, a transaction per chunk, the channel with the last: after a
    /// failure midway, calling again finishes it (as the sled engine does).
    fn delete_channel(
        &self,
        app_id: &str,
        name: &str,
        change: Change,
    ) -> StoreResult<DeleteOutcome> {
        run(async {
            loop {
                let step = serializable!(self, |tx| {
                    Self::delete_channel_step(&tx, app_id, name, change).await
                })?;
                if let Some(outcome) = step {
                    return Ok(outcome);
                }
            }
        })
    }

    fn create_bundle(&self, bundle: &NewBundle, now: Micros) -> StoreResult<CreateBundle> {
        run(async {
            serializable!(self, |tx| {
                Self::create_bundle_in(&tx, bundle, now).await
            })
        })
    }

    fn bundle(&self, app_id: &str, version: &str) -> StoreResult<Option<Bundle>> {
        run(async {
            let client = self.client().await?;
            let row = client
                .row_opt(
                    &format!(
                        "SELECT {BUNDLE_COLUMNS} FROM bundles WHERE app_id = $1 AND version = $2"
                    ),
                    &[&app_id, &version],
                )
                .await
                .map_err(sql_error)?;
            row.map(|row| bundle_from(&row)).transpose()
        })
    }

    fn bundles(&self, app_id: &str) -> StoreResult<Vec<Bundle>> {
        run(async {
            let client = self.client().await?;
            let rows = client
                .rows(
                    &format!(
                        "SELECT {BUNDLE_COLUMNS} FROM bundles WHERE app_id = $1 ORDER BY id DESC"
                    ),
                    &[&app_id],
                )
                .await
                .map_err(sql_error)?;
            rows.iter().map(bundle_from).collect()
        })
    }

    /// The foreign keys of channels and overrides refuse the deletion of a bundle in use.
    fn delete_bundle(&self, app_id: &str, version: &str) -> StoreResult<DeleteOutcome> {
        run(async {
            let client = self.client().await?;
            match client
                .run(
                    "DELETE FROM bundles WHERE app_id = $1 AND version = $2",
                    &[&app_id, &version],
                )
                .await
            {
                Ok(0) => Ok(DeleteOutcome::NotFound),
                Ok(_) => {
                    self.committed();
                    Ok(DeleteOutcome::Deleted)
                }
                Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                    Ok(DeleteOutcome::InUse)
                }
                Err(error) => Err(sql_error(error)),
            }
        })
    }
}
