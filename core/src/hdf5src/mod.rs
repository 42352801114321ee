//! HDF5 files read in place as a dataset: ALOHA/ACT's one file per episode
//! (`/observations/qpos`, `/observations/images/<cam>`, `/action`) and robomimic's, LIBERO's
//! and RoboCasa's one file of `data/demo_<i>` groups (`obs/*`, `actions`, `rewards`, `dones`,
//! ...). An episode's numeric datasets load whole when an item of it is first read (they are
//! small); camera datasets are read a frame at a time, by hyperslab, on the decoding threads.
//! Items carry LeRobot's bookkeeping columns (`index`, `episode_index`, `frame_index`,
//! `timestamp` = `frame_index / fps`, `task_index` when there are tasks), built here.

mod checks;
mod files;
mod frames;
mod layout;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};

use crate::error::{Error, Location, Result};
use crate::meta::DType;
use crate::source::SourceOptions;
use crate::table::{ColumnData, DataFile};
pub use layout::Layout;

/// The most bytes one numeric dataset of one episode may take once read (it is read whole).
const MAX_COLUMN_BYTES: usize = 1 << 30;

/// A byte of a boolean dataset as stored: h5py writes numpy booleans as an int8 enum
/// {FALSE: 0, TRUE: 1}, and libhdf5 copies its bytes unconverted, so they are read as bytes
/// and checked (a Rust `bool` holding another byte would be undefined behaviour).
#[derive(Clone, Copy)]
#[repr(transparent)]
struct StoredBool(u8);

// SAFETY: `StoredBool` is a `u8` (repr(transparent)) and every byte is a valid `u8`; its type
// descriptor is `bool`'s, a one-byte enum, so libhdf5 writes one byte per element into it.
unsafe impl hdf5::H5Type for StoredBool {
    fn type_descriptor() -> TypeDescriptor {
        <bool as hdf5::H5Type>::type_descriptor()
    }
}

/// The format name in errors.
const FORMAT: &str = "HDF5";

/// An error about `path` (group `group`, key `key` when given).
fn source_error(path: &Path, group: &str, key: Option<&str>, msg: impl Into<String>) -> Error {
    let msg = msg.into();
    let at = Location::file(path);
    let at = match key {
        Some(k) => at.with_key(k),
        None => at,
    };
    let msg = if group.is_empty() || group == "/" {
        msg
    } else {
        format!("group '{group}': {msg}")
    };
    Error::Source {
        at,
        format: FORMAT,
        msg,
    }
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ColumnKind {
    /// Numbers (the stored dtype), loaded whole per episode.
    Numeric(DType),
    /// uint8 `(T, H, W, C)` frames.
    Pixels,
    /// uint8 `(T, N)`: each row one encoded image (JPEG/PNG) padded with zeros (ALOHA's
    /// compressed recordings).
    Encoded,
}

/// One dataset of every episode group, read as one feature.
#[derive(Debug, Clone)]
struct Column {
    /// The item key (the source's name, or its mapped name).
    name: String,
    /// Path of the dataset inside an episode's group.
    rel: String,
    kind: ColumnKind,
    /// Shape of one row (`[]` for a scalar per row; `(H, W, C)` for frames).
    shape: Vec<usize>,
}

/// One episode: a group of one file.
#[derive(Debug, Clone)]
struct EpisodeGroup {
    file: usize,
    /// The group's path (`/` for an ALOHA file, `data/demo_3` for a robomimic demo).
    group: String,
    length: usize,
    task_index: Option<i64>,
    first_index: i64,
}

/// An opened HDF5 source: the files, their episodes and the columns they share.
#[derive(Debug)]
pub struct Hdf5Source {
    files: Arc<files::Files>,
    episodes: Vec<EpisodeGroup>,
    columns: Vec<Column>,
    fps: f64,
}

/// What [`open`] found.
pub type Opened = crate::source::Opened<Hdf5Source>;

/// Opens the HDF5 file or folder of files at `root`.
pub fn open(root: &Path, opts: &SourceOptions) -> Result<Opened> {
    let files = Arc::new(files::Files::new(files::list(root)?)?);
    let paths = files.paths();
    let mut warnings = Vec::new();
    let found = layout::scan(&files, opts, &mut warnings)?;
    let fps = crate::source::frame_rate(opts.fps, found.fps, || {
        source_error(
            paths.first().map_or(root, PathBuf::as_path),
            "",
            None,
            format!(
                "the {} files store no frame rate (an 'fps' attribute{}); pass fps= to say it",
                found.layout.name(),
                if found.layout == Layout::Robomimic {
                    ", or env_args' control_freq"
                } else {
                    ""
                }
            ),
        )
    })?;
    let mut columns = found.columns;
    for c in &mut columns {
        c.name = layout::item_name(found.layout, &c.rel, c.kind, &opts.key_map);
    }
    crate::source::check_names(
        &columns
            .iter()
            .map(|c| (c.rel.as_str(), c.name.as_str()))
            .collect::<Vec<_>>(),
        &opts.key_map,
        root,
    )?;

    let lengths: Vec<usize> = found.episodes.iter().map(|g| g.length).collect();
    let episodes = crate::source::episode_table(&lengths)?;
    let mut tasks = crate::source::Tasks::default();
    let groups: Vec<EpisodeGroup> = found
        .episodes
        .into_iter()
        .zip(&episodes)
        .map(|(g, e)| EpisodeGroup {
            task_index: opts
                .task
                .as_deref()
                .or(g.task.as_deref())
                .map(|t| tasks.index(t)),
            file: g.file,
            group: g.group,
            length: g.length,
            first_index: e.dataset_from_index,
        })
        .collect();
    let tasks = tasks.into_table();
    let next = episodes.last().map_or(0, |e| e.dataset_to_index);
    let with_task = groups.iter().filter(|g| g.task_index.is_some()).count();
    if with_task != 0 && with_task != groups.len() {
        if let Some((i, g)) = groups
            .iter()
            .enumerate()
            .find(|(_, g)| g.task_index.is_none())
        {
            return Err(source_error(
                paths.get(g.file).map_or(root, PathBuf::as_path),
                &g.group,
                None,
                format!(
                    "episode {i} has no task while others have one; pass task= to give every \
                     episode one"
                ),
            ));
        }
    }
    let features = columns
        .iter()
        .map(|c| match (c.kind, c.shape.as_slice()) {
            (ColumnKind::Numeric(dt), shape) => crate::source::numeric_feature(&c.name, dt, shape),
            (_, [h, w, ch]) => crate::source::image_feature(&c.name, (*h, *w, *ch)),
            (_, shape) => crate::source::numeric_feature(&c.name, DType::U8, shape),
        })
        .collect();
    let info = crate::source::synthetic_info(
        features,
        fps,
        !tasks.is_empty(),
        episodes.len(),
        next,
        serde_json::json!({
            "format": "hdf5",
            "layout": found.layout.name(),
            "files": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        }),
    )?;
    Ok(Opened {
        source: Arc::new(Hdf5Source {
            files,
            episodes: groups,
            columns,
            fps,
        }),
        info,
        episodes,
        tasks,
        warnings,
    })
}

impl Hdf5Source {
    /// The rows of episode `episode_index` as a data table: LeRobot's bookkeeping columns, the
    /// numeric datasets read whole, the cameras as frame readers.
    pub fn load_episode(&self, episode_index: i64) -> Result<DataFile> {
        let g = crate::source::episode(&self.episodes, episode_index)?;
        let path = self.files.path(g.file)?.to_path_buf();
        let path = &path;
        let file = self.files.open(g.file)?;
        let group = files::group(&file, &g.group, path)?;
        let n = g.length;
        let tasks = g.task_index.map(|t| vec![t; n]);
        let mut columns = crate::source::bookkeeping_columns(
            g.first_index,
            episode_index,
            n,
            self.fps,
            tasks.as_deref(),
        );
        for c in &self.columns {
            let err = |m: String| source_error(path, &g.group, Some(&c.rel), m);
            let ds = group
                .dataset(&c.rel)
                .map_err(|e| err(format!("the episode has no dataset '{}': {e}", c.rel)))?;
            // (the first episode's types were described at open; a later one's are checked
            // before hdf5-metno describes them, and must match the column's kind)
            let t = ds
                .dtype()
                .map_err(|e| err(format!("cannot read the type: {e}")))?;
            if !(checks::numeric_class(checks::class(&t)) && checks::member_names_utf8(&t)) {
                return Err(err("values that are not numbers".into()));
            }
            let described = t
                .to_descriptor()
                .map_err(|e| err(format!("cannot read the type: {e}")))?;
            let kind_ok = match c.kind {
                ColumnKind::Numeric(_) => numeric_dtype(&described).is_ok(),
                ColumnKind::Pixels | ColumnKind::Encoded => {
                    described == TypeDescriptor::Unsigned(IntSize::U1)
                }
            };
            if !kind_ok {
                return Err(err(format!(
                    "values of type {described}, while the first episode's are another kind"
                )));
            }
            if n > 0 && matches!(c.kind, ColumnKind::Numeric(_)) {
                checks::fully_written(&ds).map_err(err)?;
            }
            let shape = ds.shape();
            let mut want = vec![n];
            want.extend_from_slice(&c.shape);
            if c.kind != ColumnKind::Encoded && shape != want {
                return Err(err(format!(
                    "shape {shape:?}, expected {want:?} (the episode's length, then the shape \
                     of the first episode's rows)"
                )));
            }
            let col = match c.kind {
                ColumnKind::Numeric(dt) => read_numeric(&ds, dt, n, &c.shape).map_err(err)?,
                ColumnKind::Pixels | ColumnKind::Encoded => {
                    if shape.first() != Some(&n) {
                        return Err(err(format!(
                            "shape {shape:?}: {} rows for an episode of {n} frames",
                            shape.first().copied().unwrap_or(0)
                        )));
                    }
                    ColumnData::Frames(Arc::new(frames::Hdf5Frames::new(
                        self.files.clone(),
                        g.file,
                        &ds,
                        format!("{}/{}", g.group.trim_end_matches('/'), c.rel),
                        c.kind == ColumnKind::Encoded,
                    )?))
                }
            };
            columns.insert(c.name.clone(), col);
        }
        Ok(DataFile {
            path: path.clone(),
            first_index: g.first_index,
            rows: n,
            file_rows: n as u64,
            columns,
        })
    }
}

/// The item dtype LeRobot gives a stored dtype, read through HDF5's own conversion (floats to
/// float32 as a cast would, integers widened to int64), as native-endian bytes.
fn read_numeric(
    ds: &hdf5::Dataset,
    stored: DType,
    rows: usize,
    shape: &[usize],
) -> std::result::Result<ColumnData, String> {
    let per_row: usize = shape.iter().product();
    let want = rows
        .checked_mul(per_row)
        .ok_or_else(|| "the dataset's size overflows".to_string())?;
    let item = stored.item_dtype();
    if want.saturating_mul(8) > MAX_COLUMN_BYTES {
        return Err(format!(
            "{rows} rows of {per_row} values are more than {} GiB for one episode",
            MAX_COLUMN_BYTES >> 30
        ));
    }
    let bytes: Vec<u8> = match stored {
        DType::Bool => {
            let v: Vec<StoredBool> = ds
                .read_raw()
                .map_err(|e| format!("cannot read booleans: {e}"))?;
            let mut out = Vec::with_capacity(v.len());
            for (i, StoredBool(b)) in v.into_iter().enumerate() {
                match b {
                    0 | 1 => out.push(b),
                    other => return Err(format!("element {i} is {other}, not a boolean (0 or 1)")),
                }
            }
            out
        }
        DType::F16 | DType::BF16 | DType::F32 | DType::F64 => {
            let v: Vec<f32> = ds
                .read_raw()
                .map_err(|e| format!("cannot read floats: {e}"))?;
            v.into_iter().flat_map(f32::to_ne_bytes).collect()
        }
        DType::U64 => {
            let v: Vec<u64> = ds
                .read_raw()
                .map_err(|e| format!("cannot read integers: {e}"))?;
            let mut out = Vec::with_capacity(v.len() * 8);
            for (i, x) in v.into_iter().enumerate() {
                let x = i64::try_from(x).map_err(|_| {
                    format!("element {i} is {x}, past int64 (LeRobot's integer item type)")
                })?;
                out.extend_from_slice(&x.to_ne_bytes());
            }
            out
        }
        _ => {
            let v: Vec<i64> = ds
                .read_raw()
                .map_err(|e| format!("cannot read integers: {e}"))?;
            v.into_iter().flat_map(i64::to_ne_bytes).collect()
        }
    };
    if bytes.len() != want * item.size() {
        return Err(format!(
            "read {} bytes, expected {rows} rows of {per_row} {} values",
            bytes.len(),
            item.name()
        ));
    }
    Ok(ColumnData::Fixed {
        dtype: item,
        per_row,
        bytes,
    })
}

/// The dtype of an HDF5 numeric type, or why it is not one.
fn numeric_dtype(t: &TypeDescriptor) -> std::result::Result<DType, String> {
    Ok(match t {
        TypeDescriptor::Boolean => DType::Bool,
        // h5py stores numpy booleans as an enum of int8 {FALSE: 0, TRUE: 1}
        TypeDescriptor::Enum(e)
            if e.members.len() == 2
                && e.members.iter().any(|m| m.name == "FALSE" && m.value == 0)
                && e.members.iter().any(|m| m.name == "TRUE" && m.value == 1) =>
        {
            DType::Bool
        }
        TypeDescriptor::Integer(s) => match s {
            IntSize::U1 => DType::I8,
            IntSize::U2 => DType::I16,
            IntSize::U4 => DType::I32,
            IntSize::U8 => DType::I64,
        },
        TypeDescriptor::Unsigned(s) => match s {
            IntSize::U1 => DType::U8,
            IntSize::U2 => DType::U16,
            IntSize::U4 => DType::U32,
            IntSize::U8 => DType::U64,
        },
        TypeDescriptor::Float(FloatSize::U2) => DType::F16,
        TypeDescriptor::Float(FloatSize::U4) => DType::F32,
        TypeDescriptor::Float(FloatSize::U8) => DType::F64,
        other => return Err(format!("values of type {other} are not numbers")),
    })
}
