//! One channel for errors that cross a native boundary as text: the torch kernels (a torch
//! error's message) and the C API (the MLX primitive's `err` buffer) both write
//! [`report`]'s `[ClassName#id] message`, and the Python side gets the typed error back, with
//! its path, episode and key, from [`take`] of that text, whichever thread raised it (an MLX
//! evaluation fails on MLX's stream thread, not the caller's). The error classes and their
//! names are one table: [`ErrorClass`].

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::error::Error;

/// The class of an error, named as every surface names it (`roboframes.errors` in Python);
/// the discriminant is the C API's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
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
    SourceFormat = 14,
}

impl ErrorClass {
    /// Every class, in code order.
    pub const ALL: [ErrorClass; 14] = [
        ErrorClass::DatasetNotFound,
        ErrorClass::FileRead,
        ErrorClass::Metadata,
        ErrorClass::Parquet,
        ErrorClass::VideoDecode,
        ErrorClass::UnsupportedCodec,
        ErrorClass::ImageDecode,
        ErrorClass::FrameTimestamp,
        ErrorClass::DeltaTimestamps,
        ErrorClass::IndexOutOfRange,
        ErrorClass::InvalidArgument,
        ErrorClass::Internal,
        ErrorClass::Remote,
        ErrorClass::SourceFormat,
    ];

    /// The class of an error.
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
            Error::Source { .. } => ErrorClass::SourceFormat,
        }
    }

    /// The class's name (`roboframes.errors.<name>` in Python).
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::DatasetNotFound => "DatasetNotFoundError",
            ErrorClass::FileRead => "FileReadError",
            ErrorClass::Metadata => "MetadataError",
            ErrorClass::Parquet => "ParquetError",
            ErrorClass::VideoDecode => "VideoDecodeError",
            ErrorClass::UnsupportedCodec => "UnsupportedCodecError",
            ErrorClass::ImageDecode => "ImageDecodeError",
            ErrorClass::FrameTimestamp => "FrameTimestampError",
            ErrorClass::DeltaTimestamps => "DeltaTimestampsError",
            ErrorClass::IndexOutOfRange => "IndexOutOfRangeError",
            ErrorClass::InvalidArgument => "InvalidArgumentError",
            ErrorClass::Internal => "InternalError",
            ErrorClass::Remote => "RemoteError",
            ErrorClass::SourceFormat => "SourceFormatError",
        }
    }
}

/// Errors reported and not yet taken, newest last: `(id, error)`. Bounded: an error nobody
/// takes (a caller that only wanted the text) is dropped after [`KEPT`] newer ones.
static REPORTED: Mutex<(u64, VecDeque<(u64, Error)>)> = Mutex::new((0, VecDeque::new()));

/// How many reported errors are kept for [`take`].
pub const KEPT: usize = 64;

/// The text of an error crossing a native boundary, `[ClassName#id] message`; the error is
/// kept for [`take`].
pub fn report(e: Error) -> String {
    let class = ErrorClass::of(&e);
    // (a poisoned lock: the queue is still consistent, every update is one call)
    let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
    reported.0 = reported.0.wrapping_add(1);
    let id = reported.0;
    let text = format!("[{}#{id}] {e}", class.name());
    if reported.1.len() >= KEPT {
        reported.1.pop_front();
    }
    reported.1.push_back((id, e));
    text
}

/// The class and id at the start of a reported text (`[ClassName#id] ...`), if it has them.
pub fn parse(text: &str) -> Option<(ErrorClass, u64)> {
    let rest = text.trim_start().strip_prefix('[')?;
    let (tag, _) = rest.split_once("] ")?;
    let (name, id) = tag.split_once('#')?;
    let class = ErrorClass::ALL.into_iter().find(|c| c.name() == name)?;
    Some((class, id.parse().ok()?))
}

/// The error that [`report`] turned into `text`, taken (once); None when the text is no
/// report or its error was dropped or taken already.
pub fn take(text: &str) -> Option<Error> {
    let (class, id) = parse(text)?;
    let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
    let i = reported.1.iter().position(|(k, _)| *k == id)?;
    let (_, e) = reported.1.remove(i)?;
    (ErrorClass::of(&e) == class).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;

    #[test]
    fn a_report_is_taken_once_with_its_location() {
        let e = Error::metadata(Location::file("/d/x.parquet").with_episode(3), "bad");
        let text = report(e);
        assert!(text.starts_with("[MetadataError#"), "{text}");
        let back = take(&text).expect("kept");
        assert_eq!(back.location().and_then(|l| l.episode), Some(3));
        assert!(take(&text).is_none());
        assert!(take("[MetadataError] no id").is_none());
        assert!(take("[NoSuchError#1] x").is_none());
        // (one test: the queue is process-wide)
        let first = report(Error::InvalidArgument { msg: "a".into() });
        for _ in 0..KEPT {
            report(Error::InvalidArgument { msg: "b".into() });
        }
        assert!(take(&first).is_none());
    }

    #[test]
    fn every_class_name_parses_back() {
        for c in ErrorClass::ALL {
            assert_eq!(parse(&format!("[{}#7] m", c.name())), Some((c, 7)));
        }
    }
}
