//! The source of "now". Production reads the wall clock; tests inject a [`ManualClock`] so that
//! `touch_interval`, expiry and retention are tested without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::timefmt::{system_now, Micros};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Micros;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Micros {
        system_now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start: Micros) -> Self {
        Self(AtomicU64::new(start))
    }

    pub fn set(&self, now: Micros) {
        self.0.store(now, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Micros) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Micros {
        self.0.load(Ordering::SeqCst)
    }
}
