//! A LeRobot v3.0 dataset: items with LeRobot's keys and window semantics, filled in batches
//! into caller-provided buffers. Video frames are planned per file and decoded in parallel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::Value;

use crate::error::{Error, Location, Result};
use crate::image::decode_image_into;
use crate::meta::{self, DType, Episode, FeatureKind, Info};
use crate::table::{ColumnData, DataFile};
use crate::video::DecoderPool;
use crate::window::{check_delta_timestamps, delta_indices};

/// Options of [`Dataset::open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Episode indices to select (any order, duplicates ignored); `None` selects all.
    pub episodes: Option<Vec<i64>>,
    /// Per-key time offsets in seconds (LeRobot's `delta_timestamps`).
    pub delta_timestamps: Option<IndexMap<String, Vec<f64>>>,
    /// Tolerance for delta validation and frame lookup (LeRobot's `tolerance_s`).
    pub tolerance_s: f64,
    /// Worker threads for decoding; `None` uses the number of cores.
    pub threads: Option<usize>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            episodes: None,
            delta_timestamps: None,
            tolerance_s: 1e-4,
            threads: None,
        }
    }
}

/// What an output entry of an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Decoded video frames, uint8 `(H, W, 3)` (or `(T, H, W, 3)`).
    Video,
    /// Decoded embedded images, uint8 `(H, W, C)` (or `(T, H, W, C)`).
    Image,
    /// Numbers from the data parquet.
    Numeric,
    /// Strings from the data parquet (one per item, or `T` per item).
    String,
    /// `{key}_is_pad` masks, bool `(T,)`.
    Pad,
    /// The task string of the item's `task_index`.
    Task,
}

/// One entry of an item: its key, kind, element type and per-item shape.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub key: String,
    pub kind: OutputKind,
    /// Element type of byte outputs (`U8` for frames, `Bool` for pads); unused for strings.
    pub dtype: DType,
    /// Shape of one item's value (`[]` for scalars and single strings).
    pub shape: Vec<usize>,
    /// Number of time steps when the key has `delta_timestamps`.
    pub window: Option<usize>,
}

impl OutputSpec {
    /// Number of elements of one item's value.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Bytes of one item's value (0 for string outputs).
    pub fn item_bytes(&self) -> usize {
        match self.kind {
            OutputKind::String | OutputKind::Task => 0,
            _ => self.numel() * self.dtype.size(),
        }
    }
    /// True for outputs returned as strings.
    pub fn is_string(&self) -> bool {
        matches!(self.kind, OutputKind::String | OutputKind::Task)
    }
}

/// A caller-provided destination for one output of a batch.
pub enum OutBuf<'a> {
    /// `batch * spec.item_bytes()` bytes, items back to back.
    Bytes(&'a mut [u8]),
    /// Cleared and filled with `batch * T` (or `batch`) strings.
    Strings(&'a mut Vec<String>),
}

struct Runtime {
    pid: u32,
    pool: rayon::ThreadPool,
    decoders: DecoderPool,
}

/// An opened dataset.
pub struct Dataset {
    root: PathBuf,
    info: Info,
    episodes: Vec<Episode>,
    selected: Vec<usize>,
    /// Cumulative item counts of the selected episodes (len = selected.len() + 1).
    cum: Vec<usize>,
    tasks: IndexMap<i64, String>,
    stats: Option<Value>,
    delta: IndexMap<String, Vec<i64>>,
    tolerance_s: f64,
    threads: usize,
    outputs: Vec<OutputSpec>,
    video_keys: Vec<String>,
    data_files: Mutex<HashMap<(i64, i64), Arc<DataFile>>>,
    runtime: Mutex<Option<Arc<Runtime>>>,
}

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
        if !root.is_dir() {
            return Err(Error::NotFound {
                at: Location::file(&root),
                detail: "dataset root directory does not exist".into(),
            });
        }
        if !(opts.tolerance_s.is_finite() && opts.tolerance_s >= 0.0) {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "tolerance_s must be a non-negative number, got {}",
                    opts.tolerance_s
                ),
            });
        }
        let info = meta::read_info(&root)?;
        let video_keys = info.video_keys();
        let episodes = meta::read_episodes(&root, &video_keys)?;
        let tasks = meta::read_tasks(&root)?;
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
                    if !info.features.contains_key(k) {
                        return Err(Error::DeltaTimestamps {
                            msg: format!(
                                "key '{k}' is not a feature of the dataset (features: {})",
                                info.features.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        });
                    }
                }
                delta_indices(d, info.fps)
            }
        };
        let threads = opts
            .threads
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1)
            .max(1);
        let outputs = build_outputs(&info, &delta)?;
        Ok(Dataset {
            root,
            info,
            episodes,
            selected,
            cum,
            tasks,
            stats,
            delta,
            tolerance_s: opts.tolerance_s,
            threads,
            outputs,
            video_keys,
            data_files: Mutex::new(HashMap::new()),
            runtime: Mutex::new(None),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn info(&self) -> &Info {
        &self.info
    }
    /// All episodes of the dataset, sorted by index.
    pub fn episodes(&self) -> &[Episode] {
        &self.episodes
    }
    /// Episode indices of the selection, in dataset order.
    pub fn selected_episodes(&self) -> Vec<i64> {
        self.selected
            .iter()
            .filter_map(|&p| self.episodes.get(p).map(|e| e.episode_index))
            .collect()
    }
    pub fn tasks(&self) -> &IndexMap<i64, String> {
        &self.tasks
    }
    pub fn stats(&self) -> Option<&Value> {
        self.stats.as_ref()
    }
    /// Frame offsets per key derived from `delta_timestamps`.
    pub fn delta_indices(&self) -> &IndexMap<String, Vec<i64>> {
        &self.delta
    }
    pub fn tolerance_s(&self) -> f64 {
        self.tolerance_s
    }
    /// Number of items (frames of the selected episodes).
    pub fn len(&self) -> usize {
        self.cum.last().copied().unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The entries of every item, in LeRobot's key order.
    pub fn outputs(&self) -> &[OutputSpec] {
        &self.outputs
    }

    fn runtime(&self) -> Result<Arc<Runtime>> {
        let pid = std::process::id();
        let mut guard = self.runtime.lock().map_err(|_| Error::InvalidArgument {
            msg: "internal lock poisoned by an earlier panic".into(),
        })?;
        if let Some(rt) = guard.as_ref() {
            if rt.pid == pid {
                return Ok(rt.clone());
            }
            // Forked child: the parent's worker threads do not exist here and its open files
            // share offsets with the parent. Leak the old runtime (never touch it) and rebuild.
            if let Some(old) = guard.take() {
                std::mem::forget(old);
            }
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("roboframes-{i}"))
            .build()
            .map_err(|e| Error::InvalidArgument {
                msg: format!("cannot start worker threads: {e}"),
            })?;
        let rt = Arc::new(Runtime {
            pid,
            pool,
            decoders: DecoderPool::new(2 * self.threads + 2, 1),
        });
        *guard = Some(rt.clone());
        Ok(rt)
    }

    fn data_file(&self, ep: &Episode) -> Result<Arc<DataFile>> {
        let key = (ep.data_chunk_index, ep.data_file_index);
        if let Some(f) = self
            .data_files
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(f);
        }
        let path = meta::data_file_path(&self.root, &self.info, key.0, key.1)?;
        if !path.exists() {
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
        let f = Arc::new(
            DataFile::load(&path, &feats).map_err(|e| e.within(Some(ep.episode_index), None))?,
        );
        if let Ok(mut m) = self.data_files.lock() {
            m.entry(key).or_insert_with(|| f.clone());
        }
        Ok(f)
    }

    fn resolve(&self, index: i64) -> Result<ItemPos> {
        let len = self.len();
        if index < 0 || index as usize >= len {
            return Err(Error::IndexOutOfRange { index, len });
        }
        let i = index as usize;
        let s = self.cum.partition_point(|&c| c <= i).saturating_sub(1);
        let ep = *self
            .selected
            .get(s)
            .ok_or(Error::IndexOutOfRange { index, len })?;
        let start = self.cum.get(s).copied().unwrap_or(0);
        let e = self
            .episodes
            .get(ep)
            .ok_or(Error::IndexOutOfRange { index, len })?;
        Ok(ItemPos {
            ep,
            abs: e.dataset_from_index + (i - start) as i64,
        })
    }

    /// Global row indices (clamped) and pad flags of one item for a key.
    fn window(&self, key: &str, e: &Episode, abs: i64) -> (Vec<i64>, Vec<bool>) {
        match self.delta.get(key) {
            None => (vec![abs], vec![false]),
            Some(ds) => ds
                .iter()
                .map(|d| {
                    let q = abs + d;
                    let pad = q < e.dataset_from_index || q >= e.dataset_to_index;
                    let c = q.clamp(
                        e.dataset_from_index,
                        (e.dataset_to_index - 1).max(e.dataset_from_index),
                    );
                    (c, pad)
                })
                .unzip(),
        }
    }

    /// Fills one batch. `outs` follows [`Dataset::outputs`] one to one.
    pub fn fill_batch(&self, indices: &[i64], outs: &mut [OutBuf<'_>]) -> Result<()> {
        if outs.len() != self.outputs.len() {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "expected {} output buffers, got {}",
                    self.outputs.len(),
                    outs.len()
                ),
            });
        }
        let b = indices.len();
        for (spec, out) in self.outputs.iter().zip(outs.iter()) {
            match out {
                OutBuf::Bytes(buf) if !spec.is_string() && buf.len() == b * spec.item_bytes() => {}
                OutBuf::Strings(_) if spec.is_string() => {}
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
        let items: Vec<ItemPos> = indices
            .iter()
            .map(|&i| self.resolve(i))
            .collect::<Result<_>>()?;
        // Load the data files involved (once each) and check rows belong to their episodes.
        let mut files: Vec<Arc<DataFile>> = Vec::with_capacity(b);
        for it in &items {
            let e = self.episode_at(it.ep)?;
            let f = self.data_file(e)?;
            let row = f
                .row_of(it.abs)
                .map_err(|er| er.within(Some(e.episode_index), None))?;
            if let Some(got) = f.int_scalar("episode_index", row) {
                if got != e.episode_index {
                    return Err(Error::metadata(
                        Location::file(&f.path).with_episode(e.episode_index),
                        format!(
                            "row of index {} belongs to episode {got}, but meta/episodes places it in episode {}",
                            it.abs, e.episode_index
                        ),
                    ));
                }
            }
            files.push(f);
        }

        let rt = self.runtime()?;
        let mut video_jobs: Vec<VideoRequest> = Vec::new();
        let mut image_jobs: Vec<ImageJob> = Vec::new();
        for (o, (spec, out)) in self.outputs.iter().zip(outs.iter_mut()).enumerate() {
            match spec.kind {
                OutputKind::Video => {
                    let vk = self
                        .video_keys
                        .iter()
                        .position(|k| *k == spec.key)
                        .ok_or_else(|| Error::InvalidArgument {
                            msg: format!("'{}' is not a video key", spec.key),
                        })?;
                    for (bi, (it, f)) in items.iter().zip(&files).enumerate() {
                        let e = self.episode_at(it.ep)?;
                        let v = e.videos.get(vk).ok_or_else(|| {
                            Error::metadata(
                                Location::file(self.root.join("meta/episodes"))
                                    .with_episode(e.episode_index),
                                format!("no video location for '{}'", spec.key),
                            )
                        })?;
                        let path = meta::video_file_path(
                            &self.root,
                            &self.info,
                            &spec.key,
                            v.chunk_index,
                            v.file_index,
                        )?;
                        let (rows, _) = self.window(&spec.key, e, it.abs);
                        let t_steps = rows.len();
                        for (t, r) in rows.into_iter().enumerate() {
                            let row = f
                                .row_of(r)
                                .map_err(|er| er.within(Some(e.episode_index), Some(&spec.key)))?;
                            let ts = f.timestamp(row).ok_or_else(|| Error::MissingColumn {
                                at: Location::file(&f.path),
                                column: "timestamp".into(),
                            })?;
                            video_jobs.push(VideoRequest {
                                output: o,
                                slot: bi * t_steps + t,
                                path: path.clone(),
                                time_s: v.from_timestamp + f64::from(ts),
                                episode: e.episode_index,
                            });
                        }
                    }
                }
                OutputKind::Image => {
                    for (bi, (it, f)) in items.iter().zip(&files).enumerate() {
                        let e = self.episode_at(it.ep)?;
                        let (rows, _) = self.window(&spec.key, e, it.abs);
                        let t_steps = rows.len();
                        for (t, r) in rows.into_iter().enumerate() {
                            let row = f
                                .row_of(r)
                                .map_err(|er| er.within(Some(e.episode_index), Some(&spec.key)))?;
                            image_jobs.push(ImageJob {
                                output: o,
                                slot: bi * t_steps + t,
                                file: f.clone(),
                                row,
                                episode: e.episode_index,
                            });
                        }
                    }
                }
                OutputKind::Numeric => {
                    let OutBuf::Bytes(buf) = out else { continue };
                    let row_bytes = spec.item_bytes() / spec.window.unwrap_or(1).max(1);
                    let mut off = 0;
                    for (it, f) in items.iter().zip(&files) {
                        let e = self.episode_at(it.ep)?;
                        let (rows, _) = self.window(&spec.key, e, it.abs);
                        for r in rows {
                            let row = f
                                .row_of(r)
                                .map_err(|er| er.within(Some(e.episode_index), Some(&spec.key)))?;
                            let src = f.fixed_row(&spec.key, row).ok_or_else(|| {
                                Error::MissingColumn {
                                    at: Location::file(&f.path).with_episode(e.episode_index),
                                    column: spec.key.clone(),
                                }
                            })?;
                            let dst = buf.get_mut(off..off + row_bytes).ok_or_else(|| {
                                Error::InvalidArgument {
                                    msg: format!("output buffer for '{}' too small", spec.key),
                                }
                            })?;
                            if src.len() != dst.len() {
                                return Err(Error::metadata(
                                    Location::file(&f.path).with_key(spec.key.clone()),
                                    "row size disagrees with the feature shape",
                                ));
                            }
                            dst.copy_from_slice(src);
                            off += row_bytes;
                        }
                    }
                }
                OutputKind::String => {
                    let OutBuf::Strings(v) = out else { continue };
                    v.clear();
                    for (it, f) in items.iter().zip(&files) {
                        let e = self.episode_at(it.ep)?;
                        let (rows, _) = self.window(&spec.key, e, it.abs);
                        for r in rows {
                            let row = f.row_of(r)?;
                            let s = match f.columns.get(&spec.key) {
                                Some(ColumnData::Str(a)) if row < arrow_array::Array::len(a) => {
                                    a.value(row).to_owned()
                                }
                                _ => {
                                    return Err(Error::MissingColumn {
                                        at: Location::file(&f.path),
                                        column: spec.key.clone(),
                                    })
                                }
                            };
                            v.push(s);
                        }
                    }
                }
                OutputKind::Pad => {
                    let OutBuf::Bytes(buf) = out else { continue };
                    let base = spec.key.strip_suffix("_is_pad").unwrap_or(&spec.key);
                    let mut off = 0;
                    for it in &items {
                        let e = self.episode_at(it.ep)?;
                        let (_, pads) = self.window(base, e, it.abs);
                        for p in pads {
                            if let Some(x) = buf.get_mut(off) {
                                *x = u8::from(p);
                            }
                            off += 1;
                        }
                    }
                }
                OutputKind::Task => {
                    let OutBuf::Strings(v) = out else { continue };
                    v.clear();
                    for (it, f) in items.iter().zip(&files) {
                        let e = self.episode_at(it.ep)?;
                        let row = f.row_of(it.abs)?;
                        let ti = f.int_scalar("task_index", row).ok_or_else(|| {
                            Error::MissingColumn {
                                at: Location::file(&f.path),
                                column: "task_index".into(),
                            }
                        })?;
                        let task = self.tasks.get(&ti).ok_or_else(|| {
                            Error::metadata(
                                Location::file(self.root.join("meta/tasks.parquet"))
                                    .with_episode(e.episode_index),
                                format!("task_index {ti} has no entry in meta/tasks.parquet"),
                            )
                        })?;
                        v.push(task.clone());
                    }
                }
            }
        }

        if video_jobs.is_empty() && image_jobs.is_empty() {
            return Ok(());
        }
        // Destinations of the parallel stage: one slot writer per byte output.
        let writers: Vec<Option<SlotWriter>> = self
            .outputs
            .iter()
            .zip(outs.iter_mut())
            .map(|(spec, out)| match (spec.kind, out) {
                (OutputKind::Video | OutputKind::Image, OutBuf::Bytes(buf)) => {
                    let slot = spec.item_bytes() / spec.window.unwrap_or(1).max(1);
                    Some(SlotWriter::new(buf, slot))
                }
                _ => None,
            })
            .collect();
        let groups = plan_video(video_jobs);
        let tolerance = self.tolerance_s;
        let writers = &writers;
        let outputs = &self.outputs;
        rt.pool.install(|| -> Result<()> {
            let video = groups
                .par_iter()
                .map(|g| run_video_group(&rt.decoders, g, writers, outputs, tolerance))
                .collect::<Vec<Result<()>>>();
            let images = image_jobs
                .par_iter()
                .map(|j| {
                    let spec = outputs.get(j.output);
                    let key = spec.map_or("", |s| s.key.as_str());
                    let w = writers
                        .get(j.output)
                        .and_then(Option::as_ref)
                        .ok_or_else(|| Error::InvalidArgument {
                            msg: format!("no buffer for '{key}'"),
                        })?;
                    // SAFETY: every (output, slot) pair occurs in exactly one image job.
                    let dst = unsafe { w.slot(j.slot) }.ok_or_else(|| Error::InvalidArgument {
                        msg: format!("slot {} out of range for '{key}'", j.slot),
                    })?;
                    let shape = spec.map(|s| s.shape.clone()).unwrap_or_default();
                    decode_image_into(&j.file, key, j.row, &shape, dst)
                        .map_err(|e| e.within(Some(j.episode), Some(key)))
                })
                .collect::<Vec<Result<()>>>();
            video
                .into_iter()
                .chain(images)
                .collect::<Result<Vec<()>>>()
                .map(|_| ())
        })
    }

    fn episode_at(&self, pos: usize) -> Result<&Episode> {
        self.episodes
            .get(pos)
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!("internal: episode position {pos} out of range"),
            })
    }
}

fn build_outputs(info: &Info, delta: &IndexMap<String, Vec<i64>>) -> Result<Vec<OutputSpec>> {
    let mut outs = Vec::new();
    let win = |k: &str| delta.get(k).map(Vec::len);
    let with_t = |k: &str, shape: Vec<usize>| match win(k) {
        Some(t) => std::iter::once(t).chain(shape).collect(),
        None => shape,
    };
    for f in info
        .features
        .values()
        .filter(|f| f.kind == FeatureKind::Video)
    {
        let (h, w) = match f.shape.as_slice() {
            [h, w, 1 | 3 | 4] => (*h, *w),
            [1 | 3 | 4, h, w] => (*h, *w),
            [h, w, _] => (*h, *w),
            _ => (0, 0),
        };
        outs.push(OutputSpec {
            key: f.name.clone(),
            kind: OutputKind::Video,
            dtype: DType::U8,
            shape: with_t(&f.name, vec![h, w, 3]),
            window: win(&f.name),
        });
    }
    for f in info
        .features
        .values()
        .filter(|f| f.kind != FeatureKind::Video)
    {
        let (kind, dtype, shape) = match &f.kind {
            FeatureKind::Numeric(dt) => (
                OutputKind::Numeric,
                dt.item_dtype(),
                if f.is_scalar() {
                    vec![]
                } else {
                    f.shape.clone()
                },
            ),
            FeatureKind::String => (OutputKind::String, DType::U8, vec![]),
            FeatureKind::Image => (OutputKind::Image, DType::U8, f.shape.clone()),
            FeatureKind::Video => continue,
        };
        outs.push(OutputSpec {
            key: f.name.clone(),
            kind,
            dtype,
            shape: with_t(&f.name, shape),
            window: win(&f.name),
        });
    }
    for (k, d) in delta {
        outs.push(OutputSpec {
            key: format!("{k}_is_pad"),
            kind: OutputKind::Pad,
            dtype: DType::Bool,
            shape: vec![d.len()],
            window: Some(d.len()),
        });
    }
    outs.push(OutputSpec {
        key: "task".into(),
        kind: OutputKind::Task,
        dtype: DType::U8,
        shape: vec![],
        window: None,
    });
    Ok(outs)
}

/// One frame to decode into one output slot.
#[derive(Debug, Clone)]
struct VideoRequest {
    output: usize,
    slot: usize,
    path: PathBuf,
    time_s: f64,
    episode: i64,
}

struct ImageJob {
    output: usize,
    slot: usize,
    file: Arc<DataFile>,
    row: usize,
    episode: i64,
}

/// The requests against one video file.
struct VideoGroup {
    path: PathBuf,
    requests: Vec<VideoRequest>,
}

/// Groups requests by file (largest groups first, so they start early).
fn plan_video(jobs: Vec<VideoRequest>) -> Vec<VideoGroup> {
    let mut by_file: IndexMap<PathBuf, Vec<VideoRequest>> = IndexMap::new();
    for j in jobs {
        by_file.entry(j.path.clone()).or_default().push(j);
    }
    let mut groups: Vec<VideoGroup> = by_file
        .into_iter()
        .map(|(path, requests)| VideoGroup { path, requests })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.requests.len()));
    groups
}

fn run_video_group(
    pool: &DecoderPool,
    g: &VideoGroup,
    writers: &[Option<SlotWriter>],
    outputs: &[OutputSpec],
    tolerance_s: f64,
) -> Result<()> {
    let first = g.requests.first();
    let ctx_ep = first.map(|r| r.episode);
    let key_of = |o: usize| outputs.get(o).map_or("", |s| s.key.as_str());
    let ctx_key = first.map(|r| key_of(r.output));
    let index = pool.index(&g.path).map_err(|e| e.within(ctx_ep, ctx_key))?;
    // Map each request to the nearest frame; dedupe frames shared by several requests.
    let mut positions: Vec<usize> = Vec::new();
    let mut slots_of: Vec<Vec<usize>> = Vec::new();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for (ri, r) in g.requests.iter().enumerate() {
        let (pos, t) = index.nearest(r.time_s).ok_or_else(|| Error::Video {
            at: Location::file(&g.path),
            msg: "video has no frames".into(),
        })?;
        let dist = (t - r.time_s).abs();
        if dist.partial_cmp(&tolerance_s) != Some(std::cmp::Ordering::Less) {
            return Err(Error::FrameTimestamp {
                at: Location::file(&g.path)
                    .with_episode(r.episode)
                    .with_key(key_of(r.output)),
                query_s: r.time_s,
                nearest_s: t,
                distance_s: dist,
                tolerance_s,
            });
        }
        let u = *seen.entry(pos).or_insert_with(|| {
            positions.push(pos);
            slots_of.push(Vec::new());
            positions.len() - 1
        });
        if let Some(s) = slots_of.get_mut(u) {
            s.push(ri);
        }
    }
    let mut reader = pool
        .checkout(&g.path)
        .map_err(|e| e.within(ctx_ep, ctx_key))?;
    let result = reader.decode(&positions, |u, conv, frame| {
        let reqs = slots_of.get(u).map(Vec::as_slice).unwrap_or(&[]);
        let mut first_slot: Option<(usize, usize)> = None;
        for &ri in reqs {
            let Some(r) = g.requests.get(ri) else {
                continue;
            };
            let at = || {
                Location::file(&g.path)
                    .with_episode(r.episode)
                    .with_key(key_of(r.output))
            };
            let w = writers
                .get(r.output)
                .and_then(Option::as_ref)
                .ok_or_else(|| Error::InvalidArgument {
                    msg: format!("no buffer for '{}'", key_of(r.output)),
                })?;
            // SAFETY: each (output, slot) pair appears in exactly one request of one group, and
            // a group runs on one thread; no other reference to this slot exists meanwhile.
            let dst = unsafe { w.slot(r.slot) }.ok_or_else(|| Error::InvalidArgument {
                msg: format!("slot {} out of range for '{}'", r.slot, key_of(r.output)),
            })?;
            match first_slot {
                None => {
                    conv.convert(frame, dst)
                        .map_err(|m| Error::Video { at: at(), msg: m })?;
                    first_slot = Some((r.output, r.slot));
                }
                Some((o, s)) => {
                    // SAFETY: as above; the first slot of this frame is a different slot.
                    let src = writers
                        .get(o)
                        .and_then(Option::as_ref)
                        .and_then(|w0| unsafe { w0.slot(s) });
                    match src {
                        Some(src) if src.len() == dst.len() => dst.copy_from_slice(src),
                        _ => conv
                            .convert(frame, dst)
                            .map_err(|m| Error::Video { at: at(), msg: m })?,
                    }
                }
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            pool.checkin(reader);
            Ok(())
        }
        // A reader that failed mid-stream is dropped, not reused.
        Err(e) => Err(e.within(ctx_ep, ctx_key)),
    }
}

/// Writes fixed-size slots of one output buffer from several threads.
struct SlotWriter {
    base: *mut u8,
    len: usize,
    slot_bytes: usize,
}

// SAFETY: the writer only hands out disjoint slots; callers guarantee a slot is used by one
// thread at a time (see `slot`).
unsafe impl Sync for SlotWriter {}
unsafe impl Send for SlotWriter {}

impl SlotWriter {
    fn new(buf: &mut [u8], slot_bytes: usize) -> SlotWriter {
        SlotWriter {
            base: buf.as_mut_ptr(),
            len: buf.len(),
            slot_bytes,
        }
    }

    /// The bytes of slot `i`, or None when out of range.
    ///
    /// # Safety
    /// No other live reference to slot `i` may exist while the returned one is used, and the
    /// buffer the writer was made from must outlive it (it is borrowed for all of `fill_batch`).
    #[allow(clippy::mut_from_ref)]
    unsafe fn slot(&self, i: usize) -> Option<&mut [u8]> {
        let start = i.checked_mul(self.slot_bytes)?;
        let end = start.checked_add(self.slot_bytes)?;
        if end > self.len || self.slot_bytes == 0 {
            return None;
        }
        Some(std::slice::from_raw_parts_mut(
            self.base.add(start),
            self.slot_bytes,
        ))
    }
}
