//! The checks of a root's tables: `meta/episodes` against `info.json` and itself, `meta/stats.json`,
//! and each data file's rows.

use std::collections::HashSet;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use super::{Sink, ValidateOptions};
use crate::error::Location;
use crate::meta::{self, Episode, FeatureKind, Info};
use crate::rules::{self};
use crate::table::DataFile;

/// `info.json` totals, episode indices and ranges of `meta/episodes`.
pub(super) fn check_episode_table(
    root: &Path,
    info: &Info,
    episodes: &[Episode],
    tasks: Option<&IndexMap<i64, String>>,
    sink: &Sink,
) {
    let info_at = || Location::file(root.join("meta/info.json"));
    let eps_at = |e: i64| Location::file(info.episodes_path(root)).with_episode(e);
    if info.total_episodes != episodes.len() as i64 {
        sink.error(
            "totals",
            info_at(),
            format!(
                "total_episodes is {} but the episode table lists {} episodes",
                info.total_episodes,
                episodes.len()
            ),
        );
    }
    let mut frames: i64 = 0;
    let mut overflow = false;
    for e in episodes {
        match frames.checked_add(e.length) {
            Some(f) => frames = f,
            None => overflow = true,
        }
    }
    if overflow || info.total_frames != frames {
        sink.error(
            "totals",
            info_at(),
            format!(
                "total_frames is {} but the episodes' lengths add up to {}",
                info.total_frames,
                if overflow {
                    "more than 2^63".into()
                } else {
                    frames.to_string()
                }
            ),
        );
    }
    if let (Some(t), Some(n)) = (tasks, info.raw.get("total_tasks").and_then(Value::as_i64)) {
        if n != t.len() as i64 {
            sink.error(
                "totals",
                info_at(),
                format!(
                    "total_tasks is {n} but {} lists {} tasks",
                    if info.legacy.is_some() {
                        "meta/tasks.jsonl"
                    } else {
                        "meta/tasks.parquet"
                    },
                    t.len()
                ),
            );
        }
    }
    let mut seen = HashSet::new();
    for (i, e) in episodes.iter().enumerate() {
        if !seen.insert(e.episode_index) {
            sink.error(
                "episode_index",
                eps_at(e.episode_index),
                "episode index listed twice in the episode table",
            );
        } else if e.episode_index != i as i64 {
            sink.warning(
                "episode_index",
                eps_at(e.episode_index),
                format!(
                    "episode indices are not 0..{}: position {i} holds episode {}",
                    episodes.len(),
                    e.episode_index
                ),
            );
        }
    }
    let mut ranges: Vec<&Episode> = episodes.iter().collect();
    ranges.sort_by_key(|e| e.dataset_from_index);
    for w in ranges.windows(2) {
        if let [a, b] = w {
            if b.dataset_from_index < a.dataset_to_index {
                sink.error(
                    "episode_range",
                    eps_at(b.episode_index),
                    format!(
                        "rows {}..{} overlap those of episode {} ({}..{})",
                        b.dataset_from_index,
                        b.dataset_to_index,
                        a.episode_index,
                        a.dataset_from_index,
                        a.dataset_to_index
                    ),
                );
            } else if b.dataset_from_index > a.dataset_to_index {
                sink.warning(
                    "episode_range",
                    eps_at(b.episode_index),
                    format!(
                        "dataset indices {}..{} are in no episode (between episodes {} and {})",
                        a.dataset_to_index, b.dataset_from_index, a.episode_index, b.episode_index
                    ),
                );
            }
        }
    }
}

/// The shape of a JSON value: nested lists' lengths (`[]` for a number).
fn json_shape(v: &Value) -> Option<Vec<usize>> {
    match v {
        Value::Array(items) => {
            let inner: Option<Vec<Vec<usize>>> = items.iter().map(json_shape).collect();
            let inner = inner?;
            let first = inner.first().cloned().unwrap_or_default();
            if inner.iter().any(|s| *s != first) {
                return None; // ragged
            }
            let mut s = vec![items.len()];
            s.extend(first);
            Some(s)
        }
        // (LeRobot writes booleans' min and max as booleans, NaN as null)
        Value::Number(_) | Value::Null | Value::Bool(_) => Some(vec![]),
        _ => None,
    }
}

/// `meta/stats.json` (v2.1: each episode's statistics in `meta/episodes_stats.jsonl`): every
/// statistic's shape against its feature. For v2.1, returns the episode of each line (with
/// its line number), for [`check_stats_coverage`].
pub(super) fn check_stats(root: &Path, info: &Info, sink: &Sink) -> Option<Vec<(i64, usize)>> {
    if info.legacy.is_some_and(|l| l.episodes_stats) {
        return check_episodes_stats(root, info, sink);
    }
    check_stats_json(root, info, sink);
    None
}

/// A v2.1 root's `meta/episodes_stats.jsonl` against the episode table: an episode without a
/// line is a warning (LeRobot 0.3 aggregates what there is, and its converter to v3.0 fails),
/// as is an episode with two (LeRobot 0.3 keeps the last, as roboframes does) or a line of an
/// episode the table does not list.
pub(super) fn check_stats_coverage(
    root: &Path,
    lines: &[(i64, usize)],
    episodes: &[Episode],
    sink: &Sink,
) {
    let path = root.join("meta/episodes_stats.jsonl");
    let listed: HashSet<i64> = episodes.iter().map(|e| e.episode_index).collect();
    let mut first_line: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    for &(ep, line) in lines {
        let at = || Location::file(&path).with_episode(ep);
        if let Some(before) = first_line.insert(ep, line) {
            sink.warning(
                "episodes_stats",
                at(),
                format!(
                    "line {line}: episode {ep} has statistics on line {before} too; the last line is \
                     used, as LeRobot 0.3 does"
                ),
            );
        } else if !listed.contains(&ep) {
            sink.warning(
                "episodes_stats",
                at(),
                format!(
                    "line {line}: statistics of an episode that meta/episodes.jsonl does not list"
                ),
            );
        }
    }
    let mut without: Vec<i64> = listed
        .into_iter()
        .filter(|e| !first_line.contains_key(e))
        .collect();
    without.sort_unstable();
    if let Some(&first) = without.first() {
        let shown: Vec<String> = without.iter().take(10).map(|e| e.to_string()).collect();
        sink.warning(
            "episodes_stats",
            Location::file(&path).with_episode(first),
            format!(
                "{} episode(s) have no statistics ({}{}): the dataset's statistics leave them out, \
                 and LeRobot's converter to v3.0 needs them",
                without.len(),
                shown.join(", "),
                if without.len() > 10 { ", ..." } else { "" }
            ),
        );
    }
}

fn check_stats_json(root: &Path, info: &Info, sink: &Sink) {
    let path = root.join("meta/stats.json");
    let text = match meta::read_stats(root) {
        Ok(Some(t)) => t,
        Ok(None) => {
            sink.warning(
                "stats",
                Location::file(&path),
                "no meta/stats.json: normalisation needs recomputed statistics",
            );
            return;
        }
        Err(e) => return sink.failed("stats", &e, Location::file(&path)),
    };
    let doc: Value = match serde_json::from_str(&lenient(&text)) {
        Ok(v) => v,
        Err(e) => {
            return sink.error(
                "stats",
                Location::file(&path),
                format!("not valid JSON: {e}"),
            )
        }
    };
    let Some(doc) = doc.as_object() else {
        return sink.error("stats", Location::file(&path), "top level is not an object");
    };
    check_stats_doc(doc, &path, "", info, sink, true);
}

/// Python's json writes NaN and Infinity, which are not JSON: read them as null.
fn lenient(text: &str) -> String {
    text.replace("-Infinity", "null")
        .replace("Infinity", "null")
        .replace("NaN", "null")
}

/// A v2.1 root's `meta/episodes_stats.jsonl`: a line per episode, each episode's statistics
/// checked as `stats.json`'s are (LeRobot 0.3 aggregates them into the dataset's at load).
fn check_episodes_stats(root: &Path, info: &Info, sink: &Sink) -> Option<Vec<(i64, usize)>> {
    let path = root.join("meta/episodes_stats.jsonl");
    let text = match crate::store::exists(&path).and_then(|there| {
        there
            .then(|| crate::store::read(&path, meta::MAX_JSONL_BYTES))
            .transpose()
    }) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                sink.error(
                    "stats",
                    Location::file(&path),
                    format!("not UTF-8 text: {e}"),
                );
                return None;
            }
        },
        Ok(None) => {
            sink.warning(
                "stats",
                Location::file(&path),
                "no meta/episodes_stats.jsonl: normalisation needs recomputed statistics",
            );
            return None;
        }
        Err(e) => {
            sink.failed("stats", &e, Location::file(&path));
            return None;
        }
    };
    let mut lines = Vec::new();
    let mut first = true;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let what = format!("line {}: ", n + 1);
        let doc: Value = match serde_json::from_str(&lenient(line)) {
            Ok(v) => v,
            Err(e) => {
                sink.error(
                    "stats",
                    Location::file(&path),
                    format!("{what}not valid JSON: {e}"),
                );
                continue;
            }
        };
        let episode = doc.get("episode_index").and_then(Value::as_i64);
        let at = || match episode {
            Some(e) => Location::file(&path).with_episode(e),
            None => Location::file(&path),
        };
        let Some(stats) = doc.get("stats").and_then(Value::as_object) else {
            sink.error("stats", at(), format!("{what}no 'stats' object"));
            continue;
        };
        match episode {
            Some(e) => lines.push((e, n + 1)),
            None => sink.error("stats", at(), format!("{what}no integer 'episode_index'")),
        }
        // (a feature without statistics is said once, not per episode)
        check_stats_doc(stats, &path, &what, info, sink, first);
        first = false;
    }
    Some(lines)
}

/// One statistics document (`{feature: {stat: values}}`) of `path`; `what` prefixes messages
/// (a line of a `.jsonl`); `missing`: also warn of features without statistics.
fn check_stats_doc(
    doc: &serde_json::Map<String, Value>,
    path: &Path,
    what: &str,
    info: &Info,
    sink: &Sink,
    missing: bool,
) {
    let at = |key: &str| Location::file(path).with_key(key);
    for (key, stats) in doc {
        let Some(f) = info.features.get(key) else {
            sink.warning(
                "stats",
                at(key),
                format!("{what}statistics of a key that is not a feature"),
            );
            continue;
        };
        let Some(stats) = stats.as_object() else {
            sink.error(
                "stats",
                at(key),
                format!("{what}statistics are not an object"),
            );
            continue;
        };
        // LeRobot's shapes: per channel for cameras; per element of the last axis otherwise
        // (its statistics of a feature of shape (2, 3) have shape (3,))
        let expected: Vec<usize> = match f.kind {
            FeatureKind::Video | FeatureKind::Image if f.depth.is_some() => vec![1, 1, 1],
            FeatureKind::Video | FeatureKind::Image => vec![3, 1, 1],
            _ => vec![f.shape.last().copied().unwrap_or(1)],
        };
        for (stat, v) in stats {
            // LeRobot's statistics; others (a tool's own) are not read by anyone here
            let quantile = stat.len() == 3
                && stat.starts_with('q')
                && stat.chars().skip(1).all(|c| c.is_ascii_digit());
            if !(quantile || matches!(stat.as_str(), "min" | "max" | "mean" | "std" | "count")) {
                sink.warning(
                    "stats",
                    at(key),
                    format!("{what}unknown statistic '{stat}' (not one of LeRobot's): not checked"),
                );
                continue;
            }
            let want = if stat == "count" {
                vec![1]
            } else {
                expected.clone()
            };
            match json_shape(v) {
                Some(s) if s == want => {}
                Some(s) => sink.error(
                    "stats",
                    at(key),
                    format!("{what}'{stat}' has shape {s:?}, the feature needs {want:?}"),
                ),
                None => sink.error(
                    "stats",
                    at(key),
                    format!("{what}'{stat}' is not a (rectangular) list of numbers"),
                ),
            }
        }
    }
    for (key, f) in &info.features {
        let numeric = matches!(f.kind, FeatureKind::Numeric(_));
        let bookkeeping = matches!(
            key.as_str(),
            "index" | "frame_index" | "episode_index" | "task_index" | "timestamp"
        );
        if missing && numeric && !bookkeeping && !doc.contains_key(key) {
            sink.warning("stats", at(key), "feature has no statistics");
        }
    }
}

/// A v2.x episode file's `index` column against the episode's place in the dataset (the
/// lengths of the episodes before it), which is where LeRobot 0.3 reads its rows: a warning
/// when they differ (the items are read by place, their `index` values as stored, as LeRobot
/// 0.3 does; a v3.0 conversion keeps the stored values).
fn check_legacy_index(df: &DataFile, place: i64, eps: &[&Episode], sink: &Sink) {
    let Some(e) = eps.first() else { return };
    let first = df.int_scalar("index", 0);
    let contiguous = (0..df.rows).all(|r| {
        let want = i64::try_from(r).ok().and_then(|r| place.checked_add(r));
        df.int_scalar("index", r) == want
    });
    if !contiguous {
        sink.warning(
            "index",
            Location::file(&df.path)
                .with_episode(e.episode_index)
                .with_key("index"),
            format!(
                "'index' starts at {} and should run from {place} (the lengths of the episodes \
                 before this one), one per row; the rows are read by their place, as LeRobot 0.3 \
                 does, and 'index' is returned as stored",
                first.map_or("no value".into(), |v| v.to_string())
            ),
        );
    }
}

/// A local v2.x root's parquet files under `data/` that no episode of `meta/episodes.jsonl`
/// names: LeRobot 0.3 reads every file there (`load_dataset(data_dir=...)`), so its rows would
/// shift every later episode's there; roboframes reads the listed episodes only. A warning each.
pub(super) fn check_unlisted_data_files(
    root: &Path,
    info: &Info,
    episodes: &[Episode],
    sink: &Sink,
) {
    if info.legacy.is_none() || crate::store::is_url(&root.to_string_lossy()) {
        return;
    }
    let listed: HashSet<std::path::PathBuf> = episodes
        .iter()
        .filter_map(|e| {
            meta::data_file_path(root, info, e.data_chunk_index, e.data_file_index).ok()
        })
        .collect();
    let Ok(files) = crate::parquet_io::list_parquet_files(&root.join("data")) else {
        return; // (no data folder: each episode's missing file is reported)
    };
    for f in files.into_iter().filter(|f| !listed.contains(f)) {
        sink.warning(
            "data_file",
            Location::file(&f),
            "a data file no episode of meta/episodes.jsonl names: LeRobot 0.3 reads every file \
             under data/ (so its rows shift every later episode's there); roboframes reads the \
             listed episodes only",
        );
    }
}

/// One data file: present and readable, and for each of its episodes: rows present, episode
/// and frame indices, timestamps on the `1/fps` grid, task indices; and, when `all_sound` (no
/// bad row of `meta/episodes` places itself here), no rows that no episode claims.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_data_file(
    root: &Path,
    info: &Info,
    file: (i64, i64),
    eps: &[&Episode],
    all_sound: bool,
    tasks: Option<&IndexMap<i64, String>>,
    opts: &ValidateOptions,
    sink: &Sink,
) {
    let path = match meta::data_file_path(root, info, file.0, file.1) {
        Ok(p) => p,
        Err(e) => return sink.failed("data_file", &e, Location::file(root)),
    };
    let names: Vec<String> = eps.iter().map(|e| e.episode_index.to_string()).collect();
    match crate::store::exists(&path) {
        Ok(true) => {}
        Ok(false) => {
            return sink.error(
                "data_file",
                Location::file(&path),
                format!("data file of episode(s) {} is missing", names.join(", ")),
            )
        }
        Err(e) => return sink.failed("data_file", &e, Location::file(&path)),
    }
    if let Err(e) = crate::store::source(&path) {
        return sink.failed("data_file", &e, Location::file(&path));
    }
    let feats: Vec<_> = info
        .features
        .values()
        .filter(|f| f.kind != FeatureKind::Video)
        .collect();
    // (a v2.x file is one episode's, at its place in the dataset: see `DataFile::load_at`)
    let legacy_place = match (info.legacy, eps) {
        (Some(_), [e]) => Some(e.dataset_from_index),
        _ => None,
    };
    let loaded = match legacy_place {
        Some(place) => DataFile::load_at(&path, &feats, place),
        None => DataFile::load(&path, &feats),
    };
    let df = match loaded {
        Ok(d) => d,
        Err(e) => return sink.failed("data_file", &e, Location::file(&path)),
    };
    if let Some(place) = legacy_place {
        check_legacy_index(&df, place, eps, sink);
    }
    let fps = info.fps;
    let check_ep = rules::checks_episode_index(info);
    for e in eps {
        let at = |key: &str| {
            Location::file(&path)
                .with_episode(e.episode_index)
                .with_key(key)
        };
        let broken = rules::episode_rows(&df, e, check_ep);
        // (timestamps out of order are off the grid too: one problem, one finding)
        let disordered = broken.iter().any(|b| b.check == "timestamps");
        let rows_missing = broken.iter().any(|b| b.check == "episode_rows");
        for b in broken {
            sink.broken(b);
        }
        let (Ok(r0), Ok(r1)) = (
            df.row_of(e.dataset_from_index),
            df.row_of(e.dataset_to_index.saturating_sub(1)),
        ) else {
            continue;
        };
        if rows_missing || r1 < r0 {
            continue;
        }
        let mut bad_fi: Option<(usize, Option<i64>)> = None;
        let mut bad_fi_count = 0usize;
        let mut bad_ts: Option<(usize, String)> = None;
        let mut bad_ts_count = 0usize;
        let mut bad_task: HashSet<i64> = HashSet::new();
        for (i, row) in (r0..=r1).enumerate() {
            let fi = df.int_scalar("frame_index", row);
            if fi != Some(i as i64) {
                bad_fi_count += 1;
                bad_fi.get_or_insert((i, fi));
            }
            // frame i of an episode is at i / fps (LeRobot's recorder writes exactly that); the
            // reader looks frames up at the row's timestamp, so a shifted or drifting one picks
            // another frame or none
            match df.timestamp(row) {
                None => {
                    bad_ts_count += 1;
                    bad_ts.get_or_insert((i, "no timestamp".into()));
                }
                Some(ts) => {
                    let want = i as f64 / fps;
                    let off = (f64::from(ts) - want).abs();
                    let on_grid = off <= opts.tolerance_s; // (NaN: off the grid)
                    if !on_grid {
                        bad_ts_count += 1;
                        bad_ts.get_or_insert((
                            i,
                            format!(
                                "timestamp {ts} where frame {i} is at {want:.6} s ({off:.6} s away; tolerance {} s)",
                                opts.tolerance_s
                            ),
                        ));
                    }
                }
            }
            if let (Some(t), Some(ti)) = (tasks, df.int_scalar("task_index", row)) {
                if !t.contains_key(&ti) {
                    bad_task.insert(ti);
                }
            }
        }
        if let Some((i, got)) = bad_fi {
            sink.error(
                "frame_index",
                at("frame_index"),
                format!(
                    "frame_index is not 0..{}: {bad_fi_count} row(s) differ, first at frame {i} ({})",
                    e.length,
                    got.map_or("missing".into(), |g| format!("holds {g}"))
                ),
            );
        }
        if let Some((i, msg)) = bad_ts.filter(|_| !disordered) {
            sink.error(
                "timestamps",
                at("timestamp"),
                format!(
                    "{bad_ts_count} timestamp(s) off the 1/fps grid, first at frame {i}: {msg}"
                ),
            );
        }
        if !bad_task.is_empty() {
            let mut v: Vec<i64> = bad_task.into_iter().collect();
            v.sort_unstable();
            sink.error(
                "task_index",
                at("task_index"),
                format!(
                    "task_index {v:?} name(s) no task of {}",
                    if info.legacy.is_some() {
                        "meta/tasks.jsonl"
                    } else {
                        "meta/tasks.parquet"
                    }
                ),
            );
        }
    }
    let claimed = eps.iter().fold(0u64, |acc, e| {
        acc.saturating_add(u64::try_from(e.length).unwrap_or(0))
    });
    if let Some(b) = rules::unclaimed_rows(&df, claimed).filter(|_| all_sound) {
        sink.broken(b);
    }
}
