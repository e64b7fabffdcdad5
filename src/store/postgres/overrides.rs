//! Channel and version overrides ([`DeviceOverrides`]): each write checked, applied with its
//! audit entries in one transaction, its devices locked for it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use deadpool_postgres::GenericClient;

use super::registry::write_audit;
use super::Cached;
use super::{db, overrides_from, run, spawn, sql_error, PostgresStore, TxResult};
use crate::model::{AuditEntry, Overrides};
use crate::store::{
    BulkOutcome, DeviceOverrides, OverrideAction, OverrideChange, OverrideWrite, StoreError,
    StoreFuture, StoreResult,
};

impl PostgresStore {
    /// Why a write cannot apply, if it cannot: its app, or what it links to, is missing.
    async fn override_refusal(
        client: &impl GenericClient,
        write: &OverrideWrite,
    ) -> TxResult<Option<BulkOutcome>> {
        let app_id = write.app_id.as_str();
        if client
            .row_opt(
                "SELECT 1 FROM apps WHERE app_id = $1 AND NOT deleting",
                &[&app_id],
            )
            .await?
            .is_none()
        {
            return Ok(Some(BulkOutcome::AppNotFound));
        }
        if let OverrideAction::Link { channel, version } = &write.action {
            if let Some(channel) = channel {
                let found = client
                    .row_opt(
                        "SELECT 1 FROM channels WHERE app_id = $1 AND name = $2",
                        &[&app_id, channel],
                    )
                    .await?;
                if found.is_none() {
                    return Ok(Some(BulkOutcome::ChannelNotFound));
                }
            }
            if let Some(version) = version {
                let found = client
                    .row_opt(
                        "SELECT 1 FROM bundles WHERE app_id = $1 AND version = $2",
                        &[&app_id, version],
                    )
                    .await?;
                if found.is_none() {
                    return Ok(Some(BulkOutcome::VersionNotFound));
                }
            }
        }
        Ok(None)
    }

    /// The overrides of these devices of one app (absent ones left out), locked when `lock`.
    async fn read_overrides(
        client: &impl GenericClient,
        app_id: &str,
        device_ids: &[String],
        lock: bool,
    ) -> TxResult<HashMap<String, Overrides>> {
        let rows = client
            .rows(
                &format!(
                    "SELECT device_id, channel, version, set_at FROM overrides \
                     WHERE app_id = $1 AND device_id = ANY($2){}",
                    if lock { " FOR UPDATE" } else { "" }
                ),
                &[&app_id, &device_ids],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), overrides_from(row, 1)))
            .collect())
    }

    /// Applies the writes in the caller's transaction (see [`DeviceOverrides::write_overrides`]).
    async fn write_overrides_in(
        tx: &impl GenericClient,
        writes: &[OverrideWrite],
    ) -> TxResult<Vec<BulkOutcome>> {
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            if let Some(refusal) = Self::override_refusal(tx, write).await? {
                outcomes.push(refusal);
                continue;
            }
            let app_id = write.app_id.as_str();
            // Writers of the same device, on any node, one at a time: the lock covers a device
            // that has no overrides yet (no row to lock), taken in one order by every writer.
            tx.run(
                "SELECT pg_advisory_xact_lock(k.h) FROM (SELECT DISTINCT \
                     hashtextextended($1 || '/' || d, 0) AS h FROM unnest($2::text[]) AS d) AS k \
                 ORDER BY k.h",
                &[&app_id, &write.device_ids],
            )
            .await?;
            let mut state = Self::read_overrides(tx, app_id, &write.device_ids, true).await?;
            let mut changes = Vec::with_capacity(write.device_ids.len());
            let mut entries = Vec::new();
            // The final overrides of each device this write touched, in first-seen order.
            let mut touched: Vec<String> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for device_id in &write.device_ids {
                let before = state.get(device_id).cloned().unwrap_or_default();
                let after = write.action.apply(&before, write.change.at);
                if seen.insert(device_id.as_str()) {
                    touched.push(device_id.clone());
                }
                state.insert(device_id.clone(), after.clone());
                let change = OverrideChange {
                    device_id: device_id.clone(),
                    before,
                    after,
                };
                if change.changed() {
                    let action = write.action.audit_action();
                    entries.push(AuditEntry::of_change(
                        device_id,
                        0,
                        (write.change.actor, write.change.at),
                        action,
                        &change.before,
                        &change.after,
                    ));
                }
                changes.push(change);
            }
            let (mut kept, mut gone) =
                ((Vec::new(), Vec::new(), Vec::new(), Vec::new()), Vec::new());
            for device_id in &touched {
                let overrides = &state[device_id];
                if overrides.is_empty() {
                    gone.push(device_id.as_str());
                } else {
                    kept.0.push(device_id.as_str());
                    kept.1.push(overrides.channel.as_deref());
                    kept.2.push(overrides.version.as_deref());
                    kept.3.push(db(overrides.set_at));
                }
            }
            if !gone.is_empty() {
                tx.run(
                    "DELETE FROM overrides WHERE app_id = $1 AND device_id = ANY($2)",
                    &[&app_id, &gone],
                )
                .await?;
            }
            if !kept.0.is_empty() {
                tx.run(
                    "INSERT INTO overrides (app_id, device_id, channel, version, set_at) \
                     SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) \
                         AS u(device_id, channel, version, set_at) \
                     ON CONFLICT (app_id, device_id) DO UPDATE SET channel = excluded.channel, \
                         version = excluded.version, set_at = excluded.set_at",
                    &[&app_id, &kept.0, &kept.1, &kept.2, &kept.3],
                )
                .await?;
            }
            write_audit(tx, app_id, &entries).await?;
            outcomes.push(BulkOutcome::Applied(changes));
        }
        Ok(outcomes)
    }

    async fn apply_writes(&self, writes: &[OverrideWrite]) -> StoreResult<Vec<BulkOutcome>> {
        // READ COMMITTED: the writes lock what they read (the devices' advisory locks and rows,
        // the channels and bundles through their foreign keys), so that concurrent links never
        // fail each other as SERIALIZABLE's predicate locks made them do under load.
        let outcomes = transaction!(self, tokio_postgres::IsolationLevel::ReadCommitted, |tx| {
            Self::write_overrides_in(&tx, writes).await
        })?;
        let devices: usize = writes.iter().map(|w| w.device_ids.len()).sum();
        self.override_writes
            .fetch_add(devices as u64, Ordering::Relaxed);
        self.override_batches.fetch_add(1, Ordering::Relaxed);
        Ok(outcomes)
    }
}

impl DeviceOverrides for PostgresStore {
    fn write_overrides(&self, writes: &[OverrideWrite]) -> StoreResult<Vec<BulkOutcome>> {
        run(self.apply_writes(writes))
    }

    fn apply_overrides(&self, write: OverrideWrite) -> StoreFuture<BulkOutcome> {
        let store = self.shared();
        spawn(async move {
            store
                .apply_writes(std::slice::from_ref(&write))
                .await?
                .pop()
                .ok_or_else(|| StoreError::Engine("a change of overrides went unanswered".into()))
        })
    }

    fn preview_overrides(&self, write: &OverrideWrite) -> StoreResult<BulkOutcome> {
        run(async {
            let client = self.client().await?;
            let preview = async {
                if let Some(refusal) = Self::override_refusal(&client, write).await? {
                    return Ok(refusal);
                }
                let state =
                    Self::read_overrides(&client, &write.app_id, &write.device_ids, false).await?;
                let changes = write
                    .device_ids
                    .iter()
                    .map(|device_id| {
                        let before = state.get(device_id).cloned().unwrap_or_default();
                        let after = write.action.apply(&before, write.change.at);
                        OverrideChange {
                            device_id: device_id.clone(),
                            before,
                            after,
                        }
                    })
                    .collect();
                Ok(BulkOutcome::Applied(changes))
            };
            preview.await.map_err(super::TxError::into_store)
        })
    }

    fn overrides(&self, app_id: &str, device_id: &str) -> StoreResult<Overrides> {
        run(async {
            let client = self.client().await?;
            let row = client
                .row_opt(
                    "SELECT channel, version, set_at FROM overrides \
                     WHERE app_id = $1 AND device_id = $2",
                    &[&app_id, &device_id],
                )
                .await
                .map_err(sql_error)?;
            Ok(row.map(|row| overrides_from(&row, 0)).unwrap_or_default())
        })
    }
}
