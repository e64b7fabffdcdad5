//! Atomic writes over several trees without sled's transactions, so that readers never wait.
//!
//! sled 0.34's transactions (and `apply_batch`) take a process-wide lock for writing, from before
//! their closure runs until their commit, and once one has run, every read of the process takes
//! that lock for reading (`concurrency_control.rs`): each transaction stops every read of every
//! tree. So the store runs none. A write here:
//!
//! 1. runs its closure under the store's writer lock (writers still take turns, as they did under
//!    sled's lock), reading through views that see the write's own changes first;
//! 2. writes the whole set of changes as one record in `intents` (one `insert`; past 64 KiB,
//!    parts, then a head that counts them);
//! 3. applies each change with a plain `insert` or `remove`, which never takes sled's lock for
//!    writing, every insert before any removal (an entry that moves is never missing);
//! 4. removes the intent.
//!
//! sled recovers a prefix of its log, in the order it was written (its own crash test checks
//! that), and one writer at a time writes in program order: after a crash, either the intent is
//! there, and opening the store applies it again (every change is an absolute value, so applying
//! twice is applying once), or none of the write's changes were recovered, or all of them and the
//! intent's removal were. Readers see a write's keys change one by one, as they already saw
//! transactions land between two steps of an iterator; a single key never changes halfway.
//! A failure (or a panic) once the intent is written stops every later write until the store is
//! opened again, which completes this one: a write landing in between would be undone by it.
//!
//! Intent layout (`intents` tree; empty once the store is open). Key `seq(u64 BE)`, a number
//! unique within the process: the head, `0` then the intent, or `1` then the number of its parts
//! (u32 BE) for an intent past 64 KiB, whose parts are at `seq(u64 BE) part(u32 BE)` and are
//! written before the head. The intent itself:
//!
//! ```text
//! version(u8 = 1) trees(u8) { name_len(u16 BE) name }*  changes(u32 BE)
//! { tree(u8) key_len(u32 BE) key  (0: remove | 1 value_len(u32 BE) value: set
//!                                  | 2: set the value of the latest 1 before it) }*
//! ```

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;

use sled::{IVec, Tree};

use super::{SledStore, StoreError, StoreResult};

/// One change: `None` removes the key.
type Change = (usize, IVec, Option<IVec>);

/// Applies changes with plain writes, every set before any removal: an entry that moves (a
/// device's time entry, its custom id entry) is seen by readers at both places for a moment,
/// never at neither, even when one write moves it twice. `before_each` runs before each one.
fn write_changes<T: Borrow<Tree>>(
    trees: &[T],
    changes: Vec<Change>,
    before_each: impl Fn() -> StoreResult<()>,
) -> StoreResult<()> {
    let (sets, removals): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|(_, _, value)| value.is_some());
    for (tree, key, value) in sets.into_iter().chain(removals) {
        before_each()?;
        let tree: &Tree = trees[tree].borrow();
        match value {
            Some(value) => tree.insert(key, value)?,
            None => tree.remove(key)?,
        };
    }
    Ok(())
}

/// The changes of one atomic write, in the order first made; a key changed twice keeps its
/// first place and its last value.
#[derive(Default)]
struct Changes {
    list: Vec<Change>,
    at: HashMap<(usize, IVec), usize>,
}

impl Changes {
    fn set(&mut self, tree: usize, key: IVec, value: Option<IVec>) {
        match self.at.get(&(tree, key.clone())) {
            Some(&i) => self.list[i].2 = value,
            None => {
                self.at.insert((tree, key.clone()), self.list.len());
                self.list.push((tree, key, value));
            }
        }
    }

    /// What this write set `key` to: `Some(None)` when it removed it, `None` when untouched.
    fn get(&self, tree: usize, key: &[u8]) -> Option<Option<IVec>> {
        self.at
            .get(&(tree, IVec::from(key)))
            .map(|&i| self.list[i].2.clone())
    }
}

/// A tree as an atomic write sees it: its own changes, then the tree.
pub(super) struct View<'a> {
    tree: &'a Tree,
    index: usize,
    changes: &'a RefCell<Changes>,
}

impl View<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> StoreResult<Option<IVec>> {
        let key = key.as_ref();
        if let Some(value) = self.changes.borrow().get(self.index, key) {
            return Ok(value);
        }
        Ok(self.tree.get(key)?)
    }

    /// Sets `key`, without reading what it was (a sled read, which most writers do not need).
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> StoreResult<()> {
        self.changes
            .borrow_mut()
            .set(self.index, IVec::from(key.as_ref()), Some(value.into()));
        Ok(())
    }

    /// Removes `key`, without reading it: for a key the caller knows is there (an index entry
    /// its record names). Removing a key that is not there changes nothing, but still costs the
    /// write a change (and may make it write an intent): callers check first where they can.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> StoreResult<()> {
        self.changes
            .borrow_mut()
            .set(self.index, IVec::from(key.as_ref()), None);
        Ok(())
    }

    /// Sets `key`; answers what it was.
    pub fn replace(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<IVec>,
    ) -> StoreResult<Option<IVec>> {
        let old = self.get(&key)?;
        self.insert(key, value)?;
        Ok(old)
    }

    /// Removes `key` if it is there; answers what it was.
    pub fn take(&self, key: impl AsRef<[u8]>) -> StoreResult<Option<IVec>> {
        let old = self.get(&key)?;
        if old.is_some() {
            self.remove(key)?;
        }
        Ok(old)
    }
}

impl SledStore {
    /// Runs `write` over views of `trees` and applies what it changed atomically (see the
    /// module's comment); an error from `write` changes nothing. Writers take turns.
    pub(super) fn atomically<const N: usize, T>(
        &self,
        trees: [&Tree; N],
        write: impl FnOnce([&View<'_>; N]) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut torn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = torn.as_ref() {
            return Err(torn_refusal(why));
        }
        let changes = RefCell::new(Changes::default());
        let mut index = 0;
        let views = trees.map(|tree| {
            index += 1;
            View {
                tree,
                index: index - 1,
                changes: &changes,
            }
        });
        let answer = write(views.each_ref())?;
        // Said before applying: a panic midway (caught further up) leaves it said.
        *torn = Some("a write panicked while it was applied".into());
        let applied = self.apply(&trees, changes.into_inner().list);
        *torn = None;
        if let Err((error, intent_written)) = applied {
            if intent_written {
                // Part of the write may be in the trees, and its intent is: a later write
                // landing now would be undone when the intent is applied again at the next
                // open. So none lands; the health check fails, and the supervisor opens the
                // store again once it can (`store::handle`), which completes this one.
                *torn = Some(error.to_string());
                *self.write_fault.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("a write was cut short: {error}"));
                log::error!("a write was cut short after its intent was written: {error}");
            }
            return Err(error);
        }
        Ok(answer)
    }

    /// Refuses a write made outside [`SledStore::atomically`] (a compare-and-swap, an app's
    /// removal) while an atomic write cut short waits to be completed.
    pub(super) fn refuse_if_torn(&self) -> StoreResult<()> {
        match self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(why) => Err(torn_refusal(why)),
            None => Ok(()),
        }
    }

    /// Applies changes, through an intent when there are several (the caller holds the writer
    /// lock). On failure, says whether the intent was written.
    fn apply(&self, trees: &[&Tree], changes: Vec<Change>) -> Result<(), (StoreError, bool)> {
        let intent = self.write_intent(trees, &changes).map_err(|e| (e, false))?;
        let applied = (|| -> StoreResult<()> {
            write_changes(trees, changes, || {
                #[cfg(test)]
                tests::maybe_fail()?;
                Ok(())
            })?;
            if let Some(intent) = intent {
                self.remove_intent(intent)?;
            }
            Ok(())
        })();
        applied.map_err(|e| (e, intent.is_some()))
    }

    /// Writes the intent of several changes; answers its number and parts (`None`: a single
    /// change, which is atomic by itself).
    fn write_intent(&self, trees: &[&Tree], changes: &[Change]) -> StoreResult<Option<(u64, u32)>> {
        if changes.len() < 2 {
            return Ok(None);
        }
        let seq = self
            .intent_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let encoded = encode_intent(trees, changes)?;
        if encoded.len() <= INTENT_PART {
            let mut inline = Vec::with_capacity(1 + encoded.len());
            inline.push(INLINE);
            inline.extend_from_slice(&encoded);
            self.intents.insert(seq.to_be_bytes(), inline)?;
            return Ok(Some((seq, 0)));
        }
        // Parts first, the head that counts them last: sled recovers a prefix of its log, so a
        // head means every part is there. (sled writes a value past 128 KiB to a file of its
        // own, outside its log's order: parts stay under that.)
        let mut parts = 0u32;
        for chunk in encoded.chunks(INTENT_PART) {
            self.intents.insert(part_key(seq, parts), chunk)?;
            parts += 1;
        }
        let mut head = vec![IN_PARTS];
        head.extend_from_slice(&parts.to_be_bytes());
        self.intents.insert(seq.to_be_bytes(), head)?;
        Ok(Some((seq, parts)))
    }

    /// Removes an applied intent: its head first (an intent without a head is never applied).
    fn remove_intent(&self, (seq, parts): (u64, u32)) -> StoreResult<()> {
        self.intents.remove(seq.to_be_bytes())?;
        for part in 0..parts {
            self.intents.remove(part_key(seq, part))?;
        }
        Ok(())
    }

    /// Applies again the writes a crash cut short (intents with their head), in order, then
    /// forgets every intent, whole or not.
    pub(super) fn replay_intents(&self) -> StoreResult<()> {
        let mut replayed = 0;
        let heads: Vec<(IVec, IVec)> = self
            .intents
            .iter()
            .filter(|entry| entry.as_ref().map_or(true, |(key, _)| key.len() == 8))
            .collect::<sled::Result<_>>()?;
        for (key, head) in heads {
            let seq = u64::from_be_bytes(key.as_ref().try_into().expect("8 bytes"));
            let encoded = match head.split_first() {
                Some((&INLINE, encoded)) => encoded.to_vec(),
                Some((&IN_PARTS, count)) => {
                    let count = count
                        .try_into()
                        .map(u32::from_be_bytes)
                        .map_err(|_| corrupt_intent("an intent's head is malformed"))?;
                    let mut encoded = Vec::new();
                    for part in 0..count {
                        let bytes = self
                            .intents
                            .get(part_key(seq, part))?
                            .ok_or_else(|| corrupt_intent("an intent lacks a part"))?;
                        encoded.extend_from_slice(&bytes);
                    }
                    encoded
                }
                _ => return Err(corrupt_intent("an intent's head is malformed")),
            };
            let (names, changes) = decode_intent(&encoded)?;
            let trees = names
                .iter()
                .map(|name| self.db.open_tree(name))
                .collect::<sled::Result<Vec<Tree>>>()?;
            write_changes(&trees, changes, || Ok(()))?;
            self.intents.remove(key)?;
            replayed += 1;
        }
        // What is left are parts of intents whose head was never written: none of their
        // changes were.
        let leftover = self.intents.len();
        self.intents.clear()?;
        if replayed > 0 || leftover > 0 {
            self.db.flush()?;
            log::warn!(
                "{replayed} writes cut short by a crash were completed ({leftover} parts of \
                 writes that had not begun were dropped)"
            );
        }
        Ok(())
    }
}

/// The largest part of an intent (see [`SledStore::write_intent`]).
const INTENT_PART: usize = 64 << 10;
/// An intent's head: the intent itself follows, or the number of its parts (u32 BE).
const INLINE: u8 = 0;
const IN_PARTS: u8 = 1;

/// `seq(u64 BE) part(u32 BE)`: one part of an intent whose head is at `seq(u64 BE)`.
fn part_key(seq: u64, part: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&seq.to_be_bytes());
    key[8..].copy_from_slice(&part.to_be_bytes());
    key
}

/// Why a write is refused while an atomic write cut short waits to be completed.
pub(super) fn torn_refusal(why: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "a write was cut short ({why}): writes wait for the store to be opened again"
    ))
}

const INTENT_VERSION: u8 = 1;
/// What a change does to its key.
const REMOVE: u8 = 0;
const SET: u8 = 1;
/// Sets the value of the latest `SET` before it (a device's record and its time-index copy are
/// written one after the other: the copy costs the intent nothing).
const SET_AGAIN: u8 = 2;

fn corrupt_intent(detail: &str) -> StoreError {
    StoreError::Corrupt {
        tree: "intents",
        detail: detail.into(),
    }
}

/// Appends `bytes` after their length, in `width` bytes (2 or 4, big-endian).
fn put_sized(out: &mut Vec<u8>, width: usize, bytes: &[u8]) -> StoreResult<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&len| width == 4 || len <= u32::from(u16::MAX))
        .ok_or_else(|| StoreError::Engine("a write too large for one intent".into()))?;
    out.extend_from_slice(&len.to_be_bytes()[4 - width..]);
    out.extend_from_slice(bytes);
    Ok(())
}

fn encode_intent(trees: &[&Tree], changes: &[Change]) -> StoreResult<Vec<u8>> {
    let bytes: usize = changes
        .iter()
        .map(|(_, k, v)| 10 + k.len() + v.as_ref().map_or(0, |v| v.len()))
        .sum();
    let mut out = Vec::with_capacity(8 + trees.len() * 24 + bytes);
    out.push(INTENT_VERSION);
    out.push(trees.len() as u8); // at most a handful: the sites name their trees
    for tree in trees {
        put_sized(&mut out, 2, &tree.name())?;
    }
    out.extend_from_slice(&(changes.len() as u32).to_be_bytes());
    let mut last_set: Option<&IVec> = None;
    for (tree, key, value) in changes {
        out.push(*tree as u8);
        put_sized(&mut out, 4, key)?;
        match value {
            None => out.push(REMOVE),
            Some(value) if last_set == Some(value) => out.push(SET_AGAIN),
            Some(value) => {
                out.push(SET);
                put_sized(&mut out, 4, value)?;
                last_set = Some(value);
            }
        }
    }
    Ok(out)
}

/// Tree names and changes of an intent.
type Intent = (Vec<Vec<u8>>, Vec<Change>);

/// Reads an intent front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt_intent("an intent ends early"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> StoreResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// Bytes after their length in `width` bytes (see [`put_sized`]).
    fn sized(&mut self, width: usize) -> StoreResult<&'a [u8]> {
        let mut len = [0u8; 4];
        len[4 - width..].copy_from_slice(self.take(width)?);
        self.take(u32::from_be_bytes(len) as usize)
    }
}

fn decode_intent(bytes: &[u8]) -> StoreResult<Intent> {
    let mut reader = Reader(bytes);
    if reader.byte()? != INTENT_VERSION {
        return Err(corrupt_intent("an intent of an unknown version"));
    }
    let tree_count = reader.byte()? as usize;
    let names = (0..tree_count)
        .map(|_| reader.sized(2).map(<[u8]>::to_vec))
        .collect::<StoreResult<Vec<_>>>()?;
    let mut count = [0u8; 4];
    count.copy_from_slice(reader.take(4)?);
    let count = u32::from_be_bytes(count) as usize;
    let mut changes = Vec::with_capacity(count.min(1 << 16));
    let mut last_set: Option<IVec> = None;
    for _ in 0..count {
        let tree = reader.byte()? as usize;
        if tree >= tree_count {
            return Err(corrupt_intent("an intent names a tree it does not list"));
        }
        let key = IVec::from(reader.sized(4)?);
        let value = match reader.byte()? {
            REMOVE => None,
            SET => {
                let value = IVec::from(reader.sized(4)?);
                last_set = Some(value.clone());
                Some(value)
            }
            SET_AGAIN => Some(
                last_set
                    .clone()
                    .ok_or_else(|| corrupt_intent("an intent repeats a value it never set"))?,
            ),
            _ => {
                return Err(corrupt_intent(
                    "an intent's change is neither set nor removal",
                ))
            }
        };
        changes.push((tree, key, value));
    }
    if !reader.0.is_empty() {
        return Err(corrupt_intent("an intent has bytes past its end"));
    }
    Ok((names, changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;
    use crate::store::sled::fixtures;
    use std::cell::Cell;

    thread_local! {
        /// Changes this thread may still apply before the next one fails (`None`: no limit).
        static CHANGES_LEFT: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Fails a change once the limit set by a test is spent (`Some(usize::MAX)`: panics).
    pub(super) fn maybe_fail() -> StoreResult<()> {
        CHANGES_LEFT.with(|left| match left.get() {
            Some(0) => Err(StoreError::Unavailable("injected: No space left".into())),
            Some(usize::MAX) => panic!("injected panic"),
            Some(n) => {
                left.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }

    #[test]
    fn a_write_that_panicked_stops_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixtures::open(dir.path());
        let tree = store.db.open_tree("t").unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            CHANGES_LEFT.with(|left| left.set(Some(usize::MAX)));
            let _ = store.atomically([&tree], |[t]| {
                t.insert("a", "1")?;
                t.insert("b", "2")?;
                Ok(())
            });
        }));
        CHANGES_LEFT.with(|left| left.set(None));
        assert!(panicked.is_err());
        let later: StoreResult<()> = store.atomically([&tree], |[t]| t.insert("b", "3").map(drop));
        assert!(
            matches!(later, Err(StoreError::Unavailable(_))),
            "{later:?}"
        );
    }

    #[test]
    fn an_entry_that_moves_is_written_at_its_new_place_before_it_leaves_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixtures::open(dir.path());
        let tree = store.db.open_tree("t").unwrap();
        tree.insert("at-1", "d").unwrap();
        // Moved twice in one write (a device checking in twice in one batch): cut after the
        // first change applied, which must be an insert.
        CHANGES_LEFT.with(|left| left.set(Some(1)));
        let cut: StoreResult<()> = store.atomically([&tree], |[t]| {
            t.insert("at-2", "d")?;
            t.remove("at-1")?;
            t.insert("at-3", "d")?;
            t.remove("at-2")?;
            Ok(())
        });
        CHANGES_LEFT.with(|left| left.set(None));
        assert!(cut.is_err());
        let keys: Vec<IVec> = tree.iter().keys().collect::<sled::Result<_>>().unwrap();
        assert_eq!(keys, [IVec::from("at-1"), IVec::from("at-3")]);
    }

    #[test]
    fn an_intent_in_parts_is_applied_only_when_its_head_was_written() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = fixtures::open(dir.path());
            let tree = store.db.open_tree("t").unwrap();
            // Large enough for three parts; applied whole.
            let big = IVec::from(vec![5u8; INTENT_PART]);
            store
                .atomically([&tree], |[t]| {
                    for key in ["a", "b", "c"] {
                        t.insert(key, big.clone())?;
                    }
                    Ok(())
                })
                .unwrap();
            assert_eq!(tree.len(), 3);
            assert_eq!(store.intents.len(), 0);
            // What a crash leaves: parts of one intent without their head (nothing applied),
            // and a whole one with its head (nothing applied yet).
            let changes: Vec<Change> = vec![
                (0, IVec::from(&b"x"[..]), Some(big.clone())),
                (0, IVec::from(&b"a"[..]), None),
            ];
            let encoded = encode_intent(&[&tree], &changes).unwrap();
            for (part, chunk) in encoded.chunks(INTENT_PART).enumerate() {
                store
                    .intents
                    .insert(part_key(40, part as u32), chunk)
                    .unwrap();
                store
                    .intents
                    .insert(part_key(41, part as u32), chunk)
                    .unwrap();
            }
            let mut head = vec![IN_PARTS];
            head.extend_from_slice(&(encoded.chunks(INTENT_PART).count() as u32).to_be_bytes());
            store.intents.insert(41u64.to_be_bytes(), head).unwrap();
            store.db.flush().unwrap();
        }
        let store = fixtures::open(dir.path());
        let tree = store.db.open_tree("t").unwrap();
        assert_eq!(tree.get("a").unwrap(), None);
        assert_eq!(tree.get("x").unwrap().map(|v| v.len()), Some(INTENT_PART));
        assert_eq!(store.intents.len(), 0);
    }

    #[test]
    fn a_write_cut_short_stops_later_writes_until_reopening_completes_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = fixtures::open(dir.path());
            let tree = store.db.open_tree("t").unwrap();
            CHANGES_LEFT.with(|left| left.set(Some(1)));
            let cut: StoreResult<()> = store.atomically([&tree], |[t]| {
                t.insert("a", "1")?;
                t.insert("b", "2")?;
                Ok(())
            });
            CHANGES_LEFT.with(|left| left.set(None));
            assert!(matches!(cut, Err(StoreError::Unavailable(_))), "{cut:?}");
            // Half of it is there, and nothing else may land on top of it.
            assert_eq!(tree.get("a").unwrap().as_deref(), Some(&b"1"[..]));
            assert_eq!(tree.get("b").unwrap(), None);
            let later: StoreResult<()> = store.atomically([&tree], |[t]| {
                t.insert("b", "3")?;
                Ok(())
            });
            assert!(
                matches!(later, Err(StoreError::Unavailable(_))),
                "{later:?}"
            );
            assert!(matches!(store.health(), Err(StoreError::Unavailable(_))));
            store.db.flush().unwrap();
        }
        // Opening again completes it.
        let store = fixtures::open(dir.path());
        let tree = store.db.open_tree("t").unwrap();
        assert_eq!(tree.get("a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(tree.get("b").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(store.intents.len(), 0);
        store
            .atomically([&tree], |[t]| t.insert("b", "3").map(drop))
            .unwrap();
        assert!(store.health().is_ok());
    }

    #[test]
    fn intents_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let (a, b) = (db.open_tree("a").unwrap(), db.open_tree("bb").unwrap());
        let changes: Vec<Change> = vec![
            (0, IVec::from(&b"k1"[..]), Some(IVec::from(&b"v1"[..]))),
            (1, IVec::from(&b""[..]), None),
            (
                1,
                IVec::from(&[0xFF, 0][..]),
                Some(IVec::from(vec![7u8; 300])),
            ),
            // A record and its time entry's copy: the same value twice in a row.
            (0, IVec::from(&b"k2"[..]), Some(IVec::from(vec![7u8; 300]))),
        ];
        let bytes = encode_intent(&[&a, &b], &changes).unwrap();
        // The repeated value is written once.
        assert!(bytes.len() < 300 + 100, "{}", bytes.len());
        let (names, decoded) = decode_intent(&bytes).unwrap();
        assert_eq!(names, vec![b"a".to_vec(), b"bb".to_vec()]);
        assert_eq!(decoded, changes);
        // Every cut is refused, never misread.
        for cut in 0..bytes.len() {
            assert!(decode_intent(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_intent(&longer).is_err());
    }

    #[test]
    fn a_write_sees_its_own_changes_and_an_error_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = fixtures::open(dir.path());
        let tree = store.db.open_tree("t").unwrap();
        tree.insert("kept", "1").unwrap();
        store
            .atomically([&tree], |[t]| {
                assert_eq!(t.replace("new", "2")?, None);
                assert_eq!(t.get("new")?.as_deref(), Some(&b"2"[..]));
                assert_eq!(t.take("kept")?.as_deref(), Some(&b"1"[..]));
                assert_eq!(t.get("kept")?, None);
                assert_eq!(t.take("kept")?, None);
                assert_eq!(t.replace("new", "3")?.as_deref(), Some(&b"2"[..]));
                t.insert("blind", "4")?;
                t.remove("blind")?;
                assert_eq!(t.get("blind")?, None);
                Ok(())
            })
            .unwrap();
        assert_eq!(tree.get("new").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(tree.get("kept").unwrap(), None);
        let failed: StoreResult<()> = store.atomically([&tree], |[t]| {
            t.insert("new", "4")?;
            t.remove("new")?;
            Err(StoreError::Engine("no".into()))
        });
        assert!(failed.is_err());
        assert_eq!(tree.get("new").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(store.intents.len(), 0);
    }

    #[test]
    fn an_intent_left_by_a_crash_is_applied_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = fixtures::open(dir.path());
            let (a, b) = (
                store.db.open_tree("a").unwrap(),
                store.db.open_tree("b").unwrap(),
            );
            a.insert("old", "x").unwrap();
            // What a crash right after the intent leaves: the intent, one change applied.
            let changes: Vec<Change> = vec![
                (0, IVec::from(&b"old"[..]), None),
                (1, IVec::from(&b"new"[..]), Some(IVec::from(&b"y"[..]))),
            ];
            let mut head = vec![INLINE];
            head.extend_from_slice(&encode_intent(&[&a, &b], &changes).unwrap());
            store.intents.insert(7u64.to_be_bytes(), head).unwrap();
            a.remove("old").unwrap();
            store.db.flush().unwrap();
        }
        let store = fixtures::open(dir.path());
        let (a, b) = (
            store.db.open_tree("a").unwrap(),
            store.db.open_tree("b").unwrap(),
        );
        assert_eq!(a.get("old").unwrap(), None);
        assert_eq!(b.get("new").unwrap().as_deref(), Some(&b"y"[..]));
        assert_eq!(store.intents.len(), 0);
    }
}
