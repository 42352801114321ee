//! A LeRobot v3.0 dataset: items with LeRobot's keys and window semantics, filled in batches
//! into caller-provided buffers, plus the two primitives adapters build on: frames by
//! (camera, episode, time) and windowed tabular gathers with pad masks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;

use crate::cache::{CacheStats, FrameCache};
use crate::depth::{DepthImageWriter, DepthOutput, DepthWriter};
use crate::error::{Error, Location, Result};
use crate::frame::{FrameFormat, FrameOut};
use crate::meta::{self, DType, Episode, FeatureKind, Info};
use crate::outputs::{build_outputs, OutputKind, OutputSpec};
use crate::plan::{self, FrameTarget, ImageRequest, VideoRequest};
use crate::table::{ColumnData, DataFile};
use crate::value::Value;
use crate::video::DecoderPool;
use crate::window::{check_delta_timestamps, delta_indices, window};
use rayon::prelude::*;

/// Options of [`Dataset::open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Episode indices to select (any order, duplicates ignored); `None` selects all.
    pub episodes: Option<Vec<i64>>,
    /// Per-key time offsets in seconds (LeRobot's `delta_timestamps`).
    pub delta_timestamps: Option<IndexMap<String, Vec<f64>>>,
    /// Tolerance for delta validation and frame lookup (LeRobot's `tolerance_s`).
    pub tolerance_s: f64,
    /// Worker threads for decoding; `None` uses the number of cores. At most
    /// [`MAX_DECODE_THREADS`].
    pub decode_threads: Option<usize>,
    /// Strict decoding: damage FFmpeg would conceal in a video's bitstream is an error instead
    /// (see [`crate::video::VideoReader::open_strict`]). Off by default, as in FFmpeg and
    /// LeRobot; `validate(decode="all")` turns it on.
    pub strict_decode: bool,
    /// How to reach a remote root (`s3://`, `gs://`, `az://`, `http(s)://`, `hf://datasets/`):
    /// store options and caches. Unused for a local root.
    pub remote: crate::store::RemoteOptions,
    /// What depth maps (LeRobot 0.6's `is_depth_map` videos) are read as: millimetres (the
    /// default, LeRobot's), metres, or the stored codes.
    pub depth_output: DepthOutput,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            episodes: None,
            delta_timestamps: None,
            tolerance_s: 1e-4,
            decode_threads: None,
            strict_decode: false,
            remote: crate::store::RemoteOptions::default(),
            depth_output: DepthOutput::default(),
        }
    }
}

/// A caller-provided destination for one output of a batch.
pub enum OutBuf<'a> {
    /// `batch * spec.item_bytes()` bytes, items back to back.
    Bytes(&'a mut [u8]),
    /// Cleared and filled with `batch * T` (or `batch`) strings.
    Strings(&'a mut Vec<String>),
    /// Cleared and filled with `batch` values (language columns).
    Values(&'a mut Vec<Value>),
    /// Not wanted: neither decoded nor filled.
    Skip,
}

struct Runtime {
    pid: u32,
    pool: rayon::ThreadPool,
    decoders: DecoderPool,
}

/// An opened dataset. Shareable between threads; every method takes `&self`.
pub struct Dataset {
    root: PathBuf,
    /// The root is a remote one (a URL): data tables load an episode at a time.
    remote: bool,
    info: Info,
    episodes: Vec<Episode>,
    /// Position in `episodes` of each episode index.
    pos_of: HashMap<i64, usize>,
    selected: Vec<usize>,
    /// Cumulative item counts of the selected episodes (len = selected.len() + 1).
    cum: Vec<usize>,
    tasks: IndexMap<i64, String>,
    subtasks: Option<IndexMap<i64, String>>,
    stats: Option<String>,
    delta: IndexMap<String, Vec<i64>>,
    tolerance_s: f64,
    /// Decoding threads of this process (see [`Dataset::set_decode_threads`]).
    decode_threads: AtomicUsize,
    /// [`OpenOptions::strict_decode`].
    strict_decode: bool,
    /// Per video file checked by [`Dataset::check_timelines`], its episodes whose span holds
    /// too few frames, with the reason.
    timelines: Mutex<HashMap<PathBuf, Vec<(i64, String)>>>,
    /// See [`Dataset::open_warnings`].
    warnings: Vec<String>,
    outputs: Vec<OutputSpec>,
    video_keys: Vec<String>,
    /// [`OpenOptions::depth_output`].
    depth_output: DepthOutput,
    /// Per depth video key, its dequantisation table in each unit asked for so far.
    depth_tables: Mutex<DepthTables>,
    /// Loaded data tables by (chunk, file, episode): a local file whole (episode
    /// [`WHOLE_FILE`]), a remote one an episode at a time (its row groups only).
    data_files: Mutex<HashMap<(i64, i64, i64), Arc<DataFile>>>,
    runtime: Mutex<Option<Arc<Runtime>>>,
    /// The decoded-frame cache with the pid of the process that made it (None: no cache).
    cache: Mutex<Option<(u32, Arc<FrameCache>)>>,
}

/// Dequantisation tables by (depth key, output).
type DepthTables = HashMap<(String, DepthOutput), Arc<[f32]>>;

/// The most decoding threads a dataset may use (far above any machine's useful count; a bound
/// so that a mistyped argument cannot spawn threads without end).
pub const MAX_DECODE_THREADS: usize = 1024;

/// The decoding thread count `n`, checked against [`MAX_DECODE_THREADS`].
pub fn check_decode_threads(n: usize) -> Result<usize> {
    if (1..=MAX_DECODE_THREADS).contains(&n) {
        Ok(n)
    } else {
        Err(Error::InvalidArgument {
            msg: format!("decode_threads must be between 1 and {MAX_DECODE_THREADS}, got {n}"),
        })
    }
}

/// The episode part of a `data_files` key for a table loaded whole.
const WHOLE_FILE: i64 = i64::MIN;

/// A flag never set: the work of callers that do not cancel.
static NEVER: AtomicBool = AtomicBool::new(false);

/// Resolved position of one item.
#[derive(Debug, Clone, Copy)]
struct ItemPos {
    ep: usize,
    abs: i64,
}

impl Dataset {
    /// Opens a LeRobot v3.0 dataset root. Reads metadata only; data rows load lazily.
    pub fn open(root: impl AsRef<Path>, opts: OpenOptions) -> Result<Dataset> {
        let root = root.as_ref().to_path_buf();
        let text = root.to_string_lossy().into_owned();
        let remote = crate::store::is_url(&text);
        let root = if remote {
            crate::store::open_root(&text, &opts.remote)?
        } else {
            root
        };
        if !remote {
            crate::fs::local_root(&root)?;
        }
        if !(opts.tolerance_s.is_finite() && opts.tolerance_s > 0.0) {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "tolerance_s must be a positive number of seconds (a frame is found when its time is closer than tolerance_s to the requested one), got {}",
                    opts.tolerance_s
                ),
            });
        }
        let info = meta::read_info(&root)?;
        let video_keys = info.video_keys();
        let episodes = meta::read_episodes(&root, &video_keys)?;
        let tasks = meta::read_tasks(&root)?;
        let subtasks = if info.features.contains_key("subtask_index") {
            meta::read_subtasks(&root)?
        } else {
            None
        };
        let stats = meta::read_stats(&root)?;

        let pos_of: HashMap<i64, usize> = episodes
            .iter()
            .enumerate()
            .map(|(i, e)| (e.episode_index, i))
            .collect();
        let selected: Vec<usize> = match &opts.episodes {
            None => (0..episodes.len()).collect(),
            Some(list) => {
                let mut sel = Vec::with_capacity(list.len());
                for e in list {
                    let p = pos_of
                        .get(e)
                        .copied()
                        .ok_or_else(|| Error::InvalidArgument {
                            msg: format!(
                                "episode {e} is not in the dataset at '{}' ({} episodes)",
                                root.display(),
                                episodes.len()
                            ),
                        })?;
                    sel.push(p);
                }
                sel.sort_by_key(|&p| episodes.get(p).map_or(0, |e| e.dataset_from_index));
                sel.dedup();
                sel
            }
        };
        // info.json's total is a summary the episode table supersedes: a stale one (LeRobot
        // opens such datasets) is a warning, and the episodes' lengths count
        let mut warnings = Vec::new();
        let listed = episodes
            .iter()
            .try_fold(0i64, |acc, e| acc.checked_add(e.length))
            .ok_or_else(|| {
                Error::metadata(
                    Location::file(root.join("meta/episodes")),
                    "the episodes' lengths add up to more than 2^63 frames",
                )
            })?;
        if listed != info.total_frames {
            warnings.push(format!(
                "{}: total_frames is {} but the episodes of meta/episodes hold {listed} frames; \
                 the episodes' lengths are used (`roboframes validate` reports the dataset)",
                root.join("meta/info.json").display(),
                info.total_frames,
            ));
        }
        let mut cum = Vec::with_capacity(selected.len() + 1);
        cum.push(0usize);
        let mut total = 0usize;
        for &p in &selected {
            total += episodes.get(p).map_or(0, |e| e.length.max(0) as usize);
            cum.push(total);
        }

        let delta = match &opts.delta_timestamps {
            None => IndexMap::new(),
            Some(d) => {
                check_delta_timestamps(d, info.fps, opts.tolerance_s)?;
                for k in d.keys() {
                    match info.features.get(k) {
                        None => {
                            return Err(Error::DeltaTimestamps {
                                msg: format!(
                                    "key '{k}' is not a feature of the dataset (features: {})",
                                    info.features.keys().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            })
                        }
                        Some(f) if f.kind == FeatureKind::Language => {
                            return Err(Error::DeltaTimestamps {
                                msg: format!(
                                    "key '{k}' is a language column: its values are read per \
                                     item, not in windows"
                                ),
                            })
                        }
                        Some(_) => {}
                    }
                }
                delta_indices(d, info.fps)
            }
        };
        let threads = match opts.decode_threads {
            Some(n) => check_decode_threads(n)?,
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, MAX_DECODE_THREADS),
        };
        let outputs = build_outputs(&info, &delta, subtasks.is_some(), opts.depth_output);
        Ok(Dataset {
            root,
            remote,
            info,
            episodes,
            pos_of,
            selected,
            cum,
            tasks,
            subtasks,
            stats,
            delta,
            tolerance_s: opts.tolerance_s,
            decode_threads: AtomicUsize::new(threads),
            strict_decode: opts.strict_decode,
            timelines: Mutex::new(HashMap::new()),
            outputs,
            video_keys,
            depth_output: opts.depth_output,
            depth_tables: Mutex::new(HashMap::new()),
            data_files: Mutex::new(HashMap::new()),
            runtime: Mutex::new(None),
            cache: Mutex::new(None),
            warnings,
        })
    }

    /// What the checks at open found stale but not wrong enough to refuse (a summary field of
    /// `info.json` the episode table supersedes), one message each, naming the file.
    pub fn open_warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn info(&self) -> &Info {
        &self.info
    }
    /// One row per episode of the dataset (`meta/episodes`), all episodes, sorted by index.
    pub fn episode_table(&self) -> &[Episode] {
        &self.episodes
    }
    /// Episode indices of the selection (`OpenOptions::episodes`), in dataset order.
    pub fn episodes(&self) -> Vec<i64> {
        self.selected
            .iter()
            .filter_map(|&p| self.episodes.get(p).map(|e| e.episode_index))
            .collect()
    }
    /// `{task_index: task}`.
    pub fn tasks(&self) -> &IndexMap<i64, String> {
        &self.tasks
    }
    /// `{subtask_index: subtask}` when the dataset has subtasks.
    pub fn subtasks(&self) -> Option<&IndexMap<i64, String>> {
        self.subtasks.as_ref()
    }
    /// The text of `meta/stats.json`, when the dataset has one (see [`meta::read_stats`]).
    pub fn stats_text(&self) -> Option<&str> {
        self.stats.as_deref()
    }
    /// Frame offsets per key derived from `delta_timestamps`.
    pub fn delta_indices(&self) -> &IndexMap<String, Vec<i64>> {
        &self.delta
    }
    pub fn tolerance_s(&self) -> f64 {
        self.tolerance_s
    }
    /// Whether videos are decoded strictly ([`OpenOptions::strict_decode`]).
    pub fn strict_decode(&self) -> bool {
        self.strict_decode
    }
    /// Number of items (frames of the selected episodes).
    pub fn len(&self) -> usize {
        self.cum.last().copied().unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The entries of every item, in LeRobot's key order, frames as uint8 `(H, W, C)`.
    pub fn outputs(&self) -> &[OutputSpec] {
        &self.outputs
    }
    /// The entries of every item with frames in `fmt`.
    pub fn outputs_for(&self, fmt: FrameFormat) -> Vec<OutputSpec> {
        self.outputs.iter().map(|o| o.with_format(fmt)).collect()
    }

    /// What depth maps are read as ([`OpenOptions::depth_output`]).
    pub fn depth_output(&self) -> DepthOutput {
        self.depth_output
    }

    /// The writer of depth key `key`'s frames as `output`: the codes, or through the key's
    /// dequantisation table (made once per key and unit).
    fn depth_writer(&self, key: &str, output: DepthOutput) -> Result<DepthWriter> {
        let Some(unit) = output.unit() else {
            return Ok(DepthWriter {
                output,
                table: None,
            });
        };
        let quant = self
            .info
            .features
            .get(key)
            .and_then(|f| f.depth)
            .ok_or_else(|| Error::internal("depth output", format!("'{key}' is not a depth map")))?
            .quant;
        let mut tables = self.depth_tables.lock().unwrap_or_else(|e| e.into_inner());
        let table = tables
            .entry((key.to_owned(), output))
            .or_insert_with(|| quant.table(unit))
            .clone();
        Ok(DepthWriter {
            output,
            table: Some(table),
        })
    }

    /// How the frames of output `spec` are written: depth maps by their writer, other frames in
    /// `fmt`.
    fn frame_out(&self, spec: &OutputSpec, fmt: FrameFormat) -> Result<FrameOut> {
        match (spec.depth, spec.kind) {
            (Some(d), OutputKind::Image) => {
                let recorded = self
                    .info
                    .features
                    .get(&spec.key)
                    .and_then(|f| f.depth)
                    .and_then(|d| d.unit);
                Ok(FrameOut::DepthImage(DepthImageWriter::new(recorded, d)))
            }
            (Some(d), _) => Ok(FrameOut::Depth(self.depth_writer(&spec.key, d)?)),
            (None, _) => Ok(FrameOut::Rgb(fmt)),
        }
    }

    /// `(H, W, C)` of the decoded frames of a video key.
    pub fn frame_dims(&self, camera: &str) -> Result<(usize, usize, usize)> {
        self.outputs
            .iter()
            .find(|o| o.kind == OutputKind::Video && o.key == camera)
            .and_then(|o| o.frame)
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!(
                    "'{camera}' is not a video key of the dataset at '{}' (video keys: {})",
                    self.root.display(),
                    self.video_keys.join(", ")
                ),
            })
    }

    /// The shape and element type of one frame of video key `camera` with frames in `fmt` (a
    /// depth map's as [`OpenOptions::depth_output`] says, whatever `fmt.pixel`).
    pub fn frame_layout(&self, camera: &str, fmt: FrameFormat) -> Result<(Vec<usize>, DType)> {
        let (h, w, c) = self.frame_dims(camera)?;
        let spec = self
            .outputs
            .iter()
            .find(|o| o.kind == OutputKind::Video && o.key == camera);
        let dtype = spec
            .and_then(|s| s.depth)
            .map_or(fmt.pixel.dtype(), DepthOutput::dtype);
        Ok((fmt.shape(h, w, c), dtype))
    }

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
    /// size changes. See [`crate::cache`] for the policy.
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
    fn frame_cache(&self) -> Option<Arc<FrameCache>> {
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

    /// Runs frame requests on this process's runtime and cache.
    fn run_plan(
        &self,
        videos: Vec<VideoRequest>,
        images: Vec<ImageRequest>,
        targets: &[FrameTarget],
        cancel: &AtomicBool,
    ) -> Result<()> {
        let rt = self.runtime()?;
        self.check_timelines(&rt, &videos, targets)?;
        let cache = self.frame_cache();
        let exec = plan::Exec {
            pool: &rt.pool,
            decoders: &rt.decoders,
            cache: cache.as_deref(),
            cancel,
        };
        plan::run(&exec, videos, images, targets, self.tolerance_s)
    }

    /// Checks, once per video file, that each episode's span in the file holds at least its
    /// number of rows of frames, and refuses the file when one does not. Every
    /// query then finds a frame within tolerance or fails; but a file whose timeline moved (a
    /// damaged edit list or `ctts` table makes the demuxer drop the first frame and shift every
    /// later one by a frame) would give each time a frame, the wrong one, and only the last
    /// episode would miss one. More frames than rows is allowed (LeRobot reads converted
    /// datasets whose videos have a spare frame), and with `tolerance_s` of half a frame period
    /// or more the caller accepts the nearest frame, so nothing is checked.
    fn check_timelines(
        &self,
        rt: &Runtime,
        videos: &[VideoRequest],
        targets: &[FrameTarget],
    ) -> Result<()> {
        if self.tolerance_s >= 0.5 / self.info.fps {
            return Ok(());
        }
        // one request per file (a batch's requests share each file's path)
        let mut files: Vec<&VideoRequest> = Vec::new();
        for r in videos {
            if !files
                .iter()
                .any(|f| Arc::ptr_eq(&f.path, &r.path) || f.path == r.path)
            {
                files.push(r);
            }
        }
        let todo: Vec<&VideoRequest> = {
            let known = self.timelines.lock().unwrap_or_else(|e| e.into_inner());
            files
                .iter()
                .copied()
                .filter(|r| !known.contains_key(r.path.as_path()))
                .collect()
        };
        if !todo.is_empty() {
            let found: Vec<(PathBuf, Vec<(i64, String)>)> = rt.pool.install(|| {
                todo.par_iter()
                    .map(|r| -> Result<(PathBuf, Vec<(i64, String)>)> {
                        Ok((r.path.as_ref().clone(), self.short_spans(rt, r, targets)?))
                    })
                    .collect::<Result<_>>()
            })?;
            let mut known = self.timelines.lock().unwrap_or_else(|e| e.into_inner());
            known.extend(found);
        }
        let known = self.timelines.lock().unwrap_or_else(|e| e.into_inner());
        for f in &files {
            let Some(bad) = known.get(f.path.as_path()).filter(|b| !b.is_empty()) else {
                continue;
            };
            // (the whole file: a frame missing in one episode's span shifts the later ones)
            if let Some((ep, msg)) = bad.first() {
                return Err(Error::Video {
                    at: Location::file(f.path.as_path())
                        .with_episode(*ep)
                        .with_key(targets.get(f.target).map_or("", |t| t.key.as_str())),
                    msg: format!(
                        "{msg}; the file is refused (with tolerance_s of half a frame period or \
                         more, the nearest frames are read instead)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The episodes of the file `r` reads whose span holds fewer frames than they have rows,
    /// with the reason.
    fn short_spans(
        &self,
        rt: &Runtime,
        r: &VideoRequest,
        targets: &[FrameTarget],
    ) -> Result<Vec<(i64, String)>> {
        let key = targets.get(r.target).map_or("", |t| t.key.as_str());
        let vk = self.video_position(key)?;
        let place = |e: &Episode| e.videos.get(vk).map(|v| (v.chunk_index, v.file_index));
        let by_index = self
            .pos_of
            .get(&r.episode)
            .and_then(|&p| self.episodes.get(p));
        let Some(file) = by_index.and_then(place) else {
            return Ok(Vec::new());
        };
        let index = rt
            .decoders
            .index(&r.path)
            .map_err(|e| e.within(Some(r.episode), Some(key)))?;
        let mut short = Vec::new();
        for e in self.episodes.iter().filter(|e| place(e) == Some(file)) {
            let Some(v) = e.videos.get(vk) else { continue };
            let (lo, hi) = self.span_of(e, v);
            let n = index.count_in(lo, hi);
            if i64::try_from(n).map_or(true, |n| n < e.length) {
                short.push((
                    e.episode_index,
                    format!(
                        "the episode's span {:.6}..{:.6} s in this file holds {n} frame(s), the \
                         episode has {} rows: the file's timeline does not match meta/episodes \
                         (frames missing or shifted: a damaged or edited file?)",
                        v.from_timestamp, v.to_timestamp, e.length
                    ),
                ));
            }
        }
        Ok(short)
    }

    fn runtime(&self) -> Result<Arc<Runtime>> {
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

    fn data_file(&self, ep: &Episode) -> Result<Arc<DataFile>> {
        // A remote table is read an episode at a time (LeRobot writes a row group per
        // episode): an item costs its episode's rows, not the whole file. Windows never leave
        // their episode, so an episode's rows are all an item needs.
        let remote = self.remote;
        let file = (ep.data_chunk_index, ep.data_file_index);
        let key = (
            file.0,
            file.1,
            if remote { ep.episode_index } else { WHOLE_FILE },
        );
        // A panic elsewhere cannot leave the map half-updated (inserts are single calls), so a
        // poisoned lock is used as is rather than silently disabling the cache.
        let files = || self.data_files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = files().get(&key).cloned() {
            return Ok(f);
        }
        let path = meta::data_file_path(&self.root, &self.info, file.0, file.1)?;
        if !crate::store::exists(&path)? {
            return Err(Error::NotFound {
                at: Location::file(&path).with_episode(ep.episode_index),
                detail: "data file listed in meta/episodes is missing".into(),
            });
        }
        let feats: Vec<_> = self
            .info
            .features
            .values()
            .filter(|f| f.kind != FeatureKind::Video)
            .collect();
        let rows = if remote {
            // the file's rows start at the first index of its first episode
            let first = self
                .episodes
                .iter()
                .filter(|e| (e.data_chunk_index, e.data_file_index) == file)
                .map(|e| e.dataset_from_index)
                .min()
                .unwrap_or(ep.dataset_from_index);
            let start = u64::try_from(ep.dataset_from_index.saturating_sub(first)).unwrap_or(0);
            let len = u64::try_from(ep.length).unwrap_or(0);
            Some(start..start.saturating_add(len))
        } else {
            None
        };
        let f = Arc::new(
            DataFile::load_rows(&path, &feats, rows)
                .map_err(|e| e.within(Some(ep.episode_index), None))?,
        );
        self.check_rows(&f, key)?;
        files().entry(key).or_insert_with(|| f.clone());
        Ok(f)
    }

    /// The rows of every episode that `meta/episodes` places in data file `key` say they are
    /// that episode's (`episode_index`), and their timestamps increase: a table whose rows
    /// moved against the metadata would give items of one episode with another's windows and
    /// labels, and two rows at one time (a timestamp column cast to integers, say) would read
    /// one frame twice. (`frame_index` is only reported by `validate`: LeRobot never reads it.)
    fn check_rows(&self, f: &DataFile, key: (i64, i64, i64)) -> Result<()> {
        let check_ep = self.info.features.get("episode_index").is_some_and(|f| {
            f.is_scalar()
                && matches!(f.kind, FeatureKind::Numeric(dt) if dt.item_dtype() == DType::I64)
        });
        for e in self.episodes.iter().filter(|e| {
            (e.data_chunk_index, e.data_file_index) == (key.0, key.1)
                && (key.2 == WHOLE_FILE || e.episode_index == key.2)
        }) {
            let at = |k: &str| {
                Location::file(&f.path)
                    .with_episode(e.episode_index)
                    .with_key(k)
            };
            let mut prev: Option<f32> = None;
            for g in e.dataset_from_index..e.dataset_to_index {
                let row = f
                    .row_of(g)
                    .map_err(|er| er.within(Some(e.episode_index), None))?;
                if check_ep && f.int_scalar("episode_index", row) != Some(e.episode_index) {
                    return Err(Error::metadata(
                        at("episode_index"),
                        format!(
                            "row {row} (index {g}) holds episode_index {:?}, but meta/episodes \
                             places it in episode {}",
                            f.int_scalar("episode_index", row),
                            e.episode_index
                        ),
                    ));
                }
                if let Some(t) = f.timestamp(row) {
                    // (NaN fails too)
                    let increasing =
                        prev.is_none_or(|p| p.partial_cmp(&t) == Some(std::cmp::Ordering::Less));
                    if !increasing || !t.is_finite() {
                        return Err(Error::metadata(
                            at("timestamp"),
                            format!(
                                "row {row} (index {g}) has timestamp {t} after {:?}: the \
                                 timestamps of an episode must increase",
                                prev
                            ),
                        ));
                    }
                    prev = Some(t);
                }
            }
        }
        Ok(())
    }

    /// The item index of the first frame of episode `episode_index`, if it is selected.
    pub fn item_of_episode(&self, episode_index: i64) -> Option<usize> {
        let p = *self.pos_of.get(&episode_index)?;
        let s = self.selected.iter().position(|&q| q == p)?;
        self.cum.get(s).copied()
    }

    /// Only the output `key` (a camera) of the items at `indices`, as decoded (uint8 `(H, W, C)`
    /// frames, or a depth map's 12-bit codes as native-endian uint16 `(H, W, 1)`), frames back
    /// to back, and the frame's `(H, W, C)`.
    pub fn fill_one(&self, key: &str, indices: &[i64]) -> Result<(Vec<u8>, (usize, usize, usize))> {
        let fmt = FrameFormat::default();
        let specs: Vec<OutputSpec> = self
            .outputs_for(fmt)
            .iter()
            .map(|s| s.with_depth(DepthOutput::Codes))
            .collect();
        let spec = specs
            .iter()
            .find(|s| s.key == key && s.is_frame())
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!("'{key}' is not a camera key"),
            })?;
        let dims = spec.frame.unwrap_or((0, 0, 0));
        let mut buf = vec![0u8; spec.item_bytes() * indices.len()];
        let mut outs: Vec<OutBuf<'_>> = Vec::with_capacity(specs.len());
        let mut mine = Some(buf.as_mut_slice());
        for s in &specs {
            if s.key == key && s.is_frame() {
                outs.push(mine.take().map_or(OutBuf::Skip, OutBuf::Bytes));
            } else {
                outs.push(OutBuf::Skip);
            }
        }
        self.fill_specs(indices, fmt, &specs, &mut outs, &NEVER)?;
        drop(outs);
        Ok((buf, dims))
    }

    /// The data file of episode `episode_index` and the rows of that episode in it.
    pub fn episode_rows(
        &self,
        episode_index: i64,
    ) -> Result<(Arc<DataFile>, std::ops::Range<usize>)> {
        let e = self
            .pos_of
            .get(&episode_index)
            .and_then(|&p| self.episodes.get(p))
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!("episode {episode_index} is not in the dataset"),
            })?;
        let f = self.data_file(e)?;
        let start = f
            .row_of(e.dataset_from_index)
            .map_err(|er| er.within(Some(episode_index), None))?;
        let len = usize::try_from(e.length).unwrap_or(0);
        if start.checked_add(len).is_none_or(|end| end > f.rows) {
            return Err(Error::metadata(
                Location::file(&f.path).with_episode(episode_index),
                format!(
                    "the episode's {len} rows from row {start} run past the file's {} rows",
                    f.rows
                ),
            ));
        }
        Ok((f.clone(), start..start + len))
    }

    /// The item at `index`; negative indices count from the end, as in Python.
    fn resolve(&self, index: i64) -> Result<ItemPos> {
        let len = self.len();
        let out_of_range = || Error::IndexOutOfRange { index, len };
        let from_start = if index < 0 {
            i64::try_from(len).ok().and_then(|n| n.checked_add(index))
        } else {
            Some(index)
        };
        let i = from_start
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < len)
            .ok_or_else(out_of_range)?;
        let s = self.cum.partition_point(|&c| c <= i).saturating_sub(1);
        let ep = *self.selected.get(s).ok_or_else(out_of_range)?;
        let start = self.cum.get(s).copied().unwrap_or(0);
        let e = self.episodes.get(ep).ok_or_else(out_of_range)?;
        Ok(ItemPos {
            ep,
            abs: e.dataset_from_index + (i - start) as i64,
        })
    }

    fn episode_at(&self, pos: usize) -> Result<&Episode> {
        self.episodes.get(pos).ok_or_else(|| {
            Error::internal(
                "item lookup",
                format!("episode position {pos} out of range"),
            )
        })
    }

    /// Resolves item indices and loads their data files (whose rows were checked against
    /// `meta/episodes` once, when the file was loaded: [`Dataset::check_rows`]).
    fn locate(
        &self,
        indices: &[i64],
        cancel: &AtomicBool,
    ) -> Result<(Vec<ItemPos>, Vec<Arc<DataFile>>)> {
        let items: Vec<ItemPos> = indices
            .iter()
            .map(|&i| self.resolve(i))
            .collect::<Result<_>>()?;
        let mut files: Vec<Arc<DataFile>> = Vec::with_capacity(items.len());
        for it in &items {
            // (loading a table, a round trip per episode on a remote root, is worth a check)
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let e = self.episode_at(it.ep)?;
            let f = self.data_file(e)?;
            f.row_of(it.abs)
                .map_err(|er| er.within(Some(e.episode_index), None))?;
            files.push(f);
        }
        Ok((items, files))
    }

    /// Copies the rows of a numeric feature for every item and offset into `dst` (items back to
    /// back, `row_bytes` per row) and, when given, the pad flags into `pads`.
    #[allow(clippy::too_many_arguments)]
    fn copy_rows(
        &self,
        key: &str,
        row_bytes: usize,
        offsets: Option<&[i64]>,
        items: &[ItemPos],
        files: &[Arc<DataFile>],
        dst: &mut [u8],
        mut pads: Option<&mut [u8]>,
    ) -> Result<()> {
        let mut n = 0usize;
        for (it, f) in items.iter().zip(files) {
            let e = self.episode_at(it.ep)?;
            for (r, pad) in window(offsets, e, it.abs) {
                let row = f
                    .row_of(r)
                    .map_err(|er| er.within(Some(e.episode_index), Some(key)))?;
                let src = f.fixed_row(key, row).ok_or_else(|| Error::MissingColumn {
                    at: Location::file(&f.path).with_episode(e.episode_index),
                    column: key.to_owned(),
                })?;
                let out = dst
                    .get_mut(n * row_bytes..(n + 1) * row_bytes)
                    .ok_or_else(|| Error::InvalidArgument {
                        msg: format!("output buffer for '{key}' too small"),
                    })?;
                if src.len() != out.len() {
                    return Err(Error::metadata(
                        Location::file(&f.path).with_key(key),
                        "row size disagrees with the feature shape",
                    ));
                }
                out.copy_from_slice(src);
                if let Some(p) = pads.as_deref_mut().and_then(|p| p.get_mut(n)) {
                    *p = u8::from(pad);
                }
                n += 1;
            }
        }
        Ok(())
    }

    /// Fills every array entry of the items at `indices` (string entries left out), in item
    /// order: `arrays[i]` receives the `i`-th non-string output of [`Dataset::outputs_for`]
    /// (`indices.len() * item_bytes` bytes). The form adapters without strings use (torch
    /// operators, the MLX primitive).
    pub fn fill_arrays(
        &self,
        indices: &[i64],
        fmt: FrameFormat,
        arrays: Vec<&mut [u8]>,
    ) -> Result<()> {
        let specs = self.outputs_for(fmt);
        let wanted = specs.iter().filter(|s| s.is_array()).count();
        if arrays.len() != wanted {
            return Err(Error::InvalidArgument {
                msg: format!("expected {wanted} output arrays, got {}", arrays.len()),
            });
        }
        let mut arrays = arrays.into_iter();
        let mut outs: Vec<OutBuf<'_>> = Vec::with_capacity(specs.len());
        for s in &specs {
            // (as many arrays as array entries: checked above)
            let next = if s.is_array() { arrays.next() } else { None };
            outs.push(next.map_or(OutBuf::Skip, OutBuf::Bytes));
        }
        self.fill_batch(indices, fmt, &mut outs)
    }

    /// Fills one batch with frames in `fmt`. `outs` follows [`Dataset::outputs_for`] one to one.
    pub fn fill_batch(
        &self,
        indices: &[i64],
        fmt: FrameFormat,
        outs: &mut [OutBuf<'_>],
    ) -> Result<()> {
        self.fill_batch_cancellable(indices, fmt, outs, &NEVER)
    }

    /// [`Dataset::fill_batch`] that stops with [`Error::Cancelled`] soon after `cancel` is set
    /// (between frames), leaving the buffers partly written.
    pub fn fill_batch_cancellable(
        &self,
        indices: &[i64],
        fmt: FrameFormat,
        outs: &mut [OutBuf<'_>],
        cancel: &AtomicBool,
    ) -> Result<()> {
        self.fill_specs(indices, fmt, &self.outputs_for(fmt), outs, cancel)
    }

    /// Fills the outputs `specs` (this dataset's, frames in `fmt`, depth maps as each spec
    /// says) of the items at `indices`.
    fn fill_specs(
        &self,
        indices: &[i64],
        fmt: FrameFormat,
        specs: &[OutputSpec],
        outs: &mut [OutBuf<'_>],
        cancel: &AtomicBool,
    ) -> Result<()> {
        if outs.len() != specs.len() {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "expected {} output buffers, got {}",
                    specs.len(),
                    outs.len()
                ),
            });
        }
        let b = indices.len();
        for (spec, out) in specs.iter().zip(outs.iter()) {
            match out {
                OutBuf::Bytes(buf) if spec.is_array() && buf.len() == b * spec.item_bytes() => {}
                OutBuf::Strings(_) if spec.is_string() => {}
                OutBuf::Values(_) if spec.kind == OutputKind::Language => {}
                OutBuf::Skip => {}
                _ => {
                    return Err(Error::InvalidArgument {
                        msg: format!(
                            "output buffer for '{}' has the wrong kind or size",
                            spec.key
                        ),
                    })
                }
            }
        }
        let (items, files) = self.locate(indices, cancel)?;

        // Tabular outputs are plain copies; frame requests are collected for the planner.
        let mut videos: Vec<VideoRequest> = Vec::new();
        let mut images: Vec<ImageRequest> = Vec::new();
        let mut target_of: Vec<Option<usize>> = Vec::with_capacity(specs.len());
        let mut n_targets = 0usize;
        for (spec, out) in specs.iter().zip(outs.iter_mut()) {
            let offsets = self.delta.get(&spec.key).map(Vec::as_slice);
            if matches!(out, OutBuf::Skip) {
                target_of.push(None);
                continue;
            }
            target_of.push(spec.is_frame().then_some(n_targets));
            match (spec.kind, out) {
                (OutputKind::Video, _) => {
                    self.video_requests(spec, offsets, &items, &files, n_targets, &mut videos)?;
                    n_targets += 1;
                }
                (OutputKind::Image, _) => {
                    for (bi, (it, f)) in items.iter().zip(&files).enumerate() {
                        let e = self.episode_at(it.ep)?;
                        let steps = offsets.map_or(1, <[i64]>::len);
                        for (t, (r, _)) in window(offsets, e, it.abs).enumerate() {
                            let row = f
                                .row_of(r)
                                .map_err(|er| er.within(Some(e.episode_index), Some(&spec.key)))?;
                            images.push(ImageRequest {
                                target: n_targets,
                                slot: bi * steps + t,
                                file: f.clone(),
                                row,
                                episode: e.episode_index,
                            });
                        }
                    }
                    n_targets += 1;
                }
                (OutputKind::Numeric, OutBuf::Bytes(buf)) => {
                    self.copy_rows(
                        &spec.key,
                        spec.step_bytes(),
                        offsets,
                        &items,
                        &files,
                        buf,
                        None,
                    )?;
                }
                (OutputKind::Pad, OutBuf::Bytes(buf)) => {
                    let base = spec.key.strip_suffix("_is_pad").unwrap_or(&spec.key);
                    let offs = self.delta.get(base).map(Vec::as_slice);
                    let mut n = 0;
                    for it in &items {
                        let e = self.episode_at(it.ep)?;
                        for (_, pad) in window(offs, e, it.abs) {
                            if let Some(x) = buf.get_mut(n) {
                                *x = u8::from(pad);
                            }
                            n += 1;
                        }
                    }
                }
                (OutputKind::String, OutBuf::Strings(v)) => {
                    v.clear();
                    for (it, f) in items.iter().zip(&files) {
                        let e = self.episode_at(it.ep)?;
                        for (r, _) in window(offsets, e, it.abs) {
                            let row = f.row_of(r)?;
                            match f.columns.get(&spec.key) {
                                Some(ColumnData::Str(a)) if row < arrow_array::Array::len(a) => {
                                    v.push(a.value(row).to_owned())
                                }
                                _ => {
                                    return Err(Error::MissingColumn {
                                        at: Location::file(&f.path),
                                        column: spec.key.clone(),
                                    })
                                }
                            }
                        }
                    }
                }
                (OutputKind::Language, OutBuf::Values(v)) => {
                    v.clear();
                    for (it, f) in items.iter().zip(&files) {
                        let row = f.row_of(it.abs)?;
                        match f.columns.get(&spec.key) {
                            Some(ColumnData::Values(a)) => {
                                let value = a.get(row).cloned().ok_or_else(|| {
                                    Error::internal(
                                        "language values",
                                        format!("row {row} past the column of '{}'", spec.key),
                                    )
                                })?;
                                v.push(value);
                            }
                            _ => {
                                return Err(Error::MissingColumn {
                                    at: Location::file(&f.path),
                                    column: spec.key.clone(),
                                })
                            }
                        }
                    }
                }
                (kind @ (OutputKind::Task | OutputKind::Subtask), OutBuf::Strings(v)) => {
                    let (column, table, file) = match kind {
                        OutputKind::Task => ("task_index", Some(&self.tasks), "tasks"),
                        _ => ("subtask_index", self.subtasks.as_ref(), "subtasks"),
                    };
                    v.clear();
                    for (it, f) in items.iter().zip(&files) {
                        let e = self.episode_at(it.ep)?;
                        let row = f.row_of(it.abs)?;
                        let ti = f
                            .int_scalar(column, row)
                            .ok_or_else(|| Error::MissingColumn {
                                at: Location::file(&f.path),
                                column: column.into(),
                            })?;
                        let label = table.and_then(|t| t.get(&ti)).ok_or_else(|| {
                            Error::metadata(
                                Location::file(self.root.join(format!("meta/{file}.parquet")))
                                    .with_episode(e.episode_index),
                                format!("{column} {ti} has no entry in meta/{file}.parquet"),
                            )
                        })?;
                        v.push(label.clone());
                    }
                }
                _ => {
                    return Err(Error::InvalidArgument {
                        msg: format!("output buffer for '{}' has the wrong kind", spec.key),
                    })
                }
            }
        }
        if videos.is_empty() && images.is_empty() {
            return Ok(());
        }
        let mut targets: Vec<FrameTarget> = Vec::with_capacity(n_targets);
        for ((spec, out), t) in specs.iter().zip(outs.iter_mut()).zip(&target_of) {
            if let (Some(_), OutBuf::Bytes(buf), Some(dims)) = (t, out, spec.frame) {
                let frame_out = self.frame_out(spec, fmt)?;
                targets.push(FrameTarget::new(buf, &spec.key, frame_out, dims));
            }
        }
        self.run_plan(videos, images, &targets, cancel)
    }

    /// The video frame requests of one video output for a batch of items.
    fn video_requests(
        &self,
        spec: &OutputSpec,
        offsets: Option<&[i64]>,
        items: &[ItemPos],
        files: &[Arc<DataFile>],
        target: usize,
        out: &mut Vec<VideoRequest>,
    ) -> Result<()> {
        let vk = self.video_position(&spec.key)?;
        let steps = offsets.map_or(1, <[i64]>::len);
        let mut paths: HashMap<(i64, i64), Arc<PathBuf>> = HashMap::new();
        for (bi, (it, f)) in items.iter().zip(files).enumerate() {
            let e = self.episode_at(it.ep)?;
            let (path, from_ts, span) = self.video_location(e, vk, &spec.key, &mut paths)?;
            for (t, (r, _)) in window(offsets, e, it.abs).enumerate() {
                let row = f
                    .row_of(r)
                    .map_err(|er| er.within(Some(e.episode_index), Some(&spec.key)))?;
                let ts = f.timestamp(row).ok_or_else(|| Error::MissingColumn {
                    at: Location::file(&f.path),
                    column: "timestamp".into(),
                })?;
                out.push(VideoRequest {
                    target,
                    slot: bi * steps + t,
                    path: path.clone(),
                    time_s: from_ts + f64::from(ts),
                    episode: e.episode_index,
                    // (a wrong timestamp must not reach a neighbour's frame in a shared file)
                    span,
                    caller_time: false,
                });
            }
        }
        Ok(())
    }

    fn video_position(&self, key: &str) -> Result<usize> {
        self.video_keys
            .iter()
            .position(|k| k == key)
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!(
                    "'{key}' is not a video key (video keys: {})",
                    self.video_keys.join(", ")
                ),
            })
    }

    /// The file and start time of episode `e` for the video key at position `vk`.
    fn video_location(
        &self,
        e: &Episode,
        vk: usize,
        key: &str,
        paths: &mut HashMap<(i64, i64), Arc<PathBuf>>,
    ) -> Result<(Arc<PathBuf>, f64, (f64, f64))> {
        let v = e.videos.get(vk).ok_or_else(|| {
            Error::metadata(
                Location::file(self.root.join("meta/episodes")).with_episode(e.episode_index),
                format!("no video location for '{key}'"),
            )
        })?;
        let path = match paths.get(&(v.chunk_index, v.file_index)) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(meta::video_file_path(
                    &self.root,
                    &self.info,
                    key,
                    v.chunk_index,
                    v.file_index,
                )?);
                paths.insert((v.chunk_index, v.file_index), p.clone());
                p
            }
        };
        Ok((path, v.from_timestamp, self.span_of(e, v)))
    }

    /// [`meta::episode_span`] with this dataset's fps.
    fn span_of(&self, e: &Episode, v: &meta::EpisodeVideo) -> (f64, f64) {
        meta::episode_span(e, v, self.info.fps)
    }

    /// Decodes the frames of video key `camera` at `timestamps[i]` seconds into episode
    /// `episodes[i]` (LeRobot's per-row `timestamp`: the frame's time in its episode), into
    /// `out` (`n` frames in `fmt`, back to back). Any episode of the dataset may be named,
    /// selected or not; the nearest frame must lie within `tolerance_s`.
    pub fn decode_frames(
        &self,
        camera: &str,
        episodes: &[i64],
        timestamps: &[f64],
        fmt: FrameFormat,
        out: &mut [u8],
    ) -> Result<()> {
        let dims = self.frame_dims(camera)?;
        let vk = self.video_position(camera)?;
        let spec = self
            .outputs_for(fmt)
            .into_iter()
            .find(|o| o.kind == OutputKind::Video && o.key == camera)
            .ok_or_else(|| Error::internal("decode_frames", format!("no output '{camera}'")))?;
        let frame_out = self.frame_out(&spec, fmt)?;
        if episodes.len() != timestamps.len() {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "{} episode indices but {} timestamps",
                    episodes.len(),
                    timestamps.len()
                ),
            });
        }
        let frame = frame_out.frame_bytes(dims.0, dims.1, dims.2);
        if out.len() != episodes.len() * frame {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "output of {} bytes for {} frames of {frame} bytes",
                    out.len(),
                    episodes.len()
                ),
            });
        }
        let mut paths = HashMap::new();
        let mut videos = Vec::with_capacity(episodes.len());
        for (i, (&ep, &ts)) in episodes.iter().zip(timestamps).enumerate() {
            let e = self
                .pos_of
                .get(&ep)
                .and_then(|&p| self.episodes.get(p))
                .ok_or_else(|| Error::InvalidArgument {
                    msg: format!(
                        "episode {ep} is not in the dataset at '{}' ({} episodes)",
                        self.root.display(),
                        self.episodes.len()
                    ),
                })?;
            let (path, from_ts, span) = self.video_location(e, vk, camera, &mut paths)?;
            if !ts.is_finite() {
                return Err(Error::InvalidArgument {
                    msg: format!("timestamp {ts} of request {i} (episode {ep}) is not finite"),
                });
            }
            // Episodes share files: the frame found must be this episode's (a time past its end,
            // or a loose tolerance, would reach a neighbour's).
            videos.push(VideoRequest {
                target: 0,
                slot: i,
                path,
                time_s: from_ts + ts,
                episode: ep,
                span,
                caller_time: true,
            });
        }
        if videos.is_empty() {
            return Ok(());
        }
        let targets = [FrameTarget::new(out, camera, frame_out, dims)];
        self.run_plan(videos, Vec::new(), &targets, &NEVER)
    }

    /// For every item (in item order), whether its frame starts a keyframe group in every
    /// video key (decodes without earlier frames). Samplers use it to cut the dataset into
    /// runs that decode on their own. All true for datasets without videos.
    pub fn keyframe_items(&self) -> Result<Vec<bool>> {
        let rt = self.runtime()?;
        let mut out = vec![true; self.len()];
        let mut paths = HashMap::new();
        for (s, &p) in self.selected.iter().enumerate() {
            let e = self.episode_at(p)?;
            let f = self.data_file(e)?;
            let base = self.cum.get(s).copied().unwrap_or(0);
            for (vk, key) in self.video_keys.iter().enumerate() {
                let (path, from_ts, _) = self.video_location(e, vk, key, &mut paths)?;
                let index = rt
                    .decoders
                    .index(&path)
                    .map_err(|er| er.within(Some(e.episode_index), Some(key)))?;
                for r in 0..e.length.max(0) {
                    let row = f.row_of(e.dataset_from_index + r)?;
                    let ts = f.timestamp(row).ok_or_else(|| Error::MissingColumn {
                        at: Location::file(&f.path),
                        column: "timestamp".into(),
                    })?;
                    let key_frame = index
                        .nearest(from_ts + f64::from(ts))
                        .is_some_and(|(pos, _)| index.start_of(pos) == pos);
                    if let Some(o) = out.get_mut(base + r as usize) {
                        *o &= key_frame;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Shape and element type of one row of numeric feature `key` (`[]` for LeRobot's
    /// shape-`(1,)` scalars).
    pub fn numeric_row(&self, key: &str) -> Result<(Vec<usize>, meta::DType)> {
        match self.info.features.get(key) {
            Some(f) => match f.kind {
                FeatureKind::Numeric(dt) => Ok((f.item_shape(), dt.item_dtype())),
                _ => Err(Error::InvalidArgument {
                    msg: format!("'{key}' is a {} feature, not a numeric one", f.dtype_str),
                }),
            },
            None => Err(Error::InvalidArgument {
                msg: format!(
                    "'{key}' is not a feature of the dataset at '{}'",
                    self.root.display()
                ),
            }),
        }
    }

    /// Gathers numeric feature `key` at frame offsets `offsets` around each item of `indices`,
    /// with LeRobot's clamping: `values` receives `(n, T, *row)` elements of the item dtype and
    /// `pads` `(n, T)` flags (1 where the unclamped row left the item's episode).
    pub fn gather(
        &self,
        key: &str,
        indices: &[i64],
        offsets: &[i64],
        values: &mut [u8],
        pads: &mut [u8],
    ) -> Result<()> {
        let (shape, dtype) = self.numeric_row(key)?;
        let row_bytes = shape.iter().product::<usize>() * dtype.size();
        let steps = indices.len() * offsets.len();
        if values.len() != steps * row_bytes || pads.len() != steps {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "gather of '{key}': buffers of {} and {} bytes for {steps} rows of {row_bytes} bytes",
                    values.len(),
                    pads.len()
                ),
            });
        }
        let (items, files) = self.locate(indices, &NEVER)?;
        self.copy_rows(
            key,
            row_bytes,
            Some(offsets),
            &items,
            &files,
            values,
            Some(pads),
        )
    }
}
