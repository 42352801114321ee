//! What a dataset must be before hdf5-metno looks at it or its values are used: its type's
//! member names valid UTF-8 (hdf5-metno builds Rust strings from them unchecked), and its
//! storage written (an unwritten dataset, or chunk, reads as the fill value: not a recording).

use hdf5_sys::h5t::H5T_class_t;

/// The class of type `t`.
pub fn class(t: &hdf5::Datatype) -> H5T_class_t {
    // SAFETY: `t` holds an open datatype id for the call; the call only reads it, under
    // libhdf5's global lock.
    hdf5::sync::sync(|| unsafe { hdf5_sys::h5t::H5Tget_class(t.id()) })
}

/// True for the classes whose values can be numbers roboframes reads (integers, floats, and
/// enums such as h5py's booleans); for any other class hdf5-metno's type description is not
/// asked for (compound member names would be read unchecked).
pub fn numeric_class(c: H5T_class_t) -> bool {
    matches!(
        c,
        H5T_class_t::H5T_INTEGER | H5T_class_t::H5T_FLOAT | H5T_class_t::H5T_ENUM
    )
}

/// True when every member name of enum type `t` is valid UTF-8 (true for other classes).
pub fn member_names_utf8(t: &hdf5::Datatype) -> bool {
    use hdf5_sys::h5t::{H5Tget_member_name, H5Tget_nmembers};
    if class(t) != H5T_class_t::H5T_ENUM {
        return true;
    }
    hdf5::sync::sync(|| {
        // SAFETY: `t` holds an open enum type id; `H5Tget_nmembers` reads it.
        let n = unsafe { H5Tget_nmembers(t.id()) };
        if n < 0 {
            return false;
        }
        (0..n as u32).all(|i| {
            // SAFETY: `i` is below the member count just read; the returned name is a
            // NUL-terminated string libhdf5 allocated (null on error), read here and then
            // freed once with `H5free_memory`, as libhdf5 requires.
            unsafe {
                let name = H5Tget_member_name(t.id(), i);
                if name.is_null() {
                    return false;
                }
                let ok = std::ffi::CStr::from_ptr(name).to_str().is_ok();
                hdf5_sys::h5::H5free_memory(name.cast());
                ok
            }
        })
    })
}

/// Whether dataset `ds`'s storage is fully written: `Err` with why not. A chunked dataset
/// must hold every chunk its shape needs (libhdf5's space status counts bytes, which
/// compressed chunks make look partial); another one must have its storage allocated.
pub fn fully_written(ds: &hdf5::Dataset) -> Result<(), String> {
    use hdf5_sys::h5d::{H5D_space_status_t, H5Dget_space_status};
    if let Some(chunk) = ds.chunk() {
        let shape = ds.shape();
        let want = shape
            .iter()
            .zip(&chunk)
            .try_fold(1usize, |n, (d, c)| n.checked_mul(d.div_ceil((*c).max(1))));
        let have = ds.num_chunks();
        return match (want, have) {
            (Some(w), Some(h)) if h >= w => Ok(()),
            (Some(w), Some(h)) => Err(format!(
                "only {h} of its {w} chunks were ever written (the rest reads as its fill value)"
            )),
            _ => Err("cannot count the dataset's written chunks".into()),
        };
    }
    let mut status = H5D_space_status_t::H5D_SPACE_STATUS_ERROR;
    // SAFETY: `ds` holds an open dataset id; `status` is a valid out-pointer for the call,
    // which runs under libhdf5's global lock.
    let rc = hdf5::sync::sync(|| unsafe { H5Dget_space_status(ds.id(), &mut status) });
    match (rc, status) {
        (r, _) if r < 0 => Err("cannot read whether the dataset was written".into()),
        (_, H5D_space_status_t::H5D_SPACE_STATUS_ALLOCATED) => Ok(()),
        _ => Err("the dataset was never written (it reads as its fill value)".into()),
    }
}
