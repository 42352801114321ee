//! Where a dataset's episodes come from: a LeRobot v3.0 root (the default), or files another
//! project wrote that roboframes reads in place (HDF5: ALOHA episode files, robomimic/LIBERO
//! files). Which one is detected from the path, or forced with [`SourceOptions::format`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::error::{Error, Location, Result};
use crate::meta::{DType, Feature, FeatureKind, Info};
use crate::table::ColumnData;

/// Options of sources other than LeRobot roots (ignored for those).
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// `"lerobot"`, `"hdf5"`, `"rlds"` or `"mcap"`; `None` detects the format from the path.
    pub format: Option<String>,
    /// The split of an RLDS dataset (`None`: `train`, or its only split).
    pub split: Option<String>,
    /// Frames per second, for a source that stores no rate (item `timestamp` is
    /// `frame_index / fps`); overrides a rate the files store.
    pub fps: Option<f64>,
    /// The task of every episode, for a source that stores none.
    pub task: Option<String>,
    /// Key names: the source's names to the names items carry. `KeyMap::LeRobot` maps the
    /// layout's usual keys to LeRobot's (`observation.state`, `observation.images.<cam>`,
    /// `action`, ...).
    pub key_map: KeyMap,
    /// MCAP: the topics to read (`None`: every topic roboframes can decode that is not much
    /// sparser than the reference topic).
    pub topics: Option<Vec<String>>,
    /// MCAP: the topic whose message times are the items' times (`None`: the slowest camera,
    /// or the slowest topic when there is no camera).
    pub reference_topic: Option<String>,
    /// MCAP: how much older than an item's time another topic's message may be, in seconds
    /// (`None`: one period of the reference topic).
    pub align_tolerance_s: Option<f64>,
    /// MCAP: episodes as spans of recordings, (file name, start, end) in seconds from the
    /// file's first message of the reference topic, `[start, end)`, in this order (`None`: one
    /// episode per file).
    pub episode_spans: Option<Vec<(String, f64, f64)>>,
}

/// How a source's keys are named in items.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum KeyMap {
    /// The source's own names (`observations/qpos`, `obs/agentview_image`, ...).
    #[default]
    Source,
    /// The layout's usual keys under LeRobot's names; other keys keep their own.
    LeRobot,
    /// Given names for some keys (source name -> item name); other keys keep their own.
    Names(IndexMap<String, String>),
}

/// The formats a root can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    LeRobot,
    Hdf5,
    /// An RLDS (TFDS builder) folder of TFRecord shards.
    Rlds,
    /// MCAP recordings: a `.mcap` file, or a folder of them (one episode each).
    Mcap,
}

impl Format {
    /// The format named `name` (`"lerobot"`, `"hdf5"`).
    pub fn parse(name: &str) -> Result<Format> {
        match name {
            "lerobot" => Ok(Format::LeRobot),
            "hdf5" => Ok(Format::Hdf5),
            "rlds" => Ok(Format::Rlds),
            "mcap" => Ok(Format::Mcap),
            other => Err(Error::InvalidArgument {
                msg: format!("format must be 'lerobot', 'hdf5', 'rlds' or 'mcap', got '{other}'"),
            }),
        }
    }

    /// The format of a local path: a `.hdf5`/`.h5` file, or a folder holding such files and no
    /// `meta/info.json`, is HDF5 (likewise `.mcap` files are MCAP); a folder with `dataset_info.json` and `features.json` (or
    /// whose only version folder has them) is RLDS; anything else is a LeRobot root (whose
    /// checks then say what is missing).
    pub fn detect(root: &Path, opts: &SourceOptions) -> Result<Format> {
        if let Some(f) = &opts.format {
            return Format::parse(f);
        }
        if is_hdf5_name(root) && root.is_file() {
            return Ok(Format::Hdf5);
        }
        if crate::mcapsrc::is_mcap_name(root) && root.is_file() {
            return Ok(Format::Mcap);
        }
        if root.is_dir() && !root.join("meta").join("info.json").exists() {
            if crate::rldssrc::is_builder_folder(root)
                || std::fs::read_dir(root)
                    .map(|rd| {
                        rd.flatten()
                            .any(|e| crate::rldssrc::is_builder_folder(&e.path()))
                    })
                    .unwrap_or(false)
            {
                return Ok(Format::Rlds);
            }
            let any_h5 = std::fs::read_dir(root)
                .map(|rd| rd.flatten().any(|e| is_hdf5_name(&e.path())))
                .unwrap_or(false);
            if any_h5 {
                return Ok(Format::Hdf5);
            }
            let any_mcap = std::fs::read_dir(root)
                .map(|rd| {
                    rd.flatten()
                        .any(|e| crate::mcapsrc::is_mcap_name(&e.path()))
                })
                .unwrap_or(false);
            if any_mcap {
                return Ok(Format::Mcap);
            }
        }
        Ok(Format::LeRobot)
    }
}

impl Format {
    /// The format of a remote root (a URL registered by `store::open_root`): `format=` when
    /// given, else MCAP for a URL naming a `.mcap` file, RLDS for a folder with
    /// `dataset_info.json` and no `meta/info.json`, else a LeRobot root.
    pub fn detect_remote(root: &Path, opts: &SourceOptions) -> Result<Format> {
        if let Some(f) = &opts.format {
            return Format::parse(f);
        }
        if crate::mcapsrc::is_mcap_name(root) {
            return Ok(Format::Mcap);
        }
        if is_hdf5_name(root) {
            return Ok(Format::Hdf5);
        }
        // (a store may answer 403 for a missing key: an RLDS folder is still looked for, and
        // the first error stands when it is not one either)
        let lerobot = crate::store::exists(&root.join("meta").join("info.json"));
        if matches!(lerobot, Ok(true)) {
            return Ok(Format::LeRobot);
        }
        let rlds = crate::store::exists(&root.join("dataset_info.json"))
            .and_then(|found| Ok(found && crate::store::exists(&root.join("features.json"))?));
        match (lerobot, rlds) {
            (_, Ok(true)) => Ok(Format::Rlds),
            (Err(e), _) => Err(e),
            _ => Ok(Format::LeRobot),
        }
    }
}

/// True when the file name ends in `.hdf5`, `.h5` or `.he5`.
pub fn is_hdf5_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "hdf5" | "h5" | "he5"))
}

/// The files of a source at `root`: `root` itself when it is a file, or a folder's files that
/// `is_name` accepts, in natural order (`episode_2` before `episode_10`). `missing` and `empty`
/// are the details of the errors when `root` is neither, or a folder without such files.
pub(crate) fn source_files(
    root: &Path,
    is_name: fn(&Path) -> bool,
    missing: &str,
    empty: &str,
) -> Result<Vec<PathBuf>> {
    if root.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    if !root.is_dir() {
        return Err(Error::NotFound {
            at: Location::file(root),
            detail: missing.into(),
        });
    }
    let rd = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_name(p) && p.is_file())
        .collect();
    if files.is_empty() {
        return Err(Error::NotFound {
            at: Location::file(root),
            detail: empty.into(),
        });
    }
    files.sort_by_cached_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    Ok(files)
}

/// A sort key that orders digit runs by their value.
fn natural_key(name: &str) -> Vec<(u8, String)> {
    let mut out: Vec<(u8, String)> = Vec::new();
    let mut run = String::new();
    let mut digits = false;
    for ch in name.chars() {
        let d = ch.is_ascii_digit();
        if d != digits && !run.is_empty() {
            out.push(natural_part(&run, digits));
            run.clear();
        }
        digits = d;
        run.push(ch);
    }
    if !run.is_empty() {
        out.push(natural_part(&run, digits));
    }
    out
}

/// One part of a natural key: numbers compare by value (zero-padded to a fixed width, leading
/// zeros dropped), before text.
fn natural_part(run: &str, digits: bool) -> (u8, String) {
    if digits {
        let t = run.trim_start_matches('0');
        (0, format!("{:0>40}", t))
    } else {
        (1, run.to_owned())
    }
}

/// Episode `index` of a source's own episode list (episode indices are positions in it).
pub(crate) fn episode<T>(episodes: &[T], index: i64) -> Result<&T> {
    usize::try_from(index)
        .ok()
        .and_then(|i| episodes.get(i))
        .ok_or_else(|| Error::InvalidArgument {
            msg: format!("episode {index} is not in the dataset"),
        })
}

/// What opening a source found: its reader, its `Info` and episode table in LeRobot's terms,
/// its tasks, and what it left out (one message each).
pub(crate) struct Opened<S> {
    pub source: std::sync::Arc<S>,
    pub info: Info,
    pub episodes: Vec<crate::meta::Episode>,
    pub tasks: IndexMap<i64, String>,
    pub warnings: Vec<String>,
}

/// Names items carry that a source's keys may not take (LeRobot's bookkeeping columns).
pub(crate) const RESERVED: [&str; 5] = [
    "index",
    "episode_index",
    "frame_index",
    "timestamp",
    "task_index",
];

/// Item names must be unique and leave LeRobot's bookkeeping names alone, and a given mapping
/// may only name keys the source has. `keys`: (the source's name, the item name).
pub(crate) fn check_names(keys: &[(&str, &str)], map: &KeyMap, root: &Path) -> Result<()> {
    if let KeyMap::Names(names) = map {
        for k in names.keys() {
            if !keys.iter().any(|(rel, _)| rel == k) {
                return Err(Error::InvalidArgument {
                    msg: format!(
                        "key_map names '{k}', which is not a key of '{}' (keys: {})",
                        root.display(),
                        keys.iter()
                            .map(|(rel, _)| *rel)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (rel, name) in keys {
        if RESERVED.contains(name) {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "key '{rel}' would be named '{name}', a name items keep for LeRobot's own \
                     column; map it to another name with key_map"
                ),
            });
        }
        if !seen.insert(*name) {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "two keys would both be named '{name}' (the second is '{rel}'); give one \
                     another name with key_map"
                ),
            });
        }
    }
    Ok(())
}

/// The feature of a numeric key: `dtype` as stored, `shape` of one row (`[]`: a scalar, shape
/// `(1,)` as LeRobot writes it).
pub(crate) fn numeric_feature(name: &str, dtype: DType, shape: &[usize]) -> Feature {
    Feature {
        name: name.to_owned(),
        kind: FeatureKind::Numeric(dtype),
        dtype_str: dtype.name().to_owned(),
        shape: if shape.is_empty() {
            vec![1]
        } else {
            shape.to_vec()
        },
        names: None,
        depth: None,
    }
}

/// The feature of a camera of `(H, W, C)` uint8 frames.
pub(crate) fn image_feature(name: &str, (h, w, c): (usize, usize, usize)) -> Feature {
    Feature {
        name: name.to_owned(),
        kind: FeatureKind::Image,
        dtype_str: "image".into(),
        shape: vec![h, w, c],
        names: Some(vec!["height".into(), "width".into(), "channels".into()]),
        depth: None,
    }
}

/// The `Info` of a source that is not a LeRobot root, in LeRobot's terms: its features, then
/// LeRobot's bookkeeping ones (`task_index` when there are tasks); `raw` is the `info.json`
/// LeRobot would write for it (without paths), plus `source` saying what was read.
pub(crate) fn synthetic_info(
    features: Vec<Feature>,
    fps: f64,
    tasks: bool,
    episodes: usize,
    total_frames: i64,
    source: serde_json::Value,
) -> Result<Info> {
    // (shapes come from file headers: the bound `info.json`'s features have)
    for f in &features {
        let elements = f.shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
        if elements.is_none_or(|n| n == 0 || n > crate::meta::MAX_FEATURE_ELEMENTS) {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "'{}' has rows of shape {:?}: not a recording's (at most {} elements)",
                    f.name,
                    f.shape,
                    crate::meta::MAX_FEATURE_ELEMENTS
                ),
            });
        }
    }
    let mut all: IndexMap<String, Feature> =
        features.into_iter().map(|f| (f.name.clone(), f)).collect();
    all.insert(
        "timestamp".into(),
        numeric_feature("timestamp", DType::F32, &[]),
    );
    for k in ["frame_index", "episode_index", "index"] {
        all.insert(k.into(), numeric_feature(k, DType::I64, &[]));
    }
    if tasks {
        all.insert(
            "task_index".into(),
            numeric_feature("task_index", DType::I64, &[]),
        );
    }
    let feats_json: serde_json::Map<String, serde_json::Value> = all
        .values()
        .map(|f| {
            let names = f
                .names
                .clone()
                .map_or(serde_json::Value::Null, |n| serde_json::json!(n));
            let doc = serde_json::json!({"dtype": f.dtype_str, "shape": f.shape, "names": names});
            (f.name.clone(), doc)
        })
        .collect();
    let raw = serde_json::json!({
        "fps": fps,
        "total_episodes": episodes,
        "total_frames": total_frames,
        "features": feats_json,
        "source": source,
    });
    Ok(Info {
        codebase_version: String::new(),
        fps,
        data_path: String::new(),
        video_path: None,
        features: all,
        total_episodes: i64::try_from(episodes).unwrap_or(i64::MAX),
        total_frames,
        legacy: None,
        raw,
    })
}

/// The most frames an episode of a source may hold (70 minutes at 1 kHz; a declared shape or
/// length costs no disk space, so a damaged or hostile file could claim any).
pub const MAX_EPISODE_FRAMES: usize = 1 << 22;

/// LeRobot's bookkeeping columns of an episode's `rows` rows: `index` from `first_index`,
/// `episode_index`, `frame_index`, `timestamp` = `frame_index / fps` as float32, and
/// `task_index` (one per row) when given.
pub(crate) fn bookkeeping_columns(
    first_index: i64,
    episode_index: i64,
    rows: usize,
    fps: f64,
    task_index: Option<&[i64]>,
) -> HashMap<String, ColumnData> {
    let ints = |f: &dyn Fn(usize) -> i64| ColumnData::Fixed {
        dtype: DType::I64,
        per_row: 1,
        bytes: (0..rows).flat_map(|r| f(r).to_ne_bytes()).collect(),
    };
    let row = |r: usize| i64::try_from(r).unwrap_or(i64::MAX);
    let mut columns = HashMap::new();
    columns.insert(
        "index".into(),
        ints(&|r| first_index.saturating_add(row(r))),
    );
    columns.insert("episode_index".into(), ints(&|_| episode_index));
    columns.insert("frame_index".into(), ints(&row));
    if let Some(t) = task_index {
        columns.insert(
            "task_index".into(),
            ColumnData::Fixed {
                dtype: DType::I64,
                per_row: 1,
                bytes: t.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            },
        );
    }
    columns.insert(
        "timestamp".into(),
        ColumnData::Fixed {
            dtype: DType::F32,
            per_row: 1,
            bytes: (0..rows)
                .flat_map(|r| ((r as f64 / fps) as f32).to_ne_bytes())
                .collect(),
        },
    );
    columns
}

/// What a file looked like when a source was opened: its size and modification time.
type Stamp = (u64, Option<std::time::SystemTime>);

/// A file of a source with its [`Stamp`] at open: a file replaced or rewritten since is an
/// error, never read as if it were the file the source's episodes were found in.
#[derive(Debug)]
pub(crate) struct Stamped {
    path: PathBuf,
    stamp: Stamp,
    /// The format's name in errors.
    format: &'static str,
}

/// The stamp of `path` now.
fn stamp_of(path: &Path) -> Result<Stamp> {
    let m = std::fs::metadata(path)
        .map_err(|e| Error::io_missing(path, e, "a file of the source is missing"))?;
    Ok((m.len(), m.modified().ok()))
}

impl Stamped {
    /// `path` (a file of a `format` source) as it is now.
    pub fn new(path: PathBuf, format: &'static str) -> Result<Stamped> {
        let stamp = stamp_of(&path)?;
        Ok(Stamped {
            path,
            stamp,
            format,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error when the file changed since it was stamped.
    #[cfg_attr(not(feature = "hdf5"), allow(dead_code))]
    pub fn check(&self) -> Result<()> {
        self.same(stamp_of(&self.path)?)
    }

    /// An error when `now` is not the stamp the file had.
    fn same(&self, now: Stamp) -> Result<()> {
        if now != self.stamp {
            return Err(Error::Source {
                at: Location::file(&self.path),
                format: self.format,
                msg: "the file changed after the dataset was opened; open the dataset again".into(),
            });
        }
        Ok(())
    }

    /// `len` bytes at `offset` into `buf` (its contents replaced), the file checked unchanged.
    pub fn read_into(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let io = |e: std::io::Error| Error::io(&self.path, e);
        let f = std::fs::File::open(&self.path).map_err(io)?;
        // (the file opened is the one checked: its own metadata, not the path's again)
        let m = f.metadata().map_err(io)?;
        self.same((m.len(), m.modified().ok()))?;
        buf.clear();
        buf.resize(len, 0);
        f.read_exact_at(buf, offset).map_err(io)
    }

    /// `len` bytes at `offset`.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_into(offset, len, &mut buf)?;
        Ok(buf)
    }
}

/// A file of a source read front to back, skipping what it does not need.
pub(crate) trait ReadSeek: std::io::Read + std::io::Seek + Send {}
impl<T: std::io::Read + std::io::Seek + Send> ReadSeek for T {}

/// The bytes of one file of a source: local (checked unchanged since open, as [`Stamped`]) or a
/// remote object (read at the version first seen: a changed object is an error, never mixed
/// in).
#[derive(Debug)]
pub(crate) enum SourceFile {
    Local(Stamped),
    Remote {
        object: crate::store::RemoteObject,
        path: PathBuf,
        /// The format's name in errors.
        format: &'static str,
    },
}

impl SourceFile {
    /// The file at `path` (a local path or a location below a remote root) of a `format`
    /// source, as it is now.
    pub fn open(path: &Path, format: &'static str) -> Result<SourceFile> {
        match crate::store::remote_object(path, None)? {
            Some(object) => Ok(SourceFile::Remote {
                object,
                path: path.to_path_buf(),
                format,
            }),
            None => Ok(SourceFile::Local(Stamped::new(path.to_path_buf(), format)?)),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            SourceFile::Local(s) => s.path(),
            SourceFile::Remote { path, .. } => path,
        }
    }

    /// `len` bytes at `offset`.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<bytes::Bytes> {
        match self {
            SourceFile::Local(s) => Ok(s.read_at(offset, len)?.into()),
            SourceFile::Remote {
                object,
                path,
                format,
            } => {
                let end = offset
                    .checked_add(len as u64)
                    .filter(|e| *e <= object.len())
                    .ok_or_else(|| Error::Source {
                        at: Location::file(path),
                        format,
                        msg: format!(
                            "bytes {offset}..+{len} run past the file's end (cut short, or \
                                 damaged)"
                        ),
                    })?;
                object.read_range(offset, end, 0)
            }
        }
    }

    /// The whole file, read front to back: its size, a reader, and what its read errors are.
    pub fn reader(&self) -> Result<(u64, Box<dyn ReadSeek>, ReadErrors)> {
        let errors = |slot| ReadErrors {
            slot,
            path: self.path().to_path_buf(),
        };
        match self {
            SourceFile::Local(s) => {
                let f = std::fs::File::open(s.path()).map_err(|e| Error::io(s.path(), e))?;
                let size = f.metadata().map_err(|e| Error::io(s.path(), e))?.len();
                Ok((size, Box::new(f), errors(None)))
            }
            SourceFile::Remote { object, .. } => {
                let cursor = crate::store::RemoteCursor::new(object.clone());
                let slot = cursor.failure();
                Ok((object.len(), Box::new(cursor), errors(Some(slot))))
            }
        }
    }
}

/// What a [`SourceFile::reader`]'s failed read was: a remote read's own failure (retries spent,
/// a changed object) is named as such, not as a damaged file.
pub(crate) struct ReadErrors {
    slot: Option<crate::store::FailureSlot>,
    path: PathBuf,
}

impl ReadErrors {
    /// The remote failure behind the last failed read, if there was one.
    pub fn remote(&self) -> Option<Error> {
        self.slot
            .as_ref()
            .and_then(|f| crate::store::recorded_failure(f, &self.path))
    }

    /// The error of a failed read: the remote failure, else the I/O error.
    pub fn of(&self, e: std::io::Error) -> Error {
        self.remote().unwrap_or_else(|| Error::io(&self.path, e))
    }
}

impl SourceFile {
    /// `len` bytes at `offset` into `buf` (its contents replaced).
    pub fn read_into(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<()> {
        match self {
            SourceFile::Local(s) => s.read_into(offset, len, buf),
            SourceFile::Remote { .. } => {
                let b = self.read_at(offset, len)?;
                buf.clear();
                buf.extend_from_slice(&b);
                Ok(())
            }
        }
    }
}

/// The frame rate of a source: `given` (checked), else the one its files store, else the
/// error `missing` makes (a source without a clock needs one: items' time is
/// `frame_index / fps`).
pub(crate) fn frame_rate(
    given: Option<f64>,
    stored: Option<f64>,
    missing: impl FnOnce() -> Error,
) -> Result<f64> {
    match given {
        Some(f) if f.is_finite() && f > 0.0 => Ok(f),
        Some(f) => Err(Error::InvalidArgument {
            msg: format!("fps must be a positive number, got {f}"),
        }),
        None => stored.ok_or_else(missing),
    }
}

/// Task texts numbered in order of first appearance (`meta/tasks`' role for a source).
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    index: HashMap<String, i64>,
    table: IndexMap<i64, String>,
}

impl Tasks {
    /// The index of task `text`, numbered when first seen.
    pub fn index(&mut self, text: &str) -> i64 {
        if let Some(i) = self.index.get(text) {
            return *i;
        }
        let i = i64::try_from(self.table.len()).unwrap_or(i64::MAX);
        self.index.insert(text.to_owned(), i);
        self.table.insert(i, text.to_owned());
        i
    }

    /// `{task_index: task}`.
    pub fn into_table(self) -> IndexMap<i64, String> {
        self.table
    }
}

/// The episode table of a source whose episodes hold `lengths` frames, in order: episode `i`
/// is its own data table (data file `i` of chunk 0; see `Dataset::data_file`), its items
/// following the previous episode's.
pub(crate) fn episode_table(lengths: &[usize]) -> Result<Vec<crate::meta::Episode>> {
    let mut out = Vec::with_capacity(lengths.len());
    let mut next: i64 = 0;
    for (i, &n) in lengths.iter().enumerate() {
        let too_many = || Error::InvalidArgument {
            msg: "the episodes hold more than 2^63 frames".into(),
        };
        let index = i64::try_from(i).map_err(|_| too_many())?;
        let length = i64::try_from(n).map_err(|_| too_many())?;
        let to = next.checked_add(length).ok_or_else(too_many)?;
        out.push(crate::meta::Episode {
            episode_index: index,
            length,
            data_chunk_index: 0,
            data_file_index: index,
            dataset_from_index: next,
            dataset_to_index: to,
            videos: Vec::new(),
        });
        next = to;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::natural_key;

    #[test]
    fn natural_order_sorts_numbers_by_value() {
        let mut v = vec![
            "episode_10.hdf5",
            "episode_2.hdf5",
            "episode_1.hdf5",
            "a.hdf5",
        ];
        v.sort_by_key(|s| natural_key(s));
        assert_eq!(
            v,
            [
                "a.hdf5",
                "episode_1.hdf5",
                "episode_2.hdf5",
                "episode_10.hdf5"
            ]
        );
    }
}
