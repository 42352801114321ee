//! Embedded image features: PNG/JPEG bytes in the data parquet, decoded to uint8 HWC.

use crate::error::{Error, Location, Result};
use crate::table::{ColumnData, DataFile};

/// Decodes the image of `key` at `row` to interleaved `(H, W, C)` bytes, `dims` = `(H, W, C)`.
pub fn decode_image(
    file: &DataFile,
    key: &str,
    row: usize,
    (h, w, c): (usize, usize, usize),
) -> Result<Vec<u8>> {
    let at = || Location::file(&file.path).with_key(key);
    let bytes = match file.columns.get(key) {
        Some(ColumnData::Image(a)) if row < arrow_array::Array::len(a) => {
            if arrow_array::Array::is_null(a, row) {
                return Err(Error::Image {
                    at: at(),
                    msg: format!("row {row} has no image bytes"),
                });
            }
            a.value(row)
        }
        _ => {
            return Err(Error::MissingColumn {
                at: Location::file(&file.path),
                column: key.to_owned(),
            })
        }
    };
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
