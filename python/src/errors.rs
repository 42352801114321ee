//! Core errors as `roboframes.errors` exceptions: the one place that maps them. Call sites
//! return [`NativeResult`] and use `?` on core results and Python calls alike.

use pyo3::import_exception;
use pyo3::prelude::*;
use pyo3::types::PyType;
use roboframes_core::error_channel::{self, ErrorClass};
use roboframes_core::Error;

import_exception!(roboframes.errors, InternalError);

/// An error of a native call: from the core, or from Python itself.
#[derive(Debug)]
pub enum NativeError {
    Core(Error),
    Python(PyErr),
}

pub type NativeResult<T> = Result<T, NativeError>;

impl From<Error> for NativeError {
    fn from(e: Error) -> Self {
        NativeError::Core(e)
    }
}

impl From<PyErr> for NativeError {
    fn from(e: PyErr) -> Self {
        NativeError::Python(e)
    }
}

impl From<NativeError> for PyErr {
    fn from(e: NativeError) -> PyErr {
        match e {
            NativeError::Core(e) => core_error(e),
            NativeError::Python(e) => e,
        }
    }
}

/// Runs a core call; a panic (a bug: the core returns errors for bad data and arguments)
/// becomes an [`Error::Internal`] naming `op`, so Python gets `roboframes.errors.InternalError`
/// instead of pyo3's `PanicException` (which is not an `Exception`).
pub fn guarded<T>(op: &str, call: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .unwrap_or_else(|panic| Err(Error::from_panic(op, panic.as_ref())))
}

/// The `roboframes.errors` exception of a core error: the class the core's `ErrorClass` names,
/// made from `(message, path, episode, key)` (its constructor arguments).
fn core_error(e: Error) -> PyErr {
    let at = e.location().cloned().unwrap_or_default();
    let args = (
        e.to_string(),
        at.path.map(|p| p.display().to_string()),
        at.episode,
        at.key,
    );
    let name = ErrorClass::of(&e).name();
    // the class is looked up by the name the core gives it (one table: `ErrorClass`)
    Python::attach(|py| {
        match py
            .import("roboframes.errors")
            .and_then(|m| m.getattr(name))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from))
        {
            Ok(class) => PyErr::from_type(class, args),
            Err(lookup) => InternalError::new_err((
                format!(
                    "roboframes.errors has no class {name} ({lookup}); the error was: {}",
                    args.0
                ),
                args.1,
                args.2,
                args.3,
            )),
        }
    })
}

/// The typed `roboframes.errors` exception behind the text of an error that crossed a native
/// boundary (a torch operator's `RuntimeError`, an MLX evaluation's): `[ClassName#id] ...`,
/// written by `roboframes_core::error_channel::report`; taken once. None when the text is no
/// such report or its error is gone.
#[pyfunction]
pub fn typed_error(text: &str) -> Option<PyErr> {
    error_channel::take(text).map(core_error)
}

/// `(code, name)` of every error class in the core's one table (`ErrorClass`): the C API's
/// error codes and the `roboframes.errors` class names.
#[pyfunction]
pub fn error_classes() -> Vec<(i32, &'static str)> {
    ErrorClass::ALL
        .into_iter()
        .map(|c| (c as i32, c.name()))
        .collect()
}
