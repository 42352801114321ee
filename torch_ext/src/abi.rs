//! Owned values of the boxed calling convention (`StableIValue` stack slots, 64 bits each).
//!
//! libtorch hands a kernel owning handles for its `Tensor`, `str` and list arguments and takes
//! ownership of the handles the kernel returns (see `StableIValueBoxedKernel` in
//! `torch/csrc/shim_common.cpp`). Every argument is wrapped in an owner here as soon as the
//! kernel starts, so it is released exactly once on every path, errors included.

use std::ffi::{c_char, c_void};

use crate::api::{ListHandle, StringHandle, TensorHandle, TorchApi};

#[cfg(not(target_endian = "little"))]
compile_error!("the StableIValue conversions here assume a little-endian target");

/// An error raised by a kernel: a core error, a message about the operator's arguments, or a
/// broken contract with libtorch (a call that failed or returned nothing: a fault of
/// roboframes or torch, raised as an internal error naming the operator).
#[derive(Debug)]
pub enum KernelError {
    Core(roboframes_core::Error),
    Arg(String),
    Contract(String),
}

impl From<roboframes_core::Error> for KernelError {
    fn from(e: roboframes_core::Error) -> Self {
        KernelError::Core(e)
    }
}

pub type KResult<T> = Result<T, KernelError>;

fn torch_call(what: &str, status: i32) -> KResult<()> {
    if status == 0 {
        Ok(())
    } else {
        Err(KernelError::Contract(format!(
            "libtorch failed to {what} (status {status})"
        )))
    }
}

/// `int` argument.
pub fn int_arg(v: u64) -> i64 {
    v as i64
}

/// `bool` argument (one byte, stored in the low byte).
pub fn bool_arg(v: u64) -> bool {
    v & 0xff != 0
}

/// `ScalarType` argument (libtorch's dtype code, an `int32` in the low half).
pub fn dtype_arg(v: u64) -> i32 {
    v as u32 as i32
}

/// An owned tensor reference.
pub struct Tensor<'a> {
    api: &'a TorchApi,
    h: TensorHandle,
}

impl Drop for Tensor<'_> {
    fn drop(&mut self) {
        if !self.h.is_null() {
            // SAFETY: `h` is an owned handle not yet released (see `into_raw`).
            unsafe { (self.api.delete_tensor)(self.h) };
        }
    }
}

impl<'a> Tensor<'a> {
    /// Takes ownership of a `Tensor` argument.
    ///
    /// # Safety
    /// `v` must be an owned `AtenTensorHandle` from the stack, taken once.
    pub unsafe fn take(api: &'a TorchApi, v: u64) -> Tensor<'a> {
        Tensor {
            api,
            h: v as usize as TensorHandle,
        }
    }

    /// A new CPU tensor of `shape`, contiguous, uninitialised.
    pub fn empty(api: &'a TorchApi, shape: &[usize], dtype: i32) -> KResult<Tensor<'a>> {
        let sizes: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
        let mut strides = vec![0i64; sizes.len()];
        let mut acc = 1i64;
        for (st, sz) in strides.iter_mut().zip(&sizes).rev() {
            *st = acc;
            acc = acc.saturating_mul((*sz).max(1));
        }
        let mut h: TensorHandle = std::ptr::null_mut();
        // SAFETY: sizes/strides hold `ndim` values each; `h` receives a new owned handle.
        let st = unsafe {
            (api.empty_strided)(
                sizes.len() as i64,
                sizes.as_ptr(),
                strides.as_ptr(),
                dtype,
                api.device_cpu,
                0,
                &mut h,
            )
        };
        torch_call(&format!("allocate a tensor of shape {shape:?}"), st)?;
        if h.is_null() {
            return Err(KernelError::Contract("torch returned no tensor".into()));
        }
        Ok(Tensor { api, h })
    }

    /// Gives up ownership (to return the tensor to libtorch).
    pub fn into_raw(mut self) -> u64 {
        let h = std::mem::replace(&mut self.h, std::ptr::null_mut());
        h as usize as u64
    }

    fn query<T: Default>(
        &self,
        what: &str,
        f: unsafe extern "C" fn(TensorHandle, *mut T) -> i32,
    ) -> KResult<T> {
        let mut v = T::default();
        // SAFETY: `h` is a live handle and `v` a valid out-pointer of the getter's type.
        torch_call(what, unsafe { f(self.h, &mut v) })?;
        Ok(v)
    }

    /// Bytes of a contiguous tensor made by [`Tensor::empty`] with `len` bytes.
    ///
    /// # Safety
    /// `len` must be the tensor's size in bytes and the tensor contiguous (true for tensors
    /// from `empty`); no other reference to its data may exist while the slice is used.
    pub unsafe fn bytes_mut(&mut self, len: usize) -> KResult<&mut [u8]> {
        if len == 0 {
            return Ok(&mut []);
        }
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: `self.h` is a live tensor handle this owner holds; torch writes one pointer.
        let status = unsafe { (self.api.get_mutable_data_ptr)(self.h, &mut p) };
        torch_call("get a data pointer", status)?;
        if p.is_null() {
            return Err(KernelError::Contract("tensor has no data".into()));
        }
        // SAFETY: the caller guarantees `len` is the contiguous tensor's size in bytes and that
        // no other reference to its data is live; the tensor outlives the borrow of `self`.
        Ok(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len) })
    }

    /// The values of a 1-D CPU tensor of `int32`/`int64` (any stride), as i64.
    pub fn to_i64s(&self, name: &str) -> KResult<Vec<i64>> {
        let d = self.api.dtypes;
        self.read_1d(name, |dt, p| {
            if dt == d.int64 {
                // SAFETY: `p` points at an element of the tensor's dtype, int64.
                Some(unsafe { (p as *const i64).read_unaligned() })
            } else if dt == d.int32 {
                // SAFETY: `p` points at an element of the tensor's dtype, int32.
                Some(i64::from(unsafe { (p as *const i32).read_unaligned() }))
            } else {
                None
            }
        })
        .map_err(|m| KernelError::Arg(format!("{name}: {m}; expected int64 or int32")))
    }

    /// The values of a 1-D CPU tensor of `float32`/`float64` (any stride), as f64.
    pub fn to_f64s(&self, name: &str) -> KResult<Vec<f64>> {
        let d = self.api.dtypes;
        self.read_1d(name, |dt, p| {
            if dt == d.float64 {
                // SAFETY: `p` points at an element of the tensor's dtype, float64.
                Some(unsafe { (p as *const f64).read_unaligned() })
            } else if dt == d.float32 {
                // SAFETY: `p` points at an element of the tensor's dtype, float32.
                Some(f64::from(unsafe { (p as *const f32).read_unaligned() }))
            } else {
                None
            }
        })
        .map_err(|m| KernelError::Arg(format!("{name}: {m}; expected float64 or float32")))
    }

    fn read_1d<T>(
        &self,
        name: &str,
        get: impl Fn(i32, *const u8) -> Option<T>,
    ) -> Result<Vec<T>, String> {
        let q = |r: KResult<i64>| r.map_err(|_| format!("cannot inspect tensor '{name}'"));
        let dim = q(self.query("read the dimension count", self.api.get_dim))?;
        if dim != 1 {
            return Err(format!("a 1-D tensor is needed, got {dim} dimensions"));
        }
        let dev = self
            .query("read the device", self.api.get_device_type)
            .map_err(|_| "cannot read the device".to_string())?;
        if dev != self.api.device_cpu {
            return Err("a CPU tensor is needed".into());
        }
        let dtype = self
            .query("read the dtype", self.api.get_dtype)
            .map_err(|_| "cannot read the dtype".to_string())?;
        let mut sizes: *mut i64 = std::ptr::null_mut();
        let mut strides: *mut i64 = std::ptr::null_mut();
        let mut data: *const c_void = std::ptr::null();
        // SAFETY: `h` is live; the getters write borrowed pointers valid while `h` lives.
        let ok = unsafe {
            (self.api.get_sizes)(self.h, &mut sizes) == 0
                && (self.api.get_strides)(self.h, &mut strides) == 0
                && (self.api.get_const_data_ptr)(self.h, &mut data) == 0
        };
        if !ok || sizes.is_null() || strides.is_null() {
            return Err("cannot read sizes, strides or data".into());
        }
        // SAFETY: a 1-D tensor has one size and one stride.
        let (n, stride) = unsafe { (*sizes, *strides) };
        let n = usize::try_from(n).map_err(|_| format!("negative size {n}"))?;
        if n == 0 {
            return Ok(Vec::new());
        }
        if data.is_null() {
            return Err("tensor has no data".into());
        }
        let elem = match dtype {
            d if d == self.api.dtypes.int64 || d == self.api.dtypes.float64 => 8isize,
            d if d == self.api.dtypes.int32 || d == self.api.dtypes.float32 => 4isize,
            _ => return Err("unsupported dtype".into()),
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: element i of a 1-D tensor lives at data + i*stride elements (the tensor's
            // own layout, which libtorch keeps valid for the life of the handle).
            let p = unsafe { (data as *const u8).offset(i as isize * stride as isize * elem) };
            out.push(get(dtype, p).ok_or("unsupported dtype")?);
        }
        Ok(out)
    }
}

/// An owned `str` argument.
pub struct Str<'a> {
    api: &'a TorchApi,
    h: StringHandle,
}

impl Drop for Str<'_> {
    fn drop(&mut self) {
        if !self.h.is_null() {
            // SAFETY: owned handle, released once.
            unsafe { (self.api.delete_string)(self.h) };
        }
    }
}

impl<'a> Str<'a> {
    /// Takes ownership of a `str` argument.
    ///
    /// # Safety
    /// `v` must be an owned `StringHandle` from the stack, taken once.
    pub unsafe fn take(api: &'a TorchApi, v: u64) -> Str<'a> {
        Str {
            api,
            h: v as usize as StringHandle,
        }
    }

    /// The text (UTF-8; invalid sequences are replaced).
    pub fn text(&self) -> KResult<String> {
        let mut len = 0usize;
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: `h` is live; the getters write a length and a borrowed pointer.
        let ok = unsafe {
            (self.api.string_length)(self.h, &mut len) == 0
                && (self.api.string_c_str)(self.h, &mut p) == 0
        };
        if !ok || (p.is_null() && len > 0) {
            return Err(KernelError::Contract(
                "cannot read a string argument".into(),
            ));
        }
        if len == 0 {
            return Ok(String::new());
        }
        // SAFETY: the string owns `len` bytes at `p` while `h` lives.
        let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// An owned `int[]` argument.
pub struct IntList<'a> {
    api: &'a TorchApi,
    h: ListHandle,
}

impl Drop for IntList<'_> {
    fn drop(&mut self) {
        if !self.h.is_null() {
            // SAFETY: owned handle, released once; its elements are plain integers.
            unsafe { (self.api.delete_list)(self.h) };
        }
    }
}

impl<'a> IntList<'a> {
    /// Takes ownership of an `int[]` argument.
    ///
    /// # Safety
    /// `v` must be an owned `StableListHandle` of ints from the stack, taken once.
    pub unsafe fn take(api: &'a TorchApi, v: u64) -> IntList<'a> {
        IntList {
            api,
            h: v as usize as ListHandle,
        }
    }

    pub fn values(&self) -> KResult<Vec<i64>> {
        let mut n = 0usize;
        // SAFETY: `h` is live.
        torch_call("read a list", unsafe {
            (self.api.list_size)(self.h, &mut n)
        })?;
        (0..n)
            .map(|i| {
                let mut v = 0u64;
                // SAFETY: i < n.
                torch_call("read a list item", unsafe {
                    (self.api.list_get)(self.h, i, &mut v)
                })?;
                Ok(int_arg(v))
            })
            .collect()
    }
}

/// A list of tensors to return as `Tensor[]`.
pub struct TensorList<'a> {
    api: &'a TorchApi,
    h: ListHandle,
}

impl Drop for TensorList<'_> {
    fn drop(&mut self) {
        if self.h.is_null() {
            return;
        }
        // Not returned (an error came first): release the tensors pushed so far, then the list.
        let mut n = 0usize;
        // SAFETY: `h` is live and holds owned tensor handles pushed by `push`.
        unsafe {
            if (self.api.list_size)(self.h, &mut n) == 0 {
                for i in 0..n {
                    let mut v = 0u64;
                    if (self.api.list_get)(self.h, i, &mut v) == 0 && v != 0 {
                        (self.api.delete_tensor)(v as usize as TensorHandle);
                    }
                }
            }
            (self.api.delete_list)(self.h);
        }
    }
}

impl<'a> TensorList<'a> {
    pub fn new(api: &'a TorchApi, capacity: usize) -> KResult<TensorList<'a>> {
        let mut h: ListHandle = std::ptr::null_mut();
        // SAFETY: `h` receives a new owned list.
        torch_call("allocate a list", unsafe {
            (api.new_list)(capacity, &mut h)
        })?;
        if h.is_null() {
            return Err(KernelError::Contract("torch returned no list".into()));
        }
        Ok(TensorList { api, h })
    }

    /// Appends a tensor; the list owns it from here on.
    pub fn push(&mut self, t: Tensor<'_>) -> KResult<()> {
        let v = t.into_raw();
        // SAFETY: `h` is live; on failure the tensor is released here, not leaked.
        let st = unsafe { (self.api.list_push)(self.h, v) };
        if st != 0 {
            // SAFETY: the push failed, so the handle is still ours.
            unsafe { (self.api.delete_tensor)(v as usize as TensorHandle) };
        }
        torch_call("append to a list", st)
    }

    /// Gives up ownership (to return the list to libtorch).
    pub fn into_raw(mut self) -> u64 {
        let h = std::mem::replace(&mut self.h, std::ptr::null_mut());
        h as usize as u64
    }
}
