//! Group commit: a management write is acknowledged only once it is on disk, and writers that
//! arrive while a flush is running share the next one instead of queueing a flush each.
//!
//! [`GroupCommit`] shares flushes. Each writer takes a ticket after its write. A flush started
//! after a ticket was taken covers that ticket's write. One writer at a time leads: it flushes
//! everything ticketed so far and wakes the others; a writer whose ticket the finished flush
//! covers returns at once, the rest elect the next leader.
//!
//! [`BatchWriter`] also shares transactions: a sled transaction has a cost of its own beyond its
//! writes, and holds a process-wide lock that stops every read (bench/RESULTS.md), so the writes
//! that queue up while one batch is being applied go into the next batch's single transaction,
//! and request handlers wait for them without blocking a worker. [`OverrideWriter`] does it for links and unlinks (the
//! busiest durable writes, flushed before they are answered), [`CheckInWriter`] for check-ins
//! that change a device.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::store::{BulkOutcome, CheckIn, OverrideWrite, Store, StoreError, StoreResult, Upsert};

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

/// A batch stops growing at this many devices, so that one bulk request of 1000 devices still
/// shares its transaction with a few single links and no transaction grows without bound.
const BATCH_DEVICES: usize = 1024;

/// A write that a [`BatchWriter`] applies together with the others queued with it.
pub trait BatchedWrite: Send + Sized + 'static {
    type Outcome: Send + 'static;
    /// The writer thread's name, also in its errors.
    const WRITER: &'static str;
    /// Devices the write touches: what counts against a batch's bound.
    fn devices(&self) -> usize;
    /// Applies a batch in one transaction: one outcome per write, in order.
    fn apply(store: &dyn Store, batch: &[Self]) -> StoreResult<Vec<Self::Outcome>>;
}

impl BatchedWrite for OverrideWrite {
    type Outcome = BulkOutcome;
    const WRITER: &'static str = "override-writer";

    fn devices(&self) -> usize {
        self.device_ids.len()
    }

    fn apply(store: &dyn Store, batch: &[Self]) -> StoreResult<Vec<BulkOutcome>> {
        store.write_overrides(batch)
    }
}

impl BatchedWrite for CheckIn {
    type Outcome = Upsert;
    const WRITER: &'static str = "check-in-writer";

    fn devices(&self) -> usize {
        1
    }

    fn apply(store: &dyn Store, batch: &[Self]) -> StoreResult<Vec<Upsert>> {
        store.write_check_ins(batch)
    }
}

/// Links and unlinks, batched across requests.
pub type OverrideWriter = BatchWriter<OverrideWrite>;
/// Check-ins that change a device (those `Store::settle_check_ins` left open), batched across
/// requests.
pub type CheckInWriter = BatchWriter<CheckIn>;

struct Queued<W: BatchedWrite> {
    write: W,
    answer: oneshot::Sender<StoreResult<W::Outcome>>,
}

/// Applies the writes of concurrent requests in shared transactions, from one thread, and
/// answers each request once its write is applied and (with `durable`) on disk.
pub struct BatchWriter<W: BatchedWrite> {
    queue: Option<mpsc::Sender<Queued<W>>>,
    thread: Option<JoinHandle<()>>,
    totals: Arc<WriterTotals>,
}

#[derive(Debug, Default)]
struct WriterTotals {
    writes: AtomicU64,
    batches: AtomicU64,
}

impl<W: BatchedWrite> BatchWriter<W> {
    /// Starts the writing thread. With `durable`, each batch is flushed through `group` (shared
    /// with the other durable writes) before any of its requests is answered.
    pub fn start(store: Arc<dyn Store>, group: Arc<GroupCommit>, durable: bool) -> Self {
        let (queue, queued) = mpsc::channel::<Queued<W>>();
        let totals = Arc::new(WriterTotals::default());
        let thread_totals = totals.clone();
        let thread = std::thread::Builder::new()
            .name(W::WRITER.into())
            .spawn(move || {
                // Ends when the writer is dropped: the queue closes once drained.
                while let Ok(first) = queued.recv() {
                    let mut devices = first.write.devices();
                    let mut batch = vec![first];
                    while devices < BATCH_DEVICES {
                        match queued.try_recv() {
                            Ok(next) => {
                                devices += next.write.devices();
                                batch.push(next);
                            }
                            Err(_) => break,
                        }
                    }
                    thread_totals
                        .writes
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    thread_totals.batches.fetch_add(1, Ordering::Relaxed);
                    apply_batch(store.as_ref(), &group, durable, batch);
                }
            })
            .expect("spawning a writer thread");
        Self {
            queue: Some(queue),
            thread: Some(thread),
            totals,
        }
    }

    /// Queues the write and waits for its outcome, without blocking the caller's thread.
    pub async fn write(&self, write: W) -> StoreResult<W::Outcome> {
        let outcome = self.queue_write(write)?;
        outcome.await.map_err(|_| self.stopped())?
    }

    /// Queues the writes in order, then waits for all their outcomes: they may share a batch.
    pub async fn write_all(&self, writes: Vec<W>) -> StoreResult<Vec<W::Outcome>> {
        let queued = writes
            .into_iter()
            .map(|write| self.queue_write(write))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut outcomes = Vec::with_capacity(queued.len());
        for outcome in queued {
            outcomes.push(outcome.await.map_err(|_| self.stopped())??);
        }
        Ok(outcomes)
    }

    fn queue_write(&self, write: W) -> StoreResult<oneshot::Receiver<StoreResult<W::Outcome>>> {
        let (answer, outcome) = oneshot::channel();
        self.queue
            .as_ref()
            .ok_or_else(|| self.stopped())?
            .send(Queued { write, answer })
            .map_err(|_| self.stopped())?;
        Ok(outcome)
    }

    fn stopped(&self) -> StoreError {
        StoreError::Engine(format!("the {} thread has stopped", W::WRITER))
    }

    /// (writes, batches) so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.totals.writes.load(Ordering::Relaxed),
            self.totals.batches.load(Ordering::Relaxed),
        )
    }
}

impl<W: BatchedWrite> Drop for BatchWriter<W> {
    /// Closes the queue and waits for the thread, so that the store it holds is released when
    /// the writer is (a restart in the same process reopens the same files).
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One transaction for the whole batch, one flush, then every answer. A failure fails every
/// write of the batch, and a panic in the store is answered as an error instead of taking the
/// thread down with the requests still waiting.
fn apply_batch<W: BatchedWrite>(
    store: &dyn Store,
    group: &GroupCommit,
    durable: bool,
    batch: Vec<Queued<W>>,
) {
    let (writes, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|queued| (queued.write, queued.answer))
        .unzip();
    let applied = catch_unwind(AssertUnwindSafe(|| {
        let outcomes = W::apply(store, &writes)?;
        if durable {
            group.commit(|| store.flush())?;
        }
        Ok(outcomes)
    }))
    .unwrap_or_else(|_| {
        Err(StoreError::Engine(format!(
            "{}: writes panicked",
            W::WRITER
        )))
    });
    match applied {
        Ok(outcomes) => {
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(Ok(outcome));
            }
        }
        Err(error) => {
            log::error!("{}: writes failed: {error}", W::WRITER);
            for answer in answers {
                let _ = answer.send(Err(error.clone()));
            }
        }
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

    fn sled_store(dir: &std::path::Path) -> Arc<dyn Store> {
        Arc::new(crate::store::sled::fixtures::open_with_beta(dir))
    }

    fn link(app_id: &str, device_id: String, channel: &str) -> OverrideWrite {
        OverrideWrite {
            app_id: app_id.into(),
            device_ids: vec![device_id],
            action: crate::store::OverrideAction::Link {
                channel: Some(channel.into()),
                version: None,
            },
            change: crate::store::Change {
                actor: crate::model::Actor::Admin,
                at: 5,
            },
        }
    }

    #[test]
    fn concurrent_override_writes_share_transactions_and_each_gets_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let store = sled_store(dir.path());
        let group = Arc::new(GroupCommit::new());
        let writer = OverrideWriter::start(store.clone(), group.clone(), true);
        // Every write is queued before the first answer can arrive (join_all polls them all).
        let writes = (0..200).map(|i| match i % 10 {
            3 => link("app", format!("d{i}"), "gone"),
            7 => link("missing", format!("d{i}"), "beta"),
            _ => link("app", format!("d{i}"), "beta"),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let outcomes = runtime.block_on(futures_util::future::join_all(
            writes.map(|write| writer.write(write)),
        ));
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let outcome = outcome.unwrap();
            let linked = store.overrides("app", &format!("d{i}")).unwrap();
            match i % 10 {
                3 => assert_eq!(outcome, BulkOutcome::ChannelNotFound),
                7 => assert_eq!(outcome, BulkOutcome::AppNotFound),
                _ => {
                    assert!(matches!(outcome, BulkOutcome::Applied(ref c) if c.len() == 1));
                    assert_eq!(linked.channel.as_deref(), Some("beta"));
                    continue;
                }
            }
            assert!(linked.is_empty(), "refused write {i} changed the store");
        }
        let (writes, batches) = writer.totals();
        assert_eq!(writes, 200);
        assert!(batches < writes, "no transaction was shared");
        // Every batch was flushed before its answers.
        assert_eq!(group.totals().0, batches);
    }

    #[test]
    fn concurrent_check_ins_share_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = sled_store(dir.path());
        let writer = CheckInWriter::start(store.clone(), Arc::new(GroupCommit::new()), false);
        let missing = |i: usize| i % 7 == 3;
        let check_in = |i: usize| CheckIn {
            app_id: if missing(i) { "missing" } else { "app" }.into(),
            device_id: format!("d{}", i % 50),
            report: crate::model::DeviceReport {
                version_name: Some(format!("1.0.{i}")),
                ..crate::store::sled::fixtures::report()
            },
            now: 1_000 + i as u64,
            touch_interval: 1,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let outcomes = runtime.block_on(futures_util::future::join_all(
            (0..200).map(|i| writer.write(check_in(i))),
        ));
        // In queue order: a device's first check-in creates it, the later ones rewrite it.
        let writes_of = |d: usize| (0..200).filter(move |i| i % 50 == d && !missing(*i));
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let expected = if missing(i) {
                Upsert::AppNotFound
            } else if writes_of(i % 50).next() == Some(i) {
                Upsert::Created
            } else {
                Upsert::Updated
            };
            assert_eq!(outcome.unwrap(), expected, "check-in {i}");
        }
        // Each device holds its last check-in.
        for d in 0..50usize {
            let last = writes_of(d).next_back().unwrap();
            let device = store.device("app", &format!("d{d}")).unwrap().unwrap();
            assert_eq!(device.device.updated_at, 1_000 + last as u64);
        }
        let (writes, batches) = writer.totals();
        assert_eq!(writes, 200);
        assert!(batches < writes, "no transaction was shared");
        assert!(store.check(false).unwrap().is_clean());
    }

    #[test]
    fn dropping_the_writer_releases_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = sled_store(dir.path());
        let writer = OverrideWriter::start(store.clone(), Arc::new(GroupCommit::new()), false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(writer.write(link("app", "d".into(), "beta")))
            .unwrap();
        assert_eq!(Arc::strong_count(&store), 2);
        drop(writer);
        assert_eq!(Arc::strong_count(&store), 1);
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
