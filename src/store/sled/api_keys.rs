//! API keys ([`ApiKeys`]), by the SHA-256 of their secret.

use super::*;

impl ApiKeys for SledStore {
    fn create_api_key(&self, key: &NewApiKey) -> StoreResult<()> {
        self.api_keys
            .insert(key.secret_hash, encode_value(&key.key))?;
        self.commit()
    }

    fn create_first_api_key(&self, key: &NewApiKey) -> StoreResult<bool> {
        // Keys are created under the registry's exclusive lock only here: one process owns a
        // sled store, so this lock is enough to make the check and the insert one step.
        let _registry = self.exclusive();
        if self.api_keys.iter().next().transpose()?.is_some() {
            return Ok(false);
        }
        self.create_api_key(key)?;
        Ok(true)
    }

    fn next_api_key_id(&self) -> StoreResult<u64> {
        self.reserve("api_key", 1)
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
                self.commit()?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures::open;

    #[test]
    fn key_ids_and_audit_numbers_count_on_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let last = {
            let store = open(dir.path());
            assert_eq!(store.next_api_key_id().unwrap(), 1);
            assert_eq!(store.next_api_key_id().unwrap(), 2);
            let seqs = store.audit_seqs(3).unwrap();
            assert_eq!(seqs, [seqs[0], seqs[0] + 1, seqs[0] + 2]);
            store.flush().unwrap();
            seqs[2]
        };
        // sled's own id generator jumps by a million at a restart; these do not.
        let store = open(dir.path());
        assert_eq!(store.next_api_key_id().unwrap(), 3);
        assert_eq!(store.audit_seqs(2).unwrap(), [last + 1, last + 2]);
    }

    #[test]
    fn a_damaged_sequence_is_corruption_not_a_new_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        assert_eq!(store.next_api_key_id().unwrap(), 1);
        store
            .db
            .insert(keys::sequence("api_key"), &b"bad"[..])
            .unwrap();
        assert!(matches!(
            store.next_api_key_id(),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_store_from_before_sequences_never_repeats_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let given = {
            let store = open(dir.path());
            // What key ids and audit numbers were before: sled's generator.
            (0..5)
                .map(|_| store.db.generate_id().unwrap())
                .max()
                .unwrap()
        };
        let store = open(dir.path());
        assert!(store.next_api_key_id().unwrap() > given);
        assert!(store.audit_seqs(1).unwrap()[0] > given);
    }
}
