//! Statistics of a dataset's features recomputed from its data, the way LeRobot 0.4.4's writer
//! computes `meta/stats.json`: per episode `min`, `max`, `mean`, `std` (population), `count`
//! and quantiles from a 5,000-bin histogram between the episode's min and max (linear
//! interpolation inside the bin), then aggregated over episodes: min of mins, max of maxes,
//! count-weighted mean, the parallel-variance formula for `std`, and count-weighted means of the
//! episodes' quantiles. Numeric features are reduced over every axis but the last (LeRobot's
//! shape: a feature of shape `(2, 3)` gets statistics of shape `(3,)`). Cameras: per episode,
//! LeRobot's sample of frames (`estimate_num_samples`: about `len^0.75` frames, at least 100 or
//! all, evenly spaced, rounded half to even), downsampled by LeRobot's rule (frames with a side
//! of 300 pixels or more keep every `int(side / 150)`-th pixel), statistics per channel of the
//! values / 255. Everything is computed in f64; one episode's data in memory at a time per
//! thread.

use std::sync::Mutex;

use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::depth::DepthUnit;
use crate::error::{Error, Location, Result};
use crate::meta::FeatureKind;
use crate::progress::Progress;

/// LeRobot's quantiles and their names.
pub const QUANTILES: [(f64, &str); 5] = [
    (0.01, "q01"),
    (0.10, "q10"),
    (0.50, "q50"),
    (0.90, "q90"),
    (0.99, "q99"),
];
const BINS: usize = 5000;

/// The statistics of one feature (each vector has one entry per element of the last axis, or
/// per channel for cameras: 3 for colour, 1 for a depth map).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    pub key: String,
    /// True for cameras (statistics of shape `(3, 1, 1)` in LeRobot's layout).
    pub camera: bool,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub count: u64,
    /// Values of [`QUANTILES`], in that order.
    pub quantiles: Vec<Vec<f64>>,
}

/// One dimension's statistics of one episode.
struct DimStats {
    min: f64,
    max: f64,
    mean: f64,
    std: f64,
    quantiles: [f64; QUANTILES.len()],
}

/// The statistics of one dimension from its samples as `(value, weight)` pairs (weight 1 per
/// row of a table; for pixels, how often each of the 256 values occurs: the same numbers as
/// from every pixel, at one increment each). LeRobot's rules: population std; below two
/// samples, std 0 and every quantile the mean; else quantiles from a 5,000-bin histogram
/// between the min and max (`RunningQuantileStats`, one update). `samples` is called once per
/// pass over the data.
fn dim_stats<I: Iterator<Item = (f64, u64)>>(samples: impl Fn() -> I) -> Option<DimStats> {
    let (mut lo, mut hi, mut n, mut sum, mut sq) =
        (f64::INFINITY, f64::NEG_INFINITY, 0u64, 0.0, 0.0);
    for (v, w) in samples().filter(|(_, w)| *w > 0) {
        lo = lo.min(v);
        hi = hi.max(v);
        n += w;
        sum += v * w as f64;
        sq += v * v * w as f64;
    }
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    if n < 2 {
        return Some(DimStats {
            min: lo,
            max: hi,
            mean,
            std: 0.0,
            quantiles: [mean; QUANTILES.len()],
        });
    }
    let (a, b) = (lo - 1e-10, hi + 1e-10);
    let width = (b - a) / BINS as f64;
    let mut hist = vec![0u64; BINS];
    for (v, w) in samples() {
        let i = if width > 0.0 {
            (((v - a) / width) as usize).min(BINS - 1)
        } else {
            0
        };
        if let Some(h) = hist.get_mut(i) {
            *h += w;
        }
    }
    Some(DimStats {
        min: lo,
        max: hi,
        mean,
        std: (sq / nf - mean * mean).max(0.0).sqrt(),
        quantiles: histogram_quantiles(&hist, a, b, width, nf),
    })
}

impl FeatureStats {
    /// A feature's statistics from its dimensions' (`count`: LeRobot's sample count).
    fn from_dims(dims: Vec<DimStats>, count: u64) -> FeatureStats {
        let mut quantiles = vec![Vec::with_capacity(dims.len()); QUANTILES.len()];
        for d in &dims {
            for (q, v) in quantiles.iter_mut().zip(d.quantiles) {
                q.push(v);
            }
        }
        FeatureStats {
            key: String::new(),
            camera: false,
            min: dims.iter().map(|d| d.min).collect(),
            max: dims.iter().map(|d| d.max).collect(),
            mean: dims.iter().map(|d| d.mean).collect(),
            std: dims.iter().map(|d| d.std).collect(),
            count,
            quantiles,
        }
    }
}

/// One episode's statistics of rows of `dims` values each (`values` row-major).
fn episode_stats(values: &[f64], dims: usize, count: u64) -> Option<FeatureStats> {
    let dims = (0..dims)
        .map(|d| dim_stats(|| values.iter().skip(d).step_by(dims).map(|&v| (v, 1))))
        .collect::<Option<Vec<_>>>()?;
    Some(FeatureStats::from_dims(dims, count))
}

/// LeRobot's `aggregate_feature_stats`.
fn aggregate(key: &str, camera: bool, parts: &[FeatureStats]) -> Option<FeatureStats> {
    let first = parts.first()?;
    let dims = first.mean.len();
    let total: u64 = parts.iter().fold(0u64, |n, p| n.saturating_add(p.count));
    if total == 0 {
        return None;
    }
    let t = total as f64;
    let mut out = FeatureStats {
        key: key.to_owned(),
        camera,
        min: vec![f64::INFINITY; dims],
        max: vec![f64::NEG_INFINITY; dims],
        mean: vec![0.0; dims],
        std: vec![0.0; dims],
        count: total,
        quantiles: vec![vec![0.0; dims]; QUANTILES.len()],
    };
    for p in parts {
        let w = p.count as f64;
        for d in 0..dims {
            let g = |v: &Vec<f64>| v.get(d).copied().unwrap_or(f64::NAN);
            if let Some(m) = out.min.get_mut(d) {
                *m = m.min(g(&p.min));
            }
            if let Some(m) = out.max.get_mut(d) {
                *m = m.max(g(&p.max));
            }
            if let Some(m) = out.mean.get_mut(d) {
                *m += g(&p.mean) * w / t;
            }
            for (oq, pq) in out.quantiles.iter_mut().zip(&p.quantiles) {
                if let Some(q) = oq.get_mut(d) {
                    *q += g(pq) * w / t;
                }
            }
        }
    }
    for p in parts {
        let w = p.count as f64;
        for d in 0..dims {
            let g = |v: &Vec<f64>| v.get(d).copied().unwrap_or(f64::NAN);
            let delta = g(&p.mean) - out.mean.get(d).copied().unwrap_or(0.0);
            if let Some(s) = out.std.get_mut(d) {
                *s += (g(&p.std).powi(2) + delta * delta) * w / t;
            }
        }
    }
    for s in out.std.iter_mut() {
        *s = s.sqrt();
    }
    Some(out)
}

/// LeRobot's `estimate_num_samples` and `sample_indices` for an episode of `len` frames.
pub fn sample_frames(len: usize) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    let min = len.min(100);
    let n = ((len as f64).powf(0.75) as usize).clamp(0, 10_000).max(min);
    if n == 1 {
        return vec![0];
    }
    // np.linspace(0, len - 1, n): `i * step` with step = (len - 1) / (n - 1), the last pinned
    let last = (len - 1) as f64;
    let step = last / (n - 1) as f64;
    (0..n)
        .map(|i| {
            let x = if i == n - 1 { last } else { i as f64 * step };
            // np.round: half to even
            let r = x.round();
            let v = if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
                r - (r - x).signum()
            } else {
                r
            };
            v as usize
        })
        .collect()
}

/// Recomputes the statistics of every numeric and camera feature of the selected episodes
/// (features in `info.json` order; strings have none): [`episode_stats_of`], then
/// [`aggregate_stats`].
pub fn compute_stats(ds: &Dataset, progress: &Progress) -> Result<Vec<FeatureStats>> {
    let per_episode = episode_stats_of(ds, progress)?;
    Ok(aggregate_stats(&per_episode.keys, &per_episode.episodes))
}

/// The statistics of each selected episode, before the aggregation: [`aggregate_stats`] of
/// the episodes of several runs (each over some of a dataset's episodes), concatenated in the
/// dataset's episode order, equals [`compute_stats`] of all of them, bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeStats {
    /// The features with statistics, in `info.json` order, and whether each is a camera.
    pub keys: Vec<(String, bool)>,
    /// Per selected episode (in dataset order), per key: the episode's statistics (`None`
    /// when it has none, as an episode without frames).
    pub episodes: Vec<Vec<Option<FeatureStats>>>,
}

/// LeRobot's aggregation over episodes of [`EpisodeStats::episodes`] (in order), per key.
pub fn aggregate_stats(
    keys: &[(String, bool)],
    episodes: &[Vec<Option<FeatureStats>>],
) -> Vec<FeatureStats> {
    let mut out = Vec::new();
    for (i, (key, camera)) in keys.iter().enumerate() {
        let parts: Vec<FeatureStats> = episodes
            .iter()
            .filter_map(|e| e.get(i).cloned().flatten())
            .collect();
        if let Some(s) = aggregate(key, *camera, &parts) {
            out.push(s);
        }
    }
    out
}

/// Each selected episode's statistics (see [`EpisodeStats`]).
pub fn episode_stats_of(ds: &Dataset, progress: &Progress) -> Result<EpisodeStats> {
    if !ds.delta_indices().is_empty() {
        return Err(Error::InvalidArgument {
            msg: "statistics are per frame: open the dataset without delta_timestamps to compute them".into(),
        });
    }
    let info = ds.info();
    let episodes = ds.episodes();
    progress.add_total(episodes.len());
    let keys: Vec<(String, FeatureKind)> = info
        .features
        .values()
        .filter(|f| !matches!(f.kind, FeatureKind::String | FeatureKind::Language))
        .map(|f| (f.name.clone(), f.kind.clone()))
        .collect();
    // per episode, by its position: the aggregation runs in dataset order whatever order the
    // threads finish in (the same last bits every run)
    let per_episode: Mutex<Vec<Option<Vec<Option<FeatureStats>>>>> =
        Mutex::new(vec![None; episodes.len()]);
    // (on the dataset's decode threads: see `Dataset::on_decode_threads`)
    let result: Result<()> = ds.on_decode_threads(|| {
        episodes.par_iter().enumerate().try_for_each(|(pos, &ep)| {
            if progress.cancelled() {
                return Err(Error::Cancelled);
            }
            let (file, rows) = ds.episode_rows(ep)?;
            let n = rows.len();
            let mut stats: Vec<Option<FeatureStats>> = Vec::with_capacity(keys.len());
            for (key, kind) in &keys {
                let s = match kind {
                    FeatureKind::Numeric(_) => {
                        let (vals, per_row) =
                            file.values_f64(key, rows.clone()).ok_or_else(|| {
                                Error::MissingColumn {
                                    at: Location::file(&file.path).with_episode(ep),
                                    column: key.clone(),
                                }
                            })?;
                        let f = info.features.get(key);
                        let dims = f.and_then(|f| f.shape.last().copied()).unwrap_or(1).max(1);
                        if per_row % dims != 0 {
                            return Err(Error::metadata(
                                Location::file(&file.path)
                                    .with_episode(ep)
                                    .with_key(key.clone()),
                                "row size disagrees with the feature shape",
                            ));
                        }
                        episode_stats(&vals, dims, n as u64)
                    }
                    FeatureKind::Video | FeatureKind::Image => camera_stats(ds, key, ep, n)?,
                    FeatureKind::String | FeatureKind::Language => None,
                };
                stats.push(s);
            }
            if let Some(slot) = per_episode
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(pos)
            {
                *slot = Some(stats);
            }
            progress.step();
            Ok(())
        })
    })?;
    result?;
    let per_episode = per_episode.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(EpisodeStats {
        keys: keys
            .iter()
            .map(|(k, kind)| {
                let camera = matches!(kind, FeatureKind::Video | FeatureKind::Image);
                (k.clone(), camera)
            })
            .collect(),
        // (every slot is filled once the parallel pass succeeded)
        episodes: per_episode
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect(),
    })
}

/// Per-channel statistics of interleaved uint8 frames of `(h, w, c)` after LeRobot's
/// downsampling, over `frames` frames. Pixels take 256 values, so each channel is summarised by
/// how often each value occurs, and the statistics (histogram quantiles included) are computed
/// from those counts: the same numbers as from every pixel, at the cost of one increment each.
fn pixel_stats(
    bytes: &[u8],
    frames: usize,
    (h, w, c): (usize, usize, usize),
) -> Option<FeatureStats> {
    let step = downsample_step(h, w);
    if c == 0 || h == 0 || w == 0 {
        return None;
    }
    let channels = c.min(3);
    let frame = h.checked_mul(w)?.checked_mul(c)?;
    let mut counts = vec![[0u64; 256]; channels];
    for f in 0..frames {
        for y in (0..h).step_by(step) {
            let row = f.checked_mul(frame)?.checked_add(y * w * c)?;
            let line = bytes.get(row..row.checked_add(w * c)?)?;
            for px in line.chunks_exact(c).step_by(step) {
                for (ch, cnt) in counts.iter_mut().enumerate() {
                    let v = *px.get(ch)?;
                    if let Some(n) = cnt.get_mut(usize::from(v)) {
                        *n += 1;
                    }
                }
            }
        }
    }
    let mut s = stats_from_counts(&counts, frames as u64)?;
    s.camera = true;
    Some(s)
}

/// The statistics of values `v / 255` given as counts per value `v`, one table per dimension.
fn stats_from_counts(counts: &[[u64; 256]], count: u64) -> Option<FeatureStats> {
    let dims = counts
        .iter()
        .map(|cnt| dim_stats(|| cnt.iter().enumerate().map(|(v, &k)| (v as f64 / 255.0, k))))
        .collect::<Option<Vec<_>>>()?;
    Some(FeatureStats::from_dims(dims, count))
}

/// LeRobot's histogram quantiles (`_compute_single_quantile`) of `n` values binned in `hist`
/// over `[a, b]`.
fn histogram_quantiles(hist: &[u64], a: f64, b: f64, width: f64, n: f64) -> [f64; QUANTILES.len()] {
    let edge = |i: usize| if i >= BINS { b } else { a + width * i as f64 };
    let mut cum = Vec::with_capacity(hist.len());
    let mut c = 0u64;
    for h in hist {
        c += h;
        cum.push(c as f64);
    }
    QUANTILES.map(|(q, _)| {
        let target = q * n;
        let idx = cum.partition_point(|&x| x < target);
        if idx == 0 {
            edge(0)
        } else if idx >= BINS {
            edge(BINS)
        } else {
            let before = cum.get(idx - 1).copied().unwrap_or(0.0);
            let in_bin = cum.get(idx).copied().unwrap_or(before) - before;
            if in_bin == 0.0 {
                edge(idx)
            } else {
                edge(idx) + (target - before) / in_bin * (edge(idx + 1) - edge(idx))
            }
        }
    })
}

/// The statistics of camera `key` (video or embedded image) in episode `ep`: LeRobot's sample
/// of its frames, each read at its row (as items are).
fn camera_stats(ds: &Dataset, key: &str, ep: i64, len: usize) -> Result<Option<FeatureStats>> {
    let idx = sample_frames(len);
    let Some(start) = ds.item_of_episode(ep) else {
        return Ok(None);
    };
    let items: Vec<i64> = idx.iter().map(|&i| (start + i) as i64).collect();
    let (bytes, dims) = ds.fill_one(key, &items)?;
    let feature = ds.info().features.get(key);
    match feature.and_then(|f| f.depth.map(|d| (f.kind.clone(), d))) {
        Some((FeatureKind::Image, _)) => Ok(depth_image_stats(&bytes, idx.len(), dims)),
        Some((_, depth)) => {
            let unit = depth.unit.unwrap_or(DepthUnit::Millimetres);
            Ok(depth_stats(
                &bytes,
                idx.len(),
                dims,
                &depth.quant.table(unit),
            ))
        }
        None => Ok(pixel_stats(&bytes, idx.len(), dims)),
    }
}

/// Statistics of a depth map's frames (`frames` frames of 16-bit codes, `(h, w, 1)`) after
/// LeRobot's downsampling: the depth each code stands for (`table`), not divided by 255, with
/// one channel (LeRobot's shape `(1, 1, 1)`), in the unit the depth was recorded in (LeRobot's
/// statistics come from the recorded frames; these from the stored codes, so they carry the
/// quantiser's rounding). Counted per code, as pixels are per value.
fn depth_stats(
    bytes: &[u8],
    frames: usize,
    (h, w, _): (usize, usize, usize),
    table: &[f32],
) -> Option<FeatureStats> {
    if h == 0 || w == 0 {
        return None;
    }
    let step = downsample_step(h, w);
    let frame = h.checked_mul(w)?.checked_mul(2)?;
    let mut counts = vec![0u64; 1 << 16];
    for f in 0..frames {
        for y in (0..h).step_by(step) {
            let row = f.checked_mul(frame)?.checked_add(y * w * 2)?;
            let line = bytes.get(row..row.checked_add(w * 2)?)?;
            for px in line.chunks_exact(2).step_by(step) {
                let q = u16::from_ne_bytes([*px.first()?, *px.get(1)?]);
                if let Some(n) = counts.get_mut(usize::from(q)) {
                    *n += 1;
                }
            }
        }
    }
    let dim = dim_stats(|| {
        counts
            .iter()
            .enumerate()
            .filter(|(_, &k)| k > 0)
            .map(|(q, &k)| (f64::from(table.get(q).copied().unwrap_or(f32::NAN)), k))
    })?;
    let mut s = FeatureStats::from_dims(vec![dim], frames as u64);
    s.camera = true;
    Some(s)
}

/// Statistics of depth maps stored as images (`frames` frames of float32 recorded values,
/// `(h, w)`), after LeRobot's downsampling: one channel, in the recorded unit.
fn depth_image_stats(
    bytes: &[u8],
    frames: usize,
    (h, w, _): (usize, usize, usize),
) -> Option<FeatureStats> {
    if h == 0 || w == 0 {
        return None;
    }
    let step = downsample_step(h, w);
    let frame = h.checked_mul(w)?.checked_mul(4)?;
    let mut values = Vec::new();
    for f in 0..frames {
        for y in (0..h).step_by(step) {
            let row = f.checked_mul(frame)?.checked_add(y * w * 4)?;
            let line = bytes.get(row..row.checked_add(w * 4)?)?;
            for px in line.chunks_exact(4).step_by(step) {
                values.push(f64::from(f32::from_ne_bytes([
                    *px.first()?,
                    *px.get(1)?,
                    *px.get(2)?,
                    *px.get(3)?,
                ])));
            }
        }
    }
    let mut s = episode_stats(&values, 1, frames as u64)?;
    s.camera = true;
    Some(s)
}

/// LeRobot's `auto_downsample_height_width`: every `int(side / 150)`-th pixel of frames with a
/// side of 300 pixels or more.
fn downsample_step(h: usize, w: usize) -> usize {
    if h.max(w) < 300 {
        1
    } else if w > h {
        (w / 150).max(1)
    } else {
        (h / 150).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_like_lerobot() {
        // np.round(np.linspace(0, len - 1, num)) for a few lengths
        assert_eq!(sample_frames(1), [0]);
        assert_eq!(sample_frames(5), [0, 1, 2, 3, 4]);
        assert_eq!(sample_frames(150).len(), 100);
        assert_eq!(sample_frames(4).len(), 4);
        let s = sample_frames(1000);
        assert_eq!(s.len(), 177);
        assert_eq!((s[0], s[176]), (0, 999));
    }

    #[test]
    fn episode_and_aggregate_statistics() {
        let a = episode_stats(&[1.0, 10.0, 3.0, 30.0], 2, 2).unwrap();
        assert_eq!(a.min, [1.0, 10.0]);
        assert_eq!(a.max, [3.0, 30.0]);
        assert_eq!(a.mean, [2.0, 20.0]);
        assert_eq!(a.std, [1.0, 10.0]);
        let b = episode_stats(&[5.0, 50.0], 2, 1).unwrap();
        let t = aggregate("x", false, &[a, b]).unwrap();
        assert_eq!(t.count, 3);
        assert_eq!(t.mean, [3.0, 30.0]);
        // population std of 1, 3, 5
        assert!((t.std[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(t.min, [1.0, 10.0]);
        assert_eq!(t.max, [5.0, 50.0]);
    }

    #[test]
    fn pixel_counts_give_the_statistics_of_the_pixels() {
        let pixels: Vec<u8> = (0..3000u32).map(|i| ((i * 7919) % 251) as u8).collect();
        let mut counts = [[0u64; 256]; 1];
        for &p in &pixels {
            counts[0][usize::from(p)] += 1;
        }
        let values: Vec<f64> = pixels.iter().map(|&p| f64::from(p) / 255.0).collect();
        let a = stats_from_counts(&counts, 1).unwrap();
        let b = episode_stats(&values, 1, 1).unwrap();
        for (x, y) in [
            (&a.min, &b.min),
            (&a.max, &b.max),
            (&a.mean, &b.mean),
            (&a.std, &b.std),
        ] {
            assert!((x[0] - y[0]).abs() < 1e-12, "{x:?} {y:?}");
        }
        for (x, y) in a.quantiles.iter().zip(&b.quantiles) {
            assert!((x[0] - y[0]).abs() < 1e-9, "{x:?} {y:?}");
        }
    }

    #[test]
    fn histogram_quantiles_are_close_to_exact_ones() {
        let v: Vec<f64> = (0..10_001).map(|i| i as f64 / 100.0).collect();
        let s = episode_stats(&v, 1, v.len() as u64).unwrap();
        for ((q, _), got) in QUANTILES.iter().zip(&s.quantiles) {
            assert!((got[0] - q * 100.0).abs() < 0.03, "{q}: {}", got[0]);
        }
    }
}
