//! Batch planning and parallel execution of frame requests: requests are grouped by file,
//! mapped to exact frames, deduplicated, decoded in pts order on pooled decoders, and each
//! frame is converted straight into its slot of the caller's buffer.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;
use rayon::prelude::*;

use crate::cache::FrameCache;
use crate::error::{Error, Location, Result};
use crate::frame::FrameOut;
use crate::image::{decode_depth_image, with_image};
use crate::table::DataFile;
use crate::video::{Assigned, DecoderPool, FrameIndex};

/// A destination of frames: one output buffer cut into equal slots.
pub(crate) struct FrameTarget<'a> {
    pub writer: SlotWriter<'a>,
    pub key: String,
    /// How decoded frames are written into the slots.
    pub format: FrameOut,
    /// `(H, W, C)` of one frame.
    pub dims: (usize, usize, usize),
}

impl<'a> FrameTarget<'a> {
    /// A target over `buf`, whose slots hold one frame each as `format` writes it.
    pub fn new(
        buf: &'a mut [u8],
        key: &str,
        format: FrameOut,
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
        // SAFETY: forwarded: the caller holds no other reference to slot `i`.
        let slot = unsafe { self.writer.slot(i) };
        slot.ok_or_else(|| {
            Error::internal(
                "batch planning",
                format!("slot {i} out of range for '{}'", self.key),
            )
        })
    }

    /// Writes a decoded frame (as [`FrameOut::decoded`] says) into slot `i` in this target's
    /// format.
    ///
    /// # Safety
    /// As [`FrameTarget::slot`].
    unsafe fn write(&self, i: usize, src: &[u8]) -> std::result::Result<(), String> {
        // SAFETY: forwarded: the caller holds no other reference to slot `i`.
        let dst = unsafe { self.writer.slot(i) }.ok_or("output slot out of range")?;
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
    /// The frame found must lie in `[lo, hi)` seconds (the request's episode in a file shared
    /// with other episodes).
    pub span: (f64, f64),
    /// The time came from the caller (`decode_frames`), not from a row of the dataset: a time
    /// outside the episode is the caller's mistake (`InvalidArgument`), checked first.
    pub caller_time: bool,
}

/// One embedded image to decode into one slot of one target.
pub(crate) struct ImageRequest {
    pub target: usize,
    pub slot: usize,
    pub file: Arc<DataFile>,
    pub row: usize,
    pub episode: i64,
}

/// The requests against one video file, resolved to unique frames.
struct FileFrames {
    path: Arc<PathBuf>,
    index: Arc<FrameIndex>,
    /// Unique frames wanted (decode positions), in presentation order, each with the requests
    /// (indices into the file's requests) it answers.
    frames: Vec<(usize, Vec<usize>)>,
    requests: Vec<VideoRequest>,
}

/// A contiguous range (in presentation order) of one file's wanted frames, decoded by one
/// reader on one thread. `frames` indexes `FileFrames::frames`.
struct Part {
    file: usize,
    frames: std::ops::Range<usize>,
    cost: usize,
}

/// For remote files: fetches the bytes every part will read, all parts at once (ranged
/// requests in parallel, bounded per process), so that decoding threads find them in the
/// block cache instead of waiting for one round trip after another.
fn prefetch_remote(files: &[FileFrames], parts: &[Part]) -> Result<()> {
    // (files in parallel too: each camera's file is a separate object)
    files.par_iter().enumerate().try_for_each(|(fi, f)| {
        if !crate::store::is_url(&f.path.to_string_lossy()) {
            return Ok(());
        }
        let ranges: Vec<(u64, u64)> = parts
            .iter()
            .filter(|p| p.file == fi)
            .filter_map(|p| {
                let positions = f.frames.get(p.frames.clone())?.iter().map(|(pos, _)| *pos);
                let lo = positions.clone().min()?;
                let hi = positions.max()?;
                f.index.byte_span(f.index.start_of(lo).min(lo), hi)
            })
            .collect();
        crate::store::prefetch(&f.path, f.index.version.as_deref(), &ranges)
    })
}

/// Groups requests by file (in first-seen order).
fn group_by_file(requests: Vec<VideoRequest>) -> Vec<(Arc<PathBuf>, Vec<VideoRequest>)> {
    let mut by_file: IndexMap<Arc<PathBuf>, Vec<VideoRequest>> = IndexMap::new();
    for r in requests {
        by_file.entry(r.path.clone()).or_default().push(r);
    }
    by_file.into_iter().collect()
}

/// Where and how a batch's frames are produced: the thread pool, the decoders, the optional
/// decoded-frame cache, and the flag that stops the work early.
pub(crate) struct Exec<'e> {
    pub pool: &'e rayon::ThreadPool,
    pub decoders: &'e DecoderPool,
    pub cache: Option<&'e FrameCache>,
    pub cancel: &'e AtomicBool,
}

impl Exec<'_> {
    /// `Err(Cancelled)` once the caller has given up on the batch.
    fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Decodes every request into its target, in parallel on `exec.pool`. Each (target, slot)
/// pair must occur in at most one request.
///
/// Plan: each file's requests are mapped to exact frames (deduplicated) and sorted by pts;
/// frames held by the cache are copied from it; the others are cut into chunks that decode
/// continuously (a chunk ends where the next frame's keyframe lies after it: reaching it needs
/// a seek anyway), and the chunks into parts of at most an equal share of the file's decoding
/// cost per thread of the pool. All parts of all files then run in one parallel pass, each on
/// a reader positioned as close before it as the pool has.
pub(crate) fn run(
    exec: &Exec<'_>,
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
    let (pool, decoders) = (exec.pool, exec.decoders);
    pool.install(|| -> Result<()> {
        // (every stage checks the flag: building a remote file's frame index and fetching its
        // bytes are round trips a cancelled batch need not wait for)
        let mut files = group_by_file(videos)
            .into_par_iter()
            .map(|(path, requests)| {
                exec.check_cancel()?;
                resolve_file(decoders, path, requests, targets, tolerance_s)
            })
            .collect::<Result<Vec<FileFrames>>>()?;
        if let Some(cache) = exec.cache {
            from_cache(cache, &mut files, targets)?;
        }
        let mut parts: Vec<Part> = files
            .iter()
            .enumerate()
            .flat_map(|(i, f)| split_file(i, f, pool.current_num_threads()))
            .collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.cost));
        exec.check_cancel()?;
        prefetch_remote(&files, &parts)?;
        // Readers are decided per file before anything runs (DecoderPool::assign): a part
        // continuing where a reader stopped gets that reader, so interleaved sequential reads
        // keep one reader each.
        let mut readers: Vec<Assigned> = parts.iter().map(|_| Assigned::Shared).collect();
        for (fi, f) in files.iter().enumerate() {
            let mine: Vec<usize> = (0..parts.len())
                .filter(|&i| parts.get(i).is_some_and(|p| p.file == fi))
                .collect();
            let firsts: Vec<usize> = mine
                .iter()
                .filter_map(|&i| parts.get(i))
                .map(|p| f.frames.get(p.frames.start).map_or(0, |(pos, _)| *pos))
                .collect();
            for (i, a) in mine.into_iter().zip(decoders.assign(&f.path, &firsts)) {
                if let Some(slot) = readers.get_mut(i) {
                    *slot = a;
                }
            }
        }
        let video = parts
            .into_par_iter()
            .zip(readers)
            // Every part is a task of its own: rayon otherwise cuts an indexed iterator into a
            // few contiguous runs, and with parts sorted by cost one thread got the costly run
            // and the other idled (measured: 1.6 of 2 cores busy on windowed batches; 1.93
            // with single-part tasks). A part is at least one seek and decode, so the task
            // overhead is negligible.
            .with_max_len(1)
            .map(|(p, reader)| match files.get(p.file) {
                Some(f) => decode_part(exec, f, p.frames, reader, targets),
                None => Ok(()),
            })
            .collect::<Vec<Result<()>>>();
        let images = images
            .par_iter()
            .map(|j| {
                exec.check_cancel()?;
                run_image(j, targets)
            })
            .collect::<Vec<Result<()>>>();
        video
            .into_iter()
            .chain(images)
            .collect::<Result<Vec<()>>>()
            .map(|_| ())
    })
}

/// Writes the wanted frames the cache holds into their slots (converted into each target's
/// format as a decoded frame is) and leaves only the others to decode.
fn from_cache(cache: &FrameCache, files: &mut [FileFrames], targets: &[FrameTarget]) -> Result<()> {
    let mut hits: Vec<(usize, Arc<[u8]>, Vec<usize>)> = Vec::new();
    for (fi, f) in files.iter_mut().enumerate() {
        let path = f.path.clone();
        let Some(decoded) = file_decoded(f, targets) else {
            continue;
        };
        f.frames
            .retain_mut(|(pos, reqs)| match cache.get(&path, decoded, *pos) {
                Some(bytes) => {
                    hits.push((fi, bytes, std::mem::take(reqs)));
                    false
                }
                None => true,
            });
    }
    let files: &[FileFrames] = files;
    hits.par_iter()
        .map(|(fi, bytes, reqs)| -> Result<()> {
            let Some(f) = files.get(*fi) else {
                return Ok(());
            };
            for &ri in reqs {
                let Some(r) = f.requests.get(ri) else {
                    continue;
                };
                let t = target(targets, r.target)?;
                let (h, w, c) = t.dims;
                // SAFETY: each (target, slot) pair appears in exactly one request (checked in
                // `run`), and this frame's requests are handled by this task alone.
                unsafe { t.write(r.slot, bytes) }.map_err(|m| Error::Video {
                    at: Location::file(f.path.as_path())
                        .with_episode(r.episode)
                        .with_key(t.key.clone()),
                    msg: format!("cached frame does not fit a {h}x{w}x{c} slot: {m}"),
                })?;
            }
            Ok(())
        })
        .collect::<Result<Vec<()>>>()
        .map(|_| ())
}

/// What the decoder produces for a file's requests: the one representation all its targets
/// read (None when they disagree: two kinds of camera in one file; then nothing is cached).
fn file_decoded(f: &FileFrames, targets: &[FrameTarget]) -> Option<crate::frame::Decoded> {
    let mut kinds = f
        .requests
        .iter()
        .filter_map(|r| targets.get(r.target).map(|t| t.format.decoded()));
    let first = kinds.next()?;
    kinds.all(|k| k == first).then_some(first)
}

/// The soundness condition of the parallel writes: no slot is the destination of two requests.
fn check_unique_slots(pairs: impl Iterator<Item = (usize, usize)>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for p in pairs {
        if !seen.insert(p) {
            return Err(Error::internal(
                "batch planning",
                format!("output slot {} of target {} requested twice", p.1, p.0),
            ));
        }
    }
    Ok(())
}

fn target<'t, 'a>(targets: &'t [FrameTarget<'a>], i: usize) -> Result<&'t FrameTarget<'a>> {
    targets
        .get(i)
        .ok_or_else(|| Error::internal("batch planning", format!("no output target {i}")))
}

fn run_image(j: &ImageRequest, targets: &[FrameTarget]) -> Result<()> {
    let t = target(targets, j.target)?;
    let write = |raw: &[u8]| {
        // SAFETY: every (target, slot) pair occurs in exactly one request (checked in `run`),
        // and one request is handled by one thread.
        unsafe { t.write(j.slot, raw) }.map_err(|m| Error::Image {
            at: Location::file(&j.file.path)
                .with_episode(j.episode)
                .with_key(t.key.clone()),
            msg: m,
        })
    };
    match t.format {
        FrameOut::DepthImage(_) => write(&decode_depth_image(&j.file, &t.key, j.row, t.dims)?),
        _ => with_image(&j.file, &t.key, j.row, t.dims, write),
    }
    .map_err(|e| e.within(Some(j.episode), Some(&t.key)))
}

/// Maps a file's requests to its frames (LeRobot's rule: the nearest pts, within tolerance),
/// deduplicated and sorted by pts.
fn resolve_file(
    decoders: &DecoderPool,
    path: Arc<PathBuf>,
    requests: Vec<VideoRequest>,
    targets: &[FrameTarget],
    tolerance_s: f64,
) -> Result<FileFrames> {
    let key_of = |t: usize| targets.get(t).map_or("", |x| x.key.as_str());
    let first = requests.first();
    let index = decoders
        .index(&path)
        .map_err(|e| e.within(first.map(|r| r.episode), first.map(|r| key_of(r.target))))?;
    let mut frames: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for (ri, r) in requests.iter().enumerate() {
        let (pos, t) = index.nearest(r.time_s).ok_or_else(|| Error::Video {
            at: Location::file(path.as_path()),
            msg: "video has no frames".into(),
        })?;
        let (lo, hi) = r.span;
        let in_span = lo <= t && t < hi;
        if r.caller_time && !in_span {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "{}: the frame nearest to t={:.6}s (at {t:.6}s) is outside episode {} \
                     (its frames span [{lo:.6}, {hi:.6}) s in this file)",
                    Location::file(path.as_path()).with_key(key_of(r.target)),
                    r.time_s,
                    r.episode
                ),
            });
        }
        let dist = (t - r.time_s).abs();
        if dist.partial_cmp(&tolerance_s) != Some(std::cmp::Ordering::Less) {
            return Err(Error::FrameTimestamp {
                at: Location::file(path.as_path())
                    .with_episode(r.episode)
                    .with_key(key_of(r.target)),
                query_s: r.time_s,
                nearest_s: t,
                distance_s: dist,
                tolerance_s,
            });
        }
        // within tolerance, and this episode's frame (not a neighbour's in a shared file)
        if !in_span {
            return Err(Error::metadata(
                Location::file(path.as_path())
                    .with_episode(r.episode)
                    .with_key(key_of(r.target)),
                format!(
                    "the frame nearest to t={:.6}s (at {t:.6}s) is outside the episode (its frames \
                     span [{lo:.6}, {hi:.6}) s in this file): the row's timestamp points into \
                     another episode's frames",
                    r.time_s
                ),
            ));
        }
        let u = *seen.entry(pos).or_insert_with(|| {
            frames.push((pos, Vec::new()));
            frames.len() - 1
        });
        if let Some((_, reqs)) = frames.get_mut(u) {
            reqs.push(ri);
        }
    }
    let pts = |pos: usize| index.packets.get(pos).map_or(i64::MAX, |p| p.pts);
    frames.sort_by_key(|(pos, _)| pts(*pos));
    Ok(FileFrames {
        path,
        index,
        frames,
        requests,
    })
}

/// Cuts a file's frames into chunks that decode continuously, then groups chunks into parts:
/// a chunk joins the part before it when it starts right where that part ends (its keyframe
/// follows the part's last frame: no packet in between) and the part stays within an equal
/// share of the file's decoding cost per thread. Chunks elsewhere in the file start parts of
/// their own, each decoded by the reader positioned nearest before it.
fn split_file(file: usize, f: &FileFrames, threads: usize) -> Vec<Part> {
    struct Chunk {
        start: usize,
        end: usize,
        cost: usize,
        key: usize,
        last: usize,
    }
    let mut chunks: Vec<Chunk> = Vec::new();
    for (i, (pos, _)) in f.frames.iter().enumerate() {
        let k = f.index.start_of(*pos);
        match chunks.last_mut() {
            // continues the chunk: decode the packets after its last frame
            Some(c) if k <= c.last => {
                c.cost += pos.saturating_sub(c.last);
                c.end = i + 1;
                c.last = c.last.max(*pos);
            }
            _ => chunks.push(Chunk {
                start: i,
                end: i + 1,
                cost: pos.saturating_sub(k) + 1,
                key: k,
                last: *pos,
            }),
        }
    }
    let total: usize = chunks.iter().map(|c| c.cost).sum();
    let share = total.div_ceil(threads.max(1)).max(1);
    let mut parts: Vec<(Part, usize)> = Vec::new(); // (part, its last frame position)
    for c in chunks {
        match parts.last_mut() {
            Some((p, last)) if c.key == *last + 1 && p.cost + c.cost <= share => {
                p.frames.end = c.end;
                p.cost += c.cost;
                *last = c.last;
            }
            _ => parts.push((
                Part {
                    file,
                    frames: c.start..c.end,
                    cost: c.cost,
                },
                c.last,
            )),
        }
    }
    parts.into_iter().map(|(p, _)| p).collect()
}

fn decode_part(
    exec: &Exec<'_>,
    f: &FileFrames,
    range: std::ops::Range<usize>,
    reader: Assigned,
    targets: &[FrameTarget],
) -> Result<()> {
    let frames = f.frames.get(range).unwrap_or(&[]);
    let key_of = |t: usize| targets.get(t).map_or("", |x| x.key.as_str());
    let first = frames
        .first()
        .and_then(|(_, reqs)| reqs.first())
        .and_then(|&ri| f.requests.get(ri));
    let ctx_ep = first.map(|r| r.episode);
    let ctx_key = first.map(|r| key_of(r.target));
    let Some(&(first_pos, _)) = frames.first() else {
        return Ok(());
    };
    let positions: Vec<usize> = frames.iter().map(|(p, _)| *p).collect();
    exec.check_cancel()?;
    let decoders = exec.decoders;
    let mut reader = match reader {
        Assigned::Reader(r) => Ok(r),
        Assigned::New => decoders.open(&f.path),
        Assigned::Shared => decoders.checkout(&f.path, first_pos),
    }
    .map_err(|e| e.within(ctx_ep, ctx_key))?;
    let cache_kind = file_decoded(f, targets);
    let mut scratch: Vec<u8> = Vec::new();
    let result = reader.decode(&positions, |u, conv, frame| {
        exec.check_cancel()?;
        let (pos, reqs) = frames
            .get(u)
            .map(|(p, r)| (*p, r.as_slice()))
            .unwrap_or((0, &[]));
        // slots already written with this frame, by their target's output and dims: a frame
        // wanted again in the same output is copied, not converted again
        let mut written: Vec<(usize, usize)> = Vec::new();
        for &ri in reqs {
            let Some(r) = f.requests.get(ri) else {
                continue;
            };
            let t = target(targets, r.target)?;
            let at = || {
                Location::file(f.path.as_path())
                    .with_episode(r.episode)
                    .with_key(t.key.clone())
            };
            let video_err = |m: String| Error::Video { at: at(), msg: m };
            let (h, w, c) = t.dims;
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
            // `run`) and a part runs on one thread: no other reference to this slot exists.
            let dst = unsafe { t.slot(r.slot) }?;
            let same = written.iter().find(|&&(o, _)| {
                targets
                    .get(o)
                    .is_some_and(|t0| t0.format == t.format && t0.dims == t.dims)
            });
            if let Some(&(o, s)) = same {
                // SAFETY: as above; the earlier slot of this frame is a different slot.
                let src = targets.get(o).and_then(|t0| unsafe { t0.writer.slot(s) });
                match src {
                    Some(src) if src.len() == dst.len() => dst.copy_from_slice(src),
                    _ => return Err(video_err("duplicate frame slots differ in size".into())),
                }
                continue;
            }
            let decoded = t.format.decoded();
            let bytes = decoded.frame_bytes(h, w, c);
            let cache = exec
                .cache
                .filter(|cache| cache_kind == Some(decoded) && cache.admits(bytes));
            if t.format.is_identity() {
                conv.convert(frame, decoded, dst).map_err(video_err)?;
                if let Some(cache) = cache {
                    cache.insert(&f.path, decoded, pos, dst);
                }
            } else {
                scratch.resize(bytes, 0);
                conv.convert(frame, decoded, &mut scratch)
                    .map_err(video_err)?;
                t.format.write(&scratch, h, w, c, dst).map_err(video_err)?;
                if let Some(cache) = cache {
                    cache.insert(&f.path, decoded, pos, &scratch);
                }
            }
            written.push((r.target, r.slot));
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
// SAFETY: the writer owns a unique borrow of the buffer for `'a`; moving it to another thread
// moves that borrow, and the raw pointer is not tied to a thread.
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
        // SAFETY: `start..end` lies inside the borrowed buffer (checked above), which lives
        // for `'a`; the caller guarantees no other reference to this slot is live.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.add(start), self.slot_bytes) })
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
    fn files_split_into_balanced_contiguous_parts_at_keyframes() {
        use crate::video::PacketInfo;
        // 24 frames, a keyframe every 2 (LeRobot's g=2), no reordering
        let packets = (0..24)
            .map(|i| PacketInfo {
                pts: i,
                dts: i,
                key: i % 2 == 0,
                pos: -1,
            })
            .collect();
        let path = Arc::new(PathBuf::from("x.mp4"));
        let index = Arc::new(FrameIndex::from_packets(
            path.as_path(),
            "av1".into(),
            4,
            4,
            (1, 10),
            packets,
        ));
        let file = |wanted: &[usize]| FileFrames {
            path: path.clone(),
            index: index.clone(),
            frames: wanted.iter().map(|&p| (p, vec![])).collect(),
            requests: vec![],
        };
        let parts = |f: &FileFrames, threads: usize| -> Vec<_> {
            split_file(0, f, threads)
                .into_iter()
                .map(|p| (p.frames, p.cost))
                .collect()
        };
        // scattered frames: one part per place in the file, costed from its keyframe
        let scattered = file(&[0, 1, 5, 8, 9, 20]);
        assert_eq!(
            parts(&scattered, 2),
            vec![(0..2, 2), (2..3, 2), (3..5, 2), (5..6, 1)]
        );
        // a sequential run is shared out between threads in contiguous parts
        let run = file(&(0..16).collect::<Vec<_>>());
        assert_eq!(parts(&run, 2), vec![(0..8, 8), (8..16, 8)]);
        assert_eq!(parts(&run, 1), vec![(0..16, 16)]);
        // a window's previous frame before a keyframe stays with the frames after it
        assert_eq!(parts(&file(&[3, 4, 5]), 1), vec![(0..3, 4)]);
    }

    #[test]
    fn duplicate_slots_are_refused() {
        assert!(check_unique_slots([(0, 1), (1, 1), (0, 2)].into_iter()).is_ok());
        assert!(check_unique_slots([(0, 1), (0, 1)].into_iter()).is_err());
    }
}
