//! The audit log ([`Audit`]): pages newest first.

use tokio_postgres::Row;

use super::Cached;
use super::{api, db, from_json, run, sql_error, PostgresStore};
use crate::model::{AuditEntry, AuditPage};
use crate::store::{Audit, StoreResult};
use crate::timefmt::Micros;

pub(crate) fn entry_from(row: &Row) -> StoreResult<AuditEntry> {
    let rollout: Option<serde_json::Value> = row.get(7);
    Ok(AuditEntry {
        at: api(row.get(0)),
        seq: api(row.get(1)),
        device_id: row.get(2),
        actor: from_json("audit", row.get(3))?,
        action: from_json("audit", row.get(4))?,
        before: from_json("audit", row.get(5))?,
        after: from_json("audit", row.get(6))?,
        rollout: rollout.map(|r| from_json("audit", r)).transpose()?,
    })
}

impl Audit for PostgresStore {
    fn audit(
        &self,
        app_id: &str,
        device_id: Option<&str>,
        before: Option<(Micros, u64)>,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        run(async {
            let client = self.client().await?;
            // (at, seq) below the cursor's; i64::MAX stands for "no cursor".
            let (at, seq) = before.map_or((i64::MAX, i64::MAX), |(at, seq)| (db(at), db(seq)));
            // Written into the statement (its generic plan then knows a page is small), rounded
            // up to a few sizes (see `list.rs`); the rows past the page are dropped below.
            let take = db(super::list::limit_bucket(limit as u64 + 1));
            let rows = match device_id {
                None => {
                    client
                        .rows(
                            &format!(
                                "SELECT at, seq, device_id, actor, action, before, after, \
                                 rollout FROM audit WHERE app_id = $1 AND (at, seq) < ($2, $3) \
                                 ORDER BY at DESC, seq DESC LIMIT {take}"
                            ),
                            &[&app_id, &at, &seq],
                        )
                        .await
                }
                Some(device_id) => {
                    client
                        .rows(
                            &format!(
                                "SELECT at, seq, device_id, actor, action, before, after, \
                                 rollout FROM audit WHERE app_id = $1 AND device_id = $2 \
                                 AND rollout IS NULL AND (at, seq) < ($3, $4) \
                                 ORDER BY at DESC, seq DESC LIMIT {take}"
                            ),
                            &[&app_id, &device_id, &at, &seq],
                        )
                        .await
                }
            }
            .map_err(sql_error)?;
            let entries = rows
                .iter()
                .take(limit + 1)
                .map(entry_from)
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(AuditPage::of(entries, limit))
        })
    }
}
