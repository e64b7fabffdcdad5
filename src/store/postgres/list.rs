//! Pages of devices: one statement per page, a keyset range of the index of the query's order.
//!
//! The conditions an index serves (the cursor, `updated_after` in time orders, a custom id, a
//! channel override) bound the scan; the others filter a subquery that scans at most
//! `max_examined` rows, pulled lazily: a page stops as soon as it has its rows, and a selective
//! filter stops after `max_examined` of them, answering what it found and a cursor at the last
//! row examined (read by a second, keyset-only query, only for a page that came back short), so
//! that no filter turns a page into a scan of the app.

use tokio_postgres::types::ToSql;

use super::devices::entry_from;
use super::{api, db, sql_error, PostgresStore, REPORT_COLUMNS};
use crate::model::{Cursor, DeviceListQuery, DeviceOrder, DevicePage};
use crate::store::StoreResult;

type Param = Box<dyn ToSql + Sync + Send>;

/// The `LIMIT` written for `rows`: the next power of 4 (at least 4).
pub(crate) fn limit_bucket(rows: u64) -> u64 {
    let mut bucket = 4;
    while bucket < rows {
        bucket = bucket.saturating_mul(4);
    }
    bucket
}

/// A `max_examined` this large bounds nothing (exports and counts read every row).
const UNBOUNDED: usize = 1 << 40;

/// A statement's text and its parameters, numbered as they are added.
struct Statement {
    params: Vec<Param>,
}

impl Statement {
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }
}

/// The conditions of a page: those the scan's index serves, and the filters applied to what it
/// yields.
struct Conditions {
    scan: String,
    residual: Vec<String>,
}

/// Binds the query's values into `statement` and answers its conditions; the filters' values
/// only `with_filters` (a statement may not carry a parameter it does not use).
fn conditions(
    statement: &mut Statement,
    app: &str,
    query: &DeviceListQuery,
    with_filters: bool,
) -> Conditions {
    // The app's existence is one look (an initial plan), not one per row.
    let mut scan = vec![format!(
        "d.app_id = {app} AND EXISTS (SELECT 1 FROM apps a WHERE a.app_id = {app} \
         AND NOT a.deleting)"
    )];
    let mut residual: Vec<String> = Vec::new();
    if let Some(cursor) = &query.after {
        let condition = match query.order {
            DeviceOrder::DeviceId => {
                format!("d.device_id > {}", statement.bind(cursor.device_id.clone()))
            }
            DeviceOrder::UpdatedAsc | DeviceOrder::UpdatedDesc => {
                let at = statement.bind(db(cursor.updated_at));
                let id = statement.bind(cursor.device_id.clone());
                let op = if query.order == DeviceOrder::UpdatedAsc {
                    ">"
                } else {
                    "<"
                };
                format!("(d.updated_at, d.device_id) {op} ({at}, {id})")
            }
        };
        scan.push(condition);
    }
    if let Some(after) = query.updated_after {
        match query.order {
            // A range of the time index; in device-id order, a filter like the others.
            DeviceOrder::DeviceId => {
                if with_filters {
                    residual.push(format!("updated_at > {}", statement.bind(db(after))));
                }
            }
            _ => scan.push(format!("d.updated_at > {}", statement.bind(db(after)))),
        }
    }
    let filter = &query.filter;
    let mut filter_on = |statement: &mut Statement, text: &dyn Fn(&mut Statement) -> String| {
        if with_filters {
            residual.push(text(statement));
        }
    };
    match filter.custom_id.as_deref() {
        Some("") => filter_on(statement, &|_| "custom_id = ''".into()),
        // `<> ''` proves the partial index's predicate, in generic plans too.
        Some(custom_id) => scan.push(format!(
            "d.custom_id = {} AND d.custom_id <> ''",
            statement.bind(custom_id.to_owned())
        )),
        None => {}
    }
    if let Some(prefix) = &filter.custom_id_prefix {
        filter_on(statement, &|s| {
            format!("starts_with(custom_id, {})", s.bind(prefix.clone()))
        });
    }
    if let Some(platform) = filter.platform {
        filter_on(statement, &|s| {
            format!("platform = {}", s.bind(platform.as_str().to_owned()))
        });
    }
    if let Some(version_name) = &filter.version_name {
        filter_on(statement, &|s| {
            format!("version_name = {}", s.bind(version_name.clone()))
        });
    }
    if let Some(channel) = &filter.channel {
        scan.push(format!("o.channel = {}", statement.bind(channel.clone())));
    }
    match filter.has_override {
        Some(true) => scan.push("(o.channel IS NOT NULL OR o.version IS NOT NULL)".into()),
        Some(false) => filter_on(statement, &|_| {
            "(o_channel IS NULL AND o_version IS NULL)".into()
        }),
        None => {}
    }
    if let Some(is_prod) = filter.is_prod {
        filter_on(statement, &|s| format!("is_prod = {}", s.bind(is_prod)));
    }
    if let Some(is_emulator) = filter.is_emulator {
        filter_on(statement, &|s| {
            format!("is_emulator = {}", s.bind(is_emulator))
        });
    }
    Conditions {
        scan: scan.join(" AND "),
        residual,
    }
}

/// (order of the scan, the same on the subquery's columns, on the page's `m`).
fn orders(order: DeviceOrder) -> (&'static str, &'static str, &'static str) {
    match order {
        DeviceOrder::DeviceId => ("d.device_id", "device_id", "m.device_id"),
        DeviceOrder::UpdatedAsc => (
            "d.updated_at, d.device_id",
            "updated_at, device_id",
            "m.updated_at, m.device_id",
        ),
        DeviceOrder::UpdatedDesc => (
            "d.updated_at DESC, d.device_id DESC",
            "updated_at DESC, device_id DESC",
            "m.updated_at DESC, m.device_id DESC",
        ),
    }
}

impl Statement {
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

impl PostgresStore {
    pub(crate) async fn page(
        &self,
        app_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<DevicePage> {
        let (order_d, order_s, order_m) = orders(query.order);
        let mut statement = Statement { params: Vec::new() };
        let app = statement.bind(app_id.to_owned());
        let Conditions { scan, residual } = conditions(&mut statement, &app, query, true);
        let bounded = !residual.is_empty();
        // Limits are written into the statement, not bound: its plan (generic, see mod.rs) is
        // then made knowing that a page is small, and reads the index in order. Rounded up to a
        // few sizes (the rows past the page are dropped here), so that the statements kept per
        // connection stay few whatever limits clients ask for.
        let page_limit = db(limit_bucket(query.limit as u64 + 1));
        let scanned = format!(
            "SELECT d.device_id, d.updated_at, d.revision, {REPORT_COLUMNS}, d.rollout, \
                 o.channel AS o_channel, o.version AS o_version, o.set_at AS o_set_at \
             FROM devices d LEFT JOIN overrides o \
                 ON o.app_id = d.app_id AND o.device_id = d.device_id \
             WHERE {scan} ORDER BY {order_d}"
        );
        // Without filters of its own, the page is the scan; with them, the scan is capped at
        // `max_examined` rows and the filters applied to what it yields, lazily.
        let matched = if bounded {
            let cap = db(query.max_examined.max(1) as u64);
            format!(
                "SELECT * FROM ({scanned} LIMIT {cap}) AS s WHERE {} ORDER BY {order_s} \
                 LIMIT {page_limit}",
                residual.join(" AND ")
            )
        } else {
            format!("{scanned} LIMIT {page_limit}")
        };
        let report: Vec<String> = REPORT_COLUMNS
            .split(", ")
            .map(|column| format!("m.{column}"))
            .collect();
        let sql = format!(
            "SELECT m.device_id, m.updated_at, m.revision, {report}, m.rollout, m.o_channel, \
                 m.o_version, m.o_set_at, b.id \
             FROM ({matched}) AS m \
             LEFT JOIN bundles b ON b.app_id = {app} AND b.version = m.version_name \
             ORDER BY {order_m}",
            report = report.join(", "),
        );
        let client = self.client().await?;
        let prepared = client.prepare_cached(&sql).await.map_err(sql_error)?;
        let rows = client
            .query(&prepared, &statement.params())
            .await
            .map_err(sql_error)?;
        let mut devices = rows
            .iter()
            .take(query.limit + 1)
            .map(|row| entry_from(app_id, row))
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if devices.len() > query.limit {
            devices.truncate(query.limit);
            devices.last().map(|entry| Cursor {
                updated_at: entry.device.updated_at,
                device_id: entry.device.device_id.clone(),
            })
        } else if bounded && query.max_examined < UNBOUNDED {
            // A short page: the scan ended, or stopped at its cap. Its cap-th row, if there is
            // one, is where the next page starts (a keyset read of the scan alone).
            let mut keyset = Statement { params: Vec::new() };
            let app = keyset.bind(app_id.to_owned());
            let Conditions { scan, .. } = conditions(&mut keyset, &app, query, false);
            let offset = db(query.max_examined.max(1) as u64 - 1);
            let sql = format!(
                "SELECT d.updated_at, d.device_id FROM devices d LEFT JOIN overrides o \
                     ON o.app_id = d.app_id AND o.device_id = d.device_id \
                 WHERE {scan} ORDER BY {order_d} OFFSET {offset} LIMIT 1"
            );
            let prepared = client.prepare_cached(&sql).await.map_err(sql_error)?;
            client
                .query_opt(&prepared, &keyset.params())
                .await
                .map_err(sql_error)?
                .map(|row| Cursor {
                    updated_at: api(row.get(0)),
                    device_id: row.get(1),
                })
        } else {
            None
        };
        Ok(DevicePage { devices, next })
    }
}

#[cfg(test)]
mod tests {
    use super::limit_bucket;

    #[test]
    fn limits_round_up_to_few_sizes() {
        let buckets: Vec<u64> = [1, 4, 5, 16, 17, 51, 64, 65, 1_001]
            .into_iter()
            .map(limit_bucket)
            .collect();
        assert_eq!(buckets, [4, 4, 16, 16, 64, 64, 64, 256, 1_024]);
        let distinct: std::collections::BTreeSet<u64> = (1..=10_001).map(limit_bucket).collect();
        assert_eq!(distinct.len(), 7);
    }
}
