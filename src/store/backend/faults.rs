//! A test-only switch that makes the N-th I/O step fail (or crash the process), the way SQLite
//! proves its recovery: run an operation once to count its steps, then run it again failing at
//! step 1, 2, ..., N, and check after each that the store holds wholly the old state or wholly
//! the new one.
//!
//! Every I/O call of the backends, read side as well as write side, goes through [`step`] with a
//! short name. Read-side steps start with `read_` ([`is_read_step`]) so a test can tell a failed
//! read from a failed write:
//!
//! - local writes: `mkdir`, `create_temp`, `write_temp`, `fsync_temp`, `link`, `remove_temp`,
//!   `rename`, `fsync_dir`, `remove`, `touch`, `lock_open`, `lock_acquire`;
//! - local reads: `read_open`, `read_data`, `read_exists`, `read_head`, `read_list`,
//!   `read_list_root`;
//! - object storage: `s3_put_create`, `s3_put`, `s3_delete`, `s3_touch`, and `read_s3_get`,
//!   `read_s3_head`, `read_s3_list`.
//!
//! Two counters run side by side:
//!
//! - **Per thread** ([`arm`], [`steps`]): counted from the last `arm`, so Rust tests running in
//!   parallel do not trip each other's faults (store operations run on the calling thread).
//! - **Per process** ([`arm_process`], [`process_steps`], [`process_log`]): counted from
//!   process start over every thread, so a crash trial is reproducible by operation count: a
//!   child started with `WOODLOT_FAULT_AT_STEP=N` (and optionally `WOODLOT_FAULT_MODE=error`;
//!   the default is `crash`, an abort with `SIGABRT`) dies at exactly its N-th I/O step, with no
//!   wall-clock sleep involved. `WOODLOT_FAULT_TRACE=1` keeps the step names of the process
//!   (also kept whenever a process fault is armed).
//!
//! When nothing is armed, a step costs one thread-local and one atomic increment. Python reaches
//! all of it only through underscored functions of the native module; none of it is an API.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

/// What an armed fault does when its step is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The step returns an I/O error (`EIO`-like, kind `Other`).
    Error,
    /// The process aborts on the spot, as a crash or `kill -9` would stop it.
    Crash,
}

/// Environment variable: crash (or fail) at this step, counted from process start.
pub const ENV_AT_STEP: &str = "WOODLOT_FAULT_AT_STEP";
/// Environment variable: `crash` (default) or `error`, for [`ENV_AT_STEP`].
pub const ENV_MODE: &str = "WOODLOT_FAULT_MODE";
/// Environment variable: `1` keeps the names of every step of the process ([`process_log`]).
pub const ENV_TRACE: &str = "WOODLOT_FAULT_TRACE";

/// Whether a step reads (its failure is a failed read, never a lost write).
pub fn is_read_step(name: &str) -> bool {
    name.starts_with("read_")
}

#[derive(Default)]
struct State {
    counter: u64,
    armed: Option<(u64, FaultMode)>,
    log: Vec<&'static str>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Longest step log kept; enough for any single store operation (and a crash trial's child).
const MAX_LOG: usize = 100_000;

/// Steps taken by the whole process since it started.
static PROCESS_COUNT: AtomicU64 = AtomicU64::new(0);
/// The process-wide armed step (absolute), 0 for none.
static PROCESS_AT: AtomicU64 = AtomicU64::new(0);
/// The mode of [`PROCESS_AT`]: 0 error, 1 crash.
static PROCESS_MODE: AtomicU8 = AtomicU8::new(1);
/// Whether [`PROCESS_LOG`] records names.
static PROCESS_TRACE: AtomicBool = AtomicBool::new(false);
static PROCESS_LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
/// The environment is read once, at the first step.
static FROM_ENV: OnceLock<()> = OnceLock::new();

fn mode_code(mode: FaultMode) -> u8 {
    match mode {
        FaultMode::Error => 0,
        FaultMode::Crash => 1,
    }
}

/// Parses the environment's process fault: `(at, mode, trace)`. Unparseable values arm nothing
/// (this is a test switch; a typo must not crash a production process).
fn parse_env(at: Option<&str>, mode: Option<&str>, trace: Option<&str>) -> (u64, FaultMode, bool) {
    let at = at.and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
    let mode = match mode.map(str::trim) {
        Some("error") => FaultMode::Error,
        _ => FaultMode::Crash,
    };
    let trace = matches!(trace.map(str::trim), Some("1" | "true" | "yes"));
    (at, mode, trace)
}

fn init_from_env() {
    FROM_ENV.get_or_init(|| {
        let get = |k: &str| std::env::var(k).ok();
        let (at, mode, trace) = parse_env(
            get(ENV_AT_STEP).as_deref(),
            get(ENV_MODE).as_deref(),
            get(ENV_TRACE).as_deref(),
        );
        if trace || at > 0 {
            PROCESS_TRACE.store(true, Ordering::SeqCst);
        }
        if at > 0 {
            PROCESS_MODE.store(mode_code(mode), Ordering::SeqCst);
            PROCESS_AT.store(at, Ordering::SeqCst);
        }
    });
}

/// Arms a fault at the `at`-th step (1-based) counted from now on this thread, and restarts the
/// thread's count.
pub fn arm(at: u64, mode: FaultMode) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.counter = 0;
        s.log.clear();
        s.armed = (at > 0).then_some((at, mode));
    });
}

/// Disarms any fault of this thread and restarts its count.
pub fn reset() {
    arm(0, FaultMode::Error);
}

/// The names of the steps taken on this thread since the last [`arm`] or [`reset`], in order.
pub fn steps() -> Vec<&'static str> {
    STATE.with(|s| s.borrow().log.clone())
}

/// Arms a fault at the `at`-th step counted from process start, over all threads (`0`
/// disarms). A step already passed never fires. Arming also turns on [`process_log`].
pub fn arm_process(at: u64, mode: FaultMode) {
    init_from_env();
    PROCESS_TRACE.store(true, Ordering::SeqCst);
    PROCESS_MODE.store(mode_code(mode), Ordering::SeqCst);
    PROCESS_AT.store(at, Ordering::SeqCst);
}

/// How many I/O steps the process has taken since it started.
pub fn process_steps() -> u64 {
    PROCESS_COUNT.load(Ordering::SeqCst)
}

/// The names of the process's steps, in order, if tracing was on from the start
/// ([`ENV_TRACE`] or [`ENV_AT_STEP`]); otherwise those since the first [`arm_process`].
pub fn process_log() -> Vec<&'static str> {
    PROCESS_LOG
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

fn injected(at: u64, name: &str, mode: FaultMode) -> io::Error {
    match mode {
        FaultMode::Error => io::Error::other(format!("injected fault at I/O step {at} ({name})")),
        FaultMode::Crash => std::process::abort(),
    }
}

/// Marks one I/O step; fails (or aborts) if this is an armed step.
#[inline]
pub fn step(name: &'static str) -> io::Result<()> {
    init_from_env();
    let n = PROCESS_COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if PROCESS_TRACE.load(Ordering::Relaxed) {
        let mut log = PROCESS_LOG.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() < MAX_LOG {
            log.push(name);
        }
    }
    let at = PROCESS_AT.load(Ordering::SeqCst);
    if at != 0
        && at == n
        && PROCESS_AT
            .compare_exchange(at, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        let mode = if PROCESS_MODE.load(Ordering::SeqCst) == 0 {
            FaultMode::Error
        } else {
            FaultMode::Crash
        };
        return Err(injected(n, name, mode));
    }
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.counter += 1;
        if s.log.len() < MAX_LOG {
            s.log.push(name);
        }
        match s.armed {
            Some((at, mode)) if at == s.counter => {
                s.armed = None;
                Err(injected(at, name, mode))
            }
            _ => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_at_the_armed_step() {
        arm(2, FaultMode::Error);
        assert!(step("a").is_ok());
        let err = step("b").unwrap_err();
        assert!(err.to_string().contains("step 2 (b)"));
        assert!(step("c").is_ok());
        assert_eq!(steps(), vec!["a", "b", "c"]);
        reset();
        assert!(steps().is_empty());
    }

    #[test]
    fn the_environment_arms_by_absolute_step_and_typos_arm_nothing() {
        assert_eq!(
            parse_env(Some("17"), None, None),
            (17, FaultMode::Crash, false)
        );
        assert_eq!(
            parse_env(Some(" 3 "), Some("error"), Some("1")),
            (3, FaultMode::Error, true)
        );
        assert_eq!(parse_env(Some("x"), Some("crash"), None).0, 0);
        assert_eq!(
            parse_env(None, None, Some("yes")),
            (0, FaultMode::Crash, true)
        );
    }

    #[test]
    fn read_steps_are_named_as_such() {
        assert!(is_read_step("read_open"));
        assert!(is_read_step("read_s3_get"));
        assert!(!is_read_step("link"));
        assert!(!is_read_step("lock_acquire"));
    }
}
