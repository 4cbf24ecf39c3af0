//! The thread pools behind `n_jobs`.
//!
//! Building a rayon pool costs tens of microseconds and spawns threads, so pools are built once
//! per size and cached for the life of the process. Results never depend on the pool size: work
//! is split so that every floating-point sum happens in the same order for every `n_jobs`.
//!
//! **Fork safety.** `fork()` copies a process with only the calling thread: a pool cached by
//! the parent survives in the child as a handle on threads that do not exist there, and work
//! sent to it waits forever (`multiprocessing`'s fork start method, `gunicorn --preload` and
//! Celery all fork after the parent may have fitted). So the cache records the process id that
//! built it, and a process that finds someone else's cache starts a fresh one. The parent's
//! cache is leaked in the child, never dropped or locked there: dropping a pool would signal
//! threads that are gone, and its mutex may have been held by a parent thread at the fork.

use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Result, WoodlotError};

/// Number of cores this process may use, read once: asking the OS reads cgroup files and costs
/// more than a one-row prediction. (A forked child keeps its parent's answer: the cgroup and
/// affinity mask are inherited.)
pub fn available_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Resolves scikit-learn's `n_jobs` to a thread count: `None` is 1, `-1` all cores, `-2` all
/// but one, and so on; `0` is an error.
pub fn resolve_n_jobs(n_jobs: Option<i64>) -> Result<usize> {
    let cores = available_cores() as i64;
    match n_jobs {
        None => Ok(1),
        Some(0) => Err(WoodlotError::param(
            "n_jobs",
            "n_jobs == 0 has no meaning; use None or 1 for one thread, -1 for all cores",
        )),
        Some(n) if n > 0 => Ok(n.min(4 * cores.max(1)) as usize),
        Some(n) => Ok((cores + 1 + n).max(1) as usize),
    }
}

/// The pools of one process.
struct PoolCache {
    /// The process that built these pools; in any other process they are dead.
    pid: u32,
    pools: Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>,
}

/// The current process's cache (null until the first pool). Replaced, never freed: see the
/// module docs.
static CACHE: AtomicPtr<PoolCache> = AtomicPtr::new(std::ptr::null_mut());

/// This process's pool cache, replacing one inherited through `fork()`.
fn cache() -> &'static PoolCache {
    let pid = std::process::id();
    loop {
        let current = CACHE.load(Ordering::Acquire);
        // SAFETY: a non-null pointer in CACHE came from Box::leak below and is never freed.
        if let Some(c) = unsafe { current.as_ref() } {
            if c.pid == pid {
                return c;
            }
        }
        let fresh: &'static mut PoolCache = Box::leak(Box::new(PoolCache {
            pid,
            pools: Mutex::new(HashMap::new()),
        }));
        let fresh_ptr: *mut PoolCache = fresh;
        match CACHE.compare_exchange(current, fresh_ptr, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return fresh,
            // Another thread of this process installed its cache first: use that one. Ours
            // was never shared, so it can be freed.
            // SAFETY: `fresh_ptr` came from Box::leak just above and nobody else saw it.
            Err(_) => drop(unsafe { Box::from_raw(fresh_ptr) }),
        }
    }
}

/// Runs `f` inside a cached rayon pool of `n_threads` threads, so parallel iterators in `f`
/// use exactly that many.
pub fn run_in_pool<R: Send>(n_threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    let n = n_threads.max(1);
    let pool = {
        let mut pools = cache()
            .pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match pools.get(&n) {
            Some(p) => Arc::clone(p),
            None => {
                let p = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("woodlot-{i}"))
                    .build()
                    .map_err(|e| {
                        WoodlotError::input(format!("could not start {n} worker threads: {e}"))
                    })?;
                let p = Arc::new(p);
                pools.insert(n, Arc::clone(&p));
                p
            }
        }
    };
    Ok(pool.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_jobs_follows_scikit_learn() {
        let cores = available_cores();
        assert_eq!(resolve_n_jobs(None).unwrap(), 1);
        assert_eq!(resolve_n_jobs(Some(1)).unwrap(), 1);
        assert_eq!(resolve_n_jobs(Some(-1)).unwrap(), cores);
        assert_eq!(resolve_n_jobs(Some(-2)).unwrap(), (cores - 1).max(1));
        assert_eq!(resolve_n_jobs(Some(-1000)).unwrap(), 1);
        assert!(resolve_n_jobs(Some(0)).is_err());
    }

    #[test]
    fn pool_has_the_requested_size() {
        let n = run_in_pool(3, rayon::current_num_threads).unwrap();
        assert_eq!(n, 3);
    }
}
