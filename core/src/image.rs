//! Embedded image features: PNG/JPEG bytes in the data parquet, decoded to uint8 HWC; and depth
//! maps stored as images (LeRobot 0.6: TIFF bytes of the recorded depth), decoded to float32.

use crate::error::{Error, Location, Result};
use std::cell::RefCell;

use crate::table::{ColumnData, DataFile, FrameBytes};

/// The encoded bytes of image feature `key` at `row`.
fn image_bytes<'f>(file: &'f DataFile, key: &str, row: usize) -> Result<&'f [u8]> {
    let at = || Location::file(&file.path).with_key(key);
    match file.columns.get(key) {
        Some(ColumnData::Image(a)) if row < arrow_array::Array::len(a) => {
            if arrow_array::Array::is_null(a, row) {
                return Err(Error::Image {
                    at: at(),
                    msg: format!("row {row} has no image bytes"),
                });
            }
            Ok(a.value(row))
        }
        _ => Err(Error::MissingColumn {
            at: Location::file(&file.path),
            column: key.to_owned(),
        }),
    }
}

/// The most bytes a depth image may decode to (a frame size from a broken file must not
/// exhaust memory): 256 MiB.
const MAX_DEPTH_IMAGE_BYTES: usize = 256 << 20;

/// Decodes the depth map of `key` at `row`, stored as a TIFF image (how LeRobot 0.6 stores depth
/// without videos: uint16 for millimetres, float32 for metres; also uint8), to its values as
/// float32 (native-endian bytes, `(H, W)`), as LeRobot reads them (PIL's `I;16` as float32, `F`
/// as it is). Any other sample type, channel count or image format is an error naming it.
pub fn decode_depth_image(
    file: &DataFile,
    key: &str,
    row: usize,
    (h, w, _): (usize, usize, usize),
) -> Result<Vec<u8>> {
    use tiff::decoder::{Decoder, DecodingResult, Limits};
    let at = || Location::file(&file.path).with_key(key);
    let bad = |m: String| Error::Image {
        at: at(),
        msg: format!("row {row}: {m}"),
    };
    let bytes = image_bytes(file, key, row)?;
    if !(bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*")) {
        return Err(bad(
            "a depth map stored as an image must be TIFF (as LeRobot 0.6 writes it); this one is not"
                .into(),
        ));
    }
    let mut limits = Limits::default();
    limits.decoding_buffer_size = MAX_DEPTH_IMAGE_BYTES;
    limits.intermediate_buffer_size = MAX_DEPTH_IMAGE_BYTES;
    let mut dec = Decoder::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("cannot read TIFF: {e}")))?
        .with_limits(limits);
    let (iw, ih) = dec
        .dimensions()
        .map_err(|e| bad(format!("cannot read TIFF: {e}")))?;
    if iw as usize != w || ih as usize != h {
        return Err(bad(format!(
            "depth image is {iw}x{ih}, info.json says {w}x{h}"
        )));
    }
    let color = dec
        .colortype()
        .map_err(|e| bad(format!("cannot read TIFF: {e}")))?;
    if !matches!(color, tiff::ColorType::Gray(_)) {
        return Err(bad(format!(
            "depth image is {color:?}; a depth map has one grey channel"
        )));
    }
    let values: Vec<f32> = match dec
        .read_image()
        .map_err(|e| bad(format!("cannot decode TIFF: {e}")))?
    {
        DecodingResult::U8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::F32(v) => v,
        _ => {
            return Err(bad(
                "depth image samples are not uint8, uint16 or float32 (LeRobot's depth types)"
                    .into(),
            ))
        }
    };
    if values.len() != w * h {
        return Err(bad(format!(
            "depth image holds {} values for {w}x{h} pixels",
            values.len()
        )));
    }
    Ok(values.into_iter().flat_map(f32::to_ne_bytes).collect())
}

thread_local! {
    /// Per decoding thread, the bytes a frame was read as (encoded rows) and the pixels it
    /// decoded to, reused from frame to frame: a fresh buffer per frame costs the kernel's
    /// zeroing of new pages, several times the copy itself at 640x480.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Decodes the image of `key` at `row` to interleaved `(H, W, C)` bytes, `dims` = `(H, W, C)`,
/// and hands them to `consume` (they live in a buffer the thread reuses).
pub fn with_image<R>(
    file: &DataFile,
    key: &str,
    row: usize,
    dims: (usize, usize, usize),
    consume: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<R> {
    // (taken out of the cell for the call, and put back: a nested call would find it empty,
    // not borrowed)
    let (mut raw, mut pixels) = BUFFERS.with(RefCell::take);
    let out =
        fill_image(file, key, row, dims, &mut raw, &mut pixels).and_then(|()| consume(&pixels));
    BUFFERS.with(|b| b.replace((raw, pixels)));
    out
}

/// Decodes the image of `key` at `row` into `pixels` (`raw`: scratch for encoded frames).
fn fill_image(
    file: &DataFile,
    key: &str,
    row: usize,
    (h, w, c): (usize, usize, usize),
    raw: &mut Vec<u8>,
    pixels: &mut Vec<u8>,
) -> Result<()> {
    let at = || Location::file(&file.path).with_key(key);
    let failed = |m: String| Error::Image {
        at: at(),
        msg: format!("row {row}: {m}"),
    };
    match file.columns.get(key) {
        Some(ColumnData::Frames(frames)) => match frames.read_into(row, raw)? {
            FrameBytes::Pixels => {
                if raw.len() != h * w * c {
                    return Err(failed(format!(
                        "frame holds {} bytes, the feature's shape ({h}, {w}, {c}) needs {}",
                        raw.len(),
                        h * w * c
                    )));
                }
                std::mem::swap(raw, pixels);
                Ok(())
            }
            FrameBytes::Encoded(dct) => {
                decode_bytes(raw, Some((h, w, c)), pixels, dct).map_err(failed)
            }
        },
        _ => decode_bytes(
            image_bytes(file, key, row)?,
            Some((h, w, c)),
            pixels,
            JpegDct::Accurate,
        )
        .map_err(failed),
    }
}

/// An image's `(H, W, C)`.
type Dims = (usize, usize, usize);

/// True for JPEG bytes (the SOI marker, then another marker).
fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// The `(H, W, C)` of a JPEG's header (8-bit grey or colour; CMYK is refused).
fn jpeg_dims(bytes: &[u8]) -> std::result::Result<(usize, usize, usize), String> {
    use turbojpeg::Colorspace;
    let header = turbojpeg::read_header(bytes).map_err(|e| format!("cannot read JPEG: {e}"))?;
    let c = match header.colorspace {
        Colorspace::Gray => 1,
        Colorspace::YCbCr | Colorspace::RGB => 3,
        other => {
            return Err(format!(
                "JPEG in colorspace {other:?}; only grey and colour JPEGs are read"
            ))
        }
    };
    Ok((header.height, header.width, c))
}

/// The `(H, W, C)` an encoded image decodes to, from its header (JPEG) or by decoding it.
pub(crate) fn encoded_dims(bytes: &[u8]) -> std::result::Result<(usize, usize, usize), String> {
    if is_jpeg(bytes) {
        return jpeg_dims(bytes);
    }
    let (_, dims) = decode_unchecked(bytes)?;
    Ok(dims)
}

/// Which inverse DCT decodes a JPEG: the readers a dataset is meant for differ, and so do their
/// pixels (by a few levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegDct {
    /// libjpeg's accurate integer IDCT: PIL, OpenCV and torchvision (LeRobot's image features,
    /// HDF5 recordings).
    Accurate,
    /// libjpeg's fast integer IDCT: TensorFlow's `decode_jpeg`/`decode_image` default, so
    /// TFDS's and RLDS loaders' images.
    Fast,
}

/// Decodes encoded image bytes into `out` as `(H, W, C)` 8-bit pixels, checked against
/// `expect` when given (before a JPEG's pixels are allocated). JPEGs are decoded by
/// libjpeg-turbo with the IDCT `dct` names (and its smooth chroma upsampling, every reader's
/// default): the same pixels as the reader the data is meant for. Trailing bytes after the
/// image (a padded row) are ignored.
fn decode_bytes(
    bytes: &[u8],
    expect: Option<(usize, usize, usize)>,
    out: &mut Vec<u8>,
    dct: JpegDct,
) -> std::result::Result<(), String> {
    let (h, w, c) = if is_jpeg(bytes) {
        let dims = jpeg_dims(bytes)?;
        check_dims(dims, expect)?;
        let (h, w, c) = dims;
        let size = h
            .checked_mul(w)
            .and_then(|n| n.checked_mul(c))
            .ok_or_else(|| format!("a JPEG of {w}x{h} pixels is too large"))?;
        out.clear();
        out.resize(size, 0);
        turbo_decode(bytes, out, dims, dct)?;
        dims
    } else {
        let (pixels, dims) = decode_unchecked(bytes)?;
        *out = pixels;
        dims
    };
    check_dims((h, w, c), expect)?;
    if out.len() != h * w * c {
        return Err(format!(
            "decoded {} bytes for {h}x{w}x{c} pixels",
            out.len()
        ));
    }
    Ok(())
}

/// Decodes a JPEG of `(h, w, c)` (its header's; c = 1 or 3) into `out` with libjpeg-turbo's
/// TurboJPEG API and the IDCT `dct` names.
fn turbo_decode(
    bytes: &[u8],
    out: &mut [u8],
    (h, w, c): Dims,
    dct: JpegDct,
) -> std::result::Result<(), String> {
    use libc::{c_int, c_ulong};
    use turbojpeg_sys as tj;
    let too_large = || format!("a JPEG of {w}x{h} pixels is too large");
    let width = c_int::try_from(w).map_err(|_| too_large())?;
    let height = c_int::try_from(h).map_err(|_| too_large())?;
    let pitch = w.checked_mul(c).ok_or_else(too_large)?;
    let pitch_c = c_int::try_from(pitch).map_err(|_| too_large())?;
    let len = c_ulong::try_from(bytes.len()).map_err(|_| too_large())?;
    if out.len() < pitch.saturating_mul(h) {
        return Err(format!("{} bytes for a {w}x{h}x{c} JPEG", out.len()));
    }
    let format = if c == 1 {
        tj::TJPF_TJPF_GRAY
    } else {
        tj::TJPF_TJPF_RGB
    };
    let flags = match dct {
        JpegDct::Accurate => tj::TJFLAG_ACCURATEDCT,
        JpegDct::Fast => tj::TJFLAG_FASTDCT,
    };
    let flags = c_int::try_from(flags).map_err(|_| "TurboJPEG flags".to_string())?;
    // SAFETY: the handle is checked non-null, used by this thread only and destroyed once;
    // `bytes` is read for `len` bytes; `out` holds at least `pitch * height` bytes (checked
    // above), what tjDecompress2 writes for a `width` x `height` image of `format` (3 or 1
    // bytes a pixel, `c` from the header) at that pitch; the error text is copied before the
    // handle is destroyed.
    unsafe {
        let handle = tj::tjInitDecompress();
        if handle.is_null() {
            return Err("cannot start a JPEG decoder".into());
        }
        let rc = tj::tjDecompress2(
            handle,
            bytes.as_ptr(),
            len,
            out.as_mut_ptr(),
            width,
            pitch_c,
            height,
            format as c_int,
            flags,
        );
        let err = (rc != 0).then(|| {
            let text = tj::tjGetErrorStr2(handle);
            let text = if text.is_null() {
                "unknown error".to_string()
            } else {
                std::ffi::CStr::from_ptr(text)
                    .to_string_lossy()
                    .into_owned()
            };
            let warning = tj::tjGetErrorCode(handle) == tj::TJERR_TJERR_WARNING as c_int;
            (warning, text)
        });
        tj::tjDestroy(handle);
        match err {
            // libjpeg's harmless warnings leave the pixels whole, and PIL, OpenCV and
            // TensorFlow accept such images; any other warning (a damaged scan, a JPEG cut
            // short) is refused, as they refuse it. (TurboJPEG keeps reporting a warning
            // after a later fatal error, with the fatal error's text: the text decides.)
            Some((true, e)) if harmless_jpeg_warning(&e) => Ok(()),
            Some((_, e)) => Err(format!("cannot decode JPEG: {e}")),
            None => Ok(()),
        }
    }
}

/// libjpeg warnings that leave a JPEG's pixels as its encoder meant them.
fn harmless_jpeg_warning(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "extraneous bytes before marker",
        "unknown jfif revision",
        "unknown adobe color transform",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// A 12x8 RGB JPEG of a ramp (pixel byte `i` is `i * step % 256`): the small frames of the
/// sources' Rust tests and fuzz seeds.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn test_jpeg(step: usize) -> std::io::Result<Vec<u8>> {
    let pixels: Vec<u8> = (0..8 * 12 * 3).map(|i| (i * step % 256) as u8).collect();
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width: 12,
        pitch: 36,
        height: 8,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 90, turbojpeg::Subsamp::None)
        .map(|j| j.to_vec())
        .map_err(std::io::Error::other)
}

/// Decodes encoded image bytes (JPEG with the IDCT `dct` names, PNG) as roboframes decodes
/// image features: `(H, W, C)` 8-bit pixels and their dims.
pub fn decode_encoded_image(
    bytes: &[u8],
    dct: JpegDct,
) -> Result<(Vec<u8>, (usize, usize, usize))> {
    let fail = |m: String| Error::Image {
        at: Location::default(),
        msg: m,
    };
    let dims = encoded_dims(bytes).map_err(fail)?;
    let mut out = Vec::new();
    decode_bytes(bytes, Some(dims), &mut out, dct).map_err(fail)?;
    Ok((out, dims))
}

/// A size that disagrees with the feature's is refused rather than converted (LeRobot hands the
/// decoded image to torchvision's ToTensor, which keeps the image's own channels).
fn check_dims(
    (h, w, c): (usize, usize, usize),
    expect: Option<(usize, usize, usize)>,
) -> std::result::Result<(), String> {
    match expect {
        Some((eh, ew, _)) if (h, w) != (eh, ew) => {
            Err(format!("image is {w}x{h}, info.json says {ew}x{eh}"))
        }
        Some((_, _, ec)) if c != ec => Err(format!(
            "image has {c} channels of 8 bits, info.json says {ec} channels of 8 bits"
        )),
        _ => Ok(()),
    }
}

/// Decodes a non-JPEG image (PNG, ...) with the image crate: its own 8-bit bytes and dims.
fn decode_unchecked(bytes: &[u8]) -> std::result::Result<(Vec<u8>, Dims), String> {
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let color = img.color();
    let channels = usize::from(color.channel_count());
    if color.bytes_per_pixel() != color.channel_count() {
        return Err(format!(
            "image is {color:?} ({channels} channels of {} bits); roboframes reads 8-bit images",
            8 * usize::from(color.bytes_per_pixel()) / channels.max(1)
        ));
    }
    let dims = (img.height() as usize, img.width() as usize, channels);
    Ok((img.into_bytes(), dims))
}
