//! Pages of devices: one statement per page, a keyset range of the index of the query's order.
//!
//! The conditions an index serves (the cursor, `updated_after` in time orders, a custom id, a
//! channel override) bound the scan; the others are applied to at most `max_examined` scanned
//! rows, after which the page answers what it found and a cursor at the last row examined, so
//! that a selective filter never turns a page into a scan of the app.

use tokio_postgres::types::ToSql;

use super::devices::entry_from;
use super::{api, db, sql_error, PostgresStore, REPORT_COLUMNS};
use crate::model::{Cursor, DeviceListQuery, DeviceOrder, DevicePage};
use crate::store::StoreResult;

type Param = Box<dyn ToSql + Sync + Send>;

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

impl PostgresStore {
    pub(crate) async fn page(
        &self,
        app_id: &str,
        query: &DeviceListQuery,
    ) -> StoreResult<DevicePage> {
        let mut statement = Statement { params: Vec::new() };
        let app = statement.bind(app_id.to_owned());
        let mut scan = vec![format!("d.app_id = {app}")];
        let mut residual: Vec<String> = Vec::new();
        let (order, reverse, prefixed) = match query.order {
            DeviceOrder::DeviceId => ("device_id", "device_id DESC", "m.device_id"),
            DeviceOrder::UpdatedAsc => (
                "updated_at, device_id",
                "updated_at DESC, device_id DESC",
                "m.updated_at, m.device_id",
            ),
            DeviceOrder::UpdatedDesc => (
                "updated_at DESC, device_id DESC",
                "updated_at, device_id",
                "m.updated_at DESC, m.device_id DESC",
            ),
        };
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
            let after = statement.bind(db(after));
            match query.order {
                // A range of the time index; in device-id order, a filter like the others.
                DeviceOrder::DeviceId => residual.push(format!("updated_at > {after}")),
                _ => scan.push(format!("d.updated_at > {after}")),
            }
        }
        let filter = &query.filter;
        match filter.custom_id.as_deref() {
            Some("") => residual.push("custom_id = ''".into()),
            Some(custom_id) => scan.push(format!(
                "d.custom_id = {}",
                statement.bind(custom_id.to_owned())
            )),
            None => {}
        }
        if let Some(prefix) = &filter.custom_id_prefix {
            residual.push(format!(
                "starts_with(custom_id, {})",
                statement.bind(prefix.clone())
            ));
        }
        if let Some(platform) = filter.platform {
            residual.push(format!(
                "platform = {}",
                statement.bind(platform.as_str().to_owned())
            ));
        }
        if let Some(version_name) = &filter.version_name {
            residual.push(format!(
                "version_name = {}",
                statement.bind(version_name.clone())
            ));
        }
        if let Some(channel) = &filter.channel {
            scan.push(format!("o.channel = {}", statement.bind(channel.clone())));
        }
        match filter.has_override {
            Some(true) => scan.push("(o.channel IS NOT NULL OR o.version IS NOT NULL)".into()),
            Some(false) => residual.push("(o_channel IS NULL AND o_version IS NULL)".into()),
            None => {}
        }
        if let Some(is_prod) = filter.is_prod {
            residual.push(format!("is_prod = {}", statement.bind(is_prod)));
        }
        if let Some(is_emulator) = filter.is_emulator {
            residual.push(format!("is_emulator = {}", statement.bind(is_emulator)));
        }
        let bounded = !residual.is_empty();
        let scan_limit = if bounded {
            query.max_examined.max(1)
        } else {
            query.limit + 1
        };
        let scan_limit = statement.bind(db(scan_limit as u64));
        let page_limit = statement.bind(db(query.limit as u64 + 1));
        let residual = if residual.is_empty() {
            "true".to_owned()
        } else {
            residual.join(" AND ")
        };
        let report: Vec<String> = REPORT_COLUMNS
            .split(", ")
            .map(|column| format!("m.{column}"))
            .collect();
        let sql = format!(
            "WITH scanned AS MATERIALIZED (\
                 SELECT d.device_id, d.updated_at, d.revision, {REPORT_COLUMNS}, d.rollout, \
                     o.channel AS o_channel, o.version AS o_version, o.set_at AS o_set_at \
                 FROM devices d LEFT JOIN overrides o \
                     ON o.app_id = d.app_id AND o.device_id = d.device_id \
                 WHERE {scan} ORDER BY {order_d} LIMIT {scan_limit}), \
             matched AS (SELECT * FROM scanned WHERE {residual} ORDER BY {order} \
                 LIMIT {page_limit}), \
             tail AS (SELECT (SELECT count(*) FROM scanned) AS n, l.updated_at AS last_at, \
                 l.device_id AS last_id FROM (SELECT 1) AS one LEFT JOIN LATERAL \
                 (SELECT updated_at, device_id FROM scanned ORDER BY {reverse} LIMIT 1) AS l \
                 ON true) \
             SELECT m.device_id, m.updated_at, m.revision, {report}, m.rollout, m.o_channel, \
                 m.o_version, m.o_set_at, b.id, tail.n, tail.last_at, tail.last_id \
             FROM tail LEFT JOIN matched AS m ON true \
             LEFT JOIN bundles b ON b.app_id = {app} AND b.version = m.version_name \
             ORDER BY {prefixed}",
            scan = scan.join(" AND "),
            order_d = order
                .split(", ")
                .map(|part| format!("d.{part}"))
                .collect::<Vec<_>>()
                .join(", "),
            report = report.join(", "),
        );
        let client = self.client().await?;
        let prepared = client.prepare_cached(&sql).await.map_err(sql_error)?;
        let params: Vec<&(dyn ToSql + Sync)> = statement
            .params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&prepared, &params).await.map_err(sql_error)?;
        let mut devices = Vec::with_capacity(rows.len());
        let mut tail = None;
        for row in &rows {
            let scanned: i64 = row.get(19);
            let last_at: Option<i64> = row.get(20);
            let last_id: Option<String> = row.get(21);
            tail = Some((scanned, last_at, last_id));
            let device_id: Option<String> = row.get(0);
            if device_id.is_some() {
                devices.push(entry_from(app_id, row)?);
            }
        }
        let next = if devices.len() > query.limit {
            devices.truncate(query.limit);
            devices.last().map(|entry| Cursor {
                updated_at: entry.device.updated_at,
                device_id: entry.device.device_id.clone(),
            })
        } else {
            match tail {
                Some((scanned, Some(at), Some(device_id)))
                    if bounded && api(scanned) as usize >= query.max_examined.max(1) =>
                {
                    Some(Cursor {
                        updated_at: api(at),
                        device_id,
                    })
                }
                _ => None,
            }
        };
        Ok(DevicePage { devices, next })
    }
}
