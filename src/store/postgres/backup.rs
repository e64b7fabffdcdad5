//! Dumps and restores ([`Backup`]) of the PostgreSQL engine: the dump reads every table in one
//! REPEATABLE READ, READ ONLY transaction (a consistent snapshot; writes go on meanwhile), rows
//! streamed, never all in memory; a restore writes the rows as dumped, then moves the sequences
//! past the largest ids.

use deadpool_postgres::GenericClient;
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::IsolationLevel;

use super::devices::{entry_row, DEVICE_ROW_COLUMNS};
use super::Cached;
use super::{api, db, run, sql_error, to_json, PostgresStore, TxError, TxResult};
use crate::model::{Device, Overrides};
use crate::store::backup::{secret_hash_of, Backup, DeviceBatches, DumpRecord};
use crate::store::{StoreError, StoreResult};

/// Devices written per statement during a restore.
const RESTORE_BATCH: usize = 2_000;

type Sink<'s> = &'s mut dyn FnMut(DumpRecord) -> StoreResult<()>;

/// Streams the rows of a query to `each`, which turns each into a record for the sink.
async fn each_row(
    tx: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    sink: &mut Sink<'_>,
    each: impl Fn(&tokio_postgres::Row) -> StoreResult<DumpRecord>,
) -> TxResult<()> {
    let statement = tx.prepare(sql).await?;
    let rows = tx.query_raw(&statement, params.iter().copied()).await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        sink(each(&row)?)?;
    }
    Ok(())
}

impl PostgresStore {
    async fn dump_in(tx: &impl GenericClient, mut sink: Sink<'_>) -> TxResult<()> {
        // What `nextval` answers next.
        let next = |sequence: &str| {
            format!(
                "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {sequence}"
            )
        };
        let key_ids = tx.query_one(&next("api_key_ids"), &[]).await?;
        let audit_seqs = tx.query_one(&next("audit_seq"), &[]).await?;
        sink(DumpRecord::Sequences {
            next_api_key_id: api(key_ids.get(0)),
            next_audit_seq: api(audit_seqs.get(0)),
        })?;
        each_row(
            tx,
            "SELECT id, name, mode, limited_to_apps, expires_at, created_at, secret_hash \
             FROM api_keys ORDER BY id",
            &[],
            &mut sink,
            |row| {
                let hash: Vec<u8> = row.get(6);
                let hash: [u8; 32] = hash.try_into().map_err(|_| StoreError::Corrupt {
                    tree: "api_keys",
                    detail: "a secret hash is not 32 bytes".into(),
                })?;
                Ok(DumpRecord::api_key(super::api_keys::key_from(row)?, &hash))
            },
        )
        .await?;
        let apps = tx
            .rows(
                "SELECT app_id, name, created_at, next_channel_id, next_bundle_id FROM apps \
                 WHERE NOT deleting \
                 ORDER BY app_id",
                &[],
            )
            .await?;
        for app in &apps {
            let app_id: String = app.get(0);
            sink(DumpRecord::App {
                app_id: app_id.clone(),
                name: app.get(1),
                created_at: api(app.get(2)),
                next_channel_id: api(app.get(3)),
                next_bundle_id: api(app.get(4)),
            })?;
            let app_param: [&(dyn ToSql + Sync); 1] = [&app_id];
            each_row(
                tx,
                &format!(
                    "SELECT {} FROM bundles WHERE app_id = $1 ORDER BY version",
                    super::registry::BUNDLE_COLUMNS
                ),
                &app_param,
                &mut sink,
                |row| Ok(DumpRecord::bundle(super::registry::bundle_from(row)?)),
            )
            .await?;
            each_row(
                tx,
                &format!(
                    "SELECT {} FROM channels WHERE app_id = $1 ORDER BY name",
                    super::registry::CHANNEL_COLUMNS
                ),
                &app_param,
                &mut sink,
                |row| Ok(DumpRecord::channel(super::registry::channel_from(row)?)),
            )
            .await?;
            each_row(
                tx,
                &format!(
                    "SELECT {DEVICE_ROW_COLUMNS} FROM devices WHERE app_id = $1 \
                     ORDER BY device_id"
                ),
                &app_param,
                &mut sink,
                |row| {
                    let device = entry_row(&app_id, row)?;
                    Ok(DumpRecord::Device {
                        app_id: device.app_id,
                        device_id: device.device_id,
                        updated_at: device.updated_at,
                        report: device.report,
                        rollout: device.rollout,
                    })
                },
            )
            .await?;
            each_row(
                tx,
                "SELECT device_id, channel, version, set_at FROM overrides WHERE app_id = $1 \
                 ORDER BY device_id",
                &app_param,
                &mut sink,
                |row| {
                    Ok(DumpRecord::Overrides {
                        app_id: app_id.clone(),
                        device_id: row.get(0),
                        overrides: super::overrides_from(row, 1),
                    })
                },
            )
            .await?;
            each_row(
                tx,
                "SELECT at, seq, device_id, actor, action, before, after, rollout FROM audit \
                 WHERE app_id = $1 ORDER BY at, seq",
                &app_param,
                &mut sink,
                |row| Ok(DumpRecord::audit(&app_id, super::audit::entry_from(row)?)),
            )
            .await?;
            each_row(
                tx,
                "SELECT version, day, action, count FROM version_events WHERE app_id = $1 \
                 ORDER BY version, day, action",
                &app_param,
                &mut sink,
                |row| {
                    let day: i32 = row.get(1);
                    Ok(DumpRecord::VersionEvent {
                        app_id: app_id.clone(),
                        version: row.get(0),
                        day: day.max(0) as u32,
                        action: row.get(2),
                        count: api(row.get(3)),
                    })
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn restore_record(
        client: &impl GenericClient,
        record: DumpRecord,
        batches: &mut DeviceBatches,
    ) -> TxResult<()> {
        match record {
            DumpRecord::Header { .. } | DumpRecord::End { .. } => {}
            DumpRecord::Sequences {
                next_api_key_id,
                next_audit_seq,
            } => {
                // The sequences restart from here; what the restored rows hold moves them on
                // further at the end.
                client
                    .run(
                        "SELECT setval('api_key_ids', $1, false), setval('audit_seq', $2, false)",
                        &[&db(next_api_key_id.max(1)), &db(next_audit_seq.max(1))],
                    )
                    .await?;
            }
            DumpRecord::ApiKey { key, secret_hash } => {
                let key = crate::store::NewApiKey {
                    key,
                    secret_hash: secret_hash_of(&secret_hash)?,
                };
                Self::insert_key(client, &key).await?;
            }
            DumpRecord::App {
                app_id,
                name,
                created_at,
                next_channel_id,
                next_bundle_id,
            } => {
                client
                    .run(
                        "INSERT INTO apps (app_id, name, created_at, next_channel_id, \
                         next_bundle_id) VALUES ($1, $2, $3, $4, $5)",
                        &[
                            &app_id,
                            &name,
                            &db(created_at),
                            &db(next_channel_id),
                            &db(next_bundle_id),
                        ],
                    )
                    .await?;
            }
            DumpRecord::Bundle { bundle, .. } => {
                super::registry::insert_bundle(client, &bundle).await?;
            }
            DumpRecord::Channel { channel, .. } => {
                super::registry::write_channel(client, &channel).await?;
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
                    Self::restore_devices(client, &batch).await?;
                }
            }
            DumpRecord::Overrides {
                app_id,
                device_id,
                overrides,
            } => {
                let Overrides {
                    channel,
                    version,
                    set_at,
                } = overrides;
                client
                    .run(
                        "INSERT INTO overrides (app_id, device_id, channel, version, set_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                        &[&app_id, &device_id, &channel, &version, &db(set_at)],
                    )
                    .await?;
            }
            DumpRecord::Audit { app_id, entry, .. } => {
                client
                    .run(
                        "INSERT INTO audit (app_id, at, seq, device_id, actor, action, before, \
                         after, rollout) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[
                            &app_id,
                            &db(entry.at),
                            &db(entry.seq),
                            &entry.device_id,
                            &to_json(&entry.actor),
                            &to_json(&entry.action),
                            &to_json(&entry.before),
                            &to_json(&entry.after),
                            &entry.rollout.as_ref().map(to_json),
                        ],
                    )
                    .await?;
            }
            DumpRecord::VersionEvent {
                app_id,
                version,
                day,
                action,
                count,
            } => {
                client
                    .run(
                        "INSERT INTO version_events (app_id, version, day, action, count) \
                         VALUES ($1, $2, $3, $4, $5)",
                        &[
                            &app_id,
                            &version,
                            &i32::try_from(day).unwrap_or(i32::MAX),
                            &action,
                            &db(count),
                        ],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn restore_devices(client: &impl GenericClient, devices: &[Device]) -> TxResult<()> {
        if let Some(first) = devices.first() {
            let app_id = first.app_id.clone();
            if !Self::import_rows(client, &app_id, devices).await? {
                return Err(TxError::Store(StoreError::Damaged(format!(
                    "the dump has devices of app {app_id} before the app"
                ))));
            }
        }
        Ok(())
    }
}

impl Backup for PostgresStore {
    fn dump(&self, sink: &mut dyn FnMut(DumpRecord) -> StoreResult<()>) -> StoreResult<()> {
        run(async {
            let mut client = self.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(sql_error)?;
            Self::dump_in(&tx, sink)
                .await
                .map_err(TxError::into_store)?;
            tx.commit().await.map_err(sql_error)
        })
    }

    fn restore(
        &self,
        records: &mut dyn Iterator<Item = StoreResult<DumpRecord>>,
    ) -> StoreResult<u64> {
        let holds = run(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM apps) OR EXISTS (SELECT 1 FROM api_keys)",
                    &[],
                )
                .await
                .map_err(sql_error)?;
            Ok(row.get::<_, bool>(0))
        })?;
        if holds {
            return Err(StoreError::Damaged(
                "a dump restores into an empty store only: this one holds apps or keys".into(),
            ));
        }
        run(async {
            let client = self.client().await?;
            let mut batches = DeviceBatches::new(RESTORE_BATCH);
            let mut written = 0;
            let restore = async {
                for record in records {
                    Self::restore_record(&client, record?, &mut batches).await?;
                    written += 1;
                }
                Self::restore_devices(&client, &batches.rest()).await?;
                // The sequences continue after what was restored.
                client
                    .batch_execute(
                        "SELECT setval('audit_seq', max(seq)) FROM audit \
                             HAVING max(seq) > (SELECT CASE WHEN is_called THEN last_value \
                                 ELSE last_value - 1 END FROM audit_seq); \
                         SELECT setval('api_key_ids', max(id)) FROM api_keys \
                             HAVING max(id) > (SELECT CASE WHEN is_called THEN last_value \
                                 ELSE last_value - 1 END FROM api_key_ids)",
                    )
                    .await?;
                Ok::<_, TxError>(())
            };
            restore.await.map_err(TxError::into_store)?;
            self.committed();
            Ok(written)
        })
    }
}
