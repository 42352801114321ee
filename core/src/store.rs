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

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, GetOptions, GetRange, ObjectStore,
    ObjectStoreExt, RetryConfig,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Location, Result};

/// Size of a cache block (and the alignment of every ranged request). Small, so that a random
/// frame costs little more than its group of pictures; sequential reads fetch runs of blocks.
pub const BLOCK_BYTES: u64 = 64 * 1024;
/// Blocks a reader going forward (a video decoder through an episode) fetches past the one it
/// needs, in the same request.
const READ_AHEAD_BLOCKS: u64 = 7;
/// The most blocks one ranged request asks for (8 MiB): every request can finish within the
/// per-attempt `timeout` at a modest rate, and a whole-file read of a large table is several.
const MAX_REQUEST_BLOCKS: u64 = 128;
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
    pub cache_bytes: Option<u64>,
}

/// Requests made and bytes received from one remote root by this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    pub requests: u64,
    pub bytes: u64,
    /// Blocks served from the disk cache.
    pub disk_hits: u64,
}

/// A remote root as registered: what every process needs to reach it again.
#[derive(Debug, Clone)]
struct RootConfig {
    /// The root's location prefix (`s3://bucket/prefix`, `hf://datasets/org/name@<commit>`).
    location: String,
    /// The URL the store is built from (`s3://bucket`, `https://host/path`).
    store_url: String,
    /// The key prefix of the root inside the store.
    prefix: String,
    kind: Kind,
    options: Vec<(String, String)>,
    token: Option<String>,
    retry: RetryConfig,
    cache_dir: Option<PathBuf>,
    /// The storage options as given (what another process needs to open the root again).
    given: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    S3,
    Gcs,
    Azure,
    Http,
}

/// A remote root in this process: its store client, the version (ETag) of each object this
/// dataset has read, and counters.
struct Remote {
    cfg: RootConfig,
    store: Arc<dyn ObjectStore>,
    heads: Mutex<HashMap<String, Arc<Head>>>,
    requests: AtomicU64,
    bytes: AtomicU64,
    disk_hits: AtomicU64,
}

#[derive(Debug, Clone)]
struct Head {
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

type BlockKey = (Arc<str>, u64);

/// Everything remote of one process (rebuilt after `fork`).
struct ProcessState {
    pid: u32,
    runtime: Arc<tokio::runtime::Runtime>,
    remotes: HashMap<String, Arc<Remote>>,
    blocks: Arc<BlockCache>,
    permits: Arc<tokio::sync::Semaphore>,
}

/// Root configurations, kept across `fork` (the state is not).
static CONFIGS: Mutex<Vec<RootConfig>> = Mutex::new(Vec::new());
static STATE: Mutex<Option<ProcessState>> = Mutex::new(None);
static CACHE_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_CACHE_BYTES);

/// How the message of a [`Error::Remote`] for a changed object starts.
const CHANGED: &str = "the object changed";

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

fn remote_error(path: &Path, msg: impl Into<String>) -> Error {
    Error::Remote {
        at: Location::file(path),
        msg: msg.into(),
    }
}

/// The error of a failed store operation on `path`: `NotFound` for a missing object, a
/// [`Error::Remote`] otherwise (retries spent, a server that ignores `Range`, a changed object).
fn store_error(path: &Path, e: object_store::Error) -> Error {
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

fn parse_seconds(key: &str, v: &str) -> Result<Duration> {
    let t = v.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x * scale < 86_400.0 => {
            Ok(Duration::from_secs_f64(x * scale))
        }
        _ => Err(Error::InvalidArgument {
            msg: format!("storage option '{key}' must be a duration in seconds, got '{v}'"),
        }),
    }
}

/// Registers a remote root (a URL) and returns its location, the prefix of every location
/// below it. `hf://datasets/org/name[@revision]` is resolved to a commit here, once.
pub fn open_root(url: &str, opts: &RemoteOptions) -> Result<PathBuf> {
    if let Some(b) = opts.cache_bytes {
        raise_cache_capacity(b)?;
    }
    let url = url.trim_end_matches('/');
    let at = || Location::file(url);
    if opts.storage_options.is_empty() && opts.cache_dir.is_none() {
        // the location of a root opened before (a tool reopening it, a worker process):
        // its configuration again, every object at its current version
        let known = CONFIGS
            .lock()
            .map_err(|_| internal("poisoned lock"))?
            .iter()
            .find(|c| c.location == url)
            .cloned();
        if let Some(cfg) = known {
            let store = build_store(&cfg)?;
            let mut state = state()?;
            let st = state.as_mut().ok_or_else(|| internal("no process state"))?;
            st.remotes
                .insert(cfg.location.clone(), Arc::new(Remote::new(cfg, store)));
            return Ok(PathBuf::from(url));
        }
    }
    let bad = |msg: String| Error::InvalidArgument { msg };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad(format!("'{url}' is not a URL")))?;
    let mut options = Vec::new();
    let mut token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
    let mut retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: 8,
        retry_timeout: Duration::from_secs(60),
    };
    for (k, v) in &opts.storage_options {
        match k.as_str() {
            "max_retries" => {
                retry.max_retries =
                    v.trim().parse().ok().filter(|n| *n <= 100).ok_or_else(|| {
                        bad(format!(
                            "storage option 'max_retries' must be an integer 0..=100, got '{v}'"
                        ))
                    })?
            }
            "retry_timeout" => retry.retry_timeout = parse_seconds(k, v)?,
            "token" | "hf_token" | "bearer_token" => token = Some(v.clone()),
            _ => options.push((k.clone(), v.clone())),
        }
    }
    let (kind, location, store_url, prefix) = match scheme {
        "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "adl" | "azure" => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(format!("'{url}' names no bucket")));
            }
            let kind = match scheme {
                "s3" | "s3a" => Kind::S3,
                "gs" => Kind::Gcs,
                _ => Kind::Azure,
            };
            (
                kind,
                url.to_owned(),
                format!("{scheme}://{bucket}"),
                prefix.to_owned(),
            )
        }
        "http" | "https" => (Kind::Http, url.to_owned(), url.to_owned(), String::new()),
        "hf" => {
            let (location, store_url) = resolve_hub(rest, token.as_deref(), &retry, url)?;
            (Kind::Http, location, store_url, String::new())
        }
        _ => {
            return Err(bad(format!(
                "unsupported URL scheme '{scheme}://' in '{url}' (supported: s3://, gs://, \
                 az://, http(s)://, hf://datasets/...)"
            )))
        }
    };
    if kind != Kind::Http {
        token = None;
    }
    let cfg = RootConfig {
        location: location.clone(),
        store_url,
        prefix,
        kind,
        options,
        token,
        retry,
        cache_dir: opts.cache_dir.clone(),
        given: opts.storage_options.clone(),
    };
    // building the client checks the options now, not at the first read
    let store = build_store(&cfg).map_err(|e| match e {
        Error::InvalidArgument { .. } => e,
        other => Error::Remote {
            at: at(),
            msg: other.to_string(),
        },
    })?;
    {
        let mut configs = CONFIGS.lock().map_err(|_| internal("poisoned lock"))?;
        configs.retain(|c| c.location != location);
        configs.push(cfg.clone());
    }
    let mut state = state()?;
    let st = state.as_mut().ok_or_else(|| internal("no process state"))?;
    // a new dataset reads every object at its current version
    st.remotes
        .insert(location.clone(), Arc::new(Remote::new(cfg, store)));
    Ok(PathBuf::from(location))
}

/// Raises the process's in-memory block cache to `bytes` (the largest asked for is kept).
fn raise_cache_capacity(bytes: u64) -> Result<()> {
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

/// `org/name[@rev][/sub/path]` of an `hf://datasets/...` URL: the root's location (with the
/// revision resolved to a commit) and the URL of its files on the Hub (`HF_ENDPOINT`).
fn resolve_hub(
    rest: &str,
    token: Option<&str>,
    retry: &RetryConfig,
    url: &str,
) -> Result<(String, String)> {
    let bad = |msg: String| Error::InvalidArgument { msg };
    let rest = rest.strip_prefix("datasets/").ok_or_else(|| {
        bad(format!(
            "'{url}': Hub roots are hf://datasets/<org>/<name>[@revision]"
        ))
    })?;
    let mut parts = rest.splitn(3, '/');
    let org = parts.next().unwrap_or_default();
    let name_rev = parts.next().unwrap_or_default();
    let sub = parts.next().unwrap_or_default();
    let (name, rev) = name_rev.split_once('@').unwrap_or((name_rev, "main"));
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !ok(org) || !ok(name) || !ok(rev) {
        return Err(bad(format!(
            "'{url}': Hub roots are hf://datasets/<org>/<name>[@revision] (names of letters, \
             digits, '-', '_' and '.')"
        )));
    }
    let endpoint = std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into());
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let commit = if rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()) {
        rev.to_owned()
    } else {
        let api = RootConfig {
            location: endpoint.clone(),
            store_url: endpoint.clone(),
            prefix: String::new(),
            kind: Kind::Http,
            options: Vec::new(),
            token: token.map(str::to_owned),
            retry: retry.clone(),
            cache_dir: None,
            given: Vec::new(),
        };
        let store = build_store(&api)?;
        let rel = format!("api/datasets/{org}/{name}/revision/{rev}");
        let shown = PathBuf::from(format!("{endpoint}/{rel}"));
        let rt = runtime()?;
        let body = rt
            .block_on(async {
                store
                    .get_opts(&ObjPath::from(rel.as_str()), GetOptions::default())
                    .await?
                    .bytes()
                    .await
            })
            .map_err(|e| match store_error(&shown, e) {
                Error::NotFound { at, .. } => Error::NotFound {
                    at,
                    detail: format!("no dataset '{org}/{name}' at revision '{rev}' on the Hub"),
                },
                other => other,
            })?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            remote_error(
                &shown,
                format!("the Hub's revision answer is not JSON: {e}"),
            )
        })?;
        let sha = doc
            .get("sha")
            .and_then(|s| s.as_str())
            .filter(|s| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| {
                remote_error(&shown, "the Hub's revision answer holds no commit 'sha'")
            })?;
        sha.to_owned()
    };
    let sub = sub.trim_matches('/');
    let tail = if sub.is_empty() {
        String::new()
    } else {
        format!("/{sub}")
    };
    Ok((
        format!("hf://datasets/{org}/{name}@{commit}{tail}"),
        format!("{endpoint}/datasets/{org}/{name}/resolve/{commit}{tail}"),
    ))
}

fn build_store(cfg: &RootConfig) -> Result<Arc<dyn ObjectStore>> {
    let bad_key = |k: &str, e: object_store::Error| Error::InvalidArgument {
        msg: format!("storage option '{k}': {e}"),
    };
    let mut client = ClientOptions::new()
        .with_timeout(Duration::from_secs(30))
        .with_read_timeout(Duration::from_secs(10))
        .with_connect_timeout(Duration::from_secs(10))
        .with_pool_max_idle_per_host(MAX_IN_FLIGHT);
    let http_endpoint = |v: &str| v.trim().starts_with("http://");
    let built: std::result::Result<Arc<dyn ObjectStore>, object_store::Error> =
        match cfg.kind {
            Kind::S3 => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::from_env();
                let mut plain = std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .is_ok_and(|v| http_endpoint(&v));
                for (k, v) in &cfg.options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|e| bad_key(k, e))?;
                    if matches!(key, AmazonS3ConfigKey::Endpoint) {
                        plain = http_endpoint(v);
                    }
                    b = b.with_config(key, v);
                }
                if plain {
                    // an http:// endpoint (a local MinIO or moto) is what the user asked for
                    client = client.with_allow_http(true);
                }
                // user options after the defaults (client keys apply to the options set here)
                let mut b = b
                    .with_client_options(client)
                    .with_retry(cfg.retry.clone())
                    .with_url(&cfg.store_url);
                for (k, v) in &cfg.options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|e| bad_key(k, e))?;
                    if matches!(key, AmazonS3ConfigKey::Client(_)) {
                        b = b.with_config(key, v);
                    }
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Kind::Gcs => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_client_options(client)
                    .with_retry(cfg.retry.clone())
                    .with_url(&cfg.store_url);
                for (k, v) in &cfg.options {
                    let key: GoogleConfigKey = k.parse().map_err(|e| bad_key(k, e))?;
                    b = b.with_config(key, v);
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Kind::Azure => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_client_options(client)
                    .with_retry(cfg.retry.clone())
                    .with_url(&cfg.store_url);
                for (k, v) in &cfg.options {
                    let key: AzureConfigKey = k.parse().map_err(|e| bad_key(k, e))?;
                    b = b.with_config(key, v);
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Kind::Http => {
                use object_store::http::HttpBuilder;
                if cfg.store_url.starts_with("http://") {
                    client = client.with_allow_http(true);
                }
                if let Some(t) = &cfg.token {
                    let mut headers = http::header::HeaderMap::new();
                    let value = http::header::HeaderValue::from_str(&format!("Bearer {t}"))
                        .map_err(|_| Error::InvalidArgument {
                            msg: "the token holds characters an HTTP header cannot".into(),
                        })?;
                    headers.insert(http::header::AUTHORIZATION, value);
                    client = client.with_default_headers(headers);
                }
                let mut b = HttpBuilder::new()
                    .with_client_options(client)
                    .with_retry(cfg.retry.clone())
                    .with_url(&cfg.store_url);
                for (k, v) in &cfg.options {
                    let key: ClientConfigKey = k.parse().map_err(|e| bad_key(k, e))?;
                    b = b.with_config(key, v);
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
        };
    built.map_err(|e| Error::InvalidArgument {
        msg: format!("cannot reach '{}': {e}", cfg.location),
    })
}

impl Remote {
    fn new(cfg: RootConfig, store: Arc<dyn ObjectStore>) -> Remote {
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
    fn key(&self, rel: &str) -> ObjPath {
        let p = self.cfg.prefix.trim_matches('/');
        if p.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{p}/{rel}"))
        }
    }
}

/// The process state, made (again, after `fork`) on first use.
fn state() -> Result<std::sync::MutexGuard<'static, Option<ProcessState>>> {
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

fn runtime() -> Result<Arc<tokio::runtime::Runtime>> {
    state()?
        .as_ref()
        .map(|s| s.runtime.clone())
        .ok_or_else(|| internal("no process state"))
}

/// The remote root holding `path` and the path relative to it; None for a local path.
fn remote_of(path: &Path) -> Result<Option<(Arc<Remote>, String, Handles)>> {
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
struct Handles {
    runtime: Arc<tokio::runtime::Runtime>,
    blocks: Arc<BlockCache>,
    permits: Arc<tokio::sync::Semaphore>,
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
    failure: FailureSlot,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteObject({})", self.path.display())
    }
}

impl RemoteObject {
    /// The object at `path`, at the version this dataset first saw (a HEAD request the first
    /// time).
    fn open(remote: Arc<Remote>, rel: &str, handles: Handles, path: &Path) -> Result<Self> {
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
    fn forget(&self) {
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

    fn block_range(&self, block: u64) -> Range<u64> {
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
                    let key = (self.id.clone(), b);
                    if let Some(bytes) = inner.lru.get(&key) {
                        have.insert(b, bytes.clone());
                    } else if inner.inflight.contains(&key) {
                        waiting.push(b);
                    } else {
                        inner.inflight.insert(key);
                        claimed.push(b);
                    }
                }
                // read ahead only past blocks this call fetches anyway
                if !claimed.is_empty() {
                    let mut b = last + 1;
                    while b < nblocks && b <= last + ahead {
                        let key = (self.id.clone(), b);
                        if inner.lru.contains(&key) || inner.inflight.contains(&key) {
                            break;
                        }
                        inner.inflight.insert(key);
                        claimed.push(b);
                        b += 1;
                    }
                }
            }
            if !claimed.is_empty() {
                let claim = Claim {
                    cache,
                    id: self.id.clone(),
                    blocks: claimed,
                };
                let fetched = self.fetch(&claim.blocks)?;
                let mut inner = cache.inner.lock().map_err(|_| internal("poisoned lock"))?;
                for (b, bytes) in fetched {
                    inner.put((self.id.clone(), b), bytes.clone());
                    if (first..=last).contains(&b) {
                        have.insert(b, bytes);
                    }
                }
                drop(inner);
                drop(claim);
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
    fn prefetch(&self, ranges: &[(u64, u64)]) -> Result<()> {
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
                    let key = (self.id.clone(), b);
                    let free = !inner.lru.contains(&key) && !inner.inflight.contains(&key);
                    if free {
                        inner.inflight.insert(key);
                    }
                    free
                })
                .collect()
        };
        if claimed.is_empty() {
            return Ok(());
        }
        let claim = Claim {
            cache,
            id: self.id.clone(),
            blocks: claimed,
        };
        let fetched = self.fetch(&claim.blocks)?;
        let mut inner = cache.inner.lock().map_err(|_| internal("poisoned lock"))?;
        for (b, bytes) in fetched {
            inner.put((self.id.clone(), b), bytes);
        }
        Ok(())
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

/// Writes a disk-cache block (temporary file, then rename: readers never see half a block);
/// a cache that cannot be written is only a slower read.
fn write_atomically(path: &Path, data: &[u8]) {
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
struct Claim<'a> {
    cache: &'a BlockCache,
    id: Arc<str>,
    blocks: Vec<u64>,
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
struct BlockCache {
    inner: Mutex<BlockInner>,
    done: Condvar,
}

struct BlockInner {
    lru: lru::LruCache<BlockKey, Bytes>,
    bytes: u64,
    capacity: u64,
    inflight: HashSet<BlockKey>,
}

impl BlockCache {
    fn new(capacity: u64) -> BlockCache {
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
    fn put(&mut self, key: BlockKey, bytes: Bytes) {
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

/// A location's bytes, local or remote, for the parquet reader.
pub enum Source {
    Local(std::fs::File),
    Remote(RemoteObject),
}

impl Source {
    /// The error a remote read met under a parquet failure, naming `path`.
    pub fn failure(&self, path: &Path) -> Option<Error> {
        let Source::Remote(o) = self else { return None };
        recorded_failure(&o.failure, path)
    }

    /// Another handle on the same bytes (the parquet readers take theirs by value).
    pub fn clone_handle(&self, path: &Path) -> Result<Source> {
        match self {
            Source::Local(f) => f
                .try_clone()
                .map(Source::Local)
                .map_err(|e| Error::io(path, e)),
            Source::Remote(o) => Ok(Source::Remote(o.clone())),
        }
    }
}

impl parquet::file::reader::Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::Local(f) => f.len(),
            Source::Remote(o) => o.len(),
        }
    }
}

impl parquet::file::reader::ChunkReader for Source {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        match self {
            Source::Local(f) => Ok(Box::new(f.get_read(start)?)),
            Source::Remote(o) => {
                let mut c = RemoteCursor::new(o.clone());
                c.pos = start;
                Ok(Box::new(c))
            }
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::Local(f) => f.get_bytes(start, length),
            Source::Remote(o) => {
                let end = start.saturating_add(length as u64);
                if end > o.len() {
                    return Err(parquet::errors::ParquetError::EOF(format!(
                        "bytes {start}..{end} of a {}-byte file",
                        o.len()
                    )));
                }
                o.read_range(start, end, 0).map_err(|e| {
                    let text = e.to_string();
                    if let Ok(mut slot) = o.failure.lock() {
                        slot.get_or_insert(e);
                    }
                    parquet::errors::ParquetError::General(text)
                })
            }
        }
    }
}

/// `Read + Seek` over a remote object (FFmpeg's custom I/O and the parquet reader read through
/// it); sequential reads fetch blocks ahead.
pub struct RemoteCursor {
    obj: RemoteObject,
    pos: u64,
    block: Option<(u64, Bytes)>,
    /// Set, reads answer zeros without fetching: a frame index needs the demuxer's sample
    /// table, read when the file was opened, not the samples' bytes.
    pub zeros: Arc<AtomicBool>,
}

impl RemoteCursor {
    /// Where reads through this cursor record their first error.
    pub(crate) fn failure(&self) -> FailureSlot {
        self.obj.failure.clone()
    }

    pub fn new(obj: RemoteObject) -> RemoteCursor {
        RemoteCursor {
            obj,
            pos: 0,
            block: None,
            zeros: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Read for RemoteCursor {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.obj.len() || buf.is_empty() {
            return Ok(0);
        }
        if self.zeros.load(Ordering::Relaxed) {
            let n = buf
                .len()
                .min(usize::try_from(self.obj.len() - self.pos).unwrap_or(usize::MAX));
            buf.iter_mut().take(n).for_each(|b| *b = 0);
            self.pos += n as u64;
            return Ok(n);
        }
        let b = self.pos / BLOCK_BYTES;
        let have = matches!(&self.block, Some((k, _)) if *k == b);
        if !have {
            let r = self.obj.block_range(b);
            // read ahead only when going forward from the previous block
            let forward = matches!(&self.block, Some((k, _)) if k.checked_add(1) == Some(b));
            let ahead = if forward { READ_AHEAD_BLOCKS } else { 0 };
            match self.obj.read_range(r.start, r.end, ahead) {
                Ok(bytes) => self.block = Some((b, bytes)),
                Err(e) => {
                    let msg = e.to_string();
                    if let Ok(mut slot) = self.obj.failure.lock() {
                        slot.get_or_insert(e);
                    }
                    return Err(std::io::Error::other(msg));
                }
            }
        }
        let Some((_, block)) = &self.block else {
            return Err(std::io::Error::other("no block"));
        };
        let off = (self.pos - b * BLOCK_BYTES) as usize;
        let avail = block.get(off..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteCursor {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let len = self.obj.len() as i128;
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => len + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = u64::try_from(target).unwrap_or(u64::MAX);
        Ok(self.pos)
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
            crate::meta::regular_file(path)?;
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
    let configs = CONFIGS.lock().map_err(|_| internal("poisoned lock"))?;
    Ok(configs
        .iter()
        .find(|c| c.location == s.trim_end_matches('/'))
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

    #[test]
    fn bad_roots_are_invalid_arguments() {
        let o = RemoteOptions::default();
        for bad in [
            "ftp://host/x",
            "s3:///prefix",
            "hf://models/a/b",
            "hf://datasets/a",
            "hf://datasets/a/b@../x",
            "hf://datasets/../b",
            "hf://datasets/a/..@main",
        ] {
            let e = open_root(bad, &o).expect_err(bad);
            assert!(matches!(e, Error::InvalidArgument { .. }), "{bad}: {e}");
        }
        let o = RemoteOptions {
            storage_options: vec![("no_such_option".into(), "1".into())],
            ..Default::default()
        };
        let e = open_root("s3://bucket/x", &o).expect_err("unknown option");
        assert!(e.to_string().contains("no_such_option"), "{e}");
        let o = RemoteOptions {
            storage_options: vec![("retry_timeout".into(), "soon".into())],
            ..Default::default()
        };
        assert!(open_root("s3://bucket/x", &o).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_seconds("t", "2").ok(), Some(Duration::from_secs(2)));
        assert_eq!(parse_seconds("t", "2s").ok(), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_seconds("t", "250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert!(parse_seconds("t", "-1").is_err());
        assert!(parse_seconds("t", "inf").is_err());
    }

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
