//! The per-process runtime of a dataset (the rayon pool and the decoder pool) and its
//! decoded-frame cache, both rebuilt after `fork`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{check_decode_threads, Dataset};
use crate::cache::{CacheStats, FrameCache};
use crate::error::{Error, Result};
use crate::video::DecoderPool;

pub(super) struct Runtime {
    pub(super) pid: u32,
    pub(super) pool: rayon::ThreadPool,
    pub(super) decoders: DecoderPool,
}

impl Dataset {
    /// Video frames this process has decoded for the dataset since its thread pool was
    /// (re)built (for tests and benchmarks: decodes per sample).
    pub fn frames_decoded(&self) -> u64 {
        self.runtime
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|rt| rt.decoders.frames_decoded()))
            .unwrap_or(0)
    }

    /// Decoding threads this process uses for the dataset.
    pub fn decode_threads(&self) -> usize {
        self.decode_threads.load(Ordering::Relaxed)
    }

    /// Sets the decoding threads of this process (at least 1); the thread pool and decoders
    /// are rebuilt on next use. Adapters call it in data-loading worker processes, so that
    /// workers times threads matches the cores.
    pub fn set_decode_threads(&self, n: usize) -> Result<()> {
        self.decode_threads
            .store(check_decode_threads(n)?, Ordering::Relaxed);
        Ok(())
    }

    /// Keeps up to `bytes` of decoded frames for reuse by later batches of any caller in this
    /// process (`0` turns the cache off and frees it). Replaces an existing cache only when the
    /// size changes. See the `cache` module for the policy.
    pub fn set_frame_cache(&self, bytes: usize) {
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        let same = guard
            .as_ref()
            .is_some_and(|(p, c)| *p == pid && c.stats().capacity == bytes);
        if !same {
            if let Some((p, old)) = guard.take() {
                if p != pid {
                    // made before a fork: its locks may be held by threads that do not exist here
                    std::mem::forget(old);
                }
            }
            *guard = (bytes > 0).then(|| (pid, Arc::new(FrameCache::new(bytes))));
        }
    }

    /// The counters of the decoded-frame cache, or None without one.
    pub fn frame_cache_stats(&self) -> Option<CacheStats> {
        self.frame_cache().map(|c| c.stats())
    }

    /// The cache of this process: one made before a fork is replaced by an empty one of the
    /// same size (its shard locks may be held by threads the child does not have).
    pub(super) fn frame_cache(&self) -> Option<Arc<FrameCache>> {
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        match guard.take() {
            None => None,
            Some((p, c)) if p == pid => {
                *guard = Some((p, c.clone()));
                Some(c)
            }
            Some((_, old)) => {
                let fresh = Arc::new(FrameCache::new(old.stats().capacity));
                std::mem::forget(old);
                *guard = Some((pid, fresh.clone()));
                Some(fresh)
            }
        }
    }

    /// Runs `f` on this dataset's decode threads. A parallel loop whose body decodes (over
    /// episodes, say) must run there: a thread of another pool (rayon's global one) that waits
    /// for a decode on these threads runs other iterations of its loop meanwhile, each nested
    /// on its stack, without bound; with enough iterations the stack overflows. Here the decode
    /// of an iteration runs on the iteration's own thread.
    pub fn on_decode_threads<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        let rt = self.runtime()?;
        Ok(rt.pool.install(f))
    }

    pub(super) fn runtime(&self) -> Result<Arc<Runtime>> {
        let pid = std::process::id();
        let threads = self.decode_threads();
        let mut guard = self.runtime.lock().map_err(|_| {
            Error::internal(
                "starting the decode runtime",
                "its lock was poisoned by an earlier panic",
            )
        })?;
        if let Some(rt) = guard.as_ref() {
            if rt.pid == pid && rt.pool.current_num_threads() == threads {
                return Ok(rt.clone());
            }
        }
        if let Some(old) = guard.take() {
            if old.pid != pid {
                // Forked child: the parent's worker threads do not exist here and its open
                // files share offsets with the parent. Leak the old runtime (never touch it).
                std::mem::forget(old);
            }
            // else: same process, another thread count; the old runtime closes when the
            // batches still using it finish
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("roboframes-{i}"))
            .build()
            .map_err(|e| Error::InvalidArgument {
                // (the system refused a thread: too many for its limits)
                msg: format!(
                    "cannot start {threads} decode threads ({e}); use fewer decode_threads"
                ),
            })?;
        let rt = Arc::new(Runtime {
            pid,
            pool,
            // positioned readers per file for interleaved sequential reads (GopShuffleSampler's
            // streams), and room for a few files (cameras, chunk files) at a time
            decoders: DecoderPool::with_strictness(
                8 * (2 * threads + 4),
                2 * threads + 4,
                1,
                self.strict_decode,
            ),
        });
        *guard = Some(rt.clone());
        Ok(rt)
    }
}
