//! `meta/info.json`: the features and their element types, parsed through serde plus the checks
//! serde cannot express; and the text of `meta/stats.json`.

use std::path::Path;

use arrow_schema::DataType;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Location, Result};

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
    /// Set for a LeRobot v2.0/v2.1 root (one data file and one video per episode, the episodes
    /// and tasks in `meta/*.jsonl`); None for v3.x.
    pub legacy: Option<LegacyLayout>,
    /// The whole document, for adapters that expose it.
    pub raw: Value,
}

/// The layout of a LeRobot v2.0/v2.1 root: episode `e`'s rows are the whole of its own data
/// file, and its frames the whole of its own video per camera, both in chunk folder
/// `e / chunks_size` (the templates' `{episode_chunk}` and `{episode_index}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyLayout {
    /// `chunks_size`: episodes per chunk folder (positive).
    pub chunks_size: i64,
    /// v2.1 keeps each episode's statistics in `meta/episodes_stats.jsonl` (LeRobot 0.3
    /// aggregates them at load); v2.0 has `meta/stats.json`.
    pub episodes_stats: bool,
}

impl Info {
    /// The file or folder holding the episode table: `meta/episodes.jsonl` (v2.x) or
    /// `meta/episodes` (v3.x).
    pub fn episodes_path(&self, root: &Path) -> std::path::PathBuf {
        root.join(if self.legacy.is_some() {
            "meta/episodes.jsonl"
        } else {
            "meta/episodes"
        })
    }
    /// The file holding the tasks: `meta/tasks.jsonl` (v2.x) or `meta/tasks.parquet`.
    pub fn tasks_path(&self, root: &Path) -> std::path::PathBuf {
        root.join(if self.legacy.is_some() {
            "meta/tasks.jsonl"
        } else {
            "meta/tasks.parquet"
        })
    }

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
    let mut legacy = None;
    if let Some(version) = raw.get("codebase_version").and_then(Value::as_str) {
        if matches!(version, "v2.0" | "v2.1") {
            let chunks_size = raw
                .get("chunks_size")
                .and_then(Value::as_i64)
                .filter(|c| *c > 0)
                .ok_or_else(|| {
                    Error::metadata(
                        at(),
                        format!(
                            "a {version} dataset needs 'chunks_size', a positive integer (episodes per chunk folder)"
                        ),
                    )
                })?;
            legacy = Some(LegacyLayout {
                chunks_size,
                episodes_stats: version == "v2.1",
            });
        } else if !version.starts_with("v3") {
            return Err(Error::metadata(
                at(),
                format!(
                    "codebase_version is '{version}'; roboframes reads LeRobot v2.0, v2.1 and v3.x \
                     datasets (LeRobot's own scripts convert older ones to v2.1)"
                ),
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
        legacy,
        raw,
    })
}

/// The most elements one row of a feature may have (a 16k x 16k RGB frame is 805 M): shapes
/// beyond are refused at open instead of failing to allocate on the first item.
pub const MAX_FEATURE_ELEMENTS: usize = 1 << 30;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn info_json(features: &str) -> String {
        format!(
            r#"{{"codebase_version":"v3.0","fps":30,"data_path":"data/chunk-{{chunk_index:03d}}/file-{{file_index:03d}}.parquet",
            "video_path":null,"total_episodes":1,"total_frames":3,"features":{features}}}"#
        )
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
        // v2.x needs its chunk size; older layouts are named as such, not as a missing field
        let v2 = text_with_version("v2.1");
        let e = parse_info(&v2, p).expect_err("v2.1 without chunks_size");
        assert!(e.to_string().contains("chunks_size"), "{e}");
        let v2 = v2.replacen("\"fps\"", "\"chunks_size\":2,\"fps\"", 1);
        let legacy = parse_info(&v2, p).expect("v2.1").legacy;
        assert_eq!(
            legacy,
            Some(LegacyLayout {
                chunks_size: 2,
                episodes_stats: true
            })
        );
        let v20 = parse_info(&v2.replace("v2.1", "v2.0"), p).expect("v2.0");
        assert_eq!(v20.legacy.map(|l| l.episodes_stats), Some(false));
        let bad = v2.replacen("\"chunks_size\":2", "\"chunks_size\":0", 1);
        assert!(parse_info(&bad, p).is_err());
        let old = r#"{"codebase_version":"v1.6","fps":30,"features":{}}"#;
        let e = parse_info(old, p).expect_err("v1.6");
        assert!(
            e.to_string().contains("reads LeRobot v2.0, v2.1 and v3.x"),
            "{e}"
        );
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
