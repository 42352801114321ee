//! `roboframes._native.Prefetcher` and `PendingBatch`: batches filled ahead of the caller by
//! the core's prefetcher (`roboframes_core::prefetch`) into NumPy arrays the caller lends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use numpy::PyUntypedArray;
use pyo3::prelude::*;
use pyo3::types::PyList;

use roboframes_core::prefetch::{Prefetcher, Ticket};
use roboframes_core::{registry, Error, OutputSpec};

use crate::dataset::{
    frame_format, normalizations, out_bufs, raw_buffers, returned, returned_to_py, NormTuple,
    RawBuf, Returned,
};
use crate::errors::NativeResult;
use roboframes_core::normalize::normalize_batch;

/// Runs batch fills in submission order on a background thread of the core.
#[pyclass(module = "roboframes._native", name = "Prefetcher", frozen)]
pub struct PyPrefetcher {
    inner: Mutex<Prefetcher>,
}

/// A batch being filled in the background. Holds its arrays until the fill has stopped:
/// dropping it cancels the fill and waits for it to stop, so the core never writes to freed
/// memory.
#[pyclass(module = "roboframes._native", frozen)]
pub struct PendingBatch {
    ticket: Ticket,
    /// The arrays being filled (kept alive for the fill).
    _buffers: Vec<Py<PyUntypedArray>>,
    back: Arc<Mutex<Vec<Returned>>>,
    /// The batch's outputs (what `wait` hands back besides arrays).
    specs: Vec<OutputSpec>,
    pid: u32,
}

impl Drop for PendingBatch {
    fn drop(&mut self) {
        // In a forked child the fill never runs (its thread is the parent's): nothing writes.
        if self.pid == std::process::id() {
            self.ticket.cancel();
            // (other Python threads run meanwhile: the fill never needs the GIL)
            let ticket = &self.ticket;
            Python::attach(|py| py.detach(|| ticket.wait_done()));
        }
    }
}

#[pymethods]
impl PyPrefetcher {
    #[new]
    fn new() -> Self {
        PyPrefetcher {
            inner: Mutex::new(Prefetcher::new()),
        }
    }

    /// Queues the fill of the items at `indices` of the open dataset behind `handle` (its
    /// registry handle, `roboframes.Dataset.handle`) into `buffers` (as `NativeDataset.fill`
    /// takes them); string outputs are returned by `PendingBatch.wait`.
    #[pyo3(signature = (handle, indices, buffers, frame_dtype="uint8", channels_last=true, normalize=None))]
    fn submit<'py>(
        &self,
        handle: i64,
        indices: Vec<i64>,
        buffers: Vec<Option<Bound<'py, PyUntypedArray>>>,
        frame_dtype: &str,
        channels_last: bool,
        normalize: Option<Vec<NormTuple>>,
    ) -> NativeResult<PendingBatch> {
        let fmt = frame_format(frame_dtype, channels_last)?;
        let norms = normalizations(normalize)?;
        let inner = registry::get(handle)?;
        let specs = inner.outputs_for(fmt);
        let raws: Vec<Option<RawBuf>> = raw_buffers(&specs, &buffers)?;
        let back = Arc::new(Mutex::new(returned(&specs)));
        let out_back = back.clone();
        let job_specs = specs.clone();
        let job = Box::new(move |cancel: &std::sync::atomic::AtomicBool| {
            let specs = job_specs;
            let mut back = out_back.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: the arrays behind `raws` are held by the PendingBatch, which outlives
            // this job (its drop waits for the job to finish) and hands them to no one before.
            let mut outs = unsafe { out_bufs(&specs, &raws, &mut back, true) };
            inner.fill_batch_cancellable(&indices, fmt, &mut outs, cancel)?;
            normalize_batch(&specs, fmt, &mut outs, &norms)
        });
        let ticket = self
            .inner
            .lock()
            .map_err(|_| Error::internal("prefetch", "its lock was poisoned"))?
            .submit(job)?;
        Ok(PendingBatch {
            ticket,
            _buffers: buffers.into_iter().flatten().map(|b| b.unbind()).collect(),
            back,
            specs,
            pid: std::process::id(),
        })
    }
}

#[pymethods]
impl PendingBatch {
    /// Waits for the fill (interruptible by Ctrl-C) and returns, per output, its strings or
    /// language values, or None; raises the fill's error.
    fn wait<'py>(&self, py: Python<'py>) -> NativeResult<Vec<Option<Bound<'py, PyList>>>> {
        if self.pid != std::process::id() {
            return Err(Error::InvalidArgument {
                msg: "a batch prefetched before fork() cannot be waited for in the child".into(),
            }
            .into());
        }
        loop {
            let ticket = &self.ticket;
            match py.detach(|| ticket.wait_timeout(Duration::from_millis(50))) {
                Some(r) => {
                    r?;
                    break;
                }
                None => {
                    if let Err(e) = py.check_signals() {
                        // Ctrl-C: this batch is not wanted any more
                        self.ticket.cancel();
                        return Err(e.into());
                    }
                }
            }
        }
        let back = std::mem::take(&mut *self.back.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(returned_to_py(py, &self.specs, back, true)?)
    }

    /// Asks the fill to stop (or not to start).
    fn cancel(&self) {
        self.ticket.cancel()
    }

    /// Whether the fill has finished (filled, failed or cancelled).
    #[getter]
    fn done(&self) -> bool {
        self.ticket.is_done()
    }
}
