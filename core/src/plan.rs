//! Batch planning and parallel execution of frame requests: requests are grouped by file,
//! mapped to exact frames, deduplicated, decoded in pts order on pooled decoders, and each
//! frame is converted straight into its slot of the caller's buffer.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use rayon::prelude::*;

use crate::error::{Error, Location, Result};
use crate::frame::FrameFormat;
use crate::image::decode_image;
use crate::table::DataFile;
use crate::video::DecoderPool;

/// A destination of frames: one output buffer cut into equal slots.
pub(crate) struct FrameTarget<'a> {
    pub writer: SlotWriter<'a>,
    pub key: String,
    pub format: FrameFormat,
    /// `(H, W, C)` of one frame.
    pub dims: (usize, usize, usize),
}

impl<'a> FrameTarget<'a> {
    /// A target over `buf`, whose slots hold one frame each in `format`.
    pub fn new(
        buf: &'a mut [u8],
        key: &str,
        format: FrameFormat,
        dims: (usize, usize, usize),
    ) -> FrameTarget<'a> {
        let slot = format.frame_bytes(dims.0, dims.1, dims.2);
        FrameTarget {
            writer: SlotWriter::new(buf, slot),
            key: key.to_owned(),
            format,
            dims,
        }
    }

    /// The bytes of slot `i`.
    ///
    /// # Safety
    /// See [`SlotWriter::slot`]: no other live reference to this slot may exist.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slot(&self, i: usize) -> Result<&mut [u8]> {
        self.writer.slot(i).ok_or_else(|| Error::InvalidArgument {
            msg: format!("slot {i} out of range for '{}'", self.key),
        })
    }

    /// Writes an interleaved uint8 frame into slot `i` in this target's format.
    ///
    /// # Safety
    /// As [`FrameTarget::slot`].
    unsafe fn write(&self, i: usize, src: &[u8]) -> std::result::Result<(), String> {
        let dst = self.writer.slot(i).ok_or("output slot out of range")?;
        let (h, w, c) = self.dims;
        self.format.write(src, h, w, c, dst)
    }
}

/// One video frame to decode into one slot of one target.
#[derive(Debug, Clone)]
pub(crate) struct VideoRequest {
    pub target: usize,
    pub slot: usize,
    pub path: Arc<PathBuf>,
    /// Seconds in the file (episode start in the file + the row's timestamp).
    pub time_s: f64,
    pub episode: i64,
    /// When set, the frame found must lie in `[lo, hi)` seconds (the request's episode in a
    /// file shared with other episodes).
    pub span: Option<(f64, f64)>,
}

/// One embedded image to decode into one slot of one target.
pub(crate) struct ImageRequest {
    pub target: usize,
    pub slot: usize,
    pub file: Arc<DataFile>,
    pub row: usize,
    pub episode: i64,
}

/// The requests against one video file.
struct VideoGroup {
    path: Arc<PathBuf>,
    requests: Vec<VideoRequest>,
}

/// Groups requests by file (largest groups first, so they start early).
fn group_by_file(requests: Vec<VideoRequest>) -> Vec<VideoGroup> {
    let mut by_file: IndexMap<Arc<PathBuf>, Vec<VideoRequest>> = IndexMap::new();
    for r in requests {
        by_file.entry(r.path.clone()).or_default().push(r);
    }
    let mut groups: Vec<VideoGroup> = by_file
        .into_iter()
        .map(|(path, requests)| VideoGroup { path, requests })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.requests.len()));
    groups
}

/// Decodes every request into its target, in parallel on `pool`. Each (target, slot) pair must
/// occur in at most one request.
pub(crate) fn run(
    pool: &rayon::ThreadPool,
    decoders: &DecoderPool,
    videos: Vec<VideoRequest>,
    images: Vec<ImageRequest>,
    targets: &[FrameTarget],
    tolerance_s: f64,
) -> Result<()> {
    check_unique_slots(
        videos
            .iter()
            .map(|r| (r.target, r.slot))
            .chain(images.iter().map(|r| (r.target, r.slot))),
    )?;
    let groups = group_by_file(videos);
    pool.install(|| -> Result<()> {
        let video = groups
            .par_iter()
            .map(|g| run_video_group(decoders, g, targets, tolerance_s))
            .collect::<Vec<Result<()>>>();
        let images = images
            .par_iter()
            .map(|j| run_image(j, targets))
            .collect::<Vec<Result<()>>>();
        video
            .into_iter()
            .chain(images)
            .collect::<Result<Vec<()>>>()
            .map(|_| ())
    })
}

/// The soundness condition of the parallel writes: no slot is the destination of two requests.
fn check_unique_slots(pairs: impl Iterator<Item = (usize, usize)>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for p in pairs {
        if !seen.insert(p) {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "internal: output slot {} of target {} requested twice",
                    p.1, p.0
                ),
            });
        }
    }
    Ok(())
}

fn target<'t, 'a>(targets: &'t [FrameTarget<'a>], i: usize) -> Result<&'t FrameTarget<'a>> {
    targets.get(i).ok_or_else(|| Error::InvalidArgument {
        msg: format!("internal: no output target {i}"),
    })
}

fn run_image(j: &ImageRequest, targets: &[FrameTarget]) -> Result<()> {
    let t = target(targets, j.target)?;
    let raw = decode_image(&j.file, &t.key, j.row, t.dims)
        .map_err(|e| e.within(Some(j.episode), Some(&t.key)))?;
    // SAFETY: every (target, slot) pair occurs in exactly one request (checked in `run`), and
    // one request is handled by one thread.
    unsafe { t.write(j.slot, &raw) }.map_err(|m| Error::Image {
        at: Location::file(&j.file.path)
            .with_episode(j.episode)
            .with_key(t.key.clone()),
        msg: m,
    })
}

fn run_video_group(
    decoders: &DecoderPool,
    g: &VideoGroup,
    targets: &[FrameTarget],
    tolerance_s: f64,
) -> Result<()> {
    let first = g.requests.first();
    let key_of = |t: usize| targets.get(t).map_or("", |x| x.key.as_str());
    let ctx_ep = first.map(|r| r.episode);
    let ctx_key = first.map(|r| key_of(r.target));
    let index = decoders
        .index(&g.path)
        .map_err(|e| e.within(ctx_ep, ctx_key))?;
    // Map each request to the nearest frame; dedupe frames shared by several requests.
    let mut positions: Vec<usize> = Vec::new();
    let mut slots_of: Vec<Vec<usize>> = Vec::new();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for (ri, r) in g.requests.iter().enumerate() {
        let (pos, t) = index.nearest(r.time_s).ok_or_else(|| Error::Video {
            at: Location::file(g.path.as_path()),
            msg: "video has no frames".into(),
        })?;
        if let Some((lo, hi)) = r.span {
            if !(lo <= t && t < hi) {
                return Err(Error::InvalidArgument {
                    msg: format!(
                        "{}: the frame nearest to t={:.6}s (at {t:.6}s) is outside episode {} \
                         (its frames span [{lo:.6}, {hi:.6}) s in this file)",
                        Location::file(g.path.as_path()).with_key(key_of(r.target)),
                        r.time_s,
                        r.episode
                    ),
                });
            }
        }
        let dist = (t - r.time_s).abs();
        if dist.partial_cmp(&tolerance_s) != Some(std::cmp::Ordering::Less) {
            return Err(Error::FrameTimestamp {
                at: Location::file(g.path.as_path())
                    .with_episode(r.episode)
                    .with_key(key_of(r.target)),
                query_s: r.time_s,
                nearest_s: t,
                distance_s: dist,
                tolerance_s,
            });
        }
        let u = *seen.entry(pos).or_insert_with(|| {
            positions.push(pos);
            slots_of.push(Vec::new());
            positions.len() - 1
        });
        if let Some(s) = slots_of.get_mut(u) {
            s.push(ri);
        }
    }
    let mut reader = decoders
        .checkout(&g.path)
        .map_err(|e| e.within(ctx_ep, ctx_key))?;
    let mut scratch: Vec<u8> = Vec::new();
    let result = reader.decode(&positions, |u, conv, frame| {
        let reqs = slots_of.get(u).map(Vec::as_slice).unwrap_or(&[]);
        let mut first_slot: Option<(usize, usize)> = None;
        for &ri in reqs {
            let Some(r) = g.requests.get(ri) else {
                continue;
            };
            let t = target(targets, r.target)?;
            let at = || {
                Location::file(g.path.as_path())
                    .with_episode(r.episode)
                    .with_key(t.key.clone())
            };
            let video_err = |m: String| Error::Video { at: at(), msg: m };
            let (h, w, _) = t.dims;
            if (frame.width() as usize, frame.height() as usize) != (w, h) {
                return Err(Error::Metadata {
                    at: at(),
                    msg: format!(
                        "the video's frames are {}x{}, info.json says {w}x{h} (width x height)",
                        frame.width(),
                        frame.height()
                    ),
                });
            }
            // SAFETY: each (target, slot) pair appears in exactly one request (checked in
            // `run`) and a group runs on one thread: no other reference to this slot exists.
            let dst = unsafe { t.slot(r.slot) }?;
            match first_slot {
                None => {
                    if t.format.is_identity() {
                        conv.convert(frame, dst).map_err(video_err)?;
                    } else {
                        let (h, w, c) = t.dims;
                        scratch.resize(h * w * c, 0);
                        conv.convert(frame, &mut scratch).map_err(video_err)?;
                        t.format.write(&scratch, h, w, c, dst).map_err(video_err)?;
                    }
                    first_slot = Some((r.target, r.slot));
                }
                Some((o, s)) => {
                    // A frame wanted by several requests is converted once and copied.
                    // SAFETY: as above; the first slot of this frame is a different slot.
                    let src = targets.get(o).and_then(|t0| unsafe { t0.writer.slot(s) });
                    match src {
                        Some(src) if src.len() == dst.len() => dst.copy_from_slice(src),
                        _ => return Err(video_err("duplicate frame slots differ in size".into())),
                    }
                }
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            decoders.checkin(reader);
            Ok(())
        }
        // A reader that failed mid-stream is dropped, not reused.
        Err(e) => Err(e.within(ctx_ep, ctx_key)),
    }
}

/// Writes fixed-size slots of one output buffer from several threads. Borrows the buffer
/// mutably for its whole life, so no other access to it can happen meanwhile.
pub(crate) struct SlotWriter<'a> {
    base: *mut u8,
    len: usize,
    slot_bytes: usize,
    _buf: PhantomData<&'a mut [u8]>,
}

// SAFETY: the writer only hands out disjoint slots; callers guarantee a slot is used by one
// thread at a time (see `slot`).
unsafe impl Sync for SlotWriter<'_> {}
unsafe impl Send for SlotWriter<'_> {}

impl<'a> SlotWriter<'a> {
    pub fn new(buf: &'a mut [u8], slot_bytes: usize) -> SlotWriter<'a> {
        SlotWriter {
            base: buf.as_mut_ptr(),
            len: buf.len(),
            slot_bytes,
            _buf: PhantomData,
        }
    }

    /// The bytes of slot `i`, or None when out of range.
    ///
    /// # Safety
    /// No other live reference to slot `i` may exist while the returned one is used (the
    /// writer's borrow keeps the buffer alive and otherwise untouched).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slot(&self, i: usize) -> Option<&mut [u8]> {
        let start = i.checked_mul(self.slot_bytes)?;
        let end = start.checked_add(self.slot_bytes)?;
        if end > self.len || self.slot_bytes == 0 {
            return None;
        }
        Some(std::slice::from_raw_parts_mut(
            self.base.add(start),
            self.slot_bytes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded() {
        let mut buf = vec![0u8; 10];
        let w = SlotWriter::new(&mut buf, 4);
        // SAFETY: single-threaded test; each slot is used once.
        unsafe {
            assert_eq!(w.slot(0).map(|s| s.len()), Some(4));
            assert_eq!(w.slot(1).map(|s| s.len()), Some(4));
            assert!(w.slot(2).is_none()); // would end at 12 > 10
            assert!(w.slot(usize::MAX).is_none());
        }
    }

    #[test]
    fn duplicate_slots_are_refused() {
        assert!(check_unique_slots([(0, 1), (1, 1), (0, 2)].into_iter()).is_ok());
        assert!(check_unique_slots([(0, 1), (0, 1)].into_iter()).is_err());
    }
}
