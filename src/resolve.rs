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
use serde::Serialize;

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

/// Why an answer is what it is: each precedence step with whether it applied, then each
/// channel rule checked, in order, up to the first that refused. Recording is off for
/// `/updates` and on for `GET /device/resolve`; the decisions are the same code either way.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    #[serde(skip)]
    on: bool,
    pub precedence: Vec<StepTrace>,
    pub rules: Vec<RuleTrace>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepTrace {
    pub step: &'static str,
    pub applied: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrace {
    pub rule: &'static str,
    pub passed: bool,
}

impl Trace {
    /// Records nothing.
    pub fn off() -> Self {
        Self::default()
    }

    pub fn on() -> Self {
        Self {
            on: true,
            ..Self::default()
        }
    }

    fn step(&mut self, step: &'static str, applied: bool, detail: impl FnOnce() -> String) {
        if self.on {
            self.precedence.push(StepTrace {
                step,
                applied,
                detail: detail(),
            });
        }
    }

    fn rule(&mut self, rule: &'static str, passed: bool) {
        if self.on {
            self.rules.push(RuleTrace { rule, passed });
        }
    }
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::VersionOverride => "version_override",
            Source::ChannelOverride => "channel_override",
            Source::DefaultChannel => "default_channel",
            Source::PublicChannel => "public_channel",
        }
    }
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
    trace: &mut Trace,
) -> StoreResult<Answer> {
    let pinned = match &overrides.version {
        Some(name) => store.bundle(app_id, name)?,
        None => None,
    };
    trace.step("version_override", pinned.is_some(), || {
        match &overrides.version {
            Some(name) => format!("pinned to bundle {name}"),
            None => "none".into(),
        }
    });
    if let Some(bundle) = pinned {
        let source = Some(Source::VersionOverride);
        let current = report.version_name.as_deref() == Some(bundle.version.as_str());
        trace.rule("no_new_version_available", !current);
        if current {
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
    let Some((channel, source)) = choose_channel(store, app_id, report, overrides, trace)? else {
        let refusal = Refusal::new("no_channel", "no default channel or override", Kind::Failed);
        return Ok(Answer::Refused {
            refusal,
            source: None,
        });
    };
    let bundle = match &channel.version {
        Some(name) => store.bundle(app_id, name)?,
        None => None,
    };
    trace.rule("no_bundle", bundle.is_some());
    let Some(bundle) = bundle else {
        let refusal = Refusal::new("no_bundle", "Cannot get bundle", Kind::Failed);
        return Ok(Answer::Refused {
            refusal,
            source: Some(source),
        });
    };
    let via_override = source == Source::ChannelOverride;
    match channel_rules(&channel, &bundle, report, native, via_override, trace) {
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
    trace: &mut Trace,
) -> StoreResult<Option<(Channel, Source)>> {
    let linked = match &overrides.channel {
        Some(name) => store.channel(app_id, name)?,
        None => None,
    };
    trace.step("channel_override", linked.is_some(), || {
        match &overrides.channel {
            Some(name) => format!("linked to channel {name}"),
            None => "none".into(),
        }
    });
    if let Some(channel) = linked {
        return Ok(Some((channel, Source::ChannelOverride)));
    }
    if let Some(name) = &report.default_channel {
        let named = store.channel(app_id, name)?;
        trace.step("default_channel", named.is_some(), || match named {
            Some(_) => format!("channel {name}"),
            None => format!("channel {name} does not exist"),
        });
        return Ok(named.map(|channel| (channel, Source::DefaultChannel)));
    }
    trace.step("default_channel", false, || "not sent".into());
    let public = public_channel(store, app_id, report.platform)?;
    trace.step("public_channel", public.is_some(), || match &public {
        Some(channel) => format!("channel {}", channel.name),
        None => format!("no public channel for {}", report.platform.as_str()),
    });
    Ok(public.map(|channel| (channel, Source::PublicChannel)))
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

/// The channel rules in Capgo's order; the first that refuses answers. Version comparisons are
/// semver, against the native version (`version_build`).
pub fn channel_rules(
    channel: &Channel,
    bundle: &Bundle,
    report: &DeviceReport,
    native: &Version,
    via_override: bool,
    trace: &mut Trace,
) -> Option<Refusal> {
    // Records the rule and answers its refusal when it refuses.
    macro_rules! rule {
        ($name:expr, $refuses:expr, $refusal:expr) => {{
            let refuses: bool = $refuses;
            trace.rule($name, !refuses);
            if refuses {
                return Some($refusal);
            }
        }};
    }
    let blocked =
        |error: &'static str, message: &'static str| Refusal::new(error, message, Kind::Blocked);

    let current = report.version_name.as_deref() == Some(bundle.version.as_str());
    rule!("no_new_version_available", current, up_to_date());
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
    rule!(
        error,
        !channel.allows_platform(report.platform),
        blocked(error, message)
    );
    // Bundle names are validated as semver when registered; one that is not is never offered.
    let Ok(target) = Version::parse(&bundle.version) else {
        return Some(Refusal::new("no_bundle", "Cannot get bundle", Kind::Failed));
    };
    let policy = channel.disable_auto_update;
    rule!(
        "disable_auto_update_to_major",
        policy == DisableAutoUpdate::Major && target.major > native.major,
        blocked(
            "disable_auto_update_to_major",
            "Cannot upgrade major version"
        )
    );
    rule!(
        "cannot_update_via_private_channel",
        !channel.allow_device_self_set && !channel.public && !via_override,
        blocked(
            "cannot_update_via_private_channel",
            "Cannot update via a private channel: the channel does not allow devices to self-assign",
        )
    );
    rule!(
        "disable_auto_update_to_minor",
        policy == DisableAutoUpdate::Minor
            && (target.major != native.major || target.minor != native.minor),
        blocked(
            "disable_auto_update_to_minor",
            "Cannot upgrade minor version"
        )
    );
    rule!(
        "disable_auto_update_to_patch",
        policy == DisableAutoUpdate::Patch
            && (target.major != native.major
                || target.minor != native.minor
                || target.patch != native.patch),
        blocked(
            "disable_auto_update_to_patch",
            "Cannot upgrade patch version"
        )
    );
    if policy == DisableAutoUpdate::VersionNumber {
        let minimum = bundle
            .min_update_version
            .as_deref()
            .and_then(|v| Version::parse(v).ok());
        rule!(
            "misconfigured_channel",
            minimum.is_none(),
            Refusal::new(
                "misconfigured_channel",
                format!(
                    "Channel {} is misconfigured: its bundle has no min_update_version",
                    channel.name
                ),
                Kind::Failed,
            )
        );
        rule!(
            "disable_auto_update_to_metadata",
            minimum.is_some_and(|minimum| minimum > *native),
            blocked(
                "disable_auto_update_to_metadata",
                "Cannot upgrade version, min update version > current version",
            )
        );
    }
    rule!(
        "disable_auto_update_under_native",
        channel.disable_auto_update_under_native && target < *native,
        blocked(
            "disable_auto_update_under_native",
            "Cannot revert under native version"
        )
    );
    rule!(
        "disable_prod_build",
        !channel.allow_prod && report.is_prod,
        blocked(
            "disable_prod_build",
            "Cannot update, prod build is disabled"
        )
    );
    rule!(
        "disable_dev_build",
        !channel.allow_dev && !report.is_prod,
        blocked("disable_dev_build", "Cannot update, dev build is disabled")
    );
    rule!(
        "disable_device",
        !channel.allow_device && !report.is_emulator,
        blocked("disable_device", "Cannot update, device is disabled")
    );
    rule!(
        "disable_emulator",
        !channel.allow_emulator && report.is_emulator,
        blocked("disable_emulator", "Cannot update, emulator is disabled")
    );
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
