//! Group commit: a management write is acknowledged only once it is on disk, and writers that
//! arrive while a flush is running share the next one instead of queueing a flush each.
//!
//! Each writer takes a ticket after its write. A flush started after a ticket was taken covers
//! that ticket's write. One writer at a time leads: it flushes everything ticketed so far and
//! wakes the others; a writer whose ticket the finished flush covers returns at once, the rest
//! elect the next leader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::store::StoreResult;

#[derive(Debug, Default)]
struct Tickets {
    issued: u64,
    flushed: u64,
    flushing: bool,
}

#[derive(Debug, Default)]
pub struct GroupCommit {
    tickets: Mutex<Tickets>,
    done: Condvar,
    /// Flushes actually run, for metrics: fewer than commits when writers share.
    flushes: AtomicU64,
    commits: AtomicU64,
}

impl GroupCommit {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tickets> {
        self.tickets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until everything written before this call is durable. `flush` makes every write
    /// so far durable; it runs on one thread at a time.
    pub fn commit(&self, flush: impl Fn() -> StoreResult<()>) -> StoreResult<()> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        let mut tickets = self.lock();
        tickets.issued += 1;
        let mine = tickets.issued;
        loop {
            if tickets.flushed >= mine {
                return Ok(());
            }
            if tickets.flushing {
                tickets = self.done.wait(tickets).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            tickets.flushing = true;
            let covered = tickets.issued;
            drop(tickets);
            let result = flush();
            self.flushes.fetch_add(1, Ordering::Relaxed);
            tickets = self.lock();
            tickets.flushing = false;
            if result.is_ok() {
                tickets.flushed = tickets.flushed.max(covered);
            }
            self.done.notify_all();
            // A failed flush fails its leader; the others elect a new leader and try again.
            result?;
        }
    }

    /// (commits, flushes) so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.flushes.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::store::StoreError;

    #[test]
    fn a_lone_writer_flushes_once() {
        let group = GroupCommit::new();
        let flushes = AtomicUsize::new(0);
        group
            .commit(|| {
                flushes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn concurrent_writers_share_flushes_and_all_are_covered() {
        let group = Arc::new(GroupCommit::new());
        // The "disk": a write counter and the count that the last flush made durable.
        let written = Arc::new(AtomicU64::new(0));
        let durable = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (group, written, durable) = (group.clone(), written.clone(), durable.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group
                            .commit(|| {
                                let now = written.load(Ordering::SeqCst);
                                std::thread::sleep(Duration::from_micros(200));
                                durable.fetch_max(now, Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                        // Acknowledged: my write must be durable.
                        assert!(durable.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let (commits, flushes) = group.totals();
        assert_eq!(commits, 800);
        assert!(flushes < commits, "no flush was shared: {flushes} flushes");
    }

    #[test]
    fn a_failed_flush_is_reported_and_the_next_writer_retries() {
        let group = GroupCommit::new();
        let fail = std::sync::atomic::AtomicBool::new(true);
        let result = group.commit(|| {
            if fail.swap(false, Ordering::SeqCst) {
                Err(StoreError::Engine("disk full".into()))
            } else {
                Ok(())
            }
        });
        assert!(result.is_err());
        assert!(group.commit(|| Ok(())).is_ok());
    }
}
