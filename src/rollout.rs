//! A device's decision in a channel's rollout, as Capgo's `resolveRolloutDecision`
//! (`plugin_runtime/utils/rollout.ts`) takes it, with the decision kept with the device instead
//! of in a CDN cache that expires:
//!
//! | step | when | selected | stored |
//! |---|---|---|---|
//! | `already_on_rollout` | the device runs the rollout's bundle, and no decision refused it | yes | at the larger of its share and the current one |
//! | `paused` | the rollout is paused | no | unchanged |
//! | `percentage_zero` | the share is 0 | no | unchanged |
//! | `kept` | selected at a share at most the current one | yes | at the current share |
//! | `narrowed` | selected at a larger share | kept with probability new/old | re-rolled |
//! | `not_widened` | not selected at a share at least the current one | no | unchanged |
//! | `widened` | not selected at a smaller share | with probability (new-old)/(10,000-old) | re-rolled |
//! | `rolled` | no decision for this rollout yet | with probability share/10,000 | rolled |
//!
//! So the selected share follows the rollout's: widening keeps every selected device and adds
//! the right share of the others; narrowing keeps only selected ones; a pause selects no one new.

use crate::model::{Rollout, RolloutDecision};

pub const MAX_BPS: u16 = 10_000;

/// Uniform draws in `0..10_000`: the system's randomness, or a seeded source in tests.
pub trait Dice: Send + Sync {
    fn roll_bps(&self) -> u16;
}

/// Draws from the thread's random generator.
pub struct SystemDice;

impl Dice for SystemDice {
    fn roll_bps(&self) -> u16 {
        use rand::Rng;
        rand::thread_rng().gen_range(0..MAX_BPS)
    }
}

/// What a check-in decided, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub selected: bool,
    /// The decision in force after this check-in (the stored one when nothing changed).
    pub decision: Option<RolloutDecision>,
    pub reason: &'static str,
}

/// Decides for a device that reached `channel`, which carries `rollout`. `stored` is the
/// device's kept decision (of any channel or rollout: only one for this rollout counts);
/// `current_version` the bundle it runs.
pub fn decide(
    rollout: &Rollout,
    (channel, channel_id): (&str, u64),
    stored: Option<&RolloutDecision>,
    current_version: Option<&str>,
    dice: &dyn Dice,
) -> Outcome {
    let cached = stored.filter(|decision| {
        decision.channel_id == channel_id
            && decision.channel == channel
            && decision.rollout_id == rollout.id
            && decision.version == rollout.version
    });
    let share = rollout.percentage_bps.min(MAX_BPS);
    let decision = |selected: bool, percentage_bps: u16| RolloutDecision {
        channel: channel.to_owned(),
        channel_id,
        rollout_id: rollout.id,
        version: rollout.version.clone(),
        selected,
        percentage_bps,
    };
    // A decision of another rollout (or channel) is not kept: it would show and count for
    // something the device no longer takes part in.
    let kept = |selected: bool, reason| Outcome {
        selected,
        decision: cached.cloned(),
        reason,
    };
    let stored_as = |selected: bool, percentage_bps: u16, reason| Outcome {
        selected,
        decision: Some(decision(selected, percentage_bps)),
        reason,
    };
    let on_rollout = current_version == Some(rollout.version.as_str());
    if on_rollout && cached.is_none_or(|c| c.selected) {
        let at = cached.map_or(share, |c| c.percentage_bps.max(share));
        return stored_as(true, at, "already_on_rollout");
    }
    if rollout.paused {
        return kept(false, "paused");
    }
    if share == 0 {
        return kept(false, "percentage_zero");
    }
    match cached {
        Some(c) if c.selected && share == c.percentage_bps => kept(true, "kept"),
        // Still selected at a wider share: kept at that share, so that narrowing later keeps
        // the right part of everyone selected at it (Capgo keeps the share it was first
        // selected at, and narrowing then keeps too many: 16% after 10% -> 25% -> 10%).
        Some(c) if c.selected && share > c.percentage_bps => stored_as(true, share, "kept"),
        Some(c) if c.selected => {
            let keep = u32::from(dice.roll_bps()) < ceil_ratio(share, c.percentage_bps);
            stored_as(keep, share, "narrowed")
        }
        Some(c) if share <= c.percentage_bps => kept(false, "not_widened"),
        Some(c) => {
            let join = u32::from(dice.roll_bps()) < widening_bps(c.percentage_bps, share);
            stored_as(join, share, "widened")
        }
        None => stored_as(dice.roll_bps() < share, share, "rolled"),
    }
}

/// `ceil(new * 10,000 / old)`: the chance, in basis points, that a device selected at `old`
/// stays selected at `new`.
fn ceil_ratio(new: u16, old: u16) -> u32 {
    (u32::from(new) * u32::from(MAX_BPS)).div_ceil(u32::from(old.max(1)))
}

/// The chance, in basis points, that a device not selected at `old` is at `new`:
/// (new - old) / (1 - old), so that the selected share becomes `new`.
fn widening_bps(old: u16, new: u16) -> u32 {
    if new <= old || old >= MAX_BPS {
        return 0;
    }
    (u32::from(new - old) * u32::from(MAX_BPS)).div_ceil(u32::from(MAX_BPS - old))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::sync::Mutex;

    /// A seeded source: the same draws on every run.
    struct Seeded(Mutex<rand::rngs::StdRng>);

    impl Seeded {
        fn new(seed: u64) -> Self {
            Self(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
        }
    }

    impl Dice for Seeded {
        fn roll_bps(&self) -> u16 {
            self.0.lock().unwrap().gen_range(0..MAX_BPS)
        }
    }

    fn rollout(percentage_bps: u16) -> Rollout {
        Rollout {
            id: 1,
            version: "2.0.0".into(),
            percentage_bps,
            paused: false,
            started_at: 0,
            baseline: (0, 0),
            guard: None,
            guard_triggered_at: None,
        }
    }

    /// 10,000 devices on 1.0.0 checking in once at `rollout`, from `decisions`; answers the
    /// share selected, in basis points.
    fn check_in_all(
        decisions: &mut [Option<RolloutDecision>],
        rollout: &Rollout,
        dice: &dyn Dice,
    ) -> u32 {
        let mut selected = 0;
        for decision in decisions.iter_mut() {
            let outcome = decide(
                rollout,
                ("production", 1),
                decision.as_ref(),
                Some("1.0.0"),
                dice,
            );
            selected += u32::from(outcome.selected);
            *decision = outcome.decision;
        }
        selected
    }

    #[test]
    fn shares_follow_the_rollout_as_it_widens_narrows_and_pauses() {
        let dice = Seeded::new(7);
        let mut decisions = vec![None; 10_000];
        let at_10 = check_in_all(&mut decisions, &rollout(1_000), &dice);
        assert!((900..=1_100).contains(&at_10), "{at_10} of 10,000 at 10%");
        let selected_at_10: Vec<bool> = decisions
            .iter()
            .map(|d| d.as_ref().unwrap().selected)
            .collect();
        // Sticky: the same rollout again changes nobody.
        assert_eq!(check_in_all(&mut decisions, &rollout(1_000), &dice), at_10);

        // Widening keeps every device selected at 10% and reaches 25%.
        let at_25 = check_in_all(&mut decisions, &rollout(2_500), &dice);
        assert!((2_400..=2_600).contains(&at_25), "{at_25} of 10,000 at 25%");
        for (before, after) in selected_at_10.iter().zip(&decisions) {
            assert!(!before || after.as_ref().unwrap().selected);
        }

        // Narrowing back keeps only devices that were selected.
        let selected_at_25: Vec<bool> = decisions
            .iter()
            .map(|d| d.as_ref().unwrap().selected)
            .collect();
        let back_to_10 = check_in_all(&mut decisions, &rollout(1_000), &dice);
        assert!((900..=1_100).contains(&back_to_10), "{back_to_10} narrowed");
        for (before, after) in selected_at_25.iter().zip(&decisions) {
            assert!(*before || !after.as_ref().unwrap().selected);
        }

        // Paused, even widened: nobody new.
        let paused = Rollout {
            paused: true,
            ..rollout(5_000)
        };
        let mut fresh = vec![None; 1_000];
        assert_eq!(check_in_all(&mut fresh, &paused, &dice), 0);
        assert!(fresh.iter().all(Option::is_none));
    }

    #[test]
    fn a_device_on_the_rollout_bundle_stays_on_it_unless_refused() {
        let dice = Seeded::new(1);
        let paused = Rollout {
            paused: true,
            ..rollout(0)
        };
        let outcome = decide(&paused, ("production", 1), None, Some("2.0.0"), &dice);
        assert_eq!(
            (outcome.selected, outcome.reason),
            (true, "already_on_rollout")
        );
        // A kept refusal (narrowed out) is not overridden by running the bundle.
        let refused = RolloutDecision {
            channel: "production".into(),
            channel_id: 1,
            rollout_id: 1,
            version: "2.0.0".into(),
            selected: false,
            percentage_bps: 1_000,
        };
        let outcome = decide(
            &rollout(500),
            ("production", 1),
            Some(&refused),
            Some("2.0.0"),
            &dice,
        );
        assert_eq!((outcome.selected, outcome.reason), (false, "not_widened"));
        // A decision of an earlier rollout (or another channel) does not count.
        let earlier = RolloutDecision {
            rollout_id: 0,
            selected: true,
            ..refused
        };
        let outcome = decide(
            &rollout(0),
            ("production", 1),
            Some(&earlier),
            Some("1.0.0"),
            &dice,
        );
        assert_eq!(
            (outcome.selected, outcome.reason),
            (false, "percentage_zero")
        );
    }

    #[test]
    fn the_widening_chance_brings_the_share_to_the_new_one() {
        assert_eq!(widening_bps(2_000, 5_000), 3_750);
        assert_eq!(widening_bps(0, 1_000), 1_000);
        assert_eq!(widening_bps(5_000, 5_000), 0);
        assert_eq!(widening_bps(10_000, 10_000), 0);
        assert_eq!(ceil_ratio(1_000, 2_500), 4_000);
    }
}
