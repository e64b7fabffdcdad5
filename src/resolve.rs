//! What a device should run (spec section 5, `POST /updates`): the precedence of overrides and
//! channels, then the channel rules, as Capgo's server decides them
//! (`plugin_runtime/utils/update.ts`). Pure decisions over what the store holds, so that
//! `/updates` and `GET /device/resolve` share one code path.
//!
//! | step | source | when it applies |
//! |---|---|---|
//! | 1 | version override | the device is pinned to a bundle: that bundle, channel rules skipped |
//! | 2 | channel override | the device is linked to a channel (any channel: an operator chose it) |
//! | 3 | `defaultChannel` | a channel of that name that allows the platform and is public or self-settable; anything else is `no_channel` |
//! | 4 | public channel | the app's public channel for the device's platform |
//!
//! Step 3 never falls back to step 4, and a channel the device may not use answers exactly as a
//! name that matches nothing: the answer never reveals that a private channel exists. So a
//! channel reached without an override is always public or self-settable, and Capgo's
//! `cannot_update_via_private_channel` rule can never refuse: it is not checked here.
//!
//! A channel without a bundle sends devices back to their builtin bundle: the platform and
//! device-kind rules still apply, then `already_on_builtin` with `version: "builtin"`.

use std::borrow::Cow;
use std::cmp::Ordering;

use semver::Version;
use serde::Serialize;

use crate::model::{
    Bundle, Channel, DeviceReport, DisableAutoUpdate, Overrides, Platform, RolloutDecision,
};
use crate::plugin_version;
use crate::rollout::{self, Dice};
use crate::store::{Store, StoreResult};

/// What resolving needs and learns of rollouts. In: the device's kept decision, read only when
/// the channel reached carries a rollout (so that other check-ins pay no read for it), and the
/// dice. Out: the decision to keep with the device once a channel was reached (`Some(None)`:
/// the channel has no rollout, and a kept decision goes).
pub struct Rollouts<'a> {
    pub stored: &'a mut dyn FnMut() -> StoreResult<Option<RolloutDecision>>,
    pub dice: &'a dyn Dice,
    pub decided: Option<Option<RolloutDecision>>,
}

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

/// A refusal, with the fields Capgo sends beside it: `version` (the bundle refused, which the
/// plugin's majorAvailable/breakingAvailable events carry), `old` (what the device runs, or its
/// native version for the version-policy rules) and `major` (the version-policy rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: Cow<'static, str>,
    pub message: Cow<'static, str>,
    pub kind: Kind,
    pub version: Option<String>,
    pub old: Option<String>,
    pub major: bool,
}

impl Refusal {
    pub fn new(error: &'static str, message: impl Into<Cow<'static, str>>, kind: Kind) -> Self {
        Self {
            error: Cow::Borrowed(error),
            message: message.into(),
            kind,
            version: None,
            old: None,
            major: false,
        }
    }

    /// The bundle refused, and what the device has instead.
    fn about(mut self, version: &str, old: &str) -> Self {
        self.version = Some(version.to_owned());
        self.old = Some(old.to_owned());
        self
    }

    fn major(mut self) -> Self {
        self.major = true;
        self
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
/// is 0 (`1` is 1.0.0, `1.2` is 1.2.0), a leading `v` is dropped; the result must then be semver.
pub fn coerce_native_version(version_build: &str) -> Option<Version> {
    let text = version_build.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
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

/// The message of a native version that is not semver, as Capgo words it.
pub fn semver_message(version_build: &str) -> String {
    format!("Native version: {version_build} doesn't follow semver convention")
}

/// Decides what the device should run now. `native` is the device's `version_build` as Capgo
/// reads it (see [`coerce_native_version`]).
pub fn resolve(
    store: &dyn Store,
    app_id: &str,
    report: &DeviceReport,
    native: &Version,
    overrides: &Overrides,
    rollouts: &mut Rollouts<'_>,
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
    let mut version = channel.version.as_deref();
    rollouts.decided = Some(None);
    if let Some(rollout) = &channel.rollout {
        let stored = (rollouts.stored)()?;
        let current = report.version_name.as_deref();
        let outcome = rollout::decide(
            rollout,
            (&channel.name, channel.id),
            stored.as_ref(),
            current,
            rollouts.dice,
        );
        trace.step("rollout", outcome.selected, || {
            format!(
                "rollout {} of bundle {} at {} bps{}: {} ({})",
                rollout.id,
                rollout.version,
                rollout.percentage_bps,
                if rollout.paused { ", paused" } else { "" },
                if outcome.selected {
                    "selected"
                } else {
                    "not selected"
                },
                outcome.reason
            )
        });
        if outcome.selected {
            version = Some(rollout.version.as_str());
        }
        rollouts.decided = Some(outcome.decision);
    }
    let bundle = match version {
        Some(name) => store.bundle(app_id, name)?,
        None => None,
    };
    let refusal = match &bundle {
        Some(bundle) => channel_rules(&channel, bundle, report, native, trace),
        None => builtin_rules(&channel, report, trace),
    };
    Ok(match (refusal, bundle) {
        (None, Some(bundle)) => Answer::Update { bundle, source },
        (refusal, _) => Answer::Refused {
            refusal: refusal.unwrap_or_else(|| back_to_builtin(report)),
            source: Some(source),
        },
    })
}

/// Whether a device may take the channel it names as its `defaultChannel`.
pub fn default_channel_usable(channel: &Channel, platform: Platform) -> bool {
    channel.allows_platform(platform) && (channel.public || channel.allow_device_self_set)
}

/// The channel a device gets by steps 2 to 4 of the precedence, for `/updates` and for
/// `PUT /channel_self` alike, so that the two never disagree.
pub fn choose_channel(
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
        let usable = store
            .channel(app_id, name)?
            .filter(|channel| default_channel_usable(channel, report.platform));
        // A private channel the device may not use reads as one that does not exist.
        trace.step("default_channel", usable.is_some(), || match usable {
            Some(_) => format!("channel {name}"),
            None => format!(
                "no channel {name} that is public or self-settable for {}",
                report.platform.as_str()
            ),
        });
        return Ok(usable.map(|channel| (channel, Source::DefaultChannel)));
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

/// A channel without a bundle, once its rules pass: the device goes back to its builtin bundle
/// (plugins before 6.2.0 cannot).
fn back_to_builtin(report: &DeviceReport) -> Refusal {
    if plugin_version::can_revert_to_builtin(&report.plugin_version) {
        let mut refusal = Refusal::new("already_on_builtin", "Already on builtin", Kind::UpToDate);
        refusal.version = Some("builtin".into());
        refusal
    } else {
        Refusal::new(
            "revert_to_builtin_plugin_version_too_old",
            "revert_to_builtin used, but plugin version is too old",
            Kind::Failed,
        )
    }
}

/// The rules that do not compare versions, in Capgo's order: the platform first, then the
/// kinds of build and device after the version rules. `version`/`old` name what is refused.
struct DeviceRules<'a> {
    channel: &'a Channel,
    report: &'a DeviceReport,
    version: &'a str,
    old: &'a str,
}

impl DeviceRules<'_> {
    fn blocked(&self, error: &'static str, message: &'static str) -> Refusal {
        Refusal::new(error, message, Kind::Blocked).about(self.version, self.old)
    }

    fn platform(&self, trace: &mut Trace) -> Option<Refusal> {
        let (error, message) = match self.report.platform {
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
        let refuses = !self.channel.allows_platform(self.report.platform);
        trace.rule(error, !refuses);
        refuses.then(|| self.blocked(error, message))
    }

    fn build_and_device(&self, trace: &mut Trace) -> Option<Refusal> {
        let (channel, report) = (self.channel, self.report);
        let rules = [
            (
                "disable_prod_build",
                "Cannot update, prod build is disabled",
                !channel.allow_prod && report.is_prod,
            ),
            (
                "disable_dev_build",
                "Cannot update, dev build is disabled",
                !channel.allow_dev && !report.is_prod,
            ),
            (
                "disable_device",
                "Cannot update, device is disabled",
                !channel.allow_device && !report.is_emulator,
            ),
            (
                "disable_emulator",
                "Cannot update, emulator is disabled",
                !channel.allow_emulator && report.is_emulator,
            ),
        ];
        for (error, message, refuses) in rules {
            trace.rule(error, !refuses);
            if refuses {
                return Some(self.blocked(error, message));
            }
        }
        None
    }
}

/// The rules of a channel without a bundle: the version rules have nothing to compare.
fn builtin_rules(channel: &Channel, report: &DeviceReport, trace: &mut Trace) -> Option<Refusal> {
    let rules = DeviceRules {
        channel,
        report,
        version: "builtin",
        old: report.version_name.as_deref().unwrap_or_default(),
    };
    rules
        .platform(trace)
        .or_else(|| rules.build_and_device(trace))
}

/// The channel rules in Capgo's order; the first that refuses answers. Version comparisons are
/// semver precedence (build metadata ignored, as Capgo's semver library ignores it), against the
/// native version (`version_build`).
pub fn channel_rules(
    channel: &Channel,
    bundle: &Bundle,
    report: &DeviceReport,
    native: &Version,
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
    let version_name = report.version_name.as_deref().unwrap_or_default();
    let rules = DeviceRules {
        channel,
        report,
        version: &bundle.version,
        old: version_name,
    };
    // The version-policy rules name the native version as what the device has.
    let policy_refusal = |error: &'static str, message: &'static str| {
        Refusal::new(error, message, Kind::Blocked)
            .about(&bundle.version, &report.version_build)
            .major()
    };

    let current = version_name == bundle.version;
    rule!("no_new_version_available", current, up_to_date());
    if let Some(refusal) = rules.platform(trace) {
        return Some(refusal);
    }
    // Bundle names are validated as semver when registered; one that is not is never offered.
    let Ok(target) = Version::parse(&bundle.version) else {
        return Some(Refusal::new("no_bundle", "Cannot get bundle", Kind::Failed));
    };
    let policy = channel.disable_auto_update;
    rule!(
        "disable_auto_update_to_major",
        policy == DisableAutoUpdate::Major && target.major > native.major,
        policy_refusal(
            "disable_auto_update_to_major",
            "Cannot upgrade major version"
        )
    );
    rule!(
        "disable_auto_update_to_minor",
        policy == DisableAutoUpdate::Minor
            && (target.major != native.major || target.minor != native.minor),
        policy_refusal(
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
        policy_refusal(
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
            .about(&bundle.version, &report.version_build)
        );
        rule!(
            "disable_auto_update_to_metadata",
            minimum.is_some_and(|minimum| minimum.cmp_precedence(native) == Ordering::Greater),
            policy_refusal(
                "disable_auto_update_to_metadata",
                "Cannot upgrade version, min update version > current version",
            )
        );
    }
    rule!(
        "disable_auto_update_under_native",
        channel.disable_auto_update_under_native && target.cmp_precedence(native) == Ordering::Less,
        rules.blocked(
            "disable_auto_update_under_native",
            "Cannot revert under native version"
        )
    );
    rules.build_and_device(trace)
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
        assert_eq!(v("v1.2.3").as_deref(), Some("1.2.3"));
        for bad in ["", "abc", "1.2.3.4", "01.2.3", "1..2", "1.2.x"] {
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
