//! Small helpers over the `parquet` crate: list a chunked directory, read chosen columns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::Schema;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use parquet::arrow::ProjectionMask;

use crate::error::{Error, Location, Result};
use crate::store::Source;

/// Every `*.parquet` file below `dir` (one level of `chunk-*` folders or flat), sorted by path.
pub fn list_parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                at: Location::file(dir),
                detail: "directory missing".into(),
            })
        }
        Err(e) => {
            return Err(Error::Io {
                at: Location::file(dir),
                source: e,
            })
        }
    };
    for entry in rd {
        let entry = entry.map_err(|e| Error::Io {
            at: Location::file(dir),
            source: e,
        })?;
        let p = entry.path();
        // (a folder's own type, not a link's target: a link back up would recurse forever)
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            out.extend(list_parquet_files(&p)?);
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn parquet_err(path: &Path, src: &Source, e: impl std::fmt::Display) -> Error {
    // a remote source's own failure (retries spent, a changed object) is not a corrupt file
    if let Some(failure) = src.failure(path) {
        return failure;
    }
    Error::Parquet {
        at: Location::file(path),
        msg: e.to_string(),
    }
}

/// The most rows one parquet file of a dataset may hold (a LeRobot data file holds up to a
/// few million; its footer may claim anything).
pub const MAX_TABLE_ROWS: i64 = 1 << 31;

/// Reads the named top-level columns of a parquet file (all columns when `names` is empty)
/// into one record batch. Names absent from the file are skipped; callers report them.
///
/// The `parquet` crate panics on some corrupt files (negative column offsets in the footer,
/// for one, found by fuzzing): such a panic is caught here and becomes a `Parquet` error
/// naming the file, so a damaged table never takes the process down.
pub fn read_parquet_columns(path: &Path, names: &[String]) -> Result<RecordBatch> {
    read_parquet_rows(path, names, None).map(|(batch, _)| batch)
}

/// [`read_parquet_columns`] of only the rows `rows` (row numbers in the file): only the row
/// groups holding them are read (fetched, for a remote file), and the batch holds exactly those
/// rows (fewer when the file ends first); with the number of rows the whole file holds (its
/// footer's count, checked against the file's size).
pub fn read_parquet_rows(
    path: &Path,
    names: &[String],
    rows: Option<std::ops::Range<u64>>,
) -> Result<(RecordBatch, u64)> {
    crate::store::whole(path, |src| {
        read_parquet_source(path, src, names, rows.clone())
    })
}

fn read_parquet_source(
    path: &Path,
    src: &Source,
    names: &[String],
    rows: Option<std::ops::Range<u64>>,
) -> Result<(RecordBatch, u64)> {
    // (the closure owns nothing shared: a panic inside leaves no state behind)
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_columns(path, src, names, rows)
    }))
    .unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        Err(Error::Parquet {
            at: Location::file(path),
            msg: format!("corrupt parquet file (the parquet reader failed: {why})"),
        })
    })
}

/// Checks every dictionary page against its own size: the decoder allocates room for the number
/// of values a dictionary page's header claims, so a damaged header of a 2 KB file once made it
/// allocate gigabytes (found by fuzzing). A plain-encoded dictionary holds its values back to
/// back: at least a byte per value for any type (4 for byte arrays, their length prefix).
fn check_dictionaries(
    path: &Path,
    src: &Source,
    columns: &[usize],
    groups: Option<&[usize]>,
) -> Result<()> {
    use parquet::basic::Type as Physical;
    use parquet::column::page::Page;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(src.clone_handle(path)?)
        .map_err(|e| parquet_err(path, src, e))?;
    for g in 0..reader.num_row_groups() {
        if groups.is_some_and(|gs| !gs.contains(&g)) {
            continue;
        }
        let group = reader
            .get_row_group(g)
            .map_err(|e| parquet_err(path, src, e))?;
        for &c in columns {
            if c >= group.num_columns() {
                continue;
            }
            let column = group.metadata().column(c);
            if column.dictionary_page_offset().is_none() {
                continue;
            }
            let per_value: u64 = match column.column_type() {
                Physical::BOOLEAN => 0,
                Physical::INT32 | Physical::FLOAT | Physical::BYTE_ARRAY => 4,
                Physical::INT64 | Physical::DOUBLE => 8,
                Physical::INT96 => 12,
                Physical::FIXED_LEN_BYTE_ARRAY => 1,
            };
            let mut pages = group
                .get_column_page_reader(c)
                .map_err(|e| parquet_err(path, src, e))?;
            if let Some(Page::DictionaryPage {
                buf, num_values, ..
            }) = pages
                .get_next_page()
                .map_err(|e| parquet_err(path, src, e))?
            {
                let need = u64::from(num_values).saturating_mul(per_value);
                if need > buf.len() as u64 {
                    return Err(Error::Parquet {
                        at: Location::file(path),
                        msg: format!(
                            "a dictionary page of column '{}' claims {num_values} values in {} \
                             bytes: a damaged page header",
                            column.column_path(),
                            buf.len()
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

fn read_columns(
    path: &Path,
    src: &Source,
    names: &[String],
    wanted: Option<std::ops::Range<u64>>,
) -> Result<(RecordBatch, u64)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(src.clone_handle(path)?)
        .map_err(|e| parquet_err(path, src, e))?;
    // Row counts come from the footer: a damaged one may claim any number, and a reader of
    // no columns (or of run-length encoded ones) would produce that many rows from a few
    // bytes (found by fuzzing: a 2 KB file that read for minutes, growing without end). A
    // LeRobot table has a unique `index` or `episode_index` per row, so it holds at least a
    // bit per row: more rows than 8 per byte of the file is a damaged footer.
    let file_bytes = parquet::file::reader::Length::len(src);
    let limit = i64::try_from(file_bytes.saturating_mul(8))
        .unwrap_or(i64::MAX)
        .min(MAX_TABLE_ROWS);
    let mut rows: i64 = 0;
    for rg in builder.metadata().row_groups() {
        rows = rows
            .checked_add(rg.num_rows())
            .filter(|&n| rg.num_rows() >= 0 && n <= limit)
            .ok_or_else(|| Error::Parquet {
                at: Location::file(path),
                msg: format!(
                    "the footer claims row groups of {} rows in {file_bytes} bytes (at most \
                     {limit}): a damaged footer",
                    rows.saturating_add(rg.num_rows())
                ),
            })?;
    }
    // (checked against `limit` above: not negative)
    let file_rows = u64::try_from(rows).unwrap_or(0);
    let schema = builder.schema().clone();
    let roots: Vec<usize> = if names.is_empty() {
        (0..schema.fields().len()).collect()
    } else {
        names
            .iter()
            .filter_map(|n| schema.index_of(n).ok())
            .collect()
    };
    if roots.is_empty() {
        // nothing to read: the callers report the columns they miss
        return Ok((RecordBatch::new_empty(Arc::new(Schema::empty())), file_rows));
    }
    // the leaf columns read, for the dictionary check (only their pages are fetched)
    let leaves: Vec<usize> = {
        let descr = builder.parquet_schema();
        (0..descr.num_columns())
            .filter(|&i| roots.contains(&descr.get_column_root_idx(i)))
            .collect()
    };
    // the row groups holding `rows`, and the selection of those rows inside them
    let mut groups = None;
    let mut selection = None;
    if let Some(want) = wanted {
        let mut chosen = Vec::new();
        let (mut first_row, mut last_row, mut at) = (None, 0u64, 0u64);
        for (g, rg) in builder.metadata().row_groups().iter().enumerate() {
            let n = u64::try_from(rg.num_rows()).unwrap_or(0);
            let (lo, hi) = (at, at.saturating_add(n));
            if hi > want.start && lo < want.end {
                chosen.push(g);
                first_row.get_or_insert(lo);
                last_row = hi;
            }
            at = hi;
        }
        let base = first_row.unwrap_or(0);
        let skip = want.start.saturating_sub(base);
        // (the file may end first: the caller reports the rows it misses)
        let take = want.end.min(last_row).saturating_sub(want.start);
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        let take = usize::try_from(take).unwrap_or(0);
        selection = Some(RowSelection::from(vec![
            RowSelector::skip(skip),
            RowSelector::select(take),
        ]));
        groups = Some(chosen);
    }
    check_dictionaries(path, src, &leaves, groups.as_deref())?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let mut builder = builder.with_projection(mask);
    if let (Some(g), Some(sel)) = (groups, selection) {
        builder = builder.with_row_groups(g).with_row_selection(sel);
    }
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| parquet_err(path, src, e))?;
    let out_schema = reader.schema();
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| parquet_err(path, src, e))?);
    }
    arrow_select::concat::concat_batches(&out_schema, &batches)
        .map(|b| (b, file_rows))
        .map_err(|e| parquet_err(path, src, e))
}
