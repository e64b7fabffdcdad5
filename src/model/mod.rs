//! Domain types shared by the store and the handlers. They carry no storage detail: the sled
//! module decides how they are laid out on disk.

mod audit;
mod rollout;

pub use audit::{Actor, AuditAction, AuditEntry, AuditPage};
pub use rollout::{GuardAction, Rollout, RolloutAudit, RolloutDecision, RolloutGuard};

use serde::{Deserialize, Serialize};

use crate::timefmt::Micros;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Ios,
    Android,
    Electron,
}

impl Platform {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ios" => Some(Self::Ios),
            "android" => Some(Self::Android),
            "electron" => Some(Self::Electron),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Electron => "electron",
        }
    }
}

/// API key modes, ordered by what they allow: `read < upload < write < all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Read,
    Upload,
    Write,
    All,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "upload" => Some(Self::Upload),
            "write" => Some(Self::Write),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub app_id: String,
    pub name: String,
    pub created_at: Micros,
}

/// `disableAutoUpdate` of a channel: the largest semver step a device may take by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisableAutoUpdate {
    Major,
    Minor,
    Patch,
    VersionNumber,
    None,
}

impl DisableAutoUpdate {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "major" => Some(Self::Major),
            "minor" => Some(Self::Minor),
            "patch" => Some(Self::Patch),
            "version_number" => Some(Self::VersionNumber),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Numeric id, unique in the app.
    pub id: u64,
    pub app_id: String,
    pub name: String,
    /// The bundle (by version name) the channel distributes.
    pub version: Option<String>,
    pub public: bool,
    pub ios: bool,
    pub android: bool,
    pub electron: bool,
    pub allow_device_self_set: bool,
    pub allow_emulator: bool,
    pub allow_device: bool,
    pub allow_dev: bool,
    pub allow_prod: bool,
    pub disable_auto_update: DisableAutoUpdate,
    pub disable_auto_update_under_native: bool,
    pub created_at: Micros,
    pub updated_at: Micros,
    /// A second bundle for a share of the channel's devices (stored after the fields above:
    /// see `StoredChannel` in the sled engine).
    #[serde(skip)]
    pub rollout: Option<Rollout>,
    /// Rollouts started on this channel so far: the next one's id.
    #[serde(skip)]
    pub rollouts_started: u64,
}

impl Channel {
    /// A channel as created when only its name is given (spec section 4 defaults).
    pub fn with_defaults(id: u64, app_id: &str, name: &str, now: Micros) -> Self {
        Self {
            id,
            app_id: app_id.to_owned(),
            name: name.to_owned(),
            version: None,
            public: false,
            ios: true,
            android: true,
            electron: true,
            allow_device_self_set: false,
            allow_emulator: true,
            allow_device: true,
            allow_dev: true,
            allow_prod: true,
            disable_auto_update: DisableAutoUpdate::Major,
            disable_auto_update_under_native: true,
            created_at: now,
            updated_at: now,
            rollout: None,
            rollouts_started: 0,
        }
    }

    pub fn allows_platform(&self, platform: Platform) -> bool {
        match platform {
            Platform::Ios => self.ios,
            Platform::Android => self.android,
            Platform::Electron => self.electron,
        }
    }

    pub fn overlaps(&self, other: &Channel) -> bool {
        (self.ios && other.ios)
            || (self.android && other.android)
            || (self.electron && other.electron)
    }
}

/// The fields of a channel upsert that were sent; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelPatch {
    /// `Some(None)` unsets the channel's bundle.
    pub version: Option<Option<String>>,
    pub public: Option<bool>,
    pub ios: Option<bool>,
    pub android: Option<bool>,
    pub electron: Option<bool>,
    pub allow_device_self_set: Option<bool>,
    pub allow_emulator: Option<bool>,
    pub allow_device: Option<bool>,
    pub allow_dev: Option<bool>,
    pub allow_prod: Option<bool>,
    pub disable_auto_update: Option<DisableAutoUpdate>,
    pub disable_auto_update_under_native: Option<bool>,
    /// `Some(None)` ends the rollout (abort); a version other than the current rollout's
    /// starts a new one.
    pub rollout_version: Option<Option<String>>,
    pub rollout_percentage_bps: Option<u16>,
    pub rollout_paused: Option<bool>,
    /// Ends the rollout, its bundle becoming the channel's (`POST /channel/rollout`).
    pub promote_rollout: bool,
    /// `Some(None)` removes the rollout's guard.
    pub rollout_guard: Option<Option<RolloutGuard>>,
    /// The guard acted at this instant, for this reason (kept for its cooldown and the audit).
    pub guard_triggered: Option<(Micros, String)>,
    /// Applies only while the channel's rollout is this one (the guard acts on what it read).
    pub if_rollout: Option<u64>,
}

/// Why a patch cannot apply to a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchRefusal {
    /// It changes a rollout (its share, its pause, promotes it) and the channel has none (or
    /// not the one `if_rollout` names).
    NoRollout,
}

impl ChannelPatch {
    /// The fields that need a bundle to exist: the channel's and the rollout's.
    pub fn bundles_named(&self) -> impl Iterator<Item = &str> {
        [&self.version, &self.rollout_version]
            .into_iter()
            .filter_map(|v| v.as_ref().and_then(|v| v.as_deref()))
    }

    pub fn apply(&self, channel: &mut Channel, now: Micros) -> Result<(), PatchRefusal> {
        self.apply_rollout(channel, now)?;
        self.apply_fields(channel);
        Ok(())
    }

    fn apply_rollout(&self, channel: &mut Channel, now: Micros) -> Result<(), PatchRefusal> {
        if let Some(id) = self.if_rollout {
            if channel.rollout.as_ref().map(|r| r.id) != Some(id) {
                return Err(PatchRefusal::NoRollout);
            }
        }
        match &self.rollout_version {
            Some(None) => channel.rollout = None,
            Some(Some(version))
                if channel.rollout.as_ref().map(|r| &r.version) != Some(version) =>
            {
                channel.rollouts_started += 1;
                channel.rollout = Some(Rollout {
                    id: channel.rollouts_started,
                    version: version.clone(),
                    percentage_bps: 0,
                    paused: false,
                    started_at: now,
                    baseline: (0, 0),
                    guard: None,
                    guard_triggered_at: None,
                });
            }
            Some(Some(_)) | None => {}
        }
        // A guard that rolls back ends the rollout and says why in the same patch.
        let ending = matches!(self.rollout_version, Some(None));
        let changes_rollout = self.rollout_percentage_bps.is_some()
            || self.rollout_paused.is_some()
            || self.rollout_guard.is_some()
            || (self.guard_triggered.is_some() && !ending)
            || self.promote_rollout;
        match channel.rollout.as_mut() {
            None if changes_rollout => return Err(PatchRefusal::NoRollout),
            None => {}
            Some(rollout) => {
                if let Some(bps) = self.rollout_percentage_bps {
                    rollout.percentage_bps = bps;
                }
                if let Some(paused) = self.rollout_paused {
                    rollout.paused = paused;
                }
                if let Some(guard) = &self.rollout_guard {
                    rollout.guard.clone_from(guard);
                }
                if let Some((at, _)) = &self.guard_triggered {
                    rollout.guard_triggered_at = Some(*at);
                }
            }
        }
        if self.promote_rollout {
            channel.version = channel.rollout.take().map(|rollout| rollout.version);
        }
        Ok(())
    }

    fn apply_fields(&self, channel: &mut Channel) {
        if let Some(version) = &self.version {
            channel.version.clone_from(version);
        }
        let flags = [
            (self.public, &mut channel.public),
            (self.ios, &mut channel.ios),
            (self.android, &mut channel.android),
            (self.electron, &mut channel.electron),
            (
                self.allow_device_self_set,
                &mut channel.allow_device_self_set,
            ),
            (self.allow_emulator, &mut channel.allow_emulator),
            (self.allow_device, &mut channel.allow_device),
            (self.allow_dev, &mut channel.allow_dev),
            (self.allow_prod, &mut channel.allow_prod),
            (
                self.disable_auto_update_under_native,
                &mut channel.disable_auto_update_under_native,
            ),
        ];
        for (value, slot) in flags {
            if let Some(value) = value {
                *slot = value;
            }
        }
        if let Some(value) = self.disable_auto_update {
            channel.disable_auto_update = value;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Numeric id, unique in the app; what a device's `version` field shows.
    pub id: u64,
    pub app_id: String,
    /// The bundle's semver name.
    pub version: String,
    pub external_url: String,
    pub checksum: String,
    pub session_key: Option<String>,
    pub min_update_version: Option<String>,
    pub created_at: Micros,
    /// Its files, for plugins that download only the files they lack (stored after the fields
    /// above: see `StoredBundle` in the sled engine).
    #[serde(skip)]
    pub manifest: Vec<ManifestEntry>,
}

/// One file of a bundle, as Capgo's manifest entries describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub file_name: String,
    pub file_hash: String,
    pub download_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBundle {
    pub app_id: String,
    pub version: String,
    pub external_url: String,
    pub checksum: String,
    pub session_key: Option<String>,
    pub min_update_version: Option<String>,
    pub manifest: Vec<ManifestEntry>,
}

impl NewBundle {
    /// The bundle as registered, with its id in the app and the time it was registered.
    pub fn registered(&self, id: u64, now: Micros) -> Bundle {
        Bundle {
            id,
            app_id: self.app_id.clone(),
            version: self.version.clone(),
            external_url: self.external_url.clone(),
            checksum: self.checksum.clone(),
            session_key: self.session_key.clone(),
            min_update_version: self.min_update_version.clone(),
            created_at: now,
            manifest: self.manifest.clone(),
        }
    }
}

/// What a device says about itself when it checks in (plugin body, spec section 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    pub custom_id: String,
    pub version_name: Option<String>,
    pub version_build: String,
    pub os_version: String,
    pub plugin_version: String,
    pub platform: Platform,
    pub is_prod: bool,
    pub is_emulator: bool,
    pub default_channel: Option<String>,
    /// Where the app was installed from, as the plugin reports it on `/stats` (`install_source`).
    pub install_source: Option<String>,
    /// The id of the public key the plugin decrypts bundles with (`key_id`): never a secret.
    pub key_id: Option<String>,
}

impl DeviceReport {
    /// The report stored after a check-in that reports `new` over this one. What the plugin
    /// leaves out keeps its stored value, as Capgo keeps it: an empty `custom_id` (the plugin
    /// sends `""` until the app sets one, so a device cannot lose its id by restarting), no
    /// `install_source`, no `key_id`. Every other field is the check-in's.
    pub fn updated_with(&self, new: &DeviceReport) -> DeviceReport {
        let mut report = new.clone();
        if report.custom_id.is_empty() {
            report.custom_id.clone_from(&self.custom_id);
        }
        if report.install_source.is_none() {
            report.install_source.clone_from(&self.install_source);
        }
        if report.key_id.is_none() {
            report.key_id.clone_from(&self.key_id);
        }
        report
    }

    /// Whether a check-in reporting `new` leaves this report as it is (what
    /// [`updated_with`](Self::updated_with) would give, without building it).
    pub fn is_unchanged_by(&self, new: &DeviceReport) -> bool {
        let kept =
            |stored: &Option<String>, sent: &Option<String>| sent.is_none() || sent == stored;
        (new.custom_id.is_empty() || new.custom_id == self.custom_id)
            && kept(&self.install_source, &new.install_source)
            && kept(&self.key_id, &new.key_id)
            && self.version_name == new.version_name
            && self.version_build == new.version_build
            && self.os_version == new.os_version
            && self.plugin_version == new.plugin_version
            && self.platform == new.platform
            && self.is_prod == new.is_prod
            && self.is_emulator == new.is_emulator
            && self.default_channel == new.default_channel
    }
}

/// A device as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub app_id: String,
    pub device_id: String,
    pub updated_at: Micros,
    pub report: DeviceReport,
    /// Its decision in a channel's rollout, once `/updates` took one.
    pub rollout: Option<RolloutDecision>,
}

/// A device's overrides, set through the Devices API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    pub channel: Option<String>,
    /// Bundle version name the device is pinned to.
    pub version: Option<String>,
    /// When an override was last set; an override of a device that never checks in expires
    /// counted from here.
    pub set_at: Micros,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.channel.is_none() && self.version.is_none()
    }
}

/// How an app's devices are spread (`GET /device/summary`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSummary {
    pub total: u64,
    pub platforms: std::collections::BTreeMap<String, u64>,
    /// By `version_name`; `""` for devices that reported none.
    pub version_names: std::collections::BTreeMap<String, u64>,
    pub version_builds: std::collections::BTreeMap<String, u64>,
    /// Devices by channel override.
    pub channels: std::collections::BTreeMap<String, u64>,
    pub prod: u64,
    pub emulator: u64,
    /// Devices seen in the last 1, 7 and 30 days.
    pub seen: [u64; 3],
    /// Devices selected by a rollout, by (channel id, rollout id); earlier rollouts' decisions
    /// stay counted until their devices check in again, so readers keep the current ones.
    pub rollouts_selected: std::collections::BTreeMap<(u64, u64), u64>,
}

impl DeviceSummary {
    /// Counts one device, as a scan does.
    pub fn add(&mut self, entry: &DeviceEntry, now: Micros) {
        let (report, overrides) = (&entry.device.report, &entry.overrides);
        let updated_at = entry.device.updated_at;
        if let Some(decision) = entry.device.rollout.as_ref().filter(|d| d.selected) {
            *self
                .rollouts_selected
                .entry((decision.channel_id, decision.rollout_id))
                .or_default() += 1;
        }
        self.total += 1;
        *self
            .platforms
            .entry(report.platform.as_str().to_owned())
            .or_default() += 1;
        *self
            .version_names
            .entry(report.version_name.clone().unwrap_or_default())
            .or_default() += 1;
        *self
            .version_builds
            .entry(report.version_build.clone())
            .or_default() += 1;
        if let Some(channel) = &overrides.channel {
            *self.channels.entry(channel.clone()).or_default() += 1;
        }
        self.prod += u64::from(report.is_prod);
        self.emulator += u64::from(report.is_emulator);
        for (seen, days) in self.seen.iter_mut().zip(SEEN_DAYS) {
            if updated_at > now.saturating_sub(days * DAY) {
                *seen += 1;
            }
        }
    }
}

/// The windows of `DeviceSummary::seen`, in days.
pub const SEEN_DAYS: [u64; 3] = [1, 7, 30];
const DAY: Micros = 86_400_000_000;

/// A device with what it takes to render it: its overrides and the id of the bundle it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub device: Device,
    pub overrides: Overrides,
    pub bundle_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: u64,
    pub name: String,
    pub mode: Mode,
    /// Empty means every app.
    pub limited_to_apps: Vec<String>,
    pub expires_at: Option<Micros>,
    pub created_at: Micros,
}

impl ApiKey {
    pub fn can_access(&self, app_id: &str) -> bool {
        self.limited_to_apps.is_empty() || self.limited_to_apps.iter().any(|a| a == app_id)
    }
}

/// The order of a device list (spec section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceOrder {
    /// By `device_id` ascending: stable while devices check in.
    DeviceId,
    UpdatedAsc,
    UpdatedDesc,
}

/// A position in a device list: the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub updated_at: Micros,
    pub device_id: String,
}

/// Conditions a listed device must meet; unset fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    pub custom_id: Option<String>,
    pub custom_id_prefix: Option<String>,
    pub platform: Option<Platform>,
    pub version_name: Option<String>,
    /// Devices whose channel override is this channel.
    pub channel: Option<String>,
    pub has_override: Option<bool>,
    pub is_prod: Option<bool>,
    pub is_emulator: Option<bool>,
}

impl DeviceFilter {
    /// Whether matching needs the device's overrides.
    pub fn needs_overrides(&self) -> bool {
        self.channel.is_some() || self.has_override.is_some()
    }

    pub fn matches(&self, report: &DeviceReport, overrides: &Overrides) -> bool {
        self.custom_id
            .as_ref()
            .is_none_or(|id| report.custom_id == *id)
            && self
                .custom_id_prefix
                .as_ref()
                .is_none_or(|prefix| report.custom_id.starts_with(prefix.as_str()))
            && self
                .platform
                .is_none_or(|platform| report.platform == platform)
            && self
                .version_name
                .as_ref()
                .is_none_or(|name| report.version_name.as_ref() == Some(name))
            && self
                .channel
                .as_ref()
                .is_none_or(|channel| overrides.channel.as_ref() == Some(channel))
            && self
                .has_override
                .is_none_or(|has| has != overrides.is_empty())
            && self.is_prod.is_none_or(|is_prod| report.is_prod == is_prod)
            && self
                .is_emulator
                .is_none_or(|is_emulator| report.is_emulator == is_emulator)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceListQuery {
    pub order: DeviceOrder,
    pub after: Option<Cursor>,
    /// Only devices with `updated_at` strictly later than this.
    pub updated_after: Option<Micros>,
    pub limit: usize,
    /// How many rows a filtered page may examine before it answers with what it found and a
    /// cursor to continue from, so that a selective filter cannot turn a page into a full scan.
    pub max_examined: usize,
    pub filter: DeviceFilter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePage {
    pub devices: Vec<DeviceEntry>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reports drawn from few values, so that equal fields are common.
    fn report() -> impl Strategy<Value = DeviceReport> {
        let text = || prop::sample::select(vec!["", "a", "b"]).prop_map(String::from);
        let option =
            || prop::option::of(prop::sample::select(vec!["a", "b"]).prop_map(String::from));
        (
            (text(), option(), text(), text(), text()),
            (any::<bool>(), any::<bool>(), any::<bool>()),
            (option(), option(), option()),
        )
            .prop_map(
                |(
                    (custom_id, version_name, version_build, os_version, plugin_version),
                    (android, is_prod, is_emulator),
                    (default_channel, install_source, key_id),
                )| DeviceReport {
                    custom_id,
                    version_name,
                    version_build,
                    os_version,
                    plugin_version,
                    platform: if android {
                        Platform::Android
                    } else {
                        Platform::Ios
                    },
                    is_prod,
                    is_emulator,
                    default_channel,
                    install_source,
                    key_id,
                },
            )
    }

    proptest! {
        #[test]
        fn unchanged_means_the_update_gives_the_same_report(
            stored in report(),
            sent in report(),
        ) {
            prop_assert_eq!(
                stored.is_unchanged_by(&sent),
                stored.updated_with(&sent) == stored
            );
        }
    }

    #[test]
    fn what_the_plugin_leaves_out_keeps_its_stored_value() {
        let stored = DeviceReport {
            custom_id: "user-1".into(),
            version_name: Some("1.0.0".into()),
            version_build: "1.0.0".into(),
            os_version: "17.0".into(),
            plugin_version: "8.0.0".into(),
            platform: Platform::Ios,
            is_prod: true,
            is_emulator: false,
            default_channel: Some("beta".into()),
            install_source: Some("app_store".into()),
            key_id: Some("ab12".into()),
        };
        let sent = DeviceReport {
            custom_id: String::new(),
            default_channel: None,
            install_source: None,
            key_id: None,
            ..stored.clone()
        };
        // The default channel is what the device says now; the others are kept.
        let updated = stored.updated_with(&sent);
        assert_eq!(
            updated,
            DeviceReport {
                default_channel: None,
                ..stored.clone()
            }
        );
        assert!(!stored.is_unchanged_by(&sent));
        assert!(stored.is_unchanged_by(&DeviceReport {
            default_channel: Some("beta".into()),
            ..sent
        }));
    }
}
