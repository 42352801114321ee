//! The metadata of a LeRobot v2.0/v2.1 root (LeRobot 0.3.x and earlier): `meta/episodes.jsonl`
//! (`{"episode_index", "tasks", "length"}` per line) and `meta/tasks.jsonl`
//! (`{"task_index", "task"}`), turned into the v3.0 episode table the reader works on. Each
//! episode is the whole of its own data file and of its own video per camera (from time 0), in
//! chunk folder `episode_index / chunks_size`; its rows' place in the dataset is where LeRobot
//! 0.3 puts them (`get_episode_data_index`): the episodes' lengths added up in episode order.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::{Episode, EpisodeVideo, Info, LegacyLayout};
use crate::error::{Error, Location, Result};

/// The most bytes a `meta/*.jsonl` file may hold (a line of `episodes.jsonl` is about 100 bytes,
/// so this is millions of episodes; parsing costs several times the file).
pub const MAX_JSONL_BYTES: u64 = 256 << 20;

/// The JSON object of each non-empty line of a `.jsonl` file, with its line number (from 1).
fn read_jsonl(path: &Path) -> Result<Vec<(usize, serde_json::Map<String, Value>)>> {
    if !crate::store::exists(path)? {
        return Err(Error::NotFound {
            at: Location::file(path),
            detail: "LeRobot v2.x datasets list their episodes and tasks in meta/*.jsonl".into(),
        });
    }
    let bytes = crate::store::read(path, MAX_JSONL_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| Error::Io {
        at: Location::file(path),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || Location::file(path);
        let v: Value = serde_json::from_str(line)
            .map_err(|e| Error::metadata(at(), format!("line {}: not valid JSON: {e}", n + 1)))?;
        match v {
            Value::Object(o) => out.push((n + 1, o)),
            _ => {
                return Err(Error::metadata(
                    at(),
                    format!("line {}: not a JSON object", n + 1),
                ))
            }
        }
    }
    Ok(out)
}

/// An integer field of a line.
fn int_field(
    obj: &serde_json::Map<String, Value>,
    name: &str,
    line: usize,
    path: &Path,
) -> Result<i64> {
    obj.get(name).and_then(Value::as_i64).ok_or_else(|| {
        Error::metadata(
            Location::file(path).with_key(name),
            format!("line {line}: '{name}' is missing or not an integer"),
        )
    })
}

/// Every episode of `meta/episodes.jsonl` with the file it came from, sorted by
/// `episode_index`, unchecked (as [`super::read_episode_rows`]).
pub fn read_episode_rows(
    root: &Path,
    info: &Info,
    layout: LegacyLayout,
) -> Result<Vec<(Episode, PathBuf)>> {
    let path = info.episodes_path(root);
    let mut rows = Vec::new();
    for (line, obj) in read_jsonl(&path)? {
        let index = int_field(&obj, "episode_index", line, &path)?;
        if index < 0 {
            return Err(Error::metadata(
                Location::file(&path).with_episode(index),
                format!("line {line}: episode_index {index} is negative"),
            ));
        }
        rows.push((index, int_field(&obj, "length", line, &path)?));
    }
    if rows.is_empty() {
        return Err(Error::NotFound {
            at: Location::file(&path),
            detail: "no episodes listed".into(),
        });
    }
    rows.sort_by_key(|(index, _)| *index);
    let cameras = info.video_keys().len();
    let mut next: i64 = 0;
    let mut out = Vec::with_capacity(rows.len());
    for (index, length) in rows {
        // (an episode without frames takes no rows; `check_episode` reports its length)
        let to = next.checked_add(length.max(0)).ok_or_else(|| {
            Error::metadata(
                Location::file(&path).with_episode(index),
                "the episodes' lengths add up past 2^63",
            )
        })?;
        let chunk = index / layout.chunks_size; // (both positive: floor division as LeRobot's)
        let video = EpisodeVideo {
            chunk_index: chunk,
            file_index: index,
            from_timestamp: 0.0,
            to_timestamp: length as f64 / info.fps,
        };
        out.push((
            Episode {
                episode_index: index,
                length,
                data_chunk_index: chunk,
                data_file_index: index,
                dataset_from_index: next,
                dataset_to_index: next.saturating_add(length),
                videos: vec![video; cameras],
            },
            path.clone(),
        ));
        next = to;
    }
    Ok(out)
}

/// `meta/tasks.jsonl`: the task of each `task_index`.
pub fn read_tasks(root: &Path, info: &Info) -> Result<IndexMap<i64, String>> {
    let path = info.tasks_path(root);
    let mut out = IndexMap::new();
    for (line, obj) in read_jsonl(&path)? {
        let index = int_field(&obj, "task_index", line, &path)?;
        let task = obj.get("task").and_then(Value::as_str).ok_or_else(|| {
            Error::metadata(
                Location::file(&path).with_key("task"),
                format!("line {line}: 'task' is missing or not a string"),
            )
        })?;
        if out.insert(index, task.to_owned()).is_some() {
            return Err(Error::metadata(
                Location::file(&path),
                format!("line {line}: task_index {index} is listed twice"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    fn info() -> Info {
        let text = r#"{"codebase_version":"v2.1","chunks_size":2,"fps":10,
            "data_path":"data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path":"videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
            "total_episodes":3,"total_frames":9,"features":{
            "cam":{"dtype":"video","shape":[4,4,3]},
            "timestamp":{"dtype":"float32","shape":[1]},"frame_index":{"dtype":"int64","shape":[1]},
            "episode_index":{"dtype":"int64","shape":[1]},"index":{"dtype":"int64","shape":[1]},
            "task_index":{"dtype":"int64","shape":[1]}}}"#;
        super::super::parse_info(text, Path::new("info.json")).expect("info")
    }

    #[test]
    fn episodes_in_order_with_their_files() {
        let dir = root_with(&[(
            "meta/episodes.jsonl",
            "{\"episode_index\": 2, \"tasks\": [\"b\"], \"length\": 4}\n\n\
             {\"episode_index\": 0, \"tasks\": [\"a\"], \"length\": 3}\n\
             {\"episode_index\": 1, \"tasks\": [\"a\"], \"length\": 2}\n",
        )]);
        let info = info();
        let layout = info.legacy.expect("v2.1");
        let rows = read_episode_rows(dir.path(), &info, layout).expect("rows");
        let eps: Vec<_> = rows.iter().map(|(e, _)| e).collect();
        assert_eq!(
            eps.iter().map(|e| e.episode_index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(
            eps.iter()
                .map(|e| (e.dataset_from_index, e.dataset_to_index))
                .collect::<Vec<_>>(),
            [(0, 3), (3, 5), (5, 9)]
        );
        let e2 = eps[2];
        assert_eq!((e2.data_chunk_index, e2.data_file_index), (1, 2));
        assert_eq!(e2.videos[0].from_timestamp, 0.0);
        assert_eq!(e2.videos[0].to_timestamp, 0.4);
        let p = super::super::video_file_path(dir.path(), &info, "cam", 1, 2).expect("path");
        assert!(
            p.ends_with("videos/chunk-001/cam/episode_000002.mp4"),
            "{p:?}"
        );
        let p = super::super::data_file_path(dir.path(), &info, 1, 2).expect("path");
        assert!(
            p.ends_with("data/chunk-001/episode_000002.parquet"),
            "{p:?}"
        );
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        let info = info();
        let layout = info.legacy.expect("v2.1");
        for (text, want) in [
            ("{\"episode_index\": 0}\n", "line 1: 'length'"),
            (
                "{\"episode_index\": 0, \"length\": 2}\n[1]\n",
                "line 2: not a JSON object",
            ),
            (
                "{\"episode_index\": \"0\", \"length\": 2}\n",
                "'episode_index'",
            ),
            ("{\"episode_index\": -1, \"length\": 2}\n", "negative"),
            ("nope\n", "line 1: not valid JSON"),
            ("\n", "no episodes"),
        ] {
            let dir = root_with(&[("meta/episodes.jsonl", text)]);
            let e = read_episode_rows(dir.path(), &info, layout).expect_err(text);
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
        let dir = root_with(&[]);
        let e = read_episode_rows(dir.path(), &info, layout).expect_err("missing");
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
        let dir = root_with(&[(
            "meta/episodes.jsonl",
            "{\"episode_index\": 0, \"length\": 9223372036854775807}\n{\"episode_index\": 1, \"length\": 1}\n{\"episode_index\": 2, \"length\": 1}\n",
        )]);
        let e = read_episode_rows(dir.path(), &info, layout).expect_err("overflow");
        assert!(e.to_string().contains("2^63"), "{e}");
    }

    #[test]
    fn tasks() {
        let info = info();
        let dir = root_with(&[(
            "meta/tasks.jsonl",
            "{\"task_index\": 1, \"task\": \"b\"}\n{\"task_index\": 0, \"task\": \"a\"}\n",
        )]);
        let t = read_tasks(dir.path(), &info).expect("tasks");
        assert_eq!(t.get(&0).map(String::as_str), Some("a"));
        assert_eq!(t.get(&1).map(String::as_str), Some("b"));
        let dir = root_with(&[(
            "meta/tasks.jsonl",
            "{\"task_index\": 0, \"task\": \"a\"}\n{\"task_index\": 0, \"task\": \"b\"}\n",
        )]);
        assert!(read_tasks(dir.path(), &info)
            .expect_err("twice")
            .to_string()
            .contains("twice"));
        let dir = root_with(&[("meta/tasks.jsonl", "{\"task_index\": 0}\n")]);
        assert!(read_tasks(dir.path(), &info).is_err());
    }
}
