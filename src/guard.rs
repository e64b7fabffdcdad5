//! Rollouts that stop themselves, as Capgo's auto-pause (`evaluateAutoPausePolicy`,
//! `cron_rollout_auto_pause.ts`) decides it: every minute, for each rollout with a guard that is
//! running (not paused, a share above 0), the failures and attempts (installs plus failures) that
//! production devices reported about its bundle since it started; when the failure rate's lower
//! confidence bound (two-sided Wilson score) reaches the threshold, after the minimum attempts
//! and failures, and outside the cooldown, the guard pauses the rollout, rolls it back, or only
//! notifies (a `/metrics` line and an audit entry). What it does is in the audit log, by
//! `guard`, with the figures that made it act.

use std::sync::Arc;
use std::time::Duration;

use crate::background::Background;
use crate::clock::Clock;
use crate::health::{day_of, rate_bps, BundleHealth, Tally};
use crate::metrics::Metrics;
use crate::model::{Actor, ChannelPatch, GuardAction, Rollout, RolloutGuard};
use crate::store::{off_workers, Change, Store, StoreHandle, StoreResult, UpsertChannel};
use crate::timefmt::Micros;

/// How often guards look.
pub const EVERY: Duration = Duration::from_secs(60);

/// The z of a two-sided `confidence` (0.95: 1.959964), by Acklam's approximation of the
/// inverse normal distribution (relative error under 1.2e-9), as Capgo computes it.
pub fn z_score(confidence: f64) -> f64 {
    inverse_normal(1.0 - (1.0 - confidence.clamp(0.0001, 0.9999)) / 2.0)
}

fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const LOW: f64 = 0.02425;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// The lower bound of the failure rate's two-sided Wilson score interval, in basis points.
pub fn lower_bound_bps(failures: u64, attempts: u64, confidence: f64) -> u64 {
    if attempts == 0 {
        return 0;
    }
    let (n, z) = (attempts as f64, z_score(confidence));
    let p = (failures as f64 / n).min(1.0);
    let denominator = 1.0 + z * z / n;
    let centre = p + z * z / (2.0 * n);
    let margin = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt();
    (((centre - margin) / denominator) * 10_000.0)
        .floor()
        .clamp(0.0, 10_000.0) as u64
}

/// What a guard makes of a rollout's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Cooldown,
    InsufficientAttempts,
    InsufficientFailures,
    BelowThreshold,
    /// It acts; the reason, with the figures.
    Trigger(String),
}

pub fn judge(
    guard: &RolloutGuard,
    rollout: &Rollout,
    channel: &str,
    tally: &Tally,
    now: Micros,
) -> Verdict {
    // What was counted before the rollout started (on its start day) is not its own.
    let (baseline_attempts, baseline_failures) = rollout.baseline;
    if let Some(at) = rollout.guard_triggered_at {
        if guard.cooldown > 0 && at.saturating_add(guard.cooldown) > now {
            return Verdict::Cooldown;
        }
    }
    let failures = tally.failed().saturating_sub(baseline_failures);
    let attempts = tally.attempts().saturating_sub(baseline_attempts);
    if attempts < guard.min_attempts {
        return Verdict::InsufficientAttempts;
    }
    if failures < guard.min_failures {
        return Verdict::InsufficientFailures;
    }
    let confidence = f64::from(guard.confidence_bps) / 10_000.0;
    let bound = lower_bound_bps(failures, attempts, confidence);
    if failures == 0 || bound < u64::from(guard.threshold_bps) {
        return Verdict::BelowThreshold;
    }
    Verdict::Trigger(format!(
        "guard {} for channel {channel} rollout of {}: failure rate {} bps, lower bound {bound} \
         bps at {confidence} confidence, threshold {} bps, {failures} failures of {attempts} \
         attempts",
        guard.action.as_str(),
        rollout.version,
        rate_bps(failures, attempts),
        guard.threshold_bps,
    ))
}

/// A guard that acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggered {
    pub app_id: String,
    pub channel: String,
    pub action: GuardAction,
    pub reason: String,
}

/// One look at every guarded rollout running; blocking. A rollout changed meanwhile (another
/// id, or gone) is left alone until the next look.
pub fn run_once(store: &dyn Store, now: Micros) -> StoreResult<Vec<Triggered>> {
    let mut triggered = Vec::new();
    let today = day_of(now);
    for app in store.apps()? {
        for channel in store.channels(&app.app_id)? {
            let Some(rollout) = &channel.rollout else {
                continue;
            };
            let Some(guard) = &rollout.guard else {
                continue;
            };
            if rollout.paused || rollout.percentage_bps == 0 {
                continue;
            }
            let first = day_of(rollout.started_at);
            let counts = store.version_events(&app.app_id, &rollout.version, first, today)?;
            let tally = BundleHealth::from_counts(first, today.max(first), &counts).totals;
            let Verdict::Trigger(reason) = judge(guard, rollout, &channel.name, &tally, now) else {
                continue;
            };
            let patch = ChannelPatch {
                if_rollout: Some(rollout.id),
                guard_triggered: Some((now, reason.clone())),
                rollout_paused: (guard.action == GuardAction::Pause).then_some(true),
                rollout_version: (guard.action == GuardAction::Rollback).then_some(None),
                ..ChannelPatch::default()
            };
            let change = Change {
                actor: Actor::Guard,
                at: now,
            };
            if let UpsertChannel::Updated(_) =
                store.upsert_channel(&app.app_id, &channel.name, &patch, change)?
            {
                triggered.push(Triggered {
                    app_id: app.app_id.clone(),
                    channel: channel.name.clone(),
                    action: guard.action,
                    reason,
                });
            }
        }
    }
    Ok(triggered)
}

/// Runs the guards every [`EVERY`] for as long as the server runs.
pub fn spawn(store: Arc<StoreHandle>, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Background {
    Background::spawn(move |mut stopped| async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
            let now = clock.now();
            match off_workers(&store, move |store| run_once(store, now)).await {
                Ok(triggered) => {
                    for event in triggered {
                        log::warn!("rollout {}: {}", event.app_id, event.reason);
                        metrics.record_guard(&event.app_id, &event.channel, event.action);
                    }
                }
                Err(error) => log::error!("rollout guards could not look: {error}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_bound_is_capgos() {
        assert_eq!(lower_bound_bps(10, 100, 0.95), 552);
        assert_eq!(lower_bound_bps(5, 20, 0.90), 1273);
        assert_eq!(lower_bound_bps(1, 1, 0.95), 2065);
        assert_eq!(lower_bound_bps(0, 0, 0.95), 0);
        assert!((z_score(0.95) - 1.959964).abs() < 1e-5);
        assert!((z_score(0.90) - 1.644854).abs() < 1e-5);
        assert!((z_score(0.999) - 3.290527).abs() < 1e-5);
    }
}
