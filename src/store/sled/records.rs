//! The engine's own records (apps with their id counters, devices with their `updated_at`), in
//! the formats of `keys.rs`: what each stored format was, and how the older ones read.

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AppRecord {
    pub(super) app: App,
    pub(super) next_channel_id: u64,
    pub(super) next_bundle_id: u64,
}

impl Record for AppRecord {}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DeviceRecord {
    pub(super) updated_at: Micros,
    pub(super) report: DeviceReport,
}

impl Record for DeviceRecord {
    const FORMAT: u8 = keys::FORMAT_V2;

    fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
        /// A device record as format 1 wrote it: the report had no `install_source`, `key_id`.
        #[derive(Deserialize)]
        struct DeviceRecordV1 {
            updated_at: Micros,
            report: DeviceReportV1,
        }
        #[derive(Deserialize)]
        struct DeviceReportV1 {
            custom_id: String,
            version_name: Option<String>,
            version_build: String,
            os_version: String,
            plugin_version: String,
            platform: Platform,
            is_prod: bool,
            is_emulator: bool,
            default_channel: Option<String>,
        }
        (format == keys::FORMAT_V1).then(|| {
            decode_payload::<DeviceRecordV1>(payload).map(
                |DeviceRecordV1 { updated_at, report }| DeviceRecord {
                    updated_at,
                    report: DeviceReport {
                        custom_id: report.custom_id,
                        version_name: report.version_name,
                        version_build: report.version_build,
                        os_version: report.os_version,
                        plugin_version: report.plugin_version,
                        platform: report.platform,
                        is_prod: report.is_prod,
                        is_emulator: report.is_emulator,
                        default_channel: report.default_channel,
                        install_source: None,
                        key_id: None,
                    },
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_records_of_the_first_format_still_read() {
        // `app_bench/device_000000001` as bb3239d (format 1) stored it, seeded by bench/seed.rs.
        let v1 = [
            0x01, 0xfd, 0xe7, 0xe3, 0xe7, 0x00, 0x3b, 0x5c, 0x06, 0x00, 0x02, 0x63, 0x31, 0x01,
            0x05, 0x31, 0x2e, 0x30, 0x2e, 0x31, 0x01, 0x31, 0x04, 0x31, 0x37, 0x2e, 0x30, 0x05,
            0x36, 0x2e, 0x30, 0x2e, 0x30, 0x01, 0x01, 0x00, 0x00,
        ];
        let record: DeviceRecord = decode("devices", &v1).unwrap();
        let expected = DeviceReport {
            custom_id: "c1".into(),
            version_name: Some("1.0.1".into()),
            version_build: "1".into(),
            os_version: "17.0".into(),
            plugin_version: "6.0.0".into(),
            platform: Platform::Android,
            is_prod: true,
            is_emulator: false,
            default_channel: None,
            install_source: None,
            key_id: None,
        };
        assert_eq!(
            (record.updated_at, &record.report),
            (1_790_258_348_286_951, &expected)
        );

        // Written again, it takes the current format and keeps what the plugin added.
        let current = DeviceRecord {
            updated_at: 43,
            report: DeviceReport {
                install_source: Some("com.android.vending".into()),
                key_id: Some("ab12cd34".into()),
                ..expected
            },
        };
        let bytes = encode_value(&current);
        assert_eq!(bytes[0], keys::FORMAT_V2);
        let read: DeviceRecord = decode("devices", &bytes).unwrap();
        assert_eq!(read.report, current.report);
    }
}
