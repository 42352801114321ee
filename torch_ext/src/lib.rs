//! `torch.ops.roboframes.*`: operators registered from Rust through torch's stable C ABI.
//!
//! Nothing here links libtorch: [`register`] resolves the stable C functions from the libtorch
//! the process already loaded (`import torch`), defines the schemas in the `roboframes`
//! namespace and registers boxed CPU kernels written in Rust. The kernels never call into
//! Python; torch releases the GIL around operator calls from Python, so they run off the GIL.
//!
//! Errors: a kernel that fails raises a torch error (a `c10::Error`, `RuntimeError` in Python)
//! through the stable `aoti_torch_check` whose message is the core's error channel's
//! `[ClassName#id] message` (`roboframes_core::error_channel`), from which Python gets the
//! typed error back. No Rust panic crosses into libtorch.

pub mod abi;
pub mod api;
pub mod kernels;

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use abi::KernelError;
use api::{BoxedKernel, LibraryHandle, TorchApi, ABI_2_10};
use kernels::OPS;

static API: OnceLock<TorchApi> = OnceLock::new();

thread_local! {
    static LAST_MESSAGE: RefCell<CString> = RefCell::new(CString::default());
}

/// Installs the function table the kernels call, without registering anything: for embedding
/// the kernels elsewhere and for tests that stand in for libtorch. Returns false if a table
/// was already installed (the first one stays).
pub fn install_api(api: TorchApi) -> bool {
    API.set(api).is_ok()
}

/// The boxed kernel of operator `name` (as registered with libtorch).
pub fn boxed_kernel(name: &str) -> Option<BoxedKernel> {
    OPS.iter()
        .position(|op| op.name == name)
        .and_then(|i| BOXED.get(i).copied())
}

/// Registers the operators with the libtorch loaded from `libtorch_cpu` (the path of the
/// already loaded `libtorch_cpu.so`). Idempotent: later calls return the first call's result.
pub fn register(libtorch_cpu: &Path) -> Result<(), String> {
    static DONE: Mutex<Option<Result<(), String>>> = Mutex::new(None);
    let mut done = DONE.lock().map_err(|_| {
        roboframes_core::Error::internal(
            "registering the torch operators",
            "its lock was poisoned by an earlier panic",
        )
        .to_string()
    })?;
    if let Some(r) = done.as_ref() {
        return r.clone();
    }
    let r = register_once(libtorch_cpu);
    *done = Some(r.clone());
    r
}

fn register_once(libtorch_cpu: &Path) -> Result<(), String> {
    let api = api::load(libtorch_cpu)?;
    let api = API.get_or_init(|| api);
    let ns = c"roboframes";
    let file = c"roboframes/torch_ext";
    let mut defs: LibraryHandle = std::ptr::null_mut();
    let mut cpu: LibraryHandle = std::ptr::null_mut();
    // SAFETY: plain calls into the stable C ABI with valid C strings and out-pointers. The
    // library objects are kept for the life of the process (deleting them would unregister).
    unsafe {
        if (api.library_init_fragment)(ns.as_ptr(), file.as_ptr(), 0, &mut defs) != 0 {
            return Err("torch refused to open the 'roboframes' operator namespace".into());
        }
        for op in OPS {
            let schema = CString::new(op.schema).map_err(|e| e.to_string())?;
            if (api.library_def)(defs, schema.as_ptr()) != 0 {
                return Err(format!(
                    "torch refused the schema 'roboframes::{}' (already defined?)",
                    op.schema
                ));
            }
        }
        if (api.library_init_impl)(ns.as_ptr(), c"CPU".as_ptr(), file.as_ptr(), 0, &mut cpu) != 0 {
            return Err("torch refused the CPU kernels of 'roboframes'".into());
        }
        for (op, boxed) in OPS.iter().zip(BOXED) {
            let name = CString::new(op.name).map_err(|e| e.to_string())?;
            if (api.library_impl)(cpu, name.as_ptr(), *boxed, ABI_2_10) != 0 {
                return Err(format!(
                    "torch refused the kernel of 'roboframes::{}'",
                    op.name
                ));
            }
        }
    }
    Ok(())
}

/// Runs operator `i` of [`OPS`] on a boxed stack.
///
/// # Safety
/// `stack` must be libtorch's stack for this operator: `max(args, outs)` slots, the first
/// `args` holding its arguments.
unsafe fn run(i: usize, stack: *mut u64, num_args: u64, num_outs: u64) {
    let Some(api) = API.get() else {
        // Kernels are registered only after the API is set; nothing to raise with otherwise.
        std::process::abort();
    };
    let name = format!(
        "roboframes::{}",
        OPS.get(i).map_or("<unknown operator>", |op| op.name)
    );
    let result = catch_unwind(AssertUnwindSafe(|| {
        let op = OPS
            .get(i)
            .ok_or_else(|| KernelError::Contract("unknown operator".into()))?;
        if num_args != op.args as u64 || num_outs != op.outs as u64 || stack.is_null() {
            return Err(KernelError::Contract(format!(
                "called with {num_args} arguments and {num_outs} results; its schema has {} and {}",
                op.args, op.outs
            )));
        }
        let len = op.args.max(op.outs);
        // SAFETY: libtorch's boxed stack holds max(args, outs) slots (the caller's contract;
        // the counts and the pointer are checked above).
        let slots = unsafe { std::slice::from_raw_parts_mut(stack, len) };
        (op.kernel)(api, slots)
    }));
    let err = match result {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(panic) => KernelError::Core(roboframes_core::Error::from_panic(&name, panic.as_ref())),
    };
    raise(api, &name, err);
}

/// Raises `err` of operator `op` as a torch error whose message is
/// `roboframes_core::error_channel::report`'s `[ClassName#id] message` (the typed error is kept
/// there for Python's `roboframes._native.typed_error`); does not return.
fn raise(api: &TorchApi, op: &str, err: KernelError) -> ! {
    let core = match err {
        KernelError::Core(e) => e,
        KernelError::Arg(msg) => roboframes_core::Error::InvalidArgument { msg },
        KernelError::Contract(msg) => roboframes_core::Error::internal(op, msg),
    };
    let text = roboframes_core::error_channel::report(core).replace('\0', " ");
    // The message lives in a thread-local, so nothing in this frame needs dropping while the
    // C++ exception unwinds through it.
    let msg: *const c_char = LAST_MESSAGE
        .try_with(|m| {
            *m.borrow_mut() = CString::new(text).unwrap_or_default();
            m.borrow().as_ptr()
        })
        .unwrap_or(c"roboframes: operator failed while its thread was exiting".as_ptr());
    // SAFETY: `check(false, ...)` throws a c10::Error (copying `msg`); this function and its
    // caller are `C-unwind` frames with no live destructors, so the exception unwinds back
    // into libtorch's dispatcher, which called the kernel.
    unsafe { (api.check)(false, c"roboframes".as_ptr(), c"torch_ext".as_ptr(), 0, msg) };
    // aoti_torch_check(false, ...) always throws; returning here would hand libtorch a stack
    // without results.
    std::process::abort()
}

macro_rules! boxed {
    ($($i:literal),*) => {
        [$({
            unsafe extern "C-unwind" fn k(stack: *mut u64, n: u64, m: u64) {
                // SAFETY: libtorch calls a boxed kernel with its operator's stack.
                unsafe { run($i, stack, n, m) }
            }
            k as BoxedKernel
        }),*]
    };
}

/// The boxed entry points, one per entry of [`OPS`].
const BOXED: &[BoxedKernel] = &boxed!(0, 1, 2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_point_per_operator() {
        assert_eq!(BOXED.len(), OPS.len());
        for op in OPS {
            assert!(
                op.schema.starts_with(&format!("{}(", op.name)),
                "{}",
                op.schema
            );
        }
    }
}
