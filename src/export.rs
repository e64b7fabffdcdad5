//! Exporting devices: NDJSON (one Device object per line, as `GET /device` renders it) or CSV
//! with the same columns. Rows are rendered a page at a time, so an export never holds every
//! device in memory; `GET /device/export` and `device-registry export` share this code.

use std::fmt::Write;

use crate::model::{Cursor, DeviceEntry, DeviceFilter, DeviceListQuery, DeviceOrder, DevicePage};
use crate::routes::devices::DeviceView;
use crate::store::{Store, StoreResult};
use crate::timefmt::format_micros;

/// Devices read per page of an export.
pub const PAGE: usize = 1_000;

/// The CSV columns, in the Device object's order.
pub const CSV_COLUMNS: [&str; 16] = [
    "updated_at",
    "device_id",
    "custom_id",
    "version",
    "version_name",
    "app_id",
    "platform",
    "plugin_version",
    "os_version",
    "version_build",
    "is_prod",
    "is_emulator",
    "install_source",
    "key_id",
    "channel",
    "version_override",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ndjson" | "json" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// What comes before the first row.
    pub fn header(self) -> String {
        match self {
            Self::Ndjson => String::new(),
            Self::Csv => format!("{}\n", CSV_COLUMNS.join(",")),
        }
    }
}

/// One page of the app's devices that match `filter`, by device id from `after` on.
pub fn page(
    store: &dyn Store,
    app_id: &str,
    filter: &DeviceFilter,
    after: Option<Cursor>,
) -> StoreResult<DevicePage> {
    store.list_devices(
        app_id,
        &DeviceListQuery {
            order: DeviceOrder::DeviceId,
            after,
            updated_after: None,
            limit: PAGE,
            max_examined: usize::MAX,
            filter: filter.clone(),
        },
    )
}

/// Every page of the app's devices that match `filter`, in device id order, read as it goes.
pub fn pages<'a>(
    store: &'a dyn Store,
    app_id: &'a str,
    filter: &'a DeviceFilter,
) -> impl Iterator<Item = StoreResult<Vec<DeviceEntry>>> + 'a {
    // `None` once the last page has been read.
    let mut next: Option<Option<Cursor>> = Some(None);
    std::iter::from_fn(move || {
        let after = next.take()?;
        Some(page(store, app_id, filter, after).map(|page| {
            next = page.next.map(Some);
            page.devices
        }))
    })
}

/// Renders rows in the format, appending to `out`.
pub fn render(format: Format, entries: &[DeviceEntry], out: &mut String) {
    for entry in entries {
        match format {
            Format::Ndjson => {
                // A DeviceView of plain strings and numbers always serialises.
                if let Ok(line) = serde_json::to_string(&DeviceView::from(entry)) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            Format::Csv => csv_row(entry, out),
        }
    }
}

fn csv_row(entry: &DeviceEntry, out: &mut String) {
    let device = &entry.device;
    let report = &device.report;
    let fields: [String; 16] = [
        format_micros(device.updated_at),
        device.device_id.clone(),
        report.custom_id.clone(),
        entry.bundle_id.map(|id| id.to_string()).unwrap_or_default(),
        report.version_name.clone().unwrap_or_default(),
        device.app_id.clone(),
        report.platform.as_str().to_owned(),
        report.plugin_version.clone(),
        report.os_version.clone(),
        report.version_build.clone(),
        report.is_prod.to_string(),
        report.is_emulator.to_string(),
        report.install_source.clone().unwrap_or_default(),
        report.key_id.clone().unwrap_or_default(),
        entry.overrides.channel.clone().unwrap_or_default(),
        entry.overrides.version.clone().unwrap_or_default(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(field, out);
    }
    out.push('\n');
}

/// RFC 4180: a field with a comma, quote, line break or edge space is quoted, quotes doubled.
fn csv_field(field: &str, out: &mut String) {
    let needs_quotes =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs_quotes {
        out.push('"');
        let _ = write!(out, "{}", field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        let mut out = String::new();
        for field in ["plain", "a,b", "say \"hi\"", " edge", "two\nlines", ""] {
            csv_field(field, &mut out);
            out.push('|');
        }
        assert_eq!(
            out,
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\" edge\"|\"two\nlines\"||"
        );
    }
}
