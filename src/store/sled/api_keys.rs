//! API keys ([`ApiKeys`]), by the SHA-256 of their secret.

use super::*;

impl ApiKeys for SledStore {
    fn create_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        self.api_keys
            .insert(key.secret_hash, encode_value(&key.key))?;
        Ok(())
    }

    fn next_api_key_id(&self) -> StoreResult<u64> {
        Ok(self.db.generate_id()? + 1)
    }

    fn api_key_by_hash(&self, secret_hash: &[u8; 32]) -> StoreResult<Option<ApiKey>> {
        self.api_keys
            .get(secret_hash)?
            .map(|bytes| decode("api_keys", &bytes))
            .transpose()
    }

    fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> = self
            .api_keys
            .iter()
            .values()
            .map(|value| decode("api_keys", &value?))
            .collect::<StoreResult<_>>()?;
        keys.sort_by_key(|key| key.id);
        Ok(keys)
    }

    fn delete_api_key(&self, id: u64) -> StoreResult<bool> {
        for entry in self.api_keys.iter() {
            let (hash, value) = entry?;
            let key: ApiKey = decode("api_keys", &value)?;
            if key.id == id {
                self.api_keys.remove(hash)?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}
