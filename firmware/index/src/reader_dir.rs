//! The directory a *reader* opens the index through: tantivy's `MmapDirectory`, except
//! that a reader never fails for want of a lock file it cannot create.
//!
//! Why: tantivy's `IndexReader` takes `META_LOCK` (it creates `.tantivy-meta.lock` and
//! flocks it) while it loads `meta.json`, so that a writer's garbage collection does not
//! delete segment files under it. On a read-only data directory (evidence on
//! write-protected media, an appliance disk mounted for review) the lock file cannot be
//! created and every search failed with a raw tantivy lock error. No writer can exist on a
//! file system nobody can write, so there is nothing to protect against: the reader goes
//! on without the lock. On a writable directory the lock is taken as before.
//!
//! Readers never take `INDEX_WRITER_LOCK` (only `ingest::Ingester` does): a search while
//! the analyzer indexes must not make the analyzer's writer fail with `LockBusy`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, WatchCallback, WatchHandle, WritePtr,
};

/// `MmapDirectory` whose locks degrade to no lock when the directory cannot be written.
#[derive(Clone, Debug)]
pub(crate) struct ReaderDirectory {
    inner: MmapDirectory,
}

impl ReaderDirectory {
    pub(crate) fn open(path: &Path) -> tantivy::Result<ReaderDirectory> {
        Ok(ReaderDirectory {
            inner: MmapDirectory::open(path)?,
        })
    }
}

/// The lock file could not be created because nobody may write here.
fn cannot_write_here(e: &LockError) -> bool {
    match e {
        LockError::IoError(io) => matches!(
            io.kind(),
            io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied
        ),
        LockError::LockBusy => false,
    }
}

impl Directory for ReaderDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }
    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }
    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }
    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.inner.open_write(path)
    }
    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }
    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.atomic_write(path, data)
    }
    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }
    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        match self.inner.acquire_lock(lock) {
            Err(e) if cannot_write_here(&e) => Ok(DirectoryLock::from(Box::new(()))),
            other => other,
        }
    }
    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}
