//! The PostgreSQL schema, as numbered migrations embedded in the binary and applied at start.
//!
//! Rules: a migration is never edited once released, only followed by another; none drops or
//! rewrites data. Every table's key starts with `app_id` (`api_keys` and the bookkeeping tables
//! aside), so that the device tables can be distributed by it (Citus: `apps` and `api_keys` as
//! reference tables, the others distributed by `app_id`). Text that orders pages and cursors is
//! `COLLATE "C"`: byte order, as the sled engine orders keys, whatever the database's locale.
//! Instants are microseconds since 1970 (`bigint`), as the API gives them.

use tokio_postgres::Client;

use super::{sql_error, StoreResult};

/// Held while migrating: nodes starting together apply each migration once.
const MIGRATION_LOCK: i64 = 0x6465_7669_6365_0001;

/// (version, statements). Applied in order, each in its own transaction with its version row.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE apps (
    app_id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    created_at bigint NOT NULL,
    next_channel_id bigint NOT NULL DEFAULT 1,
    next_bundle_id bigint NOT NULL DEFAULT 1,
    -- Being deleted: gone for every reader and writer, its contents removed in steps, the row
    -- last (a deletion cut short is finished at the next start, or by creating the app again).
    deleting boolean NOT NULL DEFAULT false
);

CREATE TABLE bundles (
    app_id text COLLATE "C" NOT NULL REFERENCES apps ON DELETE CASCADE,
    version text COLLATE "C" NOT NULL,
    id bigint NOT NULL,
    external_url text NOT NULL,
    checksum text NOT NULL,
    session_key text,
    min_update_version text,
    created_at bigint NOT NULL,
    manifest jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (app_id, version),
    UNIQUE (app_id, id)
);

-- A bundle in use by a channel (its own or its rollout's) cannot be deleted: the foreign keys
-- refuse it (NO ACTION, checked at the end of the statement, so that deleting an app removes
-- both at once).
CREATE TABLE channels (
    app_id text COLLATE "C" NOT NULL REFERENCES apps ON DELETE CASCADE,
    name text COLLATE "C" NOT NULL,
    id bigint NOT NULL,
    version text COLLATE "C",
    public boolean NOT NULL,
    ios boolean NOT NULL,
    android boolean NOT NULL,
    electron boolean NOT NULL,
    allow_device_self_set boolean NOT NULL,
    allow_emulator boolean NOT NULL,
    allow_device boolean NOT NULL,
    allow_dev boolean NOT NULL,
    allow_prod boolean NOT NULL,
    disable_auto_update text NOT NULL,
    disable_auto_update_under_native boolean NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    rollout jsonb,
    rollout_version text COLLATE "C",
    rollouts_started bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, name),
    FOREIGN KEY (app_id, version) REFERENCES bundles (app_id, version),
    FOREIGN KEY (app_id, rollout_version) REFERENCES bundles (app_id, version)
);

-- Revisions of device rows: never repeated, even for a row deleted and created again, so that a
-- check-in that read a row cannot write over another that took its place.
CREATE SEQUENCE device_revisions;

-- One row per device: the record and, through its indexes, every order a page is read in.
CREATE TABLE devices (
    app_id text COLLATE "C" NOT NULL REFERENCES apps ON DELETE CASCADE,
    device_id text COLLATE "C" NOT NULL,
    updated_at bigint NOT NULL,
    -- Bumped by every write: check-ins compare and set it instead of locking.
    revision bigint NOT NULL DEFAULT nextval('device_revisions'),
    custom_id text COLLATE "C" NOT NULL,
    version_name text COLLATE "C",
    version_build text NOT NULL,
    os_version text NOT NULL,
    plugin_version text NOT NULL,
    platform text NOT NULL,
    is_prod boolean NOT NULL,
    is_emulator boolean NOT NULL,
    default_channel text,
    install_source text,
    key_id text,
    rollout jsonb,
    PRIMARY KEY (app_id, device_id)
);
CREATE INDEX devices_by_time ON devices (app_id, updated_at, device_id);
CREATE INDEX devices_by_custom_id ON devices (app_id, custom_id, device_id) WHERE custom_id <> '';
-- The sweep, across apps.
CREATE INDEX devices_expiry ON devices (updated_at);

-- Overrides may wait for their device (set before its first check-in): no key to devices.
CREATE TABLE overrides (
    app_id text COLLATE "C" NOT NULL REFERENCES apps ON DELETE CASCADE,
    device_id text COLLATE "C" NOT NULL,
    channel text COLLATE "C",
    version text COLLATE "C",
    set_at bigint NOT NULL,
    PRIMARY KEY (app_id, device_id),
    FOREIGN KEY (app_id, channel) REFERENCES channels (app_id, name),
    FOREIGN KEY (app_id, version) REFERENCES bundles (app_id, version)
);
CREATE INDEX overrides_by_channel ON overrides (app_id, channel) WHERE channel IS NOT NULL;
CREATE INDEX overrides_by_version ON overrides (app_id, version) WHERE version IS NOT NULL;
CREATE INDEX overrides_expiry ON overrides (set_at);

CREATE SEQUENCE audit_seq;
CREATE TABLE audit (
    app_id text COLLATE "C" NOT NULL REFERENCES apps ON DELETE CASCADE,
    at bigint NOT NULL,
    seq bigint NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    actor jsonb NOT NULL,
    action jsonb NOT NULL,
    before jsonb NOT NULL,
    after jsonb NOT NULL,
    rollout jsonb,
    PRIMARY KEY (app_id, at, seq)
);
CREATE INDEX audit_by_device ON audit (app_id, device_id, at, seq) WHERE rollout IS NULL;
CREATE INDEX audit_expiry ON audit (at);

CREATE TABLE version_events (
    app_id text COLLATE "C" NOT NULL REFERENCES apps ON DELETE CASCADE,
    version text COLLATE "C" NOT NULL,
    day integer NOT NULL,
    action text COLLATE "C" NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (app_id, version, day, action)
);
CREATE INDEX version_events_expiry ON version_events (day);

CREATE SEQUENCE api_key_ids;
CREATE TABLE api_keys (
    id bigint PRIMARY KEY,
    secret_hash bytea NOT NULL UNIQUE,
    name text NOT NULL,
    mode text NOT NULL,
    limited_to_apps text[] NOT NULL,
    expires_at bigint,
    created_at bigint NOT NULL
);

CREATE TABLE imports_pending (
    source text PRIMARY KEY
);

CREATE TABLE health_probe (
    id integer PRIMARY KEY,
    probed_at timestamptz NOT NULL
);
"#,
)];

/// The newest schema this binary knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Applies the migrations the database lacks, under an advisory lock; refuses a database whose
/// schema is newer than this binary's.
pub async fn migrate(client: &mut Client) -> StoreResult<()> {
    // Under the lock: nodes starting together would otherwise race to create the table (one
    // of them failing on the other's).
    let transaction = client.transaction().await.map_err(sql_error)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(sql_error)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(sql_error)?;
    transaction.commit().await.map_err(sql_error)?;
    for (version, statements) in MIGRATIONS {
        let transaction = client.transaction().await.map_err(sql_error)?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(sql_error)?;
        let applied = transaction
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await
            .map_err(sql_error)?
            .is_some();
        if !applied {
            transaction
                .batch_execute(statements)
                .await
                .map_err(sql_error)?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await
                .map_err(sql_error)?;
            log::info!("postgres: applied schema migration {version}");
        }
        transaction.commit().await.map_err(sql_error)?;
    }
    let newest: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .map_err(sql_error)?
        .get(0);
    if newest.unwrap_or(0) > SCHEMA_VERSION {
        return Err(super::StoreError::Damaged(format!(
            "the database's schema is version {}, newer than this binary's ({SCHEMA_VERSION}): \
             run a newer device-registry",
            newest.unwrap_or(0)
        )));
    }
    Ok(())
}
