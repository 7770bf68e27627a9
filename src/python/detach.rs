//! How the bindings (`Engine` in `python.rs`, `Memory` in `memory_py.rs`) run engine code: with
//! the GIL released, a panic caught as the last line of defence, and never re-entering an
//! interpreter that is shutting down.
//!
//! Interpreter exit. CPython before 3.14 ends a thread that asks for the GIL after finalization
//! began with `pthread_exit`: a forced unwind through every frame on that thread's stack. A
//! daemon thread that is inside `predict` when the main thread exits is exactly that thread,
//! and the unwind then runs through our Rust frames. PyO3 catches it with a guard that parks the
//! thread, but that needs the unwinder that drives it (glibc's, from libgcc_s) to understand our
//! frames; the shipped manylinux wheels are linked by zig, which embeds its own LLVM libunwind,
//! so the unwind ran our personality routine against the other unwinder's context and the
//! process died with SIGSEGV at exit (issue 9: `test_forked_workers_learn[busy]`, 26 of 30
//! runs of the shipped wheel). So no Rust frame may be on a thread that re-enters a finalizing
//! interpreter: an `atexit` hook (`at_exit`, which runs before finalization starts) raises
//! `EXITING`, and from then on a thread leaving engine code parks for good instead of asking for
//! the GIL, as CPython 3.14 itself does with every such thread. `REATTACHING` closes the race
//! with a thread that checked just before: the hook waits (without the GIL) until every such
//! thread holds the GIL, and the checks are sequentially consistent on both sides (one of the
//! two always sees the other).
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;
use std::thread::ThreadId;

static EXITING: AtomicBool = AtomicBool::new(false);
/// Threads between "checked `EXITING`" and "holds the GIL again".
static REATTACHING: AtomicUsize = AtomicUsize::new(0);
/// The thread that runs the exit hook: it finalizes the interpreter and is never parked.
static FINALIZER: OnceLock<ThreadId> = OnceLock::new();

/// Counts this thread in `REATTACHING` until it holds the GIL again (dropped after `detach`).
struct Reattach;

impl Drop for Reattach {
    fn drop(&mut self) {
        REATTACHING.fetch_sub(1, SeqCst);
    }
}

/// Called without the GIL when engine code is done: park for good if the interpreter is exiting
/// (the process ends around this thread), else count this thread as re-attaching.
fn reattach_or_park() -> Reattach {
    REATTACHING.fetch_add(1, SeqCst);
    if EXITING.load(SeqCst) && FINALIZER.get() != Some(&std::thread::current().id()) {
        REATTACHING.fetch_sub(1, SeqCst);
        loop {
            std::thread::park();
        }
    }
    Reattach
}

/// Registered with `atexit` by the module: runs in the exiting thread, with the GIL, before
/// finalization begins.
#[pyfunction]
pub(crate) fn _at_exit(py: Python<'_>) {
    let _ = FINALIZER.set(std::thread::current().id());
    EXITING.store(true, SeqCst);
    // Threads that saw EXITING false need the GIL to finish re-attaching: let them have it.
    py.detach(|| {
        while REATTACHING.load(SeqCst) != 0 {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    });
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

pub(crate) fn internal_error(msg: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "internal error in lpn (a bug, please report it): {msg}"
    ))
}

/// Run `f` with the GIL released; a panic (a bug: validated input never panics) comes back as
/// its message instead of unwinding into Python. Every binding call into engine code goes
/// through here (see the module note on interpreter exit).
pub(crate) fn detach<R: Send>(py: Python<'_>, f: impl FnOnce() -> R + Send) -> Result<R, String> {
    let (r, _reattach) = py.detach(|| {
        let r = std::panic::catch_unwind(AssertUnwindSafe(f));
        (r, reattach_or_park())
    });
    r.map_err(|p| panic_message(&*p))
}

/// `detach` with a panic turned into a `RuntimeError` that names it as a bug.
pub(crate) fn run<R: Send>(py: Python<'_>, f: impl FnOnce() -> R + Send) -> PyResult<R> {
    detach(py, f).map_err(|m| internal_error(&m))
}

/// Remembers that a panic interrupted a call that mutates: the state may be half updated, so
/// every later call is refused instead of serving it.
#[derive(Default)]
pub(crate) struct Broken(OnceLock<String>);

impl Broken {
    pub(crate) fn check(&self, what: &str) -> PyResult<()> {
        match self.0.get() {
            Some(m) => Err(PyRuntimeError::new_err(format!(
                "this {what} is unusable: an earlier call failed with an internal error (a bug \
                 in lpn, please report it: {m}) and may have left it half updated; load its last \
                 checkpoint"
            ))),
            None => Ok(()),
        }
    }

    /// `run`, refusing to start when broken, and marking broken when a mutating `f` panics.
    pub(crate) fn compute<R: Send>(
        &self,
        py: Python<'_>,
        what: &str,
        mutates: bool,
        f: impl FnOnce() -> R + Send,
    ) -> PyResult<R> {
        self.check(what)?;
        detach(py, f).map_err(|m| {
            if mutates {
                let _ = self.0.set(m.clone());
            }
            internal_error(&m)
        })
    }
}
