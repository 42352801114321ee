//! In-process video decoding with FFmpeg (through `ffmpeg-next`).
//!
//! A [`FrameIndex`] lists every packet of a file's video stream (pts, dts, keyframe flag),
//! built once per file by demuxing without decoding. A query time maps to the frame whose
//! exact pts is nearest (LeRobot's rule: the distance must be `< tolerance_s`), which is right
//! for streams with B-frames too. A [`VideoReader`] decodes a sorted set of frames in one
//! forward pass, seeking only when a later keyframe lets it skip packets, and converts each
//! frame to RGB24 exactly as torchcodec (LeRobot's default backend) does: `sws_scale` with
//! flags 0 and the frame's colorspace coefficients when the width is a multiple of 32, and a
//! `buffer -> copy -> buffersink(rgb24)` filter graph otherwise.
//!
//! Files: `index` (the packet index and frame lookups), `convert` (every raw FFmpeg call:
//! the RGB conversion and the two demuxer calls `ffmpeg-next` does not wrap), `reader` (one
//! open file's decoder state machine) and `pool` (readers and indexes shared by threads).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Once};

use ffmpeg_next as ff;

use crate::error::{Error, Location, Result};
use crate::store::FailureSlot;

mod convert;
mod index;
mod pool;
mod reader;

pub use convert::FrameConverter;
pub use index::{FrameIndex, PacketInfo};
pub use pool::{Assigned, DecoderPool};
pub use reader::VideoReader;

static FFMPEG_INIT: Once = Once::new();

pub(crate) fn init_ffmpeg() {
    FFMPEG_INIT.call_once(|| {
        // `init` only registers devices on old FFmpeg; it cannot fail on supported versions.
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// An opened video file: its demuxer, the index of its video stream, the version of a remote
/// object it reads, and where a remote read records the error FFmpeg sees only as an errno.
pub(crate) struct Opened {
    pub input: ff::format::context::Input,
    pub stream: usize,
    pub version: Option<String>,
    pub io_error: Option<FailureSlot>,
    /// Set, the remote byte source answers zeros instead of fetching (see `FrameIndex::build`).
    pub zeros: Option<Arc<AtomicBool>>,
}

/// The error a remote read of `path` recorded under an FFmpeg failure (retries spent, a
/// changed object), which says more than FFmpeg's errno.
pub(crate) fn remote_failure(slot: &Option<FailureSlot>, path: &Path) -> Option<Error> {
    crate::store::recorded_failure(slot.as_ref()?, path)
}

/// Opens a file and finds its best video stream: a local file through FFmpeg's own I/O, a
/// remote one through a custom I/O context over the block-cached byte source (pinned at
/// `version` when given: the version the frame index was built from).
pub(crate) fn open_video(path: &Path, version: Option<&str>) -> Result<Opened> {
    let at = || Location::file(path);
    let (input, version, io_error, zeros) = match crate::store::remote_object(path, version)? {
        None => {
            crate::fs::regular_file(path)?;
            let input = ff::format::input(&path).map_err(|e| Error::Video {
                at: at(),
                msg: format!("cannot open: {e}"),
            })?;
            (input, None, None, None)
        }
        Some(obj) => {
            let version = obj.version().map(str::to_owned);
            let cursor = crate::store::RemoteCursor::new(obj);
            let slot = cursor.failure();
            let zeros = cursor.zeros.clone();
            let io = ff::format::context::StreamIo::from_read_seek_with_capacity(cursor, 64 * 1024)
                .map_err(|e| Error::internal("remote video I/O", e.to_string()))?;
            let hint = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let input = ff::format::input_from_stream(io, hint.as_deref(), None).map_err(|e| {
                remote_failure(&Some(slot.clone()), path).unwrap_or_else(|| Error::Video {
                    at: at(),
                    msg: format!("cannot open: {e}"),
                })
            })?;
            (input, version, Some(slot), Some(zeros))
        }
    };
    let stream = input
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| Error::Video {
            at: at(),
            msg: "no video stream".into(),
        })?
        .index();
    Ok(Opened {
        input,
        stream,
        version,
        io_error,
        zeros,
    })
}

/// Reads the next packet of `input` into `packet`, releasing the data `packet` held first.
/// (`av_read_frame`, behind ffmpeg-next's `Packet::read`, overwrites the packet without
/// unreferencing it: a reused packet leaked every packet's data, about the size of the file
/// per index build and per reader.)
pub(crate) fn read_packet(
    packet: &mut ff::Packet,
    input: &mut ff::format::context::Input,
) -> std::result::Result<(), ff::Error> {
    *packet = ff::Packet::empty(); // (the old one's Drop unreferences its data)
    packet.read(input)
}
