//! Importing devices from what export writes: NDJSON (one Device object per line) or CSV with
//! a header naming its columns (the export's, or an earlier release's, which had fewer). Lines
//! are validated like API input; a bad line is reported with its number and skipped whole (its
//! device and its overrides alike); good lines are written in batches through the store's
//! import path, so importing the same file twice changes nothing.

use crate::error::Field;
use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;

use actix_web::http::header::HeaderMap;
use serde_json::{Map, Value};

use crate::export::Format;
use crate::model::Actor;
use crate::model::{Device, DeviceReport, Platform};
use crate::render::device::{csv_value, CSV_COLUMNS};
use crate::routes::input::Input;
use crate::store::{BulkOutcome, Change, OverrideAction, OverrideWrite, Store, StoreResult};
use crate::timefmt::Micros;

/// Devices written per batch.
const BATCH: usize = 2_000;
/// Bad lines described in full (all are counted).
const MAX_REPORTED: usize = 100;

/// A device line and the overrides it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedDevice {
    pub device: Device,
    pub channel: Option<String>,
    pub version_override: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: usize,
    pub skipped: usize,
    /// (line number, why), the first `MAX_REPORTED`.
    pub bad_lines: Vec<(usize, String)>,
}

impl ImportReport {
    fn bad(&mut self, line: usize, why: String) {
        self.skipped += 1;
        if self.bad_lines.len() < MAX_REPORTED {
            self.bad_lines.push((line, why));
        }
    }
}

/// One Device object (as export and `GET /device` render it) to an importable device.
pub fn parse_device(fields: Map<String, Value>) -> Result<ImportedDevice, String> {
    let input = Input::from_map(fields);
    let fail = |error: crate::error::ApiError| error.code().to_owned();
    let app_id = input.app_id().map_err(fail)?;
    let device_id = input.required_device_id().map_err(fail)?;
    let updated_at = input
        .instant(Field::UpdatedAt)
        .map_err(fail)?
        .ok_or_else(|| "missing_updated_at".to_owned())?;
    let platform = input.required_str(Field::Platform).map_err(fail)?;
    let platform = Platform::parse(platform).ok_or_else(|| "invalid_platform".to_owned())?;
    let text = |field: Field| -> Result<String, String> {
        match input.str(field).map_err(fail)? {
            None => Ok(String::new()),
            Some(value) if value.len() <= 256 && !crate::ids::has_control(value) => {
                Ok(value.to_owned())
            }
            Some(_) => Err(field.invalid_code().to_owned()),
        }
    };
    let custom_id =
        crate::ids::normalize_custom_id(&text(Field::CustomId)?).ok_or("invalid_custom_id")?;
    let version_name = Some(text(Field::VersionName)?).filter(|name| !name.is_empty());
    Ok(ImportedDevice {
        device: Device {
            app_id,
            device_id,
            updated_at,
            report: DeviceReport {
                custom_id,
                version_name,
                version_build: text(Field::VersionBuild)?,
                os_version: text(Field::OsVersion)?,
                plugin_version: text(Field::PluginVersion)?,
                platform,
                is_prod: input.bool(Field::IsProd).map_err(fail)?.unwrap_or(true),
                is_emulator: input
                    .bool(Field::IsEmulator)
                    .map_err(fail)?
                    .unwrap_or(false),
                default_channel: None,
                install_source: Some(text(Field::InstallSource)?).filter(|v| !v.is_empty()),
                key_id: Some(text(Field::KeyId)?).filter(|v| !v.is_empty()),
            },
            rollout: match input.raw(Field::Rollout) {
                None | Some(Value::Null) => None,
                Some(value) => Some(
                    crate::render::device::parse_rollout(value)
                        .ok_or_else(|| Field::Rollout.invalid_code().to_owned())?,
                ),
            },
        },
        channel: input.name(Field::Channel).map_err(fail)?,
        version_override: input.name(Field::VersionOverride).map_err(fail)?,
    })
}

/// Splits one CSV record (RFC 4180 quoting; export never writes line breaks inside a field).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

/// The columns a CSV header names: export's own, in any order, at least those that identify a
/// device; `None` when the line is not such a header.
fn csv_header(line: &str) -> Option<Vec<String>> {
    let columns = csv_fields(line.trim_end()).ok()?;
    let known = columns.iter().all(|c| CSV_COLUMNS.contains(&c.as_str()));
    let identifies = ["app_id", "device_id", "updated_at", "platform"]
        .iter()
        .all(|required| columns.iter().any(|c| c == required));
    (known && identifies).then_some(columns)
}

/// One CSV record under `columns`, as the fields of a Device object.
fn csv_device(columns: &[String], line: &str) -> Result<Map<String, Value>, String> {
    let fields = csv_fields(line)?;
    if fields.len() != columns.len() {
        return Err(format!(
            "expected {} fields, found {}",
            columns.len(),
            fields.len()
        ));
    }
    Ok(columns
        .iter()
        .zip(fields)
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.clone(), Value::String(csv_value(&value).to_owned())))
        .collect())
}

/// Reads `reader` to the end, importing every good line. `on_line` is told each line's length
/// (for progress). With `create_apps`, apps that do not exist are created. The store records
/// the import of `source` as pending until its end, so that `check` names one a crash cut short
/// (a batch's devices are written before their overrides).
pub fn import(
    store: &dyn Store,
    source: &str,
    reader: impl BufRead,
    format: Format,
    create_apps: bool,
    now: Micros,
    mut on_line: impl FnMut(usize),
) -> StoreResult<ImportReport> {
    let mut report = ImportReport::default();
    // Pending from before the first write (an import that wrote nothing has nothing to finish).
    let mut marked = false;
    let mut write = |batch: &mut Vec<ImportedDevice>| -> StoreResult<usize> {
        if !marked && !batch.is_empty() {
            store.mark_import(source, true)?;
            marked = true;
        }
        write_batch(store, batch, now)
    };
    let mut batch: Vec<ImportedDevice> = Vec::with_capacity(BATCH);
    let mut known_apps: HashSet<String> = HashSet::new();
    let mut columns: Vec<String> = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                report.bad(number, format!("unreadable: {error}"));
                continue;
            }
        };
        on_line(line.len() + 1);
        if line.trim().is_empty() {
            continue;
        }
        if format == Format::Csv && number == 1 {
            match csv_header(&line) {
                Some(named) => columns = named,
                None => report.bad(
                    number,
                    "the first line is not the export's CSV header".into(),
                ),
            }
            continue;
        }
        let fields = match format {
            Format::Ndjson => {
                match crate::routes::input::parse_json(&HeaderMap::new(), line.as_bytes()) {
                    Ok(Value::Object(fields)) => Ok(fields),
                    Ok(_) => Err("not a JSON object".to_owned()),
                    Err(error) => Err(error.code().to_owned()),
                }
            }
            Format::Csv if columns.is_empty() => Err("no CSV header".to_owned()),
            Format::Csv => csv_device(&columns, &line),
        };
        let parsed = fields.and_then(parse_device);
        let imported = match parsed {
            Ok(imported) => imported,
            Err(why) => {
                report.bad(number, why);
                continue;
            }
        };
        let app_id = &imported.device.app_id;
        if !known_apps.contains(app_id) {
            if !store.app_exists(app_id)? {
                if !create_apps {
                    report.bad(
                        number,
                        format!("app_not_found: {app_id} (import with --create-apps to create it)"),
                    );
                    continue;
                }
                store.create_app(app_id, app_id, now)?;
            }
            known_apps.insert(app_id.clone());
        }
        if let Some(why) = missing_override_target(store, &imported)? {
            report.bad(number, why);
            continue;
        }
        batch.push(imported);
        if batch.len() == BATCH {
            report.imported += write(&mut batch)?;
        }
    }
    report.imported += write(&mut batch)?;
    // Every line was read and written (bad ones are reported): the import has ended.
    if marked {
        store.mark_import(source, false)?;
    } else {
        store.flush()?;
    }
    Ok(report)
}

/// Why a line's overrides cannot be restored (its channel or bundle does not exist), if so.
fn missing_override_target(
    store: &dyn Store,
    imported: &ImportedDevice,
) -> StoreResult<Option<String>> {
    let app_id = &imported.device.app_id;
    if let Some(channel) = &imported.channel {
        if store.channel(app_id, channel)?.is_none() {
            return Ok(Some(format!("channel_not_found: {channel}")));
        }
    }
    if let Some(version) = &imported.version_override {
        if store.bundle(app_id, version)?.is_none() {
            return Ok(Some(format!("version_not_found: {version}")));
        }
    }
    Ok(None)
}

/// Devices to link, by (app, channel, pinned version).
type LinkGroups<'a> = BTreeMap<(&'a str, Option<&'a str>, Option<&'a str>), Vec<String>>;

/// Writes a batch: devices per app in one import each, then overrides grouped by what they set.
fn write_batch(
    store: &dyn Store,
    batch: &mut Vec<ImportedDevice>,
    now: Micros,
) -> StoreResult<usize> {
    let mut by_app: BTreeMap<&str, Vec<Device>> = BTreeMap::new();
    for imported in batch.iter() {
        by_app
            .entry(&imported.device.app_id)
            .or_default()
            .push(imported.device.clone());
    }
    for (app_id, devices) in &by_app {
        store.import_devices(app_id, devices)?;
    }
    let mut links: LinkGroups<'_> = BTreeMap::new();
    for imported in batch.iter() {
        if imported.channel.is_some() || imported.version_override.is_some() {
            links
                .entry((
                    &imported.device.app_id,
                    imported.channel.as_deref(),
                    imported.version_override.as_deref(),
                ))
                .or_default()
                .push(imported.device.device_id.clone());
        }
    }
    // Targets were checked line by line; a channel deleted meanwhile refuses its whole group.
    let writes: Vec<OverrideWrite> = links
        .into_iter()
        .map(|((app_id, channel, version), device_ids)| OverrideWrite {
            app_id: app_id.to_owned(),
            device_ids,
            action: OverrideAction::Link {
                channel: channel.map(str::to_owned),
                version: version.map(str::to_owned),
            },
            change: Change {
                actor: Actor::Import,
                at: now,
            },
        })
        .collect();
    let outcomes = store.write_overrides(&writes)?;
    for (write, outcome) in writes.iter().zip(outcomes) {
        if !matches!(outcome, BulkOutcome::Applied(_)) {
            log::warn!(
                "overrides of {} devices of {} could not be restored",
                write.device_ids.len(),
                write.app_id
            );
        }
    }
    let written = batch.len();
    batch.clear();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_split_like_export_writes_them() {
        assert_eq!(csv_fields("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            csv_fields(r#""a,b","say ""hi""",x"#).unwrap(),
            ["a,b", r#"say "hi""#, "x"]
        );
        assert!(csv_fields(r#""open"#).is_err());
    }
}
