//! API keys ([`ApiKeys`]), by the SHA-256 of their secret.

use tokio_postgres::Row;

use super::Cached;
use super::{api, db, from_json, run, sql_error, PostgresStore, TxError};
use crate::model::ApiKey;
use crate::store::{ApiKeys, NewApiKey, StoreResult};

const KEY_COLUMNS: &str = "id, name, mode, limited_to_apps, expires_at, created_at";

pub(crate) fn key_from(row: &Row) -> StoreResult<ApiKey> {
    let expires_at: Option<i64> = row.get(4);
    Ok(ApiKey {
        id: api(row.get(0)),
        name: row.get(1),
        mode: from_json("api_keys", serde_json::Value::String(row.get(2)))?,
        limited_to_apps: row.get(3),
        expires_at: expires_at.map(api),
        created_at: api(row.get(5)),
    })
}

fn mode_text(key: &ApiKey) -> String {
    match super::to_json(&key.mode) {
        serde_json::Value::String(mode) => mode,
        other => other.to_string(),
    }
}

impl PostgresStore {
    pub(crate) async fn insert_key(
        client: &impl deadpool_postgres::GenericClient,
        key: &NewApiKey,
    ) -> Result<(), tokio_postgres::Error> {
        client
            .run(
                "INSERT INTO api_keys (id, secret_hash, name, mode, limited_to_apps, expires_at, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &db(key.key.id),
                    &key.secret_hash.as_slice(),
                    &key.key.name,
                    &mode_text(&key.key),
                    &key.key.limited_to_apps,
                    &key.key.expires_at.map(db),
                    &db(key.key.created_at),
                ],
            )
            .await
            .map(|_| ())
    }
}

impl ApiKeys for PostgresStore {
    fn create_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        run(async {
            let client = self.client().await?;
            Self::insert_key(&client, key).await.map_err(sql_error)?;
            self.committed();
            Ok(())
        })
    }

    fn create_first_api_key(&self, key: &NewApiKey) -> StoreResult<bool> {
        run(async {
            serializable!(self, |tx| {
                // Nodes starting together on an empty database: one of them creates the key.
                tx.batch_execute("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")
                    .await?;
                if tx
                    .row_opt("SELECT 1 FROM api_keys LIMIT 1", &[])
                    .await?
                    .is_some()
                {
                    return Ok(false);
                }
                Self::insert_key(&tx, key).await.map_err(TxError::from)?;
                Ok(true)
            })
        })
    }

    fn next_api_key_id(&self) -> StoreResult<u64> {
        run(async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT nextval('api_key_ids')", &[])
                .await
                .map_err(sql_error)?;
            Ok(api(row.get(0)))
        })
    }

    fn api_key_by_hash(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
        run(async {
            let client = self.client().await?;
            client
                .row_opt(
                    &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1"),
                    &[&secret_hash.as_slice()],
                )
                .await
                .map_err(sql_error)?
                .map(|row| key_from(&row))
                .transpose()
        })
    }

    fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        run(async {
            let client = self.client().await?;
            let rows = client
                .rows(
                    &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"),
                    &[],
                )
                .await
                .map_err(sql_error)?;
            rows.iter().map(key_from).collect()
        })
    }

    fn delete_api_key(&self, id: u64) -> StoreResult<bool> {
        run(async {
            let client = self.client().await?;
            let deleted = client
                .run("DELETE FROM api_keys WHERE id = $1", &[&db(id)])
                .await
                .map_err(sql_error)?;
            self.committed();
            Ok(deleted > 0)
        })
    }
}
