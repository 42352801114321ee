//! Progress of long operations (validation, statistics), shared with the thread that reports it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Progress of a long operation, read by another thread: units done of a total.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
    /// Set by the caller to stop early (the result then covers what was checked).
    pub cancel: AtomicBool,
}

impl Progress {
    pub(crate) fn add_total(&self, n: usize) {
        self.total.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn step(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}
