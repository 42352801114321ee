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
use std::sync::Once;

use ffmpeg_next as ff;

use crate::error::{Error, Location, Result};

mod convert;
mod index;
mod pool;
mod reader;

pub use convert::RgbConverter;
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

/// Opens a file and finds its best video stream.
pub(crate) fn open_video(path: &Path) -> Result<(ff::format::context::Input, usize)> {
    crate::meta::regular_file(path)?;
    let input = ff::format::input(&path).map_err(|e| Error::Video {
        at: Location::file(path),
        msg: format!("cannot open: {e}"),
    })?;
    let index = input
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| Error::Video {
            at: Location::file(path),
            msg: "no video stream".into(),
        })?
        .index();
    Ok((input, index))
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
