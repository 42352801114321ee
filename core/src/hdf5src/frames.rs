//! Camera frames of an HDF5 dataset, read a row at a time on the decoding threads. libhdf5
//! serialises every call behind one lock (hdf5-metno's), so the work done under it is kept
//! small: where a frame is one chunk, stored as is or deflated (the layout ALOHA's recorder and
//! robomimic write), its stored bytes are read directly (`H5Dread_chunk`) and inflated outside
//! the lock, in parallel; any other layout or filter goes through libhdf5's own pipeline (a
//! hyperslab read).

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use hdf5::filters::Filter;

use super::{files::Files, source_error};
use crate::error::Result;
use crate::table::{FrameBytes, RowFrames};

/// How a camera dataset's frames are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameRead {
    /// One frame per chunk, stored as is or deflated (shuffled or not: a shuffle of 1-byte
    /// elements changes nothing). `deflate`: the deflate filter's position in the pipeline
    /// (a chunk's filter mask says whether it was applied).
    Chunk { deflate: Option<u32> },
    /// Any other layout or filter: a hyperslab read through libhdf5's pipeline.
    Hyperslab,
}

/// The frames of one camera dataset of one episode.
#[derive(Debug)]
pub struct Hdf5Frames {
    files: Arc<Files>,
    file: usize,
    /// The dataset's path in the file.
    dataset: String,
    encoded: bool,
    rows: usize,
    /// The dataset's rank (a chunk's offset has one entry per dimension).
    rank: usize,
    /// Bytes of one row (a frame, or an encoded row's padded width).
    row_bytes: usize,
    read: FrameRead,
}

thread_local! {
    /// Per decoding thread, a deflated chunk's stored bytes, reused from frame to frame.
    static STORED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Hdf5Frames {
    /// The frames of `ds` (open in file `file` of `files`, at path `dataset`), uint8 rows of
    /// pixels, or of encoded images when `encoded` (rank 2: one padded row of bytes a frame).
    /// (The dataset's handle is kept with its file, not here: one kept here would keep the
    /// file open past the source's bound on open files.)
    pub fn new(
        files: Arc<Files>,
        file: usize,
        ds: &hdf5::Dataset,
        dataset: String,
        encoded: bool,
    ) -> Result<Hdf5Frames> {
        let shape = ds.shape();
        let path = files.path(file)?;
        let bad = |m: String| source_error(path, "", Some(&dataset), m);
        if encoded && shape.len() != 2 {
            return Err(bad(format!(
                "shape {shape:?}: an encoded camera holds one row of bytes a frame"
            )));
        }
        let row_bytes = shape
            .iter()
            .skip(1)
            .try_fold(1usize, |n, d| n.checked_mul(*d))
            .filter(|n| *n <= crate::meta::MAX_FEATURE_ELEMENTS)
            .ok_or_else(|| bad(format!("rows of shape {:?} are not frames", shape.get(1..))))?;
        let one_frame_chunks = ds
            .chunk()
            .is_some_and(|c| c.first() == Some(&1) && c.get(1..) == shape.get(1..));
        // (a pipeline that cannot be read goes through libhdf5's own reading)
        let filters = ds.dcpl().and_then(|p| p.get_filters());
        let mut read = FrameRead::Chunk { deflate: None };
        match filters {
            Ok(filters) if one_frame_chunks => {
                for (i, f) in filters.iter().enumerate() {
                    match (f, &mut read) {
                        (Filter::Deflate(_), FrameRead::Chunk { deflate }) if deflate.is_none() => {
                            *deflate = u32::try_from(i).ok();
                        }
                        (Filter::Shuffle, _) => {}
                        _ => read = FrameRead::Hyperslab,
                    }
                }
            }
            _ => read = FrameRead::Hyperslab,
        }
        // (read through libhdf5's pipeline, a frame never written would read as the fill
        // value: such a dataset is refused; the direct path checks each frame's chunk)
        if read == FrameRead::Hyperslab && shape.first().is_some_and(|n| *n > 0) {
            super::checks::fully_written(ds).map_err(bad)?;
        }
        Ok(Hdf5Frames {
            rows: shape.first().copied().unwrap_or(0),
            rank: shape.len(),
            files,
            file,
            dataset,
            encoded,
            row_bytes,
            read,
        })
    }

    /// The dataset, open (kept open with its file among the source's open files).
    fn dataset(&self, path: &Path) -> Result<hdf5::Dataset> {
        let ds = self.files.dataset(self.file, &self.dataset)?;
        if ds.ndim() != self.rank {
            return Err(source_error(
                path,
                "",
                Some(&self.dataset),
                format!("the dataset's rank changed to {}", ds.ndim()),
            ));
        }
        Ok(ds)
    }

    /// Row `row` through libhdf5's pipeline into `buf`.
    fn read_hyperslab(
        &self,
        ds: &hdf5::Dataset,
        row: usize,
        buf: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        let mut sel = vec![hdf5::SliceOrIndex::from(row..row + 1)];
        sel.extend((1..self.rank).map(|_| hdf5::SliceOrIndex::from(..)));
        let arr = ds
            .read_slice::<u8, _, ndarray::IxDyn>(hdf5::Hyperslab::from(sel))
            .map_err(|e| format!("row {row}: cannot read the frame: {e}"))?;
        let (bytes, _) = arr.into_raw_vec_and_offset();
        *buf = bytes;
        Ok(())
    }
}

/// The stored bytes of the chunk at row `row` of `ds` (a chunk of one row of rank `rank`), and
/// its filter mask; at most `max_bytes` (a stored size past it is an error, not an
/// allocation). A chunk never written is an error: the row would read as the fill value, not
/// a recorded frame.
fn read_chunk(
    ds: &hdf5::Dataset,
    rank: usize,
    row: usize,
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> std::result::Result<u32, String> {
    use hdf5_sys::h5d::{H5Dget_chunk_info_by_coord, H5Dread_chunk1};
    let offset: Vec<hdf5_sys::h5::hsize_t> = std::iter::once(row as u64)
        .chain(std::iter::repeat_n(0, rank.saturating_sub(1)))
        .collect();
    if rank == 0 || ds.ndim() != rank {
        return Err(format!("row {row}: the dataset's rank is not {rank}"));
    }
    let id = ds.id();
    hdf5::sync::sync(|| {
        let (mut mask, mut addr, mut size) = (0u32, 0u64, 0u64);
        // SAFETY: `id` is an open dataset (held by `ds`), `offset` has one entry per dimension,
        // and the out-pointers are valid locals; the call runs under libhdf5's global lock.
        let rc = unsafe {
            H5Dget_chunk_info_by_coord(id, offset.as_ptr(), &mut mask, &mut addr, &mut size)
        };
        if rc < 0 {
            return Err(format!("row {row}: cannot locate the frame's chunk"));
        }
        if size == 0 || addr == hdf5_sys::h5::HADDR_UNDEF {
            return Err(format!(
                "row {row}: the frame was never written (the dataset holds its fill value there)"
            ));
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= max_bytes)
            .ok_or_else(|| {
                format!(
                    "row {row}: a stored chunk of {size} bytes for a frame of at most {max_bytes}"
                )
            })?;
        out.clear();
        out.resize(size, 0);
        let mut filters = 0u32;
        // SAFETY: `out` holds `size` bytes, the chunk's stored size libhdf5 just reported for
        // this offset (it writes exactly that many); the rest as above.
        let rc = unsafe {
            H5Dread_chunk1(
                id,
                hdf5_sys::h5p::H5P_DEFAULT,
                offset.as_ptr(),
                &mut filters,
                out.as_mut_ptr().cast(),
            )
        };
        if rc < 0 {
            return Err(format!("row {row}: cannot read the frame's chunk"));
        }
        Ok(filters)
    })
}

/// Inflates a zlib stream (HDF5's deflate filter) of exactly `size` bytes into `out`.
fn inflate(stored: &[u8], size: usize, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    use flate2::{Decompress, FlushDecompress, Status};
    out.clear();
    out.resize(size, 0);
    let mut z = Decompress::new(true);
    let status = z
        .decompress(stored, out, FlushDecompress::Finish)
        .map_err(|e| format!("the deflated chunk is corrupt: {e}"))?;
    if status != Status::StreamEnd || z.total_out() != size as u64 {
        return Err(format!(
            "the deflated chunk does not inflate to one frame of {size} bytes (got {} bytes, \
             stream {})",
            z.total_out(),
            if status == Status::StreamEnd {
                "complete"
            } else {
                "incomplete"
            }
        ));
    }
    Ok(())
}

impl RowFrames for Hdf5Frames {
    fn read_into(&self, row: usize, buf: &mut Vec<u8>) -> Result<FrameBytes> {
        let path = self.files.path(self.file)?;
        let err = |m: String| source_error(path, "", Some(&self.dataset), m);
        if row >= self.rows {
            return Err(err(format!("row {row} of a dataset of {} rows", self.rows)));
        }
        let ds = self.dataset(path)?;
        // a chunk stored as is holds exactly one row; a deflated one at most zlib's worst case
        let whole = |b: &Vec<u8>| {
            if b.len() == self.row_bytes {
                Ok(())
            } else {
                Err(format!(
                    "row {row}: a chunk of {} bytes for a row of {}",
                    b.len(),
                    self.row_bytes
                ))
            }
        };
        match self.read {
            FrameRead::Chunk { deflate: None } => {
                read_chunk(&ds, self.rank, row, self.row_bytes, buf)
                    .and_then(|_| whole(buf))
                    .map_err(err)?
            }
            FrameRead::Chunk { deflate: Some(at) } => {
                let most = self
                    .row_bytes
                    .saturating_add(self.row_bytes / 1000)
                    .saturating_add(1 << 16);
                let mut stored = STORED.with(RefCell::take);
                let got = read_chunk(&ds, self.rank, row, most, &mut stored).and_then(|mask| {
                    if mask & (1 << at) != 0 {
                        // (the filter was skipped for this chunk: stored as is)
                        std::mem::swap(buf, &mut stored);
                        whole(buf)
                    } else {
                        inflate(&stored, self.row_bytes, buf).map_err(|m| format!("row {row}: {m}"))
                    }
                });
                STORED.with(|s| s.replace(stored));
                got.map_err(err)?
            }
            FrameRead::Hyperslab => self.read_hyperslab(&ds, row, buf).map_err(err)?,
        }
        Ok(if self.encoded {
            // (ALOHA's recordings are read back with OpenCV)
            FrameBytes::Encoded(crate::image::JpegDct::Accurate)
        } else {
            FrameBytes::Pixels
        })
    }
}
