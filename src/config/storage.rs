//! `[storage]`: which engine keeps the registry, and its settings (the sled store's directory,
//! durability and cache; the PostgreSQL database's URL and pool).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ByteSize, Duration};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every management write is on disk before it is acknowledged.
    Flush,
    /// Writes reach the disk every `flush_every`.
    Periodic,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Which engine keeps the registry: the embedded sled store in `data_dir` (one process),
    /// or a PostgreSQL database that several nodes share.
    pub engine: Engine,
    pub postgres: PostgresConfig,
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub flush_every: Duration,
    pub cache: ByteSize,
    /// Free space the data directory's disk keeps: below it, check-ins of new devices are
    /// refused (503, `Retry-After`), so that unauthenticated clients cannot fill the disk;
    /// known devices and management writes go on.
    pub min_free: ByteSize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sled,
    Postgres,
}

#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// A PostgreSQL URL (`postgres://user:password@host:5432/database`); also
    /// `DEVICE_REGISTRY_DATABASE_URL`, which wins.
    pub url: String,
    /// Connections each node keeps at most.
    pub pool_size: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            pool_size: 16,
        }
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        let shown = if self.url.is_empty() {
            "unset"
        } else {
            "<redacted>"
        };
        f.debug_struct("PostgresConfig")
            .field("url", &shown)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            engine: Engine::Sled,
            postgres: PostgresConfig::default(),
            data_dir: PathBuf::from("data"),
            durability: Durability::Flush,
            flush_every: Duration::from_millis(500),
            cache: ByteSize(32 * 1024 * 1024),
            min_free: ByteSize(32 * 1024 * 1024),
        }
    }
}
