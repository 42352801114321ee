//! `roboframes._native`: a thin pyo3 layer over roboframes-core. It holds no dataset logic:
//! it converts arguments, lends NumPy buffers to the core with the GIL released, and turns
//! core errors into the exception classes of `roboframes.errors` (`errors.rs`, one place).
//! Its Python interface is described in `roboframes/_native.pyi`.

use pyo3::prelude::*;
use roboframes_core::{DType, PixelType};

mod capi;
mod dataset;
mod errors;
mod prefetch;
mod remote;
mod tools;
mod torch_ops;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<dataset::NativeDataset>()?;
    m.add_class::<dataset::PyOutputSpec>()?;
    m.add_class::<prefetch::PyPrefetcher>()?;
    m.add_class::<prefetch::PendingBatch>()?;
    m.add_function(wrap_pyfunction!(tools::validate, m)?)?;
    m.add_function(wrap_pyfunction!(remote::open_root, m)?)?;
    m.add_function(wrap_pyfunction!(remote::is_url, m)?)?;
    m.add_function(wrap_pyfunction!(remote::root_options, m)?)?;
    m.add_function(wrap_pyfunction!(remote::episode_files, m)?)?;
    m.add_function(wrap_pyfunction!(remote::read_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(remote::file_exists, m)?)?;
    m.add_function(wrap_pyfunction!(remote::remote_stats, m)?)?;
    m.add_function(wrap_pyfunction!(remote::clear_remote_memory_cache, m)?)?;
    m.add_function(wrap_pyfunction!(tools::compute_stats, m)?)?;
    m.add_function(wrap_pyfunction!(tools::episode_stats, m)?)?;
    m.add_function(wrap_pyfunction!(tools::aggregate_stats, m)?)?;
    m.add_function(wrap_pyfunction!(torch_ops::register_torch_ops, m)?)?;
    m.add_function(wrap_pyfunction!(errors::typed_error, m)?)?;
    m.add_function(wrap_pyfunction!(errors::error_classes, m)?)?;
    m.add_function(wrap_pyfunction!(torch_ops::handle_frame_dims, m)?)?;
    m.add_function(wrap_pyfunction!(torch_ops::handle_frame_layout, m)?)?;
    m.add_function(wrap_pyfunction!(torch_ops::handle_numeric_row, m)?)?;
    m.add_function(wrap_pyfunction!(torch_ops::handle_output_specs, m)?)?;
    // the core's names of the element types camera frames can be made of
    let frame_dtypes: Vec<&str> = DType::ALL
        .into_iter()
        .filter_map(PixelType::of_dtype)
        .map(|p| p.dtype().name())
        .collect();
    m.add("FRAME_DTYPES", frame_dtypes)?;
    // the C function table for native extensions of other frameworks (mlx_ext/)
    m.add(
        "CAPI",
        pyo3::types::PyCapsule::new_with_value(m.py(), capi::TABLE, c"roboframes._native.CAPI")?,
    )?;
    m.add("CAPI_VERSION", capi::CAPI_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
