//! What a device should run (spec section 5, `POST /updates`): the precedence of overrides and
//! channels, then the channel rules in Capgo's order. Pure decisions over what the store holds,
//! so that `/updates` and anything that explains an answer share one code path.
//!
//! | step | source | when it applies |
//! |---|---|---|
//! | 1 | version override | the device is pinned to a bundle: that bundle, channel rules skipped |
//! | 2 | channel override | the device is linked to a channel |
//! | 3 | `defaultChannel` | the device names a channel; a name that matches none is `no_channel` |
//! | 4 | public channel | the app's public channel for the device's platform |
//!
//! A channel reached through step 3 is still subject to the rules, so a default channel that does
//! not allow the platform answers `disabled_platform_<platform>`, and a private one that does not
//! allow self-set answers `cannot_update_via_private_channel`.

use std::borrow::Cow;

use semver::Version;

use crate::model::{Bundle, Channel, DeviceReport, DisableAutoUpdate, Overrides, Platform};
use crate::store::{Store, StoreResult};

/// `kind` of a refusal, as current plugins read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    UpToDate,
    Blocked,
    Failed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UpToDate => "up_to_date",
            Kind::Blocked => "blocked",
            Kind::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: Cow<'static, str>,
    pub message: Cow<'static, str>,
    pub kind: Kind,
}

impl Refusal {
    pub fn new(error: &'static str, message: impl Into<Cow<'static, str>>, kind: Kind) -> Self {
        Self {
            error: Cow::Borrowed(error),
            message: message.into(),
            kind,
        }
    }
}

/// Which precedence step chose the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    VersionOverride,
    ChannelOverride,
    DefaultChannel,
    PublicChannel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Update {
        bundle: Bundle,
        source: Source,
    },
    Refused {
        refusal: Refusal,
        source: Option<Source>,
    },
}

/// The native version as Capgo reads it: `builtin`/`unknown` are 0.0.0, a missing minor or patch
/// is 0 (`1` is 1.0.0, `1.2` is 1.2.0); the result must then be strict semver.
pub fn coerce_native_version(version_build: &str) -> Option<Version> {
    let text = version_build.trim();
    let fixed = match text {
        "builtin" | "unknown" => Cow::Borrowed("0.0.0"),
        _ => match text.matches('.').count() {
            0 => Cow::Owned(format!("{text}.0.0")),
            1 => Cow::Owned(format!("{text}.0")),
            _ => Cow::Borrowed(text),
        },
    };
    Version::parse(&fixed).ok()
}

pub fn semver_error(version_build: &str) -> Refusal {
    Refusal::new(
        "semver_error",
        format!("Native version: {version_build} doesn't follow semver convention"),
        Kind::Failed,
    )
}

/// Decides what the device should run now.
pub fn resolve(
    store: &dyn Store,
    app_id: &str,
    report: &DeviceReport,
    native: &Version,
    overrides: &Overrides,
) -> StoreResult<Answer> {
    if let Some(name) = &overrides.version {
        if let Some(bundle) = store.bundle(app_id, name)? {
            let source = Some(Source::VersionOverride);
            if report.version_name.as_deref() == Some(bundle.version.as_str()) {
                return Ok(Answer::Refused {
                    refusal: up_to_date(),
                    source,
                });
            }
            return Ok(Answer::Update {
                bundle,
                source: Source::VersionOverride,
            });
        }
    }
    let (channel, source) = match choose_channel(store, app_id, report, overrides)? {
        Some(found) => found,
        None => {
            let refusal =
                Refusal::new("no_channel", "no default channel or override", Kind::Failed);
            return Ok(Answer::Refused {
                refusal,
                source: None,
            });
        }
    };
    let bundle = match &channel.version {
        Some(name) => store.bundle(app_id, name)?,
        None => None,
    };
    let Some(bundle) = bundle else {
        let refusal = Refusal::new("no_bundle", "Cannot get bundle", Kind::Failed);
        return Ok(Answer::Refused {
            refusal,
            source: Some(source),
        });
    };
    let via_override = source == Source::ChannelOverride;
    match channel_rules(&channel, &bundle, report, native, via_override) {
        Some(refusal) => Ok(Answer::Refused {
            refusal,
            source: Some(source),
        }),
        None => Ok(Answer::Update { bundle, source }),
    }
}

/// Steps 2 to 4 of the precedence.
fn choose_channel(
    store: &dyn Store,
    app_id: &str,
    report: &DeviceReport,
    overrides: &Overrides,
) -> StoreResult<Option<(Channel, Source)>> {
    if let Some(name) = &overrides.channel {
        if let Some(channel) = store.channel(app_id, name)? {
            return Ok(Some((channel, Source::ChannelOverride)));
        }
    }
    if let Some(name) = &report.default_channel {
        return Ok(store
            .channel(app_id, name)?
            .map(|channel| (channel, Source::DefaultChannel)));
    }
    Ok(public_channel(store, app_id, report.platform)?
        .map(|channel| (channel, Source::PublicChannel)))
}

/// The app's public channel for a platform (at most one: making a channel public unsets the
/// others that overlap it).
pub fn public_channel(
    store: &dyn Store,
    app_id: &str,
    platform: Platform,
) -> StoreResult<Option<Channel>> {
    Ok(store
        .channels(app_id)?
        .into_iter()
        .find(|channel| channel.public && channel.allows_platform(platform)))
}

fn up_to_date() -> Refusal {
    Refusal::new(
        "no_new_version_available",
        "No new version available",
        Kind::UpToDate,
    )
}

fn blocked(error: &'static str, message: &'static str) -> Option<Refusal> {
    Some(Refusal::new(error, message, Kind::Blocked))
}

/// The channel rules in Capgo's order; the first that refuses answers. Version comparisons are
/// semver, against the native version (`version_build`).
pub fn channel_rules(
    channel: &Channel,
    bundle: &Bundle,
    report: &DeviceReport,
    native: &Version,
    via_override: bool,
) -> Option<Refusal> {
    if report.version_name.as_deref() == Some(bundle.version.as_str()) {
        return Some(up_to_date());
    }
    if !channel.allows_platform(report.platform) {
        let (error, message) = match report.platform {
            Platform::Ios => ("disabled_platform_ios", "Cannot update, ios is disabled"),
            Platform::Android => (
                "disabled_platform_android",
                "Cannot update, android is disabled",
            ),
            Platform::Electron => (
                "disabled_platform_electron",
                "Cannot update, electron is disabled",
            ),
        };
        return blocked(error, message);
    }
    // Bundle names are validated as semver when registered; one that is not is never offered.
    let Ok(target) = Version::parse(&bundle.version) else {
        return Some(Refusal::new("no_bundle", "Cannot get bundle", Kind::Failed));
    };
    let policy = channel.disable_auto_update;
    if policy == DisableAutoUpdate::Major && target.major > native.major {
        return blocked(
            "disable_auto_update_to_major",
            "Cannot upgrade major version",
        );
    }
    if !channel.allow_device_self_set && !channel.public && !via_override {
        return blocked(
            "cannot_update_via_private_channel",
            "Cannot update via a private channel: the channel does not allow devices to self-assign",
        );
    }
    if policy == DisableAutoUpdate::Minor
        && (target.major != native.major || target.minor != native.minor)
    {
        return blocked(
            "disable_auto_update_to_minor",
            "Cannot upgrade minor version",
        );
    }
    if policy == DisableAutoUpdate::Patch
        && (target.major != native.major
            || target.minor != native.minor
            || target.patch != native.patch)
    {
        return blocked(
            "disable_auto_update_to_patch",
            "Cannot upgrade patch version",
        );
    }
    if policy == DisableAutoUpdate::VersionNumber {
        let minimum = bundle
            .min_update_version
            .as_deref()
            .and_then(|v| Version::parse(v).ok());
        match minimum {
            None => {
                return Some(Refusal::new(
                    "misconfigured_channel",
                    format!(
                        "Channel {} is misconfigured: its bundle has no min_update_version",
                        channel.name
                    ),
                    Kind::Failed,
                ))
            }
            Some(minimum) if minimum > *native => {
                return blocked(
                    "disable_auto_update_to_metadata",
                    "Cannot upgrade version, min update version > current version",
                );
            }
            Some(_) => {}
        }
    }
    if channel.disable_auto_update_under_native && target < *native {
        return blocked(
            "disable_auto_update_under_native",
            "Cannot revert under native version",
        );
    }
    if !channel.allow_prod && report.is_prod {
        return blocked(
            "disable_prod_build",
            "Cannot update, prod build is disabled",
        );
    }
    if !channel.allow_dev && !report.is_prod {
        return blocked("disable_dev_build", "Cannot update, dev build is disabled");
    }
    if !channel.allow_device && !report.is_emulator {
        return blocked("disable_device", "Cannot update, device is disabled");
    }
    if !channel.allow_emulator && report.is_emulator {
        return blocked("disable_emulator", "Cannot update, emulator is disabled");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_versions_are_coerced_as_capgo_does() {
        let v = |text: &str| coerce_native_version(text).map(|v| v.to_string());
        assert_eq!(v("1").as_deref(), Some("1.0.0"));
        assert_eq!(v("1.2").as_deref(), Some("1.2.0"));
        assert_eq!(v("1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(v("1.2.3-beta.1").as_deref(), Some("1.2.3-beta.1"));
        assert_eq!(v("builtin").as_deref(), Some("0.0.0"));
        assert_eq!(v("unknown").as_deref(), Some("0.0.0"));
        assert_eq!(v(" 2.0 ").as_deref(), Some("2.0.0"));
        for bad in ["", "abc", "1.2.3.4", "v1.2.3", "01.2.3", "1..2", "1.2.x"] {
            assert_eq!(v(bad), None, "{bad}");
        }
    }

    #[test]
    fn semver_order_is_numeric() {
        let a = Version::parse("1.10.0").unwrap();
        let b = Version::parse("1.9.0").unwrap();
        assert!(a > b);
        assert!(Version::parse("1.0.0-beta").unwrap() < Version::parse("1.0.0").unwrap());
    }
}
