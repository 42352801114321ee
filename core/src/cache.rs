//! The decoded-frame cache: frames kept across batches and epochs, bounded in bytes, shared by
//! the threads of a process.
//!
//! Entries are the decoder's own bytes (uint8 `(H, W, 3)`, or a depth map's 16-bit codes),
//! keyed by video file, representation and frame position, so one entry serves every output
//! format (a cached frame is converted into the
//! caller's format exactly as a decoded one is) and costs what the decoded frame costs.
//!
//! **Policy: fill, then keep.** Frames are admitted while they fit; once the budget is spent,
//! new frames are not admitted and nothing is evicted. Training reads every frame once per
//! epoch in a new random order (a permutation, or permuted GOP units), so the next use of any
//! frame is about an epoch away, and every frame is as likely as any other to be asked for
//! next. Under that pattern a fixed set of frames is hit at the rate `cache / dataset`, which no
//! online policy beats on average; recency-based policies do worse, because the frames they
//! keep are the ones used last, which are the ones the rest of the epoch will not ask for
//! again (LRU over shuffled epochs with a cache of a quarter of the dataset hits about 3% of
//! requests instead of 25%: see the `policy_hit_rates` test). Evicting would also cost a
//! decode's worth of memory churn per miss for no gain.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Shards of the map: lookups from several decoding threads rarely wait on each other.
const SHARDS: usize = 32;

use crate::frame::Decoded;

type Key = (Arc<PathBuf>, Decoded, usize);
type Shard = Mutex<HashMap<Key, Arc<[u8]>>>;

/// Counters of a dataset's decoded-frame cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Capacity in bytes.
    pub capacity: usize,
    /// Bytes held by cached frames.
    pub bytes: usize,
    /// Frames held.
    pub frames: usize,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests that had to decode.
    pub misses: u64,
}

/// A byte-bounded cache of decoded frames; see the module documentation.
pub struct FrameCache {
    capacity: usize,
    bytes: AtomicUsize,
    frames: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Shard>,
}

impl FrameCache {
    /// An empty cache holding at most `capacity` bytes of frames.
    pub fn new(capacity: usize) -> FrameCache {
        FrameCache {
            capacity,
            bytes: AtomicUsize::new(0),
            frames: AtomicUsize::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, path: &Arc<PathBuf>, kind: Decoded, pos: usize) -> Option<&Shard> {
        let mut h = self.hasher.build_hasher();
        path.hash(&mut h);
        kind.hash(&mut h);
        pos.hash(&mut h);
        // (`SHARDS` is non-zero; the remainder indexes `shards`)
        self.shards.get((h.finish() % SHARDS as u64) as usize)
    }

    /// The cached bytes of frame `pos` of `path` decoded as `kind`, counting a hit or a miss.
    pub fn get(&self, path: &Arc<PathBuf>, kind: Decoded, pos: usize) -> Option<Arc<[u8]>> {
        let found = self.shard(path, kind, pos).and_then(|s| {
            // A panic cannot leave a map half-updated (every change is one call): a poisoned
            // shard is used as is.
            let map = s.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&(path.clone(), kind, pos)).cloned()
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Whether a frame of `len` bytes would be admitted now (callers skip copying one out of
    /// their buffers when it would not).
    pub fn admits(&self, len: usize) -> bool {
        self.bytes
            .load(Ordering::Relaxed)
            .checked_add(len)
            .is_some_and(|n| n <= self.capacity)
    }

    /// Keeps `bytes` as frame `pos` of `path` decoded as `kind` if it fits in the remaining
    /// budget.
    pub fn insert(&self, path: &Arc<PathBuf>, kind: Decoded, pos: usize, bytes: &[u8]) {
        let len = bytes.len();
        // reserve the bytes first, so that concurrent inserts never exceed the capacity
        let reserved = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                n.checked_add(len).filter(|&m| m <= self.capacity)
            })
            .is_ok();
        if !reserved {
            return;
        }
        let Some(shard) = self.shard(path, kind, pos) else {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            return;
        };
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        match map.entry((path.clone(), kind, pos)) {
            std::collections::hash_map::Entry::Occupied(_) => {
                // another thread cached it meanwhile
                drop(map);
                self.bytes.fetch_sub(len, Ordering::AcqRel);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Arc::from(bytes));
                self.frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The cache's counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            capacity: self.capacity,
            bytes: self.bytes.load(Ordering::Acquire),
            frames: self.frames.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> Arc<PathBuf> {
        Arc::new(PathBuf::from(name))
    }

    #[test]
    fn bounded_in_bytes_and_returns_what_was_stored() {
        let c = FrameCache::new(100);
        let a = path("a.mp4");
        c.insert(&a, Decoded::Rgb24, 0, &[1u8; 40]);
        c.insert(&a, Decoded::Rgb24, 1, &[2u8; 40]);
        c.insert(&a, Decoded::Rgb24, 2, &[3u8; 40]); // does not fit
        c.insert(&a, Decoded::Rgb24, 0, &[9u8; 10]); // already there: kept as is, budget untouched
        assert_eq!(
            c.get(&a, Decoded::Rgb24, 0).as_deref(),
            Some(&[1u8; 40][..])
        );
        assert_eq!(
            c.get(&a, Decoded::Rgb24, 1).as_deref(),
            Some(&[2u8; 40][..])
        );
        assert!(c.get(&a, Decoded::Rgb24, 2).is_none());
        assert!(c.get(&path("b.mp4"), Decoded::Rgb24, 0).is_none());
        let s = c.stats();
        assert_eq!((s.bytes, s.frames, s.hits, s.misses), (80, 2, 2, 2));
        assert!(c.admits(20) && !c.admits(21));
    }

    #[test]
    fn concurrent_inserts_never_exceed_the_capacity() {
        let c = FrameCache::new(1000);
        let a = path("a.mp4");
        std::thread::scope(|s| {
            for t in 0..4 {
                let (c, a) = (&c, &a);
                s.spawn(move || {
                    for i in 0..200 {
                        c.insert(a, Decoded::Rgb24, t * 1000 + i, &[0u8; 7]);
                    }
                });
            }
        });
        let s = c.stats();
        assert!(s.bytes <= 1000);
        assert_eq!(s.bytes, 7 * s.frames);
        assert_eq!(s.frames, 1000 / 7);
    }

    /// Hit rates over shuffled epochs of a dataset four times the cache: this policy against
    /// LRU, the recency policy it replaces (simulated here with the same budget).
    #[test]
    fn policy_hit_rates() {
        const N: usize = 4000;
        const CAP: usize = N / 4;
        // a small deterministic permutation generator (xorshift Fisher-Yates)
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut epochs: Vec<Vec<usize>> = Vec::new();
        for _ in 0..4 {
            let mut p: Vec<usize> = (0..N).collect();
            for i in (1..N).rev() {
                p.swap(i, rand(i + 1));
            }
            epochs.push(p);
        }
        let c = FrameCache::new(CAP);
        let a = path("a.mp4");
        let mut lru: std::collections::VecDeque<usize> = Default::default();
        let (mut lru_hits, mut total) = (0usize, 0usize);
        for (e, order) in epochs.iter().enumerate() {
            for &f in order {
                if c.get(&a, Decoded::Rgb24, f).is_none() {
                    c.insert(&a, Decoded::Rgb24, f, &[0u8]);
                }
                let hit = lru.iter().position(|&x| x == f);
                if let Some(i) = hit {
                    lru.remove(i);
                }
                lru.push_back(f);
                if lru.len() > CAP {
                    lru.pop_front();
                }
                if e > 0 {
                    total += 1;
                    lru_hits += usize::from(hit.is_some());
                }
            }
        }
        let s = c.stats();
        // the first epoch fills the cache (all misses); the later ones hit a quarter
        let warm_hits = s.hits as f64 / total as f64;
        let lru_rate = lru_hits as f64 / total as f64;
        assert!((warm_hits - 0.25).abs() < 1e-9, "{warm_hits}");
        assert!(lru_rate < 0.08, "{lru_rate}");
    }
}
