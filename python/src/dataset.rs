//! `roboframes._native.NativeDataset`: the handle `roboframes.Dataset` wraps, and the named
//! description of each entry of an item (`OutputSpec`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indexmap::IndexMap;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use pyo3::IntoPyObjectExt;

use roboframes_core::depth::DepthOutput;
use roboframes_core::normalize::{normalize_batch, NormMode, Normalization};
use roboframes_core::store::RemoteOptions;
use roboframes_core::value::Value;
use roboframes_core::{
    registry, DType, Dataset, Error, FrameFormat, OpenOptions, OutBuf, OutputKind, OutputSpec,
    PixelType,
};
use roboframes_core::{KeyMap, SourceOptions};

use crate::errors::{guarded, NativeResult};

/// One entry of an item, in LeRobot's key order.
#[pyclass(module = "roboframes._native", name = "OutputSpec", frozen, get_all)]
#[derive(Clone)]
pub struct PyOutputSpec {
    /// The item key (`observation.state`, a camera key, `action_is_pad`, `task`, ...).
    key: String,
    /// `video`, `image`, `numeric`, `string`, `language`, `pad`, `task` or `subtask`.
    kind: &'static str,
    /// NumPy name of the element type (`float32`, `uint8`, `bool`, ...).
    dtype: &'static str,
    /// Shape of one item's value (the window's `T` first for windowed keys).
    shape: Vec<usize>,
    /// Number of window steps for keys with `delta_timestamps`, else None.
    window: Option<usize>,
    /// True for entries filled into arrays; the others (strings, language values) are
    /// returned as Python objects.
    is_array: bool,
    /// For a depth map's frames, what they hold: `"mm"`, `"m"` or `"raw"` (codes); else None.
    depth: Option<&'static str>,
}

#[pymethods]
impl PyOutputSpec {
    fn __repr__(&self) -> String {
        format!(
            "OutputSpec(key={:?}, kind={:?}, dtype={:?}, shape={:?}, window={:?}, depth={:?})",
            self.key, self.kind, self.dtype, self.shape, self.window, self.depth
        )
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
        OutputKind::Language => "language",
    }
}

/// The options of a source that is not a LeRobot root, from Python's arguments (`key_map`: a
/// dict of names, else LeRobot's names when `key_map_lerobot`, else the source's own).
#[allow(clippy::too_many_arguments)]
pub fn source_options(
    format: Option<String>,
    split: Option<String>,
    fps: Option<f64>,
    task: Option<String>,
    key_map: Option<IndexMap<String, String>>,
    key_map_lerobot: bool,
    mcap: McapArgs,
) -> SourceOptions {
    let key_map = match (key_map, key_map_lerobot) {
        (Some(names), _) => KeyMap::Names(names),
        (None, true) => KeyMap::LeRobot,
        (None, false) => KeyMap::Source,
    };
    SourceOptions {
        format,
        split,
        fps,
        task,
        key_map,
        topics: mcap.0,
        reference_topic: mcap.1,
        align_tolerance_s: mcap.2,
        episode_spans: mcap.3,
    }
}

/// MCAP's options from Python: `topics`, `reference_topic`, `align_tolerance_s`,
/// `episode_spans`.
pub type McapArgs = (
    Option<Vec<String>>,
    Option<String>,
    Option<f64>,
    Option<Vec<(String, f64, f64)>>,
);

/// The depth output named `name` (`"mm"`, `"m"` or `"raw"`).
pub fn depth_output(name: &str) -> NativeResult<DepthOutput> {
    Ok(
        DepthOutput::parse(name).ok_or_else(|| Error::InvalidArgument {
            msg: format!(
            "depth_output_unit must be 'mm', 'm' or 'raw' (the stored 12-bit codes), got '{name}'"
        ),
        })?,
    )
}

/// The frame format named by `frame_dtype` and `channels_last`.
pub fn frame_format(frame_dtype: &str, channels_last: bool) -> NativeResult<FrameFormat> {
    let pixel = PixelType::parse(frame_dtype).ok_or_else(|| Error::InvalidArgument {
        msg: format!(
            "frame_dtype must be 'uint8', 'float32', 'float16' or 'bfloat16', got '{frame_dtype}'"
        ),
    })?;
    Ok(FrameFormat {
        pixel,
        channels_last,
    })
}

/// The entries of an item of `dataset` with frames in `fmt`.
pub fn output_specs(dataset: &Dataset, fmt: FrameFormat) -> Vec<PyOutputSpec> {
    dataset
        .outputs_for(fmt)
        .iter()
        .map(|o| PyOutputSpec {
            key: o.key.clone(),
            kind: kind_name(o.kind),
            dtype: o.dtype.name(),
            shape: o.shape.clone(),
            window: o.window,
            is_array: o.is_array(),
            depth: o.depth.map(DepthOutput::name),
        })
        .collect()
}

/// The NumPy kind character (`b`, `u`, `i`, `f`) of arrays holding `dtype` (None: bfloat16,
/// which NumPy lacks).
fn numpy_kind(dtype: DType) -> Option<u8> {
    match dtype {
        DType::Bool => Some(b'b'),
        DType::U8 | DType::U16 | DType::U32 | DType::U64 => Some(b'u'),
        DType::I8 | DType::I16 | DType::I32 | DType::I64 => Some(b'i'),
        DType::F16 | DType::F32 | DType::F64 => Some(b'f'),
        DType::BF16 => None,
    }
}

/// A raw, writable, C-contiguous byte view of a NumPy array, extracted with the GIL held.
pub struct RawBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the pointer refers to a NumPy array that the caller keeps alive (it is an argument
// of `fill` for the whole call) and does not share with other threads during the call.
unsafe impl Send for RawBuf {}
// SAFETY: as above; the core writes each byte from one thread at a time.
unsafe impl Sync for RawBuf {}

/// The writable bytes of `arr` for output `key` of element type `dtype`.
fn raw_buffer(key: &str, dtype: DType, arr: &Bound<'_, PyUntypedArray>) -> NativeResult<RawBuf> {
    let bad = |what: String| Error::internal("fill", format!("buffer for '{key}' {what}"));
    if !arr.is_c_contiguous() {
        return Err(bad("is not C-contiguous".into()).into());
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
        return Err(bad("is read-only".into()).into());
    }
    let descr = arr.dtype();
    if numpy_kind(dtype) != Some(descr.kind()) || descr.itemsize() != dtype.size() {
        return Err(bad(format!("must hold {} elements", dtype.name())).into());
    }
    let len = arr
        .len()
        .checked_mul(descr.itemsize())
        .ok_or_else(|| bad("is too large".into()))?;
    Ok(RawBuf { ptr, len })
}

/// The raw views of a batch's output arrays (None for strings and left-out outputs), checked
/// against the outputs' types and sizes and for overlap (the core writes them from several
/// threads).
pub fn raw_buffers(
    specs: &[OutputSpec],
    buffers: &[Option<Bound<'_, PyUntypedArray>>],
) -> NativeResult<Vec<Option<RawBuf>>> {
    if buffers.len() != specs.len() {
        return Err(Error::internal(
            "fill",
            format!("expected {} buffers, got {}", specs.len(), buffers.len()),
        )
        .into());
    }
    let mut raws: Vec<Option<RawBuf>> = Vec::with_capacity(specs.len());
    for (spec, b) in specs.iter().zip(buffers) {
        match (spec.is_array(), b) {
            (false, _) | (true, None) => raws.push(None),
            (true, Some(arr)) => raws.push(Some(raw_buffer(&spec.key, spec.dtype, arr)?)),
        }
    }
    let mut ranges: Vec<(usize, usize)> = raws
        .iter()
        .flatten()
        .map(|r| (r.ptr as usize, r.ptr as usize + r.len))
        .filter(|(a, b)| a < b)
        .collect();
    ranges.sort_unstable();
    if ranges.windows(2).any(|w| matches!(w, [a, b] if a.1 > b.0)) {
        return Err(Error::internal("fill", "output buffers overlap").into());
    }
    Ok(raws)
}

/// What a fill hands back besides arrays, per output: strings, or language values.
#[derive(Default, Clone)]
pub struct Returned {
    strings: Vec<String>,
    values: Vec<Value>,
}

/// One empty [`Returned`] per output.
pub fn returned(specs: &[OutputSpec]) -> Vec<Returned> {
    vec![Returned::default(); specs.len()]
}

/// The core's destinations for `raws`: bytes, strings or values into `back` (when `objects`),
/// or skip.
///
/// # Safety
/// Every `RawBuf` must point to memory that stays valid, and that nothing else reads or
/// writes, for as long as the returned slices are used.
pub unsafe fn out_bufs<'a>(
    specs: &[OutputSpec],
    raws: &[Option<RawBuf>],
    back: &'a mut [Returned],
    objects: bool,
) -> Vec<OutBuf<'a>> {
    let mut outs: Vec<OutBuf<'a>> = Vec::with_capacity(raws.len());
    for ((raw, r), spec) in raws.iter().zip(back.iter_mut()).zip(specs) {
        match raw {
            // SAFETY: the caller's contract: the memory is valid and ours alone meanwhile.
            Some(r) => outs.push(OutBuf::Bytes(unsafe {
                std::slice::from_raw_parts_mut(r.ptr, r.len)
            })),
            None if objects && spec.is_string() => outs.push(OutBuf::Strings(&mut r.strings)),
            None if objects && spec.kind == OutputKind::Language => {
                outs.push(OutBuf::Values(&mut r.values))
            }
            None => outs.push(OutBuf::Skip),
        }
    }
    outs
}

/// A core value as a Python object: lists, dicts (fields in order), str, bytes, int, float,
/// bool, None, as pyarrow's `to_pylist` gives them.
fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_bound_py_any(py)?,
        Value::Int(i) => i.into_bound_py_any(py)?,
        Value::UInt(u) => u.into_bound_py_any(py)?,
        Value::Float(f) => f.into_bound_py_any(py)?,
        Value::Str(s) => s.into_bound_py_any(py)?,
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::List(items) => {
            let l = PyList::empty(py);
            for x in items {
                l.append(value_to_py(py, x)?)?;
            }
            l.into_any()
        }
        Value::Struct(fields) => {
            let d = PyDict::new(py);
            for (k, x) in fields {
                d.set_item(k, value_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Per output, the Python list of what the fill handed back (strings, or language values), or
/// None for arrays and left-out outputs.
pub fn returned_to_py<'py>(
    py: Python<'py>,
    specs: &[OutputSpec],
    back: Vec<Returned>,
    objects: bool,
) -> PyResult<Vec<Option<Bound<'py, PyList>>>> {
    specs
        .iter()
        .zip(back)
        .map(|(spec, r)| -> PyResult<Option<Bound<'py, PyList>>> {
            if !objects || spec.is_array() {
                return Ok(None);
            }
            if spec.kind == OutputKind::Language {
                let l = PyList::empty(py);
                for v in &r.values {
                    l.append(value_to_py(py, v)?)?;
                }
                Ok(Some(l))
            } else {
                Ok(Some(PyList::new(py, r.strings)?))
            }
        })
        .collect()
}

/// `(key, mode, a, b, eps)` tuples from Python as the core's normalisations.
pub fn normalizations(spec: Option<Vec<NormTuple>>) -> NativeResult<Vec<Normalization>> {
    let mut out = Vec::new();
    for (key, mode, a, b, eps) in spec.unwrap_or_default() {
        let mode = NormMode::parse(&mode).ok_or_else(|| Error::InvalidArgument {
            msg: format!(
                "normalisation mode of '{key}' must be IDENTITY, MEAN_STD, MIN_MAX, QUANTILES or QUANTILE10, got '{mode}'"
            ),
        })?;
        out.push(Normalization {
            key,
            mode,
            a,
            b,
            eps,
        });
    }
    Ok(out)
}

/// A normalisation as Python passes it: key, mode name, the two statistics, epsilon.
pub type NormTuple = (String, String, Vec<f32>, Vec<f32>, f32);

/// The native dataset handle used by `roboframes.Dataset`.
#[pyclass(module = "roboframes._native", frozen)]
pub struct NativeDataset {
    pub(crate) inner: Arc<Dataset>,
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

#[pymethods]
impl NativeDataset {
    #[new]
    #[pyo3(signature = (root, episodes=None, delta_timestamps=None, tolerance_s=1e-4, decode_threads=None, strict_decode=false, storage_options=None, cache_dir=None, block_cache_bytes=None, depth_output_unit="mm", format=None, fps=None, task=None, key_map=None, key_map_lerobot=false, split=None, topics=None, reference_topic=None, align_tolerance_s=None, episode_spans=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        root: PathBuf,
        episodes: Option<Vec<i64>>,
        delta_timestamps: Option<IndexMap<String, Vec<f64>>>,
        tolerance_s: f64,
        decode_threads: Option<usize>,
        strict_decode: bool,
        storage_options: Option<Vec<(String, String)>>,
        cache_dir: Option<PathBuf>,
        block_cache_bytes: Option<u64>,
        depth_output_unit: &str,
        format: Option<String>,
        fps: Option<f64>,
        task: Option<String>,
        key_map: Option<IndexMap<String, String>>,
        key_map_lerobot: bool,
        split: Option<String>,
        topics: Option<Vec<String>>,
        reference_topic: Option<String>,
        align_tolerance_s: Option<f64>,
        episode_spans: Option<Vec<(String, f64, f64)>>,
    ) -> NativeResult<Self> {
        let opts = OpenOptions {
            source: source_options(
                format,
                split,
                fps,
                task,
                key_map,
                key_map_lerobot,
                (topics, reference_topic, align_tolerance_s, episode_spans),
            ),
            depth_output: depth_output(depth_output_unit)?,
            episodes,
            delta_timestamps,
            tolerance_s,
            decode_threads,
            strict_decode,
            remote: RemoteOptions {
                storage_options: storage_options.unwrap_or_default(),
                cache_dir,
                block_cache_bytes,
            },
        };
        let inner =
            py.detach(move || guarded("opening a dataset", || Dataset::open(root, opts)))?;
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

    /// Every entry of an item, in LeRobot's order, with frames in the given format.
    #[pyo3(signature = (frame_dtype="uint8", channels_last=true))]
    fn output_specs(
        &self,
        frame_dtype: &str,
        channels_last: bool,
    ) -> NativeResult<Vec<PyOutputSpec>> {
        Ok(output_specs(
            &self.inner,
            frame_format(frame_dtype, channels_last)?,
        ))
    }

    /// Fills a batch. `buffers[i]` is a writable C-contiguous array of `len(indices) *
    /// item_bytes` bytes for an array output, or None to leave it out; outputs that are not
    /// arrays (strings, language values) take None and are returned when `objects` is true.
    /// Returns, per output, the list of strings or values for returned outputs and None
    /// otherwise. Negative indices count from the end.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (indices, buffers, frame_dtype="uint8", channels_last=true, objects=true, normalize=None))]
    fn fill<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<i64>,
        buffers: Vec<Option<Bound<'py, PyUntypedArray>>>,
        frame_dtype: &str,
        channels_last: bool,
        objects: bool,
        normalize: Option<Vec<NormTuple>>,
    ) -> NativeResult<Vec<Option<Bound<'py, PyList>>>> {
        let fmt = frame_format(frame_dtype, channels_last)?;
        let norms = normalizations(normalize)?;
        let specs = self.inner.outputs_for(fmt);
        let raws = raw_buffers(&specs, &buffers)?;
        let mut back = returned(&specs);
        let inner = &self.inner;
        let cancel = AtomicBool::new(false);
        // The fill runs on a thread of its own while this one, without the GIL, waits for it
        // and looks for signals every 50 ms: Ctrl-C stops a long batch promptly (the fill is
        // cancelled and waited for, so nothing writes to the arrays after this returns).
        let result: NativeResult<()> = std::thread::scope(|scope| {
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let (specs, raws, back, norms, cancel) = (&specs, &raws, &mut back, &norms, &cancel);
            let fill = scope.spawn(move || {
                // SAFETY: see RawBuf: the arrays outlive this scope (`buffers` is dropped after
                // it) and nothing else touches them meanwhile.
                let mut outs = unsafe { out_bufs(specs, raws, back, objects) };
                let r = guarded("filling a batch", || {
                    inner.fill_batch_cancellable(&indices, fmt, &mut outs, cancel)?;
                    normalize_batch(specs, fmt, &mut outs, norms)
                });
                // (the receiver may be gone after an interrupt: nothing to tell then)
                let _ = done_tx.send(());
                r
            });
            let join = |fill: std::thread::ScopedJoinHandle<'_, Result<(), Error>>| {
                fill.join()
                    .unwrap_or_else(|p| Err(Error::from_panic("filling a batch", p.as_ref())))
            };
            let mut done_rx = done_rx;
            loop {
                // (the receiver goes into the GIL-free wait and comes back: it is Send, not Sync)
                let (waited, rx) = py.detach(move || {
                    let r = done_rx.recv_timeout(Duration::from_millis(50));
                    (r, done_rx)
                });
                done_rx = rx;
                match waited {
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(interrupt) = py.check_signals() {
                            cancel.store(true, Ordering::Relaxed);
                            // the fill stops between frames; its own result is not wanted
                            let _ = py.detach(|| join(fill));
                            return Err(interrupt.into());
                        }
                    }
                    _ => return py.detach(|| join(fill)).map_err(Into::into),
                }
            }
        });
        drop(buffers);
        result?;
        Ok(returned_to_py(py, &specs, back, objects)?)
    }

    /// What depth maps are read as: `"mm"`, `"m"` or `"raw"`.
    #[getter]
    fn depth_output_unit(&self) -> &'static str {
        self.inner.depth_output().name()
    }

    /// `(shape, dtype)` of one frame of video key `camera` with frames in the given format (a
    /// depth map's as the dataset reads depth, whatever `frame_dtype`).
    fn frame_layout(
        &self,
        camera: &str,
        frame_dtype: &str,
        channels_last: bool,
    ) -> NativeResult<(Vec<usize>, &'static str)> {
        let (shape, dtype) = self
            .inner
            .frame_layout(camera, frame_format(frame_dtype, channels_last)?)?;
        Ok((shape, dtype.name()))
    }

    /// Decoding threads of this process for the dataset.
    #[getter]
    fn decode_threads(&self) -> usize {
        self.inner.decode_threads()
    }

    /// Sets the decoding threads of this process (rebuilt on next use).
    fn set_decode_threads(&self, n: usize) -> NativeResult<()> {
        Ok(self.inner.set_decode_threads(n)?)
    }

    /// Keeps up to `bytes` of decoded frames for reuse (0: no cache).
    fn set_frame_cache(&self, bytes: usize) {
        self.inner.set_frame_cache(bytes)
    }

    /// The frame cache's counters (`capacity`, `bytes`, `frames`, `hits`, `misses`), or None
    /// without a cache.
    fn frame_cache_stats(&self) -> Option<IndexMap<&'static str, u64>> {
        self.inner.frame_cache_stats().map(|s| {
            IndexMap::from([
                ("capacity", s.capacity as u64),
                ("bytes", s.bytes as u64),
                ("frames", s.frames as u64),
                ("hits", s.hits),
                ("misses", s.misses),
            ])
        })
    }

    /// Per item: whether its frame starts a keyframe group in every video key.
    fn keyframe_items(&self, py: Python<'_>) -> NativeResult<Vec<bool>> {
        let inner = &self.inner;
        Ok(py.detach(|| guarded("finding keyframe items", || inner.keyframe_items()))?)
    }

    /// The text of `meta/info.json` as parsed.
    fn info_json(&self) -> String {
        self.inner.info().raw.to_string()
    }

    /// The text of `meta/stats.json`, or None when the dataset has none.
    fn stats_json(&self) -> Option<String> {
        self.inner.stats_text().map(str::to_owned)
    }

    /// `{task_index: task}`, in the row order of `meta/tasks.parquet`.
    fn tasks(&self) -> IndexMap<i64, String> {
        self.inner.tasks().clone()
    }

    /// `{subtask_index: subtask}`, or None when the dataset has no subtasks.
    fn subtasks(&self) -> Option<IndexMap<i64, String>> {
        self.inner.subtasks().cloned()
    }

    /// Episode indices of the selection, in dataset order.
    fn episodes(&self) -> Vec<i64> {
        self.inner.episodes()
    }

    /// Frame offsets per key (`round(delta * fps)`).
    fn delta_indices(&self) -> IndexMap<String, Vec<i64>> {
        self.inner.delta_indices().clone()
    }

    /// One row per episode of the dataset (index, length, data location, per-camera video
    /// spans), as the core read it from `meta/episodes`.
    fn episode_table<'py>(&self, py: Python<'py>) -> NativeResult<Bound<'py, PyList>> {
        let keys = self.inner.info().video_keys();
        let out = PyList::empty(py);
        for e in self.inner.episode_table() {
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

    #[getter]
    fn strict_decode(&self) -> bool {
        self.inner.strict_decode()
    }

    /// The source's format: `"lerobot"`, `"hdf5"` or `"rlds"`.
    #[getter]
    fn format(&self) -> &'static str {
        self.inner.format()
    }

    /// Stale metadata found at open (see `Dataset::open_warnings`), and what an HDF5 source
    /// left out, one message each.
    fn open_warnings(&self) -> Vec<String> {
        self.inner.open_warnings().to_vec()
    }
}
