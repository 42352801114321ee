//! Per-process state of remote reads: the registered roots, the I/O runtime, the block cache
//! and the request permits, rebuilt in a forked child on first use.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use object_store::path::Path as ObjPath;
use object_store::ObjectStore;

use super::cache::BlockCache;
use super::config::{build_store, RootConfig};
use super::object::Head;
use super::{internal, is_url, DEFAULT_CACHE_BYTES, MAX_IN_FLIGHT};
use crate::error::{Error, Result};

/// A remote root in this process: its store client, the version (ETag) of each object this
/// dataset has read, and counters.
pub(super) struct Remote {
    pub(super) cfg: RootConfig,
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) heads: Mutex<HashMap<String, Arc<Head>>>,
    pub(super) requests: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) disk_hits: AtomicU64,
}

/// Everything remote of one process (rebuilt after `fork`).
pub(super) struct ProcessState {
    pub(super) pid: u32,
    pub(super) runtime: Arc<tokio::runtime::Runtime>,
    pub(super) remotes: HashMap<String, Arc<Remote>>,
    pub(super) blocks: Arc<BlockCache>,
    pub(super) permits: Arc<tokio::sync::Semaphore>,
}

/// Root configurations, kept across `fork` (the state is not).
pub(super) static CONFIGS: Mutex<Vec<RootConfig>> = Mutex::new(Vec::new());
pub(super) static STATE: Mutex<Option<ProcessState>> = Mutex::new(None);
pub(super) static CACHE_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_CACHE_BYTES);

/// Raises the process's in-memory block cache to `bytes` (the largest asked for is kept).
pub(super) fn raise_cache_capacity(bytes: u64) -> Result<()> {
    CACHE_BYTES.fetch_max(bytes, Ordering::Relaxed);
    let guard = STATE.lock().map_err(|_| internal("poisoned lock"))?;
    if let Some(st) = guard.as_ref().filter(|s| s.pid == std::process::id()) {
        let mut inner = st
            .blocks
            .inner
            .lock()
            .map_err(|_| internal("poisoned lock"))?;
        inner.capacity = inner.capacity.max(bytes);
    }
    Ok(())
}

impl Remote {
    pub(super) fn new(cfg: RootConfig, store: Arc<dyn ObjectStore>) -> Remote {
        Remote {
            cfg,
            store,
            heads: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
        }
    }

    /// The store key of a location below this root.
    pub(super) fn key(&self, rel: &str) -> ObjPath {
        let p = self.cfg.prefix.trim_matches('/');
        if p.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{p}/{rel}"))
        }
    }
}

/// The process state, made (again, after `fork`) on first use.
pub(super) fn state() -> Result<std::sync::MutexGuard<'static, Option<ProcessState>>> {
    let pid = std::process::id();
    {
        let guard = STATE.lock().map_err(|_| internal("poisoned lock"))?;
        if guard.as_ref().is_some_and(|s| s.pid == pid) {
            return Ok(guard);
        }
    }
    // Built without holding the lock, which stays held only for lookups: a process that
    // forks while another of its threads holds it leaves the child waiting for it forever.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("roboframes-io")
        .enable_all()
        .build()
        .map_err(|e| internal(format!("cannot start the I/O runtime: {e}")))?;
    let configs = CONFIGS
        .lock()
        .map_err(|_| internal("poisoned lock"))?
        .clone();
    let mut remotes = HashMap::new();
    for cfg in configs {
        if let Ok(store) = build_store(&cfg) {
            remotes.insert(cfg.location.clone(), Arc::new(Remote::new(cfg, store)));
        }
    }
    let fresh = ProcessState {
        pid,
        runtime: Arc::new(runtime),
        remotes,
        blocks: Arc::new(BlockCache::new(CACHE_BYTES.load(Ordering::Relaxed))),
        permits: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
    };
    let mut guard = STATE.lock().map_err(|_| internal("poisoned lock"))?;
    if guard.as_ref().is_none_or(|s| s.pid != pid) {
        if let Some(old) = guard.replace(fresh) {
            // The parent's runtime threads and connections do not exist in a forked child:
            // dropping them would wait for threads that never answer.
            std::mem::forget(old);
        }
    }
    // (another thread of this process was first: `fresh`, unused, is dropped)
    Ok(guard)
}

pub(super) fn runtime() -> Result<Arc<tokio::runtime::Runtime>> {
    state()?
        .as_ref()
        .map(|s| s.runtime.clone())
        .ok_or_else(|| internal("no process state"))
}

/// The remote root holding `path` and the path relative to it; None for a local path.
pub(super) fn remote_of(path: &Path) -> Result<Option<(Arc<Remote>, String, Handles)>> {
    let s = path.to_string_lossy();
    if !is_url(&s) {
        return Ok(None);
    }
    let guard = state()?;
    let st = guard.as_ref().ok_or_else(|| internal("no process state"))?;
    let found = st
        .remotes
        .iter()
        .filter(|(loc, _)| {
            s.strip_prefix(loc.as_str())
                .is_some_and(|r| r.is_empty() || r.starts_with('/'))
        })
        .max_by_key(|(loc, _)| loc.len());
    match found {
        Some((loc, r)) => {
            let rel = s
                .get(loc.len()..)
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned();
            let handles = Handles {
                runtime: st.runtime.clone(),
                blocks: st.blocks.clone(),
                permits: st.permits.clone(),
            };
            Ok(Some((r.clone(), rel, handles)))
        }
        None => Err(Error::InvalidArgument {
            msg: format!(
                "'{s}' is below no remote root opened in this process (open the dataset first)"
            ),
        }),
    }
}

/// The process-wide pieces a remote read uses.
#[derive(Clone)]
pub(super) struct Handles {
    pub(super) runtime: Arc<tokio::runtime::Runtime>,
    pub(super) blocks: Arc<BlockCache>,
    pub(super) permits: Arc<tokio::sync::Semaphore>,
}
