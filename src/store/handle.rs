//! The store the server runs on, and its replacement when the engine cannot go on without being
//! opened again.
//!
//! An engine may keep failing after the fault that broke it has passed: sled, once a write to
//! its log fails (a full disk), answers that error to every later write for as long as the
//! process keeps it open. The handle lets a supervisor close such a store and open its files
//! again once the engine says that may work, without a restart; callers take the current store
//! for each call and never keep it.

use std::sync::{Arc, RwLock};

use super::{Store, StoreError, StoreResult};

/// How an engine's files are opened again.
pub trait Reopen: Send + Sync + 'static {
    /// Why opening again would fail now (a disk still full), so that the store in use, which
    /// may still answer reads, is not given up for nothing.
    fn ready(&self) -> StoreResult<()>;
    /// Opens the files, once the store in use is closed.
    fn open(&self) -> StoreResult<Arc<dyn Store>>;
}

/// How long a reopen waits for calls still running on the old store (a later round tries
/// again).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct StoreHandle {
    /// `None` between closing a broken store and opening it again (or after that failed).
    current: RwLock<Option<Arc<dyn Store>>>,
    reopen: Option<Box<dyn Reopen>>,
}

/// What one round of [`StoreHandle::supervise`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supervision {
    Healthy,
    /// Failing, for a reason that reopening does not cure (or that it cannot cure yet).
    Failing(String),
    /// Failing, then closed and opened again: it serves again.
    Reopened(String),
    /// Closed, and opening it again failed: every call answers unavailable until a later round
    /// opens it.
    ReopenFailed(String),
}

impl StoreHandle {
    /// A store that is never reopened (tests, tools).
    pub fn fixed(store: Arc<dyn Store>) -> Self {
        Self {
            current: RwLock::new(Some(store)),
            reopen: None,
        }
    }

    pub fn reopening(store: Arc<dyn Store>, reopen: impl Reopen) -> Self {
        Self {
            current: RwLock::new(Some(store)),
            reopen: Some(Box::new(reopen)),
        }
    }

    /// The store to make one call on.
    pub fn current(&self) -> StoreResult<Arc<dyn Store>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is being opened again".into()))
    }

    /// Probes the store, and opens it again when it fails with an I/O error and the engine says
    /// opening may work. Blocking: run it off the request workers.
    pub fn supervise(&self) -> Supervision {
        self.supervise_with(|store| store.health())
    }

    /// [`StoreHandle::supervise`] on the blocking pool, where every store call that may wait
    /// runs (see [`super::off_workers`]).
    pub async fn supervise_off_workers(self: &Arc<Self>) -> Supervision {
        let handle = self.clone();
        tokio::task::spawn_blocking(move || handle.supervise())
            .await
            .unwrap_or_else(|panic| Supervision::Failing(format!("the probe panicked: {panic}")))
    }

    /// [`StoreHandle::supervise`] with the probe given (tests inject failures through it).
    fn supervise_with(&self, probe: impl Fn(&dyn Store) -> StoreResult<()>) -> Supervision {
        let failure = match self.current() {
            Ok(store) => match probe(store.as_ref()) {
                Ok(()) => return Supervision::Healthy,
                Err(error @ StoreError::Unavailable(_)) => error,
                Err(error) => return Supervision::Failing(error.to_string()),
            },
            Err(error) => error,
        };
        let Some(reopen) = &self.reopen else {
            return Supervision::Failing(failure.to_string());
        };
        if let Err(why) = reopen.ready() {
            return Supervision::Failing(format!("{failure}; not opened again yet: {why}"));
        }
        // Closed before it is opened again: the engine's files take one owner at a time. The
        // handle is let go at once (calls meanwhile answer unavailable, they never wait on
        // it); calls still running on the old store finish on it, and the files are opened
        // again once the last of them has let it go.
        let closing_started = std::time::Instant::now();
        let old = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(old) = old {
            let closing = Arc::downgrade(&old);
            drop(old);
            let deadline = std::time::Instant::now() + CLOSE_WAIT;
            while closing.strong_count() > 0 {
                if std::time::Instant::now() > deadline {
                    return Supervision::ReopenFailed(format!(
                        "{failure}; then: calls still hold the old store after {}s",
                        CLOSE_WAIT.as_secs()
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let opening_started = std::time::Instant::now();
        let opened = reopen.open();
        // Requests answer 503 for this long: worth a line when an operator asks why.
        log::info!(
            "reopening the store: calls on the old one let it go in {} ms, opening took {} ms",
            (opening_started - closing_started).as_millis(),
            opening_started.elapsed().as_millis()
        );
        match opened {
            Ok(store) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(store);
                Supervision::Reopened(failure.to_string())
            }
            Err(error) => Supervision::ReopenFailed(format!("{failure}; then: {error}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Opens the store of one directory; `ready` answers what the test sets.
    struct Opener {
        ready: AtomicBool,
        opened: AtomicUsize,
        dir: tempfile::TempDir,
    }

    impl Reopen for Arc<Opener> {
        fn ready(&self) -> StoreResult<()> {
            if self.ready.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(StoreError::Full("no room".into()))
            }
        }

        fn open(&self) -> StoreResult<Arc<dyn Store>> {
            self.opened.fetch_add(1, Ordering::SeqCst);
            Ok(fixtures::open(self.dir.path()))
        }
    }

    /// A handle on a real store, and its opener.
    fn handle(ready: bool) -> (StoreHandle, Arc<Opener>) {
        let opener = Arc::new(Opener {
            ready: AtomicBool::new(ready),
            opened: AtomicUsize::new(0),
            dir: tempfile::tempdir().unwrap(),
        });
        let store = fixtures::open(opener.dir.path());
        (StoreHandle::reopening(store, opener.clone()), opener)
    }

    /// A probe for which the first store (the one never reopened) fails with `error`.
    fn first_fails(
        opener: &Arc<Opener>,
        error: StoreError,
    ) -> impl Fn(&dyn Store) -> StoreResult<()> {
        let opener = opener.clone();
        move |store: &dyn Store| {
            if opener.opened.load(Ordering::SeqCst) == 0 {
                Err(error.clone())
            } else {
                store.health()
            }
        }
    }

    #[test]
    fn a_healthy_store_is_left_alone() {
        let (handle, opener) = handle(true);
        assert_eq!(handle.supervise(), Supervision::Healthy);
        assert_eq!(opener.opened.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_io_failure_reopens_once_the_engine_is_ready() {
        let (handle, opener) = handle(false);
        handle
            .current()
            .unwrap()
            .create_app("com.example.app", "app", 1)
            .unwrap();
        handle.current().unwrap().flush().unwrap();
        let probe = first_fails(&opener, StoreError::Unavailable("No space left".into()));
        assert_eq!(
            handle.supervise_with(&probe),
            Supervision::Failing(
                "storage unavailable: No space left; not opened again yet: storage full: no room"
                    .into()
            )
        );
        // Still the old store, which may answer reads.
        assert!(handle
            .current()
            .unwrap()
            .app_exists("com.example.app")
            .unwrap());
        assert_eq!(opener.opened.load(Ordering::SeqCst), 0);

        opener.ready.store(true, Ordering::SeqCst);
        assert_eq!(
            handle.supervise_with(&probe),
            Supervision::Reopened("storage unavailable: No space left".into())
        );
        assert_eq!(opener.opened.load(Ordering::SeqCst), 1);
        assert_eq!(handle.supervise_with(&probe), Supervision::Healthy);
        assert!(handle
            .current()
            .unwrap()
            .app_exists("com.example.app")
            .unwrap());
    }

    #[test]
    fn other_failures_are_not_cured_by_reopening() {
        let (handle, opener) = handle(true);
        let probe = first_fails(&opener, StoreError::Damaged("bad".into()));
        assert_eq!(
            handle.supervise_with(&probe),
            Supervision::Failing("bad".into())
        );
        assert_eq!(opener.opened.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_fixed_store_is_never_reopened() {
        let (_, opener) = handle(true);
        let dir = tempfile::tempdir().unwrap();
        let fixed = StoreHandle::fixed(fixtures::open(dir.path()));
        let probe = first_fails(&opener, StoreError::Unavailable("io".into()));
        assert_eq!(
            fixed.supervise_with(&probe),
            Supervision::Failing("storage unavailable: io".into())
        );
        assert!(fixed.current().is_ok());
    }
}
