//! Certificate files (`[server.tls]`): read at start, where a bad pair stops the server; then
//! read again on SIGHUP, and when they change on disk (checked every second, loaded once they
//! have stayed unchanged for one check, so that a cert written before its key is not read
//! half-replaced). A new pair that cannot be used keeps the certificate in use and logs why.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};

use super::{parse_pem, Certificates, Loaded};
use crate::background::Background;
use crate::config::TlsConfig;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_secs(1);

pub fn load(tls: &TlsConfig) -> Result<Loaded, String> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    parse_pem(&read(&tls.cert)?, &read(&tls.key)?)
        .map_err(|error| format!("{} with {}: {error}", tls.cert.display(), tls.key.display()))
}

/// What tells a file changed: its modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Watches the files and installs each new pair into `certificates`.
pub fn watch(tls: TlsConfig, certificates: Arc<Certificates>) -> Background {
    Background::spawn(move |mut stopped| async move {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(error) => {
                log::warn!("SIGHUP cannot be caught ({error}): certificate files are reloaded when they change only");
                None
            }
        };
        let stamps = |tls: &TlsConfig| (stamp(&tls.cert), stamp(&tls.key));
        let mut loaded = stamps(&tls);
        let mut last_seen = loaded;
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            let signalled = tokio::select! {
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(POLL) => false,
                _ = hangup => true,
            };
            let seen = stamps(&tls);
            let settled = seen == last_seen && seen != loaded;
            last_seen = seen;
            if !signalled && !settled {
                continue;
            }
            loaded = seen;
            let files = tls.clone();
            let reloaded = tokio::task::spawn_blocking(move || load(&files))
                .await
                .unwrap_or_else(|error| Err(format!("reading the files failed: {error}")));
            match reloaded {
                Ok(new) => {
                    log::info!(
                        "certificate reloaded from {}{}",
                        tls.cert.display(),
                        if signalled { " (SIGHUP)" } else { "" }
                    );
                    certificates.install(new);
                }
                Err(error) => {
                    log::error!(
                        "the certificate files cannot be used ({error}); the previous \
                         certificate is still served"
                    );
                    certificates.status.failed(error);
                }
            }
        }
    })
}
