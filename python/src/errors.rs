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
import_exception!(roboframes.errors, RemoteError);

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

/// The `roboframes.errors` class of a core error; its discriminant is the error code of the
/// C API (`capi.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    DatasetNotFound = 1,
    FileRead = 2,
    Metadata = 3,
    Parquet = 4,
    VideoDecode = 5,
    UnsupportedCodec = 6,
    ImageDecode = 7,
    FrameTimestamp = 8,
    DeltaTimestamps = 9,
    IndexOutOfRange = 10,
    InvalidArgument = 11,
    Internal = 12,
    Remote = 13,
}

impl ErrorClass {
    /// The class of a core error.
    pub fn of(e: &Error) -> ErrorClass {
        match e {
            Error::NotFound { .. } => ErrorClass::DatasetNotFound,
            Error::Io { .. } => ErrorClass::FileRead,
            Error::Metadata { .. } | Error::MissingColumn { .. } => ErrorClass::Metadata,
            Error::Parquet { .. } => ErrorClass::Parquet,
            Error::Video { .. } => ErrorClass::VideoDecode,
            Error::UnsupportedCodec { .. } => ErrorClass::UnsupportedCodec,
            Error::Image { .. } => ErrorClass::ImageDecode,
            Error::FrameTimestamp { .. } => ErrorClass::FrameTimestamp,
            Error::DeltaTimestamps { .. } => ErrorClass::DeltaTimestamps,
            Error::IndexOutOfRange { .. } => ErrorClass::IndexOutOfRange,
            Error::InvalidArgument { .. } => ErrorClass::InvalidArgument,
            Error::Internal { .. } | Error::Cancelled => ErrorClass::Internal,
            Error::Remote { .. } => ErrorClass::Remote,
        }
    }

    /// The name of the class in `roboframes.errors`.
    pub fn name(self) -> &'static std::ffi::CStr {
        match self {
            ErrorClass::DatasetNotFound => c"DatasetNotFoundError",
            ErrorClass::FileRead => c"FileReadError",
            ErrorClass::Metadata => c"MetadataError",
            ErrorClass::Parquet => c"ParquetError",
            ErrorClass::VideoDecode => c"VideoDecodeError",
            ErrorClass::UnsupportedCodec => c"UnsupportedCodecError",
            ErrorClass::ImageDecode => c"ImageDecodeError",
            ErrorClass::FrameTimestamp => c"FrameTimestampError",
            ErrorClass::DeltaTimestamps => c"DeltaTimestampsError",
            ErrorClass::IndexOutOfRange => c"IndexOutOfRangeError",
            ErrorClass::InvalidArgument => c"InvalidArgumentError",
            ErrorClass::Internal => c"InternalError",
            ErrorClass::Remote => c"RemoteError",
        }
    }

    /// An exception of this class, made lazily from its constructor arguments.
    fn new_err(self, args: ErrorArgs) -> PyErr {
        match self {
            ErrorClass::DatasetNotFound => DatasetNotFoundError::new_err(args),
            ErrorClass::FileRead => FileReadError::new_err(args),
            ErrorClass::Metadata => MetadataError::new_err(args),
            ErrorClass::Parquet => ParquetError::new_err(args),
            ErrorClass::VideoDecode => VideoDecodeError::new_err(args),
            ErrorClass::UnsupportedCodec => UnsupportedCodecError::new_err(args),
            ErrorClass::ImageDecode => ImageDecodeError::new_err(args),
            ErrorClass::FrameTimestamp => FrameTimestampError::new_err(args),
            ErrorClass::DeltaTimestamps => DeltaTimestampsError::new_err(args),
            ErrorClass::IndexOutOfRange => IndexOutOfRangeError::new_err(args),
            ErrorClass::InvalidArgument => InvalidArgumentError::new_err(args),
            ErrorClass::Internal => InternalError::new_err(args),
            ErrorClass::Remote => RemoteError::new_err(args),
        }
    }
}

/// `(message, path, episode, key)`: the constructor arguments of `roboframes.errors` classes.
type ErrorArgs = (String, Option<String>, Option<i64>, Option<String>);

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
    ErrorClass::of(&e).new_err(args)
}
