//! Progressive rollouts as the registry keeps them: a channel's rollout and its guard, a
//! device's decision, and a change of a rollout as the audit log records it.

use serde::{Deserialize, Serialize};

use crate::timefmt::Micros;

/// A progressive rollout on a channel (issue "Progressive rollouts"): `version` goes to the
/// share `percentage_bps` (basis points, 0-10,000) of the channel's devices, decided per device
/// and kept with it ([`RolloutDecision`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// Numbers the rollouts of the channel: decisions taken for another id no longer count
    /// (a new rollout bundle starts a new rollout, as Capgo's `rollout_id` does).
    pub id: u64,
    pub version: String,
    pub percentage_bps: u16,
    /// A paused rollout selects no device anew; devices already on its bundle keep it.
    pub paused: bool,
    /// When it started: its guard counts what devices reported about its bundle since then
    /// (the counters are daily: the start day's counts at the start are the baseline).
    pub started_at: Micros,
    /// Attempts (installs and failures) and failures of its bundle already counted on its start
    /// day when it started.
    pub baseline: (u64, u64),
    pub guard: Option<RolloutGuard>,
    /// When its guard last acted (its cooldown runs from there).
    pub guard_triggered_at: Option<Micros>,
}

/// What a rollout's guard does when the failure rate of its bundle's installs crosses a
/// threshold (Capgo's auto-pause): the rate's lower confidence bound (Wilson score), after a
/// minimum of attempts and failures, once per cooldown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutGuard {
    pub threshold_bps: u16,
    /// The confidence of the bound, in basis points (9500: 95%).
    pub confidence_bps: u16,
    pub min_attempts: u64,
    pub min_failures: u64,
    pub action: GuardAction,
    pub cooldown: Micros,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardAction {
    /// Pause the rollout: no device is selected anew.
    Pause,
    /// End it: every device goes back to the channel's bundle.
    Rollback,
    /// Only say so: a line in `/metrics` and the audit log.
    Notify,
}

impl GuardAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardAction::Pause => "pause",
            GuardAction::Rollback => "rollback",
            GuardAction::Notify => "notify",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pause" => Some(Self::Pause),
            "rollback" => Some(Self::Rollback),
            "notify" => Some(Self::Notify),
            _ => None,
        }
    }
}

/// What `/updates` decided for a device in a channel's rollout, kept with the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutDecision {
    pub channel: String,
    /// The channel's numeric id: a channel deleted and created again under the same name
    /// starts its rollouts from 1 again, and its decisions must not be taken for the new ones.
    pub channel_id: u64,
    pub rollout_id: u64,
    pub version: String,
    pub selected: bool,
    /// The share in force when it was decided: widening re-rolls only the devices not selected,
    /// with the probability that brings the share from this one to the new one.
    pub percentage_bps: u16,
}

/// A change of a channel's rollout, by hand or by its guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutAudit {
    pub channel: String,
    pub before: Option<Rollout>,
    pub after: Option<Rollout>,
    /// Why, when the guard made it.
    pub reason: Option<String>,
}
