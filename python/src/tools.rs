//! The dataset tools of the core for Python: `validate` and `compute_stats`, run on a thread of
//! their own while the calling thread reports progress and watches for Ctrl-C.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use roboframes_core::stats::{
    aggregate_stats as core_aggregate, compute_stats as core_stats, episode_stats_of, FeatureStats,
    QUANTILES,
};
use roboframes_core::validate::{
    validate as core_validate, DecodeCheck, Part, Progress, Severity, ValidateOptions,
};
use roboframes_core::Error;

use indexmap::IndexMap;

use crate::dataset::{source_options, NativeDataset};

use crate::errors::{guarded, NativeResult};

/// Runs `work` on a scoped thread; meanwhile calls `callback(done, total)` about every 100 ms
/// and checks for signals. On Ctrl-C the work is cancelled (through `progress`), joined, and
/// the `KeyboardInterrupt` raised.
fn with_progress<T: Send>(
    py: Python<'_>,
    progress: &Progress,
    callback: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    std::thread::scope(|s| {
        let handle = s.spawn(work);
        let mut interrupted: Option<PyErr> = None;
        while !handle.is_finished() {
            py.detach(|| std::thread::sleep(Duration::from_millis(100)));
            if interrupted.is_none() {
                if let Err(e) = py.check_signals() {
                    progress.cancel.store(true, Ordering::Relaxed);
                    interrupted = Some(e);
                } else if let Some(cb) = callback {
                    let done = progress.done.load(Ordering::Relaxed);
                    let total = progress.total.load(Ordering::Relaxed);
                    if let Err(e) = cb.call1((done, total)) {
                        progress.cancel.store(true, Ordering::Relaxed);
                        interrupted = Some(e);
                    }
                }
            }
        }
        let out = py.detach(|| handle.join()).map_err(|p| {
            PyErr::from(crate::errors::NativeError::from(Error::from_panic(
                "a dataset tool",
                &*p,
            )))
        })?;
        if let Some(e) = interrupted {
            return Err(e);
        }
        if let Some(cb) = callback {
            let done = progress.done.load(Ordering::Relaxed);
            cb.call1((done, progress.total.load(Ordering::Relaxed)))?;
        }
        Ok(out)
    })
}

/// Checks the dataset at `root` (see `roboframes_core::validate`); returns a dict with
/// `findings` (dicts: severity, check, path, episode, key, message) and counts.
#[pyfunction]
#[pyo3(signature = (root, decode="ends", tolerance_s=1e-4, decode_threads=None, progress=None, format=None, fps=None, task=None, key_map=None, key_map_lerobot=false, split=None, topics=None, reference_topic=None, align_tolerance_s=None, episode_spans=None, part=None))]
#[allow(clippy::too_many_arguments)]
pub fn validate<'py>(
    py: Python<'py>,
    root: PathBuf,
    decode: &str,
    tolerance_s: f64,
    decode_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
    format: Option<String>,
    fps: Option<f64>,
    task: Option<String>,
    key_map: Option<IndexMap<String, String>>,
    key_map_lerobot: bool,
    split: Option<String>,
    topics: Option<Vec<String>>,
    reference_topic: Option<String>,
    align_tolerance_s: Option<f64>,
    episode_spans: Option<Vec<(String, f64, f64)>>,
    part: Option<(usize, usize)>,
) -> NativeResult<Bound<'py, PyDict>> {
    let part = match part {
        None => Part::default(),
        Some((index, count)) if count >= 1 && index < count => Part { index, count },
        Some((index, count)) => {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "part must be (index, count) with 0 <= index < count, got ({index}, {count})"
                ),
            }
            .into())
        }
    };
    let decode = DecodeCheck::parse(decode).ok_or_else(|| Error::InvalidArgument {
        msg: format!("decode must be 'none', 'ends' or 'all', got '{decode}'"),
    })?;
    if !(tolerance_s.is_finite() && tolerance_s > 0.0) {
        return Err(Error::InvalidArgument {
            msg: format!("tolerance_s must be a positive number of seconds, got {tolerance_s}"),
        }
        .into());
    }
    let opts = ValidateOptions {
        decode,
        tolerance_s,
        decode_threads,
        source: source_options(
            format,
            split,
            fps,
            task,
            key_map,
            key_map_lerobot,
            (topics, reference_topic, align_tolerance_s, episode_spans),
        ),
        part,
    };
    let state = Progress::default();
    let report = with_progress(py, &state, progress.as_ref(), || {
        guarded("validating a dataset", || {
            Ok(core_validate(&root, &opts, &state))
        })
    })??;
    let d = PyDict::new(py);
    let findings = PyList::empty(py);
    for f in &report.findings {
        let x = PyDict::new(py);
        x.set_item(
            "severity",
            match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
        )?;
        x.set_item("check", f.check)?;
        x.set_item("path", f.at.path.as_ref().map(|p| p.display().to_string()))?;
        x.set_item("episode", f.at.episode)?;
        x.set_item("key", f.at.key.clone())?;
        x.set_item("message", &f.message)?;
        findings.append(x)?;
    }
    d.set_item("findings", findings)?;
    d.set_item("episodes", report.episodes)?;
    d.set_item("frames", report.frames)?;
    d.set_item("data_files", report.data_files)?;
    d.set_item("video_files", report.video_files)?;
    d.set_item("frames_decoded", report.frames_decoded)?;
    d.set_item("complete", report.complete)?;
    Ok(d)
}

/// Recomputes the statistics of every numeric and camera feature of the selected episodes of
/// `dataset`, LeRobot's way; returns one dict per feature (`key`, `camera`, `min`, `max`,
/// `mean`, `std`, `count`, `q01` ... `q99`).
#[pyfunction]
#[pyo3(signature = (dataset, progress=None))]
pub fn compute_stats<'py>(
    py: Python<'py>,
    dataset: PyRef<'py, NativeDataset>,
    progress: Option<Bound<'py, PyAny>>,
) -> NativeResult<Bound<'py, PyList>> {
    let ds = dataset.inner.clone();
    drop(dataset);
    let state = Progress::default();
    let stats = with_progress(py, &state, progress.as_ref(), || {
        guarded("computing statistics", || core_stats(&ds, &state))
    })??;
    stats_list(py, stats)
}

/// Aggregated statistics as `compute_stats` returns them: one dict per feature.
fn stats_list(py: Python<'_>, stats: Vec<FeatureStats>) -> NativeResult<Bound<'_, PyList>> {
    let out = PyList::empty(py);
    for s in stats {
        let d = stats_dict(py, &s)?;
        d.set_item("key", &s.key)?;
        d.set_item("camera", s.camera)?;
        out.append(d)?;
    }
    Ok(out)
}

/// One feature's statistics: `min`, `max`, `mean`, `std`, `count`, `q01` ... `q99`.
fn stats_dict<'py>(py: Python<'py>, s: &FeatureStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("min", &s.min)?;
    d.set_item("max", &s.max)?;
    d.set_item("mean", &s.mean)?;
    d.set_item("std", &s.std)?;
    d.set_item("count", s.count)?;
    for ((_, name), q) in QUANTILES.iter().zip(&s.quantiles) {
        d.set_item(*name, q)?;
    }
    Ok(d)
}

/// The features with statistics and whether each is a camera (`EpisodeStats::keys`).
type FeatureKeys = Vec<(String, bool)>;

/// Each selected episode's statistics before the aggregation (for running the statistics on
/// several machines, `roboframes.ray`): `(keys, episodes)`, `keys` the `(feature, is_camera)`
/// pairs, `episodes` per selected episode one `stats_dict` (or `None`) per key.
#[pyfunction]
#[pyo3(signature = (dataset, progress=None))]
pub fn episode_stats<'py>(
    py: Python<'py>,
    dataset: PyRef<'py, NativeDataset>,
    progress: Option<Bound<'py, PyAny>>,
) -> NativeResult<(FeatureKeys, Bound<'py, PyList>)> {
    let ds = dataset.inner.clone();
    drop(dataset);
    let state = Progress::default();
    let per = with_progress(py, &state, progress.as_ref(), || {
        guarded("computing statistics", || episode_stats_of(&ds, &state))
    })??;
    let episodes = PyList::empty(py);
    for e in &per.episodes {
        let row = PyList::empty(py);
        for s in e {
            match s {
                Some(s) => row.append(stats_dict(py, s)?)?,
                None => row.append(py.None())?,
            }
        }
        episodes.append(row)?;
    }
    Ok((per.keys, episodes))
}

/// LeRobot's aggregation of `episode_stats`' episodes (of one or several runs, concatenated in
/// the dataset's episode order): what `compute_stats` returns for all of them.
#[pyfunction]
pub fn aggregate_stats<'py>(
    py: Python<'py>,
    keys: Vec<(String, bool)>,
    episodes: Vec<Vec<Option<Bound<'py, PyDict>>>>,
) -> NativeResult<Bound<'py, PyList>> {
    let mut parsed = Vec::with_capacity(episodes.len());
    // per key: its statistics' length (every episode's must agree) and the total count
    let mut dims: Vec<Option<usize>> = vec![None; keys.len()];
    let mut counts: Vec<u64> = vec![0; keys.len()];
    for (i, e) in episodes.iter().enumerate() {
        if e.len() != keys.len() {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "episode {i} of the statistics has {} entries for {} keys",
                    e.len(),
                    keys.len()
                ),
            }
            .into());
        }
        let mut row = Vec::with_capacity(e.len());
        for (((s, (key, camera)), dim), count) in e
            .iter()
            .zip(&keys)
            .zip(dims.iter_mut())
            .zip(counts.iter_mut())
        {
            row.push(match s {
                None => None,
                Some(d) => {
                    let st = parse_stats(d, key, *camera)?;
                    if *dim.get_or_insert(st.mean.len()) != st.mean.len() {
                        return Err(Error::InvalidArgument {
                            msg: format!("episode {i}: the statistics of '{key}' have another length than the other episodes'"),
                        }
                        .into());
                    }
                    *count = count.checked_add(st.count).ok_or_else(|| Error::InvalidArgument {
                        msg: format!("the counts of '{key}' add up past 2^64"),
                    })?;
                    Some(st)
                }
            });
        }
        parsed.push(row);
    }
    stats_list(py, core_aggregate(&keys, &parsed))
}

/// A `stats_dict` back: every entry present, of one length.
fn parse_stats(d: &Bound<'_, PyDict>, key: &str, camera: bool) -> NativeResult<FeatureStats> {
    let get = |name: &str| -> NativeResult<Vec<f64>> {
        let v = d.get_item(name)?.ok_or_else(|| Error::InvalidArgument {
            msg: format!("the statistics of '{key}' lack '{name}'"),
        })?;
        Ok(v.extract::<Vec<f64>>()?)
    };
    let count: u64 = d
        .get_item("count")?
        .ok_or_else(|| Error::InvalidArgument {
            msg: format!("the statistics of '{key}' lack 'count'"),
        })?
        .extract()?;
    let s = FeatureStats {
        key: key.to_owned(),
        camera,
        min: get("min")?,
        max: get("max")?,
        mean: get("mean")?,
        std: get("std")?,
        count,
        quantiles: QUANTILES
            .iter()
            .map(|(_, name)| get(name))
            .collect::<NativeResult<_>>()?,
    };
    let n = s.mean.len();
    if [&s.min, &s.max, &s.std].iter().any(|v| v.len() != n)
        || s.quantiles.iter().any(|q| q.len() != n)
    {
        return Err(Error::InvalidArgument {
            msg: format!("the statistics of '{key}' have entries of different lengths"),
        }
        .into());
    }
    Ok(s)
}
