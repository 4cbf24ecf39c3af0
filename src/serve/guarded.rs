//! The server's side of a guard: noticing the guard the store's history says is running,
//! scoring through it, and running its decision.
//!
//! A [`GuardFollower`] belongs to one server. Its thread wakes every poll interval (and soon
//! after [`GuardFollower::nudge`], which `POST /feedback` calls) and does one of two things:
//!
//! - with no guard attached, it asks the history whether one runs (only when the head anchor
//!   moved, or at least every [`FULL_CHECK_EVERY`], so an idle store costs one small read per
//!   poll) and, if so, opens it with [`Guard::open`] (a guard started by `store.guard(...)` in
//!   any process, or by the server's own command line through [`start_or_resume`]);
//! - with one attached, it calls [`Guard::check`], which flushes the prediction log, joins the
//!   outcomes and applies a decision at most once over every process (the guard's decision
//!   claim). Once the guard is decided (by this server, another one, or `woodlot guard stop`)
//!   the follower makes the live model re-read the store at once and only then detaches, so
//!   a request meanwhile is answered by the decided guard (which answers with the version the
//!   decision left active and logs nothing) and the next by the live model: no request fails
//!   across the switch.
//!
//! The follower follows guards only for a server of `active` (a guard compares a candidate
//! with the active version; a server pinned to an alias or a version is not part of it).
//! [`GuardFollower::close`] (the server's graceful shutdown) flushes the prediction log, so
//! nothing scored is lost; after a SIGKILL what is lost is what was scored since the last
//! flush: at most one poll interval (each check flushes) or the segment age limit, whichever
//! is shorter. Outcomes posted for lost rows are counted as unknown.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Result, WoodlotError};
use crate::guard::{self, Guard, SegmentLimits, StartOptions, Status as GuardStatus};
use crate::serve::live::LiveModel;
use crate::serve::target::FULL_CHECK_EVERY;
use crate::store::events::Anchor;
use crate::store::names::version_name;
use crate::store::{Ref, Store};

/// The prediction-row ids of a request of `rows` rows with request id `request_id`: the id
/// itself for one row, `<id>/<i>` (from 0) for more, so each row's outcome can be posted.
pub fn row_ids(request_id: &str, rows: usize) -> Vec<String> {
    if rows == 1 {
        vec![request_id.to_string()]
    } else {
        (0..rows).map(|i| format!("{request_id}/{i}")).collect()
    }
}

/// Starts a guard of `opts.candidate`, or resumes the running guard when it guards the same
/// candidate (what `woodlot serve --guard` does on every start, so a restarted server picks
/// up where it left off). Another candidate's running guard is an error. When the newest
/// guard is this candidate's and already decided, that guard is returned as it is: a server
/// restarted with the same command line after a rollback must not put the rolled-back
/// candidate on probation again (start a new guard explicitly with `store.guard(...)`).
pub fn start_or_resume(
    store: Arc<Store>,
    opts: StartOptions,
    limits: SegmentLimits,
) -> Result<Guard> {
    let candidate = store.resolve(&opts.candidate)?;
    if let Some(newest) = guard::guards(&store)?.last() {
        if newest.spec.candidate == candidate {
            return Guard::open(store, newest.spec.guard, limits);
        }
    }
    if let Some(rec) = guard::state::running(&store)? {
        return Err(WoodlotError::Store(format!(
            "guard {} ({} of {}) is running; stop it (woodlot guard stop) before guarding {}",
            rec.spec.guard,
            rec.spec.mode.as_str(),
            version_name(rec.spec.candidate),
            version_name(candidate)
        )));
    }
    Guard::start(store, opts, limits)
}

/// The follower's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct GuardCounters {
    /// Checks run on an attached guard.
    pub checks: AtomicU64,
    /// Checks or discoveries that failed (store unreachable and the like).
    pub failed_checks: AtomicU64,
    /// Requests that could not be scored through the guard and were answered by the live
    /// model alone (not logged).
    pub score_fallbacks: AtomicU64,
    /// Outcomes `POST /feedback` recorded on this server.
    pub feedback_recorded: AtomicU64,
    /// Of those, ids with no logged prediction (yet).
    pub feedback_unknown: AtomicU64,
    /// Outcomes `POST /feedback` did not record because the id already had one.
    pub feedback_duplicate: AtomicU64,
}

struct Wake {
    stop: bool,
    nudged: bool,
}

struct Shared {
    store: Arc<Store>,
    live: Option<Arc<LiveModel>>,
    poll: Duration,
    limits: SegmentLimits,
    current: RwLock<Option<Arc<Guard>>>,
    /// The newest status: the attached guard's, or the last guard's final one.
    status: Mutex<Option<GuardStatus>>,
    last_error: Mutex<Option<String>>,
    /// The head anchor at the last discovery that found nothing, and when.
    seen: Mutex<Option<(Anchor, Instant)>>,
    /// One tick at a time.
    turn: Mutex<bool>,
    wake: Mutex<Wake>,
    bell: Condvar,
    counters: GuardCounters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn caught<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(WoodlotError::Store(format!(
            "internal error while {what} (a panic was caught; please report it)"
        )))
    })
}

impl Shared {
    fn attached(&self) -> Option<Arc<Guard>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_attached(&self, g: Option<Arc<Guard>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = g;
    }

    fn failed(&self, e: &WoodlotError) {
        self.counters.failed_checks.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(e.to_string());
    }

    /// One round: check the attached guard, or look for a running one.
    fn tick(&self) {
        let mut first = lock(&self.turn);
        if let Some(g) = self.attached() {
            self.counters.checks.fetch_add(1, Ordering::Relaxed);
            match caught("checking the guard", || g.check()) {
                Ok(st) => {
                    let running = st.running;
                    *lock(&self.status) = Some(st);
                    if !running {
                        self.detach(&g);
                    }
                }
                Err(e) => self.failed(&e),
            }
            return;
        }
        let anchor = self.store.head_anchor();
        if let (Some(now), Some((seen, at))) = (&anchor, &*lock(&self.seen)) {
            if now == seen && at.elapsed() < FULL_CHECK_EVERY && !*first {
                return;
            }
        }
        let wanted_last = lock(&self.status).is_none() && *first;
        match caught("looking for a running guard", || self.discover(wanted_last)) {
            Ok(attached) => {
                *first = false;
                *lock(&self.seen) = match (attached, anchor) {
                    (false, Some(a)) => Some((a, Instant::now())),
                    _ => None,
                };
            }
            Err(e) => self.failed(&e),
        }
    }

    /// Opens the running guard, if any (true when one was attached); with `wanted_last`, keeps
    /// the newest decided guard's final status when none runs (for `GET /guard`).
    fn discover(&self, wanted_last: bool) -> Result<bool> {
        let records = guard::guards(&self.store)?;
        let Some(newest) = records.last() else {
            return Ok(false);
        };
        if newest.decision.is_none() {
            let g = Arc::new(Guard::open(
                self.store.clone(),
                newest.spec.guard,
                self.limits,
            )?);
            let st = g.status()?;
            *lock(&self.status) = Some(st);
            self.set_attached(Some(g));
            return Ok(true);
        }
        if wanted_last {
            let g = Guard::open(self.store.clone(), newest.spec.guard, self.limits)?;
            *lock(&self.status) = Some(g.status()?);
        }
        Ok(false)
    }

    /// The guard is decided: let the live model follow the store first, then stop routing.
    fn detach(&self, g: &Guard) {
        if let Err(e) = g.flush() {
            self.failed(&e);
        }
        if let Some(live) = &self.live {
            // A failed refresh leaves the watcher to catch up within its poll interval; the
            // live model keeps serving meanwhile.
            let _ = live.refresh();
        }
        self.set_attached(None);
        *lock(&self.seen) = None;
    }

    fn run(self: Arc<Self>) {
        loop {
            {
                let mut w = lock(&self.wake);
                let deadline = Instant::now() + self.poll;
                while !w.stop && !w.nudged {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    w = self
                        .bell
                        .wait_timeout(w, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if w.stop {
                    return;
                }
                w.nudged = false;
            }
            self.tick();
        }
    }
}

/// A server's follower of the store's guard; see the module documentation.
pub struct GuardFollower {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for GuardFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardFollower")
            .field("attached", &self.attached().map(|g| g.spec().guard))
            .finish()
    }
}

impl GuardFollower {
    /// Follows the guards of `store` every `poll` (looking once now, so a guard already
    /// running is attached before the first request); `live` is refreshed after a decision.
    pub fn start(
        store: Arc<Store>,
        live: Option<Arc<LiveModel>>,
        poll: Duration,
        limits: SegmentLimits,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            store,
            live,
            poll,
            limits,
            current: RwLock::new(None),
            status: Mutex::new(None),
            last_error: Mutex::new(None),
            seen: Mutex::new(None),
            turn: Mutex::new(true),
            wake: Mutex::new(Wake {
                stop: false,
                nudged: false,
            }),
            bell: Condvar::new(),
            counters: GuardCounters::default(),
        });
        shared.tick();
        let runner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("woodlot-guard".into())
            .spawn(move || runner.run())
            .map_err(|e| WoodlotError::Io {
                context: "starting the guard thread".into(),
                source: e,
            })?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The follower for a server of `live`: `None` unless it serves `active`.
    pub fn for_live(live: &Arc<LiveModel>, limits: SegmentLimits) -> Result<Option<Self>> {
        if *live.reference() != Ref::Active {
            return Ok(None);
        }
        let poll = Duration::from_secs_f64(live.status().poll_seconds);
        Self::start(live.store().clone(), Some(live.clone()), poll, limits).map(Some)
    }

    /// The attached guard (running, or decided a moment ago and about to be detached).
    pub fn attached(&self) -> Option<Arc<Guard>> {
        self.shared.attached()
    }

    /// Runs a round now, on the caller's thread (tests; the thread does it every poll).
    pub fn tick(&self) {
        self.shared.tick();
    }

    /// Asks the thread to run a round soon (outcomes arrived).
    pub fn nudge(&self) {
        lock(&self.shared.wake).nudged = true;
        self.shared.bell.notify_all();
    }

    /// The attached guard's status now, or the last guard's final status; `None` when this
    /// server has seen no guard.
    pub fn status(&self) -> Result<Option<GuardStatus>> {
        if let Some(g) = self.attached() {
            let st = g.status()?;
            *lock(&self.shared.status) = Some(st.clone());
            return Ok(Some(st));
        }
        Ok(lock(&self.shared.status).clone())
    }

    /// The status as of the last round (no store read: what `/metrics` shows).
    pub fn cached_status(&self) -> Option<GuardStatus> {
        lock(&self.shared.status).clone()
    }

    /// The newest failed check's message, if any.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.shared.last_error).clone()
    }

    /// The counters.
    pub fn counters(&self) -> &GuardCounters {
        &self.shared.counters
    }

    /// Stops the thread and flushes the attached guard's prediction log. Idempotent.
    pub fn close(&self) -> Result<()> {
        lock(&self.shared.wake).stop = true;
        self.shared.bell.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        match self.attached() {
            Some(g) => g.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for GuardFollower {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::Mode;
    use crate::serve::tests::{model, TempDir};
    use crate::store::SaveOptions;

    #[test]
    fn one_row_keeps_the_request_id_and_more_rows_are_numbered() {
        assert_eq!(row_ids("r", 1), vec!["r"]);
        assert_eq!(row_ids("r", 3), vec!["r/0", "r/1", "r/2"]);
        assert!(row_ids("r", 0).is_empty());
    }

    #[test]
    fn the_same_candidate_resumes_its_guard_and_another_is_refused() {
        let t = TempDir::new("guard-resume");
        let store = Arc::new(Store::open(&t.0).unwrap());
        for threshold in [0.5, -0.5, 0.25] {
            store
                .save(&model(threshold), SaveOptions::default())
                .unwrap();
        }
        store.promote(&Ref::Number(1), None, None).unwrap();
        let mut opts = StartOptions::new(Ref::Number(2));
        opts.mode = Mode::Shadow;
        let limits = SegmentLimits::default();
        let first = start_or_resume(store.clone(), opts.clone(), limits).unwrap();
        let again = start_or_resume(store.clone(), opts.clone(), limits).unwrap();
        assert_eq!(first.spec().guard, again.spec().guard);
        assert_eq!(
            guard::guards(&store).unwrap().len(),
            1,
            "resumed, not restarted"
        );
        opts.candidate = Ref::Number(3);
        let e = start_or_resume(store.clone(), opts.clone(), limits).unwrap_err();
        assert!(e.to_string().contains("woodlot guard stop"), "{e}");
        // A follower without a live model attaches the running guard on its first round.
        let f =
            GuardFollower::start(store.clone(), None, Duration::from_secs(3600), limits).unwrap();
        assert_eq!(
            f.attached().map(|g| g.spec().guard),
            Some(first.spec().guard)
        );
        assert!(f.status().unwrap().unwrap().running);
        // Decided elsewhere: the next round detaches it and keeps its final status.
        first.stop(None).unwrap();
        f.tick();
        assert!(f.attached().is_none());
        assert!(!f.status().unwrap().unwrap().running);
        f.close().unwrap();
        // The same command line again finds it decided and starts nothing.
        opts.candidate = Ref::Number(2);
        let decided = start_or_resume(store.clone(), opts, limits).unwrap();
        assert_eq!(decided.spec().guard, first.spec().guard);
        assert!(!decided.status().unwrap().running);
        assert_eq!(guard::guards(&store).unwrap().len(), 1);
    }
}
