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

    /// The last line of an export that the store failed in the middle of: the answer has
    /// begun, so this line is how a client tells a cut export from a whole one (an error object
    /// in NDJSON; in CSV a line that is no row, starting with `#`).
    pub fn failure_line(self) -> &'static str {
        match self {
            Self::Ndjson => concat!(
                r#"{"error":"export_failed","message":"The export stopped early: the rows "#,
                r#"above are whole, the rest is missing","moreInfo":{},"status":"KO"}"#,
                "\n"
            ),
            Self::Csv => {
                "# export_failed: the export stopped early: the rows above are whole, the rest is missing\n"
            }
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

/// An export as text, a page at a time: the header, then each page fetched by `fetch` (from
/// the cursor of the one before), rendered; a failed fetch ends it with the format's failure
/// line (and `failed` is told).
pub fn stream<F, Fut>(
    format: Format,
    fetch: F,
    failed: impl Fn(&crate::store::StoreError) + Clone + 'static,
) -> impl futures_util::Stream<Item = Result<String, ExportCut>>
where
    F: Fn(Option<Cursor>) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = StoreResult<DevicePage>>,
{
    /// Where the stream is.
    enum Position {
        Header,
        After(Option<Cursor>),
        /// The failure line is out: the stream ends in an error so the transfer itself is cut
        /// (no closing chunk), and a client that never reads the body still sees a failure.
        Cut,
        Done,
    }
    futures_util::stream::unfold(Position::Header, move |position| {
        let (fetch, failed) = (fetch.clone(), failed.clone());
        async move {
            let after = match position {
                Position::Done => return None,
                Position::Cut => {
                    // actix drops what it has not written yet when a body fails: a pause lets
                    // it send the last rows and the failure line first (to a client that reads;
                    // one that does not still sees the transfer broken off).
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    return Some((Err(ExportCut), Position::Done));
                }
                Position::Header => return Some((Ok(format.header()), Position::After(None))),
                Position::After(after) => after,
            };
            match fetch(after).await {
                Ok(page) => {
                    let mut rows = String::with_capacity(page.devices.len() * 320);
                    render(format, &page.devices, &mut rows);
                    let next = page
                        .next
                        .map_or(Position::Done, |c| Position::After(Some(c)));
                    Some((Ok(rows), next))
                }
                Err(error) => {
                    failed(&error);
                    Some((Ok(format.failure_line().to_owned()), Position::Cut))
                }
            }
        }
    })
}

/// Ends an export the store failed in the middle of, after its failure line.
#[derive(Debug)]
pub struct ExportCut;

impl std::fmt::Display for ExportCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the export stopped early")
    }
}

impl std::error::Error for ExportCut {}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Device, Overrides};
    use crate::store::StoreError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn entry(device_id: &str) -> DeviceEntry {
        DeviceEntry {
            device: Device {
                app_id: "app".into(),
                device_id: device_id.into(),
                updated_at: 0,
                report: crate::store::sled::fixtures::report(),
                rollout: None,
            },
            bundle_id: None,
            overrides: Overrides::default(),
        }
    }

    #[test]
    fn a_store_failure_midway_ends_the_export_with_a_line_that_says_so() {
        for format in [Format::Ndjson, Format::Csv] {
            let failures = Arc::new(AtomicUsize::new(0));
            // A first page, then a failure.
            let fetch = |after: Option<Cursor>| async move {
                match after {
                    None => Ok(DevicePage {
                        devices: vec![entry("d1")],
                        next: Some(Cursor {
                            updated_at: 0,
                            device_id: "d1".into(),
                        }),
                    }),
                    Some(_) => Err(StoreError::Unavailable("disk".into())),
                }
            };
            let counted = failures.clone();
            let failed = move |_: &StoreError| {
                counted.fetch_add(1, Ordering::SeqCst);
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let parts: Vec<Result<String, ExportCut>> = runtime.block_on(
                futures_util::StreamExt::collect(stream(format, fetch, failed)),
            );
            assert!(matches!(parts.last(), Some(Err(ExportCut))));
            let text: String = parts
                .iter()
                .filter_map(|part| part.as_ref().ok())
                .cloned()
                .collect();
            assert!(text.contains("d1"), "{text}");
            assert!(text.ends_with(format.failure_line()), "{text}");
            assert_eq!(failures.load(Ordering::SeqCst), 1);
        }
    }
}
