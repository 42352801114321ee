//! `validate`: every check of a dataset's soundness in one parallel pass, each problem a
//! [`Finding`] naming file, episode and key. Nothing stops at the first problem: a check that
//! cannot run (its input is already reported broken) is skipped, the others run.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::Value;

use crate::dataset::{Dataset, OpenOptions};
use crate::error::{Error, Location};
use crate::meta::{self, Episode, FeatureKind, Info};
use crate::outputs::frame_dims;
pub use crate::progress::Progress;
use crate::rules;
use crate::table::DataFile;
use crate::video::FrameIndex;

/// How bad a finding is (the rules' own severity).
pub use crate::rules::Severity;

/// One problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    /// A short name of the check (`totals`, `frame_index`, `video_span`, ...).
    pub check: &'static str,
    pub at: Location,
    pub message: String,
}

/// How much video `validate` decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeCheck {
    /// Metadata, tables and video indexes only.
    None,
    /// Also the first and last frame of every episode in every camera.
    Ends,
    /// Every frame.
    All,
}

impl DecodeCheck {
    /// Parses `none`, `ends` or `all`.
    pub fn parse(s: &str) -> Option<DecodeCheck> {
        match s {
            "none" => Some(DecodeCheck::None),
            "ends" => Some(DecodeCheck::Ends),
            "all" => Some(DecodeCheck::All),
            _ => None,
        }
    }
}

/// Options of [`validate`].
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    pub decode: DecodeCheck,
    /// Tolerance of timestamps against the `1/fps` grid and of frame times.
    pub tolerance_s: f64,
    /// Decoding threads (None: the number of cores).
    pub decode_threads: Option<usize>,
}

/// What [`validate`] found, and how much it looked at.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub episodes: usize,
    pub frames: u64,
    pub video_files: usize,
    pub data_files: usize,
    pub frames_decoded: u64,
    /// False when the run was cancelled before every check ran.
    pub complete: bool,
}

/// Collects findings from several threads.
#[derive(Default)]
struct Sink(Mutex<Vec<Finding>>);

impl Sink {
    fn push(&self, severity: Severity, check: &'static str, at: Location, message: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Finding {
                severity,
                check,
                at,
                message,
            });
    }
    /// The episodes with an error of `check` so far.
    fn episodes_with(&self, check: &str) -> HashSet<i64> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|f| f.check == check && f.severity == Severity::Error)
            .filter_map(|f| f.at.episode)
            .collect()
    }
    /// A broken consistency rule (`rules`) as a finding.
    fn broken(&self, b: rules::Broken) {
        self.push(b.severity, b.check, b.at, b.message);
    }
    fn error(&self, check: &'static str, at: Location, message: impl Into<String>) {
        self.push(Severity::Error, check, at, message.into());
    }
    fn warning(&self, check: &'static str, at: Location, message: impl Into<String>) {
        self.push(Severity::Warning, check, at, message.into());
    }
    /// A core error as a finding: its own location (shown once, in the finding's) and its
    /// message.
    fn failed(&self, check: &'static str, e: &Error, fallback: Location) {
        let at = e.location().cloned().unwrap_or(fallback);
        self.error(check, at, e.detail());
    }
}

/// Checks the dataset at `root`; see the module documentation.
pub fn validate(root: &Path, opts: &ValidateOptions, progress: &Progress) -> Report {
    let sink = Sink::default();
    let mut report = Report::default();
    let info_path = root.join("meta/info.json");
    if !crate::store::is_url(&root.to_string_lossy()) {
        if let Err(e) = crate::fs::local_root(root) {
            sink.failed("root", &e, Location::file(root));
            return finish(report, sink, true);
        }
    }
    let info = match meta::read_info(root) {
        Ok(i) => i,
        Err(e) => {
            sink.failed("info.json", &e, Location::file(&info_path));
            return finish(report, sink, true);
        }
    };
    let tasks = match meta::read_tasks(root) {
        Ok(t) => Some(t),
        Err(e) => {
            sink.failed("tasks", &e, Location::file(root.join("meta/tasks.parquet")));
            None
        }
    };
    check_stats(root, &info, &sink);
    let video_keys = info.video_keys();
    let rows = match meta::read_episode_rows(root, &video_keys) {
        Ok(e) => e,
        Err(e) => {
            sink.failed("episodes", &e, Location::file(root.join("meta/episodes")));
            return finish(report, sink, true);
        }
    };
    report.episodes = rows.len();
    report.frames = rows
        .iter()
        .fold(0u64, |n, (e, _)| n.saturating_add(e.length.max(0) as u64));
    let all: Vec<Episode> = rows.iter().map(|(e, _)| e.clone()).collect();
    check_episode_table(root, &info, &all, tasks.as_ref(), &sink);
    // each bad row is reported; the file checks below look only at the sound ones
    let mut episodes: Vec<Episode> = Vec::with_capacity(rows.len());
    for (e, path) in rows {
        match meta::check_episode(&e, &path, &video_keys) {
            Ok(()) => episodes.push(e),
            Err(err) => sink.failed("episode_range", &err, Location::file(&path)),
        }
    }

    let by_data = group(&episodes, |e| Some((e.data_chunk_index, e.data_file_index)));
    report.data_files = by_data.len();
    let mut by_video: Vec<(usize, (i64, i64), Vec<&Episode>)> = Vec::new();
    for (vk, _) in video_keys.iter().enumerate() {
        for (file, eps) in group(&episodes, |e| {
            e.videos.get(vk).map(|v| (v.chunk_index, v.file_index))
        }) {
            by_video.push((vk, file, eps));
        }
    }
    report.video_files = by_video.len();
    progress.add_total(by_data.len() + by_video.len());
    let decoding = opts.decode != DecodeCheck::None;
    if decoding {
        progress.add_total(episodes.len());
    }

    by_data.par_iter().for_each(|(file, eps)| {
        if !progress.cancelled() {
            check_data_file(root, &info, *file, eps, tasks.as_ref(), opts, &sink);
        }
        progress.step();
    });
    by_video.par_iter().for_each(|(vk, file, eps)| {
        if let (Some(key), false) = (video_keys.get(*vk), progress.cancelled()) {
            check_video_file(root, &info, key, *vk, *file, eps, opts, &sink);
        }
        progress.step();
    });
    if decoding && !progress.cancelled() {
        report.frames_decoded = decode_checks(root, &episodes, opts, &sink, progress);
    }
    let complete = !progress.cancelled();
    finish(report, sink, complete)
}

fn finish(mut report: Report, sink: Sink, complete: bool) -> Report {
    let mut findings = sink.0.into_inner().unwrap_or_else(|e| e.into_inner());
    // errors first, then by file, episode and key (parallel checks finish in any order)
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.severity != Severity::Error,
                f.at.path.clone(),
                f.at.episode,
                f.at.key.clone(),
                f.check,
            )
        };
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    report.findings = findings;
    report.complete = complete;
    report
}

/// Episodes grouped by a file key, in order of the key.
fn group(
    episodes: &[Episode],
    key: impl Fn(&Episode) -> Option<(i64, i64)>,
) -> Vec<((i64, i64), Vec<&Episode>)> {
    let mut m: BTreeMap<(i64, i64), Vec<&Episode>> = BTreeMap::new();
    for e in episodes {
        if let Some(k) = key(e) {
            m.entry(k).or_default().push(e);
        }
    }
    m.into_iter().collect()
}

/// `info.json` totals, episode indices and ranges of `meta/episodes`.
fn check_episode_table(
    root: &Path,
    info: &Info,
    episodes: &[Episode],
    tasks: Option<&IndexMap<i64, String>>,
    sink: &Sink,
) {
    let info_at = || Location::file(root.join("meta/info.json"));
    let eps_at = |e: i64| Location::file(root.join("meta/episodes")).with_episode(e);
    if info.total_episodes != episodes.len() as i64 {
        sink.error(
            "totals",
            info_at(),
            format!(
                "total_episodes is {} but meta/episodes lists {} episodes",
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
                    "total_tasks is {n} but meta/tasks.parquet lists {} tasks",
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
                "episode index listed twice in meta/episodes",
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
                        "rows {}..{} belong to no episode (between episodes {} and {})",
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

/// `meta/stats.json`: every statistic's shape against its feature.
fn check_stats(root: &Path, info: &Info, sink: &Sink) {
    let path = root.join("meta/stats.json");
    let at = |key: &str| Location::file(&path).with_key(key);
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
    // Python's json writes NaN and Infinity, which are not JSON: read them as null
    let lenient = text
        .replace("-Infinity", "null")
        .replace("Infinity", "null")
        .replace("NaN", "null");
    let doc: Value = match serde_json::from_str(&lenient) {
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
    for (key, stats) in doc {
        let Some(f) = info.features.get(key) else {
            sink.warning(
                "stats",
                at(key),
                "statistics of a key that is not a feature",
            );
            continue;
        };
        let Some(stats) = stats.as_object() else {
            sink.error("stats", at(key), "statistics are not an object");
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
                    format!("unknown statistic '{stat}' (not one of LeRobot's): not checked"),
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
                    format!("'{stat}' has shape {s:?}, the feature needs {want:?}"),
                ),
                None => sink.error(
                    "stats",
                    at(key),
                    format!("'{stat}' is not a (rectangular) list of numbers"),
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
        if numeric && !bookkeeping && !doc.contains_key(key) {
            sink.warning("stats", at(key), "feature has no statistics");
        }
    }
}

/// One data file: present and readable, and for each of its episodes: rows present, episode
/// and frame indices, timestamps on the `1/fps` grid, task indices.
fn check_data_file(
    root: &Path,
    info: &Info,
    file: (i64, i64),
    eps: &[&Episode],
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
    let df = match DataFile::load(&path, &feats) {
        Ok(d) => d,
        Err(e) => return sink.failed("data_file", &e, Location::file(&path)),
    };
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
                format!("task_index {v:?} name(s) no task of meta/tasks.parquet"),
            );
        }
    }
    let claimed = eps.iter().fold(0u64, |acc, e| {
        acc.saturating_add(u64::try_from(e.length).unwrap_or(0))
    });
    if let Some(b) = rules::unclaimed_rows(&df, claimed) {
        sink.broken(b);
    }
}

/// One video file of one camera: present, indexable, codec and frame size as `info.json`
/// says, and every episode's span holding one frame per row at the row's time.
#[allow(clippy::too_many_arguments)]
fn check_video_file(
    root: &Path,
    info: &Info,
    key: &str,
    vk: usize,
    file: (i64, i64),
    eps: &[&Episode],
    opts: &ValidateOptions,
    sink: &Sink,
) {
    let path = match meta::video_file_path(root, info, key, file.0, file.1) {
        Ok(p) => p,
        Err(e) => {
            return sink.failed(
                "video_file",
                &e,
                Location::file(root.join("meta/info.json")).with_key(key),
            )
        }
    };
    let at = |ep: Option<i64>| {
        let l = Location::file(&path).with_key(key);
        match ep {
            Some(e) => l.with_episode(e),
            None => l,
        }
    };
    let index = match FrameIndex::build(&path) {
        Ok(i) => i,
        Err(e) => return sink.failed("video_file", &e.within(None, Some(key)), at(None)),
    };
    if let Some(f) = info.features.get(key) {
        let (h, w, _) = frame_dims(f);
        if (index.width as usize, index.height as usize) != (w, h) {
            sink.error(
                "video_size",
                at(None),
                format!(
                    "frames are {}x{}, info.json says {w}x{h} (width x height)",
                    index.width, index.height
                ),
            );
        }
        let declared = info
            .raw
            .pointer(&format!(
                "/features/{}/info/video.codec",
                key.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_str);
        if let Some(c) = declared {
            if !codec_matches(c, &index.codec) {
                sink.warning(
                    "video_codec",
                    at(None),
                    format!("the stream is {}, info.json says '{c}'", index.codec),
                );
            }
        }
    }
    let half = 0.5 / info.fps;
    // episodes sharing the file must not share frames: each would show the other's
    let mut spans: Vec<(f64, f64, i64)> = eps
        .iter()
        .filter_map(|e| {
            e.videos
                .get(vk)
                .map(|v| (v.from_timestamp, v.to_timestamp, e.episode_index))
        })
        .collect();
    spans.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    for w in spans.windows(2) {
        if let [(_, a_to, a_ep), (b_from, _, b_ep)] = w {
            if *b_from < a_to - half {
                sink.error(
                    "video_span",
                    at(Some(*b_ep)),
                    format!(
                        "its span from {b_from:.6} s overlaps episode {a_ep}'s (to {a_to:.6} s) in this file"
                    ),
                );
            }
        }
    }
    for e in eps {
        let Some(v) = e.videos.get(vk) else {
            continue;
        };
        let (lo, hi) = meta::episode_span(e, v, info.fps);
        if let Some(b) = rules::video_span(&path, key, e, v, index.count_in(lo, hi)) {
            let short = b.severity == Severity::Error;
            sink.broken(b);
            if short {
                continue;
            }
        }
        // each row's time (frame i at i/fps) has a frame within tolerance
        let mut worst: Option<(i64, f64)> = None;
        let mut off = 0usize;
        for i in 0..e.length.max(0) {
            let t = v.from_timestamp + i as f64 / info.fps;
            let d = index
                .nearest(t)
                .map_or(f64::INFINITY, |(_, ft)| (ft - t).abs());
            let near = d < opts.tolerance_s; // (NaN: not near)
            if !near {
                off += 1;
                if worst.is_none_or(|(_, w)| d > w) {
                    worst = Some((i, d));
                }
            }
        }
        if let Some((i, d)) = worst {
            sink.error(
                "video_times",
                at(Some(e.episode_index)),
                format!(
                    "{off} frame(s) are not at their row's time within tolerance_s={}; worst: frame {i}, {d:.6} s away",
                    opts.tolerance_s
                ),
            );
        }
    }
}

/// LeRobot writes PyAV's codec names (`av1`, `h264`, `hevc`, `libsvtav1` in old datasets);
/// FFmpeg's codec ids say the same with other spellings.
fn codec_matches(declared: &str, stream: &str) -> bool {
    let norm = |s: &str| -> String {
        match s.to_ascii_lowercase().as_str() {
            "libsvtav1" | "libaom-av1" | "libdav1d" | "av1" => "av1".into(),
            "h265" | "hevc" | "libx265" => "hevc".into(),
            "h264" | "libx264" | "avc" => "h264".into(),
            other => other.into(),
        }
    };
    norm(declared) == norm(stream)
}

/// The largest frame the decode checks allocate for (a frame size from a broken `info.json`
/// must not abort the process): 128 MiB, an 8K RGB frame (95 MiB) with room to spare.
const MAX_FRAME_BYTES: usize = 128 << 20;

/// Decodes the first and last (or every) frame of every episode in every camera (videos and
/// embedded images), each at its row's timestamp as the reader does; returns the frames
/// decoded. Episodes whose rows or files were reported broken above are decoded all the same:
/// a decode failure is a finding of its own, except a frame missed at a timestamp the
/// `timestamps` check already reported off the grid (one problem, one finding).
fn decode_checks(
    root: &Path,
    episodes: &[Episode],
    opts: &ValidateOptions,
    sink: &Sink,
    progress: &Progress,
) -> u64 {
    let ds = match Dataset::open(
        root,
        OpenOptions {
            tolerance_s: opts.tolerance_s,
            decode_threads: opts.decode_threads,
            // what FFmpeg would conceal is a finding here
            strict_decode: true,
            ..Default::default()
        },
    ) {
        Ok(d) => d,
        Err(e) => {
            // (the checks above name the cause)
            sink.failed("decode", &e, Location::file(root));
            return 0;
        }
    };
    let cameras: Vec<(String, usize)> = ds
        .outputs()
        .iter()
        .filter(|o| o.is_frame())
        .map(|o| (o.key.clone(), o.item_bytes()))
        .collect();
    let off_grid = sink.episodes_with("timestamps");
    let decoded = AtomicU64::new(0);
    episodes.par_iter().for_each(|e| {
        if progress.cancelled() {
            return;
        }
        let (Some(start), Ok(len)) = (
            ds.item_of_episode(e.episode_index),
            usize::try_from(e.length),
        ) else {
            progress.step();
            return;
        };
        // the frames to decode: both ends, or every frame in chunks (never all indices at
        // once: the length comes from disk)
        let last = len.saturating_sub(1);
        for (key, bytes) in &cameras {
            if *bytes > MAX_FRAME_BYTES {
                sink.error(
                    "decode",
                    Location::file(root.join("meta/info.json")).with_key(key.clone()),
                    format!("frames of {bytes} bytes are beyond what roboframes decodes"),
                );
                continue;
            }
            // at most 32 frames and 64 MiB per chunk (one chunk per decoding thread at a time)
            let per_chunk = ((64usize << 20) / (*bytes).max(1)).clamp(1, 32);
            let (first, end, step) = match opts.decode {
                DecodeCheck::All => (0, len, per_chunk),
                _ => (0, 1, 1),
            };
            for a in (first..end).step_by(step) {
                let chunk: Vec<i64> = match opts.decode {
                    DecodeCheck::All => (a..(a + step).min(len))
                        .map(|i| (start + i) as i64)
                        .collect(),
                    _ if last > 0 => vec![start as i64, (start + last) as i64],
                    _ => vec![start as i64],
                };
                match ds.fill_one(key, &chunk) {
                    Ok(_) => {
                        decoded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                    Err(Error::FrameTimestamp { .. }) if off_grid.contains(&e.episode_index) => {
                        break;
                    }
                    Err(err) => {
                        let err = err.within(Some(e.episode_index), Some(key));
                        sink.failed("decode", &err, Location::file(root).with_key(key.clone()));
                        break;
                    }
                }
                if progress.cancelled() {
                    break;
                }
            }
        }
        progress.step();
    });
    decoded.load(Ordering::Relaxed)
}
