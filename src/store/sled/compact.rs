//! Compaction: the store copied, tree by tree in key order, into a fresh directory.
//!
//! sled's file keeps the high-water mark of its log: its cleaner gets at most half of the
//! flusher's time, and the file gives back only free space at its end (bench/RESULTS.md, "Why a
//! faster write path leaves a larger log"). A copy written in key order leaves little behind: a
//! store of 1M devices seeded at 1,360 MiB is 796 MiB copied. The source is left as it was; the
//! operator swaps the directories once the copy is complete (README, "Disk space").

use super::atomic::torn_refusal;
use super::*;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub keys: u64,
    /// The store's size on disk, and its copy's.
    pub before: u64,
    pub after: u64,
}

impl SledStore {
    /// Copies this store into `into`, which must be absent or empty, every tree in key order,
    /// with the marker that names the store, written last: the copy opens as this store, at
    /// the same generation. No write lands meanwhile. A failed copy is removed.
    pub fn compact_into(&self, into: &Path) -> StoreResult<Compacted> {
        let _registry = self.exclusive();
        let torn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = torn.as_ref() {
            return Err(torn_refusal(why));
        }
        let empty = match std::fs::read_dir(into) {
            Ok(mut entries) => entries.next().is_none(),
            Err(error) => error.kind() == std::io::ErrorKind::NotFound,
        };
        if !empty {
            return Err(StoreError::Engine(format!(
                "{} is not an empty directory: a compacted copy goes into a new one",
                into.display()
            )));
        }
        let copied = self.copy_trees(into);
        if copied.is_err() {
            // Empty or absent before: all of it is this copy's.
            let _ = std::fs::remove_dir_all(into);
        }
        let keys = copied?;
        Ok(Compacted {
            keys,
            before: self.db.size_on_disk()?,
            after: dir_size(into).map_err(|error| {
                StoreError::Unavailable(format!("{} cannot be read: {error}", into.display()))
            })?,
        })
    }

    fn copy_trees(&self, into: &Path) -> StoreResult<u64> {
        let copy = sled::Config::new()
            .path(into)
            .cache_capacity(32 << 20)
            .flush_every_ms(None)
            .open()?;
        let mut keys = 0;
        for name in self.db.tree_names() {
            let target = copy.open_tree(&name)?;
            if name == "version_events" {
                target.set_merge_operator(version_events::add_counts);
            }
            for entry in self.db.open_tree(&name)?.iter() {
                let (key, value) = entry?;
                target.insert(key, value)?;
                keys += 1;
            }
        }
        // sled's id generator goes on from where this store's was: numbers it handed out (api
        // key ids before sequences, sequences' starts) are never handed out again.
        let reached = self.db.generate_id()?;
        while copy.generate_id()? < reached {}
        copy.flush()?;
        drop(copy);
        let held = held_generation(&self.db)?;
        write_marker(into, &self.id, held)?;
        Ok(keys)
    }
}

/// Bytes under `dir`: what `du` counts of a sled directory (its log, snapshots and blobs).
fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total += if kind.is_dir() {
            dir_size(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::fixtures::*;

    #[test]
    fn a_compacted_copy_opens_as_the_same_store_with_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let (from, into) = (dir.path().join("from"), dir.path().join("into"));
        let store = open_with_beta(&from);
        for i in 0..2_000u64 {
            // Each device checks in twice: the second write leaves garbage behind.
            store
                .upsert_device("app", &format!("d{i}"), &report(), 10 + i, 1)
                .unwrap();
            store
                .upsert_device("app", &format!("d{i}"), &report(), 5_000 + i, 1)
                .unwrap();
        }
        store
            .write_overrides(&[link_to_beta(&["d7"], at(20))])
            .unwrap();
        let seq_before = store.audit_seqs(1).unwrap()[0];
        let compacted = store.compact_into(&into).unwrap();
        // Records and time entries, and the app's few keys.
        assert!(compacted.keys > 4_000, "{compacted:?}");
        assert!(compacted.after < compacted.before, "{compacted:?}");
        let entries = |db: &Db, name: &IVec| -> Vec<(IVec, IVec)> {
            let tree = db.open_tree(name).unwrap();
            tree.iter().collect::<sled::Result<_>>().unwrap()
        };
        let trees: Vec<(IVec, Vec<(IVec, IVec)>)> = store
            .db
            .tree_names()
            .into_iter()
            .map(|name| (name.clone(), entries(&store.db, &name)))
            .collect();
        let id = store.id.clone();
        drop(store);

        let copy = open(&into);
        assert_eq!(copy.id, id);
        assert_eq!(copy.db.tree_names().len(), trees.len());
        for (name, held) in &trees {
            // The copy recorded one more generation when it opened.
            if name.as_ref() != b"__sled__default" {
                let copied = entries(&copy.db, name);
                let shown = String::from_utf8_lossy(name);
                assert!(copied == *held, "tree {shown} differs in its copy");
            }
        }
        assert!(copy.check(false).unwrap().is_clean());
        assert!(copy.audit_seqs(1).unwrap()[0] > seq_before);
        assert_eq!(copy.device_summary("app", 0).unwrap().total, 2_000);
    }

    #[test]
    fn a_copy_into_a_directory_in_use_is_refused_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (from, into) = (dir.path().join("from"), dir.path().join("into"));
        let store = open_with_beta(&from);
        let other = open(&into);
        assert!(store.compact_into(&into).is_err());
        assert!(other.check(false).unwrap().is_clean());
    }
}
