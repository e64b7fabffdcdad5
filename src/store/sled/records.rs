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
    pub(super) rollout: Option<RolloutDecision>,
}

/// A device record's rollout decision alone, without building its report: `/updates` reads it
/// on every check-in on a channel with a rollout. The view mirrors [`DeviceRecord`] field for
/// field, its strings borrowed (a test holds the two together).
pub(super) fn rollout_of(bytes: &[u8]) -> StoreResult<Option<RolloutDecision>> {
    #[derive(Deserialize)]
    struct RecordView<'a> {
        _updated_at: Micros,
        #[serde(borrow)]
        _report: ReportView<'a>,
        rollout: Option<RolloutDecision>,
    }
    #[allow(dead_code)] // Read to be skipped: bincode is positional.
    #[derive(Deserialize)]
    struct ReportView<'a> {
        custom_id: &'a str,
        version_name: Option<&'a str>,
        version_build: &'a str,
        os_version: &'a str,
        plugin_version: &'a str,
        platform: Platform,
        is_prod: bool,
        is_emulator: bool,
        default_channel: Option<&'a str>,
        install_source: Option<&'a str>,
        key_id: Option<&'a str>,
    }
    match bytes.split_first() {
        // Records of earlier formats hold no decision.
        Some((&keys::FORMAT_V3, payload)) => keys::decode_borrowed::<RecordView>(payload)
            .map(|view| view.rollout)
            .map_err(|e| StoreError::Corrupt {
                tree: "devices",
                detail: e.to_string(),
            }),
        Some(_) => Ok(None),
        None => Err(corrupt_key("devices")),
    }
}

/// A channel as stored: its fields as format 1 wrote them, then (since format 2) its rollout
/// state, which the model's `Channel` does not serialise itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredChannel(pub(super) Channel, Option<Rollout>, u64);

impl StoredChannel {
    pub(super) fn of(channel: &Channel) -> Self {
        Self(
            channel.clone(),
            channel.rollout.clone(),
            channel.rollouts_started,
        )
    }

    pub(super) fn into_channel(self) -> Channel {
        let Self(mut channel, rollout, started) = self;
        channel.rollout = rollout;
        channel.rollouts_started = started;
        channel
    }
}

impl Record for StoredChannel {
    const FORMAT: u8 = keys::FORMAT_V2;

    fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
        (format == keys::FORMAT_V1)
            .then(|| decode_payload::<Channel>(payload).map(|channel| Self(channel, None, 0)))
    }
}

/// A bundle as stored: its fields as format 1 wrote them (its `id` first: see `bundle_ids`),
/// then (since format 2) its manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredBundle(Bundle, Vec<ManifestEntry>);

impl StoredBundle {
    pub(super) fn of(bundle: &Bundle) -> Self {
        Self(bundle.clone(), bundle.manifest.clone())
    }

    pub(super) fn into_bundle(self) -> Bundle {
        let Self(mut bundle, manifest) = self;
        bundle.manifest = manifest;
        bundle
    }
}

impl Record for StoredBundle {
    const FORMAT: u8 = keys::FORMAT_V2;

    fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
        (format == keys::FORMAT_V1)
            .then(|| decode_payload::<Bundle>(payload).map(|bundle| Self(bundle, Vec::new())))
    }
}

/// An audit entry as stored: its fields as format 1 wrote them, then (since format 2) the
/// rollout change it records, if it is one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredAuditEntry(AuditEntry, Option<RolloutAudit>);

impl StoredAuditEntry {
    pub(super) fn of(entry: &AuditEntry) -> Self {
        Self(entry.clone(), entry.rollout.clone())
    }

    pub(super) fn into_entry(self) -> AuditEntry {
        let Self(mut entry, rollout) = self;
        entry.rollout = rollout;
        entry
    }
}

impl Record for StoredAuditEntry {
    const FORMAT: u8 = keys::FORMAT_V2;

    fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
        (format == keys::FORMAT_V1)
            .then(|| decode_payload::<AuditEntry>(payload).map(|entry| Self(entry, None)))
    }
}

impl Record for DeviceRecord {
    const FORMAT: u8 = keys::FORMAT_V3;

    fn upgrade(format: u8, payload: &[u8]) -> Option<Result<Self, ValueError>> {
        /// A device record as format 2 wrote it: no rollout decision.
        #[derive(Deserialize)]
        struct DeviceRecordV2 {
            updated_at: Micros,
            report: DeviceReport,
        }
        if format == keys::FORMAT_V2 {
            return Some(decode_payload::<DeviceRecordV2>(payload).map(
                |DeviceRecordV2 { updated_at, report }| DeviceRecord {
                    updated_at,
                    report,
                    rollout: None,
                },
            ));
        }
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
                    rollout: None,
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
            rollout: None,
        };
        let bytes = encode_value(&current);
        assert_eq!(bytes[0], keys::FORMAT_V3);
        let read: DeviceRecord = decode("devices", &bytes).unwrap();
        assert_eq!(read.report, current.report);
    }

    #[test]
    fn the_decision_alone_reads_as_the_whole_record_has_it() {
        let decision = RolloutDecision {
            channel: "production".into(),
            channel_id: 2,
            rollout_id: 7,
            version: "1.1.0".into(),
            selected: true,
            percentage_bps: 2_500,
        };
        let mut report = crate::store::sled::fixtures::report();
        report.install_source = Some("store".into());
        for rollout in [None, Some(decision)] {
            let record = DeviceRecord {
                updated_at: 9,
                report: report.clone(),
                rollout: rollout.clone(),
            };
            assert_eq!(rollout_of(&encode_value(&record)).unwrap(), rollout);
        }
    }

    #[test]
    fn device_records_of_the_second_format_read_without_a_decision() {
        // Format 2 wrote (updated_at, report) after its format byte.
        let report = crate::store::sled::fixtures::report();
        let mut v2 = vec![keys::FORMAT_V2];
        bincode::serde::encode_into_std_write(
            (42u64, &report),
            &mut v2,
            bincode::config::standard(),
        )
        .unwrap();
        let record: DeviceRecord = decode("devices", &v2).unwrap();
        assert_eq!(
            (record.updated_at, &record.report, &record.rollout),
            (42, &report, &None)
        );
    }

    #[test]
    fn channels_of_the_first_format_read_without_a_rollout() {
        let mut channel = Channel::with_defaults(3, "app", "beta", 7);
        // Format 1 wrote the channel's own fields only (the rollout fields are not serialised).
        let mut v1 = vec![keys::FORMAT_V1];
        bincode::serde::encode_into_std_write(&channel, &mut v1, bincode::config::standard())
            .unwrap();
        let read: StoredChannel = decode("channels", &v1).unwrap();
        assert_eq!(read.into_channel(), channel);

        channel.rollouts_started = 2;
        channel.rollout = Some(Rollout {
            id: 2,
            version: "2.0.0".into(),
            percentage_bps: 1_500,
            paused: true,
            started_at: 0,
            baseline: (0, 0),
            guard: None,
            guard_triggered_at: None,
        });
        let bytes = encode_value(&StoredChannel::of(&channel));
        assert_eq!(bytes[0], keys::FORMAT_V2);
        let read: StoredChannel = decode("channels", &bytes).unwrap();
        assert_eq!(read.into_channel(), channel);
    }
}
