//! Core errors as `roboframes.errors` exceptions: the one place that maps them. Call sites
//! return [`NativeResult`] and use `?` on core results and Python calls alike.

use pyo3::import_exception;
use pyo3::prelude::*;
use roboframes_core::Error;

import_exception!(roboframes.errors, DatasetNotFoundError);
import_exception!(roboframes.errors, FileReadError);
import_exception!(roboframes.errors, MetadataError);
import_exception!(roboframes.errors, ParquetError);
import_exception!(roboframes.errors, VideoDecodeError);
import_exception!(roboframes.errors, UnsupportedCodecError);
import_exception!(roboframes.errors, ImageDecodeError);
import_exception!(roboframes.errors, FrameTimestampError);
import_exception!(roboframes.errors, DeltaTimestampsError);
import_exception!(roboframes.errors, IndexOutOfRangeError);
import_exception!(roboframes.errors, InvalidArgumentError);
import_exception!(roboframes.errors, InternalError);

/// An error of a native call: from the core, or from Python itself.
#[derive(Debug)]
pub enum NativeError {
    Core(Error),
    Python(PyErr),
}

pub type NativeResult<T> = Result<T, NativeError>;

impl From<Error> for NativeError {
    fn from(e: Error) -> Self {
        NativeError::Core(e)
    }
}

impl From<PyErr> for NativeError {
    fn from(e: PyErr) -> Self {
        NativeError::Python(e)
    }
}

impl From<NativeError> for PyErr {
    fn from(e: NativeError) -> PyErr {
        match e {
            NativeError::Core(e) => core_error(e),
            NativeError::Python(e) => e,
        }
    }
}

/// Runs a core call; a panic (a bug: the core returns errors for bad data and arguments)
/// becomes an [`Error::Internal`] naming `op`, so Python gets `roboframes.errors.InternalError`
/// instead of pyo3's `PanicException` (which is not an `Exception`).
pub fn guarded<T>(op: &str, call: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .unwrap_or_else(|panic| Err(Error::from_panic(op, panic.as_ref())))
}

/// The `roboframes.errors` exception of a core error: `(message, path, episode, key)` are the
/// exception's constructor arguments, so it is made lazily, without the GIL.
fn core_error(e: Error) -> PyErr {
    let at = e.location().cloned().unwrap_or_default();
    let args = (
        e.to_string(),
        at.path.map(|p| p.display().to_string()),
        at.episode,
        at.key,
    );
    match e {
        Error::NotFound { .. } => DatasetNotFoundError::new_err(args),
        Error::Io { .. } => FileReadError::new_err(args),
        Error::Metadata { .. } | Error::MissingColumn { .. } => MetadataError::new_err(args),
        Error::Parquet { .. } => ParquetError::new_err(args),
        Error::Video { .. } => VideoDecodeError::new_err(args),
        Error::UnsupportedCodec { .. } => UnsupportedCodecError::new_err(args),
        Error::Image { .. } => ImageDecodeError::new_err(args),
        Error::FrameTimestamp { .. } => FrameTimestampError::new_err(args),
        Error::DeltaTimestamps { .. } => DeltaTimestampsError::new_err(args),
        Error::IndexOutOfRange { .. } => IndexOutOfRangeError::new_err(args),
        Error::InvalidArgument { .. } => InvalidArgumentError::new_err(args),
        Error::Internal { .. } => InternalError::new_err(args),
    }
}
