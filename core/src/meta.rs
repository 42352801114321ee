//! Dataset metadata of a LeRobot v3.0 root: `meta/info.json`, `meta/episodes/*`,
//! `meta/tasks.parquet` and `meta/stats.json`. Reading it touches no data rows.

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Location, Result};
use crate::fs::inside_root;
use crate::parquet_io::{list_parquet_files, read_parquet_columns};

/// Element type of a tabular feature, as written in `info.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    /// bfloat16: an output type of frames only (never a column type in `info.json`).
    BF16,
    F32,
    F64,
}

impl DType {
    /// Every dtype, in the order of [`DType::name`]'s table.
    pub const ALL: [DType; 13] = [
        DType::Bool,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ];

    /// The dtype of a NumPy-style name (`float32`, `int64`, `bool`, `bfloat16`, ...); the names
    /// are those of [`DType::name`].
    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Parses the dtype of a numeric column in `info.json` (every dtype but bfloat16, which
    /// parquet/Arrow cannot store).
    pub fn parse(s: &str) -> Option<DType> {
        DType::from_name(s).filter(|d| *d != DType::BF16)
    }
    /// The numpy name of this dtype.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }
    /// The dtype LeRobot's items carry for a feature stored as `self`: LeRobot turns parquet
    /// values into Python numbers and then `torch.tensor`s, so every float becomes float32,
    /// every integer int64, and booleans stay bool.
    pub fn item_dtype(self) -> DType {
        match self {
            DType::Bool => DType::Bool,
            DType::F16 | DType::BF16 | DType::F32 | DType::F64 => DType::F32,
            _ => DType::I64,
        }
    }
    /// The Arrow type values of this dtype are cast to (None for bfloat16, which Arrow lacks).
    pub fn arrow(self) -> Option<DataType> {
        Some(match self {
            DType::Bool => DataType::Boolean,
            DType::U8 => DataType::UInt8,
            DType::U16 => DataType::UInt16,
            DType::U32 => DataType::UInt32,
            DType::U64 => DataType::UInt64,
            DType::I8 => DataType::Int8,
            DType::I16 => DataType::Int16,
            DType::I32 => DataType::Int32,
            DType::I64 => DataType::Int64,
            DType::F16 => DataType::Float16,
            DType::F32 => DataType::Float32,
            DType::F64 => DataType::Float64,
            DType::BF16 => return None,
        })
    }
}

/// What a feature holds.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    /// Numbers or booleans stored in the data parquet.
    Numeric(DType),
    /// A string stored in the data parquet.
    String,
    /// PNG/JPEG bytes stored in the data parquet, decoded to `(H, W, C)` uint8.
    Image,
    /// Frames in mp4 files under `videos/`, decoded to `(H, W, 3)` uint8 RGB, or for a depth
    /// map ([`Feature::depth`]) to its 12-bit codes.
    Video,
    /// LeRobot 0.6's language annotations (`dtype: "language"`: the `language_persistent` and
    /// `language_events` columns): nested values, read as they are stored.
    Language,
}

/// One entry of `info.json`'s `features`.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
    /// The dtype string as written (`float32`, `video`, `image`, `string`, ...).
    pub dtype_str: String,
    pub shape: Vec<usize>,
    /// `names` when it is a list of strings (LeRobot names image axes `height`, `width`,
    /// `channels`).
    pub names: Option<Vec<String>>,
    /// Set for a depth map (`info.is_depth_map`, LeRobot 0.6): its quantiser and unit.
    pub depth: Option<crate::depth::DepthInfo>,
}

impl Feature {
    /// Number of scalar elements per row.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// True for features whose item value is a 0-d scalar (shape `(1,)` in info.json).
    pub fn is_scalar(&self) -> bool {
        self.shape == [1]
    }
    /// Shape of one item's value: `()` for scalars, else info.json's shape.
    pub fn item_shape(&self) -> Vec<usize> {
        if self.is_scalar() {
            vec![]
        } else {
            self.shape.clone()
        }
    }
}

/// Per-camera location of an episode in its video file.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeVideo {
    pub chunk_index: i64,
    pub file_index: i64,
    pub from_timestamp: f64,
    pub to_timestamp: f64,
}

/// One row of `meta/episodes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub episode_index: i64,
    pub length: i64,
    pub data_chunk_index: i64,
    pub data_file_index: i64,
    pub dataset_from_index: i64,
    pub dataset_to_index: i64,
    /// One entry per video key, in the order of `Info::video_keys`.
    pub videos: Vec<EpisodeVideo>,
}

/// Parsed `meta/info.json`.
#[derive(Debug, Clone)]
pub struct Info {
    pub codebase_version: String,
    pub fps: f64,
    pub data_path: String,
    pub video_path: Option<String>,
    pub features: IndexMap<String, Feature>,
    pub total_episodes: i64,
    pub total_frames: i64,
    /// The whole document, for adapters that expose it.
    pub raw: Value,
}

impl Info {
    pub fn video_keys(&self) -> Vec<String> {
        self.keys_of(|k| *k == FeatureKind::Video)
    }
    pub fn image_keys(&self) -> Vec<String> {
        self.keys_of(|k| *k == FeatureKind::Image)
    }
    /// Depth-map keys (video or image features flagged `is_depth_map`), in feature order
    /// (LeRobot 0.6's `depth_keys`).
    pub fn depth_keys(&self) -> Vec<String> {
        self.features
            .values()
            .filter(|f| f.depth.is_some())
            .map(|f| f.name.clone())
            .collect()
    }
    /// Video and image keys, in feature order (LeRobot's `camera_keys`).
    pub fn camera_keys(&self) -> Vec<String> {
        self.keys_of(|k| matches!(k, FeatureKind::Video | FeatureKind::Image))
    }
    fn keys_of(&self, f: impl Fn(&FeatureKind) -> bool) -> Vec<String> {
        self.features
            .values()
            .filter(|ft| f(&ft.kind))
            .map(|ft| ft.name.clone())
            .collect()
    }
}

/// The most bytes a JSON metadata file (`info.json`, `stats.json`) may hold: LeRobot's are
/// kilobytes (a few MB for thousands of features); parsing costs several times the file.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

fn read_text(path: &Path) -> Result<String> {
    let bytes = crate::store::read(path, MAX_METADATA_BYTES)?;
    String::from_utf8(bytes).map_err(|e| Error::Io {
        at: Location::file(path),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// Parses `meta/info.json`.
pub fn read_info(root: &Path) -> Result<Info> {
    let path = root.join("meta").join("info.json");
    let text = read_text(&path)?;
    parse_info(&text, &path)
}

/// `meta/info.json` as written, before the checks serde cannot express.
#[derive(Deserialize)]
struct InfoDoc {
    codebase_version: String,
    fps: f64,
    data_path: String,
    #[serde(default)]
    video_path: Option<String>,
    features: IndexMap<String, FeatureDoc>,
    total_episodes: i64,
    total_frames: i64,
}

/// One entry of `info.json`'s `features` as written.
#[derive(Deserialize)]
struct FeatureDoc {
    dtype: String,
    shape: Vec<usize>,
    /// A list of strings, a dict of lists (LeRobot's motor names), or null.
    #[serde(default)]
    names: Option<Value>,
    /// The feature's `info` block (video settings, depth flags and quantiser), or null.
    #[serde(default)]
    info: Option<Value>,
    /// LeRobot's legacy place of `video.is_depth_map`.
    #[serde(default)]
    video_info: Option<Value>,
}

/// Parses the text of an `info.json` (path is only used in errors).
pub fn parse_info(text: &str, path: &Path) -> Result<Info> {
    let at = || Location::file(path);
    let raw: Value = serde_json::from_str(text)
        .map_err(|e| Error::metadata(at(), format!("not valid JSON: {e}")))?;
    if !raw.is_object() {
        return Err(Error::metadata(at(), "top level is not an object"));
    }
    // The version first: an older layout differs in many fields, and this says why at once.
    if let Some(version) = raw.get("codebase_version").and_then(Value::as_str) {
        if !version.starts_with("v3") {
            return Err(Error::metadata(
                at(),
                format!("codebase_version is '{version}'; roboframes reads LeRobot v3.x datasets"),
            ));
        }
    }
    let doc: InfoDoc = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let field = e.path().to_string();
        let at = match e.path().iter().nth(1) {
            Some(serde_path_to_error::Segment::Map { key }) if field.starts_with("features.") => {
                at().with_key(key.clone())
            }
            _ => at(),
        };
        let what = e.into_inner();
        if field == "." {
            Error::metadata(at, what.to_string()) // a field of the top level is missing
        } else {
            Error::metadata(at, format!("'{field}': {what}"))
        }
    })?;
    if !(doc.fps.is_finite() && doc.fps > 0.0) {
        return Err(Error::metadata(
            at(),
            format!("'fps' must be a positive number, got {}", doc.fps),
        ));
    }
    let mut features = IndexMap::with_capacity(doc.features.len());
    for (name, spec) in doc.features {
        let bad = |msg: &str| Error::metadata(at().with_key(name.clone()), msg.to_owned());
        let kind = match spec.dtype.as_str() {
            "video" => FeatureKind::Video,
            "image" => FeatureKind::Image,
            "string" => FeatureKind::String,
            "language" => FeatureKind::Language,
            other => FeatureKind::Numeric(
                DType::parse(other).ok_or_else(|| bad(&format!("unsupported dtype '{other}'")))?,
            ),
        };
        if matches!(kind, FeatureKind::Video | FeatureKind::Image) && spec.shape.len() != 3 {
            return Err(bad(
                "image/video feature shape must have 3 dimensions (H, W, C)",
            ));
        }
        let elements = spec.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        match elements {
            None => return Err(bad("feature shape has more elements than memory can hold")),
            Some(n) if n > MAX_FEATURE_ELEMENTS => {
                return Err(bad(&format!(
                    "feature shape {:?} has {n} elements per row; more than {MAX_FEATURE_ELEMENTS} is not a recording",
                    spec.shape
                )))
            }
            Some(0) => return Err(bad(&format!("feature shape {:?} has no elements", spec.shape))),
            Some(_) => {}
        }
        let names = match spec.names {
            Some(Value::Array(a)) => a
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>(),
            _ => None,
        };
        let depth = crate::depth::DepthInfo::parse(
            spec.info.as_ref(),
            spec.video_info.as_ref(),
            kind == FeatureKind::Video,
        )
        .map_err(|m| bad(&m))?;
        if depth.is_some() && !matches!(kind, FeatureKind::Video | FeatureKind::Image) {
            return Err(bad(&format!(
                "is flagged as a depth map but its dtype is '{}' (depth maps are video or image features)",
                spec.dtype
            )));
        }
        features.insert(
            name.clone(),
            Feature {
                name,
                kind,
                dtype_str: spec.dtype,
                shape: spec.shape,
                names,
                depth,
            },
        );
    }
    for required in [
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ] {
        if !features.contains_key(required) {
            return Err(Error::metadata(
                at(),
                format!("features lack the required '{required}'"),
            ));
        }
    }
    let has_video = features.values().any(|f| f.kind == FeatureKind::Video);
    if has_video && doc.video_path.is_none() {
        return Err(Error::metadata(at(), "video features but no 'video_path'"));
    }
    Ok(Info {
        codebase_version: doc.codebase_version,
        fps: doc.fps,
        data_path: doc.data_path,
        video_path: doc.video_path,
        features,
        total_episodes: doc.total_episodes,
        total_frames: doc.total_frames,
        raw,
    })
}

/// The most elements one row of a feature may have (a 16k x 16k RGB frame is 805 M): shapes
/// beyond are refused at open instead of failing to allocate on the first item.
pub const MAX_FEATURE_ELEMENTS: usize = 1 << 30;

/// The widest zero-padded field a path template may ask for (LeRobot writes 3; a width in the
/// thousands would make paths longer than any file system allows).
pub const MAX_PATH_FIELD_WIDTH: usize = 64;

/// Expands a LeRobot path template such as
/// `data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet`.
pub fn format_path(
    template: &str,
    vars: &[(&str, PathVar<'_>)],
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unbalanced '{{' in path template '{template}'"))?;
        let field = &after[..close];
        let (name, spec) = match field.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (field, None),
        };
        let value = vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("unknown field '{name}' in path template '{template}'"))?;
        match (value, spec) {
            (PathVar::Str(s), _) => out.push_str(s),
            (PathVar::Int(i), None) => out.push_str(&i.to_string()),
            (PathVar::Int(i), Some(spec)) => {
                // Python's `{:03d}` / `{:d}` / `{:3d}`: an optional zero flag, a width, `d`
                let digits = spec.strip_suffix('d').ok_or_else(|| {
                    format!("unsupported format '{spec}' of '{name}' in path template '{template}'")
                })?;
                let zero = digits.starts_with('0');
                let width_text = digits.trim_start_matches('0');
                let width: usize = if width_text.is_empty() {
                    0
                } else {
                    width_text
                        .parse()
                        .ok()
                        .filter(|w| *w <= MAX_PATH_FIELD_WIDTH)
                        .ok_or_else(|| {
                            format!(
                                "width '{digits}' of '{name}' in path template '{template}' is not a number up to {MAX_PATH_FIELD_WIDTH}"
                            )
                        })?
                };
                if zero {
                    out.push_str(&format!("{i:0width$}"));
                } else {
                    out.push_str(&format!("{i:width$}"));
                }
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A value substituted into a path template.
#[derive(Debug, Clone, Copy)]
pub enum PathVar<'a> {
    Int(i64),
    Str(&'a str),
}

fn int_column(batch: &RecordBatch, name: &str, path: &Path) -> Result<Vec<i64>> {
    let col = column(batch, name, path)?;
    let cast = arrow_cast::cast(col, &DataType::Int64).map_err(|e| {
        Error::metadata(
            Location::file(path).with_key(name),
            format!("column is not integer: {e}"),
        )
    })?;
    let arr = cast.as_primitive::<Int64Type>();
    if arr.null_count() > 0 {
        return Err(Error::metadata(
            Location::file(path).with_key(name),
            "column has null values",
        ));
    }
    Ok(arr.values().to_vec())
}

fn float_column(batch: &RecordBatch, name: &str, path: &Path) -> Result<Vec<f64>> {
    let col = column(batch, name, path)?;
    let cast = arrow_cast::cast(col, &DataType::Float64).map_err(|e| {
        Error::metadata(
            Location::file(path).with_key(name),
            format!("column is not numeric: {e}"),
        )
    })?;
    let arr = cast.as_primitive::<Float64Type>();
    if arr.null_count() > 0 {
        return Err(Error::metadata(
            Location::file(path).with_key(name),
            "column has null values",
        ));
    }
    Ok(arr.values().to_vec())
}

fn column<'a>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::MissingColumn {
            at: Location::file(path),
            column: name.to_owned(),
        })
}

/// Reads every `meta/episodes/chunk-*/file-*.parquet`, only the columns the reader needs, and
/// checks each row ([`check_episode`]) and that no episode is listed twice. Returns the
/// episodes sorted by `episode_index`.
pub fn read_episodes(root: &Path, video_keys: &[String]) -> Result<Vec<Episode>> {
    let episodes = read_episode_rows(root, video_keys)?;
    let dir = root.join("meta").join("episodes");
    for (ep, path) in &episodes {
        check_episode(ep, path, video_keys)?;
    }
    let episodes: Vec<Episode> = episodes.into_iter().map(|(e, _)| e).collect();
    for w in episodes.windows(2) {
        if let [a, b] = w {
            if a.episode_index == b.episode_index {
                return Err(Error::metadata(
                    Location::file(&dir).with_episode(a.episode_index),
                    "episode listed twice in meta/episodes",
                ));
            }
        }
    }
    Ok(episodes)
}

/// One row of `meta/episodes` against itself: a positive length, the row range spanning it
/// (checked arithmetic), video time ranges that are finite and ordered.
pub fn check_episode(ep: &Episode, path: &Path, video_keys: &[String]) -> Result<()> {
    let at = || Location::file(path).with_episode(ep.episode_index);
    // (checked: values from disk may be anything; a wrapped difference once equalled the
    // length and hid two episodes)
    let span = ep.dataset_to_index.checked_sub(ep.dataset_from_index);
    if ep.length <= 0 {
        return Err(Error::metadata(
            at(),
            format!(
                "length is {}: an episode without frames cannot be read (LeRobot never writes one)",
                ep.length
            ),
        ));
    }
    if ep.dataset_from_index < 0 || span != Some(ep.length) {
        return Err(Error::metadata(
            at(),
            format!(
                "dataset_from_index={} dataset_to_index={} disagree with length={}",
                ep.dataset_from_index, ep.dataset_to_index, ep.length
            ),
        ));
    }
    for (k, v) in video_keys.iter().zip(&ep.videos) {
        if !(v.from_timestamp.is_finite() && v.to_timestamp.is_finite())
            || v.to_timestamp < v.from_timestamp
        {
            return Err(Error::metadata(
                at().with_key(k.clone()),
                format!(
                    "video from_timestamp={} to_timestamp={} are not a valid range",
                    v.from_timestamp, v.to_timestamp
                ),
            ));
        }
    }
    Ok(())
}

/// Every row of `meta/episodes` with the file it came from, sorted by `episode_index`, without
/// checking the rows (`validate` reports each bad row; the reader refuses the first).
pub fn read_episode_rows(root: &Path, video_keys: &[String]) -> Result<Vec<(Episode, PathBuf)>> {
    let dir = root.join("meta").join("episodes");
    let files = episode_files(root)?;
    if files.is_empty() {
        return Err(Error::NotFound {
            at: Location::file(&dir),
            detail: "no episode metadata parquet files".into(),
        });
    }
    let mut names: Vec<String> = [
        "episode_index",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for k in video_keys {
        for suffix in [
            "chunk_index",
            "file_index",
            "from_timestamp",
            "to_timestamp",
        ] {
            names.push(format!("videos/{k}/{suffix}"));
        }
    }
    let mut episodes = Vec::new();
    for path in files {
        let batch = read_parquet_columns(&path, &names)?;
        let ep_idx = int_column(&batch, "episode_index", &path)?;
        let length = int_column(&batch, "length", &path)?;
        let dchunk = int_column(&batch, "data/chunk_index", &path)?;
        let dfile = int_column(&batch, "data/file_index", &path)?;
        let from = int_column(&batch, "dataset_from_index", &path)?;
        let to = int_column(&batch, "dataset_to_index", &path)?;
        let mut vids = Vec::new();
        for k in video_keys {
            vids.push((
                int_column(&batch, &format!("videos/{k}/chunk_index"), &path)?,
                int_column(&batch, &format!("videos/{k}/file_index"), &path)?,
                float_column(&batch, &format!("videos/{k}/from_timestamp"), &path)?,
                float_column(&batch, &format!("videos/{k}/to_timestamp"), &path)?,
            ));
        }
        for r in 0..batch.num_rows() {
            let get = |v: &Vec<i64>| v.get(r).copied().unwrap_or_default();
            let ep = Episode {
                episode_index: get(&ep_idx),
                length: get(&length),
                data_chunk_index: get(&dchunk),
                data_file_index: get(&dfile),
                dataset_from_index: get(&from),
                dataset_to_index: get(&to),
                videos: vids
                    .iter()
                    .map(|(c, f, a, b)| EpisodeVideo {
                        chunk_index: c.get(r).copied().unwrap_or_default(),
                        file_index: f.get(r).copied().unwrap_or_default(),
                        from_timestamp: a.get(r).copied().unwrap_or_default(),
                        to_timestamp: b.get(r).copied().unwrap_or_default(),
                    })
                    .collect(),
            };
            episodes.push((ep, path.clone()));
        }
    }
    episodes.sort_by_key(|(e, _)| e.episode_index);
    Ok(episodes)
}

/// The files of `meta/episodes`: listed below a local root, probed below a remote one.
pub fn episode_files(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join("meta").join("episodes");
    if crate::store::is_url(&root.to_string_lossy()) {
        probe_episode_files(&dir)
    } else {
        list_parquet_files(&dir)
    }
}

/// The files of `meta/episodes` of a remote root, found without listing (HTTP stores and the
/// Hub's `resolve` cannot list): LeRobot numbers them `chunk-{c:03}/file-{f:03}.parquet`, files
/// first, moving to the next chunk when a chunk is full, so the files are probed in that order
/// until neither the next file nor the next chunk's first exists.
fn probe_episode_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let at = |c: i64, f: i64| dir.join(format!("chunk-{c:03}/file-{f:03}.parquet"));
    let mut out = Vec::new();
    let (mut c, mut f) = (0i64, 0i64);
    // (bounded: a million files of episodes is far past any dataset)
    while out.len() < 1_000_000 {
        if crate::store::exists(&at(c, f))? {
            out.push(at(c, f));
            f += 1;
        } else if f > 0 && crate::store::exists(&at(c + 1, 0))? {
            out.push(at(c + 1, 0));
            c += 1;
            f = 1;
        } else {
            break;
        }
    }
    Ok(out)
}

/// Reads `meta/tasks.parquet`: the task string of each `task_index`.
pub fn read_tasks(root: &Path) -> Result<IndexMap<i64, String>> {
    let path = root.join("meta").join("tasks.parquet");
    if !crate::store::exists(&path)? {
        return Err(Error::NotFound {
            at: Location::file(&path),
            detail: String::new(),
        });
    }
    read_labels(&path, "task_index", "task")
}

/// Reads `meta/subtasks.parquet` (`{subtask_index: subtask}`) when the dataset has one.
pub fn read_subtasks(root: &Path) -> Result<Option<IndexMap<i64, String>>> {
    let path = root.join("meta").join("subtasks.parquet");
    if !crate::store::exists(&path)? {
        return Ok(None);
    }
    read_labels(&path, "subtask_index", "subtask").map(Some)
}

/// Reads a label table written by pandas: an integer column `index_col` and the label text,
/// in a column `text_col` or in the pandas index (`__index_level_0__`).
fn read_labels(path: &Path, index_col: &str, text_col: &str) -> Result<IndexMap<i64, String>> {
    let path = path.to_path_buf();
    let batch = read_parquet_columns(&path, &[])?;
    let idx = int_column(&batch, index_col, &path)?;
    let schema = batch.schema();
    let name = [text_col, "__index_level_0__"]
        .into_iter()
        .find(|n| schema.field_with_name(n).is_ok())
        .map(str::to_owned)
        .or_else(|| {
            schema
                .fields()
                .iter()
                .find(|f| {
                    matches!(
                        f.data_type(),
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    )
                })
                .map(|f| f.name().clone())
        })
        .ok_or_else(|| Error::MissingColumn {
            at: Location::file(&path),
            column: format!("{text_col} (string)"),
        })?;
    let col = arrow_cast::cast(column(&batch, &name, &path)?, &DataType::Utf8).map_err(|e| {
        Error::metadata(
            Location::file(&path).with_key(name.clone()),
            format!("not a string column: {e}"),
        )
    })?;
    let strs = col.as_string::<i32>();
    let mut out = IndexMap::new();
    for (r, ti) in idx.iter().enumerate() {
        if strs.is_null(r) {
            return Err(Error::metadata(
                Location::file(&path),
                format!("{index_col} {ti} has no text"),
            ));
        }
        out.insert(*ti, strs.value(r).to_owned());
    }
    Ok(out)
}

/// Reads the text of `meta/stats.json` if present (LeRobot writes it; a dataset without it is
/// valid). It is returned as written: LeRobot writes it with Python's `json`, which may hold
/// `NaN`/`Infinity`, so adapters parse it the way LeRobot does. The core needs no stats.
pub fn read_stats(root: &Path) -> Result<Option<String>> {
    let path = root.join("meta").join("stats.json");
    if !crate::store::exists(&path)? {
        return Ok(None);
    }
    read_text(&path).map(Some)
}

/// An episode's frames in its video file: `[from - half, end - half)` seconds, `half` half a
/// frame period, and `end` LeRobot's `to_timestamp` (one period past the last frame) or, for
/// converters that write the last frame's time there, `from + length / fps`, whichever is
/// later. The next episode's first frame stays outside. (The reader and `validate` both use
/// it.)
pub fn episode_span(e: &Episode, v: &EpisodeVideo, fps: f64) -> (f64, f64) {
    let half = 0.5 / fps;
    let by_length = v.from_timestamp + e.length as f64 / fps;
    (
        v.from_timestamp - half,
        v.to_timestamp.max(by_length) - half,
    )
}

/// Path of the data parquet file holding an episode.
pub fn data_file_path(root: &Path, info: &Info, chunk: i64, file: i64) -> Result<PathBuf> {
    let rel = format_path(
        &info.data_path,
        &[
            ("chunk_index", PathVar::Int(chunk)),
            ("file_index", PathVar::Int(file)),
        ],
    )
    .map_err(|m| Error::metadata(Location::file(root.join("meta/info.json")), m))?;
    inside_root(root, &rel)
}

/// Path of the mp4 file holding a camera of an episode.
pub fn video_file_path(
    root: &Path,
    info: &Info,
    key: &str,
    chunk: i64,
    file: i64,
) -> Result<PathBuf> {
    let template = info.video_path.as_deref().ok_or_else(|| {
        Error::metadata(
            Location::file(root.join("meta/info.json")),
            "no 'video_path'",
        )
    })?;
    let rel = format_path(
        template,
        &[
            ("video_key", PathVar::Str(key)),
            ("chunk_index", PathVar::Int(chunk)),
            ("file_index", PathVar::Int(file)),
        ],
    )
    .map_err(|m| Error::metadata(Location::file(root.join("meta/info.json")), m))?;
    inside_root(root, &rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_lerobot_templates() {
        let s = format_path(
            "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            &[
                ("video_key", PathVar::Str("observation.images.top")),
                ("chunk_index", PathVar::Int(2)),
                ("file_index", PathVar::Int(17)),
            ],
        );
        assert_eq!(
            s.as_deref(),
            Ok("videos/observation.images.top/chunk-002/file-017.mp4")
        );
        assert!(format_path("x/{nope}", &[]).is_err());
        assert!(format_path("x/{chunk_index", &[("chunk_index", PathVar::Int(1))]).is_err());
    }

    fn info_json(features: &str) -> String {
        format!(
            r#"{{"codebase_version":"v3.0","fps":30,"data_path":"data/chunk-{{chunk_index:03d}}/file-{{file_index:03d}}.parquet",
            "video_path":null,"total_episodes":1,"total_frames":3,"features":{features}}}"#
        )
    }

    #[test]
    fn absurd_template_widths_are_errors() {
        let var = [("chunk_index", PathVar::Int(1))];
        assert_eq!(format_path("c{chunk_index:5d}", &var).unwrap(), "c    1");
        assert_eq!(format_path("c{chunk_index:d}", &var).unwrap(), "c1");
        for bad in [
            "c{chunk_index:065536d}",
            "c{chunk_index:99999999999999999999d}",
            "c{chunk_index:03x}",
            "c{chunk_index:0a3d}",
        ] {
            assert!(format_path(bad, &var).is_err(), "{bad}");
        }
    }

    const BASE: &str = r#""timestamp":{"dtype":"float32","shape":[1]},"frame_index":{"dtype":"int64","shape":[1]},
        "episode_index":{"dtype":"int64","shape":[1]},"index":{"dtype":"int64","shape":[1]},"task_index":{"dtype":"int64","shape":[1]}"#;

    #[test]
    fn parses_features_in_order() {
        let text = info_json(&format!(
            r#"{{"observation.state":{{"dtype":"float32","shape":[6]}},"img":{{"dtype":"image","shape":[4,5,3]}},{BASE}}}"#
        ));
        let info = parse_info(&text, Path::new("info.json")).expect("valid");
        let names: Vec<_> = info.features.keys().cloned().collect();
        assert_eq!(names[0], "observation.state");
        assert_eq!(info.features["img"].kind, FeatureKind::Image);
        assert_eq!(info.image_keys(), vec!["img".to_string()]);
        assert!(info.features["timestamp"].is_scalar());
    }

    #[test]
    fn rejects_bad_info() {
        let p = Path::new("meta/info.json");
        assert!(matches!(parse_info("{", p), Err(Error::Metadata { .. })));
        assert!(matches!(parse_info("[]", p), Err(Error::Metadata { .. })));
        let no_ts = info_json(r#"{"x":{"dtype":"float32","shape":[1]}}"#);
        let e = parse_info(&no_ts, p).expect_err("missing timestamp");
        assert!(e.to_string().contains("timestamp"), "{e}");
        let bad_dtype = info_json(&format!(
            r#"{{"x":{{"dtype":"complex64","shape":[1]}},{BASE}}}"#
        ));
        let e = parse_info(&bad_dtype, p).expect_err("bad dtype");
        assert!(e.to_string().contains("'x'"), "{e}");
        let v2 = text_with_version("v2.1");
        assert!(parse_info(&v2, p).is_err());
        // an old layout lacking v3 fields is named as an old layout, not as a missing field
        let old = r#"{"codebase_version":"v2.1","fps":30,"features":{}}"#;
        let e = parse_info(old, p).expect_err("v2.1");
        assert!(e.to_string().contains("reads LeRobot v3.x"), "{e}");
        let no_data_path = text_with_version("v3.0").replacen("\"data_path\"", "\"data_pathx\"", 1);
        let e = parse_info(&no_data_path, p).expect_err("no data_path");
        assert!(e.to_string().contains("missing field `data_path`"), "{e}");
        assert!(!e.to_string().contains("'.'"), "{e}");
        // serde names the field that failed, and the feature key is the error's key
        let fps = info_json(&format!("{{{BASE}}}")).replacen("\"fps\":30", "\"fps\":\"fast\"", 1);
        let e = parse_info(&fps, p).expect_err("fps as text");
        assert!(e.to_string().contains("'fps'"), "{e}");
        let shape = info_json(&format!(
            r#"{{"x":{{"dtype":"float32","shape":[-1]}},{BASE}}}"#
        ));
        let e = parse_info(&shape, p).expect_err("negative dimension");
        assert_eq!(
            e.location().and_then(|l| l.key.as_deref()),
            Some("x"),
            "{e}"
        );
    }

    fn text_with_version(v: &str) -> String {
        info_json(&format!("{{{BASE}}}")).replace("v3.0", v)
    }
}
