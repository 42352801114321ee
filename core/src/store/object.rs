//! One object of a remote root at one version: its HEAD, its blocks read through the caches,
//! the ranged requests that fetch them, and the errors of the store.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use sha2::{Digest, Sha256};

use super::cache::{write_atomically, BlockCache, Claim, Slot};
use super::state::{Handles, Remote};
use super::{internal, BLOCK_BYTES};
use crate::error::{Error, Location, Result};

/// The most blocks one ranged request asks for (8 MiB): every request can finish within the
/// per-attempt `timeout` at a modest rate, and a whole-file read of a large table is several.
const MAX_REQUEST_BLOCKS: u64 = 128;

#[derive(Debug, Clone)]
pub(super) struct Head {
    size: u64,
    /// The object's version as far as the server tells it: its ETag, or its modification time
    /// and size when it sends no ETag (None: neither).
    version: Option<String>,
    /// The ETag as sent (strong, or weak: `W/"..."`).
    etag: Option<String>,
    /// `Last-Modified` as sent, in milliseconds since 1970 (None when the server sends none).
    last_modified: Option<i64>,
    /// Names this version's blocks in the caches. A strong ETag proves the bytes: blocks named
    /// by it are shared by every dataset of the process and kept on disk. Without one, the name
    /// belongs to this HEAD alone: its blocks are never served to a dataset that opened the
    /// object again (which may have changed in a way its time and size cannot tell) and never
    /// go to disk.
    tag: String,
    /// True when `tag` is a strong ETag (the blocks may be kept on disk).
    provable: bool,
}

/// Numbers the HEADs of objects without a strong ETag (see [`Head::tag`]).
static UNPROVEN_HEADS: AtomicU64 = AtomicU64::new(0);

/// `Last-Modified` of an object's metadata in milliseconds; None when the server sent none
/// (`object_store` reports a missing header as the epoch).
fn modified_millis(meta: &object_store::ObjectMeta) -> Option<i64> {
    Some(meta.last_modified.timestamp_millis()).filter(|&t| t != 0)
}

impl Head {
    fn of(meta: &object_store::ObjectMeta) -> Head {
        let etag = meta.e_tag.clone();
        let last_modified = modified_millis(meta);
        let version = etag
            .clone()
            .or_else(|| last_modified.map(|t| format!("{t}-{}", meta.size)));
        let strong = etag.clone().filter(|e| !e.starts_with("W/"));
        let provable = strong.is_some();
        let tag = strong.unwrap_or_else(|| {
            format!(
                "unproven-{}-{}",
                std::process::id(),
                UNPROVEN_HEADS.fetch_add(1, Ordering::Relaxed)
            )
        });
        Head {
            size: meta.size,
            version,
            etag,
            last_modified,
            tag,
            provable,
        }
    }

    /// Why a response (its metadata) is of another version than this HEAD saw, if it is: a
    /// server that ignores `If-Match` answers with the new object's bytes, and they must not be
    /// mixed into frames indexed at this version.
    fn other_version(&self, got: &object_store::ObjectMeta) -> Option<String> {
        if got.size != self.size {
            return Some(format!(
                "its size is now {} bytes, not {}",
                got.size, self.size
            ));
        }
        match (&self.etag, &got.e_tag) {
            (Some(want), Some(have)) if want != have => {
                return Some(format!("its ETag is now {have}, not {want}"))
            }
            _ => {}
        }
        match (self.last_modified, modified_millis(got)) {
            (Some(want), Some(have)) if self.etag.is_none() && want != have => {
                Some("its Last-Modified time changed".into())
            }
            _ => None,
        }
    }
}

/// How the message of a [`Error::Remote`] for a changed object starts.
pub(super) const CHANGED: &str = "the object changed";

pub(super) fn remote_error(path: &Path, msg: impl Into<String>) -> Error {
    Error::Remote {
        at: Location::file(path),
        msg: msg.into(),
    }
}

/// The error of a failed store operation on `path`: `NotFound` for a missing object, a
/// [`Error::Remote`] otherwise (retries spent, a server that ignores `Range`, a changed object).
pub(super) fn store_error(path: &Path, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound {
            at: Location::file(path),
            detail: String::new(),
        },
        object_store::Error::Precondition { .. } => remote_error(
            path,
            format!(
                "{CHANGED} while it was being read (its ETag is no longer the one first read); \
                 open the dataset again to read the new version"
            ),
        ),
        object_store::Error::NotSupported { source } => remote_error(
            path,
            format!(
                "the server does not honour HTTP Range requests ({source}); roboframes reads \
                 remote files by ranges and never downloads them whole"
            ),
        ),
        other => remote_error(path, other.to_string()),
    }
}

/// One object of a remote root at one version.
#[derive(Clone)]
pub struct RemoteObject {
    remote: Arc<Remote>,
    handles: Handles,
    key: ObjPath,
    path: PathBuf,
    head: Arc<Head>,
    /// `store url / key # version`: names the object's blocks in the caches.
    id: Arc<str>,
    /// The first error of a read through this handle.
    pub(super) failure: FailureSlot,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteObject({})", self.path.display())
    }
}

impl RemoteObject {
    /// The object at `path`, at the version this dataset first saw (a HEAD request the first
    /// time).
    pub(super) fn open(
        remote: Arc<Remote>,
        rel: &str,
        handles: Handles,
        path: &Path,
    ) -> Result<Self> {
        if rel.is_empty()
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::InvalidArgument {
                msg: format!("'{}' is not a file below the root", path.display()),
            });
        }
        let cached = remote
            .heads
            .lock()
            .map_err(|_| internal("poisoned lock"))?
            .get(rel)
            .cloned();
        let key = remote.key(rel);
        let head = match cached {
            Some(h) => h,
            None => {
                let store = remote.store.clone();
                let k = key.clone();
                remote.requests.fetch_add(1, Ordering::Relaxed);
                let deadline = remote.cfg.retry.retry_timeout;
                let meta = handles
                    .runtime
                    .block_on(within(deadline, path, async move { store.head(&k).await }))?;
                let h = Arc::new(Head::of(&meta));
                remote
                    .heads
                    .lock()
                    .map_err(|_| internal("poisoned lock"))?
                    .insert(rel.to_owned(), h.clone());
                h
            }
        };
        let id: Arc<str> = format!("{}/{}#{}", remote.cfg.store_url, key, head.tag).into();
        Ok(RemoteObject {
            remote,
            handles,
            key,
            path: path.to_owned(),
            head,
            id,
            failure: Arc::new(Mutex::new(None)),
        })
    }

    /// Forgets the version of this object, so the next open reads the current one.
    pub(super) fn forget(&self) {
        let rel = self.path.to_string_lossy();
        let loc = &self.remote.cfg.location;
        if let (Some(r), Ok(mut heads)) = (rel.strip_prefix(loc.as_str()), self.remote.heads.lock())
        {
            heads.remove(r.trim_start_matches('/'));
        }
    }

    pub fn len(&self) -> u64 {
        self.head.size
    }

    pub fn is_empty(&self) -> bool {
        self.head.size == 0
    }

    /// The object's version (ETag, or modification time and size), when the server gave one.
    pub fn version(&self) -> Option<&str> {
        self.head.version.as_deref()
    }

    fn disk_file(&self, block: u64) -> Option<PathBuf> {
        let dir = self.remote.cfg.cache_dir.as_ref()?;
        if !self.head.provable {
            return None;
        }
        let digest = Sha256::digest(self.id.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Some(dir.join(hex).join(format!("{BLOCK_BYTES}-{block}")))
    }

    pub(super) fn block_range(&self, block: u64) -> Range<u64> {
        let start = block.saturating_mul(BLOCK_BYTES);
        start..start.saturating_add(BLOCK_BYTES).min(self.head.size)
    }

    /// The bytes `[start, end)` of the object (end clamped to its size).
    pub fn read_range(&self, start: u64, end: u64, ahead: u64) -> Result<Bytes> {
        let end = end.min(self.head.size);
        if start >= end {
            return Ok(Bytes::new());
        }
        let first = start / BLOCK_BYTES;
        let last = (end - 1) / BLOCK_BYTES;
        let blocks = self.blocks(first, last, ahead)?;
        if let ([one], true) = (blocks.as_slice(), first == last) {
            let off = (start - first * BLOCK_BYTES) as usize;
            let len = (end - start) as usize;
            return one
                .get(off..off + len)
                .map(|_| one.slice(off..off + len))
                .ok_or_else(|| internal("a cached block is shorter than its range"));
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        for (i, b) in blocks.iter().enumerate() {
            let bstart = (first + i as u64) * BLOCK_BYTES;
            let lo = start.saturating_sub(bstart) as usize;
            let hi = ((end - bstart) as usize).min(b.len());
            let part = b
                .get(lo..hi)
                .ok_or_else(|| internal("a cached block is shorter than its range"))?;
            out.extend_from_slice(part);
        }
        Ok(Bytes::from(out))
    }

    /// Blocks `first..=last` (and up to `ahead` more, fetched with them when missing).
    fn blocks(&self, first: u64, last: u64, ahead: u64) -> Result<Vec<Bytes>> {
        let cache = &self.handles.blocks;
        let nblocks = self.head.size.div_ceil(BLOCK_BYTES);
        let mut have: HashMap<u64, Bytes> = HashMap::new();
        for _round in 0..4 {
            let mut claimed = Vec::new();
            let mut waiting = Vec::new();
            {
                let mut inner = cache.inner.lock().map_err(|_| internal("poisoned lock"))?;
                for b in first..=last {
                    if have.contains_key(&b) {
                        continue;
                    }
                    match BlockCache::slot(&mut inner, (self.id.clone(), b)) {
                        Slot::Cached(bytes) => {
                            have.insert(b, bytes);
                        }
                        Slot::Inflight => waiting.push(b),
                        Slot::Claimed => claimed.push(b),
                    }
                }
                // read ahead only past blocks this call fetches anyway (and only blocks that
                // are neither cached nor being fetched: the read-ahead stops at the first)
                if !claimed.is_empty() {
                    let mut b = last + 1;
                    while b < nblocks && b <= last + ahead {
                        match BlockCache::slot(&mut inner, (self.id.clone(), b)) {
                            Slot::Claimed => claimed.push(b),
                            Slot::Cached(_) | Slot::Inflight => break,
                        }
                        b += 1;
                    }
                }
            }
            for (b, bytes) in self.fetch_claimed(claimed)? {
                if (first..=last).contains(&b) {
                    have.insert(b, bytes);
                }
            }
            if !waiting.is_empty() {
                let mut inner = cache.inner.lock().map_err(|_| internal("poisoned lock"))?;
                for b in waiting {
                    let key = (self.id.clone(), b);
                    while inner.inflight.contains(&key) {
                        inner = cache
                            .done
                            .wait(inner)
                            .map_err(|_| internal("poisoned lock"))?;
                    }
                    if let Some(bytes) = inner.lru.get(&key) {
                        have.insert(b, bytes.clone());
                    }
                }
            }
            if (first..=last).all(|b| have.contains_key(&b)) {
                return Ok((first..=last).filter_map(|b| have.remove(&b)).collect());
            }
        }
        Err(internal(format!(
            "blocks of '{}' fetched by other threads kept leaving the cache",
            self.path.display()
        )))
    }

    /// Fetches the blocks covering `ranges` that no cache holds and no other thread is
    /// fetching, all in one parallel round (coalesced runs, bounded per process).
    pub(super) fn prefetch(&self, ranges: &[(u64, u64)]) -> Result<()> {
        let cache = &self.handles.blocks;
        let mut want = std::collections::BTreeSet::new();
        for &(a, b) in ranges {
            let b = b.min(self.head.size);
            if a < b {
                want.extend(a / BLOCK_BYTES..=(b - 1) / BLOCK_BYTES);
            }
        }
        let claimed: Vec<u64> = {
            let mut inner = cache.inner.lock().map_err(|_| internal("poisoned lock"))?;
            want.into_iter()
                .filter(|&b| {
                    matches!(
                        BlockCache::slot(&mut inner, (self.id.clone(), b)),
                        Slot::Claimed
                    )
                })
                .collect()
        };
        self.fetch_claimed(claimed).map(drop)
    }

    /// Fetches blocks this thread claimed ([`BlockCache::slot`]), puts them in the memory
    /// cache and releases the claims (on every path out, errors included); returns them.
    fn fetch_claimed(&self, claimed: Vec<u64>) -> Result<Vec<(u64, Bytes)>> {
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let cache = &self.handles.blocks;
        let claim = Claim {
            cache,
            id: self.id.clone(),
            blocks: claimed,
        };
        let fetched = self.fetch(&claim.blocks)?;
        let mut inner = cache.inner.lock().map_err(|_| internal("poisoned lock"))?;
        for (b, bytes) in &fetched {
            inner.put((self.id.clone(), *b), bytes.clone());
        }
        drop(inner);
        drop(claim);
        Ok(fetched)
    }

    /// Fetches blocks (sorted, distinct) from the disk cache or the store: one ranged request
    /// per run of consecutive blocks, the runs in parallel.
    fn fetch(&self, blocks: &[u64]) -> Result<Vec<(u64, Bytes)>> {
        let mut out = Vec::with_capacity(blocks.len());
        let mut missing = Vec::new();
        for &b in blocks {
            match self.disk_file(b).and_then(|f| std::fs::read(f).ok()) {
                Some(data)
                    if data.len() as u64 == self.block_range(b).end - self.block_range(b).start =>
                {
                    self.remote.disk_hits.fetch_add(1, Ordering::Relaxed);
                    out.push((b, Bytes::from(data)));
                }
                _ => missing.push(b),
            }
        }
        let mut runs: Vec<Range<u64>> = Vec::new();
        for b in missing {
            match runs.last_mut() {
                Some(r) if r.end == b && r.end - r.start < MAX_REQUEST_BLOCKS => r.end = b + 1,
                _ => runs.push(b..b + 1),
            }
        }
        if runs.is_empty() {
            return Ok(out);
        }
        let store = self.remote.store.clone();
        let key = self.key.clone();
        // a weak ETag never matches under If-Match's strong comparison: such objects are
        // checked on the answer's own metadata only
        let etag = self.head.etag.clone().filter(|e| !e.starts_with("W/"));
        let head = self.head.clone();
        let path = self.path.clone();
        let deadline = self.remote.cfg.retry.retry_timeout;
        let permits = self.handles.permits.clone();
        let ranges: Vec<(Range<u64>, Range<u64>)> = runs
            .iter()
            .map(|r| {
                let lo = self.block_range(r.start).start;
                let hi = self.block_range(r.end - 1).end;
                (r.clone(), lo..hi)
            })
            .collect();
        self.remote
            .requests
            .fetch_add(ranges.len() as u64, Ordering::Relaxed);
        let results = self.handles.runtime.block_on(async move {
            let jobs = ranges.into_iter().map(|(blocks, bytes)| {
                let store = store.clone();
                let key = key.clone();
                let etag = etag.clone();
                let permits = permits.clone();
                let head = &head;
                let path = &path;
                async move {
                    let _permit = permits.acquire_owned().await;
                    let opts = GetOptions {
                        range: Some(GetRange::Bounded(bytes.clone())),
                        if_match: etag,
                        ..Default::default()
                    };
                    let get = async {
                        let answer = store.get_opts(&key, opts).await?;
                        if let Some(why) = head.other_version(&answer.meta) {
                            return Err(object_store::Error::Precondition {
                                path: key.to_string(),
                                source: why.into(),
                            });
                        }
                        answer.bytes().await
                    };
                    let data = within(deadline, path, get).await?;
                    Ok::<_, Error>((blocks, bytes, data))
                }
            });
            futures::future::try_join_all(jobs).await
        });
        let results = results?;
        for (blocks, bytes, data) in results {
            self.remote
                .bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            if data.len() as u64 != bytes.end - bytes.start {
                return Err(remote_error(
                    &self.path,
                    format!(
                        "asked for bytes {}..{} and got {} bytes (a server that ignores Range, \
                         or an object that changed size)",
                        bytes.start,
                        bytes.end,
                        data.len()
                    ),
                ));
            }
            for b in blocks {
                let r = self.block_range(b);
                let lo = (r.start - bytes.start) as usize;
                let hi = (r.end - bytes.start) as usize;
                let block = data.slice(lo..hi);
                if let Some(f) = self.disk_file(b) {
                    write_atomically(&f, &block);
                }
                out.push((b, block));
            }
        }
        Ok(out)
    }
}

/// Runs one request to the store, retries included, for at most `deadline` (the root's
/// `retry_timeout`): a server that stalls or trickles bytes fails the read instead of holding
/// it for as long as it likes.
async fn within<T>(
    deadline: Duration,
    path: &Path,
    request: impl std::future::Future<Output = object_store::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(deadline, request).await {
        Ok(answer) => answer.map_err(|e| store_error(path, e)),
        Err(_) => Err(remote_error(
            path,
            format!(
                "no complete answer within {:.0} s (the storage option retry_timeout): the \
                 server stalled or sent too slowly",
                deadline.as_secs_f64()
            ),
        )),
    }
}

/// Where reads through a remote object record their first error: FFmpeg and the parquet
/// reader pass on only an errno or a text, and the reader reports this one instead.
pub(crate) type FailureSlot = Arc<Mutex<Option<Error>>>;

/// The error recorded in `slot`, made again for `path` (errors are not `Clone`): a missing
/// object stays `NotFound`, anything else is a [`Error::Remote`].
pub(crate) fn recorded_failure(slot: &FailureSlot, path: &Path) -> Option<Error> {
    let guard = slot.lock().ok()?;
    guard.as_ref().map(|e| match e {
        Error::NotFound { detail, .. } => Error::NotFound {
            at: Location::file(path),
            detail: detail.clone(),
        },
        Error::Remote { msg, .. } => remote_error(path, msg.clone()),
        other => remote_error(path, other.to_string()),
    })
}
