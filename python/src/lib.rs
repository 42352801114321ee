//! `roboframes._native`: a thin pyo3 layer over roboframes-core. It holds no dataset logic:
//! it converts arguments, lends NumPy buffers to the core with the GIL released, and turns
//! core errors into the exception classes of `roboframes.errors`.

use std::path::PathBuf;

use indexmap::IndexMap;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use roboframes_core::{Dataset, Error, OpenOptions, OutBuf, OutputKind};

/// Maps a core error to the matching `roboframes.errors` class, with path/episode/key attributes.
fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
    let class = match &e {
        Error::NotFound { .. } => "DatasetNotFoundError",
        Error::Io { .. } => "FileReadError",
        Error::Metadata { .. } | Error::MissingColumn { .. } => "MetadataError",
        Error::Parquet { .. } => "ParquetError",
        Error::Video { .. } => "VideoDecodeError",
        Error::UnsupportedCodec { .. } => "UnsupportedCodecError",
        Error::Image { .. } => "ImageDecodeError",
        Error::FrameTimestamp { .. } => "FrameTimestampError",
        Error::DeltaTimestamps { .. } => "DeltaTimestampsError",
        Error::IndexOutOfRange { .. } => "IndexOutOfRangeError",
        Error::InvalidArgument { .. } => "InvalidArgumentError",
    };
    let msg = e.to_string();
    let build = || -> PyResult<PyErr> {
        let module = py.import("roboframes.errors")?;
        let cls = module.getattr(class)?;
        let exc = cls.call1((msg.clone(),))?;
        if let Some(at) = e.location() {
            exc.setattr("path", at.path.as_ref().map(|p| p.display().to_string()))?;
            exc.setattr("episode", at.episode)?;
            exc.setattr("key", at.key.clone())?;
        }
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|err| err)
}

/// `(key, kind, dtype, shape, window)` of one item entry.
type OutputTuple = (
    String,
    &'static str,
    &'static str,
    Vec<usize>,
    Option<usize>,
);

/// The native dataset handle used by `roboframes.Dataset`.
#[pyclass(module = "roboframes._native", frozen)]
struct NativeDataset {
    inner: Dataset,
}

fn kind_name(k: OutputKind) -> &'static str {
    match k {
        OutputKind::Video => "video",
        OutputKind::Image => "image",
        OutputKind::Numeric => "numeric",
        OutputKind::String => "string",
        OutputKind::Pad => "pad",
        OutputKind::Task => "task",
    }
}

/// A raw, writable, C-contiguous byte view of a NumPy array, extracted with the GIL held.
struct RawBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the pointer refers to a NumPy array that the caller keeps alive (it is an argument
// of `fill` for the whole call) and does not share with other threads during the call.
unsafe impl Send for RawBuf {}
// SAFETY: as above; the core writes each byte from one thread at a time.
unsafe impl Sync for RawBuf {}

#[pymethods]
impl NativeDataset {
    #[new]
    #[pyo3(signature = (root, episodes=None, delta_timestamps=None, tolerance_s=1e-4, threads=None))]
    fn new(
        py: Python<'_>,
        root: PathBuf,
        episodes: Option<Vec<i64>>,
        delta_timestamps: Option<IndexMap<String, Vec<f64>>>,
        tolerance_s: f64,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let opts = OpenOptions {
            episodes,
            delta_timestamps,
            tolerance_s,
            threads,
        };
        let inner = py
            .detach(move || Dataset::open(root, opts))
            .map_err(|e| to_py_err(py, e))?;
        Ok(NativeDataset { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// `[(key, kind, dtype, shape, window)]` for every entry of an item, in LeRobot's order.
    fn outputs(&self) -> Vec<OutputTuple> {
        self.inner
            .outputs()
            .iter()
            .map(|o| {
                (
                    o.key.clone(),
                    kind_name(o.kind),
                    o.dtype.name(),
                    o.shape.clone(),
                    o.window,
                )
            })
            .collect()
    }

    /// Fills a batch. `buffers[i]` is a writable C-contiguous array of `len(indices) *
    /// item_bytes` bytes for byte outputs and None for string outputs. Returns, per output,
    /// the list of strings for string outputs and None otherwise.
    fn fill<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<i64>,
        buffers: Vec<Option<Bound<'py, PyUntypedArray>>>,
    ) -> PyResult<Vec<Option<Vec<String>>>> {
        let specs = self.inner.outputs();
        if buffers.len() != specs.len() {
            return Err(PyRuntimeError::new_err(format!(
                "expected {} buffers, got {}",
                specs.len(),
                buffers.len()
            )));
        }
        let mut raws: Vec<Option<RawBuf>> = Vec::with_capacity(specs.len());
        for (spec, b) in specs.iter().zip(&buffers) {
            match (spec.is_string(), b) {
                (true, _) => raws.push(None),
                (false, Some(arr)) => {
                    if !arr.is_c_contiguous() {
                        return Err(PyRuntimeError::new_err(format!(
                            "buffer for '{}' is not C-contiguous",
                            spec.key
                        )));
                    }
                    // SAFETY: reading fields of a live array object while holding the GIL.
                    let (ptr, writeable) = unsafe {
                        let a = arr.as_array_ptr();
                        (
                            (*a).fields.data as *mut u8,
                            (*a).fields.flags & numpy::npyffi::NPY_ARRAY_WRITEABLE != 0,
                        )
                    };
                    if !writeable {
                        return Err(PyRuntimeError::new_err(format!(
                            "buffer for '{}' is read-only",
                            spec.key
                        )));
                    }
                    let len = arr.len() * arr.dtype().itemsize();
                    raws.push(Some(RawBuf { ptr, len }));
                }
                (false, None) => {
                    return Err(PyRuntimeError::new_err(format!(
                        "no buffer for '{}'",
                        spec.key
                    )));
                }
            }
        }
        let mut strings: Vec<Vec<String>> = specs.iter().map(|_| Vec::new()).collect();
        let inner = &self.inner;
        let result = py.detach(|| {
            let mut outs: Vec<OutBuf<'_>> = Vec::with_capacity(raws.len());
            for (raw, s) in raws.iter().zip(strings.iter_mut()) {
                match raw {
                    // SAFETY: see RawBuf: the array outlives this call and nothing else touches it.
                    Some(r) => outs.push(OutBuf::Bytes(unsafe {
                        std::slice::from_raw_parts_mut(r.ptr, r.len)
                    })),
                    None => outs.push(OutBuf::Strings(s)),
                }
            }
            inner.fill_batch(&indices, &mut outs)
        });
        drop(buffers);
        result.map_err(|e| to_py_err(py, e))?;
        Ok(specs
            .iter()
            .zip(strings)
            .map(|(spec, s)| spec.is_string().then_some(s))
            .collect())
    }

    /// The text of `meta/info.json` as parsed.
    fn info_json(&self) -> String {
        self.inner.info().raw.to_string()
    }

    /// The text of `meta/stats.json`, or None when the dataset has none.
    fn stats_json(&self) -> Option<String> {
        self.inner.stats().map(|v| v.to_string())
    }

    /// `{task_index: task}`.
    fn tasks(&self) -> IndexMap<i64, String> {
        self.inner.tasks().clone()
    }

    /// Episode indices of the selection, in dataset order.
    fn selected_episodes(&self) -> Vec<i64> {
        self.inner.selected_episodes()
    }

    /// Frame offsets per key (`round(delta * fps)`).
    fn delta_indices(&self) -> IndexMap<String, Vec<i64>> {
        self.inner.delta_indices().clone()
    }

    /// The core's view of every episode (index, length, data location, per-camera video spans).
    fn episodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let keys = self.inner.info().video_keys();
        let out = PyList::empty(py);
        for e in self.inner.episodes() {
            let d = PyDict::new(py);
            d.set_item("episode_index", e.episode_index)?;
            d.set_item("length", e.length)?;
            d.set_item("data/chunk_index", e.data_chunk_index)?;
            d.set_item("data/file_index", e.data_file_index)?;
            d.set_item("dataset_from_index", e.dataset_from_index)?;
            d.set_item("dataset_to_index", e.dataset_to_index)?;
            for (k, v) in keys.iter().zip(&e.videos) {
                d.set_item(format!("videos/{k}/chunk_index"), v.chunk_index)?;
                d.set_item(format!("videos/{k}/file_index"), v.file_index)?;
                d.set_item(format!("videos/{k}/from_timestamp"), v.from_timestamp)?;
                d.set_item(format!("videos/{k}/to_timestamp"), v.to_timestamp)?;
            }
            out.append(d)?;
        }
        Ok(out)
    }

    #[getter]
    fn fps(&self) -> f64 {
        self.inner.info().fps
    }

    #[getter]
    fn root(&self) -> String {
        self.inner.root().display().to_string()
    }

    #[getter]
    fn tolerance_s(&self) -> f64 {
        self.inner.tolerance_s()
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeDataset>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
