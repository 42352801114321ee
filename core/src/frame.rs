//! Output pixel formats of camera frames (video and embedded images): element type and layout
//! are chosen by the caller and produced in one pass from the decoder's interleaved RGB bytes.
//!
//! Floating types hold `v / 255` computed in float32 (exactly what `uint8_tensor / 255.0` gives
//! in PyTorch, and what LeRobot returns); float16 and bfloat16 are that float32 value rounded to
//! nearest-even, as `tensor.to(torch.float16 / torch.bfloat16)` does.

use std::sync::OnceLock;

use half::{bf16, f16};

use crate::depth::{DepthImageWriter, DepthWriter};
use crate::meta::DType;

/// What the decoder produces for a camera, kept by the frame cache and read by the writers:
/// interleaved 8-bit RGB (colour cameras, embedded images), or 12-bit grey codes as native-endian
/// 16-bit samples (depth maps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decoded {
    Rgb24,
    Gray12,
}

impl Decoded {
    /// Bytes of one decoded frame of `h x w` pixels with `c` channels (`c` is 1 for grey).
    pub fn frame_bytes(self, h: usize, w: usize, c: usize) -> usize {
        match self {
            Decoded::Rgb24 => h * w * c,
            Decoded::Gray12 => h * w * 2,
        }
    }
}

/// How the frames of one camera are written into their output: colour frames (and images) in a
/// [`FrameFormat`], depth videos as codes or depth ([`DepthWriter`]), depth images as their
/// recorded values in the output unit ([`DepthImageWriter`]).
#[derive(Debug, Clone, PartialEq)]
pub enum FrameOut {
    Rgb(FrameFormat),
    Depth(DepthWriter),
    DepthImage(DepthImageWriter),
}

impl FrameOut {
    /// What a video decoder must produce for this output (depth images are not decoded from
    /// video: their values come from the image bytes).
    pub fn decoded(&self) -> Decoded {
        match self {
            FrameOut::Rgb(_) | FrameOut::DepthImage(_) => Decoded::Rgb24,
            FrameOut::Depth(_) => Decoded::Gray12,
        }
    }

    /// Bytes of one output frame of `h x w` pixels with `c` channels.
    pub fn frame_bytes(&self, h: usize, w: usize, c: usize) -> usize {
        match self {
            FrameOut::Rgb(f) => f.frame_bytes(h, w, c),
            FrameOut::Depth(d) => h * w * d.output.dtype().size(),
            FrameOut::DepthImage(_) => h * w * 4,
        }
    }

    /// True when the decoded bytes are the output as they are.
    pub fn is_identity(&self) -> bool {
        match self {
            FrameOut::Rgb(f) => f.is_identity(),
            FrameOut::Depth(d) => d.output == crate::depth::DepthOutput::Codes,
            FrameOut::DepthImage(d) => d.convert.is_none(),
        }
    }

    /// Writes one decoded frame (`src`, as [`FrameOut::decoded`] says) into `dst`.
    pub fn write(
        &self,
        src: &[u8],
        h: usize,
        w: usize,
        c: usize,
        dst: &mut [u8],
    ) -> Result<(), String> {
        match self {
            FrameOut::Rgb(f) => f.write(src, h, w, c, dst),
            FrameOut::Depth(d) => {
                if src.len() != h * w * 2 {
                    return Err(format!(
                        "depth frame of {h}x{w}: {} bytes of codes",
                        src.len()
                    ));
                }
                d.write(src, dst)
            }
            FrameOut::DepthImage(d) => d.write(src, dst),
        }
    }
}

/// Element type of output frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PixelType {
    /// The decoded bytes, 0..=255.
    #[default]
    U8,
    /// `v / 255` in float32 (LeRobot's frames).
    F32,
    /// `v / 255` rounded to float16.
    F16,
    /// `v / 255` rounded to bfloat16.
    BF16,
}

impl PixelType {
    /// Parses `uint8`, `float32`, `float16` or `bfloat16` (the names of [`DType::name`]).
    pub fn parse(s: &str) -> Option<PixelType> {
        DType::from_name(s).and_then(PixelType::of_dtype)
    }

    /// The pixel type whose buffers hold `dtype` elements, if frames can be made of it.
    pub fn of_dtype(dtype: DType) -> Option<PixelType> {
        Some(match dtype {
            DType::U8 => PixelType::U8,
            DType::F32 => PixelType::F32,
            DType::F16 => PixelType::F16,
            DType::BF16 => PixelType::BF16,
            _ => return None,
        })
    }

    /// The element type of buffers holding this pixel type.
    pub fn dtype(self) -> DType {
        match self {
            PixelType::U8 => DType::U8,
            PixelType::F32 => DType::F32,
            PixelType::F16 => DType::F16,
            PixelType::BF16 => DType::BF16,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        self.dtype().size()
    }
}

/// How frames are written: element type and channel position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameFormat {
    pub pixel: PixelType,
    /// `(H, W, C)` when true (channels last), `(C, H, W)` when false.
    pub channels_last: bool,
}

impl Default for FrameFormat {
    /// uint8 `(H, W, C)`: the decoder's own bytes.
    fn default() -> Self {
        FrameFormat {
            pixel: PixelType::U8,
            channels_last: true,
        }
    }
}

impl FrameFormat {
    /// LeRobot's frames: float32 in [0, 1], `(C, H, W)`.
    pub const LEROBOT: FrameFormat = FrameFormat {
        pixel: PixelType::F32,
        channels_last: false,
    };

    /// The shape of one frame of `h x w` pixels with `c` channels.
    pub fn shape(self, h: usize, w: usize, c: usize) -> Vec<usize> {
        if self.channels_last {
            vec![h, w, c]
        } else {
            vec![c, h, w]
        }
    }

    /// Bytes of one frame.
    pub fn frame_bytes(self, h: usize, w: usize, c: usize) -> usize {
        h * w * c * self.pixel.size()
    }

    /// True when the decoder's interleaved bytes are already the output (no conversion pass).
    pub fn is_identity(self) -> bool {
        self.pixel == PixelType::U8 && self.channels_last
    }

    /// Writes an interleaved `(h, w, c)` uint8 image into `dst` in this format.
    pub fn write(
        self,
        src: &[u8],
        h: usize,
        w: usize,
        c: usize,
        dst: &mut [u8],
    ) -> Result<(), String> {
        let n = h * w * c;
        if src.len() != n || dst.len() != n * self.pixel.size() {
            return Err(format!(
                "frame of {h}x{w}x{c}: {} source bytes for a {}-byte {:?} slot",
                src.len(),
                dst.len(),
                self.pixel
            ));
        }
        if n == 0 {
            return Ok(());
        }
        if self.is_identity() {
            dst.copy_from_slice(src);
            return Ok(());
        }
        match self.pixel {
            PixelType::U8 => self.place(src, h, w, c, dst, &U8_LUT),
            PixelType::F32 => self.place(src, h, w, c, dst, f32_lut()),
            PixelType::F16 => self.place(src, h, w, c, dst, f16_lut()),
            PixelType::BF16 => self.place(src, h, w, c, dst, bf16_lut()),
        }
        Ok(())
    }

    /// Writes `lut[v]` for every source byte `v` at its destination (sizes checked by `write`).
    fn place<const N: usize>(
        self,
        src: &[u8],
        h: usize,
        w: usize,
        c: usize,
        dst: &mut [u8],
        lut: &[[u8; N]; 256],
    ) {
        if self.channels_last {
            for (v, d) in src.iter().zip(dst.chunks_exact_mut(N)) {
                d.copy_from_slice(&lut[usize::from(*v)]);
            }
        } else {
            // (H, W, C) -> (C, H, W): one plane per channel.
            let plane = h * w;
            for (ch, out_plane) in dst.chunks_exact_mut(plane * N).enumerate().take(c) {
                for (d, v) in out_plane
                    .chunks_exact_mut(N)
                    .zip(src.iter().skip(ch).step_by(c.max(1)))
                {
                    d.copy_from_slice(&lut[usize::from(*v)]);
                }
            }
        }
    }
}

// 256-entry tables: the bytes of each value in each element type. Built once per process.
static U8_LUT: [[u8; 1]; 256] = {
    let mut t = [[0u8; 1]; 256];
    let mut v = 0;
    while v < 256 {
        t[v] = [v as u8];
        v += 1;
    }
    t
};

fn f32_lut() -> &'static [[u8; 4]; 256] {
    static LUT: OnceLock<[[u8; 4]; 256]> = OnceLock::new();
    LUT.get_or_init(|| std::array::from_fn(|v| (v as f32 / 255.0).to_ne_bytes()))
}

fn f16_lut() -> &'static [[u8; 2]; 256] {
    static LUT: OnceLock<[[u8; 2]; 256]> = OnceLock::new();
    LUT.get_or_init(|| std::array::from_fn(|v| f16::from_f32(v as f32 / 255.0).to_ne_bytes()))
}

fn bf16_lut() -> &'static [[u8; 2]; 256] {
    static LUT: OnceLock<[[u8; 2]; 256]> = OnceLock::new();
    LUT.get_or_init(|| std::array::from_fn(|v| bf16::from_f32(v as f32 / 255.0).to_ne_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_chw_float32_like_torch() {
        // 1x2 pixels, 3 channels: (r,g,b) = (0,128,255), (1,2,3)
        let src = [0u8, 128, 255, 1, 2, 3];
        let fmt = FrameFormat::LEROBOT;
        let mut dst = vec![0u8; 6 * 4];
        fmt.write(&src, 1, 2, 3, &mut dst).expect("sizes match");
        let vals: Vec<f32> = dst
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(
            vals,
            vec![
                0.0,
                1.0 / 255.0,
                128.0 / 255.0,
                2.0 / 255.0,
                1.0,
                3.0 / 255.0
            ]
        );
        assert_eq!(fmt.shape(1, 2, 3), vec![3, 1, 2]);
    }

    #[test]
    fn uint8_layouts() {
        let src = [1u8, 2, 3, 4, 5, 6];
        let mut hwc = [0u8; 6];
        FrameFormat::default()
            .write(&src, 1, 2, 3, &mut hwc)
            .expect("sizes");
        assert_eq!(hwc, src);
        let chw_fmt = FrameFormat {
            pixel: PixelType::U8,
            channels_last: false,
        };
        let mut chw = [0u8; 6];
        chw_fmt.write(&src, 1, 2, 3, &mut chw).expect("sizes");
        assert_eq!(chw, [1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn half_types_round_the_float32_value() {
        let src = [77u8];
        for (p, expect) in [
            (PixelType::F16, f16::from_f32(77.0 / 255.0).to_bits()),
            (PixelType::BF16, bf16::from_f32(77.0 / 255.0).to_bits()),
        ] {
            let fmt = FrameFormat {
                pixel: p,
                channels_last: true,
            };
            let mut d = [0u8; 2];
            fmt.write(&src, 1, 1, 1, &mut d).expect("sizes");
            assert_eq!(u16::from_ne_bytes(d), expect);
        }
    }

    #[test]
    fn rejects_wrong_sizes() {
        let mut d = [0u8; 3];
        assert!(FrameFormat::LEROBOT
            .write(&[0u8; 3], 1, 1, 3, &mut d)
            .is_err());
    }
}
