//! The health of a bundle over a window of days, from the counters `/stats` keeps
//! ([`crate::store::VersionHealth`]): downloads, installs, failures by action, and the failure
//! rate as Capgo's auto-pause reads it (failures over installs plus failures).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::timefmt::{format_micros, Micros};

pub const DAY_MICROS: u64 = 86_400_000_000;

/// The day (since 1970) of an instant: what the counters are kept by.
pub fn day_of(at: Micros) -> u32 {
    (at / DAY_MICROS) as u32
}

/// `failures` out of `attempts`, in basis points (0 without attempts).
pub fn rate_bps(failures: u64, attempts: u64) -> u64 {
    (failures * 10_000).checked_div(attempts).unwrap_or(0)
}

/// What devices reported about a bundle on one day (or over the window, for the totals).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub downloads: u64,
    pub installs: u64,
    /// By action (`download_fail`, `set_fail`, ...).
    pub failures: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, action: &str, count: u64) {
        match action {
            "set" => self.installs += count,
            "download_complete" => self.downloads += count,
            failure => *self.failures.entry(failure.to_owned()).or_default() += count,
        }
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Installs and failures: what a failure rate is out of.
    pub fn attempts(&self) -> u64 {
        self.installs + self.failed()
    }

    /// Failures out of attempts, in basis points (0 without attempts).
    pub fn failure_rate_bps(&self) -> u64 {
        rate_bps(self.failed(), self.attempts())
    }
}

/// A bundle's days, oldest first (every day of the window, those without events too), and
/// their totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleHealth {
    pub days: Vec<(u32, Tally)>,
    pub totals: Tally,
}

impl BundleHealth {
    /// From the counters `(day, action, count)` of `first_day..=last_day`.
    pub fn from_counts(first_day: u32, last_day: u32, counts: &[(u32, String, u64)]) -> Self {
        let mut days: Vec<(u32, Tally)> = (first_day..=last_day)
            .map(|day| (day, Tally::default()))
            .collect();
        let mut totals = Tally::default();
        for (day, action, count) in counts {
            if let Some((_, tally)) = day
                .checked_sub(first_day)
                .and_then(|at| days.get_mut(at as usize))
            {
                tally.add(action, *count);
                totals.add(action, *count);
            }
        }
        Self { days, totals }
    }
}

/// `YYYY-MM-DD` of a day since 1970.
pub fn date(day: u32) -> String {
    let mut text = format_micros(u64::from(day) * DAY_MICROS);
    text.truncate(10);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_make_days_totals_and_a_failure_rate() {
        let counts = vec![
            (19_725, "set".to_owned(), 90),
            (19_725, "download_complete".to_owned(), 100),
            (19_726, "download_fail".to_owned(), 6),
            (19_726, "set_fail".to_owned(), 4),
            (19_999, "set".to_owned(), 1),
        ];
        let health = BundleHealth::from_counts(19_724, 19_726, &counts);
        assert_eq!(health.days.len(), 3);
        assert_eq!(health.days[0], (19_724, Tally::default()));
        assert_eq!(health.days[1].1.installs, 90);
        assert_eq!(health.totals.failed(), 10);
        assert_eq!(health.totals.attempts(), 100);
        assert_eq!(health.totals.failure_rate_bps(), 1_000);
        assert_eq!(Tally::default().failure_rate_bps(), 0);
        assert_eq!(date(19_724), "2024-01-02");
    }
}
