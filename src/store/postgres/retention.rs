//! Expiry ([`Retention`]): devices not seen since the cutoff with their overrides, overrides of
//! devices that never checked in, old audit entries and event counters; bounded per call.
//!
//! One sweep at a time across the nodes: each call of `expire_before` holds a transaction-level
//! advisory lock, and a node that cannot take it removes nothing (another node is sweeping).

use tokio_postgres::IsolationLevel;

use super::{api, db, run, sql_error, to_json, PostgresStore};
use crate::model::{Actor, AuditAction, Overrides};
use crate::store::{Expired, Retention, StoreResult};
use crate::timefmt::Micros;

pub const SWEEP_LOCK: i64 = 0x6465_7669_6365_0002;

/// Logs each override a sweep statement removed (`dropped`) as expired, in one statement with it;
/// `$2` is now, `$3`..`$5` the actor, the action and the empty overrides. (Limits are written
/// into the statements: their generic plans then read the expiry index in order.)
const LOG_DROPPED: &str = "logged AS (INSERT INTO audit (app_id, at, seq, device_id, actor, \
     action, before, after) \
     SELECT app_id, $2, nextval('audit_seq'), device_id, $3, $4, \
         jsonb_build_object('channel', channel, 'version', version, 'set_at', set_at), $5 \
     FROM dropped ORDER BY app_id, device_id RETURNING 1)";

/// Up to `limit` devices last seen before `$1`, oldest first, with their overrides. Rows another
/// writer holds are passed over (`SKIP LOCKED`): the sweep never waits for a check-in, and the
/// next round takes them.
fn expire_devices(limit: i64) -> String {
    format!(
        "WITH doomed AS (SELECT app_id, device_id FROM devices \
             WHERE updated_at < $1 ORDER BY updated_at LIMIT {limit} FOR UPDATE SKIP LOCKED), \
         gone AS (DELETE FROM devices d USING doomed \
             WHERE d.app_id = doomed.app_id AND d.device_id = doomed.device_id \
             RETURNING d.app_id, d.device_id), \
         dropped AS (DELETE FROM overrides o USING gone \
             WHERE o.app_id = gone.app_id AND o.device_id = gone.device_id \
             RETURNING o.app_id, o.device_id, o.channel, o.version, o.set_at), \
         {LOG_DROPPED} \
         SELECT (SELECT count(*) FROM gone)"
    )
}

/// Up to `limit` overrides set before `$1` for devices that never checked in. The scan also
/// passes the old overrides of devices that exist (they live as long as their device): its
/// cost follows how many of those there are (README).
fn expire_orphans(limit: i64) -> String {
    format!(
        "WITH doomed AS (SELECT app_id, device_id FROM overrides x \
             WHERE set_at < $1 AND NOT EXISTS (SELECT 1 FROM devices d \
                 WHERE d.app_id = x.app_id AND d.device_id = x.device_id) \
             ORDER BY set_at LIMIT {limit} FOR UPDATE SKIP LOCKED), \
         dropped AS (DELETE FROM overrides o USING doomed \
             WHERE o.app_id = doomed.app_id AND o.device_id = doomed.device_id \
             RETURNING o.app_id, o.device_id, o.channel, o.version, o.set_at), \
         {LOG_DROPPED} \
         SELECT count(*) FROM logged"
    )
}

impl Retention for PostgresStore {
    /// Each statement removes its rows with their audit entries atomically; the transaction is
    /// READ COMMITTED (the statements lock what they remove: no serializable read locks over the
    /// scanned ranges to fail the writes beside it) and holds the sweep's advisory lock.
    fn expire_before(&self, cutoff: Micros, limit: usize, now: Micros) -> StoreResult<Expired> {
        if limit == 0 {
            return Ok(Expired::default());
        }
        let (cutoff, take, now) = (db(cutoff), db(limit as u64), db(now));
        let actor = to_json(&Actor::Sweep);
        let action = to_json(&AuditAction::Expire);
        let after = to_json(&Overrides::default());
        run(async {
            let mut client = self.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .await
                .map_err(sql_error)?;
            let swept = async {
                let locked: bool = tx
                    .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
                    .await?
                    .get(0);
                if !locked {
                    log::info!("sweep: another node is sweeping");
                    return Ok(Expired::default());
                }
                let row = tx
                    .query_one(
                        &expire_devices(take),
                        &[&cutoff, &now, &actor, &action, &after],
                    )
                    .await?;
                let devices = api(row.get(0)) as usize;
                let mut expired = Expired {
                    devices,
                    orphan_overrides: 0,
                    more: devices >= limit,
                };
                if expired.more {
                    return Ok(expired);
                }
                let room = db((limit - devices) as u64);
                let row = tx
                    .query_one(
                        &expire_orphans(room),
                        &[&cutoff, &now, &actor, &action, &after],
                    )
                    .await?;
                expired.orphan_overrides = api(row.get(0)) as usize;
                expired.more = devices + expired.orphan_overrides >= limit;
                Ok::<_, tokio_postgres::Error>(expired)
            }
            .await;
            match swept {
                Ok(expired) => {
                    tx.commit().await.map_err(sql_error)?;
                    Ok(expired)
                }
                Err(error) => {
                    let _ = tx.rollback().await;
                    Err(sql_error(error))
                }
            }
        })
    }

    fn expire_audit_before(&self, cutoff: Micros, limit: usize) -> StoreResult<(usize, bool)> {
        if limit == 0 {
            return Ok((0, false));
        }
        run(async {
            let client = self.client().await?;
            let removed = client
                .execute(
                    &format!(
                        "DELETE FROM audit WHERE (app_id, at, seq) IN (SELECT app_id, at, seq \
                         FROM audit WHERE at < $1 ORDER BY at LIMIT {})",
                        db(limit as u64)
                    ),
                    &[&db(cutoff)],
                )
                .await
                .map_err(sql_error)? as usize;
            Ok((removed, removed >= limit))
        })
    }

    fn expire_version_events_before(&self, day: u32, limit: usize) -> StoreResult<(usize, bool)> {
        if limit == 0 {
            return Ok((0, false));
        }
        run(async {
            let client = self.client().await?;
            let removed = client
                .execute(
                    &format!(
                        "DELETE FROM version_events WHERE (app_id, version, day, action) IN \
                         (SELECT app_id, version, day, action FROM version_events \
                         WHERE day < $1 LIMIT {})",
                        db(limit as u64)
                    ),
                    &[&i32::try_from(day).unwrap_or(i32::MAX)],
                )
                .await
                .map_err(sql_error)? as usize;
            Ok((removed, removed >= limit))
        })
    }
}
