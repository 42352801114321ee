//! `roboframes._native`: a thin pyo3 layer over roboframes-core. It holds no dataset logic:
//! it converts arguments, lends NumPy buffers to the core with the GIL released, and turns
//! core errors into the exception classes of `roboframes.errors`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use roboframes_core::{
    registry, DType, Dataset, Error, FrameFormat, OpenOptions, OutBuf, OutputKind, OutputSpec,
    PixelType,
};

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
    inner: Arc<Dataset>,
    /// The dataset's handle in the core registry, made on first use by an operator.
    handle: OnceLock<i64>,
}

impl Drop for NativeDataset {
    fn drop(&mut self) {
        if let Some(h) = self.handle.get() {
            registry::remove(*h);
        }
    }
}

fn kind_name(k: OutputKind) -> &'static str {
    match k {
        OutputKind::Video => "video",
        OutputKind::Image => "image",
        OutputKind::Numeric => "numeric",
        OutputKind::String => "string",
        OutputKind::Pad => "pad",
        OutputKind::Task => "task",
        OutputKind::Subtask => "subtask",
    }
}

fn frame_format(frame_dtype: &str, channels_last: bool) -> PyResult<FrameFormat> {
    let pixel = PixelType::parse(frame_dtype).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "frame dtype must be 'uint8', 'float32', 'float16' or 'bfloat16', got '{frame_dtype}'"
        ))
    })?;
    Ok(FrameFormat {
        pixel,
        channels_last,
    })
}

fn output_tuples(specs: &[OutputSpec]) -> Vec<OutputTuple> {
    specs
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
        Ok(NativeDataset {
            inner: Arc::new(inner),
            handle: OnceLock::new(),
        })
    }

    /// This dataset's handle for the `torch.ops.roboframes` operators (made on first call,
    /// released with the dataset).
    fn handle(&self) -> i64 {
        *self
            .handle
            .get_or_init(|| registry::insert(self.inner.clone()))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// `[(key, kind, dtype, shape, window)]` for every entry of an item, in LeRobot's order,
    /// with frames in the given format.
    #[pyo3(signature = (frame_dtype="uint8", channels_last=true))]
    fn outputs(&self, frame_dtype: &str, channels_last: bool) -> PyResult<Vec<OutputTuple>> {
        let fmt = frame_format(frame_dtype, channels_last)?;
        Ok(output_tuples(&self.inner.outputs_for(fmt)))
    }

    /// Fills a batch. `buffers[i]` is a writable C-contiguous array of `len(indices) *
    /// item_bytes` bytes for a byte output, or None to leave it out; string outputs take None
    /// and are returned when `strings` is true. Returns, per output, the list of strings for
    /// returned string outputs and None otherwise.
    #[pyo3(signature = (indices, buffers, frame_dtype="uint8", channels_last=true, strings=true))]
    fn fill<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<i64>,
        buffers: Vec<Option<Bound<'py, PyUntypedArray>>>,
        frame_dtype: &str,
        channels_last: bool,
        strings: bool,
    ) -> PyResult<Vec<Option<Vec<String>>>> {
        let fmt = frame_format(frame_dtype, channels_last)?;
        let specs = self.inner.outputs_for(fmt);
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
                (true, _) | (false, None) => raws.push(None),
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
                    let descr = arr.dtype();
                    let kind = match spec.dtype {
                        DType::Bool => Some(b'b'),
                        DType::U8 | DType::U16 | DType::U32 | DType::U64 => Some(b'u'),
                        DType::I8 | DType::I16 | DType::I32 | DType::I64 => Some(b'i'),
                        DType::F16 | DType::F32 | DType::F64 => Some(b'f'),
                        DType::BF16 => None, // NumPy has no bfloat16
                    };
                    if kind != Some(descr.kind()) || descr.itemsize() != spec.dtype.size() {
                        return Err(PyRuntimeError::new_err(format!(
                            "buffer for '{}' must hold {} elements",
                            spec.key,
                            spec.dtype.name()
                        )));
                    }
                    let len = arr.len() * descr.itemsize();
                    raws.push(Some(RawBuf { ptr, len }));
                }
            }
        }
        // The core writes the buffers from several threads: they must not overlap.
        let mut ranges: Vec<(usize, usize)> = raws
            .iter()
            .flatten()
            .map(|r| (r.ptr as usize, r.ptr as usize + r.len))
            .filter(|(a, b)| a < b)
            .collect();
        ranges.sort_unstable();
        if ranges.windows(2).any(|w| matches!(w, [a, b] if a.1 > b.0)) {
            return Err(PyRuntimeError::new_err("output buffers overlap"));
        }
        let mut texts: Vec<Vec<String>> = specs.iter().map(|_| Vec::new()).collect();
        let inner = &self.inner;
        let result = py.detach(|| {
            let mut outs: Vec<OutBuf<'_>> = Vec::with_capacity(raws.len());
            for ((raw, s), spec) in raws.iter().zip(texts.iter_mut()).zip(&specs) {
                match raw {
                    // SAFETY: see RawBuf: the array outlives this call and nothing else touches it.
                    Some(r) => outs.push(OutBuf::Bytes(unsafe {
                        std::slice::from_raw_parts_mut(r.ptr, r.len)
                    })),
                    None if spec.is_string() && strings => outs.push(OutBuf::Strings(s)),
                    None => outs.push(OutBuf::Skip),
                }
            }
            inner.fill_batch(&indices, fmt, &mut outs)
        });
        drop(buffers);
        result.map_err(|e| to_py_err(py, e))?;
        Ok(specs
            .iter()
            .zip(texts)
            .map(|(spec, s)| (spec.is_string() && strings).then_some(s))
            .collect())
    }

    /// Decoding threads of this process for the dataset.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// Sets the decoding threads of this process (rebuilt on next use).
    fn set_threads(&self, n: usize) {
        self.inner.set_threads(n)
    }

    /// Per item: whether its frame starts a keyframe group in every video key.
    fn keyframes(&self, py: Python<'_>) -> PyResult<Vec<bool>> {
        let inner = &self.inner;
        py.detach(|| inner.keyframe_items())
            .map_err(|e| to_py_err(py, e))
    }

    /// The text of `meta/info.json` as parsed.
    fn info_json(&self) -> String {
        self.inner.info().raw.to_string()
    }

    /// The text of `meta/stats.json`, or None when the dataset has none.
    fn stats_json(&self) -> Option<String> {
        self.inner.stats_text().map(str::to_owned)
    }

    /// `{task_index: task}`.
    fn tasks(&self) -> IndexMap<i64, String> {
        self.inner.tasks().clone()
    }

    /// `{subtask_index: subtask}`, or None when the dataset has no subtasks.
    fn subtasks(&self) -> Option<IndexMap<i64, String>> {
        self.inner.subtasks().cloned()
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

/// Registers the `torch.ops.roboframes` operators with the libtorch loaded from `libtorch_cpu`
/// (the path of the already loaded `libtorch_cpu` library). Idempotent.
#[pyfunction]
fn register_torch_ops(libtorch_cpu: PathBuf) -> PyResult<()> {
    roboframes_torch::register(&libtorch_cpu).map_err(PyRuntimeError::new_err)
}

/// The roboframes exception of the last operator that failed on this thread (None if taken).
#[pyfunction]
fn take_op_error(py: Python<'_>) -> Option<PyErr> {
    roboframes_torch::take_last_error().map(|e| to_py_err(py, e))
}

/// `(H, W, C)` of the frames of a video key of the dataset behind `handle`.
#[pyfunction]
fn handle_frame_dims(py: Python<'_>, handle: i64, camera: &str) -> PyResult<(usize, usize, usize)> {
    registry::get(handle)
        .and_then(|d| d.frame_dims(camera))
        .map_err(|e| to_py_err(py, e))
}

/// `(row_shape, dtype)` of a numeric feature of the dataset behind `handle`.
#[pyfunction]
fn handle_numeric_row(
    py: Python<'_>,
    handle: i64,
    key: &str,
) -> PyResult<(Vec<usize>, &'static str)> {
    registry::get(handle)
        .and_then(|d| d.numeric_row(key))
        .map(|(shape, dt)| (shape, dt.name()))
        .map_err(|e| to_py_err(py, e))
}

/// The item entries of the dataset behind `handle`, with frames in the given format.
#[pyfunction]
fn handle_outputs(
    py: Python<'_>,
    handle: i64,
    frame_dtype: &str,
    channels_last: bool,
) -> PyResult<Vec<OutputTuple>> {
    let fmt = frame_format(frame_dtype, channels_last)?;
    let d = registry::get(handle).map_err(|e| to_py_err(py, e))?;
    Ok(output_tuples(&d.outputs_for(fmt)))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeDataset>()?;
    m.add_function(wrap_pyfunction!(register_torch_ops, m)?)?;
    m.add_function(wrap_pyfunction!(take_op_error, m)?)?;
    m.add_function(wrap_pyfunction!(handle_frame_dims, m)?)?;
    m.add_function(wrap_pyfunction!(handle_numeric_row, m)?)?;
    m.add_function(wrap_pyfunction!(handle_outputs, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
