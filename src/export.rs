//! Exporting devices: NDJSON (one Device object per line, as `GET /device` renders it) or CSV
//! with the same columns. Rows are rendered a page at a time, so an export never holds every
//! device in memory; `GET /device/export` and `device-registry export` share this code.

use crate::model::{Cursor, DeviceEntry, DeviceFilter, DeviceListQuery, DeviceOrder, DevicePage};
use crate::render::device::{csv_row, DeviceView, CSV_COLUMNS};
use crate::store::{Store, StoreResult};

/// Devices read per page of an export.
pub const PAGE: usize = 1_000;

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
