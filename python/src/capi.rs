//! `roboframes._native.CAPI`: a versioned table of C functions, exported as a PyCapsule
//! named `roboframes._native.CAPI`, through which native extensions of other frameworks (the
//! MLX primitive in `mlx_ext/`) call this process's core: one core, one thread pool, one
//! decoder pool, no second copy linked. A caller turns a dataset's registry handle
//! (`roboframes.Dataset.handle`) into a reference with `dataset_acquire`, which keeps the
//! dataset open until `dataset_release` (a lazy MLX array may outlive the Python object that
//! made it), and passes that reference to the operations. The C declaration is
//! `mlx_ext/roboframes_capi.h`; keep the two identical and bump [`CAPI_VERSION`] on any change.
//!
//! Every operation returns 0 on success, else the code of the error's class (see
//! `roboframes_core::error_channel::ErrorClass`); on failure every function writes
//! `[ClassName#id] message` (the `roboframes.errors` class, the id under which the typed error
//! is kept for `roboframes._native.typed_error`, then the error's message), NUL-terminated and
//! truncated to fit, into `err` (`err_len` bytes). No panic crosses this boundary.

use std::ffi::{c_char, c_void, CStr};
use std::sync::Arc;

use roboframes_core::error_channel::{self, ErrorClass};
use roboframes_core::{registry, Dataset, Error, FrameFormat};

use crate::dataset::frame_format;
use crate::errors::{guarded, NativeError};

/// The version of [`CApi`]'s layout and semantics.
pub const CAPI_VERSION: u32 = 2;

/// The table (`#[repr(C)]`, fields in declaration order).
#[repr(C)]
pub struct CApi {
    pub version: u32,
    /// `dataset_acquire(handle, err, err_len)`: a counted reference to the open dataset behind
    /// `handle`, or null (with the error in `err`) when there is none.
    pub dataset_acquire: unsafe extern "C" fn(i64, *mut c_char, usize) -> *const c_void,
    /// `dataset_release(dataset)`: gives back a reference from `dataset_acquire` (null: no-op).
    pub dataset_release: unsafe extern "C" fn(*const c_void),
    /// `fill_arrays(dataset, indices, n, frame_dtype, channels_last, arrays, lens, n_arrays,
    /// err, err_len)`: every array entry of the items `indices[..n]` (strings left out), in
    /// item order, into `arrays[i]` of `lens[i]` bytes (`Dataset::fill_arrays`).
    pub fill_arrays: unsafe extern "C" fn(
        *const c_void,
        *const i64,
        usize,
        *const c_char,
        bool,
        *const *mut u8,
        *const usize,
        usize,
        *mut c_char,
        usize,
    ) -> i32,
    /// `decode_frames(dataset, camera, episodes, timestamps, n, frame_dtype, channels_last, out,
    /// out_len, err, err_len)`: frames of video key `camera` at `timestamps[i]` seconds into
    /// episode `episodes[i]` (`Dataset::decode_frames`).
    pub decode_frames: unsafe extern "C" fn(
        *const c_void,
        *const c_char,
        *const i64,
        *const f64,
        usize,
        *const c_char,
        bool,
        *mut u8,
        usize,
        *mut c_char,
        usize,
    ) -> i32,
    /// `gather(dataset, key, index, n, offsets, t, values, values_len, pads, pads_len, err,
    /// err_len)`: numeric feature `key` at `offsets[..t]` around each item (`Dataset::gather`).
    #[allow(clippy::type_complexity)]
    pub gather: unsafe extern "C" fn(
        *const c_void,
        *const c_char,
        *const i64,
        usize,
        *const i64,
        usize,
        *mut u8,
        usize,
        *mut u8,
        usize,
        *mut c_char,
        usize,
    ) -> i32,
}

/// The table the capsule holds.
pub const TABLE: CApi = CApi {
    version: CAPI_VERSION,
    dataset_acquire,
    dataset_release,
    fill_arrays,
    decode_frames,
    gather,
};

/// Writes a failed call's `[ClassName#id] message` (`error_channel::report`: Python gets the
/// typed error back from that text) into `err`; returns the class code.
///
/// # Safety
/// `err` is null or points at `err_len` writable bytes.
unsafe fn report(e: Error, err: *mut c_char, err_len: usize) -> i32 {
    let class = ErrorClass::of(&e);
    let text = error_channel::report(e);
    // SAFETY: forwarded.
    unsafe { write_message(&text, err, err_len) };
    class as i32
}

/// Runs `call` as one C entry point: 0 on success, else the error's class code with
/// `[ClassName] message` written into `err`.
///
/// # Safety
/// `err` is null or points at `err_len` writable bytes.
unsafe fn entry(
    op: &str,
    err: *mut c_char,
    err_len: usize,
    call: impl FnOnce() -> Result<(), Error>,
) -> i32 {
    match guarded(op, call) {
        Ok(()) => 0,
        // SAFETY: forwarded.
        Err(e) => unsafe { report(e, err, err_len) },
    }
}

/// Copies `msg` into the caller's `err` buffer, truncated on a character boundary and
/// NUL-terminated.
///
/// # Safety
/// `err` is null or points at `err_len` writable bytes.
unsafe fn write_message(msg: &str, err: *mut c_char, err_len: usize) {
    if err.is_null() || err_len == 0 {
        return;
    }
    let mut n = msg.len().min(err_len - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: the caller provides `err_len` writable bytes at `err`; `n + 1 <= err_len`.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), err.cast::<u8>(), n);
        *err.add(n) = 0;
    }
}

/// A UTF-8 string argument.
///
/// # Safety
/// `s` is null or a NUL-terminated string that lives for the call.
unsafe fn text<'a>(s: *const c_char, what: &str) -> Result<&'a str, Error> {
    if s.is_null() {
        return Err(Error::InvalidArgument {
            msg: format!("{what} is null"),
        });
    }
    // SAFETY: the caller's contract: NUL-terminated and alive for the call.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| Error::InvalidArgument {
            msg: format!("{what} is not UTF-8"),
        })
}

/// A slice argument (`n` elements at `p`; null only when `n` is 0).
///
/// # Safety
/// `p` points at `n` initialised elements that live for the call.
unsafe fn slice<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T], Error> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::InvalidArgument {
            msg: format!("{what} is null"),
        });
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// A writable buffer argument (`n` bytes at `p`; null only when `n` is 0).
///
/// # Safety
/// `p` points at `n` writable bytes that nothing else uses during the call.
unsafe fn buffer<'a>(p: *mut u8, n: usize, what: &str) -> Result<&'a mut [u8], Error> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::InvalidArgument {
            msg: format!("{what} is null"),
        });
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

/// # Safety
/// `frame_dtype` is a NUL-terminated string alive for the call.
unsafe fn format_of(frame_dtype: *const c_char, channels_last: bool) -> Result<FrameFormat, Error> {
    // SAFETY: forwarded.
    let name = unsafe { text(frame_dtype, "frame_dtype") }?;
    frame_format(name, channels_last).map_err(|e| match e {
        NativeError::Core(e) => e,
        NativeError::Python(e) => Error::InvalidArgument { msg: e.to_string() },
    })
}

unsafe extern "C" fn dataset_acquire(
    handle: i64,
    err: *mut c_char,
    err_len: usize,
) -> *const c_void {
    match guarded("dataset_acquire (C API)", || registry::get(handle)) {
        Ok(ds) => Arc::into_raw(ds).cast(),
        Err(e) => {
            // SAFETY: the C API's contract: `err` has `err_len` writable bytes (or is null).
            unsafe { report(e, err, err_len) };
            std::ptr::null()
        }
    }
}

unsafe extern "C" fn dataset_release(dataset: *const c_void) {
    if dataset.is_null() {
        return;
    }
    // SAFETY: the C API's contract: `dataset` came from `dataset_acquire` (Arc::into_raw of an
    // Arc<Dataset>) and is given back once.
    let ds = unsafe { Arc::from_raw(dataset.cast::<Dataset>()) };
    // the last reference closes decoders and files: no panic may leave this function
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(ds)));
}

/// The dataset behind a reference from `dataset_acquire`.
///
/// # Safety
/// `dataset` is null or a reference from `dataset_acquire` not yet released.
unsafe fn dataset<'a>(dataset: *const c_void) -> Result<&'a Dataset, Error> {
    // SAFETY: the caller's contract: a live Arc<Dataset> pointer (or null).
    unsafe { dataset.cast::<Dataset>().as_ref() }.ok_or_else(|| Error::InvalidArgument {
        msg: "dataset is null".into(),
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn fill_arrays(
    ds: *const c_void,
    indices: *const i64,
    n: usize,
    frame_dtype: *const c_char,
    channels_last: bool,
    arrays: *const *mut u8,
    lens: *const usize,
    n_arrays: usize,
    err: *mut c_char,
    err_len: usize,
) -> i32 {
    let call = || {
        // SAFETY: the C API's contract: every pointer argument points at what its length says,
        // alive for the call, and the output arrays are distinct and used by nobody else.
        let (ds, idx, fmt, ptrs, lens) = unsafe {
            (
                dataset(ds)?,
                slice(indices, n, "indices")?,
                format_of(frame_dtype, channels_last)?,
                slice(arrays, n_arrays, "arrays")?,
                slice(lens, n_arrays, "lens")?,
            )
        };
        let mut outs = Vec::with_capacity(n_arrays);
        for (i, (&p, &len)) in ptrs.iter().zip(lens).enumerate() {
            // SAFETY: as above: array `i` has `len` writable bytes lent for this call.
            outs.push(unsafe { buffer(p, len, &format!("array {i}")) }?);
        }
        ds.fill_arrays(idx, fmt, outs)
    };
    // SAFETY: the C API's contract: `err` has `err_len` writable bytes (or is null).
    unsafe { entry("fill_arrays (C API)", err, err_len, call) }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn decode_frames(
    ds: *const c_void,
    camera: *const c_char,
    episodes: *const i64,
    timestamps: *const f64,
    n: usize,
    frame_dtype: *const c_char,
    channels_last: bool,
    out: *mut u8,
    out_len: usize,
    err: *mut c_char,
    err_len: usize,
) -> i32 {
    let call = || {
        // SAFETY: the C API's contract (see `fill_arrays`).
        let (ds, camera, eps, ts, fmt, out) = unsafe {
            (
                dataset(ds)?,
                text(camera, "camera")?,
                slice(episodes, n, "episodes")?,
                slice(timestamps, n, "timestamps")?,
                format_of(frame_dtype, channels_last)?,
                buffer(out, out_len, "out")?,
            )
        };
        ds.decode_frames(camera, eps, ts, fmt, out)
    };
    // SAFETY: the C API's contract: `err` has `err_len` writable bytes (or is null).
    unsafe { entry("decode_frames (C API)", err, err_len, call) }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn gather(
    ds: *const c_void,
    key: *const c_char,
    index: *const i64,
    n: usize,
    offsets: *const i64,
    t: usize,
    values: *mut u8,
    values_len: usize,
    pads: *mut u8,
    pads_len: usize,
    err: *mut c_char,
    err_len: usize,
) -> i32 {
    let call = || {
        // SAFETY: the C API's contract (see `fill_arrays`); `values` and `pads` are distinct.
        let (ds, key, idx, offs, values, pads) = unsafe {
            (
                dataset(ds)?,
                text(key, "key")?,
                slice(index, n, "index")?,
                slice(offsets, t, "offsets")?,
                buffer(values, values_len, "values")?,
                buffer(pads, pads_len, "pads")?,
            )
        };
        ds.gather(key, idx, offs, values, pads)
    };
    // SAFETY: the C API's contract: `err` has `err_len` writable bytes (or is null).
    unsafe { entry("gather (C API)", err, err_len, call) }
}
