//! The thread pool the engine computes on. Results do not depend on its size (every reduction
//! runs in a fixed order), only the speed does.
//!
//! Calls enter the pool once (`install`) instead of letting every parallel loop inject work from
//! the caller's thread, which would pay a wake-up per loop. Work too small to split runs
//! inline on the caller's thread and never touches the pool.
//!
//! Fork safety (the way tokenizers handles it). `fork()` copies only the calling thread: a child
//! inherits a pool whose workers do not exist, and any work sent there would wait for ever. So
//! the pool remembers the process that built it and a process that is not its builder builds
//! its own (the inherited one is leaked: its threads are gone, dropping it could only wait on
//! them). An at-fork handler holds the pool lock across `fork()`, so the child never inherits
//! it held by a thread that does not exist in the child. Nothing here uses rayon's global pool,
//! which cannot be rebuilt after a fork: every parallel loop runs inside `install`.
use std::sync::{Arc, Mutex, MutexGuard, Once};

struct Entry {
    pid: u32,
    pool: Arc<rayon::ThreadPool>,
}

struct State {
    /// Threads asked for with `set_num_threads` (0: the default).
    threads: usize,
    entry: Option<Entry>,
}

/// Held only to read or swap the `Arc` (never while computing, never while waiting on anything
/// else), so the at-fork handler's wait is short.
static STATE: Mutex<State> = Mutex::new(State {
    threads: 0,
    entry: None,
});

/// Most threads `set_num_threads` accepts: far beyond any machine's cores, small enough that a
/// typo cannot ask the OS for millions of threads.
pub const MAX_THREADS: usize = 4096;

/// Below this many synapse slots a call runs inline: parallel loops would not split it anyway.
pub const INLINE_SLOTS: usize = 4096;

fn lock() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(unix)]
mod at_fork {
    use super::{lock, State};
    use std::cell::RefCell;
    use std::sync::MutexGuard;

    thread_local! {
        // The forking thread holds the lock from `prepare` until `parent`/`child` in that same
        // thread (the child's only thread is a copy of it).
        static HELD: RefCell<Option<MutexGuard<'static, State>>> = const { RefCell::new(None) };
    }

    extern "C" fn prepare() {
        let g = lock();
        HELD.with(|h| *h.borrow_mut() = Some(g));
    }

    extern "C" fn release() {
        HELD.with(|h| drop(h.borrow_mut().take()));
    }

    pub fn register() {
        // SAFETY: the handlers only touch this module's lock and a thread-local slot.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(release), Some(release));
        }
    }
}

static REGISTER: Once = Once::new();

fn register_at_fork() {
    #[cfg(unix)]
    REGISTER.call_once(at_fork::register);
    #[cfg(not(unix))]
    REGISTER.call_once(|| {});
}

fn build(n: usize) -> Result<Arc<rayon::ThreadPool>, String> {
    let mut b = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("lpn-{i}"));
    if n > 0 {
        b = b.num_threads(n);
    }
    b.build().map(Arc::new).map_err(|e| e.to_string())
}

/// Use `n` threads from now on (0: the default, which honours `RAYON_NUM_THREADS`, else one per
/// core).
pub fn set_num_threads(n: usize) -> Result<(), String> {
    if n > MAX_THREADS {
        return Err(format!(
            "n must lie in [0, {MAX_THREADS}] (0: one thread per core), got {n}"
        ));
    }
    register_at_fork();
    let pool = build(n)?;
    let old = {
        let mut s = lock();
        s.threads = n;
        s.entry.replace(Entry {
            pid: std::process::id(),
            pool,
        })
    };
    // Dropped outside the lock: an old pool from this process lets its threads finish in the
    // background; one inherited through fork has no threads, so it is leaked instead.
    if let Some(e) = old {
        if e.pid != std::process::id() {
            std::mem::forget(e);
        }
    }
    Ok(())
}

fn current() -> Result<Arc<rayon::ThreadPool>, String> {
    let pid = std::process::id();
    {
        let s = lock();
        if let Some(e) = &s.entry {
            if e.pid == pid {
                return Ok(e.pool.clone());
            }
        }
    }
    register_at_fork();
    // First use in this process (or first after a fork): build outside the lock, then publish
    // unless another thread was faster.
    let threads = lock().threads;
    let pool = build(threads)?;
    let mut s = lock();
    match &s.entry {
        Some(e) if e.pid == pid => Ok(e.pool.clone()),
        _ => {
            if let Some(old) = s.entry.replace(Entry {
                pid,
                pool: pool.clone(),
            }) {
                std::mem::forget(old);
            }
            Ok(pool)
        }
    }
}

pub fn num_threads() -> usize {
    match current() {
        Ok(p) => p.current_num_threads(),
        Err(_) => 1,
    }
}

/// Run `f` on the configured pool, or inline when `slots` of work are too few to split. If no
/// pool can be started (the OS refuses threads), `f` runs inline: slower, same numbers.
pub fn install<R: Send>(slots: usize, f: impl FnOnce() -> R + Send) -> R {
    if slots <= INLINE_SLOTS {
        return f();
    }
    match current() {
        Ok(p) => p.install(f),
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_threads_is_an_error_and_changes_nothing() {
        let before = num_threads();
        assert!(set_num_threads(MAX_THREADS + 1).is_err());
        assert_eq!(num_threads(), before);
    }
}
