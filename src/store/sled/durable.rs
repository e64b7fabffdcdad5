//! How the sled engine keeps its promises about writes. Group commit: a durable write is
//! acknowledged only once it is on disk, and writers that arrive while a flush is running share
//! the next one instead of queueing a flush each.
//!
//! [`GroupCommit`] shares flushes. Each writer takes a ticket after its write. A flush started
//! after a ticket was taken covers that ticket's write. One writer at a time leads: it flushes
//! everything ticketed so far and wakes the others; a writer whose ticket the finished flush
//! covers returns at once, the rest elect the next leader.
//!
//! [`BatchWriter`] also shares atomic writes: each one has a cost of its own beyond its changes
//! (its intent is written and removed: `atomic.rs`), and writers take turns, so the writes that
//! queue up while one batch is being applied go into the next batch's single atomic write, and
//! callers wait for them without blocking a thread. The engine has two: one for changes of
//! overrides (the busiest durable writes, flushed before they are answered), one for check-ins
//! that change a device. Their threads hold the store weakly, so that it is released when its
//! last user lets it go.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Condvar, MutexGuard, Weak};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::*;

#[derive(Debug, Default)]
struct Tickets {
    issued: u64,
    flushed: u64,
    flushing: bool,
}

#[derive(Debug, Default)]
pub(super) struct GroupCommit {
    tickets: Mutex<Tickets>,
    done: Condvar,
    /// Flushes actually run, for metrics: fewer than commits when writers share.
    flushes: AtomicU64,
    commits: AtomicU64,
}

impl GroupCommit {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tickets> {
        self.tickets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until everything written before this call is durable. `flush` makes every write
    /// so far durable; it runs on one thread at a time.
    pub(super) fn commit(&self, flush: impl Fn() -> StoreResult<()>) -> StoreResult<()> {
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
    pub(super) fn totals(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.flushes.load(Ordering::Relaxed),
        )
    }
}

/// A batch stops growing at this many devices, so that one bulk request of 1000 devices still
/// shares its atomic write with a few single links and no write grows without bound.
const BATCH_DEVICES: usize = 1024;

/// A write that a [`BatchWriter`] applies together with the others queued with it.
pub(super) trait BatchedWrite: Send + Sized + 'static {
    type Outcome: Send + 'static;
    /// The writer thread's name, also in its errors.
    const WRITER: &'static str;
    /// Devices the write touches: what counts against a batch's bound.
    fn devices(&self) -> usize;
    /// Applies a batch in one atomic write: one outcome per write, in order.
    fn apply(store: &SledStore, batch: &[Self]) -> StoreResult<Vec<Self::Outcome>>;
}

impl BatchedWrite for OverrideWrite {
    type Outcome = BulkOutcome;
    const WRITER: &'static str = "override-writer";

    fn devices(&self) -> usize {
        self.device_ids.len()
    }

    fn apply(store: &SledStore, batch: &[Self]) -> StoreResult<Vec<BulkOutcome>> {
        store.write_overrides(batch)
    }
}

impl BatchedWrite for CheckIn {
    type Outcome = Upsert;
    const WRITER: &'static str = "check-in-writer";

    fn devices(&self) -> usize {
        1
    }

    fn apply(store: &SledStore, batch: &[Self]) -> StoreResult<Vec<Upsert>> {
        store.write_check_ins(batch)
    }
}

/// Links and unlinks, batched across requests.
pub(super) type OverrideWriter = BatchWriter<OverrideWrite>;
/// Check-ins that change a device (those `SledStore::settle_check_ins` left open), batched
/// across requests.
pub(super) type CheckInWriter = BatchWriter<CheckIn>;

struct Queued<W: BatchedWrite> {
    write: W,
    answer: oneshot::Sender<StoreResult<W::Outcome>>,
}

/// Applies the writes of concurrent requests in shared atomic writes, from one thread, and
/// answers each request once its write is applied and (with `durable`) on disk.
pub(super) struct BatchWriter<W: BatchedWrite> {
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
    /// Starts the writing thread. With `durable`, each batch is made durable (the store's
    /// group commit, shared with its other durable writes) before any of its writes is answered.
    pub(super) fn start(store: Weak<SledStore>, durable: bool) -> Self {
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
                    apply_batch(&store, durable, batch);
                }
            })
            .expect("spawning a writer thread");
        Self {
            queue: Some(queue),
            thread: Some(thread),
            totals,
        }
    }

    /// Queues the writes in order, and answers a future of their outcomes (they may share a
    /// batch) that holds nothing of the writer: it outlives the call.
    pub(super) fn queue_all(&self, writes: Vec<W>) -> StoreFuture<Vec<W::Outcome>> {
        let queued = writes
            .into_iter()
            .map(|write| self.queue_write(write))
            .collect::<StoreResult<Vec<_>>>();
        Box::pin(async move {
            let mut outcomes = Vec::new();
            for outcome in queued? {
                outcomes.push(outcome.await.map_err(|_| stopped::<W>())??);
            }
            Ok(outcomes)
        })
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
        stopped::<W>()
    }

    /// (writes, batches) so far.
    pub(super) fn totals(&self) -> (u64, u64) {
        (
            self.totals.writes.load(Ordering::Relaxed),
            self.totals.batches.load(Ordering::Relaxed),
        )
    }
}

fn stopped<W: BatchedWrite>() -> StoreError {
    StoreError::Engine(format!("the {} thread has stopped", W::WRITER))
}

impl<W: BatchedWrite> Drop for BatchWriter<W> {
    /// Closes the queue and waits for the thread, so that the store it holds is released when
    /// the writer is (a restart in the same process reopens the same files).
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // The store's last user may be the writer thread itself, at the end of a batch: it
            // is then on its way out, and cannot wait for itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// One atomic write for the whole batch, one flush, then every answer. A failure fails every
/// write of the batch, and a panic in the store is answered as an error instead of taking the
/// thread down with the requests still waiting. The store is let go before anyone is answered:
/// a caller that drops the store once answered is then its last user, and the store closes on
/// the caller's thread (so that reopening it at once finds its files free).
fn apply_batch<W: BatchedWrite>(store: &Weak<SledStore>, durable: bool, batch: Vec<Queued<W>>) {
    let (writes, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|queued| (queued.write, queued.answer))
        .unzip();
    let applied = match store.upgrade() {
        Some(store) => catch_unwind(AssertUnwindSafe(|| {
            let outcomes = store.noting_faults(W::apply(&store, &writes))?;
            if durable {
                store.commit()?;
            }
            Ok(outcomes)
        }))
        .unwrap_or_else(|_| {
            Err(StoreError::Engine(format!(
                "{}: writes panicked",
                W::WRITER
            )))
        }),
        None => Err(stopped::<W>()),
    };
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
    use std::time::Duration;

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

    fn durable_store(dir: &std::path::Path) -> Arc<SledStore> {
        durable_store_at(dir, true)
    }

    /// A durable store in `dir`; with `fresh`, its app `app` and channel `beta` are created.
    fn durable_store_at(dir: &std::path::Path, fresh: bool) -> Arc<SledStore> {
        let options = SledOptions {
            cache_bytes: 8 << 20,
            flush_every_ms: None,
            durable: true,
            min_free_bytes: 0,
            accept_lost_writes: false,
        };
        let store = SledStore::open(dir, &options).unwrap();
        if fresh {
            store.create_app("app", "app", 1).unwrap();
            store
                .upsert_channel(
                    "app",
                    "beta",
                    &ChannelPatch::default(),
                    crate::store::Change {
                        actor: Actor::Admin,
                        at: 1,
                    },
                )
                .unwrap();
        }
        store
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

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn concurrent_override_writes_share_atomic_writes_and_each_gets_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let store = durable_store(dir.path());
        let commits_before = store.write_stats().commits;
        // Every write is queued before the first answer can arrive (they are queued as the
        // calls are made).
        let writes = (0..200).map(|i| match i % 10 {
            3 => link("app", format!("d{i}"), "gone"),
            7 => link("missing", format!("d{i}"), "beta"),
            _ => link("app", format!("d{i}"), "beta"),
        });
        let outcomes = runtime().block_on(futures_util::future::join_all(
            writes.map(|write| store.apply_overrides(write)),
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
        let stats = store.write_stats();
        assert_eq!(stats.override_writes, 200);
        assert!(
            stats.override_batches < stats.override_writes,
            "no atomic write was shared"
        );
        // Every batch was made durable before its answers.
        assert_eq!(stats.commits - commits_before, stats.override_batches);
    }

    #[test]
    fn concurrent_check_ins_share_atomic_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sled::fixtures::open_with_beta(dir.path());
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
            rollout: None,
        };
        let outcomes = runtime().block_on(futures_util::future::join_all(
            (0..200).map(|i| store.check_in(vec![check_in(i)])),
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
            assert_eq!(outcome.unwrap(), vec![expected], "check-in {i}");
        }
        // Each device holds its last check-in.
        for d in 0..50usize {
            let last = writes_of(d).next_back().unwrap();
            let device = store.device("app", &format!("d{d}")).unwrap().unwrap();
            assert_eq!(device.device.updated_at, 1_000 + last as u64);
        }
        // Those of an unknown app were answered from a read, without the writer.
        let stats = store.write_stats();
        let written = (0..200).filter(|i| !missing(*i)).count() as u64;
        assert_eq!(stats.check_in_writes, written);
        assert!(
            stats.check_in_batches < written,
            "no atomic write was shared"
        );
        assert!(store.check(false).unwrap().is_clean());
    }

    #[test]
    fn a_store_reopens_at_once_after_it_closes() {
        // sled lets its file lock go a moment after the last handle: reopening waits for it.
        let dir = tempfile::tempdir().unwrap();
        for round in 0..30 {
            let store = durable_store_at(dir.path(), round == 0);
            // A write to flush, as a server leaves behind.
            runtime()
                .block_on(store.apply_overrides(link("app", format!("d{round}"), "beta")))
                .unwrap();
            drop(store);
        }
    }

    #[test]
    fn the_store_closes_with_its_last_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = durable_store(dir.path());
        runtime()
            .block_on(store.apply_overrides(link("app", "d".into(), "beta")))
            .unwrap();
        // The writer threads hold the store only while they apply a batch.
        assert_eq!(Arc::strong_count(&store), 1);
        drop(store);
        // Its files are released: it opens again, with the write.
        let store = durable_store(dir.path());
        assert_eq!(
            store.overrides("app", "d").unwrap().channel.as_deref(),
            Some("beta")
        );
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
