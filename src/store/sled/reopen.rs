//! Opening the store's files again in a running server, after sled stopped taking writes.
//!
//! sled keeps the first error of a write to its log (a full disk: `ENOSPC`) and answers it to
//! every later write until the process closes it; reads from its cache go on. Once the disk has
//! room again, closing and opening the files gives a working store, with every write that sled
//! had flushed: management writes are flushed before they are acknowledged, so none of them is
//! lost; check-ins acknowledged after the last good flush may be (README: Crashes).

use std::path::PathBuf;
use std::sync::Arc;

use super::{SledOptions, SledStore};
use crate::store::handle::Reopen;
use crate::store::{Store, StoreError, StoreResult};

/// Free bytes the disk must have before the files are opened again: sled writes a little on
/// opening, and a store that fails again at once would only have closed for nothing.
pub const REOPEN_ROOM: u64 = 4 << 20;

pub struct SledReopen {
    pub path: PathBuf,
    pub options: SledOptions,
}

impl Reopen for SledReopen {
    fn ready(&self) -> StoreResult<()> {
        let free = fs2::available_space(&self.path)
            .map_err(|error| StoreError::Unavailable(format!("reading free space: {error}")))?;
        if free < REOPEN_ROOM {
            return Err(StoreError::Full(format!(
                "{free} bytes free on the disk of {}, {REOPEN_ROOM} needed",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn open(&self) -> StoreResult<Arc<dyn Store>> {
        Ok(SledStore::open(&self.path, &self.options)?)
    }
}
