//! The Device object of the contract, as JSON (written straight into the answer's buffer, byte
//! for byte what its `Serialize` writes) and as a CSV row under [`CSV_COLUMNS`].

use std::fmt::Write;

use serde::Serialize;

use super::json;
use crate::model::{DeviceEntry, RolloutDecision};
use crate::timefmt::{format_micros, Rendered};

/// The Device object of the contract.
#[derive(Serialize)]
pub struct DeviceView<'a> {
    updated_at: Rendered,
    device_id: &'a str,
    custom_id: &'a str,
    version: Option<u64>,
    version_name: Option<&'a str>,
    app_id: &'a str,
    platform: &'static str,
    plugin_version: &'a str,
    os_version: &'a str,
    version_build: &'a str,
    is_prod: bool,
    is_emulator: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    install_source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_override: Option<&'a str>,
    /// Its decision in a channel's rollout, once `/updates` took one.
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<&'a RolloutDecision>,
}

/// A Device object's `rollout`, as import reads it back: `None` when it is not one.
pub fn parse_rollout(value: &serde_json::Value) -> Option<RolloutDecision> {
    let decision: RolloutDecision = serde_json::from_value(value.clone()).ok()?;
    (decision.percentage_bps <= crate::rollout::MAX_BPS
        && crate::ids::is_valid_name(&decision.channel))
    .then_some(decision)
}

impl<'a> From<&'a DeviceEntry> for DeviceView<'a> {
    fn from(entry: &'a DeviceEntry) -> Self {
        let device = &entry.device;
        let report = &device.report;
        Self {
            updated_at: Rendered::new(device.updated_at),
            device_id: &device.device_id,
            custom_id: &report.custom_id,
            version: entry.bundle_id,
            version_name: report.version_name.as_deref(),
            app_id: &device.app_id,
            platform: report.platform.as_str(),
            plugin_version: &report.plugin_version,
            os_version: &report.os_version,
            version_build: &report.version_build,
            is_prod: report.is_prod,
            is_emulator: report.is_emulator,
            install_source: report.install_source.as_deref(),
            key_id: report.key_id.as_deref(),
            channel: entry.overrides.channel.as_deref(),
            version_override: entry.overrides.version.as_deref(),
            rollout: device.rollout.as_ref(),
        }
    }
}

impl DeviceView<'_> {
    /// Appends this device as JSON: what its `Serialize` writes, without serde's generic
    /// writer (see `render::json`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"updated_at\":\"");
        out.extend_from_slice(self.updated_at.as_str().as_bytes());
        out.extend_from_slice(b"\",\"device_id\":");
        json::string(out, self.device_id);
        out.extend_from_slice(b",\"custom_id\":");
        json::string(out, self.custom_id);
        out.extend_from_slice(b",\"version\":");
        json::optional_number(out, self.version);
        out.extend_from_slice(b",\"version_name\":");
        json::optional_string(out, self.version_name);
        out.extend_from_slice(b",\"app_id\":");
        json::string(out, self.app_id);
        out.extend_from_slice(b",\"platform\":");
        json::string(out, self.platform);
        out.extend_from_slice(b",\"plugin_version\":");
        json::string(out, self.plugin_version);
        out.extend_from_slice(b",\"os_version\":");
        json::string(out, self.os_version);
        out.extend_from_slice(b",\"version_build\":");
        json::string(out, self.version_build);
        out.extend_from_slice(b",\"is_prod\":");
        json::boolean(out, self.is_prod);
        out.extend_from_slice(b",\"is_emulator\":");
        json::boolean(out, self.is_emulator);
        if let Some(install_source) = self.install_source {
            out.extend_from_slice(b",\"install_source\":");
            json::string(out, install_source);
        }
        if let Some(key_id) = self.key_id {
            out.extend_from_slice(b",\"key_id\":");
            json::string(out, key_id);
        }
        if let Some(channel) = self.channel {
            out.extend_from_slice(b",\"channel\":");
            json::string(out, channel);
        }
        if let Some(version) = self.version_override {
            out.extend_from_slice(b",\"version_override\":");
            json::string(out, version);
        }
        if let Some(rollout) = self.rollout {
            out.extend_from_slice(b",\"rollout\":{\"channel\":");
            json::string(out, &rollout.channel);
            out.extend_from_slice(b",\"channel_id\":");
            json::number(out, rollout.channel_id);
            out.extend_from_slice(b",\"rollout_id\":");
            json::number(out, rollout.rollout_id);
            out.extend_from_slice(b",\"version\":");
            json::string(out, &rollout.version);
            out.extend_from_slice(b",\"selected\":");
            json::boolean(out, rollout.selected);
            out.extend_from_slice(b",\"percentage_bps\":");
            json::number(out, u64::from(rollout.percentage_bps));
            out.push(b'}');
        }
        out.push(b'}');
    }
}

/// About the size of a rendered device, to size answers' buffers.
pub const DEVICE_JSON_BYTES: usize = 400;

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

pub fn csv_row(entry: &DeviceEntry, out: &mut String) {
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
/// What marks a cell that a spreadsheet would read as a formula (OWASP's list), and the mark that
/// defuses it: such a value is written after a `'`, and so is a value that starts with `'`
/// itself, so that [`csv_value`] can take the mark off again without ambiguity.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
const DEFUSED: char = '\'';

/// A value as a CSV cell holds it: a device reports its own fields, and a field such as
/// `=HYPERLINK(...)` must not run when the export is opened in a spreadsheet.
fn defused(field: &str) -> std::borrow::Cow<'_, str> {
    match field.chars().next() {
        Some(first) if FORMULA_STARTS.contains(&first) || first == DEFUSED => {
            std::borrow::Cow::Owned(format!("{DEFUSED}{field}"))
        }
        _ => std::borrow::Cow::Borrowed(field),
    }
}

/// The value a CSV cell of an export holds (the reverse of what export does to defuse
/// formulas). Only a mark that export could have written is taken off: a `'` before anything
/// else is the value's own, in a CSV written by hand or by another tool.
pub fn csv_value(cell: &str) -> &str {
    match cell.strip_prefix(DEFUSED) {
        Some(rest)
            if rest
                .chars()
                .next()
                .is_some_and(|c| FORMULA_STARTS.contains(&c) || c == DEFUSED) =>
        {
            rest
        }
        _ => cell,
    }
}

fn csv_field(field: &str, out: &mut String) {
    let field = &*defused(field);
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
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_device_is_written_as_its_serialize_writes_it(
            updated_at in any::<u64>(),
            text in proptest::collection::vec(any::<String>(), 7),
            version in any::<Option<u64>>(),
            version_name in any::<Option<String>>(),
            flags in any::<(bool, bool)>(),
            reported in any::<(Option<String>, Option<String>)>(),
            channel in any::<Option<String>>(),
            version_override in any::<Option<String>>(),
            rollout in any::<Option<(String, u64, u64, String, bool, u16)>>(),
        ) {
            let rollout = rollout.map(|(channel, channel_id, rollout_id, version, selected, percentage_bps)| {
                RolloutDecision { channel, channel_id, rollout_id, version, selected, percentage_bps }
            });
            let view = DeviceView {
                updated_at: Rendered::new(updated_at),
                device_id: &text[0],
                custom_id: &text[1],
                version,
                version_name: version_name.as_deref(),
                app_id: &text[2],
                platform: "ios",
                plugin_version: &text[3],
                os_version: &text[4],
                version_build: &text[5],
                is_prod: flags.0,
                is_emulator: flags.1,
                install_source: reported.0.as_deref(),
                key_id: reported.1.as_deref(),
                channel: channel.as_deref(),
                version_override: version_override.as_deref(),
                rollout: rollout.as_ref(),
            };
            let mut written = Vec::new();
            view.write_json(&mut written);
            prop_assert_eq!(written, serde_json::to_vec(&view).unwrap());
        }
    }

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

    #[test]
    fn formulas_are_defused_and_read_back_as_they_were() {
        for (value, cell) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'quoted", "''quoted"),
            ("1.0.0", "1.0.0"),
            ("", ""),
        ] {
            assert_eq!(defused(value), cell);
            assert_eq!(csv_value(cell), value);
        }
        // A mark export never writes is the value's own.
        for cell in ["'quoted", "'", "'1.0.0"] {
            assert_eq!(csv_value(cell), cell);
        }
        let mut out = String::new();
        csv_field("=1+1", &mut out);
        assert_eq!(out, "'=1+1");
    }
}
