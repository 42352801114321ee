//! A process-wide table of open datasets addressed by integer handles, for adapters whose
//! calling conventions carry only numbers (torch operator arguments, C function tables).
//!
//! Handles are never reused within a process, so a stale handle fails cleanly instead of
//! naming another dataset. A forked child inherits the table (and each dataset rebuilds its
//! threads and decoders there on first use).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::dataset::Dataset;
use crate::error::{Error, Result};

fn table() -> &'static Mutex<HashMap<i64, Arc<Dataset>>> {
    static TABLE: OnceLock<Mutex<HashMap<i64, Arc<Dataset>>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The table, also after a panic elsewhere poisoned its lock: every change is one map call,
/// so the map is never left half-updated.
fn lock() -> std::sync::MutexGuard<'static, HashMap<i64, Arc<Dataset>>> {
    table().lock().unwrap_or_else(|e| e.into_inner())
}

static NEXT: AtomicI64 = AtomicI64::new(1);

/// Registers a dataset and returns its handle (> 0).
pub fn insert(ds: Arc<Dataset>) -> i64 {
    let h = NEXT.fetch_add(1, Ordering::Relaxed);
    lock().insert(h, ds);
    h
}

/// The dataset of a handle.
pub fn get(handle: i64) -> Result<Arc<Dataset>> {
    lock()
        .get(&handle)
        .cloned()
        .ok_or_else(|| Error::InvalidArgument {
            msg: format!(
                "no open dataset has handle {handle} in this process (closed, or made in another process)"
            ),
        })
}

/// Forgets a handle; the dataset closes when its last user drops it.
pub fn remove(handle: i64) {
    lock().remove(&handle);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_handles_are_errors() {
        let e = get(-7).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("handle -7"), "{e}");
        remove(-7); // removing an unknown handle is a no-op
    }
}
