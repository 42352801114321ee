//! Work done ahead of the caller: the loader's prefetch. A [`Prefetcher`] runs submitted jobs
//! one after another, in submission order, on a thread of its own (each job, typically
//! [`crate::Dataset::fill_batch_cancellable`], spreads its decoding over the dataset's thread
//! pool). Every job is answered through its [`Ticket`]: done, failed, or cancelled before or
//! while running. Dropping the prefetcher cancels what is still queued and joins its thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

/// A job: receives the flag that is set when its result is no longer wanted.
pub type Job = Box<dyn FnOnce(&AtomicBool) -> Result<()> + Send>;

enum Outcome {
    Pending,
    Done(Result<()>),
    Taken,
}

struct TicketState {
    outcome: Mutex<Outcome>,
    ready: Condvar,
    cancel: AtomicBool,
}

impl TicketState {
    fn finish(&self, r: Result<()>) {
        let mut o = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        *o = Outcome::Done(r);
        self.ready.notify_all();
    }
}

/// The answer to one submitted job.
pub struct Ticket {
    state: Arc<TicketState>,
}

impl Ticket {
    /// Asks the job to stop (or not to start); its result becomes [`Error::Cancelled`] unless
    /// it has already finished.
    pub fn cancel(&self) {
        self.state.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether the job has finished (run, failed or cancelled).
    pub fn is_done(&self) -> bool {
        !matches!(
            *self.state.outcome.lock().unwrap_or_else(|e| e.into_inner()),
            Outcome::Pending
        )
    }

    /// Waits up to `timeout` for the job; `Some(result)` once it has finished (the result is
    /// handed out once; later calls answer with an internal error), `None` on timeout.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<()>> {
        let guard = self.state.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let (mut o, _) = self
            .state
            .ready
            .wait_timeout_while(guard, timeout, |o| matches!(o, Outcome::Pending))
            .unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *o, Outcome::Taken) {
            Outcome::Pending => {
                *o = Outcome::Pending;
                None
            }
            Outcome::Done(r) => Some(r),
            Outcome::Taken => Some(Err(Error::internal(
                "prefetch",
                "the result of this batch was already taken",
            ))),
        }
    }

    /// Waits until the job has finished, discarding its result.
    pub fn wait_done(&self) {
        let guard = self.state.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let _unused = self
            .state
            .ready
            .wait_while(guard, |o| matches!(o, Outcome::Pending));
    }
}

/// Runs jobs in submission order on one background thread (started on first use).
pub struct Prefetcher {
    pid: u32,
    queue: Option<mpsc::Sender<(Job, Arc<TicketState>)>>,
    closing: Arc<AtomicBool>,
    /// The job running now, so that dropping the prefetcher can stop it too.
    running: Arc<Mutex<Option<Arc<TicketState>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Default for Prefetcher {
    fn default() -> Self {
        Prefetcher::new()
    }
}

impl Prefetcher {
    /// A prefetcher with no thread yet.
    pub fn new() -> Prefetcher {
        Prefetcher {
            pid: std::process::id(),
            queue: None,
            closing: Arc::new(AtomicBool::new(false)),
            running: Arc::new(Mutex::new(None)),
            thread: None,
        }
    }

    /// Queues `job` after the jobs already submitted.
    pub fn submit(&mut self, job: Job) -> Result<Ticket> {
        if self.pid != std::process::id() {
            // a forked child: the thread below does not exist here; start anew and never
            // touch the parent's channel or thread
            std::mem::forget(std::mem::take(self));
        }
        let state = Arc::new(TicketState {
            outcome: Mutex::new(Outcome::Pending),
            ready: Condvar::new(),
            cancel: AtomicBool::new(false),
        });
        if self.queue.is_none() {
            let (tx, rx) = mpsc::channel::<(Job, Arc<TicketState>)>();
            let closing = self.closing.clone();
            let running = self.running.clone();
            let thread = std::thread::Builder::new()
                .name("roboframes-prefetch".into())
                .spawn(move || {
                    // Runs until the prefetcher drops the sender, answering every job queued
                    // before that: a ticket is never left pending.
                    for (job, st) in rx {
                        if closing.load(Ordering::Relaxed) || st.cancel.load(Ordering::Relaxed) {
                            st.finish(Err(Error::Cancelled));
                            continue;
                        }
                        *running.lock().unwrap_or_else(|e| e.into_inner()) = Some(st.clone());
                        if closing.load(Ordering::Relaxed) {
                            st.cancel.store(true, Ordering::Relaxed); // (a drop raced the store)
                        }
                        let r = catch_unwind(AssertUnwindSafe(|| job(&st.cancel)))
                            .unwrap_or_else(|p| Err(Error::from_panic("prefetching a batch", &*p)));
                        *running.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        st.finish(r);
                    }
                })
                .map_err(|e| Error::internal("starting the prefetch thread", e.to_string()))?;
            self.queue = Some(tx);
            self.thread = Some(thread);
        }
        let sent = self
            .queue
            .as_ref()
            .map(|q| q.send((job, state.clone())).is_ok());
        if sent != Some(true) {
            return Err(Error::internal(
                "prefetch",
                "the prefetch thread has stopped",
            ));
        }
        Ok(Ticket { state })
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // the parent's thread and channel are not ours to touch (see `submit`): neither
            // disconnect the channel nor detach a thread that does not exist here
            std::mem::forget(self.queue.take());
            std::mem::forget(self.thread.take());
            return;
        }
        self.closing.store(true, Ordering::Relaxed);
        if let Some(st) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            st.cancel.store(true, Ordering::Relaxed);
        }
        drop(self.queue.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn wait(t: &Ticket) -> Result<()> {
        t.wait_timeout(Duration::from_secs(10))
            .unwrap_or_else(|| Err(Error::internal("test", "timed out")))
    }

    #[test]
    fn runs_in_order_and_answers_every_ticket() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut p = Prefetcher::new();
        let tickets: Vec<Ticket> = (0..5)
            .map(|i| {
                let order = order.clone();
                p.submit(Box::new(move |_| {
                    order.lock().unwrap().push(i);
                    if i == 3 {
                        Err(Error::InvalidArgument {
                            msg: "three".into(),
                        })
                    } else {
                        Ok(())
                    }
                }))
                .unwrap()
            })
            .collect();
        let results: Vec<bool> = tickets.iter().map(|t| wait(t).is_ok()).collect();
        assert_eq!(results, [true, true, true, false, true]);
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
        assert!(matches!(wait(&tickets[0]), Err(Error::Internal { .. })));
    }

    #[test]
    fn cancelled_jobs_stop_and_drop_joins() {
        let ran = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicBool::new(false));
        let mut p = Prefetcher::new();
        let (r, s) = (ran.clone(), started.clone());
        let slow = p
            .submit(Box::new(move |cancel| {
                s.store(true, Ordering::SeqCst);
                while !cancel.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                r.fetch_add(1, Ordering::SeqCst);
                Err(Error::Cancelled)
            }))
            .unwrap();
        let r = ran.clone();
        let queued = p
            .submit(Box::new(move |_| {
                r.fetch_add(100, Ordering::SeqCst);
                Ok(())
            }))
            .unwrap();
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        queued.cancel();
        slow.cancel();
        assert!(matches!(wait(&slow), Err(Error::Cancelled)));
        assert!(matches!(wait(&queued), Err(Error::Cancelled)));
        drop(p);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panicking_job_is_an_error() {
        let mut p = Prefetcher::new();
        let t = p.submit(Box::new(|_| panic!("boom"))).unwrap();
        assert!(matches!(wait(&t), Err(Error::Internal { .. })));
        let t = p.submit(Box::new(|_| Ok(()))).unwrap();
        assert!(wait(&t).is_ok());
    }
}
