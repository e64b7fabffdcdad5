//! Per-client limits: failed authentications (so keys cannot be guessed), and optionally the
//! unauthenticated plugin endpoints (so one client cannot flood the registry). Both are kept in
//! memory with a bounded number of clients, on the injected clock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use crate::timefmt::{Micros, MICROS_PER_SECOND};

/// Clients tracked at most; beyond it, clients with nothing recent are forgotten first.
const MAX_CLIENTS: usize = 100_000;

/// At most `max` failures per client in any `window`: past that, every request of that client
/// is refused until its oldest failure leaves the window.
#[derive(Debug)]
pub struct FailureLimiter {
    max: usize,
    window: Micros,
    failures: Mutex<HashMap<IpAddr, VecDeque<Micros>>>,
}

impl FailureLimiter {
    pub fn new(max: usize, window: Micros) -> Self {
        Self {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait, when the client is over its limit.
    pub fn retry_after(&self, client: IpAddr, now: Micros) -> Option<u64> {
        if self.max == 0 {
            return None;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let recent = failures.get_mut(&client)?;
        while recent.front().is_some_and(|&at| at + self.window <= now) {
            recent.pop_front();
        }
        if recent.len() < self.max {
            return None;
        }
        let oldest = *recent.front()?;
        let wait = (oldest + self.window).saturating_sub(now);
        Some(wait.div_ceil(MICROS_PER_SECOND).max(1))
    }

    pub fn record_failure(&self, client: IpAddr, now: Micros) {
        if self.max == 0 {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_CLIENTS && !failures.contains_key(&client) {
            let window = self.window;
            failures.retain(|_, times| times.back().is_some_and(|&at| at + window > now));
            if failures.len() >= MAX_CLIENTS {
                return;
            }
        }
        let recent = failures.entry(client).or_default();
        recent.push_back(now);
        // Only the last `max` failures can matter.
        while recent.len() > self.max {
            recent.pop_front();
        }
    }
}

/// A token bucket per client: `per_minute` requests a minute, bursts up to the same number.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Micros)>>,
}

impl RateLimiter {
    /// `per_minute = 0` disables the limit.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `None` when the request may go on, else the seconds to wait.
    pub fn check(&self, client: IpAddr, now: Micros) -> Option<u64> {
        if self.per_minute == 0 {
            return None;
        }
        let capacity = f64::from(self.per_minute);
        let per_micro = capacity / 60_000_000.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            // Full buckets carry no information: forget them.
            buckets.retain(|_, (tokens, at)| {
                *tokens + (now.saturating_sub(*at) as f64) * per_micro < capacity
            });
        }
        let (tokens, at) = buckets.entry(client).or_insert((capacity, now));
        *tokens = (*tokens + (now.saturating_sub(*at) as f64) * per_micro).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            None
        } else {
            let wait = (1.0 - *tokens) / per_micro;
            Some(((wait / 1_000_000.0).ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60 * MICROS_PER_SECOND;

    #[test]
    fn twenty_failures_in_fifteen_minutes_block_until_the_window_passes() {
        let limiter = FailureLimiter::new(20, 15 * MINUTE);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..20 {
            assert_eq!(limiter.retry_after(ip, i * MINUTE / 2), None);
            limiter.record_failure(ip, i * MINUTE / 2);
        }
        // The 20th failure was at 9.5 minutes; the first at 0.
        assert_eq!(limiter.retry_after(ip, 10 * MINUTE), Some(5 * 60));
        assert_eq!(limiter.retry_after(other, 10 * MINUTE), None);
        // Once the first failure is 15 minutes old, one more try is allowed.
        assert_eq!(limiter.retry_after(ip, 15 * MINUTE + 1), None);
    }

    #[test]
    fn the_bucket_refills_at_its_rate() {
        let limiter = RateLimiter::new(60);
        let ip: IpAddr = "::1".parse().unwrap();
        for _ in 0..60 {
            assert_eq!(limiter.check(ip, 0), None);
        }
        assert_eq!(limiter.check(ip, 0), Some(1));
        assert_eq!(limiter.check(ip, MICROS_PER_SECOND), None);
        assert!(RateLimiter::new(0).check(ip, 0).is_none());
    }
}
