//! The PostgreSQL engine: the same contract as the embedded one, over tables that several server
//! nodes share (the schema and its migrations are in `schema.rs`).
//!
//! How calls run: the engine owns one multi-threaded tokio runtime (two threads) where the
//! connection pool and its connections live. A synchronous call of the contract enters that
//! runtime and waits for its queries on the calling thread, which is a thread of the blocking
//! pool ([`super::off_workers`], [`super::read`]): this engine answers no read from memory, so
//! the handlers never call it on a request worker. The calls that return a future (check-ins,
//! changes of overrides) run on the engine's runtime and are awaited from the request.
//!
//! Consistency, without a process-local lock (nodes share nothing but the database):
//! - a device is one row, its indexes PostgreSQL's: a page never sees a record without them;
//! - check-ins compare and set the row's `revision` (no transaction, no lock held across round
//!   trips): a check-in that lost a race to another node is judged again against the winner;
//! - every other change of several rows (overrides with their audit entries, channels, erasure,
//!   the sweep's chunks) is one SERIALIZABLE transaction, retried when PostgreSQL reports a
//!   serialization failure or a deadlock;
//! - foreign keys refuse what the sled engine checks under its registry lock: an override or a
//!   channel naming a missing bundle or channel, a bundle deleted while in use, a device of a
//!   deleted app.
//!
//! Clocks: instants come from the calling node's clock, as on the sled engine (the API's
//! `updated_at` is the node's `now`). Nodes must keep their clocks synchronised (NTP): a node
//! behind by `d` writes devices that look `d` older (cursors stay exact: they are keyset
//! positions, never offsets; a device touched on a slow node may be written again sooner than
//! `touch_interval`).

/// Runs a block in a SERIALIZABLE transaction (see [`transaction!`]).
macro_rules! serializable {
    ($store:expr, |$tx:ident| $body:block) => {
        transaction!(
            $store,
            tokio_postgres::IsolationLevel::Serializable,
            |$tx| $body
        )
    };
}

/// Runs a block in a transaction of the given isolation bound to `$tx`, again while PostgreSQL
/// reports a serialization failure, a deadlock or a foreign key another node's change broke
/// meanwhile, up to `RETRIES` times (every body checks what it needs first, so that a retry
/// answers the refusal); the block answers a `TxResult`, the whole a `StoreResult`. A macro, not
/// a function taking a closure: the block borrows the caller's arguments freely.
macro_rules! transaction {
    ($store:expr, $isolation:expr, |$tx:ident| $body:block) => {{
        let mut client = $store.transaction_client().await?;
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            let $tx = client
                .build_transaction()
                .isolation_level($isolation)
                .start()
                .await
                .map_err($crate::store::postgres::sql_error)?;
            let outcome: $crate::store::postgres::TxResult<_> = async { $body }.await;
            let outcome = match outcome {
                Ok(value) => $tx
                    .commit()
                    .await
                    .map(|()| value)
                    .map_err($crate::store::postgres::TxError::from),
                Err(error) => {
                    // Said explicitly, so that the connection is clean for the next attempt.
                    let _ = $tx.rollback().await;
                    Err(error)
                }
            };
            match outcome {
                Ok(value) => {
                    $store.committed();
                    break Ok(value);
                }
                Err(error) if error.retryable() && attempt < $crate::store::postgres::RETRIES => {
                    // Spread the retries of nodes that collided.
                    let pause = rand::random::<u64>() % (attempt as u64 * 2 + 1);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(error) => break Err(error.into_store()),
            }
        }
    }};
}

mod api_keys;
mod audit;
mod backup;
mod devices;
mod list;
mod maintenance;
mod overrides;
mod registry;
mod retention;
pub use retention::SWEEP_LOCK;
pub mod schema;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::{StoreError, StoreFuture, StoreResult, WriteStats};
use crate::model::{DeviceReport, Overrides, Platform};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// A libpq connection string or URL (`postgres://user:pass@host:port/db?options=...`).
    pub url: String,
    /// Connections this node keeps at most.
    pub pool_size: usize,
}

/// The longest a statement may run, and wait for a lock (PostgreSQL's units).
const STATEMENT_TIMEOUT: &str = "30s";
const LOCK_TIMEOUT: &str = "10s";

/// Times a transaction is tried again after a serialization failure or a deadlock.
pub(crate) const RETRIES: usize = 20;

pub struct PostgresStore {
    pool: Pool,
    /// Itself, for futures that outlive a call (see `devices.rs`).
    this: std::sync::Weak<PostgresStore>,
    /// The last health probe and its result (probes write at most once a second).
    health: Mutex<Option<(Instant, StoreResult<()>)>>,
    /// Changes acknowledged as committed (each its own transaction, made durable by it).
    commits: AtomicU64,
    check_in_writes: AtomicU64,
    check_in_batches: AtomicU64,
    override_writes: AtomicU64,
    override_batches: AtomicU64,
}

/// The runtime of every PostgreSQL store of the process: its connections' tasks run there.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()
            .expect("the PostgreSQL engine's runtime")
    })
}

/// Waits for `work` on the calling thread, inside the engine's runtime (where the pool opens
/// connections and its timers run).
fn run<T>(work: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let _context = runtime().enter();
    futures_executor::block_on(work)
}

/// Runs `work` on the engine's runtime; the future resolves with its result.
fn spawn<T: Send + 'static>(
    work: impl Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreFuture<T> {
    let task = runtime().spawn(work);
    Box::pin(async move {
        task.await.unwrap_or_else(|error| {
            Err(StoreError::Engine(format!("a store call failed: {error}")))
        })
    })
}

/// What a PostgreSQL error means for the caller: the database out of reach or refusing for a
/// while is `Unavailable` (503, retried by clients); anything else is an engine error.
pub(crate) fn sql_error(error: tokio_postgres::Error) -> StoreError {
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection failed (closed, refused, timed out: it may come back),
        // or this program erred (a parameter or a column of the wrong type: a bug).
        let io = std::error::Error::source(&error)
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
        let text = format!("postgres: {error}");
        return if error.is_closed() || io || text.contains("error connecting") {
            StoreError::Unavailable(text)
        } else {
            StoreError::Engine(text)
        };
    };
    let text = match error.as_db_error() {
        Some(db) => format!("postgres: {} ({})", db.message(), code.code()),
        None => format!("postgres: {error}"),
    };
    if *code == SqlState::DISK_FULL {
        // Every write fails, not only new devices': said loudly, answered 503 (the database's
        // operator frees space; nothing here can).
        log::error!("{text}: the database's disk is full");
        StoreError::Unavailable(text)
    } else if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
    {
        StoreError::Conflict(text)
    } else if *code == SqlState::QUERY_CANCELED || *code == SqlState::LOCK_NOT_AVAILABLE {
        StoreError::Timeout(text)
    } else if code.code().starts_with("08")
        || code.code().starts_with("53")
        || code.code().starts_with("57P")
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
    {
        // Connection exceptions, insufficient resources, the server shutting down or in
        // recovery, a standby: all pass.
        StoreError::Unavailable(text)
    } else {
        StoreError::Engine(text)
    }
}

fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => sql_error(error),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("postgres: no connection could be had in time".into())
        }
        other => StoreError::Unavailable(format!("postgres: {other}")),
    }
}

/// A failure inside a transaction: the database's (retried when it is a serialization failure)
/// or the store's own (a record that does not decode).
pub(crate) enum TxError {
    Sql(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(error: tokio_postgres::Error) -> Self {
        TxError::Sql(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        TxError::Store(error)
    }
}

impl TxError {
    pub(crate) fn retryable(&self) -> bool {
        matches!(self, TxError::Sql(error) if matches!(
            error.code(),
            Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::FOREIGN_KEY_VIOLATION
        ))
    }

    pub(crate) fn into_store(self) -> StoreError {
        match self {
            TxError::Sql(error) => sql_error(error),
            TxError::Store(error) => error,
        }
    }
}

pub(crate) type TxResult<T> = Result<T, TxError>;

/// Statements prepared once per connection and kept (deadpool's statement cache), for the SQL
/// text of this engine, which is constant: sent as text, a statement is parsed and planned
/// again at every execution (the parser alone was a tenth of the database's CPU on
/// `/updates`).
pub(crate) trait Cached: deadpool_postgres::GenericClient + Sync {
    fn rows<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query(&statement, params).await
        }
    }

    fn row_opt<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, tokio_postgres::Error>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_opt(&statement, params).await
        }
    }

    fn run<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.execute(&statement, params).await
        }
    }
}

impl<T: deadpool_postgres::GenericClient + Sync> Cached for T {}

impl PostgresStore {
    /// Connects, applies the schema's migrations, and answers the store. Fails when the database
    /// cannot be reached now (the caller says so and exits: a node without its database serves
    /// nothing).
    pub fn open(options: &PostgresOptions) -> StoreResult<Arc<Self>> {
        let config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|error| StoreError::Damaged(format!("storage.postgres.url: {error}")))?;
        let mut config = config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // Bounds on every wait, so that a lock held too long or a network that drops packets
        // answers 503 in seconds rather than hanging requests (the URL's own options go first:
        // an operator's settings win, as PostgreSQL applies the last of each).
        // Generic plans for the prepared statements: every statement here is written for its
        // index, and PostgreSQL otherwise plans statements over arrays (check-ins) anew at each
        // execution (0.7 ms of planning for a 0.1 ms read: 78% of the database's CPU at 3k
        // check-ins/s, bench/RESULTS.md).
        let session = format!(
            "-c statement_timeout={STATEMENT_TIMEOUT} -c lock_timeout={LOCK_TIMEOUT} \
             -c idle_in_transaction_session_timeout=60s -c plan_cache_mode=force_generic_plan {}",
            config.get_options().unwrap_or_default()
        );
        config.options(session.trim());
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        config.tcp_user_timeout(Duration::from_secs(30));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _context = runtime().enter();
            Pool::builder(manager)
                .max_size(options.pool_size.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(Duration::from_secs(5)))
                .create_timeout(Some(Duration::from_secs(5)))
                .recycle_timeout(Some(Duration::from_secs(5)))
                .build()
                .map_err(|error| StoreError::Engine(format!("postgres pool: {error}")))?
        };
        let store = Arc::new_cyclic(|this| Self {
            pool,
            this: this.clone(),
            health: Mutex::new(None),
            commits: AtomicU64::new(0),
            check_in_writes: AtomicU64::new(0),
            check_in_batches: AtomicU64::new(0),
            override_writes: AtomicU64::new(0),
            override_batches: AtomicU64::new(0),
        });
        run(async {
            let mut client = store.client().await?;
            schema::migrate(&mut client).await
        })?;
        store.finish_deletions()?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// A connection for a transaction (see [`serializable!`]).
    pub(crate) async fn transaction_client(&self) -> StoreResult<Object> {
        self.client().await
    }

    /// Counts a durable change committed (for `/metrics`).
    pub(crate) fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn write_stats(&self) -> WriteStats {
        WriteStats {
            commits: self.commits.load(Ordering::Relaxed),
            flushes: self.commits.load(Ordering::Relaxed),
            override_writes: self.override_writes.load(Ordering::Relaxed),
            override_batches: self.override_batches.load(Ordering::Relaxed),
            check_in_writes: self.check_in_writes.load(Ordering::Relaxed),
            check_in_batches: self.check_in_batches.load(Ordering::Relaxed),
        }
    }
}

/// A `u64` of the API as PostgreSQL's `bigint` (values past `i64::MAX` are clamped: no instant
/// or id of the registry reaches them).
pub(crate) fn db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn api(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A JSON column read back as the type it was written from.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    value: serde_json::Value,
) -> StoreResult<T> {
    serde_json::from_value(value).map_err(|error| StoreError::Corrupt {
        tree: table,
        detail: error.to_string(),
    })
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

pub(crate) fn platform_of(text: &str) -> StoreResult<Platform> {
    Platform::parse(text).ok_or_else(|| StoreError::Corrupt {
        tree: "devices",
        detail: format!("unknown platform {text:?}"),
    })
}

/// The columns of `devices` a report is read from, in the order [`report_from`] reads them.
pub(crate) const REPORT_COLUMNS: &str = "custom_id, version_name, version_build, os_version, \
     plugin_version, platform, is_prod, is_emulator, default_channel, install_source, key_id";

/// A report from a row whose columns from `first` on are [`REPORT_COLUMNS`].
pub(crate) fn report_from(row: &Row, first: usize) -> StoreResult<DeviceReport> {
    Ok(DeviceReport {
        custom_id: row.get(first),
        version_name: row.get(first + 1),
        version_build: row.get(first + 2),
        os_version: row.get(first + 3),
        plugin_version: row.get(first + 4),
        platform: platform_of(row.get(first + 5))?,
        is_prod: row.get(first + 6),
        is_emulator: row.get(first + 7),
        default_channel: row.get(first + 8),
        install_source: row.get(first + 9),
        key_id: row.get(first + 10),
    })
}

/// Overrides from three columns (channel, version, set_at), absent when the row had none.
pub(crate) fn overrides_from(row: &Row, first: usize) -> Overrides {
    let set_at: Option<i64> = row.get(first + 2);
    Overrides {
        channel: row.get(first),
        version: row.get(first + 1),
        set_at: set_at.map(api).unwrap_or(0),
    }
}
