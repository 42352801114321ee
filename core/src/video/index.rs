//! The packet index of a video file and the frame lookups the planner needs.

use std::path::{Path, PathBuf};

use ffmpeg_next as ff;

use super::{convert, init_ffmpeg, open_video};
use crate::error::{Error, Location, Result};

/// One packet of the video stream, in decode order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacketInfo {
    pub pts: i64,
    pub dts: i64,
    pub key: bool,
    /// Byte offset of the packet in the file (-1 when the demuxer does not say).
    pub pos: i64,
}

/// Every packet of a file's video stream, with the lookups the planner needs.
#[derive(Debug)]
pub struct FrameIndex {
    pub path: PathBuf,
    /// The version (ETag) of a remote file the index was built from: its readers read that
    /// version or fail.
    pub version: Option<String>,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Stream time base as (num, den).
    pub time_base: (i32, i32),
    /// Packets in decode order.
    pub packets: Vec<PacketInfo>,
    /// Decode positions sorted by pts.
    pub(crate) by_pts: Vec<usize>,
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

    /// Number of frames whose time lies in `[lo, hi)` seconds.
    pub fn count_in(&self, lo: f64, hi: f64) -> usize {
        let before = |t: f64| {
            self.by_pts.partition_point(|p| {
                self.packets
                    .get(*p)
                    .is_some_and(|pk| self.seconds(pk.pts) < t)
            })
        };
        before(hi).saturating_sub(before(lo))
    }

    /// The bytes a reader reads to decode packets `from..=to` (decode positions): from the
    /// first one's offset to the start of the packet a few past the last (a decoder with
    /// reordering delay reads on before it outputs the last frame), or to the end of the file
    /// (`u64::MAX`). None when the demuxer gave no offsets.
    pub fn byte_span(&self, from: usize, to: usize) -> Option<(u64, u64)> {
        const SLACK: usize = 8;
        let run = self.packets.get(from..=to)?;
        if run.iter().any(|p| p.pos < 0) {
            return None;
        }
        let start = run.iter().map(|p| p.pos).min()?;
        let last = run.iter().map(|p| p.pos).max()?;
        let end = self
            .packets
            .get(
                to.saturating_add(SLACK)
                    .min(self.packets.len().saturating_sub(1)),
            )
            .map(|p| p.pos)
            .filter(|&p| p > last)
            .unwrap_or(last.saturating_add(64 * 1024));
        Some((u64::try_from(start).ok()?, u64::try_from(end).ok()?))
    }

    /// Decode position of the keyframe to start at for the frame at decode position `pos`.
    pub fn start_of(&self, pos: usize) -> usize {
        self.start_of.get(pos).copied().unwrap_or(0)
    }

    /// Builds the index of a file by reading its packets (no decoding).
    pub fn build(path: &Path) -> Result<FrameIndex> {
        init_ffmpeg();
        let at = || Location::file(path);
        if !crate::store::exists(path)? {
            return Err(Error::NotFound {
                at: at(),
                detail: "video file missing".into(),
            });
        }
        let super::Opened {
            mut input,
            stream: stream_index,
            version,
            io_error,
            zeros,
        } = open_video(path, None)?;
        let (codec, width, height, time_base) = {
            let stream = input.stream(stream_index).ok_or_else(|| Error::Video {
                at: at(),
                msg: "no video stream".into(),
            })?;
            let params = stream.parameters();
            let id = params.id();
            let (w, h) = convert::stream_dims(&params);
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
                w,
                h,
                (tb.numerator(), tb.denominator()),
            )
        };
        // The index needs timestamps and flags, not picture bytes. The mp4 demuxer has read
        // every sample's time, size, offset and keyframe flag from the index boxes (`moov`)
        // when the file was opened; reading packets then only fetches their bytes. For a
        // remote file those bytes are not fetched: the byte source answers zeros from here on,
        // so an index costs the `moov` box and the first frames, not the whole file. The
        // samples must lie inside the file (a truncated file is refused here, as reading it
        // whole would).
        // (a fragmented file has no complete sample table up front: it is read whole)
        let mut table = None;
        if let Some(zeros) = &zeros {
            if convert::is_mp4(&input) {
                let t = convert::sample_table(&mut input, stream_index)
                    .map_err(|msg| Error::Video { at: at(), msg })?;
                if t.complete {
                    zeros.store(true, std::sync::atomic::Ordering::Relaxed);
                    table = Some(t);
                }
            }
        }
        let mut packets = Vec::new();
        let mut packet = ff::Packet::empty();
        loop {
            match super::read_packet(&mut packet, &mut input) {
                Ok(()) => {}
                Err(ff::Error::Eof) => break,
                Err(e) => {
                    return Err(super::remote_failure(&io_error, path).unwrap_or_else(|| {
                        Error::Video {
                            at: at(),
                            msg: format!("cannot read packets (truncated or corrupt file?): {e}"),
                        }
                    }))
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
                pos: i64::try_from(packet.position()).unwrap_or(-1),
            });
        }
        if packets.is_empty() {
            return Err(Error::Video {
                at: at(),
                msg: "video stream has no frames".into(),
            });
        }
        if let Some(t) = &table {
            if t.keys.len() != packets.len() {
                return Err(Error::Video {
                    at: at(),
                    msg: format!(
                        "the sample table lists {} samples but {} packets were read (corrupt \
                         file?)",
                        t.keys.len(),
                        packets.len()
                    ),
                });
            }
            // Keyframes as the sample table (`stss`) marks them: the demuxer takes some
            // codecs' flags from a parser of the packet bytes, which were not fetched.
            for (p, k) in packets.iter_mut().zip(&t.keys) {
                p.key = *k;
            }
        }
        let mut ix = Self::from_packets(path, codec, width, height, time_base, packets);
        ix.version = version;
        // Two frames at one time: the container's timestamps are damaged (an edited `ctts`
        // table, say), and the frame "at" that time would be either picture.
        for w in ix.by_pts.windows(2) {
            if let [a, b] = w {
                let pts = |i: &usize| ix.packets.get(*i).map(|p| p.pts);
                if pts(a) == pts(b) {
                    return Err(Error::Video {
                        at: at(),
                        msg: format!(
                            "frames {a} and {b} (decode order) share the timestamp pts {} \
                             (corrupt file?)",
                            pts(a).unwrap_or_default()
                        ),
                    });
                }
            }
        }
        Ok(ix)
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
            version: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(pts: i64, dts: i64, key: bool) -> PacketInfo {
        PacketInfo {
            pts,
            dts,
            key,
            pos: -1,
        }
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
