//! Watching the store: a probe every second, and an engine that broke on an I/O error (sled
//! after a full disk) opened again once it can be (see [`crate::store::handle`]), so that the
//! server recovers by itself when the fault passes. Every change of state is logged; failures
//! loudly.

use std::sync::Arc;
use std::time::Duration;

use crate::background::Background;
use crate::store::handle::Supervision;
use crate::store::StoreHandle;

/// How often the store is probed.
pub const EVERY: Duration = Duration::from_secs(1);

pub fn spawn(store: Arc<StoreHandle>) -> Background {
    Background::spawn(move |mut stopped| async move {
        let mut last = Supervision::Healthy;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stopped.changed() => return,
            }
            let now = store.supervise_off_workers().await;
            report(&last, &now);
            last = now;
        }
    })
}

/// One log line per change of state (a store failing the same way every second says it once).
fn report(last: &Supervision, now: &Supervision) {
    if now == last {
        return;
    }
    match now {
        Supervision::Healthy => log::info!("the store serves again"),
        Supervision::Failing(why) => log::error!("the store is failing: {why}"),
        Supervision::Reopened(why) => {
            log::warn!("the store failed ({why}); it was opened again and serves")
        }
        Supervision::ReopenFailed(why) => log::error!(
            "the store failed and could not be opened again: {why}; every request answers 503 \
             until it can"
        ),
    }
}
