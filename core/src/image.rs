//! Embedded image features: PNG/JPEG bytes in the data parquet, decoded to uint8 HWC; and depth
//! maps stored as images (LeRobot 0.6: TIFF bytes of the recorded depth), decoded to float32.

use crate::error::{Error, Location, Result};
use crate::table::{ColumnData, DataFile};

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

/// Decodes the image of `key` at `row` to interleaved `(H, W, C)` bytes, `dims` = `(H, W, C)`.
pub fn decode_image(
    file: &DataFile,
    key: &str,
    row: usize,
    (h, w, c): (usize, usize, usize),
) -> Result<Vec<u8>> {
    let at = || Location::file(&file.path).with_key(key);
    let bytes = image_bytes(file, key, row)?;
    let img = image::load_from_memory(bytes).map_err(|e| Error::Image {
        at: at(),
        msg: format!("row {row}: {e}"),
    })?;
    if img.width() as usize != w || img.height() as usize != h {
        return Err(Error::Image {
            at: at(),
            msg: format!(
                "row {row}: image is {}x{}, info.json says {w}x{h}",
                img.width(),
                img.height()
            ),
        });
    }
    // LeRobot hands the decoded image to torchvision's ToTensor, which keeps the image's own
    // channels; an image that disagrees with info.json is refused rather than converted.
    let color = img.color();
    let channels = usize::from(color.channel_count());
    if channels != c || color.bytes_per_pixel() != color.channel_count() {
        return Err(Error::Image {
            at: at(),
            msg: format!(
                "row {row}: image is {color:?} ({channels} channels of {} bits), info.json says {c} \
                 channels of 8 bits",
                8 * usize::from(color.bytes_per_pixel()) / channels.max(1)
            ),
        });
    }
    // 8-bit with `c` channels (checked above): the image's own bytes, unconverted
    Ok(img.into_bytes())
}
