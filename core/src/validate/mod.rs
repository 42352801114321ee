//! `validate`: every check of a dataset's soundness in one parallel pass, each problem a
//! [`Finding`] naming file, episode and key. Nothing stops at the first problem: a check that
//! cannot run (its input is already reported broken) is skipped, the others run.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::{Error, Location};
use crate::meta::{self, Episode};
pub use crate::progress::Progress;
use crate::rules;

mod source;
mod tables;
mod videos;

use tables::{
    check_data_file, check_episode_table, check_stats, check_stats_coverage,
    check_unlisted_data_files,
};
use videos::{check_video_file, decode_checks};

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
    /// How to read a root that is not a LeRobot dataset (HDF5 files).
    pub source: crate::source::SourceOptions,
    /// Which part of the run to do (the whole run by default).
    pub part: Part,
}

/// One of `count` parts of a validation run, for running them on several machines (Python's
/// `roboframes.ray`). Every finding of the whole run is reported by exactly one part, and the
/// checks that depend on each other run in the same one (the metadata is read, and checked,
/// by every part; only part 0 reports it): the metadata checks in part 0; a data
/// file's checks, and the decode checks of its episodes, in the part of its position among the
/// data files (contiguous ranges); a video file's checks in the part of its position among the
/// video files. The findings of all parts, sorted as [`validate`] sorts them, are the whole
/// run's; the counts are part 0's, but for `frames_decoded`, which the parts add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub index: usize,
    pub count: usize,
}

impl Default for Part {
    fn default() -> Part {
        Part { index: 0, count: 1 }
    }
}

impl Part {
    /// Whether item `i` of `n` belongs to this part (contiguous ranges of about `n / count`).
    pub fn holds(&self, i: usize, n: usize) -> bool {
        if self.count <= 1 {
            return true;
        }
        let of = (i as u128).saturating_mul(self.count as u128) / (n.max(1) as u128);
        of == self.index as u128
    }

    /// The elements of `items` this part holds (a contiguous range of them).
    pub fn mine<T>(&self, items: Vec<T>) -> Vec<T> {
        let n = items.len();
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.holds(*i, n))
            .map(|(_, x)| x)
            .collect()
    }

    /// Whether this part runs the checks done once per run (metadata).
    pub fn first(&self) -> bool {
        self.index == 0
    }
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
    /// The episodes with an error of `check` so far, with the file it names (an episode
    /// index listed in two data files is two episodes).
    fn episodes_with(&self, check: &str) -> HashSet<(Option<PathBuf>, i64)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|f| f.check == check && f.severity == Severity::Error)
            .filter_map(|f| f.at.episode.map(|e| (f.at.path.clone(), e)))
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
    let text = root.to_string_lossy();
    if crate::store::is_url(&text) {
        match crate::source::Format::detect_remote(root, &opts.source) {
            Ok(crate::source::Format::LeRobot) => {}
            Ok(_) => return source::validate_source(root, opts, progress),
            Err(e) => {
                sink.failed("root", &e, Location::file(root));
                return finish(report, first_only(sink, opts.part), true);
            }
        }
    } else {
        match crate::source::Format::detect(root, &opts.source) {
            Ok(crate::source::Format::LeRobot) => {}
            Ok(_) => return source::validate_source(root, opts, progress),
            Err(e) => {
                sink.failed("root", &e, Location::file(root));
                return finish(report, first_only(sink, opts.part), true);
            }
        }
        if let Err(e) = crate::fs::local_root(root) {
            sink.failed("root", &e, Location::file(root));
            return finish(report, first_only(sink, opts.part), true);
        }
    }
    let info = match meta::read_info(root) {
        Ok(i) => i,
        Err(e) => {
            sink.failed("info.json", &e, Location::file(&info_path));
            return finish(report, first_only(sink, opts.part), true);
        }
    };
    let part = opts.part;
    // (a part other than the first reports no metadata finding: the first reports them all)
    let meta_sink = Sink::default();
    let once = if part.first() { &sink } else { &meta_sink };
    let tasks = match meta::read_tasks(root, &info) {
        Ok(t) => Some(t),
        Err(e) => {
            once.failed("tasks", &e, Location::file(info.tasks_path(root)));
            None
        }
    };
    let stats_lines = check_stats(root, &info, once);
    let video_keys = info.video_keys();
    let rows = match meta::read_episode_rows(root, &info) {
        Ok(e) => e,
        Err(e) => {
            sink.failed("episodes", &e, Location::file(info.episodes_path(root)));
            return finish(report, first_only(sink, opts.part), true);
        }
    };
    report.episodes = rows.len();
    report.frames = rows
        .iter()
        .fold(0u64, |n, (e, _)| n.saturating_add(e.length.max(0) as u64));
    let all: Vec<Episode> = rows.iter().map(|(e, _)| e.clone()).collect();
    check_episode_table(root, &info, &all, tasks.as_ref(), once);
    if let Some(lines) = &stats_lines {
        check_stats_coverage(root, lines, &all, once);
    }
    check_unlisted_data_files(root, &info, &all, once);
    // each bad row is reported; the file checks below look only at the sound ones
    let mut episodes: Vec<Episode> = Vec::with_capacity(rows.len());
    // data files holding a bad row: their rows are not all accounted for by sound episodes, so
    // rows no sound episode claims are that row's problem, already reported
    let mut partly_claimed = HashSet::new();
    for (e, path) in rows {
        match meta::check_episode(&e, &path, &video_keys) {
            Ok(()) => episodes.push(e),
            Err(err) => {
                partly_claimed.insert((e.data_chunk_index, e.data_file_index));
                once.failed("episode_range", &err, Location::file(&path))
            }
        }
    }

    let by_data = group(&episodes, |e| Some((e.data_chunk_index, e.data_file_index)));
    report.data_files = by_data.len();
    // this part's data files, and the episodes they hold (decoded by the part that checks
    // their timestamps: the decode checks skip episodes whose timestamps are off the grid)
    let by_data = part.mine(by_data);
    let mine: HashSet<(i64, i64)> = by_data.iter().map(|(f, _)| *f).collect();
    let decoded_here: Vec<Episode> = episodes
        .iter()
        .filter(|e| mine.contains(&(e.data_chunk_index, e.data_file_index)))
        .cloned()
        .collect();
    let mut by_video: Vec<(usize, (i64, i64), Vec<&Episode>)> = Vec::new();
    for (vk, _) in video_keys.iter().enumerate() {
        for (file, eps) in group(&episodes, |e| {
            e.videos.get(vk).map(|v| (v.chunk_index, v.file_index))
        }) {
            by_video.push((vk, file, eps));
        }
    }
    report.video_files = by_video.len();
    let by_video = part.mine(by_video);
    progress.add_total(by_data.len() + by_video.len());
    let decoding = opts.decode != DecodeCheck::None;
    if decoding {
        progress.add_total(decoded_here.len());
    }

    by_data.par_iter().for_each(|(file, eps)| {
        if !progress.cancelled() {
            let all_sound = !partly_claimed.contains(file);
            check_data_file(
                root,
                &info,
                *file,
                eps,
                all_sound,
                tasks.as_ref(),
                opts,
                &sink,
            );
        }
        progress.step();
    });
    by_video.par_iter().for_each(|(vk, file, eps)| {
        if let (Some(key), false) = (video_keys.get(*vk), progress.cancelled()) {
            check_video_file(root, &info, key, *vk, *file, eps, opts, &sink);
        }
        progress.step();
    });
    // (a part with no episode to decode opens nothing, but for the first, which reports a
    // dataset that does not open)
    if decoding && !progress.cancelled() && (part.first() || !decoded_here.is_empty()) {
        report.frames_decoded = decode_checks(root, &decoded_here, opts, &sink, progress);
    }
    let complete = !progress.cancelled();
    finish(report, sink, complete)
}

/// `sink` in the first part of a run; nothing in the others (a finding that stops the run
/// before its per-file checks is the whole run's, reported once).
fn first_only(sink: Sink, part: Part) -> Sink {
    if part.first() {
        sink
    } else {
        Sink::default()
    }
}

fn finish(mut report: Report, sink: Sink, complete: bool) -> Report {
    let mut findings = sink.0.into_inner().unwrap_or_else(|e| e.into_inner());
    // errors first, then by file, episode, key, check and message (parallel checks finish in
    // any order; `roboframes.ray` sorts the findings of a run's parts by the same key)
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.severity != Severity::Error,
                f.at.path.clone(),
                f.at.episode,
                f.at.key.clone(),
                f.check,
                f.message.clone(),
            )
        };
        key(a).cmp(&key(b))
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
