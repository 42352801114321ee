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
    fn apply(&self, x: f32, i: usize) -> f32 {
        let n = self.a.len().max(1);
        let (a, b) = (
            self.a.get(i % n).copied().unwrap_or(0.0),
            self.b.get(i % n).copied().unwrap_or(1.0),
        );
        match self.mode {
            NormMode::Identity => x,
            NormMode::MeanStd => (x - a) / (b + self.eps),
            NormMode::MinMax | NormMode::Quantiles | NormMode::Quantile10 => {
                let d = b - a;
                let d = if d == 0.0 { self.eps } else { d };
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
        // which statistic an element uses: per channel for frames, else per element of the
        // last axis (LeRobot's broadcasting of its statistics)
        let index_of: Box<dyn Fn(usize) -> usize> = match spec.frame {
            Some((h, w, c)) => {
                if n.a.len() != c {
                    return Err(Error::InvalidArgument {
                        msg: format!(
                            "statistics of camera '{}' have {} values, its frames {c} channels",
                            n.key,
                            n.a.len()
                        ),
                    });
                }
                if fmt.channels_last {
                    Box::new(move |i| i % c)
                } else {
                    let plane = (h * w).max(1);
                    Box::new(move |i| (i / plane) % c)
                }
            }
            None => {
                let last = spec.shape.last().copied().unwrap_or(1).max(1);
                if n.a.len() != last {
                    return Err(Error::InvalidArgument {
                        msg: format!(
                            "statistics of '{}' have {} values, its rows {last} elements on the last axis",
                            n.key,
                            n.a.len()
                        ),
                    });
                }
                Box::new(move |i| i % last)
            }
        };
        for (i, chunk) in buf.chunks_exact_mut(4).enumerate() {
            let mut b4 = [0u8; 4];
            b4.copy_from_slice(chunk);
            let y = n.apply(f32::from_ne_bytes(b4), index_of(i));
            chunk.copy_from_slice(&y.to_ne_bytes());
        }
    }
    Ok(())
}
