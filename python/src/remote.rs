//! Remote roots for Python: register a root URL with its options, read one file through the
//! byte source, the requests and bytes a root cost. All remote logic is the core's `store`.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use roboframes_core::store::{self, RemoteOptions};

use crate::errors::{guarded, NativeResult};

/// Registers `root` when it is a URL (`s3://`, `gs://`, `az://`, `http(s)://`,
/// `hf://datasets/org/name[@rev]`) and returns its location (a Hub revision resolved to its
/// commit); a local path comes back unchanged.
#[pyfunction]
#[pyo3(signature = (root, storage_options=None, cache_dir=None, block_cache_bytes=None))]
pub fn open_root(
    py: Python<'_>,
    root: String,
    storage_options: Option<Vec<(String, String)>>,
    cache_dir: Option<PathBuf>,
    block_cache_bytes: Option<u64>,
) -> NativeResult<String> {
    if !store::is_url(&root) {
        return Ok(root);
    }
    let opts = RemoteOptions {
        storage_options: storage_options.unwrap_or_default(),
        cache_dir,
        block_cache_bytes,
    };
    let loc = py.detach(|| guarded("opening a remote root", || store::open_root(&root, &opts)))?;
    Ok(loc.to_string_lossy().into_owned())
}

/// The bytes of the file at `location` (a local path or a location below an opened root).
#[pyfunction]
pub fn read_bytes<'py>(py: Python<'py>, location: PathBuf) -> NativeResult<Bound<'py, PyBytes>> {
    let data = py.detach(|| {
        guarded("reading a file", || {
            store::read(&location, store::MAX_WHOLE_READ)
        })
    })?;
    Ok(PyBytes::new(py, &data))
}

/// True when a file exists at `location`.
#[pyfunction]
pub fn file_exists(py: Python<'_>, location: PathBuf) -> NativeResult<bool> {
    Ok(py.detach(|| guarded("looking for a file", || store::exists(&location)))?)
}

/// `requests`, `bytes` and `disk_hits` of the remote root at `location` in this process;
/// None for a local root.
#[pyfunction]
pub fn remote_stats<'py>(
    py: Python<'py>,
    location: PathBuf,
) -> NativeResult<Option<Bound<'py, PyDict>>> {
    let Some(s) = guarded("remote statistics", || store::stats(&location))? else {
        return Ok(None);
    };
    let d = PyDict::new(py);
    d.set_item("requests", s.requests)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("disk_hits", s.disk_hits)?;
    Ok(Some(d))
}

/// Empties this process's in-memory block cache of remote files.
#[pyfunction]
pub fn clear_remote_memory_cache() -> NativeResult<()> {
    Ok(guarded(
        "clearing the block cache",
        store::clear_memory_cache,
    )?)
}

/// True when `root` is a URL (a remote root or a location below one).
#[pyfunction]
pub fn is_url(root: &str) -> bool {
    store::is_url(root)
}

/// The files of `meta/episodes` of the root at `location` (listed locally, probed remotely).
#[pyfunction]
pub fn episode_files(py: Python<'_>, location: PathBuf) -> NativeResult<Vec<String>> {
    let files = py.detach(|| {
        guarded("finding the episode tables", || {
            roboframes_core::meta::episode_files(&location)
        })
    })?;
    Ok(files
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

/// Storage options as given and the disk cache folder, for Python.
type PyRootOptions = (Vec<(String, String)>, Option<String>);

/// `(storage_options, cache_dir)` the remote root at `location` was opened with in this
/// process, or None.
#[pyfunction]
pub fn root_options(location: PathBuf) -> NativeResult<Option<PyRootOptions>> {
    let found = guarded("remote root options", || store::root_options(&location))?;
    Ok(found.map(|(o, d)| (o, d.map(|p| p.to_string_lossy().into_owned()))))
}
