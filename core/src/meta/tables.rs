//! The parquet tables of `meta/`: the episodes (`meta/episodes/*`, each row checked against
//! itself, and where each episode lies in its video files), the tasks and the subtasks.

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use indexmap::IndexMap;

use super::Info;
use crate::error::{Error, Location, Result};
use crate::parquet_io::{list_parquet_files, read_parquet_columns};

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

/// Column `name` cast to the primitive type `T` (`what` it must be, for the message), with no
/// nulls.
fn primitive_column<T: ArrowPrimitiveType>(
    batch: &RecordBatch,
    name: &str,
    path: &Path,
    what: &str,
) -> Result<Vec<T::Native>> {
    let at = || Location::file(path).with_key(name);
    let col = column(batch, name, path)?;
    let cast = arrow_cast::cast(col, &T::DATA_TYPE)
        .map_err(|e| Error::metadata(at(), format!("column is not {what}: {e}")))?;
    let arr = cast.as_primitive::<T>();
    if arr.null_count() > 0 {
        return Err(Error::metadata(at(), "column has null values"));
    }
    Ok(arr.values().to_vec())
}

fn int_column(batch: &RecordBatch, name: &str, path: &Path) -> Result<Vec<i64>> {
    primitive_column::<Int64Type>(batch, name, path, "integer")
}

fn float_column(batch: &RecordBatch, name: &str, path: &Path) -> Result<Vec<f64>> {
    primitive_column::<Float64Type>(batch, name, path, "numeric")
}

fn column<'a>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::MissingColumn {
            at: Location::file(path),
            column: name.to_owned(),
        })
}

/// Reads the episode table (every `meta/episodes/chunk-*/file-*.parquet`, only the columns the
/// reader needs; or a v2.x root's `meta/episodes.jsonl`) and checks each row
/// ([`check_episode`]) and that no episode is listed twice. Returns the episodes sorted by
/// `episode_index`.
pub fn read_episodes(root: &Path, info: &Info) -> Result<Vec<Episode>> {
    let episodes = read_episode_rows(root, info)?;
    let dir = info.episodes_path(root);
    let video_keys = info.video_keys();
    for (ep, path) in &episodes {
        check_episode(ep, path, &video_keys)?;
    }
    let episodes: Vec<Episode> = episodes.into_iter().map(|(e, _)| e).collect();
    for w in episodes.windows(2) {
        if let [a, b] = w {
            if a.episode_index == b.episode_index {
                return Err(Error::metadata(
                    Location::file(&dir).with_episode(a.episode_index),
                    "episode listed twice in the episode table",
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

/// Every row of the episode table (`meta/episodes`, or a v2.x root's `meta/episodes.jsonl`)
/// with the file it came from, sorted by `episode_index`, without checking the rows
/// (`validate` reports each bad row; the reader refuses the first).
pub fn read_episode_rows(root: &Path, info: &Info) -> Result<Vec<(Episode, PathBuf)>> {
    if let Some(layout) = info.legacy {
        return super::v2::read_episode_rows(root, info, layout);
    }
    let video_keys = &info.video_keys();
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

/// Reads `meta/tasks.parquet` (v2.x: `meta/tasks.jsonl`): the task string of each `task_index`.
pub fn read_tasks(root: &Path, info: &Info) -> Result<IndexMap<i64, String>> {
    if info.legacy.is_some() {
        return super::v2::read_tasks(root, info);
    }
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
