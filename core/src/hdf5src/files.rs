//! The files of an HDF5 source: found in a folder in their natural order, and kept open (a
//! bounded number, per process: a forked worker opens its own handles).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lru::LruCache;

use super::source_error;
use crate::error::{Error, Result};

/// The most HDF5 files of one source kept open at once (a folder of ALOHA episodes may hold
/// thousands).
const MAX_OPEN: usize = 64;

/// The files of one source, opened read-only on demand and kept among the [`MAX_OPEN`] most
/// recently used, per process (a forked worker opens its own handles). Dropping it closes them.
/// A file replaced or rewritten since the source was opened is an error, never read as if it
/// were the file the source's episodes were found in.
#[derive(Debug)]
pub struct Files {
    paths: Vec<PathBuf>,
    stamped: Vec<crate::source::Stamped>,
    open: Mutex<LruCache<usize, OpenFile>>,
}

/// A file open in a process, with the datasets opened in it (evicted with it, so that an
/// evicted file closes: libhdf5 keeps a file open while any of its objects is).
#[derive(Debug)]
struct OpenFile {
    pid: u32,
    file: hdf5::File,
    datasets: std::collections::HashMap<String, hdf5::Dataset>,
}

impl Files {
    /// The files at `paths`, as they are now.
    pub fn new(paths: Vec<PathBuf>) -> Result<Files> {
        let stamped = paths
            .iter()
            .map(|p| crate::source::Stamped::new(p.clone(), super::FORMAT))
            .collect::<Result<_>>()?;
        Ok(Files {
            paths,
            stamped,
            open: Mutex::new(LruCache::new(
                std::num::NonZeroUsize::new(MAX_OPEN).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
        })
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The path of file `i`.
    pub fn path(&self, i: usize) -> Result<&Path> {
        self.paths
            .get(i)
            .map(PathBuf::as_path)
            .ok_or_else(|| Error::internal("HDF5 source", format!("no file {i}")))
    }

    /// File `i`, open.
    pub fn open(&self, i: usize) -> Result<hdf5::File> {
        self.with_open(i, |f| Ok(f.file.clone()))
    }

    /// Dataset `name` of file `i`, open (kept with its file).
    pub fn dataset(&self, i: usize, name: &str) -> Result<hdf5::Dataset> {
        let path = self.path(i)?;
        self.with_open(i, |f| {
            if let Some(ds) = f.datasets.get(name) {
                return Ok(ds.clone());
            }
            let ds = f.file.dataset(name).map_err(|e| {
                source_error(
                    path,
                    "",
                    Some(name),
                    format!("cannot open the dataset: {e}"),
                )
            })?;
            f.datasets.insert(name.to_owned(), ds.clone());
            Ok(ds)
        })
    }

    /// Calls `use_` with file `i` open in this process (opened, or reopened after a fork, when
    /// it is not), under the cache's lock; the file is first checked unchanged since the
    /// source was opened (an open handle would read a file rewritten in place as it is now).
    fn with_open<T>(&self, i: usize, use_: impl FnOnce(&mut OpenFile) -> Result<T>) -> Result<T> {
        let pid = std::process::id();
        let path = self.path(i)?;
        self.stamped
            .get(i)
            .ok_or_else(|| Error::internal("HDF5 source", format!("no file {i}")))?
            .check()?;
        // (a poisoned lock: the cache is consistent, every update is one call)
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = open.get_mut(&i).filter(|f| f.pid == pid) {
            return use_(f);
        }
        let file = hdf5::File::open(path)
            .map_err(|e| source_error(path, "", None, format!("cannot open the file: {e}")))?;
        let mut f = OpenFile {
            pid,
            file,
            datasets: std::collections::HashMap::new(),
        };
        let out = use_(&mut f);
        open.put(i, f);
        out
    }
}

/// The HDF5 files of `root`: the file itself, or a folder's `.hdf5`/`.h5` files in natural
/// order (`episode_2` before `episode_10`).
pub fn list(root: &Path) -> Result<Vec<PathBuf>> {
    crate::source::source_files(
        root,
        crate::source::is_hdf5_name,
        "no such HDF5 file or folder",
        "the folder holds no .hdf5 or .h5 files",
    )
}

/// The group at `name` (`/` for the root) of an open file.
pub fn group(file: &hdf5::File, name: &str, path: &Path) -> Result<hdf5::Group> {
    file.group(if name.is_empty() { "/" } else { name })
        .map_err(|e| source_error(path, name, None, format!("cannot open the group: {e}")))
}
