//! Per-client limits: failed authentications (so keys cannot be guessed), and optionally the
//! unauthenticated plugin endpoints (so one client cannot flood the registry). Both are kept in
//! memory with a bounded number of clients, on the injected clock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use crate::timefmt::{Micros, MICROS_PER_SECOND};

/// Clients tracked at most by each limiter.
const MAX_CLIENTS: usize = 100_000;

/// Per-client state for at most `capacity` clients. When the table is full, the client seen
/// least recently is forgotten to make room, so that a newcomer is always recorded (and limited)
/// and the table never grows past its capacity; each call costs O(1) amortised, whatever the
/// number of clients (no scan of the table under the lock).
#[derive(Debug)]
struct ClientTable<V> {
    capacity: usize,
    /// Each client's state and the stamp of its last use.
    entries: HashMap<IpAddr, (V, u64)>,
    /// Uses, oldest first: (client, stamp). A use is stale once the client is used again or
    /// forgotten; stale uses are skipped, and dropped whenever they outnumber the live ones.
    uses: VecDeque<(IpAddr, u64)>,
    stamp: u64,
}

impl<V> ClientTable<V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            uses: VecDeque::new(),
            stamp: 0,
        }
    }

    /// The client's state, made with `make` (after forgetting the least recently seen client,
    /// when full) if it has none; marks the client as just seen.
    fn touch(&mut self, client: IpAddr, make: impl FnOnce() -> V) -> &mut V {
        if !self.entries.contains_key(&client) && self.entries.len() >= self.capacity {
            self.forget_oldest();
        }
        self.stamp += 1;
        let stamp = self.stamp;
        // The client's state carries its newest use before stale uses are dropped, so that the
        // use just recorded counts as live.
        self.entries
            .entry(client)
            .or_insert_with(|| (make(), stamp))
            .1 = stamp;
        self.uses.push_back((client, stamp));
        if self.uses.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.uses
                .retain(|(client, stamp)| entries.get(client).is_some_and(|e| e.1 == *stamp));
        }
        &mut self
            .entries
            .get_mut(&client)
            .expect("the client was just recorded")
            .0
    }

    fn get_mut(&mut self, client: &IpAddr) -> Option<&mut V> {
        self.entries.get_mut(client).map(|entry| &mut entry.0)
    }

    fn forget_oldest(&mut self) {
        while let Some((client, stamp)) = self.uses.pop_front() {
            if self.entries.get(&client).is_some_and(|e| e.1 == stamp) {
                self.entries.remove(&client);
                return;
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// At most `max` failures per client in any `window`: past that, every request of that client
/// is refused until its oldest failure leaves the window.
#[derive(Debug)]
pub struct FailureLimiter {
    max: usize,
    window: Micros,
    failures: Mutex<ClientTable<VecDeque<Micros>>>,
}

impl FailureLimiter {
    pub fn new(max: usize, window: Micros) -> Self {
        Self::with_capacity(max, window, MAX_CLIENTS)
    }

    fn with_capacity(max: usize, window: Micros, clients: usize) -> Self {
        Self {
            max,
            window,
            failures: Mutex::new(ClientTable::new(clients)),
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
        let recent = failures.touch(client, VecDeque::new);
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
    buckets: Mutex<ClientTable<(f64, Micros)>>,
}

impl RateLimiter {
    /// `per_minute = 0` disables the limit.
    pub fn new(per_minute: u32) -> Self {
        Self::with_capacity(per_minute, MAX_CLIENTS)
    }

    fn with_capacity(per_minute: u32, clients: usize) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(ClientTable::new(clients)),
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
        let (tokens, at) = buckets.touch(client, || (capacity, now));
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

    fn client(i: u32) -> IpAddr {
        IpAddr::from(i.to_be_bytes())
    }

    #[test]
    fn a_full_table_forgets_the_least_recently_seen_and_keeps_limiting_newcomers() {
        let limiter = RateLimiter::with_capacity(2, 1_000);
        // A thousand clients each spend their burst, then a thousand more arrive.
        for i in 0..2_000 {
            assert_eq!(limiter.check(client(i), 0), None);
            assert_eq!(limiter.check(client(i), 0), None);
            // The newcomer is recorded and limited, however full the table.
            assert!(limiter.check(client(i), 0).is_some(), "client {i}");
        }
        let buckets = limiter.buckets.lock().unwrap();
        assert_eq!(buckets.len(), 1_000);
        // Uses are compacted: the queue stays within twice the capacity.
        assert!(buckets.uses.len() <= 2_000, "{}", buckets.uses.len());
        // The most recent thousand are kept, the oldest forgotten.
        assert!(buckets.entries.contains_key(&client(1_999)));
        assert!(!buckets.entries.contains_key(&client(0)));
    }

    #[test]
    fn a_client_touched_when_the_uses_are_compacted_can_still_be_forgotten() {
        let mut table = ClientTable::new(2);
        // The fifth use of `1` compacts the queue of uses (more than twice the capacity).
        for _ in 0..5 {
            table.touch(client(1), || ());
        }
        table.touch(client(2), || ());
        // Full: the least recently seen, `1`, makes room for `3`.
        table.touch(client(3), || ());
        assert!(!table.entries.contains_key(&client(1)));
        assert!(table.entries.contains_key(&client(2)));
        assert!(table.entries.contains_key(&client(3)));
    }

    #[test]
    fn a_client_in_use_is_not_the_one_forgotten() {
        let limiter = FailureLimiter::with_capacity(1, 15 * MINUTE, 3);
        limiter.record_failure(client(1), 0);
        limiter.record_failure(client(2), 1);
        limiter.record_failure(client(3), 2);
        // Client 1 fails again: now client 2 is the least recently seen.
        limiter.record_failure(client(1), 3);
        limiter.record_failure(client(4), 4);
        assert!(limiter.retry_after(client(1), 5).is_some());
        assert!(limiter.retry_after(client(2), 5).is_none());
        assert!(limiter.retry_after(client(4), 5).is_some());
    }
}
