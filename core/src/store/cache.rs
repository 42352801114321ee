//! The caches of remote blocks: the process's in-memory cache (least recently used blocks
//! leave first, a block being fetched is claimed so no other thread fetches it too) and the
//! writes of blocks to the disk cache.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

type BlockKey = (Arc<str>, u64);

/// Writes a disk-cache block (temporary file, then rename: readers never see half a block);
/// a cache that cannot be written is only a slower read.
pub(super) fn write_atomically(path: &Path, data: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(
        ".{}.{}.{:?}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&tmp, data).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Blocks this thread claimed for fetching: released (and waiting threads woken) when dropped,
/// on every path out of the fetch, a panic included, so no other thread waits for them forever.
pub(super) struct Claim<'a> {
    pub(super) cache: &'a BlockCache,
    pub(super) id: Arc<str>,
    pub(super) blocks: Vec<u64>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // (a poisoned lock still guards a consistent set: inserts and removals are single calls)
        let mut inner = self.cache.inner.lock().unwrap_or_else(|e| e.into_inner());
        for b in &self.blocks {
            inner.inflight.remove(&(self.id.clone(), *b));
        }
        drop(inner);
        self.cache.done.notify_all();
    }
}

/// The in-memory block cache of a process: least recently used blocks leave first.
pub(super) struct BlockCache {
    pub(super) inner: Mutex<BlockInner>,
    pub(super) done: Condvar,
}

pub(super) struct BlockInner {
    pub(super) lru: lru::LruCache<BlockKey, Bytes>,
    pub(super) bytes: u64,
    pub(super) capacity: u64,
    pub(super) inflight: HashSet<BlockKey>,
}

/// Where a block stands for a thread that wants it: cached, being fetched by another thread,
/// or now claimed by this one (which must fetch it and release the claim).
pub(super) enum Slot {
    Cached(Bytes),
    Inflight,
    Claimed,
}

impl BlockCache {
    /// The one block-claiming protocol, under the cache's lock: a cached block is returned, a
    /// block another thread is fetching is left to it, any other block is claimed.
    pub(super) fn slot(inner: &mut BlockInner, key: BlockKey) -> Slot {
        if let Some(bytes) = inner.lru.get(&key) {
            Slot::Cached(bytes.clone())
        } else if inner.inflight.contains(&key) {
            Slot::Inflight
        } else {
            inner.inflight.insert(key);
            Slot::Claimed
        }
    }

    pub(super) fn new(capacity: u64) -> BlockCache {
        BlockCache {
            inner: Mutex::new(BlockInner {
                lru: lru::LruCache::unbounded(),
                bytes: 0,
                capacity,
                inflight: HashSet::new(),
            }),
            done: Condvar::new(),
        }
    }
}

impl BlockInner {
    pub(super) fn put(&mut self, key: BlockKey, bytes: Bytes) {
        let n = bytes.len() as u64;
        if n > self.capacity {
            return;
        }
        if let Some(old) = self.lru.put(key, bytes) {
            self.bytes = self.bytes.saturating_sub(old.len() as u64);
        }
        self.bytes += n;
        while self.bytes > self.capacity {
            match self.lru.pop_lru() {
                Some((_, b)) => self.bytes = self.bytes.saturating_sub(b.len() as u64),
                None => break,
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_cache_stays_within_its_bytes() {
        let c = BlockCache::new(3 * 10);
        let mut inner = c.inner.lock().expect("lock");
        for b in 0..10u64 {
            inner.put((Arc::from("x"), b), Bytes::from(vec![0u8; 10]));
        }
        assert_eq!(inner.bytes, 30);
        assert_eq!(inner.lru.len(), 3);
        assert!(inner.lru.contains(&(Arc::from("x"), 9)));
        assert!(!inner.lru.contains(&(Arc::from("x"), 0)));
    }
}
