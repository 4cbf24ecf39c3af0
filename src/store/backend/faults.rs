//! A test-only switch that makes the N-th I/O step fail (or crash the process), the way SQLite
//! proves its recovery: run an operation once to count its steps, then run it again failing at
//! step 1, 2, ..., N, and check after each that the store holds wholly the old state or wholly
//! the new one.
//!
//! Every write-side I/O call of the local backend goes through [`step`] with a short name
//! (`"write_temp"`, `"fsync_temp"`, `"link"`, `"fsync_dir"`, ...). When nothing is armed, a step
//! costs one thread-local counter increment. The state is per thread so that Rust tests running
//! in parallel do not trip each other's faults; store operations run on the calling thread.
//! Python reaches it only through underscored functions of the native module.

use std::cell::RefCell;
use std::io;

/// What an armed fault does when its step is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The step returns an I/O error (`EIO`-like, kind `Other`).
    Error,
    /// The process aborts on the spot, as a crash or `kill -9` would stop it.
    Crash,
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

/// Longest step log kept; enough for any single store operation.
const MAX_LOG: usize = 100_000;

/// Arms a fault at the `at`-th step (1-based) counted from now, and restarts the count.
pub fn arm(at: u64, mode: FaultMode) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.counter = 0;
        s.log.clear();
        s.armed = (at > 0).then_some((at, mode));
    });
}

/// Disarms any fault and restarts the count.
pub fn reset() {
    arm(0, FaultMode::Error);
}

/// The names of the steps taken since the last [`arm`] or [`reset`], in order.
pub fn steps() -> Vec<&'static str> {
    STATE.with(|s| s.borrow().log.clone())
}

/// Marks one I/O step; fails (or aborts) if this is the armed step.
#[inline]
pub fn step(name: &'static str) -> io::Result<()> {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.counter += 1;
        if s.log.len() < MAX_LOG {
            s.log.push(name);
        }
        match s.armed {
            Some((at, mode)) if at == s.counter => {
                s.armed = None;
                match mode {
                    FaultMode::Error => Err(io::Error::other(format!(
                        "injected fault at I/O step {at} ({name})"
                    ))),
                    FaultMode::Crash => std::process::abort(),
                }
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
}
