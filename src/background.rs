//! Tasks that run beside the server for its whole life (the sweep, the store's supervisor) and
//! stop when it shuts down.

use std::future::Future;

use tokio::sync::watch;

/// A running task; [`Background::stop`] asks it to stop and waits until it has.
pub struct Background {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Starts `task` on the current runtime; it receives the signal to watch (`true`: stop).
    pub fn spawn<F, T>(task: T) -> Self
    where
        T: FnOnce(watch::Receiver<bool>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(task(stopped));
        Self { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
