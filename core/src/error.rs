//! Typed errors of the core. Every failure caused by data on disk or by the caller's
//! arguments becomes one of these; nothing derived from user data panics.

use std::fmt;
use std::path::PathBuf;

/// Where in the dataset an error happened: file, episode and feature key, each when known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    pub path: Option<PathBuf>,
    pub episode: Option<i64>,
    pub key: Option<String>,
}

impl Location {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Location {
            path: Some(path.into()),
            ..Default::default()
        }
    }
    pub fn with_episode(mut self, episode: i64) -> Self {
        self.episode = Some(episode);
        self
    }
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = &self.path {
            parts.push(format!("file '{}'", p.display()));
        }
        if let Some(e) = self.episode {
            parts.push(format!("episode {e}"));
        }
        if let Some(k) = &self.key {
            parts.push(format!("key '{k}'"));
        }
        if parts.is_empty() {
            write!(f, "dataset")
        } else {
            write!(f, "{}", parts.join(", "))
        }
    }
}

/// The error type of roboframes-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The dataset root or a file it references does not exist.
    #[error("{at}: not found{}", if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
    NotFound { at: Location, detail: String },

    /// An I/O error while reading a file.
    #[error("{at}: I/O error: {source}")]
    Io {
        at: Location,
        #[source]
        source: std::io::Error,
    },

    /// Metadata that is malformed or inconsistent with itself or with the data files.
    #[error("{at}: invalid metadata: {msg}")]
    Metadata { at: Location, msg: String },

    /// A parquet file that cannot be read (corrupt, truncated, wrong schema).
    #[error("{at}: cannot read parquet: {msg}")]
    Parquet { at: Location, msg: String },

    /// A required column is missing from a parquet file.
    /// A file of another format than LeRobot's (HDF5, ...) is unreadable, has a layout the
    /// reader does not recognise, or holds values it cannot convert.
    #[error("{at}: cannot read {format}: {msg}")]
    Source {
        at: Location,
        format: &'static str,
        msg: String,
    },

    #[error("{at}: missing column '{column}'")]
    MissingColumn { at: Location, column: String },

    /// A video file that cannot be opened or decoded (corrupt, truncated).
    #[error("{at}: cannot decode video: {msg}")]
    Video { at: Location, msg: String },

    /// A video stream in a codec this build of FFmpeg cannot decode.
    #[error("{at}: unsupported video codec '{codec}'")]
    UnsupportedCodec { at: Location, codec: String },

    /// An embedded image (PNG/JPEG bytes in the parquet) that cannot be decoded.
    #[error("{at}: cannot decode image: {msg}")]
    Image { at: Location, msg: String },

    /// No frame lies within `tolerance_s` of the requested time (LeRobot's strict rule).
    #[error(
        "{at}: no frame within tolerance_s={tolerance_s} of t={query_s:.6}s; nearest frame is at \
         {nearest_s:.6}s (distance {distance_s:.6}s)"
    )]
    FrameTimestamp {
        at: Location,
        query_s: f64,
        nearest_s: f64,
        distance_s: f64,
        tolerance_s: f64,
    },

    /// `delta_timestamps` that are not multiples of 1/fps within tolerance, or name unknown keys.
    #[error("invalid delta_timestamps: {msg}")]
    DeltaTimestamps { msg: String },

    /// An item index outside `-len..len` (negative indices count from the end).
    #[error("index {index} out of range for a dataset of {len} frames")]
    IndexOutOfRange { index: i64, len: usize },

    /// A bad argument from the caller (unknown episode, mismatched buffer, ...).
    #[error("invalid argument: {msg}")]
    InvalidArgument { msg: String },

    /// The caller gave up on the work (a prefetched batch that is no longer wanted).
    #[error("cancelled: the batch is no longer wanted")]
    Cancelled,

    /// A remote store that could not serve a file: retries spent on timeouts, dropped
    /// connections or 429/5xx answers, a server that ignores `Range`, an object changed while
    /// being read.
    #[error("{at}: remote read failed: {msg}")]
    Remote { at: Location, msg: String },

    /// A fault inside roboframes, caused neither by the data nor by the arguments (a broken
    /// invariant, a poisoned lock, a caught panic, threads that cannot start). `op` names the
    /// operation that failed.
    #[error("internal error in {op}: {msg} (please report this as a roboframes bug)")]
    Internal { op: String, msg: String },
}

/// Matches the variants that carry a [`Location`], binding it to `$at`.
macro_rules! located {
    ($e:expr, $at:ident => $body:expr) => {
        match $e {
            Error::NotFound { $at, .. }
            | Error::Io { $at, .. }
            | Error::Metadata { $at, .. }
            | Error::Parquet { $at, .. }
            | Error::MissingColumn { $at, .. }
            | Error::Video { $at, .. }
            | Error::UnsupportedCodec { $at, .. }
            | Error::Image { $at, .. }
            | Error::FrameTimestamp { $at, .. }
            | Error::Remote { $at, .. }
            | Error::Source { $at, .. } => Some($body),
            _ => None,
        }
    };
}

impl Error {
    /// The location the error names, if any.
    pub fn location(&self) -> Option<&Location> {
        located!(self, at => at)
    }

    fn location_mut(&mut self) -> Option<&mut Location> {
        located!(self, at => at)
    }

    /// The message without the location it starts with (for reports that show the location
    /// in a column of their own).
    pub fn detail(&self) -> String {
        let full = self.to_string();
        match self.location() {
            Some(at) => full
                .strip_prefix(&format!("{at}: "))
                .map_or_else(|| full.clone(), str::to_owned),
            None => full,
        }
    }

    /// Adds an episode and key to the location of an error that lacks them.
    pub fn within(mut self, episode: Option<i64>, key: Option<&str>) -> Self {
        if let Some(at) = self.location_mut() {
            at.episode = at.episode.or(episode);
            if at.key.is_none() {
                at.key = key.map(str::to_owned);
            }
        }
        self
    }

    /// An I/O error on `path`, as `NotFound` when the file does not exist.
    pub(crate) fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        Self::io_missing(path, e, "")
    }

    /// An I/O error on `path`, as `NotFound` saying `missing` when the file does not exist.
    pub(crate) fn io_missing(path: &std::path::Path, e: std::io::Error, missing: &str) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                at: Location::file(path),
                detail: missing.to_owned(),
            }
        } else {
            Error::Io {
                at: Location::file(path),
                source: e,
            }
        }
    }

    /// An [`Error::Internal`] of operation `op`.
    pub fn internal(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Internal {
            op: op.into(),
            msg: msg.into(),
        }
    }

    /// The [`Error::Internal`] of operation `op` for a caught panic's payload (adapters catch
    /// panics at their FFI boundary; none may cross it).
    pub fn from_panic(op: impl Into<String>, payload: &(dyn std::any::Any + Send)) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        Error::internal(op, format!("panic: {text}"))
    }

    pub(crate) fn metadata(at: Location, msg: impl Into<String>) -> Self {
        Error::Metadata {
            at,
            msg: msg.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_name_the_operation() {
        let e = Error::internal("batch planning", "slot 3 requested twice");
        assert!(
            e.to_string()
                .starts_with("internal error in batch planning: slot 3 requested twice"),
            "{e}"
        );
        assert!(e.location().is_none());
        assert_eq!(e.detail(), e.to_string());
        let located = Error::metadata(Location::file("meta/info.json"), "bad fps");
        assert_eq!(located.detail(), "invalid metadata: bad fps");
        // a caught panic's payload, as `&str` or `String`, becomes the message
        for payload in [
            Box::new("boom") as Box<dyn std::any::Any + Send>,
            Box::new(String::from("boom")),
        ] {
            let p = Error::from_panic("roboframes::get_batch", payload.as_ref());
            assert_eq!(
                p.to_string(),
                "internal error in roboframes::get_batch: panic: boom (please report this as a roboframes bug)"
            );
        }
        // `within` adds nothing to an error that has no location
        let e = e.within(Some(1), Some("cam"));
        assert!(matches!(e, Error::Internal { .. }));
    }
}
