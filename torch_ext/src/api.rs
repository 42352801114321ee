//! The part of torch's stable C ABI the operators use, resolved at run time from the libtorch
//! that `import torch` already loaded (no torch at build time, one build for every torch from
//! 2.10 on). Declarations follow `torch/csrc/inductor/aoti_torch/c/shim.h` and
//! `torch/csrc/stable/c/shim.h`.

use std::ffi::{c_char, c_void};
use std::path::Path;

/// `AOTITorchError`: 0 on success.
pub type Status = i32;
/// `AtenTensorHandle`: an owned reference to an `at::Tensor`.
pub type TensorHandle = *mut c_void;
/// `TorchLibraryHandle`.
pub type LibraryHandle = *mut c_void;
/// `StableListHandle`: an owned `std::vector<StableIValue>`.
pub type ListHandle = *mut c_void;
/// `StringHandle`: an owned `std::string`.
pub type StringHandle = *mut c_void;
/// A boxed kernel: `(stack, num_args, num_outputs)`.
pub type BoxedKernel = unsafe extern "C-unwind" fn(*mut u64, u64, u64);

/// The stable ABI version these operators are written against (`TORCH_VERSION_2_10_0`):
/// libtorch converts arguments and results with 2.10's conventions for us, also when newer.
pub const ABI_2_10: u64 = (2u64 << 56) | (10u64 << 48);

/// Function pointers into libtorch. Plain data, so tests can supply their own.
#[derive(Clone, Copy)]
pub struct TorchApi {
    pub library_init_fragment:
        unsafe extern "C" fn(*const c_char, *const c_char, u32, *mut LibraryHandle) -> Status,
    pub library_init_impl: unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        *const c_char,
        u32,
        *mut LibraryHandle,
    ) -> Status,
    pub library_def: unsafe extern "C" fn(LibraryHandle, *const c_char) -> Status,
    pub library_impl:
        unsafe extern "C" fn(LibraryHandle, *const c_char, BoxedKernel, u64) -> Status,
    /// Throws a `c10::Error` carrying `msg` when `cond` is false (unwinds into libtorch).
    pub check: unsafe extern "C-unwind" fn(bool, *const c_char, *const c_char, u32, *const c_char),

    pub delete_tensor: unsafe extern "C" fn(TensorHandle) -> Status,
    pub get_dim: unsafe extern "C" fn(TensorHandle, *mut i64) -> Status,
    pub get_sizes: unsafe extern "C" fn(TensorHandle, *mut *mut i64) -> Status,
    pub get_strides: unsafe extern "C" fn(TensorHandle, *mut *mut i64) -> Status,
    pub get_dtype: unsafe extern "C" fn(TensorHandle, *mut i32) -> Status,
    pub get_device_type: unsafe extern "C" fn(TensorHandle, *mut i32) -> Status,
    pub get_const_data_ptr: unsafe extern "C" fn(TensorHandle, *mut *const c_void) -> Status,
    pub get_mutable_data_ptr: unsafe extern "C" fn(TensorHandle, *mut *mut c_void) -> Status,
    pub empty_strided: unsafe extern "C" fn(
        i64,
        *const i64,
        *const i64,
        i32,
        i32,
        i32,
        *mut TensorHandle,
    ) -> Status,

    pub new_list: unsafe extern "C" fn(usize, *mut ListHandle) -> Status,
    pub list_size: unsafe extern "C" fn(ListHandle, *mut usize) -> Status,
    pub list_get: unsafe extern "C" fn(ListHandle, usize, *mut u64) -> Status,
    pub list_push: unsafe extern "C" fn(ListHandle, u64) -> Status,
    pub delete_list: unsafe extern "C" fn(ListHandle) -> Status,

    pub string_length: unsafe extern "C" fn(StringHandle, *mut usize) -> Status,
    pub string_c_str: unsafe extern "C" fn(StringHandle, *mut *const c_char) -> Status,
    pub delete_string: unsafe extern "C" fn(StringHandle) -> Status,

    pub dtypes: DTypes,
    pub device_cpu: i32,
}

/// libtorch's codes for the element types the operators read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DTypes {
    pub uint8: i32,
    pub uint16: i32,
    pub bool_: i32,
    pub int32: i32,
    pub int64: i32,
    pub float16: i32,
    pub bfloat16: i32,
    pub float32: i32,
    pub float64: i32,
}

/// Resolves every function from the already loaded `libtorch_cpu` at `path`. The library is
/// opened with `RTLD_NOLOAD`: a second copy of libtorch is never loaded.
pub fn load(path: &Path) -> Result<TorchApi, String> {
    use libloading::os::unix::{Library, RTLD_NOW};
    const RTLD_NOLOAD: i32 = 0x4;
    // SAFETY: with RTLD_NOLOAD this only looks up a library the process has already loaded
    // (and initialised); it runs no initialisers.
    let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_NOLOAD) }.map_err(|e| {
        format!(
            "libtorch is not loaded from '{}' ({e}); import torch first",
            path.display()
        )
    })?;
    macro_rules! sym {
        ($name:literal) => {{
            // SAFETY: the symbol is declared above with the signature of torch's C header;
            // the pointer stays valid because the library is never closed (see below).
            let s = unsafe { lib.get(concat!($name, "\0").as_bytes()) }.map_err(|e| {
                format!(
                    "libtorch at '{}' lacks '{}' ({e}); roboframes needs torch >= 2.10",
                    path.display(),
                    $name
                )
            })?;
            *s
        }};
    }
    let code = |f: unsafe extern "C" fn() -> i32| -> i32 {
        // SAFETY: the aoti_torch_dtype_* / device getters take no arguments and return a code.
        unsafe { f() }
    };
    let dtypes = DTypes {
        uint8: code(sym!("aoti_torch_dtype_uint8")),
        uint16: code(sym!("aoti_torch_dtype_uint16")),
        bool_: code(sym!("aoti_torch_dtype_bool")),
        int32: code(sym!("aoti_torch_dtype_int32")),
        int64: code(sym!("aoti_torch_dtype_int64")),
        float16: code(sym!("aoti_torch_dtype_float16")),
        bfloat16: code(sym!("aoti_torch_dtype_bfloat16")),
        float32: code(sym!("aoti_torch_dtype_float32")),
        float64: code(sym!("aoti_torch_dtype_float64")),
    };
    let api = TorchApi {
        library_init_fragment: sym!("aoti_torch_library_init_fragment"),
        library_init_impl: sym!("aoti_torch_library_init_impl"),
        library_def: sym!("aoti_torch_library_def"),
        library_impl: sym!("torch_library_impl"),
        check: sym!("aoti_torch_check"),
        delete_tensor: sym!("aoti_torch_delete_tensor_object"),
        get_dim: sym!("aoti_torch_get_dim"),
        get_sizes: sym!("aoti_torch_get_sizes"),
        get_strides: sym!("aoti_torch_get_strides"),
        get_dtype: sym!("aoti_torch_get_dtype"),
        get_device_type: sym!("aoti_torch_get_device_type"),
        get_const_data_ptr: sym!("torch_get_const_data_ptr"),
        get_mutable_data_ptr: sym!("torch_get_mutable_data_ptr"),
        empty_strided: sym!("aoti_torch_empty_strided"),
        new_list: sym!("torch_new_list_reserve_size"),
        list_size: sym!("torch_list_size"),
        list_get: sym!("torch_list_get_item"),
        list_push: sym!("torch_list_push_back"),
        delete_list: sym!("torch_delete_list"),
        string_length: sym!("torch_string_length"),
        string_c_str: sym!("torch_string_c_str"),
        delete_string: sym!("torch_delete_string"),
        dtypes,
        device_cpu: code(sym!("aoti_torch_device_type_cpu")),
    };
    // libtorch stays loaded for the life of the process (torch never unloads it); dropping
    // `lib` would only decrement the reference count RTLD_NOLOAD added, so keep it forever.
    std::mem::forget(lib);
    Ok(api)
}
