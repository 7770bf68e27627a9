//! The thread pool the engine computes on. Results do not depend on its size (every reduction
//! runs in a fixed order), only the speed does.
//!
//! Calls enter the pool once (`install`) instead of letting every parallel loop inject work from
//! the caller's thread, which would pay a wake-up per loop. Work too small to split runs
//! inline on the caller's thread and never touches the pool.
use std::sync::{Arc, RwLock};

static POOL: RwLock<Option<Arc<rayon::ThreadPool>>> = RwLock::new(None);

/// Below this many synapse slots a call runs inline: parallel loops would not split it anyway.
pub const INLINE_SLOTS: usize = 4096;

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
    let pool = if n == 0 { None } else { Some(build(n)?) };
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = pool;
    Ok(())
}

fn current() -> Arc<rayon::ThreadPool> {
    if let Some(p) = &*POOL.read().unwrap_or_else(|e| e.into_inner()) {
        return p.clone();
    }
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| build(0).expect("cannot start the lpn thread pool"))
        .clone()
}

pub fn num_threads() -> usize {
    current().current_num_threads()
}

/// Run `f` on the configured pool, or inline when `slots` of work are too few to split.
pub fn install<R: Send>(slots: usize, f: impl FnOnce() -> R + Send) -> R {
    if slots <= INLINE_SLOTS {
        f()
    } else {
        current().install(f)
    }
}
