//! Open readers and frame indexes shared by the decoding threads of a dataset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{FrameIndex, VideoReader};
use crate::error::Result;

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
    /// Readers decode strictly ([`VideoReader::open_strict`]).
    strict: bool,
    idle: Mutex<Vec<(u64, Box<VideoReader>)>>,
    indexes: Mutex<HashMap<PathBuf, Arc<FrameIndex>>>,
    tick: AtomicU64,
    decoded: AtomicU64,
}

impl DecoderPool {
    /// A pool keeping at most `per_file` idle readers of one file and `capacity` in all.
    pub fn new(capacity: usize, per_file: usize, threads_per_decoder: usize) -> DecoderPool {
        Self::with_strictness(capacity, per_file, threads_per_decoder, false)
    }

    /// [`DecoderPool::new`] whose readers decode strictly when `strict` is set
    /// ([`VideoReader::open_strict`]).
    pub fn with_strictness(
        capacity: usize,
        per_file: usize,
        threads_per_decoder: usize,
        strict: bool,
    ) -> DecoderPool {
        DecoderPool {
            strict,
            capacity: capacity.max(1),
            per_file: per_file.max(1),
            threads_per_decoder: threads_per_decoder.max(1),
            idle: Mutex::new(Vec::new()),
            indexes: Mutex::new(HashMap::new()),
            tick: AtomicU64::new(0),
            decoded: AtomicU64::new(0),
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
        Ok(Box::new(VideoReader::open_with(
            ix,
            self.threads_per_decoder,
            self.strict,
        )?))
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
        let t = self.tick.fetch_add(1, Ordering::Relaxed);
        self.decoded
            .fetch_add(std::mem::take(&mut reader.decoded), Ordering::Relaxed);
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
        self.decoded.load(Ordering::Relaxed)
    }

    /// Number of idle open readers (for tests and stats).
    pub fn open_readers(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }
}
