//! The thread pools behind `n_jobs`.
//!
//! Building a rayon pool costs tens of microseconds and spawns threads, so pools are built once
//! per size and cached for the life of the process. Results never depend on the pool size: work
//! is split so that every floating-point sum happens in the same order for every `n_jobs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Result, WoodlotError};

/// Number of cores this process may use, read once: asking the OS reads cgroup files and costs
/// more than a one-row prediction.
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

/// Runs `f` inside a cached rayon pool of `n_threads` threads, so parallel iterators in `f`
/// use exactly that many.
pub fn run_in_pool<R: Send>(n_threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let n = n_threads.max(1);
    let pool = {
        let mut pools = POOLS
            .get_or_init(|| Mutex::new(HashMap::new()))
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
