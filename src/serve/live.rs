//! [`LiveModel`]: a model that follows a reference of the store (by default `active`).
//!
//! A background thread asks the store every poll interval what the reference points to (see
//! [`Watch::target`]: one small read while nothing moves). When the answer changes it loads the new target, validates it and
//! replays its probes ([`load_served`]), and only then swaps the served model: one pointer
//! write under a lock held for nanoseconds. A call that started on the old model keeps its
//! `Arc` and finishes on it; the next call gets the new one. Nothing half-loaded or unverified
//! is ever served:
//!
//! - a target that fails to load or verify is refused: the last good model keeps serving, the
//!   refusal is counted, kept as the last error and announced as a [`Notice`]; the same target
//!   is retried only after [`LiveOptions::refused_retry`] (or at once by [`LiveModel::refresh`]),
//!   so a damaged version costs one load per retry period, not one per poll;
//! - a check that cannot reach the store changes nothing but the counters: the last good model
//!   keeps serving and [`Status::staleness_seconds`] grows until a check succeeds again.
//!
//! Checks never overlap (the watcher and `refresh` take turns), `close` wakes the sleeping
//! watcher through a condition variable and joins it, and dropping a `LiveModel` closes it, so
//! no thread outlives its model. Every store call runs under `catch_unwind`: a bug in a lower
//! layer becomes a failed check, never a dead watcher or a panic in the caller.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};

use crate::error::{Result, WoodlotError};
use crate::serve::status::{unix_now, Notice, NoticeKind, Notices, Status};
use crate::serve::target::{load_served, Served, Watch};
use crate::store::names::version_name;
use crate::store::{Ref, Store};
use crate::value::FeatureValue;

/// Shortest poll interval accepted: anything faster is a busy loop against the store.
pub const MIN_POLL: Duration = Duration::from_millis(1);
/// Longest poll interval accepted (a day).
pub const MAX_POLL: Duration = Duration::from_secs(86_400);

/// How a live model watches its store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveOptions {
    /// Time between the end of one check and the start of the next.
    pub poll: Duration,
    /// How long a refused target is left alone before the watcher tries it again.
    pub refused_retry: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            refused_retry: Duration::from_secs(10),
        }
    }
}

impl LiveOptions {
    /// Options with a poll interval in seconds, which must lie in [1 ms, 1 day].
    pub fn with_poll_seconds(seconds: f64) -> Result<Self> {
        if !seconds.is_finite()
            || seconds < MIN_POLL.as_secs_f64()
            || seconds > MAX_POLL.as_secs_f64()
        {
            return Err(WoodlotError::InvalidParameter {
                name: "poll_seconds",
                message: format!(
                    "must be a number of seconds between 0.001 and 86400, got {seconds}"
                ),
            });
        }
        Ok(Self {
            poll: Duration::from_secs_f64(seconds),
            ..Self::default()
        })
    }
}

/// Counters, times and notices; behind one mutex, touched once or twice per check.
#[derive(Debug)]
struct Book {
    started: Instant,
    last_check: Option<f64>,
    last_success: Option<(f64, Instant)>,
    last_error: Option<(String, f64)>,
    checks: u64,
    failed_checks: u64,
    swaps: u64,
    refused_swaps: u64,
    target: Option<u64>,
    last_load: Option<Duration>,
    /// The message of the current streak of failed checks, if one is running.
    failing: Option<(String, u64)>,
    /// The target last refused, and when.
    refused: Option<(u64, Instant)>,
    notices: Notices,
}

/// Everything the watcher thread shares with the handle.
#[derive(Debug)]
struct Shared {
    store: Arc<Store>,
    reference: Ref,
    options: LiveOptions,
    served: RwLock<Option<Arc<Served>>>,
    /// The sequence number of the newest notice: a caller that remembers it learns with one
    /// atomic load whether anything happened (a swap, a refusal, a failed check) since.
    epoch: AtomicU64,
    closed: AtomicBool,
    /// One check at a time (the watcher's or `refresh`'s).
    /// Held for a whole check (checks take turns); keeps the watcher's memory of the head.
    check_turn: Mutex<Watch>,
    book: Mutex<Book>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// A poisoned lock only means another thread panicked while holding it; every value behind
/// these locks is valid at every instant, so keep going.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a store call, turning a panic into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(WoodlotError::Store(format!(
            "internal error while {what} (a panic was caught; please report it)"
        )))
    })
}

fn closed_error() -> WoodlotError {
    WoodlotError::Store(
        "this LiveModel is closed; open a new one (store.live(...)) to keep serving".into(),
    )
}

/// A reference as the user typed it (an alias without the quotes `Display` puts around it).
fn plain(r: &Ref) -> String {
    match r {
        Ref::Alias(a) => a.clone(),
        other => other.to_string(),
    }
}

fn show(v: Option<u64>) -> String {
    v.map(version_name).unwrap_or_else(|| "nothing".into())
}

impl Shared {
    fn current(&self) -> Option<Arc<Served>> {
        self.served
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn notice(&self, book: &mut Book, kind: NoticeKind, version: Option<u64>, message: String) {
        book.notices.push(kind, version, message);
        self.epoch.store(book.notices.last_seq(), Ordering::Release);
    }

    /// One check: resolve the reference, and load + verify + swap if it moved. Returns whether
    /// the served model changed; an error means the check failed or the target was refused
    /// (either way the served model is unchanged). `force` retries a refused target at once.
    fn check(&self, force: bool) -> Result<bool> {
        let mut watch = lock(&self.check_turn);
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        if force {
            watch.forget();
        }
        let served = self.current();
        let known = served.as_ref().map(|s| s.version());
        let now = unix_now();
        let resolved = guarded("checking the store", || {
            watch.target(&self.store, &self.reference, known)
        });
        let mut book = lock(&self.book);
        book.checks += 1;
        book.last_check = Some(now);
        let n = match resolved {
            Ok(n) => n,
            Err(e) => {
                book.failed_checks += 1;
                let message = format!(
                    "could not check what {} of {} points to (still serving {}): {e}",
                    self.reference,
                    self.store.location(),
                    show(known)
                );
                book.last_error = Some((message.clone(), now));
                let announce = match book.failing.as_mut() {
                    Some((m, count)) => {
                        *count += 1;
                        let changed = *m != message;
                        if changed {
                            m.clone_from(&message);
                        }
                        changed
                    }
                    None => {
                        book.failing = Some((message.clone(), 1));
                        true
                    }
                };
                if announce {
                    self.notice(&mut book, NoticeKind::CheckFailed, None, message);
                }
                return Err(e);
            }
        };
        book.last_success = Some((now, Instant::now()));
        if let Some((_, failed)) = book.failing.take() {
            let message = format!(
                "{} answers again after {failed} failed check(s); following {} ({})",
                self.store.location(),
                self.reference,
                version_name(n)
            );
            self.notice(&mut book, NoticeKind::Recovered, Some(n), message);
        }
        book.target = Some(n);
        if known == Some(n) {
            book.refused = None;
            return Ok(false);
        }
        if let Some((r, at)) = book.refused {
            if r == n && !force && at.elapsed() < self.options.refused_retry {
                return Ok(false);
            }
        }
        drop(book);

        let generation = served.as_ref().map_or(1, |s| s.generation + 1);
        let loaded = guarded("loading a version", || {
            load_served(&self.store, n, generation)
        });
        let mut book = lock(&self.book);
        match loaded {
            Ok(new) => {
                let new = Arc::new(new);
                let message = format!(
                    "now serving {} for {} (was {}); loaded, validated and probe-replayed in {:.1} ms",
                    new.name(),
                    self.reference,
                    show(known),
                    new.load_time.as_secs_f64() * 1e3
                );
                book.last_load = Some(new.load_time);
                *self.served.write().unwrap_or_else(|p| p.into_inner()) = Some(new);
                if known.is_some() {
                    book.swaps += 1;
                }
                book.refused = None;
                self.notice(&mut book, NoticeKind::Swapped, Some(n), message);
                Ok(true)
            }
            Err(e) => {
                book.refused_swaps += 1;
                let message = format!(
                    "refused {} ({} of {}): it failed to load or verify, so {} keeps serving: {e}",
                    version_name(n),
                    self.reference,
                    self.store.location(),
                    show(known)
                );
                book.last_error = Some((message.clone(), unix_now()));
                book.refused = Some((n, Instant::now()));
                self.notice(&mut book, NoticeKind::Refused, Some(n), message);
                Err(e)
            }
        }
    }

    /// The watcher: sleep one poll interval (or until told to stop), check, repeat.
    fn watch(self: Arc<Self>) {
        loop {
            {
                let stop = lock(&self.stop);
                let (stop, _) = self
                    .wake
                    .wait_timeout_while(stop, self.options.poll, |stop| !*stop)
                    .unwrap_or_else(|p| p.into_inner());
                if *stop {
                    return;
                }
            }
            // Failures are recorded by `check` itself; the watcher only keeps watching.
            let _ = self.check(false);
        }
    }
}

/// A model that follows a reference of a store; see the module documentation.
#[derive(Debug)]
pub struct LiveModel {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl LiveModel {
    /// Starts following `reference`: checks once now (the result is in [`LiveModel::status`];
    /// nothing may be served yet if it failed), then starts the watcher thread.
    pub fn start(store: Arc<Store>, reference: Ref, options: LiveOptions) -> Result<Self> {
        Self::launch(store, reference, options, false)
    }

    /// Like [`LiveModel::start`], but fails with the first check's error unless a verified
    /// model is served from the start (what an embedding service wants: no model, no start).
    /// No thread is started when it fails.
    pub fn open(store: Arc<Store>, reference: Ref, options: LiveOptions) -> Result<Self> {
        Self::launch(store, reference, options, true)
    }

    /// Checks once, then starts the watcher; with `require_model`, a failed first check is
    /// returned before any thread exists.
    fn launch(
        store: Arc<Store>,
        reference: Ref,
        options: LiveOptions,
        require_model: bool,
    ) -> Result<Self> {
        if options.poll < MIN_POLL || options.poll > MAX_POLL {
            return Err(WoodlotError::InvalidParameter {
                name: "poll_seconds",
                message: format!(
                    "must lie between 0.001 and 86400 seconds, got {:?}",
                    options.poll
                ),
            });
        }
        let shared = Arc::new(Shared {
            store,
            reference,
            options,
            served: RwLock::new(None),
            epoch: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            check_turn: Mutex::new(Watch::default()),
            book: Mutex::new(Book {
                started: Instant::now(),
                last_check: None,
                last_success: None,
                last_error: None,
                checks: 0,
                failed_checks: 0,
                swaps: 0,
                refused_swaps: 0,
                target: None,
                last_load: None,
                failing: None,
                refused: None,
                notices: Notices::default(),
            }),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let first = shared.check(true);
        if require_model {
            first?;
        }
        let watcher = shared.clone();
        let thread = std::thread::Builder::new()
            .name("woodlot-live".into())
            .spawn(move || watcher.watch())
            .map_err(|source| WoodlotError::Io {
                context: "starting the live model's watcher thread".into(),
                source,
            })?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The model served now; in-flight work keeps the `Arc` it got even across a swap.
    pub fn served(&self) -> Result<Arc<Served>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        self.shared.current().ok_or_else(|| {
            let why = lock(&self.shared.book)
                .last_error
                .as_ref()
                .map(|(m, _)| format!(": {m}"))
                .unwrap_or_default();
            WoodlotError::VersionNotFound(format!(
                "no verified model of {} is loaded yet{why}",
                self.shared.reference
            ))
        })
    }

    /// The sequence number of the newest [`Notice`]: unchanged means nothing happened.
    /// Errors once the model is closed.
    #[inline]
    pub fn epoch(&self) -> Result<u64> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        Ok(self.shared.epoch.load(Ordering::Acquire))
    }

    /// Class probabilities from the model served now, and that model (its version says which
    /// one produced them).
    pub fn predict_proba<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
    ) -> Result<(Array2<f64>, Arc<Served>)> {
        let served = self.served()?;
        let proba = served.forest.predict_proba(x, 1)?;
        Ok((proba, served))
    }

    /// Checks the store now (waiting for a check in progress first) and retries a refused
    /// target at once. Returns whether the served model changed; errors when the check failed
    /// or the target was refused (the served model is unchanged then).
    pub fn refresh(&self) -> Result<bool> {
        self.shared.check(true)
    }

    /// The notices newer than `seq`, oldest first, and how many of those were dropped from
    /// the ring before being fetched.
    pub fn notices_since(&self, seq: u64) -> (Vec<Notice>, u64) {
        lock(&self.shared.book).notices.since(seq)
    }

    /// The store followed.
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// The reference followed.
    pub fn reference(&self) -> &Ref {
        &self.shared.reference
    }

    /// The reference followed, as typed (`active`, `prod`, `v3`).
    pub fn reference_name(&self) -> String {
        plain(&self.shared.reference)
    }

    /// A snapshot of what is served and how the watching goes.
    pub fn status(&self) -> Status {
        let served = self.shared.current();
        let book = lock(&self.shared.book);
        let staleness = match &book.last_success {
            Some((_, at)) => at.elapsed(),
            None => book.started.elapsed(),
        };
        Status {
            reference: plain(&self.shared.reference),
            version: served.as_ref().map(|s| s.version()),
            generation: served.as_ref().map_or(0, |s| s.generation),
            target: book.target,
            poll_seconds: self.shared.options.poll.as_secs_f64(),
            last_check: book.last_check,
            last_success: book.last_success.as_ref().map(|s| s.0),
            staleness_seconds: staleness.as_secs_f64(),
            last_error: book.last_error.as_ref().map(|e| e.0.clone()),
            last_error_time: book.last_error.as_ref().map(|e| e.1),
            checks: book.checks,
            failed_checks: book.failed_checks,
            swaps: book.swaps,
            refused_swaps: book.refused_swaps,
            last_load_seconds: book.last_load.map(|d| d.as_secs_f64()),
            closed: self.shared.closed.load(Ordering::Acquire),
        }
    }

    /// Whether [`LiveModel::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Stops the watcher and waits for it: at once if it sleeps, after the check in progress
    /// if one runs. The served model is released (in-flight calls keep theirs); afterwards
    /// every call but `status` fails with a clear error. Idempotent.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = lock(&self.thread).take() {
            // The watcher never panics (store calls are guarded); a join error would only mean
            // it did, and there is nothing left to clean up then.
            let _ = thread.join();
        }
        // Wait for a `refresh` that may still be running, then drop the model.
        let _turn = lock(&self.shared.check_turn);
        *self
            .shared
            .served
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Drop for LiveModel {
    fn drop(&mut self) {
        self.close();
    }
}
