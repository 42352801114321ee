//! What `roboframes.torch` needs of the native module: registering the operators and the
//! metadata its fake kernels compute shapes from.

use std::path::PathBuf;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use roboframes_core::registry;

use crate::dataset::{frame_format, output_specs, PyOutputSpec};
use crate::errors::NativeResult;

/// Registers the `torch.ops.roboframes` operators with the libtorch loaded from `libtorch_cpu`
/// (the path of the already loaded `libtorch_cpu` library). Idempotent.
#[pyfunction]
pub fn register_torch_ops(libtorch_cpu: PathBuf) -> PyResult<()> {
    roboframes_torch::register(&libtorch_cpu).map_err(PyRuntimeError::new_err)
}

/// `(H, W, C)` of the frames of a video key of the dataset behind `handle`.
#[pyfunction]
pub fn handle_frame_dims(handle: i64, camera: &str) -> NativeResult<(usize, usize, usize)> {
    Ok(registry::get(handle)?.frame_dims(camera)?)
}

/// `(frame_shape, dtype)` of one frame of a video key of the dataset behind `handle`, with
/// frames in the given format (a depth map's as the dataset reads depth).
#[pyfunction]
pub fn handle_frame_layout(
    handle: i64,
    camera: &str,
    frame_dtype: &str,
    channels_last: bool,
) -> NativeResult<(Vec<usize>, &'static str)> {
    let fmt = frame_format(frame_dtype, channels_last)?;
    let (shape, dtype) = registry::get(handle)?.frame_layout(camera, fmt)?;
    Ok((shape, dtype.name()))
}

/// `(row_shape, dtype)` of a numeric feature of the dataset behind `handle`.
#[pyfunction]
pub fn handle_numeric_row(handle: i64, key: &str) -> NativeResult<(Vec<usize>, &'static str)> {
    let (shape, dtype) = registry::get(handle)?.numeric_row(key)?;
    Ok((shape, dtype.name()))
}

/// The item entries of the dataset behind `handle`, with frames in the given format.
#[pyfunction]
pub fn handle_output_specs(
    handle: i64,
    frame_dtype: &str,
    channels_last: bool,
) -> NativeResult<Vec<PyOutputSpec>> {
    let fmt = frame_format(frame_dtype, channels_last)?;
    let dataset = registry::get(handle)?;
    Ok(output_specs(&dataset, fmt))
}
