//! A LeRobot v3.0 dataset: items with LeRobot's keys and window semantics, filled in batches
//! into caller-provided buffers, plus the two primitives adapters build on: frames by
//! (camera, episode, time) and windowed tabular gathers with pad masks.

mod fill;
mod frames;
mod runtime;
mod tables;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;

use crate::cache::FrameCache;
use crate::depth::DepthOutput;
use crate::error::{Error, Location, Result};
use crate::frame::FrameFormat;
use crate::meta::{self, DType, Episode, FeatureKind, Info};
use crate::outputs::{build_outputs, OutputKind, OutputSpec};
use crate::table::DataFile;
use crate::value::Value;
use crate::window::{check_delta_timestamps, delta_indices};
use runtime::Runtime;

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
    /// Format, frame rate, task and key names of a root that is not a LeRobot dataset (an
    /// HDF5 file or folder); see [`crate::source`].
    pub source: crate::source::SourceOptions,
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
            source: crate::source::SourceOptions::default(),
        }
    }
}

/// Where a dataset's rows come from.
enum Source {
    /// A LeRobot v3.0 root: parquet data tables and mp4 videos.
    LeRobot,
    /// HDF5 files read in place (each episode's group is its data table).
    #[cfg(feature = "hdf5")]
    Hdf5(Arc<crate::hdf5src::Hdf5Source>),
    /// An RLDS dataset read in place (each episode's record is its data table).
    Rlds(Arc<crate::rldssrc::RldsSource>),
    /// MCAP recordings read in place (each file's aligned rows are its data table).
    Mcap(Arc<crate::mcapsrc::McapSource>),
}

/// What a source's metadata says: info, episodes, tasks, subtasks, stats and warnings.
type SourceMeta = (
    Source,
    Info,
    Vec<Episode>,
    IndexMap<i64, String>,
    Option<IndexMap<i64, String>>,
    Option<String>,
    Vec<String>,
);

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

/// An opened dataset. Shareable between threads; every method takes `&self`.
pub struct Dataset {
    root: PathBuf,
    /// The root is a remote one (a URL): data tables load an episode at a time.
    remote: bool,
    source: Source,
    info: Info,
    episodes: Vec<Episode>,
    /// Position in `episodes` of each episode index.
    pos_of: HashMap<i64, usize>,
    /// Positions in `episodes` of the episodes of each data file (chunk, file): a file's load
    /// looks up its episodes here, not by a scan of every episode (a v2.x root has a file per
    /// episode, so a scan per load would cost episodes squared).
    in_data_file: HashMap<(i64, i64), Vec<usize>>,
    /// The same per video file (chunk, file), one map per video key (in `video_keys` order).
    in_video_file: Vec<HashMap<(i64, i64), Vec<usize>>>,
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
            // (a URL naming a .mcap file registers its folder: see `open_root`)
            crate::store::open_root(&text, &opts.remote)?
        } else {
            root
        };
        let format = if remote {
            crate::source::Format::detect_remote(&root, &opts.source)?
        } else {
            crate::source::Format::detect(&root, &opts.source)?
        };
        if remote && format == crate::source::Format::Hdf5 {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "'{text}': HDF5 files are read from local files (libhdf5 reads files, not \
                     byte ranges); remote roots are LeRobot datasets, RLDS folders and MCAP \
                     files (copy the HDF5 files to a local disk first)"
                ),
            });
        }
        if !(opts.tolerance_s.is_finite() && opts.tolerance_s > 0.0) {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "tolerance_s must be a positive number of seconds (a frame is found when its time is closer than tolerance_s to the requested one), got {}",
                    opts.tolerance_s
                ),
            });
        }
        if !remote && format == crate::source::Format::LeRobot {
            crate::fs::local_root(&root)?;
        }
        let (source, info, episodes, tasks, subtasks, stats, mut warnings) = match format {
            crate::source::Format::LeRobot => Self::lerobot_meta(&root)?,
            crate::source::Format::Hdf5 => Self::hdf5_meta(&root, &opts.source)?,
            crate::source::Format::Rlds => {
                Self::source_meta(crate::rldssrc::open(&root, &opts.source)?, Source::Rlds)
            }
            crate::source::Format::Mcap => {
                Self::source_meta(crate::mcapsrc::open(&root, &opts.source)?, Source::Mcap)
            }
        };
        let video_keys = info.video_keys();

        let pos_of: HashMap<i64, usize> = episodes
            .iter()
            .enumerate()
            .map(|(i, e)| (e.episode_index, i))
            .collect();
        let mut in_data_file: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        let mut in_video_file: Vec<HashMap<(i64, i64), Vec<usize>>> =
            vec![HashMap::new(); video_keys.len()];
        for (i, e) in episodes.iter().enumerate() {
            in_data_file
                .entry((e.data_chunk_index, e.data_file_index))
                .or_default()
                .push(i);
            for (files, v) in in_video_file.iter_mut().zip(&e.videos) {
                files
                    .entry((v.chunk_index, v.file_index))
                    .or_default()
                    .push(i);
            }
        }
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
        let listed = episodes
            .iter()
            .try_fold(0i64, |acc, e| acc.checked_add(e.length))
            .ok_or_else(|| {
                Error::metadata(
                    Location::file(info.episodes_path(&root)),
                    "the episodes' lengths add up to more than 2^63 frames",
                )
            })?;
        if listed != info.total_frames {
            warnings.push(format!(
                "{}: total_frames is {} but the episodes of the episode table hold {listed} frames; \
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
        // (a LeRobot dataset always has tasks: its items' `task` fails without `task_index`,
        // as LeRobot's; another source has them when it stores or was given some)
        let has_tasks =
            matches!(source, Source::LeRobot) || info.features.contains_key("task_index");
        let outputs = build_outputs(
            &info,
            &delta,
            has_tasks,
            subtasks.is_some(),
            opts.depth_output,
        );
        Ok(Dataset {
            root,
            remote,
            source,
            info,
            episodes,
            pos_of,
            in_data_file,
            in_video_file,
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

    /// The metadata of a LeRobot root (v3.x, or v2.0/v2.1: see [`meta`]).
    fn lerobot_meta(root: &Path) -> Result<SourceMeta> {
        let info = meta::read_info(root)?;
        let episodes = meta::read_episodes(root, &info)?;
        let tasks = meta::read_tasks(root, &info)?;
        let subtasks = if info.features.contains_key("subtask_index") {
            meta::read_subtasks(root)?
        } else {
            None
        };
        let stats = meta::read_stats(root)?;
        Ok((
            Source::LeRobot,
            info,
            episodes,
            tasks,
            subtasks,
            stats,
            Vec::new(),
        ))
    }

    /// The metadata of HDF5 files (see [`crate::hdf5src`]).
    #[cfg(feature = "hdf5")]
    fn hdf5_meta(root: &Path, opts: &crate::source::SourceOptions) -> Result<SourceMeta> {
        Ok(Self::source_meta(
            crate::hdf5src::open(root, opts)?,
            Source::Hdf5,
        ))
    }

    /// The metadata of a source read in place (no subtasks, no `stats.json`).
    fn source_meta<S>(o: crate::source::Opened<S>, wrap: fn(Arc<S>) -> Source) -> SourceMeta {
        (
            wrap(o.source),
            o.info,
            o.episodes,
            o.tasks,
            None,
            None,
            o.warnings,
        )
    }

    #[cfg(not(feature = "hdf5"))]
    fn hdf5_meta(root: &Path, _opts: &crate::source::SourceOptions) -> Result<SourceMeta> {
        Err(Error::InvalidArgument {
            msg: format!(
                "'{}' is an HDF5 source, and this build of roboframes was made without HDF5 \
                 support (the core's `hdf5` feature)",
                root.display()
            ),
        })
    }

    /// The source's format name: `"lerobot"`, `"hdf5"`, `"rlds"` or `"mcap"`.
    pub fn format(&self) -> &'static str {
        match self.source {
            Source::LeRobot => "lerobot",
            #[cfg(feature = "hdf5")]
            Source::Hdf5(_) => "hdf5",
            Source::Rlds(_) => "rlds",
            Source::Mcap(_) => "mcap",
        }
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

    /// The item index of the first frame of episode `episode_index`, if it is selected.
    pub fn item_of_episode(&self, episode_index: i64) -> Option<usize> {
        let p = *self.pos_of.get(&episode_index)?;
        let s = self.selected.iter().position(|&q| q == p)?;
        self.cum.get(s).copied()
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
}
