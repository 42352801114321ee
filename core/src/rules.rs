//! The consistency rules that a dataset's tables and video files obey, one function and one
//! message per rule, shared by the reader and `validate`: the reader refuses with the first
//! broken rule of severity [`Severity::Error`] in what it loads (as a `Metadata` or `Video`
//! error), `validate` reports every broken rule as a finding under the rule's check name. A
//! rule changed here changes both.

use crate::error::{Error, Location};
use crate::meta::{DType, Episode, EpisodeVideo, FeatureKind, Info};
use crate::table::DataFile;

/// How much a broken rule matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The dataset gives wrong or no items where this is.
    Error,
    /// Suspicious, but items are still read right.
    Warning,
}

/// One broken rule: `validate`'s check name, where, and what.
#[derive(Debug, Clone)]
pub struct Broken {
    pub severity: Severity,
    pub check: &'static str,
    pub at: Location,
    pub message: String,
}

impl Broken {
    fn error(check: &'static str, at: Location, message: String) -> Self {
        Broken {
            severity: Severity::Error,
            check,
            at,
            message,
        }
    }

    /// The reader's error for this broken rule.
    pub fn into_error(self) -> Error {
        match self.check {
            "video_span" => Error::Video {
                at: self.at,
                msg: self.message,
            },
            _ => Error::metadata(self.at, self.message),
        }
    }
}

/// The first broken rule of severity `Error`, as the reader's error.
pub fn first_error(broken: impl IntoIterator<Item = Broken>) -> crate::error::Result<()> {
    match broken.into_iter().find(|b| b.severity == Severity::Error) {
        Some(b) => Err(b.into_error()),
        None => Ok(()),
    }
}

/// Whether rows are checked against their episode's `episode_index`: where `info.json` declares
/// it as LeRobot does (an int64 scalar).
pub fn checks_episode_index(info: &Info) -> bool {
    info.features.get("episode_index").is_some_and(|f| {
        f.is_scalar() && matches!(f.kind, FeatureKind::Numeric(dt) if dt.item_dtype() == DType::I64)
    })
}

/// The rows of episode `e` in data file `file` (`meta/episodes`' `dataset_from_index ..
/// dataset_to_index`): all in the file, each holding the episode's `episode_index` (when
/// `check_episode_index`), timestamps finite and increasing. A table whose rows moved against
/// the metadata would give items of one episode with another's windows and labels, and two rows
/// at one time (a timestamp column cast to integers, say) would read one frame twice.
pub fn episode_rows(file: &DataFile, e: &Episode, check_episode_index: bool) -> Vec<Broken> {
    let at = |k: &str| {
        Location::file(&file.path)
            .with_episode(e.episode_index)
            .with_key(k)
    };
    let (Ok(r0), Ok(r1)) = (
        file.row_of(e.dataset_from_index),
        file.row_of(e.dataset_to_index.saturating_sub(1)),
    ) else {
        return vec![Broken::error(
            "episode_rows",
            at("index"),
            format!(
                "rows {}..{} of the episode are not in this file (it holds {}..{})",
                e.dataset_from_index,
                e.dataset_to_index,
                file.first_index,
                file.first_index.saturating_add(file.rows as i64)
            ),
        )];
    };
    let mut broken = Vec::new();
    let mut other_episode: Option<(usize, usize, Option<i64>)> = None; // (count, first row, value)
    let mut disorder: Option<(usize, f32, Option<f32>)> = None;
    let mut prev: Option<f32> = None;
    for row in r0..=r1 {
        if check_episode_index {
            let got = file.int_scalar("episode_index", row);
            if got != Some(e.episode_index) {
                let c = other_episode.get_or_insert((0, row, got));
                c.0 += 1;
            }
        }
        if let Some(t) = file.timestamp(row) {
            // (NaN fails too)
            let increasing =
                prev.is_none_or(|p| p.partial_cmp(&t) == Some(std::cmp::Ordering::Less));
            if (!increasing || !t.is_finite()) && disorder.is_none() {
                disorder = Some((row, t, prev));
            }
            prev = Some(t);
        }
    }
    let index_of = |row: usize| file.first_index.saturating_add(row as i64);
    if let Some((n, row, got)) = other_episode {
        broken.push(Broken::error(
            "episode_index",
            at("episode_index"),
            format!(
                "{n} row(s) of the episode's range hold another episode_index, first row {row} \
                 (index {}) holding {}",
                index_of(row),
                got.map_or("none".into(), |g| g.to_string())
            ),
        ));
    }
    if let Some((row, t, prev)) = disorder {
        broken.push(Broken::error(
            "timestamps",
            at("timestamp"),
            format!(
                "row {row} (index {}) has timestamp {t} after {}: the timestamps of an episode \
                 must increase",
                index_of(row),
                prev.map_or("none".into(), |p| p.to_string())
            ),
        ));
    }
    broken
}

/// The rows of data file `file` that no episode of `meta/episodes` claims (`claimed` rows are
/// the lengths of the episodes it places in the file): an episode missing from the table,
/// whose items would silently be left out.
pub fn unclaimed_rows(file: &DataFile, claimed: u64) -> Option<Broken> {
    (claimed < file.file_rows).then(|| {
        Broken::error(
            "data_file",
            Location::file(&file.path),
            format!(
                "{} of its {} rows belong to no episode of the episode table (meta/episodes; an \
                 episode missing from it?)",
                file.file_rows - claimed,
                file.file_rows
            ),
        )
    })
}

/// The span of episode `e` in the video file `path` of camera `key` holds `frames` frames
/// (counted by the file's index): at least one per row, or the file's timeline does not match
/// `meta/episodes` (a spare frame is only a warning: the reader ignores it, and LeRobot reads
/// such converted datasets).
pub fn video_span(
    path: &std::path::Path,
    key: &str,
    e: &Episode,
    v: &EpisodeVideo,
    frames: usize,
) -> Option<Broken> {
    let n = i64::try_from(frames).unwrap_or(i64::MAX);
    if n == e.length {
        return None;
    }
    let severity = if n < e.length {
        Severity::Error
    } else {
        Severity::Warning
    };
    Some(Broken {
        severity,
        check: "video_span",
        at: Location::file(path)
            .with_episode(e.episode_index)
            .with_key(key),
        message: format!(
            "the episode's span {:.6}..{:.6} s holds {frames} frame(s), the episode has {} rows{}",
            v.from_timestamp,
            v.to_timestamp,
            e.length,
            if n < e.length {
                ": the file's timeline does not match the episode table (frames missing or shifted: \
                 a damaged or edited file?)"
            } else {
                ""
            }
        ),
    })
}
