//! Serving: open the store, make sure a key exists, run until SIGINT/SIGTERM, flush, return.

use std::sync::Arc;

use actix_web::HttpServer;

use crate::auth;
use crate::background::Background;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Durability, Engine};
use crate::create_app;
use crate::state::AppState;
use crate::store::postgres::{PostgresOptions, PostgresStore};
use crate::store::sled::{SledOptions, SledReopen, SledStore};
use crate::store::{Store, StoreError, StoreHandle};
use crate::{supervise, sweep, tls};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the store in {path}: {source}")]
    Open { path: String, source: StoreError },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
}

/// How the configuration asks the sled store to be opened.
fn sled_options(config: &Config) -> SledOptions {
    SledOptions {
        cache_bytes: config.storage.cache.0,
        flush_every_ms: Some((config.storage.flush_every.micros() / 1000).max(1)),
        durable: config.storage.durability == Durability::Flush,
        min_free_bytes: config.storage.min_free.0,
        accept_lost_writes: false,
    }
}

/// Whether a store whose files lost their last writes (truncated) is opened, as `check --repair`
/// does to keep what they hold, or refused, as everything else does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostWrites {
    Refuse,
    Accept,
}

/// Opens the store the configuration names: the sled store of `data_dir`, or the PostgreSQL
/// database (its schema migrated first).
pub fn open_store(config: &Config, lost_writes: LostWrites) -> Result<Arc<dyn Store>, ServeError> {
    match config.storage.engine {
        Engine::Sled => Ok(open_sled(config, lost_writes)?),
        Engine::Postgres => {
            let options = PostgresOptions {
                url: config.storage.postgres.url.clone(),
                pool_size: config.storage.postgres.pool_size,
            };
            Ok(
                PostgresStore::open(&options).map_err(|source| ServeError::Open {
                    path: "the PostgreSQL database (storage.postgres.url)".into(),
                    source,
                })?,
            )
        }
    }
}

/// Opens the sled store of `data_dir` (creating the directory), whatever `storage.engine` says.
pub fn open_sled(config: &Config, lost_writes: LostWrites) -> Result<Arc<SledStore>, ServeError> {
    let dir = &config.storage.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| ServeError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let options = SledOptions {
        accept_lost_writes: lost_writes == LostWrites::Accept,
        ..sled_options(config)
    };
    // Damaged files can make sled panic while it reads them: the error says so in one line,
    // without the panic's own report. This runs before any other thread of the server.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| SledStore::open_files(dir, &options));
    std::panic::set_hook(report);
    // Past sled's own open (which says damaged files itself), a panic may be a bug as well as
    // damage: the line says what it was, and does not tell the operator to throw the files away.
    let opened = opened.unwrap_or_else(|panic| {
        Err(StoreError::Damaged(format!(
            "opening the store failed ({}): its files may be damaged; run `check`",
            crate::store::sled::panic_reason(panic.as_ref())
        )))
    });
    // Under the usual hook again: finishing a deletion can take a while, and a panic in it
    // (or on any other thread meanwhile) must be reported.
    let finished = opened.and_then(|store| store.finish_deletions().map(|()| store));
    finished.map_err(|source| ServeError::Open {
        path: dir.display().to_string(),
        source,
    })
}

/// HTTPS, when the configuration asks for it: the certificates (from files, or the ACME
/// account's, served at once if kept), and the tasks that keep them current.
fn start_tls(config: &Config, port: u16) -> Result<Option<(tls::Https, Background)>, ServeError> {
    if !config.serves_https() {
        return Ok(None);
    }
    let https = tls::Https {
        port,
        tokens: Arc::new(tls::acme::Http01Tokens::default()),
        certificates: Arc::new(tls::Certificates::default()),
    };
    let task = if config.server.tls.is_set() {
        let loaded = tls::files::load(&config.server.tls).map_err(ServeError::Tls)?;
        https.certificates.install(loaded);
        tls::files::watch(config.server.tls.clone(), https.certificates.clone())
    } else {
        let acme = tls::acme::Acme::new(
            config.server.acme.clone(),
            &config.storage.data_dir,
            https.certificates.clone(),
            https.tokens.clone(),
        );
        if !acme.load_kept() {
            log::info!(
                "acme: no certificate yet for {}: HTTPS handshakes fail until one is obtained",
                config.server.acme.domains.join(", ")
            );
        }
        acme.spawn()
    };
    Ok(Some((https, task)))
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
    let store: Arc<dyn Store> = open_store(&config, LostWrites::Refuse)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if let Some(secret) = auth::bootstrap(store.as_ref(), &config.auth.admin_key, clock.now())? {
        // Printed once, on standard error, never logged.
        eprintln!(
            "device-registry: created an admin API key (mode \"all\"); it is shown only this once:"
        );
        eprintln!("  {secret}");
    }
    for source in store.interrupted_imports()? {
        log::warn!(
            "the import of {source} was interrupted: its last devices may lack their overrides \
             until it is imported again (see `device-registry check`)"
        );
    }
    // sled may need its files opened again after a fault; PostgreSQL's pool reconnects by
    // itself.
    let store = Arc::new(match config.storage.engine {
        Engine::Sled => StoreHandle::reopening(
            store,
            SledReopen {
                path: config.storage.data_dir.clone(),
                options: sled_options(&config),
            },
        ),
        Engine::Postgres => StoreHandle::fixed(store),
    });
    let supervisor = supervise::spawn(store.clone());
    let bound = |address: &str| {
        std::net::TcpListener::bind(address).map_err(|source| ServeError::Bind {
            address: address.to_owned(),
            source,
        })
    };
    let listener = bound(&config.server.bind.0)?;
    let redirect = match config.server.redirect_http.as_str() {
        "" => None,
        address => Some(bound(address)?),
    };
    let mut state = AppState::new(store.clone(), clock.clone(), &config);
    let (certificates_task, certificates) = match start_tls(&config, listener.local_addr()?.port())?
    {
        Some((https, task)) => {
            state.https = Some(https.clone());
            (Some(task), Some(https.certificates))
        }
        None => (None, None),
    };
    let guards = crate::guard::spawn(store.clone(), clock.clone(), state.metrics.clone());
    let sweep = sweep::spawn(
        store.clone(),
        clock,
        state.metrics.clone(),
        sweep::Retention {
            device_ttl: config.retention.device_ttl.micros(),
            audit_ttl: config.retention.audit_ttl.micros(),
        },
        config.retention.sweep_interval.to_std(),
    );
    let max_body = state.max_body;
    let server = HttpServer::new(move || {
        create_app(state.clone()).app_data(actix_web::web::PayloadConfig::new(max_body))
    })
    .shutdown_timeout(30);
    let server = match certificates {
        Some(certificates) => {
            let acme = !config.server.acme.domains.is_empty();
            let rustls = tls::server_config(certificates, acme)
                .map_err(|error| ServeError::Tls(error.to_string()))?;
            server.listen_rustls_0_23(listener, rustls)?
        }
        None => server.listen(listener)?,
    };
    let server = match redirect {
        Some(redirect) => server.listen(redirect)?,
        None => server,
    };
    let server = server.max_connections(config.server.max_connections.max(1));
    let server = match config.server.workers {
        0 => server,
        workers => server.workers(workers),
    };
    for (addr, scheme) in server.addrs_with_scheme() {
        log::info!("listening on {scheme}://{addr}");
    }
    if config.storage.durability == Durability::Periodic {
        log::info!(
            "durability: periodic (flushed every {:?})",
            config.storage.flush_every.to_std()
        );
    }
    // actix stops accepting on SIGINT/SIGTERM and drains in-flight requests before this returns.
    let served = server.run().await;
    log::info!("shutting down: stopping the sweep, flushing the store");
    sweep.stop().await;
    guards.stop().await;
    supervisor.stop().await;
    if let Some(task) = certificates_task {
        task.stop().await;
    }
    served?;
    store.current()?.flush()?;
    Ok(())
}
