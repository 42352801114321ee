//! Small helpers over the `parquet` crate: list a chunked directory, read chosen columns.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{RecordBatch, RecordBatchReader};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::error::{Error, Location, Result};

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
        if p.is_dir() {
            out.extend(list_parquet_files(&p)?);
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Parquet {
        at: Location::file(path),
        msg: e.to_string(),
    }
}

/// Reads the named top-level columns of a parquet file (all columns when `names` is empty)
/// into one record batch. Names absent from the file are skipped; callers report them.
pub fn read_parquet_columns(path: &Path, names: &[String]) -> Result<RecordBatch> {
    crate::meta::regular_file(path)?;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(path, e))?;
    let schema = builder.schema().clone();
    let builder = if names.is_empty() {
        builder
    } else {
        let roots: Vec<usize> = names
            .iter()
            .filter_map(|n| schema.index_of(n).ok())
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        builder.with_projection(mask)
    };
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| parquet_err(path, e))?;
    let out_schema = reader.schema();
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| parquet_err(path, e))?);
    }
    arrow_select::concat::concat_batches(&out_schema, &batches).map_err(|e| parquet_err(path, e))
}
