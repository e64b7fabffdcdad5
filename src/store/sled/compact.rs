//! Compaction: the store copied, tree by tree in key order, into a fresh directory.
//!
//! sled's file keeps the high-water mark of its log: its cleaner gets at most half of the
//! flusher's time, and the file gives back only free space at its end (bench/RESULTS.md, "Why a
//! faster write path leaves a larger log"). A copy written in key order leaves little behind: a
//! store of 1M devices seeded at 1,360 MiB is 796 MiB copied. The source keeps all it held; the
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
    /// with the marker that names the store: the copy opens as this store, at the same
    /// generation. No write lands meanwhile. The copy is written beside `into`, in
    /// `<into>.compacting`, and renamed into place once whole: `into` never holds part of a
    /// store, and a copy cut short (removed by the next run) is never mistaken for one.
    pub fn compact_into(&self, into: &Path) -> StoreResult<Compacted> {
        let _registry = self.exclusive();
        let torn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = torn.as_ref() {
            return Err(torn_refusal(why));
        }
        let empty = match std::fs::read_dir(into) {
            Ok(mut entries) => entries.next().is_none(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
            Err(error) => {
                return Err(StoreError::Unavailable(format!(
                    "{} cannot be read: {error}",
                    into.display()
                )))
            }
        };
        let staging = match into.file_name() {
            Some(name) if empty => {
                let mut name = name.to_owned();
                name.push(".compacting");
                into.with_file_name(name)
            }
            _ => {
                return Err(StoreError::Engine(format!(
                    "{} is not an empty directory: a compacted copy goes into a new one",
                    into.display()
                )))
            }
        };
        // A copy cut short by an earlier run: this command's own, by its name.
        let _ = std::fs::remove_dir_all(&staging);
        let copied = self.copy_trees(&staging).and_then(|keys| {
            std::fs::rename(&staging, into).map_err(|error| {
                StoreError::Unavailable(format!(
                    "{} cannot be renamed to {}: {error}",
                    staging.display(),
                    into.display()
                ))
            })?;
            Ok(keys)
        });
        if copied.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        let keys = copied?;
        let size = |dir: &Path| {
            dir_size(dir).map_err(|error| {
                StoreError::Unavailable(format!("{} cannot be read: {error}", dir.display()))
            })
        };
        Ok(Compacted {
            keys,
            before: size(&self.dir)?,
            after: size(into)?,
        })
    }

    fn copy_trees(&self, into: &Path) -> StoreResult<u64> {
        // Sequences that have not started yet start now, in the store, where they would: the
        // copy's own id generator starts over, and must not decide where they begin.
        for name in ["api_key", "audit"] {
            self.reserve(name, 0)?;
        }
        let copy = sled::Config::new()
            .path(into)
            .cache_capacity(32 << 20)
            .flush_every_ms(Some(500))
            .open()?;
        let mut keys = 0u64;
        for name in self.db.tree_names() {
            // Plain inserts of each value as stored: no tree's merge operator is involved.
            let target = copy.open_tree(&name)?;
            for entry in self.db.open_tree(&name)?.iter() {
                let (key, value) = entry?;
                target.insert(key, value)?;
                keys += 1;
                // sled holds unflushed writes in memory (`WriteBudget`).
                if keys % 100_000 == 0 {
                    copy.flush()?;
                }
            }
        }
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
        let generation_before = held_generation(&store.db).unwrap();
        drop(store);
        // The marker names the store at its generation: a copy without it would open as a
        // store of its own making, unchecked.
        let marker = read_marker(&into).unwrap().unwrap();
        assert_eq!(
            (marker.id.as_str(), marker.generation),
            (id.as_str(), Some(generation_before))
        );

        let copy = open(&into);
        assert_eq!(copy.id, id);
        assert_eq!(copy.db.tree_names().len(), trees.len());
        // Not the generation: the copy recorded one more when it opened.
        let generation = |entry: &(IVec, IVec)| entry.0.as_ref() != keys::STORE_GENERATION;
        for (name, held) in &trees {
            let copied: Vec<_> = entries(&copy.db, name)
                .into_iter()
                .filter(generation)
                .collect();
            let held: Vec<_> = held
                .iter()
                .filter(|entry| generation(entry))
                .cloned()
                .collect();
            let shown = String::from_utf8_lossy(name);
            assert!(copied == held, "tree {shown} differs in its copy");
        }
        assert!(copy.check(false).unwrap().is_clean());
        assert_eq!(copy.audit_seqs(1).unwrap()[0], seq_before + 1);
        assert_eq!(copy.device_summary("app", 0).unwrap().total, 2_000);
    }

    #[test]
    fn a_copy_cut_short_is_never_in_place_and_the_next_run_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let (from, into) = (dir.path().join("from"), dir.path().join("into"));
        let store = open_with_beta(&from);
        store.upsert_device("app", "d1", &report(), 10, 1).unwrap();
        // What a run killed midway leaves: its staging directory, and no `into`.
        let staging = dir.path().join("into.compacting");
        std::fs::create_dir(&staging).unwrap();
        std::fs::write(staging.join("db"), b"half a copy").unwrap();
        store.compact_into(&into).unwrap();
        assert!(!staging.exists());
        drop(store);
        assert!(open(&into).device_exists("app", "d1").unwrap());
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
