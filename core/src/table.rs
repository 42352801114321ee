//! Tabular data of one `data/chunk-*/file-*.parquet`, held as contiguous typed buffers so
//! that windows are gathered with plain copies (no per-row objects).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BinaryArray, OffsetSizeTrait, StringArray};
use arrow_schema::DataType;

use crate::error::{Error, Location, Result};
use crate::meta::{DType, Feature, FeatureKind};
use crate::parquet_io::read_parquet_rows;

/// One feature's values for every row of a data file.
#[derive(Debug)]
pub enum ColumnData {
    /// `per_row` elements of `dtype` per row, native-endian bytes, rows back to back. `dtype`
    /// is the item dtype ([`DType::item_dtype`]), converted once at load time.
    Fixed {
        dtype: DType,
        per_row: usize,
        bytes: Vec<u8>,
    },
    /// One string per row.
    Str(StringArray),
    /// Encoded image bytes (PNG/JPEG) per row.
    Image(BinaryArray),
    /// Nested values per row (language columns).
    Values(Vec<crate::value::Value>),
    /// Frames read a row at a time from another source (an HDF5 image dataset): never loaded
    /// whole.
    Frames(std::sync::Arc<dyn RowFrames>),
}

/// What a [`RowFrames`] column's frame holds once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameBytes {
    /// `(H, W, C)` uint8 pixels, rows back to back.
    Pixels,
    /// Encoded image bytes (JPEG/PNG, possibly followed by padding), JPEGs decoded with the
    /// IDCT of the reader the data is meant for.
    Encoded(crate::image::JpegDct),
}

/// A camera column whose frames are read one row at a time (from a file another library
/// wrote), on the decoding threads.
pub trait RowFrames: std::fmt::Debug + Send + Sync {
    /// Reads the frame at `row` into `buf` (its contents replaced; callers reuse one buffer
    /// across frames) and says what it holds.
    fn read_into(&self, row: usize, buf: &mut Vec<u8>) -> Result<FrameBytes>;
}

/// The rows of one data parquet file.
#[derive(Debug)]
pub struct DataFile {
    pub path: PathBuf,
    /// Global `index` of the first row; rows are contiguous in `index`.
    pub first_index: i64,
    pub rows: usize,
    /// Rows of the whole file (more than `rows` when only some were read).
    pub file_rows: u64,
    pub columns: HashMap<String, ColumnData>,
}

impl DataFile {
    /// Reads the listed (non-video) features of a data file.
    pub fn load(path: &Path, features: &[&Feature]) -> Result<DataFile> {
        Self::load_rows(path, features, None)
    }

    /// Reads the listed (non-video) features of rows `rows` of a data file (all rows when
    /// None): only the row groups holding them are read.
    pub fn load_rows(
        path: &Path,
        features: &[&Feature],
        rows: Option<std::ops::Range<u64>>,
    ) -> Result<DataFile> {
        Self::load_placed(path, features, rows, None)
    }

    /// Reads the listed (non-video) features of a whole file whose first row is at `place` in
    /// the dataset, whatever its `index` column holds: a v2.x episode file, whose rows LeRobot
    /// 0.3 finds by their place (the lengths of the episodes before it), returning `index` as
    /// stored.
    pub fn load_at(path: &Path, features: &[&Feature], place: i64) -> Result<DataFile> {
        Self::load_placed(path, features, None, Some(place))
    }

    fn load_placed(
        path: &Path,
        features: &[&Feature],
        rows: Option<std::ops::Range<u64>>,
        place: Option<i64>,
    ) -> Result<DataFile> {
        let names: Vec<String> = features.iter().map(|f| f.name.clone()).collect();
        let (batch, file_rows) = read_parquet_rows(path, &names, rows)?;
        let rows = batch.num_rows();
        let mut columns = HashMap::new();
        for f in features {
            let at = || Location::file(path).with_key(f.name.clone());
            let arr = batch
                .column_by_name(&f.name)
                .ok_or_else(|| Error::MissingColumn {
                    at: Location::file(path),
                    column: f.name.clone(),
                })?;
            let col = match &f.kind {
                FeatureKind::Numeric(dt) => fixed_column(arr, dt.item_dtype(), f, rows)
                    .map_err(|m| Error::Parquet { at: at(), msg: m })?,
                FeatureKind::String => {
                    let c = arrow_cast::cast(arr, &DataType::Utf8).map_err(|e| Error::Parquet {
                        at: at(),
                        msg: format!("string feature is not text: {e}"),
                    })?;
                    ColumnData::Str(c.as_string::<i32>().clone())
                }
                FeatureKind::Image => {
                    image_column(arr).map_err(|m| Error::Parquet { at: at(), msg: m })?
                }
                FeatureKind::Language => ColumnData::Values(
                    crate::value::column_values(arr)
                        .and_then(|v| crate::value::canonical_language(&f.name, v))
                        .map_err(|m| Error::Parquet {
                            at: at(),
                            msg: format!("language column: {m}"),
                        })?,
                ),
                FeatureKind::Video => continue,
            };
            columns.insert(f.name.clone(), col);
        }
        let first_index = match (place, columns.get("index")) {
            (
                Some(place),
                Some(ColumnData::Fixed {
                    dtype: DType::I64,
                    per_row: 1,
                    ..
                }),
            ) => place,
            (
                _,
                Some(ColumnData::Fixed {
                    dtype: DType::I64,
                    bytes,
                    per_row: 1,
                }),
            ) => {
                let idx = i64s(bytes);
                let first = idx.first().copied().unwrap_or(0);
                // (checked: an index near i64::MAX would wrap)
                let expected = |r: usize| i64::try_from(r).ok().and_then(|r| first.checked_add(r));
                for (r, v) in idx.iter().enumerate() {
                    if Some(*v) != expected(r) {
                        return Err(Error::metadata(
                            Location::file(path).with_key("index"),
                            format!(
                                "'index' is not contiguous: row {r} holds {v}, expected {}",
                                expected(r).map_or("a value past i64".into(), |e| e.to_string())
                            ),
                        ));
                    }
                }
                first
            }
            _ => {
                return Err(Error::metadata(
                    Location::file(path).with_key("index"),
                    "'index' must be an int64 scalar feature",
                ))
            }
        };
        Ok(DataFile {
            path: path.to_owned(),
            first_index,
            rows,
            file_rows,
            columns,
        })
    }

    /// Row number of a global index in this file.
    pub fn row_of(&self, global_index: i64) -> Result<usize> {
        global_index
            .checked_sub(self.first_index)
            .and_then(|r| usize::try_from(r).ok())
            .filter(|&r| r < self.rows)
            .ok_or_else(|| {
                Error::metadata(
                    Location::file(&self.path),
                    format!(
                        "global index {global_index} is not in this file (it holds {} rows from \
                         index {})",
                        self.rows, self.first_index
                    ),
                )
            })
    }

    /// The bytes of one row of a fixed-size column.
    pub fn fixed_row(&self, key: &str, row: usize) -> Option<&[u8]> {
        match self.columns.get(key)? {
            ColumnData::Fixed {
                dtype,
                per_row,
                bytes,
            } => {
                let n = per_row * dtype.size();
                bytes.get(row * n..(row + 1) * n)
            }
            _ => None,
        }
    }

    /// The `timestamp` of a row (float32, as every float column after [`DType::item_dtype`]).
    pub fn timestamp(&self, row: usize) -> Option<f32> {
        match self.columns.get("timestamp")? {
            ColumnData::Fixed {
                dtype: DType::F32,
                bytes,
                per_row: 1,
            } => bytes
                .get(row * 4..row * 4 + 4)
                .and_then(|b| b.try_into().ok())
                .map(f32::from_ne_bytes),
            _ => None,
        }
    }

    /// The values of a numeric column for `rows`, as f64, rows back to back (`per_row` values
    /// each); None when the column is not numeric or the rows are out of range.
    pub fn values_f64(&self, key: &str, rows: std::ops::Range<usize>) -> Option<(Vec<f64>, usize)> {
        let ColumnData::Fixed {
            dtype,
            per_row,
            bytes,
        } = self.columns.get(key)?
        else {
            return None;
        };
        let row_bytes = per_row.checked_mul(dtype.size())?;
        let raw =
            bytes.get(rows.start.checked_mul(row_bytes)?..rows.end.checked_mul(row_bytes)?)?;
        let vals: Vec<f64> = match dtype {
            DType::Bool | DType::U8 => raw.iter().map(|&b| f64::from(b)).collect(),
            DType::I64 => raw
                .chunks_exact(8)
                .filter_map(|c| c.try_into().ok())
                .map(|b| i64::from_ne_bytes(b) as f64)
                .collect(),
            DType::F32 => raw
                .chunks_exact(4)
                .filter_map(|c| c.try_into().ok())
                .map(|b| f64::from(f32::from_ne_bytes(b)))
                .collect(),
            _ => return None,
        };
        Some((vals, *per_row))
    }

    /// An int64 scalar of a row (`task_index`, `episode_index`, ...).
    pub fn int_scalar(&self, key: &str, row: usize) -> Option<i64> {
        match self.columns.get(key)? {
            ColumnData::Fixed {
                dtype: DType::I64,
                bytes,
                per_row: 1,
            } => bytes
                .get(row * 8..row * 8 + 8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_ne_bytes),
            _ => None,
        }
    }
}

fn i64s(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            i64::from_ne_bytes(a)
        })
        .collect()
}

/// Per-row lengths and child values of a list-typed array; None for other arrays.
fn list_level(arr: &ArrayRef) -> Option<(Vec<usize>, ArrayRef)> {
    fn parts<O: OffsetSizeTrait>(offs: &[O], values: &ArrayRef) -> (Vec<usize>, ArrayRef) {
        let first = offs.first().map_or(0, |o| o.as_usize());
        let last = offs.last().map_or(0, |o| o.as_usize());
        let lens = offs
            .windows(2)
            .map(|w| match w {
                [a, b] => b.as_usize().saturating_sub(a.as_usize()),
                _ => 0,
            })
            .collect();
        (lens, values.slice(first, last.saturating_sub(first)))
    }
    match arr.data_type() {
        DataType::List(_) => {
            let l = arr.as_list::<i32>();
            Some(parts(l.value_offsets(), l.values()))
        }
        DataType::LargeList(_) => {
            let l = arr.as_list::<i64>();
            Some(parts(l.value_offsets(), l.values()))
        }
        DataType::FixedSizeList(_, n) => {
            let l = arr.as_fixed_size_list();
            let n = usize::try_from(*n).unwrap_or(0);
            Some((
                vec![n; l.len()],
                l.values().slice(l.offset() * n, l.len() * n),
            ))
        }
        _ => None,
    }
}

/// Flattens nested lists down to their leaf values, checking that every list at depth `d`
/// holds `shape[d]` values and that there are `rows * prod(shape)` values in all.
fn flatten(arr: &ArrayRef, rows: usize, shape: &[usize]) -> std::result::Result<ArrayRef, String> {
    let mut cur = arr.clone();
    let mut depth = 0;
    while let Some((lens, child)) = list_level(&cur) {
        if cur.null_count() > 0 {
            return Err("column has null rows".into());
        }
        if let Some(&want) = shape.get(depth) {
            if let Some((i, l)) = lens.iter().enumerate().find(|(_, l)| **l != want) {
                return Err(format!(
                    "list {i} at depth {depth} has {l} values, the feature's shape {shape:?} says {want}"
                ));
            }
        }
        cur = child;
        depth += 1;
    }
    if matches!(cur.data_type(), DataType::Struct(_)) {
        return Err("numeric feature is stored as a struct".into());
    }
    if cur.null_count() > 0 {
        return Err("column has null values".into());
    }
    let numel: usize = shape.iter().product();
    if cur.len() != rows * numel {
        return Err(format!(
            "expected {numel} value(s) per row ({} in all for {rows} rows), found {}",
            rows * numel,
            cur.len()
        ));
    }
    Ok(cur)
}

fn fixed_column(
    arr: &ArrayRef,
    dtype: DType,
    f: &Feature,
    rows: usize,
) -> std::result::Result<ColumnData, String> {
    let numel = f.numel();
    let leaf = flatten(arr, rows, &f.shape)?;
    let target = dtype
        .arrow()
        .ok_or_else(|| format!("no column can be read as {}", dtype.name()))?;
    if leaf.null_count() > 0 {
        return Err(format!(
            "{} of its values are null (missing): a value that cannot be read is an error, never a 0",
            leaf.null_count()
        ));
    }
    // `safe: false`: a value the target type cannot hold (a uint64 beyond int64, text that is
    // no number) is an error; the default turns it into a null, read as 0 or false
    let opts = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    let leaf = arrow_cast::cast_with_options(&leaf, &target, &opts).map_err(|e| {
        format!(
            "cannot convert {} to {}: {e}",
            leaf.data_type(),
            dtype.name()
        )
    })?;
    if leaf.null_count() > 0 {
        return Err(format!(
            "{} of its values cannot be read as {}",
            leaf.null_count(),
            dtype.name()
        ));
    }
    let bytes = if dtype == DType::Bool {
        leaf.as_boolean()
            .iter()
            .map(|b| u8::from(b == Some(true)))
            .collect()
    } else {
        let data = leaf.to_data();
        let buf = data
            .buffers()
            .first()
            .ok_or_else(|| "column has no value buffer".to_string())?;
        let size = dtype.size();
        let start = data.offset() * size;
        buf.as_slice()
            .get(start..start + data.len() * size)
            .ok_or_else(|| "column buffer is shorter than its length".to_string())?
            .to_vec()
    };
    Ok(ColumnData::Fixed {
        dtype,
        per_row: numel,
        bytes,
    })
}

fn image_column(arr: &ArrayRef) -> std::result::Result<ColumnData, String> {
    let bytes = match arr.data_type() {
        DataType::Struct(_) => arr
            .as_struct()
            .column_by_name("bytes")
            .cloned()
            .ok_or_else(|| "image struct has no 'bytes' field".to_string())?,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => arr.clone(),
        other => {
            return Err(format!(
                "image feature stored as {other}, expected struct{{bytes, path}}"
            ))
        }
    };
    let bin = arrow_cast::cast(&bytes, &DataType::Binary).map_err(|e| e.to_string())?;
    Ok(ColumnData::Image(bin.as_binary::<i32>().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{Float32Builder, ListBuilder};
    use std::sync::Arc;

    fn lists(rows: &[&[f32]]) -> ArrayRef {
        let mut b = ListBuilder::new(Float32Builder::new());
        for r in rows {
            b.values().append_slice(r);
            b.append(true);
        }
        Arc::new(b.finish())
    }

    #[test]
    fn flattens_lists_of_the_declared_shape() {
        let a = lists(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let leaf = flatten(&a, 2, &[2]).expect("valid");
        assert_eq!(leaf.len(), 4);
    }

    #[test]
    fn rejects_ragged_rows_even_when_the_total_fits() {
        let a = lists(&[&[1.0, 2.0, 3.0], &[4.0]]);
        let e = flatten(&a, 2, &[2]).expect_err("ragged");
        assert!(e.contains("list 0 at depth 0 has 3 values"), "{e}");
    }
}
