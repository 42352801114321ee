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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use ff::ffi;
use ffmpeg_next as ff;

use crate::error::{Error, Location, Result};

static FFMPEG_INIT: Once = Once::new();

fn init_ffmpeg() {
    FFMPEG_INIT.call_once(|| {
        // `init` only registers devices on old FFmpeg; it cannot fail on supported versions.
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// Opens a file and finds its best video stream.
fn open_video(path: &Path) -> Result<(ff::format::context::Input, usize)> {
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

/// One packet of the video stream, in decode order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacketInfo {
    pub pts: i64,
    pub dts: i64,
    pub key: bool,
}

/// Every packet of a file's video stream, with the lookups the planner needs.
#[derive(Debug)]
pub struct FrameIndex {
    pub path: PathBuf,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Stream time base as (num, den).
    pub time_base: (i32, i32),
    /// Packets in decode order.
    pub packets: Vec<PacketInfo>,
    /// Decode positions sorted by pts.
    by_pts: Vec<usize>,
    /// For each decode position, the decode position of the keyframe decoding must start at.
    start_of: Vec<usize>,
}

impl FrameIndex {
    /// Seconds of a pts in this stream.
    pub fn seconds(&self, pts: i64) -> f64 {
        pts as f64 * self.time_base.0 as f64 / self.time_base.1 as f64
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// True when the stream has no frames.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The frame whose pts is nearest to `t` seconds: (decode position, its time in seconds).
    pub fn nearest(&self, t: f64) -> Option<(usize, f64)> {
        if self.by_pts.is_empty() {
            return None;
        }
        let time_at = |i: usize| -> f64 {
            self.by_pts
                .get(i)
                .and_then(|p| self.packets.get(*p))
                .map_or(f64::INFINITY, |p| self.seconds(p.pts))
        };
        let i = self.by_pts.partition_point(|p| {
            self.packets
                .get(*p)
                .is_some_and(|pk| self.seconds(pk.pts) < t)
        });
        let mut best: Option<(usize, f64)> = None;
        for j in [i.saturating_sub(1), i] {
            if j < self.by_pts.len() {
                let tj = time_at(j);
                if best.is_none_or(|(_, tb)| (tj - t).abs() < (tb - t).abs()) {
                    best = Some((j, tj));
                }
            }
        }
        best.and_then(|(j, tj)| self.by_pts.get(j).map(|p| (*p, tj)))
    }

    /// Decode position of the keyframe to start at for the frame at decode position `pos`.
    pub fn start_of(&self, pos: usize) -> usize {
        self.start_of.get(pos).copied().unwrap_or(0)
    }

    /// Builds the index of a file by reading its packets (no decoding).
    pub fn build(path: &Path) -> Result<FrameIndex> {
        init_ffmpeg();
        let at = || Location::file(path);
        if !path.exists() {
            return Err(Error::NotFound {
                at: at(),
                detail: "video file missing".into(),
            });
        }
        let (mut input, stream_index) = open_video(path)?;
        let (codec, width, height, time_base) = {
            let stream = input.stream(stream_index).ok_or_else(|| Error::Video {
                at: at(),
                msg: "no video stream".into(),
            })?;
            let params = stream.parameters();
            let id = params.id();
            // SAFETY: `params` borrows a live stream of `input`; the codecpar pointer is valid.
            let (w, h) = unsafe {
                let p = params.as_ptr();
                ((*p).width, (*p).height)
            };
            if ff::decoder::find(id).is_none() {
                return Err(Error::UnsupportedCodec {
                    at: at(),
                    codec: format!("{id:?}").to_lowercase(),
                });
            }
            let tb = stream.time_base();
            if tb.denominator() == 0 || tb.numerator() == 0 {
                return Err(Error::Video {
                    at: at(),
                    msg: "stream has no time base".into(),
                });
            }
            (
                format!("{id:?}").to_lowercase(),
                u32::try_from(w).unwrap_or(0),
                u32::try_from(h).unwrap_or(0),
                (tb.numerator(), tb.denominator()),
            )
        };
        let mut packets = Vec::new();
        let mut packet = ff::Packet::empty();
        loop {
            match packet.read(&mut input) {
                Ok(()) => {}
                Err(ff::Error::Eof) => break,
                Err(e) => {
                    return Err(Error::Video {
                        at: at(),
                        msg: format!("cannot read packets (truncated or corrupt file?): {e}"),
                    })
                }
            }
            if packet.stream() != stream_index {
                continue;
            }
            let (pts, dts) = match (packet.pts(), packet.dts()) {
                (Some(p), Some(d)) => (p, d),
                (Some(p), None) => (p, p),
                (None, Some(d)) => (d, d),
                (None, None) => {
                    return Err(Error::Video {
                        at: at(),
                        msg: format!("packet {} has no timestamp", packets.len()),
                    })
                }
            };
            packets.push(PacketInfo {
                pts,
                dts,
                key: packet.is_key(),
            });
        }
        if packets.is_empty() {
            return Err(Error::Video {
                at: at(),
                msg: "video stream has no frames".into(),
            });
        }
        Ok(Self::from_packets(
            path, codec, width, height, time_base, packets,
        ))
    }

    /// Builds the lookups from a packet list (decode order).
    pub fn from_packets(
        path: &Path,
        codec: String,
        width: u32,
        height: u32,
        time_base: (i32, i32),
        packets: Vec<PacketInfo>,
    ) -> FrameIndex {
        let mut by_pts: Vec<usize> = (0..packets.len()).collect();
        by_pts.sort_by_key(|&i| packets.get(i).map_or(i64::MAX, |p| p.pts));
        let mut start_of = Vec::with_capacity(packets.len());
        let (mut last_key, mut prev_key) = (0usize, 0usize);
        for (i, p) in packets.iter().enumerate() {
            if p.key && i > 0 {
                prev_key = last_key;
                last_key = i;
            }
            let k_pts = packets.get(last_key).map_or(i64::MIN, |k| k.pts);
            // A leading picture (pts before its keyframe's, open GOP) needs the previous GOP.
            start_of.push(if p.pts < k_pts { prev_key } else { last_key });
        }
        FrameIndex {
            path: path.to_owned(),
            codec,
            width,
            height,
            time_base,
            packets,
            by_pts,
            start_of,
        }
    }
}

/// An owned `SwsContext` configured like torchcodec's.
struct Sws {
    ptr: *mut ffi::SwsContext,
    key: (i32, i32, i32, i32),
}

impl Drop for Sws {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from sws_getContext and is freed exactly once, here.
        unsafe { ffi::sws_freeContext(self.ptr) }
    }
}

enum Converter {
    Sws(Sws),
    Graph {
        graph: ff::filter::Graph,
        key: (i32, i32, i32, i32, i32),
    },
}

/// RGB24 conversion, bit-exact with torchcodec's CPU path on the same FFmpeg.
#[derive(Default)]
pub struct RgbConverter {
    conv: Option<Converter>,
}

// SAFETY: the converter exclusively owns its SwsContext / filter graph; FFmpeg objects are not
// bound to a thread, and the pool hands a converter to one thread at a time.
unsafe impl Send for RgbConverter {}

impl RgbConverter {
    /// Converts `frame` into `dst`, which must hold exactly `height * width * 3` bytes.
    pub fn convert(
        &mut self,
        frame: &ff::frame::Video,
        dst: &mut [u8],
    ) -> std::result::Result<(), String> {
        let (w, h) = (frame.width() as i32, frame.height() as i32);
        let need = (w as usize) * (h as usize) * 3;
        if w <= 0 || h <= 0 || dst.len() != need {
            return Err(format!(
                "decoded frame is {w}x{h}, output slot holds {} bytes",
                dst.len()
            ));
        }
        // SAFETY: frame is a valid decoded frame; reading plain fields.
        let (fmt, colorspace, sar) = unsafe {
            let f = frame.as_ptr();
            (
                (*f).format,
                (*f).colorspace as i32,
                (*f).sample_aspect_ratio,
            )
        };
        if w % 32 == 0 {
            let key = (w, h, fmt, colorspace);
            if !matches!(&self.conv, Some(Converter::Sws(s)) if s.key == key) {
                self.conv = Some(Converter::Sws(new_sws(w, h, fmt, colorspace)?));
            }
            let Some(Converter::Sws(s)) = &self.conv else {
                return Err("internal: converter missing".into());
            };
            let dst_ptrs: [*mut u8; 4] = [
                dst.as_mut_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ];
            let dst_lines: [i32; 4] = [w * 3, 0, 0, 0];
            // SAFETY: the context was made for exactly this w/h/format; `dst` holds h rows of
            // w*3 bytes (checked above); the source planes belong to `frame`, alive for the call.
            let rows = unsafe {
                let f = frame.as_ptr();
                ffi::sws_scale(
                    s.ptr,
                    (*f).data.as_ptr() as *const *const u8,
                    (*f).linesize.as_ptr(),
                    0,
                    h,
                    dst_ptrs.as_ptr(),
                    dst_lines.as_ptr(),
                )
            };
            if rows != h {
                return Err(format!("sws_scale converted {rows} of {h} rows"));
            }
            Ok(())
        } else {
            let key = (w, h, fmt, sar.num, sar.den);
            if !matches!(&self.conv, Some(Converter::Graph { key: k, .. }) if *k == key) {
                self.conv = Some(Converter::Graph {
                    graph: new_graph(w, h, fmt, sar)?,
                    key,
                });
            }
            let Some(Converter::Graph { graph, .. }) = &mut self.conv else {
                return Err("internal: converter missing".into());
            };
            let mut src = graph.get("in").ok_or("filter graph has no source")?;
            // `ffmpeg-next`'s `Source::add` uses av_buffersrc_add_frame, which takes the frame's
            // references and resets it behind a shared borrow; write_frame adds its own
            // reference and leaves `frame` intact (as torchcodec does).
            // SAFETY: `src` is the graph's buffer source and `frame` a valid decoded frame.
            let r = unsafe { ffi::av_buffersrc_write_frame(src.as_mut_ptr(), frame.as_ptr()) };
            if r < 0 {
                return Err(format!("filter graph input: {}", ff::Error::from(r)));
            }
            let mut out = ff::frame::Video::empty();
            let mut sink = graph.get("out").ok_or("filter graph has no sink")?;
            sink.sink()
                .frame(&mut out)
                .map_err(|e| format!("filter graph output: {e}"))?;
            if out.width() as i32 != w || out.height() as i32 != h {
                return Err("filter graph changed the frame size".into());
            }
            let stride = out.stride(0);
            let data = out.data(0);
            let row = (w as usize) * 3;
            for (y, d) in dst.chunks_exact_mut(row).enumerate() {
                let s = data
                    .get(y * stride..y * stride + row)
                    .ok_or("filter graph output is shorter than the frame")?;
                d.copy_from_slice(s);
            }
            Ok(())
        }
    }
}

fn new_sws(w: i32, h: i32, fmt: i32, colorspace: i32) -> std::result::Result<Sws, String> {
    // SAFETY: plain FFmpeg calls with valid sizes; every returned pointer is checked, and the
    // tables returned by sws_getCoefficients are static.
    unsafe {
        let src_fmt: ffi::AVPixelFormat = std::mem::transmute::<i32, ffi::AVPixelFormat>(fmt);
        let ptr = ffi::sws_getContext(
            w,
            h,
            src_fmt,
            w,
            h,
            ffi::AVPixelFormat::AV_PIX_FMT_RGB24,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null(),
        );
        if ptr.is_null() {
            return Err(format!("sws_getContext failed for pixel format {fmt}"));
        }
        let sws = Sws {
            ptr,
            key: (w, h, fmt, colorspace),
        };
        let mut inv_table: *mut i32 = std::ptr::null_mut();
        let mut table: *mut i32 = std::ptr::null_mut();
        let (mut src_range, mut dst_range, mut brightness, mut contrast, mut saturation) =
            (0, 0, 0, 0, 0);
        let r = ffi::sws_getColorspaceDetails(
            ptr,
            &mut inv_table,
            &mut src_range,
            &mut table,
            &mut dst_range,
            &mut brightness,
            &mut contrast,
            &mut saturation,
        );
        if r == -1 {
            return Err("sws_getColorspaceDetails failed".into());
        }
        let coeffs = ffi::sws_getCoefficients(colorspace);
        let r = ffi::sws_setColorspaceDetails(
            ptr, coeffs, src_range, coeffs, dst_range, brightness, contrast, saturation,
        );
        if r == -1 {
            return Err("sws_setColorspaceDetails failed".into());
        }
        Ok(sws)
    }
}

fn new_graph(
    w: i32,
    h: i32,
    fmt: i32,
    sar: ffi::AVRational,
) -> std::result::Result<ff::filter::Graph, String> {
    let mut graph = ff::filter::Graph::new();
    let buffer = ff::filter::find("buffer").ok_or("FFmpeg has no 'buffer' filter")?;
    let sink = ff::filter::find("buffersink").ok_or("FFmpeg has no 'buffersink' filter")?;
    let args = format!(
        "video_size={w}x{h}:pix_fmt={fmt}:time_base=1/1:pixel_aspect={}/{}",
        sar.num,
        if sar.den == 0 { 1 } else { sar.den }
    );
    graph
        .add(&buffer, "in", &args)
        .map_err(|e| format!("buffer filter: {e}"))?;
    graph
        .add(&sink, "out", "")
        .map_err(|e| format!("buffersink filter: {e}"))?;
    graph
        .get("out")
        .ok_or("no sink")?
        .set_pixel_format(ff::format::Pixel::RGB24);
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse("copy"))
        .map_err(|e| format!("filter graph: {e}"))?;
    graph.validate().map_err(|e| format!("filter graph: {e}"))?;
    Ok(graph)
}

/// An open file with its decoder, positioned somewhere in the stream.
pub struct VideoReader {
    pub index: Arc<FrameIndex>,
    input: ff::format::context::Input,
    stream_index: usize,
    decoder: ff::decoder::Video,
    /// Decode position of the next packet to feed, when the decoder state is continuous.
    next_feed: Option<usize>,
    /// Decode position of the keyframe the decoder started from after the last seek.
    fed_from: usize,
    /// Pts of the last frame the decoder output since the last seek.
    last_out: Option<i64>,
    eof_sent: bool,
    converter: RgbConverter,
    frame: ff::frame::Video,
    /// Frames the decoder output since the pool last counted them.
    decoded: u64,
}

// SAFETY: a reader exclusively owns its demuxer, decoder and converter; none is bound to the
// thread that made it, and the pool lends a reader to one thread at a time.
unsafe impl Send for VideoReader {}

impl VideoReader {
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::Video {
            at: Location::file(&self.index.path),
            msg: msg.into(),
        }
    }

    /// Opens a file whose index is known.
    pub fn open(index: Arc<FrameIndex>, threads: usize) -> Result<VideoReader> {
        init_ffmpeg();
        let path = index.path.clone();
        let at = || Location::file(&path);
        let (input, stream_index) = open_video(&path)?;
        let stream = input.stream(stream_index).ok_or_else(|| Error::Video {
            at: at(),
            msg: "no video stream".into(),
        })?;
        let mut ctx =
            ff::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| {
                Error::Video {
                    at: at(),
                    msg: format!("cannot configure decoder: {e}"),
                }
            })?;
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Frame,
            count: threads.max(1),
            ..Default::default()
        });
        let decoder = ctx.decoder().video().map_err(|e| match e {
            ff::Error::DecoderNotFound => Error::UnsupportedCodec {
                at: at(),
                codec: index.codec.clone(),
            },
            e => Error::Video {
                at: at(),
                msg: format!("cannot open decoder: {e}"),
            },
        })?;
        Ok(VideoReader {
            index,
            input,
            stream_index,
            decoder,
            next_feed: Some(0),
            fed_from: 0,
            last_out: None,
            eof_sent: false,
            converter: RgbConverter::default(),
            frame: ff::frame::Video::empty(),
            decoded: 0,
        })
    }

    /// Repositions the demuxer so that the next packet fed is the keyframe at decode
    /// position `k`.
    fn seek_to(&mut self, k: usize) -> Result<()> {
        let target = *self
            .index
            .packets
            .get(k)
            .ok_or_else(|| self.err(format!("seek to packet {k} outside the stream")))?;
        self.decoder.flush();
        self.last_out = None;
        self.eof_sent = false;
        self.next_feed = None;
        if k == 0 {
            return self.rewind();
        }
        // SAFETY: input is an open demuxer; av_seek_frame only repositions it.
        let r = unsafe {
            ffi::av_seek_frame(
                self.input.as_mut_ptr(),
                self.stream_index as i32,
                target.dts,
                ffi::AVSEEK_FLAG_BACKWARD,
            )
        };
        if r < 0 {
            return self.rewind();
        }
        // Read up to the keyframe; the first packet of the stream tells where the seek landed.
        // Packets before the keyframe are skipped by counting from the landing position.
        let mut packet = ff::Packet::empty();
        let landed = loop {
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.stream_index => {
                    break Some(packet.dts().or(packet.pts()))
                }
                Ok(()) => continue,
                Err(_) => break None,
            }
        };
        let landed_pos = landed.flatten().and_then(|d| {
            // the landing packet is at or before the target keyframe, and dts are unique
            // and increasing in decode order
            let pk = &self.index.packets;
            let i = pk.partition_point(|p| p.dts < d);
            (pk.get(i).is_some_and(|p| p.dts == d) && i <= k).then_some(i)
        });
        match landed_pos {
            Some(i) if i == k => {
                self.send(&packet)?;
                self.next_feed = Some(k + 1);
                self.fed_from = k;
                Ok(())
            }
            Some(i) => {
                // Landed earlier: decode from there (it is a keyframe or we skip to k).
                let start_key = self.index.packets.get(i).is_some_and(|p| p.key);
                if start_key {
                    self.send(&packet)?;
                    self.next_feed = Some(i + 1);
                    self.fed_from = i;
                    Ok(())
                } else {
                    self.skip_until(i + 1, k)
                }
            }
            None => self.rewind(),
        }
    }

    /// Reads packets (without decoding) from position `from` until the one at `k`, and feeds it.
    fn skip_until(&mut self, mut from: usize, k: usize) -> Result<()> {
        let mut packet = ff::Packet::empty();
        while from <= k {
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.stream_index => {
                    if from == k {
                        self.send(&packet)?;
                    }
                    from += 1;
                }
                Ok(()) => {}
                Err(e) => return Err(self.err(format!("stream ended early: {e}"))),
            }
        }
        self.next_feed = Some(k + 1);
        self.fed_from = k;
        Ok(())
    }

    fn rewind(&mut self) -> Result<()> {
        // Reopening is the one repositioning every demuxer supports exactly.
        let fresh = ff::format::input(&self.index.path)
            .map_err(|e| self.err(format!("cannot reopen: {e}")))?;
        self.input = fresh;
        self.decoder.flush();
        self.next_feed = Some(0);
        self.fed_from = 0;
        self.last_out = None;
        self.eof_sent = false;
        Ok(())
    }

    fn send(&mut self, packet: &ff::Packet) -> Result<()> {
        match self.decoder.send_packet(packet) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.err(format!("decoder rejected packet: {e}"))),
        }
    }

    /// Returns the next decoded frame (in presentation order) into `self.frame`;
    /// false at the end of the stream.
    fn next_frame(&mut self) -> Result<bool> {
        let mut packet = ff::Packet::empty();
        loop {
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) => {
                    self.decoded += 1;
                    return Ok(true);
                }
                Err(ff::Error::Eof) => return Ok(false),
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {}
                Err(e) => return Err(self.err(format!("decoding failed: {e}"))),
            }
            if self.eof_sent {
                return Ok(false);
            }
            loop {
                match packet.read(&mut self.input) {
                    Ok(()) if packet.stream() == self.stream_index => {
                        self.send(&packet)?;
                        if let Some(n) = self.next_feed.as_mut() {
                            *n += 1;
                        }
                        break;
                    }
                    Ok(()) => continue,
                    Err(ff::Error::Eof) => {
                        self.decoder
                            .send_eof()
                            .map_err(|e| self.err(format!("flushing decoder: {e}")))?;
                        self.eof_sent = true;
                        break;
                    }
                    Err(e) => {
                        return Err(self.err(format!("cannot read packet (corrupt file?): {e}")))
                    }
                }
            }
        }
    }

    fn frame_pts(&self) -> Option<i64> {
        self.frame.pts().or_else(|| self.frame.timestamp())
    }

    /// Packets this reader must still feed to output the frame at decode position `pos`
    /// without seeking: `Some(0)` when it is the frame output last, `None` when a seek is
    /// needed (the decoder has not been fed continuously from the frame's keyframe, has
    /// already passed the frame, or a later keyframe lets it skip packets).
    pub fn forward_cost(&self, pos: usize) -> Option<usize> {
        let target = self.index.packets.get(pos)?.pts;
        if self.last_out == Some(target) {
            return Some(0);
        }
        let k = self.index.start_of(pos);
        let n = self.next_feed?;
        let continuous = !self.eof_sent
            && self.fed_from <= k
            && k <= n
            && self.last_out.is_none_or(|l| l < target);
        continuous.then(|| (pos + 1).saturating_sub(n))
    }

    /// Feeds and decodes forward until the frame at `target_pts` is in `self.frame`.
    fn decode_until(&mut self, target_pts: i64) -> Result<()> {
        loop {
            if !self.next_frame()? {
                return Err(self.err(format!(
                    "decoder ended before the frame at pts {target_pts} (t={:.6}s): truncated file?",
                    self.index.seconds(target_pts)
                )));
            }
            let Some(p) = self.frame_pts() else {
                // `self.frame` no longer holds the frame `last_out` names
                self.last_out = None;
                continue;
            };
            self.last_out = Some(p);
            match p.cmp(&target_pts) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(()),
                std::cmp::Ordering::Greater => {
                    return Err(self.err(format!(
                        "decoder skipped the frame at pts {target_pts} (next output pts {p})"
                    )))
                }
            }
        }
    }

    /// Decodes the frames at the given decode positions (any order, duplicates allowed) and
    /// hands each decoded frame to `sink(i, converter, frame)` for every `i` requesting it.
    pub fn decode<F>(&mut self, wanted: &[usize], mut sink: F) -> Result<()>
    where
        F: FnMut(usize, &mut RgbConverter, &ff::frame::Video) -> Result<()>,
    {
        let index = self.index.clone();
        let pts_of = |pos: usize| index.packets.get(pos).map(|p| p.pts);
        // Order requests by pts, the order the decoder outputs frames in.
        let mut order: Vec<usize> = (0..wanted.len()).collect();
        order.sort_by_key(|&i| wanted.get(i).and_then(|&p| pts_of(p)).unwrap_or(i64::MAX));
        let mut j = 0;
        while j < order.len() {
            let Some(&pos) = order.get(j).and_then(|&i| wanted.get(i)) else {
                break;
            };
            let target_pts =
                pts_of(pos).ok_or_else(|| self.err(format!("frame {pos} not in the stream")))?;
            // The frame the decoder output last (a window's previous frame, asked for again by
            // the next batch) is still in `self.frame`: no decoding needed.
            if self.last_out != Some(target_pts) {
                if self.forward_cost(pos).is_none() {
                    self.seek_to(self.index.start_of(pos))?;
                }
                self.decode_until(target_pts)?;
            }
            // Deliver to every request of this pts.
            while let Some(&i) = order.get(j) {
                if wanted.get(i).and_then(|&q| pts_of(q)) != Some(target_pts) {
                    break;
                }
                sink(i, &mut self.converter, &self.frame)?;
                j += 1;
            }
        }
        Ok(())
    }
}

/// How a part of a batch gets its reader (see [`DecoderPool::assign`]).
pub enum Assigned {
    /// This reader, taken from the pool for the part.
    Reader(Box<VideoReader>),
    /// A newly opened reader.
    New,
    /// Whichever reader of the file is free when the part starts.
    Shared,
}

/// Position in `readers` of the reader of `path` that reaches the frame at decode position
/// `pos` with the least decoding and without a seek (ties: least recently used), if any.
fn closest(readers: &[(u64, Box<VideoReader>)], path: &Path, pos: usize) -> Option<usize> {
    readers
        .iter()
        .enumerate()
        .filter(|(_, (_, r))| r.index.path == path)
        .filter_map(|(i, (tick, r))| r.forward_cost(pos).map(|c| (c, *tick, i)))
        .min()
        .map(|(_, _, i)| i)
}

/// Open readers and frame indexes, shared by all threads. Keeps at most `per_file` idle
/// readers of one file and `capacity` in all.
pub struct DecoderPool {
    capacity: usize,
    per_file: usize,
    threads_per_decoder: usize,
    idle: Mutex<Vec<(u64, Box<VideoReader>)>>,
    indexes: Mutex<HashMap<PathBuf, Arc<FrameIndex>>>,
    tick: std::sync::atomic::AtomicU64,
    decoded: std::sync::atomic::AtomicU64,
}

impl DecoderPool {
    /// A pool keeping at most `per_file` idle readers of one file and `capacity` in all.
    pub fn new(capacity: usize, per_file: usize, threads_per_decoder: usize) -> DecoderPool {
        DecoderPool {
            capacity: capacity.max(1),
            per_file: per_file.max(1),
            threads_per_decoder: threads_per_decoder.max(1),
            idle: Mutex::new(Vec::new()),
            indexes: Mutex::new(HashMap::new()),
            tick: std::sync::atomic::AtomicU64::new(0),
            decoded: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Decides, before a batch runs, the readers of the parts of one file that start at decode
    /// positions `firsts`: each part that continues where an idle reader stopped (without a seek)
    /// gets that reader; the other parts get the file's remaining idle
    /// readers (least recently used first), then new readers while the file has fewer than
    /// `per_file`; the rest take an idle reader of the file when they start (or open one when
    /// none is idle, beyond the limit only while all are busy; checkin closes the surplus).
    /// Interleaved sequential reads thus keep one positioned reader each, and random reads a
    /// bounded set of readers.
    pub fn assign(&self, path: &Path, firsts: &[usize]) -> Vec<Assigned> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let mut mine: Vec<(u64, Box<VideoReader>)> = Vec::new();
        let mut i = 0;
        while i < idle.len() {
            if idle.get(i).is_some_and(|(_, r)| r.index.path == path) {
                mine.push(idle.swap_remove(i));
            } else {
                i += 1;
            }
        }
        drop(idle);
        let readers = mine.len();
        let mut out: Vec<Assigned> = firsts.iter().map(|_| Assigned::Shared).collect();
        let mut unmatched: Vec<usize> = Vec::new();
        for (part, &pos) in firsts.iter().enumerate() {
            match (closest(&mine, path, pos), out.get_mut(part)) {
                (Some(j), Some(slot)) => *slot = Assigned::Reader(mine.swap_remove(j).1),
                _ => unmatched.push(part),
            }
        }
        mine.sort_by_key(|(tick, _)| *tick); // least recently used first
        let mut rest = mine.into_iter();
        let mut new = readers;
        for part in unmatched {
            let Some(slot) = out.get_mut(part) else {
                continue;
            };
            if let Some((_, r)) = rest.next() {
                *slot = Assigned::Reader(r);
            } else if new < self.per_file {
                *slot = Assigned::New;
                new += 1;
            }
        }
        // readers no part wanted go back to the pool as they were (same ticks, same count)
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(rest);
        out
    }

    /// Opens a new reader of `path`.
    pub fn open(&self, path: &Path) -> Result<Box<VideoReader>> {
        let ix = self.index(path)?;
        Ok(Box::new(VideoReader::open(ix, self.threads_per_decoder)?))
    }

    /// The frame index of a file, built on first use.
    pub fn index(&self, path: &Path) -> Result<Arc<FrameIndex>> {
        if let Some(ix) = self.indexes.lock().ok().and_then(|m| m.get(path).cloned()) {
            return Ok(ix);
        }
        let ix = Arc::new(FrameIndex::build(path)?);
        if let Ok(mut m) = self.indexes.lock() {
            m.entry(path.to_owned()).or_insert_with(|| ix.clone());
        }
        Ok(ix)
    }

    /// Lends a reader for `path` about to decode the frame at decode position `pos`: the idle
    /// reader that reaches it with the least decoding, else the least recently used idle
    /// reader of the file (it will seek), else a newly opened one.
    pub fn checkout(&self, path: &Path, pos: usize) -> Result<Box<VideoReader>> {
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let best = closest(&idle, path, pos).or_else(|| {
                idle.iter()
                    .enumerate()
                    .filter(|(_, (_, r))| r.index.path == path)
                    .min_by_key(|(_, (tick, _))| *tick)
                    .map(|(i, _)| i)
            });
            if let Some(i) = best {
                return Ok(idle.swap_remove(i).1);
            }
        }
        self.open(path)
    }

    /// Returns a reader; the least recently used idle readers beyond `per_file` for its file
    /// or `capacity` in all are closed.
    pub fn checkin(&self, mut reader: Box<VideoReader>) {
        let t = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.decoded.fetch_add(
            std::mem::take(&mut reader.decoded),
            std::sync::atomic::Ordering::Relaxed,
        );
        let path = reader.index.path.clone();
        let closed: Vec<(u64, Box<VideoReader>)> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push((t, reader));
            let mut closed = Vec::new();
            loop {
                let same = idle.iter().filter(|(_, r)| r.index.path == path).count();
                let victim = if same > self.per_file {
                    idle.iter()
                        .enumerate()
                        .filter(|(_, (_, r))| r.index.path == path)
                        .min_by_key(|(_, (t, _))| *t)
                        .map(|(i, _)| i)
                } else if idle.len() > self.capacity {
                    idle.iter()
                        .enumerate()
                        .min_by_key(|(_, (t, _))| *t)
                        .map(|(i, _)| i)
                } else {
                    None
                };
                match victim {
                    Some(i) => closed.push(idle.swap_remove(i)),
                    None => break,
                }
            }
            closed
        };
        drop(closed); // closed outside the lock
    }

    /// Frames decoded by the readers returned to the pool so far (for tests and benchmarks).
    pub fn frames_decoded(&self) -> u64 {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Number of idle open readers (for tests and stats).
    pub fn open_readers(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(pts: i64, dts: i64, key: bool) -> PacketInfo {
        PacketInfo { pts, dts, key }
    }

    #[test]
    fn nearest_and_start_with_bframes() {
        // I0 P3 B1 B2 | I4 P7 B5 B6  (decode order), pts in 1/10 s
        let pk = vec![
            pk(0, -1, true),
            pk(3, 0, false),
            pk(1, 1, false),
            pk(2, 2, false),
            pk(4, 3, true),
            pk(7, 4, false),
            pk(5, 5, false),
            pk(6, 6, false),
        ];
        let ix = FrameIndex::from_packets(Path::new("x.mp4"), "h264".into(), 4, 4, (1, 10), pk);
        assert_eq!(ix.nearest(0.21).map(|x| x.0), Some(3)); // pts 2 is at decode pos 3
        assert_eq!(ix.nearest(0.69).map(|x| x.0), Some(5)); // pts 7 is at decode pos 5
        assert_eq!(ix.start_of(3), 0);
        assert_eq!(ix.start_of(6), 4);
        assert_eq!(ix.nearest(100.0).map(|x| x.1), Some(0.7));
        assert_eq!(ix.nearest(-5.0).map(|x| x.0), Some(0));
    }

    #[test]
    fn leading_pictures_start_at_previous_gop() {
        // open GOP: CRA at decode 2 with leading picture pts 1 decoded after it
        let pk = vec![
            pk(0, 0, true),
            pk(2, 1, false),
            pk(4, 2, true),
            pk(3, 3, false),
            pk(5, 4, false),
        ];
        let ix = FrameIndex::from_packets(Path::new("x.mp4"), "hevc".into(), 4, 4, (1, 1), pk);
        assert_eq!(ix.start_of(3), 0);
        assert_eq!(ix.start_of(4), 2);
    }

    #[test]
    fn missing_file_is_not_found() {
        let e = FrameIndex::build(Path::new("/nonexistent/video.mp4")).expect_err("missing");
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
    }

    #[test]
    fn garbage_file_is_a_video_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bad.mp4");
        std::fs::write(&p, b"this is not an mp4 at all").expect("write");
        let e = FrameIndex::build(&p).expect_err("garbage");
        assert!(matches!(e, Error::Video { .. }), "{e}");
    }
}
