//! Readers' views of a location's bytes: [`Source`] for the parquet reader and
//! [`RemoteCursor`], `Read + Seek` over a remote object.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::object::{recorded_failure, FailureSlot, RemoteObject};
use super::BLOCK_BYTES;
use crate::error::{Error, Result};

/// Blocks a reader going forward (a video decoder through an episode) fetches past the one it
/// needs, in the same request.
const READ_AHEAD_BLOCKS: u64 = 7;

/// A location's bytes, local or remote, for the parquet reader.
pub enum Source {
    Local(std::fs::File),
    Remote(RemoteObject),
}

impl Source {
    /// The error a remote read met under a parquet failure, naming `path`.
    pub fn failure(&self, path: &Path) -> Option<Error> {
        let Source::Remote(o) = self else { return None };
        recorded_failure(&o.failure, path)
    }

    /// Another handle on the same bytes (the parquet readers take theirs by value).
    pub fn clone_handle(&self, path: &Path) -> Result<Source> {
        match self {
            Source::Local(f) => f
                .try_clone()
                .map(Source::Local)
                .map_err(|e| Error::io(path, e)),
            Source::Remote(o) => Ok(Source::Remote(o.clone())),
        }
    }
}

impl parquet::file::reader::Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::Local(f) => f.len(),
            Source::Remote(o) => o.len(),
        }
    }
}

impl parquet::file::reader::ChunkReader for Source {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        match self {
            Source::Local(f) => Ok(Box::new(f.get_read(start)?)),
            Source::Remote(o) => {
                let mut c = RemoteCursor::new(o.clone());
                c.pos = start;
                Ok(Box::new(c))
            }
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::Local(f) => f.get_bytes(start, length),
            Source::Remote(o) => {
                let end = start.saturating_add(length as u64);
                if end > o.len() {
                    return Err(parquet::errors::ParquetError::EOF(format!(
                        "bytes {start}..{end} of a {}-byte file",
                        o.len()
                    )));
                }
                o.read_range(start, end, 0).map_err(|e| {
                    let text = e.to_string();
                    if let Ok(mut slot) = o.failure.lock() {
                        slot.get_or_insert(e);
                    }
                    parquet::errors::ParquetError::General(text)
                })
            }
        }
    }
}

/// `Read + Seek` over a remote object (FFmpeg's custom I/O and the parquet reader read through
/// it); sequential reads fetch blocks ahead.
pub struct RemoteCursor {
    obj: RemoteObject,
    pos: u64,
    block: Option<(u64, Bytes)>,
    /// Set, reads answer zeros without fetching: a frame index needs the demuxer's sample
    /// table, read when the file was opened, not the samples' bytes.
    pub zeros: Arc<AtomicBool>,
}

impl RemoteCursor {
    /// Where reads through this cursor record their first error.
    pub(crate) fn failure(&self) -> FailureSlot {
        self.obj.failure.clone()
    }

    pub fn new(obj: RemoteObject) -> RemoteCursor {
        RemoteCursor {
            obj,
            pos: 0,
            block: None,
            zeros: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Read for RemoteCursor {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.obj.len() || buf.is_empty() {
            return Ok(0);
        }
        if self.zeros.load(Ordering::Relaxed) {
            let n = buf
                .len()
                .min(usize::try_from(self.obj.len() - self.pos).unwrap_or(usize::MAX));
            buf.iter_mut().take(n).for_each(|b| *b = 0);
            self.pos += n as u64;
            return Ok(n);
        }
        let b = self.pos / BLOCK_BYTES;
        let have = matches!(&self.block, Some((k, _)) if *k == b);
        if !have {
            let r = self.obj.block_range(b);
            // read ahead only when going forward from the previous block
            let forward = matches!(&self.block, Some((k, _)) if k.checked_add(1) == Some(b));
            let ahead = if forward { READ_AHEAD_BLOCKS } else { 0 };
            match self.obj.read_range(r.start, r.end, ahead) {
                Ok(bytes) => self.block = Some((b, bytes)),
                Err(e) => {
                    let msg = e.to_string();
                    if let Ok(mut slot) = self.obj.failure.lock() {
                        slot.get_or_insert(e);
                    }
                    return Err(std::io::Error::other(msg));
                }
            }
        }
        let Some((_, block)) = &self.block else {
            return Err(std::io::Error::other("no block"));
        };
        let off = (self.pos - b * BLOCK_BYTES) as usize;
        let avail = block.get(off..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteCursor {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let len = self.obj.len() as i128;
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => len + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = u64::try_from(target).unwrap_or(u64::MAX);
        Ok(self.pos)
    }
}
