//! Depth maps (LeRobot 0.6): video features flagged `is_depth_map`, holding 12-bit codes of a
//! quantiser in a grey video (HEVC Main 12, `gray12le`, by default), with the quantiser's
//! parameters in the feature's `info`. Reading one gives the codes or, dequantised as LeRobot
//! does, depth in metres or millimetres.
//!
//! LeRobot's dequantisation (`datasets/depth_utils.py`, the torch path its reader takes), per
//! code `q`, in float32 with the parameters rounded to float32 where they meet the values:
//! `v = q * scale + offset` (two roundings); in log mode `v = exp(v) - shift`; then
//! `v = min(max(v, depth_min), depth_max)`; for millimetres `v = clamp(round_half_even(v *
//! 1000), 0, 65535)`. `scale` and `offset` are computed in double precision, as Python does:
//! `(log(max + shift) - log(min + shift)) / 4095` and `log(min + shift)` in log mode,
//! `(max - min) / 4095` and `min` otherwise. The one step not reproduced bit for bit is
//! `exp`: torch's SIMD `exp` (SLEEF, 1 ulp) differs from the correctly rounded value for about
//! 1% of float32 inputs, so metres may differ from LeRobot's by 1 ulp there; millimetres,
//! rounded to whole numbers, come out the same.

use std::sync::Arc;

use serde_json::Value;

use crate::meta::DType;

/// The largest code of LeRobot's 12-bit quantiser.
pub const DEPTH_QMAX: f64 = 4095.0;

/// LeRobot's quantiser of a depth video (`DepthEncoderConfig`: `video.depth_min`,
/// `video.depth_max`, `video.shift`, `video.use_log`; metres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthQuant {
    pub depth_min: f64,
    pub depth_max: f64,
    pub shift: f64,
    pub use_log: bool,
}

impl Default for DepthQuant {
    /// LeRobot 0.6's defaults, used for every parameter a feature's `info` does not give.
    fn default() -> Self {
        DepthQuant {
            depth_min: 0.01,
            depth_max: 10.0,
            shift: 3.5,
            use_log: true,
        }
    }
}

/// A unit of depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepthUnit {
    Metres,
    Millimetres,
}

impl DepthUnit {
    /// `"m"` or `"mm"`, LeRobot's names.
    pub fn parse(s: &str) -> Option<DepthUnit> {
        match s {
            "m" => Some(DepthUnit::Metres),
            "mm" => Some(DepthUnit::Millimetres),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DepthUnit::Metres => "m",
            DepthUnit::Millimetres => "mm",
        }
    }
    /// The factor that turns a value in `self` into one in `to` (LeRobot's `MM_PER_METRE`).
    pub fn factor_to(self, to: DepthUnit) -> f64 {
        match (self, to) {
            (DepthUnit::Metres, DepthUnit::Millimetres) => 1000.0,
            (DepthUnit::Millimetres, DepthUnit::Metres) => 1.0 / 1000.0,
            _ => 1.0,
        }
    }
}

/// What a depth feature's `info` says of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthInfo {
    /// The quantiser (defaults where `info` is silent; unused for image features).
    pub quant: DepthQuant,
    /// `info.depth_unit`: the unit the depth was recorded in, when recorded. LeRobot's
    /// statistics of the feature are in it.
    pub unit: Option<DepthUnit>,
}

/// A JSON value as Python's `bool(...)` reads it, for flags LeRobot tests by truthiness; only
/// booleans and null are accepted (anything else in a flag is a broken `info.json`).
fn flag(v: Option<&Value>, name: &str) -> Result<bool, String> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("'{name}' must be true or false, got {other}")),
    }
}

impl DepthInfo {
    /// The depth information of a feature whose `info` block is `info` (and legacy
    /// `video_info`), or None when the feature is not a depth map. A depth map is a feature
    /// whose `info.is_depth_map` (or legacy `info["video.is_depth_map"]` or
    /// `video_info["video.is_depth_map"]`) is true, as LeRobot 0.6's `depth_keys`. Parameters
    /// that are present must be numbers (booleans for `use_log`) that make a finite quantiser.
    pub fn parse(
        info: Option<&Value>,
        video_info: Option<&Value>,
        video: bool,
    ) -> Result<Option<DepthInfo>, String> {
        let get = |doc: Option<&Value>, k: &str| doc.and_then(|d| d.get(k)).cloned();
        if let Some(other) = info.filter(|i| !i.is_object() && !i.is_null()) {
            return Err(format!("'info' must be an object, got {other}"));
        }
        let is_depth = flag(get(info, "is_depth_map").as_ref(), "is_depth_map")?
            || flag(
                get(info, "video.is_depth_map").as_ref(),
                "video.is_depth_map",
            )?
            || flag(
                get(video_info, "video.is_depth_map").as_ref(),
                "video_info.video.is_depth_map",
            )?;
        if !is_depth {
            return Ok(None);
        }
        let mut q = DepthQuant::default();
        let number = |k: &str, default: f64| -> Result<f64, String> {
            match get(info, k) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                    format!("'{k}' of a depth map must be a finite number, got {v}")
                }),
            }
        };
        q.depth_min = number("video.depth_min", q.depth_min)?;
        q.depth_max = number("video.depth_max", q.depth_max)?;
        q.shift = number("video.shift", q.shift)?;
        q.use_log = match get(info, "video.use_log") {
            None | Some(Value::Null) => q.use_log,
            Some(Value::Bool(b)) => b,
            Some(v) => return Err(format!("'video.use_log' must be true or false, got {v}")),
        };
        let unit = match get(info, "depth_unit") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                DepthUnit::parse(&s)
                    .ok_or_else(|| format!("'depth_unit' must be \"m\" or \"mm\", got \"{s}\""))?,
            ),
            Some(v) => return Err(format!("'depth_unit' must be \"m\" or \"mm\", got {v}")),
        };
        if video {
            q.check()?;
        }
        Ok(Some(DepthInfo { quant: q, unit }))
    }
}

impl DepthQuant {
    /// The quantiser's parameters give finite depths (LeRobot refuses `depth_min + shift <= 0`
    /// in log mode; a logarithm of a non-positive number, or a range past float32, would give
    /// NaN or infinite depths).
    pub fn check(&self) -> Result<(), String> {
        if self.use_log
            && (self.depth_min + self.shift <= 0.0 || self.depth_max + self.shift <= 0.0)
        {
            return Err(format!(
                "depth quantiser: depth_min + shift and depth_max + shift must be positive in \
                 logarithmic mode, got depth_min={} depth_max={} shift={}",
                self.depth_min, self.depth_max, self.shift
            ));
        }
        let (scale, offset) = self.scale_offset();
        let limit = f64::from(f32::MAX);
        let finite = |x: f64| x.is_finite() && x.abs() < limit;
        if ![scale, offset, self.depth_min, self.depth_max, self.shift]
            .into_iter()
            .all(finite)
        {
            return Err(format!(
                "depth quantiser: depth_min={} depth_max={} shift={} do not give finite float32 depths",
                self.depth_min, self.depth_max, self.shift
            ));
        }
        Ok(())
    }

    /// `(scale, offset)` as LeRobot computes them, in double precision.
    pub fn scale_offset(&self) -> (f64, f64) {
        if self.use_log {
            let lo = (self.depth_min + self.shift).ln();
            let hi = (self.depth_max + self.shift).ln();
            ((hi - lo) / DEPTH_QMAX, lo)
        } else {
            (
                (self.depth_max - self.depth_min) / DEPTH_QMAX,
                self.depth_min,
            )
        }
    }

    /// The depth of code `q` in `unit`, as LeRobot's reader computes it (see the module
    /// documentation).
    pub fn dequantize(&self, q: u16, unit: DepthUnit) -> f32 {
        let (scale, offset) = self.scale_offset();
        // (Rust never fuses `a * b + c` into one rounding: two roundings, as torch's mul_/add_)
        let mut v = f32::from(q) * scale as f32 + offset as f32;
        if self.use_log {
            v = (f64::from(v).exp() as f32) - self.shift as f32;
        }
        // torch's clamp: min(max(v, lo), hi) (hi wins when lo > hi)
        v = v.max(self.depth_min as f32).min(self.depth_max as f32);
        match unit {
            DepthUnit::Metres => v,
            DepthUnit::Millimetres => (v * 1000.0f32).round_ties_even().clamp(0.0, 65535.0),
        }
    }

    /// The dequantised value of every 16-bit code in `unit`.
    pub fn table(&self, unit: DepthUnit) -> Arc<[f32]> {
        (0..=u16::MAX).map(|q| self.dequantize(q, unit)).collect()
    }
}

/// What depth outputs hold: the stored codes, or depth in a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DepthOutput {
    /// The 12-bit codes as decoded, uint16.
    Codes,
    /// Dequantised, float32 metres.
    Metres,
    /// Dequantised, float32 millimetres (LeRobot 0.6's default).
    #[default]
    Millimetres,
}

impl DepthOutput {
    /// `"mm"`, `"m"` (LeRobot's `depth_output_unit`) or `"raw"` (the codes).
    pub fn parse(s: &str) -> Option<DepthOutput> {
        match s {
            "mm" => Some(DepthOutput::Millimetres),
            "m" => Some(DepthOutput::Metres),
            "raw" => Some(DepthOutput::Codes),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DepthOutput::Codes => "raw",
            DepthOutput::Metres => "m",
            DepthOutput::Millimetres => "mm",
        }
    }
    /// The element type of depth outputs.
    pub fn dtype(self) -> DType {
        match self {
            DepthOutput::Codes => DType::U16,
            DepthOutput::Metres | DepthOutput::Millimetres => DType::F32,
        }
    }
    /// The unit of dequantised outputs (None for codes).
    pub fn unit(self) -> Option<DepthUnit> {
        match self {
            DepthOutput::Codes => None,
            DepthOutput::Metres => Some(DepthUnit::Metres),
            DepthOutput::Millimetres => Some(DepthUnit::Millimetres),
        }
    }
}

/// Writes depth frames: 16-bit codes (native-endian bytes, one per pixel) into an output slot
/// as codes or through a dequantisation table. One channel, so `(H, W, 1)` and `(1, H, W)`
/// are the same bytes.
#[derive(Clone)]
pub struct DepthWriter {
    pub output: DepthOutput,
    /// The value of every code (for [`DepthOutput::Metres`] / [`DepthOutput::Millimetres`]).
    pub table: Option<Arc<[f32]>>,
}

impl PartialEq for DepthWriter {
    fn eq(&self, other: &Self) -> bool {
        self.output == other.output
            && match (&self.table, &other.table) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl std::fmt::Debug for DepthWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DepthWriter({})", self.output.name())
    }
}

impl DepthWriter {
    /// Writes `src` (codes, 2 bytes per pixel) into `dst`.
    pub fn write(&self, src: &[u8], dst: &mut [u8]) -> Result<(), String> {
        let px = src.len() / 2;
        let size = self.output.dtype().size();
        if !src.len().is_multiple_of(2) || dst.len() != px * size {
            return Err(format!(
                "{} bytes of depth codes for a {}-byte {} slot",
                src.len(),
                dst.len(),
                self.output.name()
            ));
        }
        match (&self.table, self.output) {
            (_, DepthOutput::Codes) => dst.copy_from_slice(src),
            (Some(table), _) => {
                for (s, d) in src.chunks_exact(2).zip(dst.chunks_exact_mut(4)) {
                    let q = u16::from_ne_bytes([s[0], s[1]]);
                    let v = table.get(usize::from(q)).copied().unwrap_or(f32::NAN);
                    d.copy_from_slice(&v.to_ne_bytes());
                }
            }
            (None, _) => return Err("no dequantisation table for a depth output".into()),
        }
        Ok(())
    }
}

/// Writes depth maps stored as images (LeRobot 0.6 with `use_videos=False`: TIFF bytes of the
/// recorded depth): the recorded values as float32, turned into the output unit as LeRobot does
/// (`values * 1000` from metres to millimetres, `values / 1000` the other way, in float32),
/// or kept as recorded when the unit is not recorded or the output is `raw`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthImageWriter {
    /// The recorded unit and the output unit, when they differ.
    pub convert: Option<(DepthUnit, DepthUnit)>,
}

impl DepthImageWriter {
    /// The writer of a depth image recorded in `recorded` read as `output`.
    pub fn new(recorded: Option<DepthUnit>, output: DepthOutput) -> DepthImageWriter {
        let convert = match (recorded, output.unit()) {
            (Some(r), Some(o)) if r != o => Some((r, o)),
            _ => None,
        };
        DepthImageWriter { convert }
    }

    /// Writes `src` (the recorded values, float32, native-endian) into `dst`.
    pub fn write(&self, src: &[u8], dst: &mut [u8]) -> Result<(), String> {
        if src.len() != dst.len() || !src.len().is_multiple_of(4) {
            return Err(format!(
                "{} bytes of depth values for a {}-byte slot",
                src.len(),
                dst.len()
            ));
        }
        match self.convert {
            None => dst.copy_from_slice(src),
            Some((from, _)) => {
                for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(4)) {
                    let v = f32::from_ne_bytes([s[0], s[1], s[2], s[3]]);
                    // LeRobot's `item * MM_PER_METRE` / `item / MM_PER_METRE` on float32
                    let out = match from {
                        DepthUnit::Metres => v * 1000.0f32,
                        DepthUnit::Millimetres => v / 1000.0f32,
                    };
                    d.copy_from_slice(&out.to_ne_bytes());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lerobot_depth_info() {
        let info: Value = serde_json::json!({
            "video.codec": "hevc", "video.pix_fmt": "gray12le", "is_depth_map": true,
            "video.depth_min": 0.2, "video.depth_max": 5.0, "video.shift": 0.0,
            "video.use_log": false, "depth_unit": "mm"
        });
        let d = DepthInfo::parse(Some(&info), None, true).unwrap().unwrap();
        assert_eq!(
            d.quant,
            DepthQuant {
                depth_min: 0.2,
                depth_max: 5.0,
                shift: 0.0,
                use_log: false
            }
        );
        assert_eq!(d.unit, Some(DepthUnit::Millimetres));
        // defaults for what is missing; legacy flags
        let legacy = serde_json::json!({"video.is_depth_map": true});
        let d = DepthInfo::parse(Some(&legacy), None, true)
            .unwrap()
            .unwrap();
        assert_eq!(d.quant, DepthQuant::default());
        assert_eq!(d.unit, None);
        let vi = serde_json::json!({"video.is_depth_map": true});
        assert!(DepthInfo::parse(None, Some(&vi), true).unwrap().is_some());
        let rgb = serde_json::json!({"is_depth_map": false, "video.codec": "av1"});
        assert!(DepthInfo::parse(Some(&rgb), None, true).unwrap().is_none());
        assert!(DepthInfo::parse(None, None, true).unwrap().is_none());
    }

    #[test]
    fn refuses_broken_depth_info() {
        for bad in [
            serde_json::json!({"is_depth_map": "yes"}),
            serde_json::json!({"is_depth_map": true, "video.depth_min": "near"}),
            serde_json::json!({"is_depth_map": true, "video.use_log": 1}),
            serde_json::json!({"is_depth_map": true, "depth_unit": "cm"}),
            serde_json::json!({"is_depth_map": true, "video.depth_min": 0.0, "video.shift": 0.0}),
            serde_json::json!({"is_depth_map": true, "video.depth_max": 1e300}),
        ] {
            assert!(DepthInfo::parse(Some(&bad), None, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn dequantises_like_lerobot() {
        let q = DepthQuant::default();
        // the ends of the range are depth_min (to float32's rounding of exp(log(min + shift))
        // - shift) and depth_max (clamped)
        assert!((q.dequantize(0, DepthUnit::Metres) - 0.01f32).abs() < 1e-5);
        assert_eq!(q.dequantize(4095, DepthUnit::Metres), 10.0f32);
        assert_eq!(q.dequantize(0, DepthUnit::Millimetres), 10.0);
        assert_eq!(q.dequantize(4095, DepthUnit::Millimetres), 10000.0);
        assert_eq!(q.dequantize(u16::MAX, DepthUnit::Metres), 10.0f32);
        // the float32 steps of LeRobot's torch path
        let (scale, offset) = q.scale_offset();
        let x = 1234.0f32 * scale as f32 + offset as f32;
        let m = (f64::from(x).exp() as f32) - 3.5f32;
        assert_eq!(q.dequantize(1234, DepthUnit::Metres), m);
        assert_eq!(
            q.dequantize(1234, DepthUnit::Millimetres),
            (m * 1000.0).round_ties_even()
        );
        // linear mode
        let lin = DepthQuant {
            depth_min: 0.0,
            depth_max: 4.095,
            shift: 0.0,
            use_log: false,
        };
        assert_eq!(lin.dequantize(1000, DepthUnit::Millimetres), 1000.0);
        // monotonic over every code
        let t = q.table(DepthUnit::Metres);
        assert!(t[..4096].windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn writes_codes_and_values() {
        let q = DepthQuant::default();
        let codes: Vec<u8> = [0u16, 2048, 4095]
            .iter()
            .flat_map(|c| c.to_ne_bytes())
            .collect();
        let raw = DepthWriter {
            output: DepthOutput::Codes,
            table: None,
        };
        let mut d = vec![0u8; 6];
        raw.write(&codes, &mut d).unwrap();
        assert_eq!(d, codes);
        let mm = DepthWriter {
            output: DepthOutput::Millimetres,
            table: Some(q.table(DepthUnit::Millimetres)),
        };
        let mut d = vec![0u8; 12];
        mm.write(&codes, &mut d).unwrap();
        let v: Vec<f32> = d
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(v[0], 10.0);
        assert_eq!(v[2], 10000.0);
        assert!(mm.write(&codes, &mut [0u8; 8]).is_err());
    }
}
