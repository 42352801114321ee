//! One open video file: its demuxer, decoder and converter, positioned somewhere in the
//! stream, decoding sorted sets of frames forward and seeking only when it pays.

use std::sync::Arc;

use ffmpeg_next as ff;

use super::{convert, init_ffmpeg, open_video, FrameConverter, FrameIndex};
use crate::error::{Error, Location, Result};

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
    converter: FrameConverter,
    frame: ff::frame::Video,
    /// Strict decoding: see [`VideoReader::open_strict`].
    strict: bool,
    /// Frames the decoder output since the pool last counted them.
    pub(super) decoded: u64,
    /// Where a remote read records its error (see [`super::remote_failure`]).
    io_error: Option<crate::store::FailureSlot>,
}

// SAFETY: a reader exclusively owns its demuxer, decoder and converter; none is bound to the
// thread that made it, and the pool lends a reader to one thread at a time.
unsafe impl Send for VideoReader {}

impl VideoReader {
    fn err(&self, msg: impl Into<String>) -> Error {
        // a failed remote read is the cause of whatever FFmpeg then reports
        super::remote_failure(&self.io_error, &self.index.path).unwrap_or_else(|| Error::Video {
            at: Location::file(&self.index.path),
            msg: msg.into(),
        })
    }

    /// Opens a file whose index is known. Damage in the bitstream is concealed, as FFmpeg (and
    /// torchcodec, LeRobot's decoder) does by default: see [`VideoReader::open_strict`].
    pub fn open(index: Arc<FrameIndex>, threads: usize) -> Result<VideoReader> {
        Self::open_with(index, threads, false)
    }

    /// Opens a file whose index is known, in strict mode: the decoder checks CRCs, bitstream
    /// conformance and buffer bounds and fails on the first error instead of concealing it
    /// (FFmpeg's `err_detect=crccheck+bitstream+buffer+explode`), and a frame the decoder
    /// reports as damaged (concealed errors, corrupt flag) is an error instead of a picture.
    pub fn open_strict(index: Arc<FrameIndex>, threads: usize) -> Result<VideoReader> {
        Self::open_with(index, threads, true)
    }

    /// [`VideoReader::open`] or, with `strict`, [`VideoReader::open_strict`].
    pub fn open_with(index: Arc<FrameIndex>, threads: usize, strict: bool) -> Result<VideoReader> {
        init_ffmpeg();
        let path = index.path.clone();
        let at = || Location::file(&path);
        let opened = open_video(&path, index.version.as_deref())?;
        let (input, stream_index, io_error) = (opened.input, opened.stream, opened.io_error);
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
        let mut decoder = ctx.decoder();
        if strict {
            use ff::codec::decoder::Check;
            decoder.check(Check::CRC | Check::BITSTREAM | Check::BUFFER | Check::EXPLODE);
        }
        let decoder = decoder.video().map_err(|e| match e {
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
            converter: FrameConverter::default(),
            frame: ff::frame::Video::empty(),
            strict,
            decoded: 0,
            io_error,
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
        self.flush_decoder();
        self.last_out = None;
        self.eof_sent = false;
        self.next_feed = None;
        if k == 0 {
            return self.rewind();
        }
        if convert::seek_backward(&mut self.input, self.stream_index, target.dts).is_err() {
            return self.rewind();
        }
        // Read up to the keyframe; the first packet of the stream tells where the seek landed.
        // Packets before the keyframe are skipped by counting from the landing position.
        let mut packet = ff::Packet::empty();
        let landed = loop {
            match super::read_packet(&mut packet, &mut self.input) {
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
            match super::read_packet(&mut packet, &mut self.input) {
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
        let fresh = open_video(&self.index.path, self.index.version.as_deref())?;
        self.input = fresh.input;
        self.io_error = fresh.io_error;
        self.flush_decoder();
        self.next_feed = Some(0);
        self.fed_from = 0;
        self.last_out = None;
        self.eof_sent = false;
        Ok(())
    }

    /// Empties the decoder for a new position: `avcodec_flush_buffers`, then every frame it
    /// still hands out is discarded. (FFmpeg 7.1's HEVC decoder keeps a frame it had decoded
    /// but not yet returned across the flush and returns it after the next packet, a picture
    /// of the old position: found by the LeRobot 0.6 suite on Debian 13's FFmpeg 7.1.5, where a
    /// window read after a backward seek got a later frame.)
    fn flush_decoder(&mut self) {
        self.decoder.flush();
        // (bounded: a decoder holds a few frames, never more than its reorder depth)
        for _ in 0..64 {
            if self.decoder.receive_frame(&mut self.frame).is_err() {
                break;
            }
        }
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
                match super::read_packet(&mut packet, &mut self.input) {
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

    /// Strict decoding: the frame just decoded must carry no error flags.
    fn check_damage(&self, pts: i64) -> Result<()> {
        let damage = convert::frame_damage(&self.frame);
        if damage == 0 {
            return Ok(());
        }
        Err(self.err(format!(
            "the frame at pts {pts} (t={:.6}s) is damaged: the decoder concealed errors in its \
             bitstream (error flags {damage:#x}; strict decoding)",
            self.index.seconds(pts)
        )))
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
            // A decoder outputs frames in presentation order: a pts at or before the previous
            // one means the container's timestamps (an edited `ctts` table, say) name other
            // pictures than the bitstream holds, and the frame "at" a time would be another.
            if let Some(prev) = self.last_out.filter(|&prev| p <= prev) {
                self.last_out = None;
                return Err(self.err(format!(
                    "frames out of presentation order (pts {p} after {prev}): the file's \
                     timestamps do not match its pictures (corrupt file?)"
                )));
            }
            self.last_out = Some(p);
            // Strict: every frame decoded from the keyframe on must be clean (damage spreads to
            // the frames that reference a damaged one, which then carry no flags themselves).
            // Leading pictures before the keyframe may lack references after a seek.
            let start_pts = self.index.packets.get(self.fed_from).map(|k| k.pts);
            if self.strict && start_pts.is_some_and(|k| p >= k) {
                self.check_damage(p)?;
            }
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
        F: FnMut(usize, &mut FrameConverter, &ff::frame::Video) -> Result<()>,
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
