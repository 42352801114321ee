//! LeRobot's normalisation modes (its `NormalizerProcessorStep`), applied to a filled batch in
//! place, in float32 with LeRobot's operation order and epsilon rules:
//!
//! - `MEAN_STD`: `(x - mean) / (std + eps)`
//! - `MIN_MAX`: `2 * (x - min) / d - 1`, `d = max - min`, or `eps` where that is 0
//! - `QUANTILES`: the same with `q01`, `q99`; `QUANTILE10` with `q10`, `q90`
//! - `IDENTITY`: unchanged
//!
//! Statistics broadcast as LeRobot's do: numeric features per element of the last axis,
//! camera frames per channel.

use crate::dataset::OutBuf;
use crate::error::{Error, Result};
use crate::frame::FrameFormat;
use crate::meta::DType;
use crate::outputs::OutputSpec;

/// A normalisation mode of LeRobot's `NormalizationMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormMode {
    Identity,
    MeanStd,
    MinMax,
    Quantiles,
    Quantile10,
}

impl NormMode {
    /// Parses LeRobot's names (`MEAN_STD`, `mean_std`, ...).
    pub fn parse(s: &str) -> Option<NormMode> {
        match s.to_ascii_uppercase().as_str() {
            "IDENTITY" => Some(NormMode::Identity),
            "MEAN_STD" => Some(NormMode::MeanStd),
            "MIN_MAX" => Some(NormMode::MinMax),
            "QUANTILES" => Some(NormMode::Quantiles),
            "QUANTILE10" => Some(NormMode::Quantile10),
            _ => None,
        }
    }

    /// The two statistics the mode reads (LeRobot's `stats.json` names).
    pub fn stat_names(self) -> Option<(&'static str, &'static str)> {
        match self {
            NormMode::Identity => None,
            NormMode::MeanStd => Some(("mean", "std")),
            NormMode::MinMax => Some(("min", "max")),
            NormMode::Quantiles => Some(("q01", "q99")),
            NormMode::Quantile10 => Some(("q10", "q90")),
        }
    }
}

/// The normalisation of one output: its mode and the two statistics (float32, one value per
/// element of the last axis, or per channel for frames).
#[derive(Debug, Clone)]
pub struct Normalization {
    pub key: String,
    pub mode: NormMode,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub eps: f32,
}

impl Normalization {
    /// Per statistic index: the value subtracted and the divisor, each computed once in
    /// LeRobot's float32 order (`std + eps`; a zero range replaced by `eps`).
    fn terms(&self) -> Vec<(f32, f32)> {
        self.a
            .iter()
            .zip(&self.b)
            .map(|(&a, &b)| match self.mode {
                NormMode::MeanStd => (a, b + self.eps),
                _ => {
                    let d = b - a;
                    (a, if d == 0.0 { self.eps } else { d })
                }
            })
            .collect()
    }

    fn apply(&self, x: f32, (a, d): (f32, f32)) -> f32 {
        match self.mode {
            NormMode::Identity => x,
            NormMode::MeanStd => (x - a) / d,
            NormMode::MinMax | NormMode::Quantiles | NormMode::Quantile10 => {
                2.0 * (x - a) / d - 1.0
            }
        }
    }
}

/// Normalises the filled float32 outputs named in `norms`, in place. `specs` (frames in `fmt`)
/// and `outs` follow each other one to one (as in [`crate::Dataset::fill_batch`]).
pub fn normalize_batch(
    specs: &[OutputSpec],
    fmt: FrameFormat,
    outs: &mut [OutBuf<'_>],
    norms: &[Normalization],
) -> Result<()> {
    for n in norms {
        if n.mode == NormMode::Identity {
            continue;
        }
        let Some(pos) = specs.iter().position(|s| s.key == n.key) else {
            return Err(Error::InvalidArgument {
                msg: format!("cannot normalise '{}': not an entry of the items", n.key),
            });
        };
        let (Some(spec), Some(out)) = (specs.get(pos), outs.get_mut(pos)) else {
            continue;
        };
        if spec.dtype != DType::F32 {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "cannot normalise '{}': its values are {}, normalisation needs float32 (frames: frame_dtype='float32')",
                    n.key,
                    spec.dtype.name()
                ),
            });
        }
        if n.a.is_empty() || n.a.len() != n.b.len() {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "statistics of '{}' for normalisation are empty or of different sizes",
                    n.key
                ),
            });
        }
        let OutBuf::Bytes(buf) = out else {
            continue; // left out of this batch
        };
        // which statistic element `i` uses: `(i / stride) % n` (LeRobot's broadcasting: per
        // channel for frames, per element of the last axis otherwise)
        let (n_stats, stride, what) = match spec.frame {
            Some((h, w, c)) => (
                c,
                if fmt.channels_last { 1 } else { (h * w).max(1) },
                "channels per frame",
            ),
            None => (
                spec.shape.last().copied().unwrap_or(1).max(1),
                1,
                "elements on the last axis of a row",
            ),
        };
        if n.a.len() != n_stats {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "statistics of '{}' have {} values, it has {n_stats} {what}",
                    n.key,
                    n.a.len()
                ),
            });
        }
        let terms = n.terms();
        for (i, chunk) in buf.chunks_exact_mut(4).enumerate() {
            let Some(&t) = terms.get((i / stride) % n_stats) else {
                continue; // (n_stats is terms.len(), checked above)
            };
            let mut b4 = [0u8; 4];
            b4.copy_from_slice(chunk);
            chunk.copy_from_slice(&n.apply(f32::from_ne_bytes(b4), t).to_ne_bytes());
        }
    }
    Ok(())
}
