//! The byte-source layer under every read of a dataset (metadata, tables, videos, embedded
//! images): local files, or objects of a remote root (S3 and S3-compatible stores, GCS, Azure,
//! plain HTTP(S) with Range requests, the Hugging Face Hub as HTTP at a resolved commit)
//! through the `object_store` crate, behind a block cache.
//!
//! A location is a `PathBuf` either way: a local path, or `<root url>/<relative path>` below a
//! root registered by [`open_root`]. Readers of metadata, parquet and video ask this module for
//! bytes ([`read`], [`source`]) and never see which kind of root they read.
//!
//! Remote reads go through aligned blocks ([`BLOCK_BYTES`]): a process-wide in-memory cache
//! bounded in bytes (least recently used blocks leave first) and, with `cache_dir`, files on
//! local disk keyed by the object's ETag, so a changed object is never served from a stale
//! block. Missing blocks of one read are fetched in coalesced ranges, in parallel, at most
//! [`MAX_IN_FLIGHT`] requests at a time per process; a block another thread is fetching is
//! waited for, not fetched twice. Every ranged request carries `If-Match` with the ETag the
//! object had when this dataset first read it: a changed object fails the read
//! ([`Error::Remote`] saying so) instead of mixing two versions; whole-file reads (metadata,
//! tables) start over once at the new version. Requests are retried with exponential backoff on
//! 429/5xx answers, dropped connections and timeouts (`object_store`'s retry layer); once the
//! retries are spent the read fails with an error naming the object.
//!
//! A forked child (DataLoader workers) rebuilds the runtime, the HTTP clients and the memory
//! cache on first use: the parent's threads and connections do not exist in it.

mod cache;
mod config;
mod cursor;
mod object;
mod state;

use std::io::Read;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::error::{Error, Location, Result};

pub use config::open_root;
pub use cursor::{RemoteCursor, Source};
pub use object::RemoteObject;
pub(crate) use object::{recorded_failure, FailureSlot};

use object::{remote_error, CHANGED};
use state::{remote_of, state, CACHE_BYTES, CONFIGS};

/// Size of a cache block (and the alignment of every ranged request). Small, so that a random
/// frame costs little more than its group of pictures; sequential reads fetch runs of blocks.
pub const BLOCK_BYTES: u64 = 64 * 1024;
/// Ranged requests of one process in flight at once (DataLoader workers are processes: each
/// starts with this bound, and the retry layer backs off with jitter on 429).
pub const MAX_IN_FLIGHT: usize = 8;
/// Default size of the process's in-memory block cache.
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// How to reach a remote root.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// Options of the store (`object_store`'s configuration keys: `aws_endpoint`,
    /// `aws_access_key_id`, `aws_region`, `aws_allow_http`, `timeout`, ...) plus roboframes's
    /// own: `max_retries`, `retry_timeout` (seconds), `token` (a bearer token for HTTP and the
    /// Hub).
    pub storage_options: Vec<(String, String)>,
    /// A folder for blocks on local disk (shared by processes; keyed by ETag).
    pub cache_dir: Option<PathBuf>,
    /// Bytes of the process's in-memory block cache (the largest asked for is kept).
    pub block_cache_bytes: Option<u64>,
}

/// Requests made and bytes received from one remote root by this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    pub requests: u64,
    pub bytes: u64,
    /// Blocks served from the disk cache.
    pub disk_hits: u64,
}

fn internal(msg: impl Into<String>) -> Error {
    Error::internal("remote storage", msg)
}

/// True when `s` names a remote root or a location below one (`scheme://...`).
pub fn is_url(s: &str) -> bool {
    match s.find("://") {
        Some(i) if i > 0 => s[..i]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The functions the readers call.

/// True when `path` exists (a regular file, locally).
pub fn exists(path: &Path) -> Result<bool> {
    match remote_of(path)? {
        None => Ok(path.exists()),
        Some((remote, rel, handles)) => match RemoteObject::open(remote, &rel, handles, path) {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// Opens the bytes at `path` (`NotFound` when missing).
pub fn source(path: &Path) -> Result<Source> {
    match remote_of(path)? {
        None => {
            crate::fs::regular_file(path)?;
            std::fs::File::open(path)
                .map(Source::Local)
                .map_err(|e| Error::io(path, e))
        }
        Some((remote, rel, handles)) => {
            RemoteObject::open(remote, &rel, handles, path).map(Source::Remote)
        }
    }
}

/// The remote object at `path` pinned at `version` (a video whose frame index was built from
/// that version), or at its current version when `version` is None. None for a local path.
pub fn remote_object(path: &Path, version: Option<&str>) -> Result<Option<RemoteObject>> {
    let Some((remote, rel, handles)) = remote_of(path)? else {
        return Ok(None);
    };
    let obj = RemoteObject::open(remote, &rel, handles, path)?;
    if let (Some(want), Some(have)) = (version, obj.version()) {
        if want != have {
            return Err(remote_error(
                path,
                format!(
                    "{CHANGED} since its frame index was built (a new ETag); open the dataset \
                     again to read the new version"
                ),
            ));
        }
    }
    Ok(Some(obj))
}

/// Fetches the byte ranges of the remote file at `path` (pinned at `version`) into the block
/// cache, in parallel; nothing for a local path.
pub fn prefetch(path: &Path, version: Option<&str>, ranges: &[(u64, u64)]) -> Result<()> {
    if ranges.is_empty() {
        return Ok(());
    }
    match remote_object(path, version)? {
        Some(obj) => obj.prefetch(ranges),
        None => Ok(()),
    }
}

/// Runs a whole-file read of `path`; when the object changed under it (a remote read answered
/// 412), forgets the version it read and runs it once more at the new one.
pub fn whole<T>(path: &Path, mut read: impl FnMut(&Source) -> Result<T>) -> Result<T> {
    let src = source(path)?;
    match read(&src) {
        Err(Error::Remote { ref msg, .. }) if msg.starts_with(CHANGED) => {
            if let Source::Remote(o) = &src {
                o.forget();
            }
            let src = source(path)?;
            read(&src)
        }
        other => other,
    }
}

/// The most bytes a whole-file read of a table may take (metadata tables read whole).
pub const MAX_WHOLE_READ: u64 = 1 << 30;

/// The whole file at `path`, refused when it holds more than `max_bytes` (a metadata file a
/// hostile or broken store makes huge costs its size several times over once parsed).
pub fn read(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let too_big = |n: u64| Error::Metadata {
        at: Location::file(path),
        msg: format!("the file holds {n} bytes, more than the {max_bytes} a metadata file may"),
    };
    whole(path, |src| match src {
        Source::Local(f) => {
            let mut out = Vec::new();
            // read one byte past the bound: a file growing while it is read is caught too
            f.take(max_bytes.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| Error::io(path, e))?;
            match u64::try_from(out.len()) {
                Ok(n) if n <= max_bytes => Ok(out),
                _ => Err(too_big(
                    std::fs::metadata(path).map_or(max_bytes.saturating_add(1), |m| m.len()),
                )),
            }
        }
        Source::Remote(o) if o.len() > max_bytes => Err(too_big(o.len())),
        Source::Remote(o) => o.read_range(0, o.len(), 0).map(|b| b.to_vec()),
    })
}

/// Storage options as given and the disk cache folder of a remote root.
pub type RootOptions = (Vec<(String, String)>, Option<PathBuf>);

/// The storage options and disk cache a remote root at `location` was opened with in this
/// process (what a worker process needs to open it the same way); None for other locations.
pub fn root_options(location: &Path) -> Result<Option<RootOptions>> {
    let s = location.to_string_lossy();
    let s = s.trim_end_matches('/');
    let configs = CONFIGS.lock().map_err(|_| internal("poisoned lock"))?;
    // the root itself, or the folder of a root that is one file (a remote MCAP recording)
    let parent = s.rsplit_once('/').map(|(p, _)| p);
    Ok(configs
        .iter()
        .find(|c| c.location == s)
        .or_else(|| configs.iter().find(|c| Some(c.location.as_str()) == parent))
        .map(|c| (c.given.clone(), c.cache_dir.clone())))
}

/// Requests made and bytes received so far from the remote root at `location`.
pub fn stats(location: &Path) -> Result<Option<RemoteStats>> {
    Ok(remote_of(location)?.map(|(r, _, _)| RemoteStats {
        requests: r.requests.load(Ordering::Relaxed),
        bytes: r.bytes.load(Ordering::Relaxed),
        disk_hits: r.disk_hits.load(Ordering::Relaxed),
    }))
}

/// Empties this process's in-memory block cache (benchmarks measure cold reads).
pub fn clear_memory_cache() -> Result<()> {
    let guard = state()?;
    if let Some(st) = guard.as_ref() {
        let mut inner = st
            .blocks
            .inner
            .lock()
            .map_err(|_| internal("poisoned lock"))?;
        inner.lru.clear();
        inner.bytes = 0;
    }
    Ok(())
}

/// The number of cache blocks the in-memory cache may hold (for tests).
pub fn memory_cache_capacity() -> Option<NonZeroUsize> {
    NonZeroUsize::new((CACHE_BYTES.load(Ordering::Relaxed) / BLOCK_BYTES) as usize)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("s3://bucket/x"));
        assert!(is_url("hf://datasets/a/b"));
        assert!(is_url("https://host/p"));
        assert!(!is_url("/data/s3://x"));
        assert!(!is_url("relative/path"));
        assert!(!is_url("://nothing"));
    }
}
