//! The operator kernels against a stand-in for libtorch's stable C ABI. The stand-in tracks
//! every tensor, list and string it hands out, so these tests catch leaked or twice-released
//! arguments and results on success and error paths; scripts/test.sh also runs them under
//! valgrind. (The real libtorch is exercised by the Python suites, on torch 2.10 and newest.)

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use roboframes_core::error_channel;
use roboframes_core::testing::{write_dataset, CAMERA, HEIGHT, WIDTH};
use roboframes_core::{registry, Dataset, FrameFormat, OpenOptions};
use roboframes_torch::api::{DTypes, TorchApi};
use roboframes_torch::{boxed_kernel, install_api};

// libtorch's codes are private to it; the stand-in picks its own.
const DT: DTypes = DTypes {
    uint8: 0,
    uint16: 27,
    bool_: 11,
    int32: 3,
    int64: 4,
    float16: 5,
    bfloat16: 15,
    float32: 6,
    float64: 7,
};
const CPU: i32 = 0;
const CUDA: i32 = 1;

struct MockTensor {
    dtype: i32,
    device: i32,
    sizes: Vec<i64>,
    strides: Vec<i64>,
    data: Vec<u8>,
}

/// Live objects handed out by the stand-in: address -> kind.
static LIVE: Mutex<Option<HashMap<usize, &'static str>>> = Mutex::new(None);
static BAD_FREES: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Tests share the process-wide registry and stand-in: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn live() -> MutexGuard<'static, Option<HashMap<usize, &'static str>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn track<T>(b: Box<T>, kind: &'static str) -> *mut c_void {
    let p = Box::into_raw(b) as *mut c_void;
    live()
        .get_or_insert_with(HashMap::new)
        .insert(p as usize, kind);
    p
}

/// Releases a tracked object; records an error for unknown or wrong-kind handles.
unsafe fn release<T>(p: *mut c_void, kind: &'static str) -> i32 {
    let known = live()
        .get_or_insert_with(HashMap::new)
        .remove(&(p as usize));
    if known != Some(kind) {
        BAD_FREES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{kind} {p:?} released but {known:?}"));
        return 1;
    }
    // SAFETY: `p` was made by `Box::into_raw` in `track` for a `T` of this kind (checked
    // above) and is released once: it is no longer in the live table.
    drop(unsafe { Box::from_raw(p as *mut T) });
    0
}

fn elem(dtype: i32) -> usize {
    match dtype {
        d if d == DT.uint8 || d == DT.bool_ => 1,
        d if d == DT.float16 || d == DT.bfloat16 => 2,
        d if d == DT.int32 || d == DT.float32 => 4,
        _ => 8,
    }
}

unsafe fn tensor<'a>(h: *mut c_void) -> &'a mut MockTensor {
    // SAFETY: the caller passes a live tensor handle made by `track`.
    unsafe { &mut *(h as *mut MockTensor) }
}

extern "C" fn delete_tensor(h: *mut c_void) -> i32 {
    // SAFETY: the handle was made by `track` for this kind (`release` checks and reports it otherwise).
    unsafe { release::<MockTensor>(h, "tensor") }
}
extern "C" fn get_dim(h: *mut c_void, out: *mut i64) -> i32 {
    // SAFETY: `h` is a live tensor handle made by `empty_strided` and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = tensor(h).sizes.len() as i64 };
    0
}
extern "C" fn get_sizes(h: *mut c_void, out: *mut *mut i64) -> i32 {
    // SAFETY: `h` is a live tensor handle made by `empty_strided` and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = tensor(h).sizes.as_mut_ptr() };
    0
}
extern "C" fn get_strides(h: *mut c_void, out: *mut *mut i64) -> i32 {
    // SAFETY: `h` is a live tensor handle made by `empty_strided` and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = tensor(h).strides.as_mut_ptr() };
    0
}
extern "C" fn get_dtype(h: *mut c_void, out: *mut i32) -> i32 {
    // SAFETY: `h` is a live tensor handle made by `empty_strided` and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = tensor(h).dtype };
    0
}
extern "C" fn get_device_type(h: *mut c_void, out: *mut i32) -> i32 {
    // SAFETY: `h` is a live tensor handle made by `empty_strided` and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = tensor(h).device };
    0
}
extern "C" fn get_const_data_ptr(h: *mut c_void, out: *mut *const c_void) -> i32 {
    // SAFETY: `h` is a live tensor handle made by `empty_strided` and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = tensor(h).data.as_ptr() as *const c_void };
    0
}
extern "C" fn get_mutable_data_ptr(h: *mut c_void, out: *mut *mut c_void) -> i32 {
    // SAFETY: `h` is a live tensor handle made by `empty_strided` and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = tensor(h).data.as_mut_ptr() as *mut c_void };
    0
}
extern "C" fn empty_strided(
    ndim: i64,
    sizes: *const i64,
    strides: *const i64,
    dtype: i32,
    device: i32,
    _index: i32,
    out: *mut *mut c_void,
) -> i32 {
    let n = ndim as usize;
    // SAFETY: libtorch's contract: `sizes` and `strides` point at `ndim` values each.
    let (sizes, strides) = unsafe {
        (
            std::slice::from_raw_parts(sizes, n).to_vec(),
            std::slice::from_raw_parts(strides, n).to_vec(),
        )
    };
    let numel: i64 = sizes.iter().product();
    let t = MockTensor {
        dtype,
        device,
        sizes,
        strides,
        data: vec![0xAB; numel as usize * elem(dtype)],
    };
    // SAFETY: `out` is the kernel's out pointer for one handle (libtorch's contract).
    unsafe { *out = track(Box::new(t), "tensor") };
    0
}
extern "C" fn new_list(cap: usize, out: *mut *mut c_void) -> i32 {
    // SAFETY: `out` is the kernel's out pointer for one handle (libtorch's contract).
    unsafe { *out = track(Box::new(Vec::<u64>::with_capacity(cap)), "list") };
    0
}
extern "C" fn list_size(h: *mut c_void, out: *mut usize) -> i32 {
    // SAFETY: `h` is a live list handle made by `new_list` and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = (&*(h as *mut Vec<u64>)).len() };
    0
}
extern "C" fn list_get(h: *mut c_void, i: usize, out: *mut u64) -> i32 {
    // SAFETY: `h` is a live list handle made by `new_list` (libtorch's contract); read only here.
    let list = unsafe { &*(h as *mut Vec<u64>) };
    match list.get(i) {
        Some(v) => {
            // SAFETY: `out` is the kernel's out pointer for one value (libtorch's contract).
            unsafe { *out = *v };
            0
        }
        None => 1,
    }
}
extern "C" fn list_push(h: *mut c_void, v: u64) -> i32 {
    // SAFETY: `h` is a live list handle made by `new_list`; the kernel holds no other reference to it.
    unsafe { (&mut *(h as *mut Vec<u64>)).push(v) };
    0
}
extern "C" fn delete_list(h: *mut c_void) -> i32 {
    // SAFETY: the handle was made by `track` for this kind (`release` checks and reports it otherwise).
    unsafe { release::<Vec<u64>>(h, "list") }
}
extern "C" fn string_length(h: *mut c_void, out: *mut usize) -> i32 {
    // SAFETY: `h` is a live string handle made by this stand-in and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = (&*(h as *mut Vec<u8>)).len() };
    0
}
extern "C" fn string_c_str(h: *mut c_void, out: *mut *const c_char) -> i32 {
    // SAFETY: `h` is a live string handle made by this stand-in and `out` the kernel's out pointer (libtorch's contract).
    unsafe { *out = (&*(h as *mut Vec<u8>)).as_ptr() as *const c_char };
    0
}
extern "C" fn delete_string(h: *mut c_void) -> i32 {
    // SAFETY: the handle was made by `track` for this kind (`release` checks and reports it otherwise).
    unsafe { release::<Vec<u8>>(h, "string") }
}
/// libtorch throws a c10::Error here; the stand-in unwinds with a Rust panic instead.
extern "C-unwind" fn check(
    cond: bool,
    _f: *const c_char,
    _file: *const c_char,
    _l: u32,
    msg: *const c_char,
) {
    if !cond {
        // SAFETY: the kernel passes a NUL-terminated message that lives for the call.
        let text = unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned();
        std::panic::panic_any(text);
    }
}
extern "C" fn unused_init(_: *const c_char, _: *const c_char, _: u32, _: *mut *mut c_void) -> i32 {
    1
}
extern "C" fn unused_init_impl(
    _: *const c_char,
    _: *const c_char,
    _: *const c_char,
    _: u32,
    _: *mut *mut c_void,
) -> i32 {
    1
}
extern "C" fn unused_def(_: *mut c_void, _: *const c_char) -> i32 {
    1
}
extern "C" fn unused_impl(
    _: *mut c_void,
    _: *const c_char,
    _: roboframes_torch::api::BoxedKernel,
    _: u64,
) -> i32 {
    1
}

fn stand_in() -> TorchApi {
    TorchApi {
        library_init_fragment: unused_init,
        library_init_impl: unused_init_impl,
        library_def: unused_def,
        library_impl: unused_impl,
        check,
        delete_tensor,
        get_dim,
        get_sizes,
        get_strides,
        get_dtype,
        get_device_type,
        get_const_data_ptr,
        get_mutable_data_ptr,
        empty_strided,
        new_list,
        list_size,
        list_get,
        list_push,
        delete_list,
        string_length,
        string_c_str,
        delete_string,
        dtypes: DT,
        device_cpu: CPU,
    }
}

// ---- building arguments -------------------------------------------------------------------

fn arg_tensor<T: Copy>(values: &[T], dtype: i32, stride: usize, device: i32) -> u64 {
    let e = std::mem::size_of::<T>();
    let mut data = vec![0u8; values.len().max(1) * stride * e];
    for (i, v) in values.iter().enumerate() {
        // SAFETY: writes one T inside `data` (i * stride < len * stride).
        unsafe { (data.as_mut_ptr().add(i * stride * e) as *mut T).write_unaligned(*v) };
    }
    let t = MockTensor {
        dtype,
        device,
        sizes: vec![values.len() as i64],
        strides: vec![stride as i64],
        data,
    };
    track(Box::new(t), "tensor") as u64
}
fn arg_str(s: &str) -> u64 {
    track(Box::new(s.as_bytes().to_vec()), "string") as u64
}
fn arg_ints(v: &[i64]) -> u64 {
    track(
        Box::new(v.iter().map(|x| *x as u64).collect::<Vec<u64>>()),
        "list",
    ) as u64
}

/// Calls a boxed kernel the way libtorch does; Err carries the raised message.
fn call(name: &str, stack: &mut [u64], nargs: u64, nouts: u64) -> Result<(), String> {
    let k = boxed_kernel(name).expect("kernel");
    // SAFETY: the stack holds the kernel's arguments and room for its results, as libtorch's does.
    catch_unwind(AssertUnwindSafe(|| unsafe {
        k(stack.as_mut_ptr(), nargs, nouts)
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "non-string panic".into())
    })
}

/// Takes a returned tensor: (sizes, dtype, bytes), releasing it as libtorch would.
fn take_tensor(v: u64) -> (Vec<i64>, i32, Vec<u8>) {
    let h = v as usize as *mut c_void;
    // SAFETY: `v` is a tensor handle a kernel returned; it is released right after.
    let t = unsafe { tensor(h) };
    let r = (t.sizes.clone(), t.dtype, t.data.clone());
    assert_eq!(delete_tensor(h), 0);
    r
}

fn assert_nothing_leaked() {
    let l = live();
    let leaked: Vec<_> = l.iter().flat_map(|m| m.values()).collect();
    assert!(leaked.is_empty(), "leaked: {leaked:?}");
    drop(l);
    let bad = BAD_FREES.lock().unwrap_or_else(|e| e.into_inner());
    assert!(bad.is_empty(), "bad releases: {bad:?}");
}

struct Fixture {
    _dir: tempfile::TempDir,
    ds: Arc<Dataset>,
    handle: i64,
    _guard: MutexGuard<'static, ()>,
}

fn fixture() -> Fixture {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    install_api(stand_in());
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        // the stand-in's "throws" are expected panics: keep them out of the test output
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let raised = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| error_channel::parse(m).is_some());
            if !raised {
                default(info);
            }
        }));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    write_dataset(dir.path(), &[4, 3]).expect("dataset");
    let ds = Arc::new(Dataset::open(dir.path(), OpenOptions::default()).expect("open"));
    let handle = registry::insert(ds.clone());
    Fixture {
        _dir: dir,
        ds,
        handle,
        _guard: guard,
    }
}

// ---- tests --------------------------------------------------------------------------------

#[test]
fn decode_frames_reads_any_stride_and_dtype_and_frees_its_arguments() {
    let f = fixture();
    let eps = [1i32, 0, 1];
    let ts = [0.2f32, 0.0, 0.1];
    let mut stack = [
        f.handle as u64,
        arg_str(CAMERA),
        arg_tensor(&eps, DT.int32, 1, CPU),
        arg_tensor(&ts, DT.float32, 3, CPU), // strided
        DT.float32 as u32 as u64,
        0, // channels_last = false
    ];
    call("decode_frames", &mut stack, 6, 1).expect("decode_frames");
    let (sizes, dtype, data) = take_tensor(stack[0]);
    assert_eq!(sizes, vec![3, 3, HEIGHT as i64, WIDTH as i64]);
    assert_eq!(dtype, DT.float32);
    let mut want = vec![0u8; data.len()];
    f.ds.decode_frames(
        CAMERA,
        &[1, 0, 1],
        &[0.2, 0.0, 0.1],
        FrameFormat::LEROBOT,
        &mut want,
    )
    .expect("core");
    assert_eq!(data, want);
    assert_nothing_leaked();
}

#[test]
fn gather_and_get_batch_return_owned_results() {
    let f = fixture();
    let mut stack = [
        f.handle as u64,
        arg_str("observation.state"),
        arg_tensor(&[0i64, 6], DT.int64, 1, CPU),
        arg_ints(&[-1, 0, 1]),
    ];
    call("gather", &mut stack, 4, 2).expect("gather");
    let (vs, vdt, vals) = take_tensor(stack[0]);
    let (ps, pdt, pads) = take_tensor(stack[1]);
    assert_eq!(
        (vs, vdt, ps, pdt),
        (vec![2, 3, 3], DT.float32, vec![2, 3], DT.bool_)
    );
    assert_eq!(pads, vec![1, 0, 0, 0, 0, 1]);
    let first: Vec<f32> = vals[..12]
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(first, vec![0.0, 0.5, -0.0]); // clamped to the episode's first row

    let mut stack = [
        f.handle as u64,
        arg_tensor(&[6i64, 0, 0], DT.int64, 2, CPU),
        DT.uint8 as u32 as u64,
        1,
    ];
    call("get_batch", &mut stack, 4, 1).expect("get_batch");
    let list = stack[0] as usize as *mut c_void;
    // SAFETY: `list` is the list handle the kernel returned; it is released right after.
    let items: Vec<u64> = unsafe { (&*(list as *mut Vec<u64>)).clone() };
    assert_eq!(delete_list(list), 0);
    let specs: Vec<_> =
        f.ds.outputs()
            .iter()
            .filter(|s| !s.is_string())
            .cloned()
            .collect();
    assert_eq!(items.len(), specs.len());
    for (v, s) in items.into_iter().zip(&specs) {
        let (sizes, _, data) = take_tensor(v);
        assert_eq!(sizes[0], 3, "{}", s.key);
        assert_eq!(data.len(), 3 * s.item_bytes(), "{}", s.key);
    }
    assert_nothing_leaked();
}

#[test]
fn failures_raise_free_every_argument_and_keep_the_typed_error() {
    let f = fixture();
    type MakeStack<'a> = Box<dyn Fn() -> Vec<u64> + 'a>;
    let h = f.handle as u64;
    // a decode_frames stack: (dataset, camera, episode_index, timestamp, dtype, channels_last)
    let decode = move |handle: u64, device: i32, t: f64, dtype: i32| -> MakeStack {
        Box::new(move || {
            vec![
                handle,
                arg_str(CAMERA),
                arg_tensor(&[0i64], DT.int64, 1, device),
                arg_tensor(&[t], DT.float64, 1, CPU),
                dtype as u64,
                1,
            ]
        })
    };
    let cases: Vec<(&str, MakeStack, u64, &str)> = vec![
        // unknown handle
        (
            "decode_frames",
            decode(987_654, CPU, 0.0, DT.uint8),
            1,
            "no open dataset has handle 987654",
        ),
        // between frames: FrameTimestamp
        (
            "decode_frames",
            decode(h, CPU, 0.05, DT.uint8),
            1,
            "no frame within tolerance_s",
        ),
        // a tensor on another device
        (
            "decode_frames",
            decode(h, CUDA, 0.0, DT.uint8),
            1,
            "CPU tensor",
        ),
        // a frame dtype the operators do not produce
        (
            "decode_frames",
            decode(h, CPU, 0.0, DT.int64),
            1,
            "frame dtype",
        ),
        // float indices
        (
            "gather",
            Box::new(move || {
                vec![
                    h,
                    arg_str("observation.state"),
                    arg_tensor(&[0.0f64], DT.float64, 1, CPU),
                    arg_ints(&[0]),
                ]
            }),
            2,
            "int64 or int32",
        ),
        // index out of range
        (
            "get_batch",
            Box::new(move || vec![h, arg_tensor(&[7i64], DT.int64, 1, CPU), DT.uint8 as u64, 1]),
            1,
            "index 7 out of range",
        ),
    ];
    for (name, make, nouts, needle) in cases {
        let mut stack = make();
        let nargs = stack.len() as u64;
        let msg = call(name, &mut stack, nargs, nouts).expect_err(needle);
        assert!(msg.starts_with('[') && msg.contains(needle), "{msg}");
        let typed = error_channel::take(&msg).expect("typed error kept");
        assert!(msg.contains(&typed.to_string()), "{msg} / {typed}");
        assert_nothing_leaked();
    }
    // a stack that does not match the schema is refused before anything is read
    let mut stack = [0u64; 3];
    let msg = call("gather", &mut stack, 3, 2).expect_err("arity");
    assert!(msg.contains("schema has 4 and 2"), "{msg}");
    // a broken calling contract is roboframes' (or torch's) fault: an internal error naming
    // the operator, not an invalid argument of the user's
    assert!(
        matches!(
            error_channel::take(&msg),
            Some(roboframes_core::Error::Internal { ref op, .. }) if op == "roboframes::gather"
        ),
        "{msg}"
    );
    assert_nothing_leaked();
}
