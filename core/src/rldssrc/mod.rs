//! RLDS datasets (Open X-Embodiment) read in place: a TFDS builder folder (`dataset_info.json`,
//! `features.json`, TFRecord shards of `tf.train.Example`s), one episode per record, its
//! `steps/*` features flattened across steps. Opening reads every record once (its CRCs
//! checked): the numeric features are kept (they are small), and for each encoded image only
//! where it lies in its shard, so a frame is one read of its own bytes, decoded on the decoding
//! threads like embedded images. Items carry LeRobot's bookkeeping columns, built here, and
//! `task` from the steps' `language_instruction`.

mod example;
mod features;
mod tfrecord;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use rayon::prelude::*;

use crate::error::{Error, Location, Result};
use crate::meta::{DType, Feature};
use crate::source::{KeyMap, SourceOptions};
use crate::table::{ColumnData, DataFile, FrameBytes, RowFrames};
use features::{StepFeature, StepKind};

/// The format name in errors.
const FORMAT: &str = "RLDS";

fn source_error(
    path: &Path,
    record: Option<usize>,
    key: Option<&str>,
    msg: impl Into<String>,
) -> Error {
    let at = Location::file(path);
    let at = match key {
        Some(k) => at.with_key(k),
        None => at,
    };
    let msg = msg.into();
    Error::Source {
        at,
        format: FORMAT,
        msg: match record {
            Some(r) => format!("record {r}: {msg}"),
            None => msg,
        },
    }
}

/// `records` framed as a TFRecord file.
#[cfg(feature = "testing")]
pub(crate) fn frame_records(records: &[Vec<u8>]) -> Vec<u8> {
    tfrecord::frame(records)
}

/// The number of records of the TFRecord file `path` (every CRC checked).
#[cfg(feature = "testing")]
pub(crate) fn count_records(path: &Path) -> Result<usize> {
    tfrecord::scan(
        &crate::source::SourceFile::open(path, "TFRecord")?,
        |_, _, _| Ok(()),
    )
}

/// The `features.json` of a small RLDS dataset: per step an image, a state, `is_first` and a
/// `language_instruction` (the fuzz target's and the tests' layout).
#[cfg(any(test, feature = "testing"))]
pub(crate) const SMALL_FEATURES: &str = r#"{"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict",
 "featuresDict": {"features": {"steps": {
  "pythonClassName": "tensorflow_datasets.core.features.dataset_feature.Dataset",
  "sequence": {"feature": {"featuresDict": {"features": {
    "observation": {"featuresDict": {"features": {
      "image": {"image": {"shape": {"dimensions": ["8", "12", "3"]}, "dtype": "uint8", "encodingFormat": "jpeg"}},
      "state": {"tensor": {"shape": {"dimensions": ["2"]}, "dtype": "float32", "encoding": "none"}}}}},
    "is_first": {"tensor": {"shape": {}, "dtype": "bool", "encoding": "none"}},
    "language_instruction": {"text": {}}}}}, "length": "-1"}}}}}"#;

/// A record of the [`SMALL_FEATURES`] layout: an episode of `steps` steps (JPEG frames of
/// 12x8 pixels).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn small_record(steps: usize) -> Vec<u8> {
    use example::{BytesList, Example, Feature, Features, FloatList, Int64List, Kind};
    let jpeg = crate::image::test_jpeg(5).unwrap_or_default();
    let feature = |kind: Kind| Feature { kind: Some(kind) };
    let mut map = std::collections::HashMap::new();
    map.insert(
        "steps/observation/image".to_string(),
        feature(Kind::Bytes(BytesList {
            value: vec![bytes::Bytes::from(jpeg); steps],
        })),
    );
    map.insert(
        "steps/observation/state".to_string(),
        feature(Kind::Floats(FloatList {
            value: (0..steps * 2).map(|i| i as f32 * 0.5).collect(),
        })),
    );
    map.insert(
        "steps/is_first".to_string(),
        feature(Kind::Ints(Int64List {
            value: (0..steps).map(|i| i64::from(i == 0)).collect(),
        })),
    );
    map.insert(
        "steps/language_instruction".to_string(),
        feature(Kind::Bytes(BytesList {
            value: vec![bytes::Bytes::from_static(b"stack the cups"); steps],
        })),
    );
    Example {
        features: Some(Features { feature: map }),
    }
    .encode_to_vec()
}

/// Writes a small RLDS dataset in `folder`: `dataset_info.json`, [`SMALL_FEATURES`] and one
/// shard (`shard`: the TFRecord bytes) holding `records` records.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn write_small(folder: &Path, shard: &[u8], records: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    std::fs::write(folder.join("features.json"), SMALL_FEATURES)?;
    std::fs::write(
        folder.join("dataset_info.json"),
        format!(
            r#"{{"name": "small", "splits": [{{"name": "train", "shardLengths": ["{records}"]}}]}}"#
        ),
    )?;
    std::fs::write(folder.join("small-train.tfrecord-00000-of-00001"), shard)
}

/// True when `folder` is a TFDS builder folder (it holds `dataset_info.json` and
/// `features.json`).
pub fn is_builder_folder(folder: &Path) -> bool {
    folder.join("dataset_info.json").is_file() && folder.join("features.json").is_file()
}

/// The builder folder of `root`: `root` itself, or its only version folder (`<name>/1.0.0/`).
fn builder_folder(root: &Path) -> Result<PathBuf> {
    // (a remote root is the builder folder itself: stores cannot all list folders)
    if is_builder_folder(root) || crate::store::is_url(&root.to_string_lossy()) {
        return Ok(root.to_path_buf());
    }
    if !root.is_dir() {
        return Err(Error::NotFound {
            at: Location::file(root),
            detail:
                "an RLDS dataset is a folder (dataset_info.json, features.json and TFRecord shards)"
                    .into(),
        });
    }
    let versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_builder_folder(p))
        .collect();
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::NotFound {
            at: Location::file(root),
            detail: "no dataset_info.json and features.json here or in a version folder below"
                .into(),
        }),
        many => Err(Error::InvalidArgument {
            msg: format!(
                "'{}' holds several versions ({}); open one of them",
                root.display(),
                many.iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// One step feature read as a column.
#[derive(Debug, Clone)]
struct Column {
    /// The item key.
    name: String,
    /// The feature's path below `steps/`.
    rel: String,
    kind: ColumnKind,
}

#[derive(Debug, Clone, PartialEq)]
enum ColumnKind {
    /// Numbers: the stored dtype and the shape of one step.
    Numeric { dtype: DType, shape: Vec<usize> },
    /// Encoded images of `(H, W, C)`.
    Image { dims: (usize, usize, usize) },
}

/// One column of one episode, as opening read it.
#[derive(Debug)]
enum Steps {
    /// The steps' values as item-dtype bytes.
    Numeric(Vec<u8>),
    /// Where each step's encoded image lies in the shard: (offset, length).
    Image(Arc<[(u64, usize)]>),
}

/// What opening found of one episode (one record).
struct Scanned {
    length: usize,
    /// One entry per column.
    columns: Vec<Steps>,
    /// The steps' task texts, when the steps have them.
    tasks: Option<Vec<String>>,
}

/// One episode of the source.
#[derive(Debug)]
struct RldsEpisode {
    shard: usize,
    length: usize,
    first_index: i64,
    /// One entry per column.
    columns: Vec<Steps>,
    /// Task index per step, when there are tasks.
    tasks: Option<Vec<i64>>,
}

/// An opened RLDS source.
#[derive(Debug)]
pub struct RldsSource {
    shards: Arc<Vec<crate::source::SourceFile>>,
    episodes: Vec<RldsEpisode>,
    columns: Vec<Column>,
    fps: f64,
}

/// What [`open`] found.
pub type Opened = crate::source::Opened<RldsSource>;

/// True for the text feature that holds a step's task.
fn is_task_text(rel: &str) -> bool {
    let last = rel.rsplit('/').next().unwrap_or(rel);
    last == "language_instruction"
        || last == "natural_language_instruction"
        || last == "instruction"
}

/// Opens the RLDS dataset at `root`.
pub fn open(root: &Path, opts: &SourceOptions) -> Result<Opened> {
    let folder = builder_folder(root)?;
    let steps = features::step_features(&folder)?;
    let (split, shard_list) = features::shards(&folder, opts.split.as_deref())?;
    let mut warnings = Vec::new();
    let mut columns = Vec::new();
    let mut task_feature: Option<String> = None;
    for StepFeature { rel, kind } in steps {
        match kind {
            StepKind::Tensor { dtype, shape } => {
                let elements = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
                if elements.is_none_or(|n| n > crate::meta::MAX_FEATURE_ELEMENTS) {
                    return Err(source_error(
                        &folder.join("features.json"),
                        None,
                        Some(&rel),
                        format!("shape {shape:?} is not a recording's"),
                    ));
                }
                columns.push(Column {
                    name: String::new(),
                    rel,
                    kind: ColumnKind::Numeric { dtype, shape },
                });
            }
            StepKind::Image { dims } => columns.push(Column {
                name: String::new(),
                rel,
                // (unknown dims: taken from the first frame below)
                kind: ColumnKind::Image {
                    dims: dims.unwrap_or((0, 0, 0)),
                },
            }),
            StepKind::Text if task_feature.is_none() && is_task_text(&rel) => {
                task_feature = Some(rel)
            }
            StepKind::Text => warnings.push(format!(
                "{}: step feature '{rel}' (text) is left out; only the task's text is read",
                folder.display()
            )),
            StepKind::Unsupported(why) => warnings.push(format!(
                "{}: step feature '{rel}' is left out: {why}",
                folder.display()
            )),
        }
    }
    for c in &mut columns {
        c.name = item_name(
            &c.rel,
            matches!(c.kind, ColumnKind::Image { .. }),
            &opts.key_map,
        );
    }
    crate::source::check_names(
        &columns
            .iter()
            .map(|c| (c.rel.as_str(), c.name.as_str()))
            .collect::<Vec<_>>(),
        &opts.key_map,
        root,
    )?;
    let fps = crate::source::frame_rate(opts.fps, None, || {
        source_error(
            &folder,
            None,
            None,
            "RLDS datasets store no frame rate; pass fps= (the rate the episodes were recorded at)",
        )
    })?;
    // (stamped before the scan: a shard replaced while it is read is caught later)
    // (in parallel: a remote shard's first look is a request, and datasets have thousands)
    let shards = Arc::new(
        shard_list
            .par_iter()
            .map(|(path, _)| crate::source::SourceFile::open(path, "TFRecord"))
            .collect::<Result<Vec<_>>>()?,
    );
    let task_key = task_feature.as_deref().filter(|_| opts.task.is_none());
    let scanned: Vec<Vec<Scanned>> = shards
        .par_iter()
        .zip(shard_list.par_iter())
        .map(|(file, (_, expected))| scan_shard(file, *expected, &columns, task_key))
        .collect::<Result<_>>()?;
    // image sizes the features do not give: from the first frame
    for (ci, c) in columns.iter_mut().enumerate() {
        if let ColumnKind::Image { dims } = &mut c.kind {
            if *dims == (0, 0, 0) {
                *dims = first_frame_dims(&shards, &scanned, ci, &c.rel)?;
            }
        }
    }

    let lengths: Vec<usize> = scanned.iter().flatten().map(|s| s.length).collect();
    let episodes = crate::source::episode_table(&lengths)?;
    let mut tasks = crate::source::Tasks::default();
    let mut rlds = Vec::with_capacity(episodes.len());
    for ((shard, s), e) in scanned
        .into_iter()
        .enumerate()
        .flat_map(|(i, eps)| eps.into_iter().map(move |s| (i, s)))
        .zip(&episodes)
    {
        let step_tasks = match (&opts.task, &s.tasks) {
            (Some(t), _) => Some(vec![tasks.index(t); s.length]),
            (None, Some(ts)) => Some(ts.iter().map(|t| tasks.index(t)).collect()),
            (None, None) => None,
        };
        rlds.push(RldsEpisode {
            shard,
            length: s.length,
            first_index: e.dataset_from_index,
            columns: s.columns,
            tasks: step_tasks,
        });
    }
    let tasks = tasks.into_table();
    let next = episodes.last().map_or(0, |e| e.dataset_to_index);
    let features: Vec<Feature> = columns
        .iter()
        .map(|c| match &c.kind {
            ColumnKind::Numeric { dtype, shape } => {
                crate::source::numeric_feature(&c.name, *dtype, shape)
            }
            ColumnKind::Image { dims } => crate::source::image_feature(&c.name, *dims),
        })
        .collect();
    let info = crate::source::synthetic_info(
        features,
        fps,
        !tasks.is_empty(),
        episodes.len(),
        next,
        serde_json::json!({
            "format": "rlds",
            "folder": folder.display().to_string(),
            "split": split,
            "files": shard_list.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
        }),
    )?;
    Ok(Opened {
        source: Arc::new(RldsSource {
            shards,
            episodes: rlds,
            columns,
            fps,
        }),
        info,
        episodes,
        tasks,
        warnings,
    })
}

/// The item key of step feature `rel`.
fn item_name(rel: &str, image: bool, map: &KeyMap) -> String {
    match map {
        KeyMap::Source => rel.to_owned(),
        KeyMap::Names(names) => names.get(rel).cloned().unwrap_or_else(|| rel.to_owned()),
        KeyMap::LeRobot => match (rel, rel.strip_prefix("observation/")) {
            ("action", _) => "action".into(),
            ("reward", _) => "next.reward".into(),
            ("is_last", _) => "next.done".into(),
            (_, Some("state")) => "observation.state".into(),
            (_, Some(k)) if image => format!("observation.images.{}", k.replace('/', ".")),
            (_, Some(k)) => format!("observation.{}", k.replace('/', ".")),
            _ => rel.replace('/', "."),
        },
    }
}

/// Reads every record of one shard: its episodes' numeric steps, where their images lie,
/// and their tasks (`task_key`'s texts).
fn scan_shard(
    file: &crate::source::SourceFile,
    expected: u64,
    columns: &[Column],
    task_key: Option<&str>,
) -> Result<Vec<Scanned>> {
    let mut out = Vec::new();
    let path = file.path();
    let n = tfrecord::scan(file, |record, data, offset| {
        let base = bytes::Bytes::copy_from_slice(data);
        let example = example::Example::decode(base.clone()).map_err(|e| {
            source_error(
                path,
                Some(record),
                None,
                format!("not a tf.train.Example: {e}"),
            )
        })?;
        let mut feats = example.features.map(|f| f.feature).unwrap_or_default();
        let mut length: Option<(usize, String)> = None;
        let mut agree = |n: usize, key: &str| -> Result<()> {
            match &length {
                Some((m, first)) if *m != n => Err(source_error(
                    path,
                    Some(record),
                    Some(key),
                    format!("holds {n} steps, '{first}' holds {m}"),
                )),
                Some(_) => Ok(()),
                None => {
                    length = Some((n, key.to_owned()));
                    Ok(())
                }
            }
        };
        let mut steps = Vec::with_capacity(columns.len());
        for c in columns {
            let key = format!("steps/{}", c.rel);
            let kind = feats.remove(&key).and_then(|f| f.kind).ok_or_else(|| {
                source_error(
                    path,
                    Some(record),
                    Some(&key),
                    "the episode has no such feature",
                )
            })?;
            let bad = |m: String| source_error(path, Some(record), Some(&key), m);
            match (&c.kind, kind) {
                (ColumnKind::Image { .. }, example::Kind::Bytes(b)) => {
                    agree(b.value.len(), &key)?;
                    // (each value is a slice of the record: its place there is its place in
                    // the shard, after the record's offset)
                    let spans = b
                        .value
                        .iter()
                        .map(|v| {
                            if v.is_empty() {
                                // (an empty value need not be a slice of the record: it
                                // reads as no bytes, which no decoder takes)
                                return Ok((offset, 0));
                            }
                            let at = (v.as_ptr() as usize)
                                .checked_sub(base.as_ptr() as usize)
                                .filter(|at| {
                                    at.checked_add(v.len()).is_some_and(|end| end <= data.len())
                                });
                            let at = at.and_then(|at| offset.checked_add(at as u64));
                            at.map(|at| (at, v.len()))
                                .ok_or_else(|| bad("image bytes outside the record".into()))
                        })
                        .collect::<Result<Vec<(u64, usize)>>>()?;
                    steps.push(Steps::Image(spans.into()));
                }
                (ColumnKind::Numeric { dtype, shape }, kind) => {
                    let per: usize = shape.iter().product();
                    let (bytes, count) = numeric_steps(*dtype, kind).map_err(bad)?;
                    if per == 0 || count % per != 0 {
                        return Err(bad(format!(
                            "{count} values are not steps of shape {shape:?}"
                        )));
                    }
                    agree(count / per, &key)?;
                    steps.push(Steps::Numeric(bytes));
                }
                (ColumnKind::Image { .. }, _) => {
                    return Err(bad("an image feature not stored as bytes".into()))
                }
            }
        }
        let tasks = match task_key {
            None => None,
            Some(rel) => {
                let key = format!("steps/{rel}");
                match feats.remove(&key).and_then(|f| f.kind) {
                    Some(example::Kind::Bytes(b)) => {
                        agree(b.value.len(), &key)?;
                        let texts = b
                            .value
                            .iter()
                            .map(|v| String::from_utf8(v.to_vec()))
                            .collect::<std::result::Result<Vec<_>, _>>()
                            .map_err(|_| {
                                source_error(
                                    path,
                                    Some(record),
                                    Some(&key),
                                    "a task is not UTF-8 text",
                                )
                            })?;
                        Some(texts)
                    }
                    _ => {
                        return Err(source_error(
                            path,
                            Some(record),
                            Some(&key),
                            "the episode has no task texts",
                        ))
                    }
                }
            }
        };
        let length = length.map_or(0, |(n, _)| n);
        if length > crate::source::MAX_EPISODE_FRAMES {
            return Err(source_error(
                path,
                Some(record),
                None,
                format!(
                    "an episode of {length} steps; more than {} is not a recording",
                    crate::source::MAX_EPISODE_FRAMES
                ),
            ));
        }
        out.push(Scanned {
            length,
            columns: steps,
            tasks,
        });
        Ok(())
    })?;
    if n as u64 != expected {
        return Err(source_error(
            path,
            None,
            None,
            format!("holds {n} episodes, dataset_info.json says {expected}"),
        ));
    }
    Ok(out)
}

/// The values of a numeric step feature as item-dtype bytes (floats as float32, integers as
/// int64, booleans as bool), and their count.
fn numeric_steps(
    dtype: DType,
    kind: example::Kind,
) -> std::result::Result<(Vec<u8>, usize), String> {
    match (dtype.item_dtype(), kind) {
        (DType::F32, example::Kind::Floats(f)) => Ok((
            f.value.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            f.value.len(),
        )),
        (DType::I64, example::Kind::Ints(i)) => {
            // (stored as int64: a value outside the declared dtype is damage, not data)
            if let Some(v) = i.value.iter().find(|v| !fits(dtype, **v)) {
                return Err(format!(
                    "{v} does not fit the feature's dtype {}",
                    dtype.name()
                ));
            }
            Ok((
                i.value.iter().flat_map(|v| v.to_ne_bytes()).collect(),
                i.value.len(),
            ))
        }
        (DType::Bool, example::Kind::Ints(i)) => {
            let mut out = Vec::with_capacity(i.value.len());
            for v in &i.value {
                match v {
                    0 | 1 => out.push(*v as u8),
                    other => return Err(format!("a boolean holds {other}")),
                }
            }
            Ok((out, i.value.len()))
        }
        (want, _) => Err(format!(
            "values are not stored as a list of {}",
            want.name()
        )),
    }
}

/// True when `v` is a value of the integer dtype `dtype`.
fn fits(dtype: DType, v: i64) -> bool {
    match dtype {
        DType::I8 => i8::try_from(v).is_ok(),
        DType::I16 => i16::try_from(v).is_ok(),
        DType::I32 => i32::try_from(v).is_ok(),
        DType::U8 => u8::try_from(v).is_ok(),
        DType::U16 => u16::try_from(v).is_ok(),
        DType::U32 => u32::try_from(v).is_ok(),
        _ => true,
    }
}

/// The `(H, W, C)` of image column `ci`, from its first frame.
fn first_frame_dims(
    shards: &[crate::source::SourceFile],
    scanned: &[Vec<Scanned>],
    ci: usize,
    rel: &str,
) -> Result<(usize, usize, usize)> {
    for (si, eps) in scanned.iter().enumerate() {
        for s in eps {
            if let Some(Steps::Image(spans)) = s.columns.get(ci) {
                if let (Some(&(at, len)), Some(shard)) = (spans.first(), shards.get(si)) {
                    let bytes = shard.read_at(at, len)?;
                    return crate::image::encoded_dims(&bytes).map_err(|m| {
                        source_error(shard.path(), None, Some(rel), format!("first image: {m}"))
                    });
                }
            }
        }
    }
    Ok((0, 0, 0))
}

impl RldsSource {
    /// The rows of episode `episode_index` as a data table: LeRobot's bookkeeping columns, the
    /// numeric steps read at open, the cameras as frame readers.
    pub fn load_episode(&self, episode_index: i64) -> Result<DataFile> {
        let e = crate::source::episode(&self.episodes, episode_index)?;
        let shard = self
            .shards
            .get(e.shard)
            .ok_or_else(|| Error::internal("RLDS episode", "no shard for the episode"))?;
        let mut columns = crate::source::bookkeeping_columns(
            e.first_index,
            episode_index,
            e.length,
            self.fps,
            e.tasks.as_deref(),
        );
        for (c, steps) in self.columns.iter().zip(&e.columns) {
            let col = match (&c.kind, steps) {
                (ColumnKind::Numeric { dtype, shape }, Steps::Numeric(bytes)) => {
                    ColumnData::Fixed {
                        dtype: dtype.item_dtype(),
                        per_row: shape.iter().product(),
                        bytes: bytes.clone(),
                    }
                }
                (ColumnKind::Image { .. }, Steps::Image(spans)) => {
                    ColumnData::Frames(Arc::new(RldsFrames {
                        shards: self.shards.clone(),
                        shard: e.shard,
                        key: format!("steps/{}", c.rel),
                        spans: spans.clone(),
                    }))
                }
                _ => return Err(Error::internal("RLDS episode", "a column of another kind")),
            };
            columns.insert(c.name.clone(), col);
        }
        Ok(DataFile {
            path: shard.path().to_path_buf(),
            first_index: e.first_index,
            rows: e.length,
            file_rows: e.length as u64,
            columns,
        })
    }
}

/// The encoded images of one camera of one episode: each step's bytes read from the shard.
#[derive(Debug)]
struct RldsFrames {
    shards: Arc<Vec<crate::source::SourceFile>>,
    shard: usize,
    key: String,
    spans: Arc<[(u64, usize)]>,
}

impl RowFrames for RldsFrames {
    fn read_into(&self, row: usize, buf: &mut Vec<u8>) -> Result<FrameBytes> {
        let shard = self
            .shards
            .get(self.shard)
            .ok_or_else(|| Error::internal("RLDS frames", "no shard"))?;
        let &(at, len) = self.spans.get(row).ok_or_else(|| {
            source_error(
                shard.path(),
                None,
                Some(&self.key),
                format!("row {row} of {} steps", self.spans.len()),
            )
        })?;
        shard.read_into(at, len, buf)?;
        // (RLDS datasets are read with TensorFlow, whose JPEG decoder uses the fast IDCT)
        Ok(FrameBytes::Encoded(crate::image::JpegDct::Fast))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Dataset, OpenOptions};

    fn open(folder: &Path) -> Result<Dataset> {
        let mut opts = OpenOptions::default();
        opts.source.fps = Some(5.0);
        Dataset::open(folder, opts)
    }

    #[test]
    fn reads_records_written_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = tfrecord::frame(&[small_record(3), small_record(2)]);
        write_small(dir.path(), &shard, 2).expect("write");
        let ds = open(dir.path()).expect("open");
        assert_eq!((ds.len(), ds.episodes()), (5, vec![0, 1]));
        let (frames, dims) = ds.fill_one("observation/image", &[0, 4]).expect("frames");
        assert_eq!((dims, frames.len()), ((8, 12, 3), 2 * 8 * 12 * 3));
        let (f, rows) = ds.episode_rows(1).expect("rows");
        assert_eq!(rows, 0..2);
        assert_eq!(f.fixed_row("is_first", 0), Some(&[1u8][..]));
        assert_eq!(
            ds.tasks().get(&0).map(String::as_str),
            Some("stack the cups")
        );
    }

    #[test]
    fn damage_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut shard = tfrecord::frame(&[small_record(3)]);
        let last = shard.len() - 6;
        shard[last] ^= 1;
        write_small(dir.path(), &shard, 1).expect("write");
        let e = open(dir.path()).err().expect("a damaged record is refused");
        assert!(
            e.to_string().contains("record 0") && e.to_string().contains("CRC"),
            "{e}"
        );
        // a record that is not an Example, with valid framing
        let shard = tfrecord::frame(&[vec![0xFF; 10]]);
        write_small(dir.path(), &shard, 1).expect("write");
        let e = open(dir.path()).err().expect("not an Example");
        assert!(e.to_string().contains("tf.train.Example"), "{e}");
    }
}
