//! What operators and the server need of the store ([`Maintenance`]), and the bundles' event
//! counters ([`VersionHealth`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Cached;
use super::{api, from_json, run, sql_error, PostgresStore};
use crate::model::{ManifestEntry, Rollout};
use crate::store::{
    CheckReport, Counts, Maintenance, StoreError, StoreResult, VersionEvent, VersionHealth,
    WriteStats,
};

/// The longest a health probe waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

impl Maintenance for PostgresStore {
    /// Every acknowledged write is a committed transaction: nothing is left to flush.
    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn reads_from_memory(&self) -> bool {
        false
    }

    fn write_stats(&self) -> WriteStats {
        PostgresStore::write_stats(self)
    }

    fn health(&self) -> StoreResult<()> {
        let mut last = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < Duration::from_secs(1) {
                return result.clone();
            }
        }
        // A write, not a `SELECT 1`: a database that answers but refuses writes (a full disk, a
        // standby after a failover) is not healthy.
        // Bounded well below a load balancer's patience: a database that stopped answering (a
        // network that drops packets) is unhealthy now, not after the TCP timeouts.
        let result = run(async {
            let probe = async {
                let client = self.client().await?;
                client
                    .run(
                        "INSERT INTO health_probe (id, probed_at) VALUES (1, now()) \
                         ON CONFLICT (id) DO UPDATE SET probed_at = now()",
                        &[],
                    )
                    .await
                    .map_err(sql_error)?;
                Ok(())
            };
            tokio::time::timeout(HEALTH_TIMEOUT, probe)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(format!(
                        "postgres: no answer to the health probe within {} s",
                        HEALTH_TIMEOUT.as_secs()
                    )))
                })
        });
        *last = Some((Instant::now(), result.clone()));
        result
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        run(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                    &[],
                )
                .await
                .map_err(sql_error)?;
            Ok(api(row.get(0)))
        })
    }

    fn device_counts(&self) -> StoreResult<Vec<(String, usize)>> {
        run(async {
            let client = self.client().await?;
            let rows = client
                .rows(
                    "SELECT a.app_id, count(d.device_id) FROM apps a \
                     LEFT JOIN devices d ON d.app_id = a.app_id WHERE NOT a.deleting \
                     GROUP BY a.app_id ORDER BY a.app_id",
                    &[],
                )
                .await
                .map_err(sql_error)?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), api(row.get(1)) as usize))
                .collect())
        })
    }

    fn counts(&self) -> StoreResult<Counts> {
        run(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM apps), (SELECT count(*) FROM devices), \
                     (SELECT count(*) FROM overrides)",
                    &[],
                )
                .await
                .map_err(sql_error)?;
            let (apps, devices, overrides) = (
                api(row.get(0)) as usize,
                api(row.get(1)) as usize,
                api(row.get(2)) as usize,
            );
            // The indexes are PostgreSQL's: one entry per row, always.
            Ok(Counts {
                apps,
                devices,
                devices_by_time: devices,
                overrides,
                overrides_by_time: overrides,
            })
        })
    }

    /// PostgreSQL keeps the indexes and the foreign keys itself: what is left to verify is what
    /// it stores without reading (JSON columns that must decode) and overrides that name
    /// nothing. A repair removes those overrides; records that do not decode are named, not
    /// removed.
    fn check(&self, repair: bool) -> StoreResult<CheckReport> {
        run(async {
            let client = self.client().await?;
            let mut report = CheckReport::default();
            let row = client
                .query_one("SELECT count(*) FROM devices", &[])
                .await
                .map_err(sql_error)?;
            report.devices = api(row.get(0)) as usize;
            report.index_entries = report.devices;
            for row in client
                .rows(
                    "SELECT app_id, name, rollout FROM channels WHERE rollout IS NOT NULL",
                    &[],
                )
                .await
                .map_err(sql_error)?
            {
                if from_json::<Rollout>("channels", row.get(2)).is_err() {
                    report.corrupt_records += 1;
                    let (app_id, name): (String, String) = (row.get(0), row.get(1));
                    report.examples.push(format!(
                        "channel {app_id}/{name}: its rollout does not decode"
                    ));
                }
            }
            for row in client
                .rows("SELECT app_id, version, manifest FROM bundles", &[])
                .await
                .map_err(sql_error)?
            {
                if from_json::<Vec<ManifestEntry>>("bundles", row.get(2)).is_err() {
                    report.corrupt_records += 1;
                    let (app_id, version): (String, String) = (row.get(0), row.get(1));
                    report.examples.push(format!(
                        "bundle {app_id}/{version}: its manifest does not decode"
                    ));
                }
            }
            let empty = client
                .query_one(
                    "SELECT count(*) FROM overrides WHERE channel IS NULL AND version IS NULL",
                    &[],
                )
                .await
                .map_err(sql_error)?;
            report.dangling_overrides = api(empty.get(0)) as usize;
            if report.dangling_overrides > 0 {
                report.examples.push(format!(
                    "{} overrides name nothing",
                    report.dangling_overrides
                ));
            }
            report.interrupted_imports = self.pending_imports(&client).await?;
            if repair && report.dangling_overrides > 0 {
                client
                    .run(
                        "DELETE FROM overrides WHERE channel IS NULL AND version IS NULL",
                        &[],
                    )
                    .await
                    .map_err(sql_error)?;
                report.repaired = true;
            }
            if repair && !report.interrupted_imports.is_empty() {
                client
                    .run("DELETE FROM imports_pending", &[])
                    .await
                    .map_err(sql_error)?;
                report.repaired = true;
            }
            Ok(report)
        })
    }

    fn mark_import(&self, source: &str, pending: bool) -> StoreResult<()> {
        run(async {
            let client = self.client().await?;
            let statement = if pending {
                "INSERT INTO imports_pending (source) VALUES ($1) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM imports_pending WHERE source = $1"
            };
            client
                .execute(statement, &[&source])
                .await
                .map_err(sql_error)?;
            Ok(())
        })
    }

    fn interrupted_imports(&self) -> StoreResult<Vec<String>> {
        run(async {
            let client = self.client().await?;
            self.pending_imports(&client).await
        })
    }
}

impl PostgresStore {
    async fn pending_imports(
        &self,
        client: &deadpool_postgres::Object,
    ) -> StoreResult<Vec<String>> {
        let rows = client
            .rows("SELECT source FROM imports_pending ORDER BY source", &[])
            .await
            .map_err(sql_error)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Adds the events to their counters, in one statement (summed per counter first: one
    /// statement may not change a row twice). Events of apps that do not exist are dropped.
    pub(crate) async fn add_version_events(
        client: &impl deadpool_postgres::GenericClient,
        events: &[VersionEvent],
    ) -> Result<(), tokio_postgres::Error> {
        let mut summed: BTreeMap<(&str, &str, u32, &str), i64> = BTreeMap::new();
        for event in events {
            *summed
                .entry((&event.app_id, &event.version, event.day, &event.action))
                .or_default() += 1;
        }
        if summed.is_empty() {
            return Ok(());
        }
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((app_id, version, day, action), count) in summed {
            columns.0.push(app_id);
            columns.1.push(version);
            columns.2.push(i32::try_from(day).unwrap_or(i32::MAX));
            columns.3.push(action);
            columns.4.push(count);
        }
        client
            .run(
                "INSERT INTO version_events (app_id, version, day, action, count) \
                 SELECT u.* FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[]) \
                     AS u(app_id, version, day, action, count) \
                 WHERE EXISTS (SELECT 1 FROM apps a WHERE a.app_id = u.app_id AND NOT a.deleting) \
                 ON CONFLICT (app_id, version, day, action) \
                 DO UPDATE SET count = version_events.count + excluded.count",
                &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
            )
            .await
            .map(|_| ())
            .or_else(|error| {
                // An app deleted between the check and the insert: its events go with it.
                if error.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                    Ok(())
                } else {
                    Err(error)
                }
            })
    }

    pub(crate) async fn read_version_events(
        client: &impl deadpool_postgres::GenericClient,
        app_id: &str,
        version: &str,
        first_day: u32,
        last_day: u32,
    ) -> Result<Vec<(u32, String, u64)>, tokio_postgres::Error> {
        let day = |d: u32| i32::try_from(d).unwrap_or(i32::MAX);
        let rows = client
            .rows(
                "SELECT day, action, count FROM version_events \
                 WHERE app_id = $1 AND version = $2 AND day >= $3 AND day <= $4 \
                 ORDER BY day, action",
                &[&app_id, &version, &day(first_day), &day(last_day)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let day: i32 = row.get(0);
                (day.max(0) as u32, row.get(1), api(row.get(2)))
            })
            .collect())
    }
}

impl VersionHealth for PostgresStore {
    fn count_version_events(&self, events: &[VersionEvent]) -> StoreResult<()> {
        run(async {
            let client = self.client().await?;
            Self::add_version_events(&client, events)
                .await
                .map_err(sql_error)
        })
    }

    fn version_events(
        &self,
        app_id: &str,
        version: &str,
        first_day: u32,
        last_day: u32,
    ) -> StoreResult<Vec<(u32, String, u64)>> {
        run(async {
            let client = self.client().await?;
            Self::read_version_events(&client, app_id, version, first_day, last_day)
                .await
                .map_err(sql_error)
        })
    }
}
