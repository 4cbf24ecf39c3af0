//! The guard at work: scoring every row with both versions, logging both, deciding, acting.
//!
//! [`Guard`] is a handle any process can hold: `start` writes the guard into the history (and,
//! for probation, promotes the candidate first through the store's ordinary promote); `open`
//! rebuilds it from the history and its records. Scoring runs both forests on the same rows,
//! answers with the version the mode says (probation: the candidate; shadow: the baseline;
//! canary: the candidate for a fraction of request ids, by a hash of the id, so a retried
//! request gets the same model), and logs both outputs. `check` joins outcomes, runs the
//! sequential test from the first outcome, and applies a decision once: claim, then the
//! store's ordinary rollback or promote (so the history shows it), then `guard_decided` with
//! the evidence. A process that died between those steps is finished by the next `open` or
//! `check`. Everything here is Rust with no Python in it, so the HTTP server can hold a
//! `Guard` exactly as the binding does.
//!
//! Drift: every scored row is also counted into the baseline version's training histogram
//! (when it has one), and [`Status::drift`] reports the PSI per feature of the rows this
//! handle has scored since it was started or opened, flagged above
//! [`psi::DEFAULT_THRESHOLD`]. A warning only: it never decides anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};
use crate::forest::Predictor;
use crate::format;
use crate::guard::decide::{Evidence, Metric, Pair, Sequential, DEFAULT_CLIP};
use crate::guard::outcomes::{self, LogView, OutcomeReport};
use crate::guard::predlog::{
    check_request_id, now_ms, PredictionRow, SegmentLimits, SegmentWriter,
};
use crate::guard::psi::{self, Drift, LiveCounts, Reference};
use crate::guard::state::{
    self, claim, decided_details, read_claim, DecisionKind, DecisionRecord, GuardSpec, Mode,
};
use crate::store::labels::{classes_from_json, Label, Labels};
use crate::store::names::version_name;
use crate::store::{EventKind, Expect, GuardPart, Ref, Store};

/// What `Guard::start` needs besides the store.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The version to guard.
    pub candidate: Ref,
    /// How it meets traffic.
    pub mode: Mode,
    /// What is compared.
    pub metric: Metric,
    /// The false-rollback probability promised.
    pub alpha: f64,
    /// Tolerance on the mean loss difference.
    pub margin: f64,
    /// Fewest outcomes before "not worse" may be confirmed.
    pub min_outcomes: u64,
    /// Canary: the fraction of requests the candidate answers.
    pub canary_fraction: f64,
    /// Shadow or canary: promote once confirmed.
    pub auto_promote: bool,
    /// Log-loss clipping.
    pub clip: f64,
    /// Why (recorded in the events).
    pub reason: Option<String>,
}

impl StartOptions {
    /// Defaults: probation on log-loss at alpha 0.05, margin 0, 200 outcomes.
    pub fn new(candidate: Ref) -> Self {
        Self {
            candidate,
            mode: Mode::Probation,
            metric: Metric::LogLoss,
            alpha: 0.05,
            margin: 0.0,
            min_outcomes: 200,
            canary_fraction: 0.0,
            auto_promote: false,
            clip: DEFAULT_CLIP,
            reason: None,
        }
    }
}

/// What scoring a batch returns.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The answering version's class probabilities, one row per input row.
    pub proba: Array2<f64>,
    /// The request ids used (given or generated).
    pub ids: Vec<String>,
    /// The version that answered each row.
    pub served: Vec<u64>,
}

/// A guard's state at one moment: what `status()` and `GET /guard` show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The guard's specification.
    pub spec: GuardSpec,
    /// The store's active version now.
    pub active: Option<u64>,
    /// Whether the guard is still deciding.
    pub running: bool,
    /// Prediction rows in the store's log.
    pub predictions_logged: u64,
    /// Prediction rows this handle has not written yet.
    pub predictions_pending: u64,
    /// Distinct outcomes recorded.
    pub outcomes_recorded: u64,
    /// Outcomes joined to a logged prediction (the test's sample size).
    pub outcomes_joined: u64,
    /// Outcomes whose request id has no logged prediction (yet).
    pub outcomes_unmatched: u64,
    /// Outcomes recorded twice for one id (the first counts).
    pub duplicate_outcomes: u64,
    /// The evidence (frozen at the decision once there is one).
    pub evidence: Evidence,
    /// The decision, if made.
    pub decision: Option<DecisionRecord>,
    /// PSI per feature of the rows this handle scored against the baseline's training
    /// histogram; `None` when the baseline has none (fitted before format 2.1, converted or
    /// merged).
    #[serde(default)]
    pub drift: Option<Drift>,
}

/// One version's model, ready to score.
struct Loaded {
    predictor: Predictor,
    classes: Vec<Label>,
    n_features: usize,
    histogram: Option<Reference>,
}

/// The baseline's training histogram and the scored rows counted into its bins.
struct DriftWatch {
    reference: Reference,
    live: Mutex<LiveCounts>,
}

fn load(store: &Store, v: u64) -> Result<Loaded> {
    let (m, bytes) = store.read_model(&Ref::Number(v), true)?;
    let (forest, _meta) = format::decode(&bytes)?;
    // The guard scores one label per row (accuracy, McNemar): multi-output is refused.
    forest.require_single_output(&format!("guarding version {v}"))?;
    let classes = classes_from_json(&m.model.classes, forest.n_classes as usize)?;
    Ok(Loaded {
        n_features: forest.n_features as usize,
        histogram: forest.training_histogram.clone(),
        predictor: Predictor::new(forest),
        classes,
    })
}

/// A running (or decided) guard.
pub struct Guard {
    store: Arc<Store>,
    spec: GuardSpec,
    classes: Vec<Label>,
    n_features: usize,
    candidate: Predictor,
    baseline: Predictor,
    writer: Mutex<SegmentWriter<PredictionRow>>,
    view: Mutex<LogView>,
    decision: Mutex<Option<DecisionRecord>>,
    drift: Option<DriftWatch>,
    counter: AtomicU64,
    nonce: String,
    limits: SegmentLimits,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("spec", &self.spec).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Guard {
    /// Starts guarding `opts.candidate` against the active version (see the module docs).
    pub fn start(store: Arc<Store>, opts: StartOptions, limits: SegmentLimits) -> Result<Self> {
        let active = store.state()?.active.ok_or_else(|| {
            WoodlotError::Store(
                "no version is active: a guard compares a candidate with the active version; \
                 promote one first"
                    .into(),
            )
        })?;
        let candidate = store.resolve(&opts.candidate)?;
        let mut spec = GuardSpec {
            guard: 0,
            candidate,
            baseline: active,
            mode: opts.mode,
            metric: opts.metric,
            alpha: opts.alpha,
            margin: opts.margin,
            min_outcomes: opts.min_outcomes,
            canary_fraction: opts.canary_fraction,
            auto_promote: opts.auto_promote,
            clip: opts.clip,
            promote_event: None,
        };
        spec.check()?;
        if let Some(g) = state::running(&store)? {
            return Err(WoodlotError::Store(format!(
                "guard {} ({} of {} against {}) is still running: check() it until it decides, \
                 or stop() it, before starting another",
                g.spec.guard,
                g.spec.mode.as_str(),
                version_name(g.spec.candidate),
                version_name(g.spec.baseline)
            )));
        }
        let c = load(&store, candidate)?;
        let b = load(&store, active)?;
        if c.n_features != b.n_features {
            return Err(WoodlotError::input(format!(
                "{} takes {} features but the active {} takes {}: a guard scores both on the \
                 same rows",
                version_name(candidate),
                c.n_features,
                version_name(active),
                b.n_features
            )));
        }
        let same = c.classes.len() == b.classes.len()
            && c.classes
                .iter()
                .zip(&b.classes)
                .all(|(x, y)| x.order(y).is_eq());
        if !same {
            return Err(WoodlotError::input(format!(
                "{} and the active {} have different classes: a guard compares models of the \
                 same classes",
                version_name(candidate),
                version_name(active)
            )));
        }
        let what = format!(
            "{} of {} against {}",
            spec.mode.as_str(),
            version_name(candidate),
            version_name(active)
        );
        let reason = opts
            .reason
            .clone()
            .unwrap_or_else(|| format!("guard: {what}"));
        if spec.mode == Mode::Probation {
            let (_, ev) = store.promote(
                &Ref::Number(candidate),
                Some(reason.clone()),
                Some(Expect::Version(active)),
            )?;
            spec.promote_event = Some(ev.seq);
        }
        let details = serde_json::to_value(&spec)
            .map_err(|e| WoodlotError::input(format!("a guard does not serialise: {e}")))?;
        let ev = store.append_guard_event(
            EventKind::GuardStarted,
            Some(candidate),
            Some(reason),
            details,
        )?;
        spec.guard = ev.seq;
        Ok(Self::assemble(store, spec, c, b, limits))
    }

    /// Reopens guard `id` from the store (finishing a decision a dead process left half done).
    pub fn open(store: Arc<Store>, id: u64, limits: SegmentLimits) -> Result<Self> {
        let rec = state::guard(&store, id)?;
        let c = load(&store, rec.spec.candidate)?;
        let b = load(&store, rec.spec.baseline)?;
        let g = Self::assemble(store, rec.spec, c, b, limits);
        if let Some(d) = rec.decision {
            *lock(&g.decision) = Some(d);
        } else if let Some(d) = read_claim(&g.store, id)? {
            g.complete(d)?;
        }
        Ok(g)
    }

    fn assemble(
        store: Arc<Store>,
        spec: GuardSpec,
        c: Loaded,
        b: Loaded,
        limits: SegmentLimits,
    ) -> Self {
        let nonce = blake3::hash(format!("{}:{}", std::process::id(), now_ms()).as_bytes())
            .to_hex()[..8]
            .to_string();
        Self {
            writer: Mutex::new(SegmentWriter::new(
                spec.guard,
                GuardPart::Predictions,
                limits,
            )),
            store,
            classes: c.classes,
            n_features: c.n_features,
            candidate: c.predictor,
            baseline: b.predictor,
            view: Mutex::new(LogView::default()),
            decision: Mutex::new(None),
            drift: b.histogram.map(|reference| DriftWatch {
                live: Mutex::new(LiveCounts::new(&reference)),
                reference,
            }),
            counter: AtomicU64::new(0),
            nonce,
            limits,
            spec,
        }
    }

    /// The guard's specification.
    pub fn spec(&self) -> &GuardSpec {
        &self.spec
    }

    /// The classes both versions predict, in their column order.
    pub fn classes(&self) -> &[Label] {
        &self.classes
    }

    /// The version that answers while the guard runs, or after its decision.
    fn answering(&self, id: &str, decision: Option<DecisionKind>) -> u64 {
        let s = &self.spec;
        match decision {
            Some(DecisionKind::RolledBack | DecisionKind::Dropped | DecisionKind::Superseded) => {
                s.baseline
            }
            Some(DecisionKind::Promoted) => s.candidate,
            Some(DecisionKind::Confirmed | DecisionKind::Stopped) => s.expected_active(),
            None => match s.mode {
                Mode::Probation => s.candidate,
                Mode::Shadow => s.baseline,
                Mode::Canary => {
                    let h = blake3::hash(id.as_bytes());
                    let u = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
                    if (u as f64) / 18_446_744_073_709_551_616.0 < s.canary_fraction {
                        s.candidate
                    } else {
                        s.baseline
                    }
                }
            },
        }
    }

    /// Scores a batch with both versions, answers with the mode's version and logs both (while
    /// the guard runs; after its decision it only answers).
    pub fn score(&self, x: ArrayView2<'_, f64>, ids: Option<Vec<String>>) -> Result<Scored> {
        if x.ncols() != self.n_features {
            return Err(WoodlotError::input(format!(
                "X has {} features, but the guarded models take {}",
                x.ncols(),
                self.n_features
            )));
        }
        let ids = match ids {
            Some(ids) => {
                if ids.len() != x.nrows() {
                    return Err(WoodlotError::input(format!(
                        "got {} request ids for {} rows; pass one id per row (or none)",
                        ids.len(),
                        x.nrows()
                    )));
                }
                for id in &ids {
                    check_request_id(id)?;
                }
                ids
            }
            None => (0..x.nrows())
                .map(|_| {
                    let n = self.counter.fetch_add(1, Ordering::Relaxed);
                    format!("g{}-{}-{n}", self.spec.guard, self.nonce)
                })
                .collect(),
        };
        if let Some(w) = &self.drift {
            lock(&w.live).add(&w.reference.edges, x);
        }
        let decision = lock(&self.decision).as_ref().map(|d| d.decision);
        let pc = self.candidate.predict_proba(x, 1)?;
        let pb = self.baseline.predict_proba(x, 1)?;
        let mut proba = Array2::<f64>::zeros(pc.raw_dim());
        let mut served = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let v = self.answering(id, decision);
            let src = if v == self.spec.candidate { &pc } else { &pb };
            proba.row_mut(i).assign(&src.row(i));
            served.push(v);
        }
        if decision.is_none() {
            let time_ms = now_ms();
            let mut w = lock(&self.writer);
            for (i, id) in ids.iter().enumerate() {
                let v = served[i];
                w.push(
                    &self.store,
                    PredictionRow {
                        id: id.clone(),
                        time_ms,
                        served: v,
                        other: if v == self.spec.candidate {
                            self.spec.baseline
                        } else {
                            self.spec.candidate
                        },
                        candidate: pc.row(i).iter().map(|p| *p as f32).collect(),
                        baseline: pb.row(i).iter().map(|p| *p as f32).collect(),
                    },
                )?;
            }
            w.flush_if_due(&self.store)?;
        }
        Ok(Scored { proba, ids, served })
    }

    /// Writes the buffered prediction rows now.
    pub fn flush(&self) -> Result<()> {
        lock(&self.writer).flush(&self.store).map(|_| ())
    }

    /// Records outcomes for this guard (as [`record_outcomes`]).
    pub fn record_outcomes(&self, ids: &[String], y: &Labels) -> Result<OutcomeReport> {
        outcomes::record_outcomes(&self.store, self.spec.guard, ids, y, self.limits)
    }

    /// The evidence from every joined outcome, without deciding anything.
    pub fn status(&self) -> Result<Status> {
        let decision = match lock(&self.decision).clone() {
            Some(d) => Some(d),
            None => state::guard(&self.store, self.spec.guard)?.decision,
        };
        if let Some(d) = &decision {
            *lock(&self.decision) = Some(d.clone());
        }
        self.evaluate(decision)
    }

    fn evaluate(&self, decision: Option<DecisionRecord>) -> Result<Status> {
        let mut view = lock(&self.view);
        view.refresh(&self.store, self.spec.guard)?;
        let (joined, unmatched) = view.joined();
        let mut test = Sequential::new(self.spec.test())?;
        for (p, y) in &joined {
            let truth = Label::from_json(y)
                .ok()
                .and_then(|l| self.classes.iter().position(|c| c.order(&l).is_eq()));
            test.push(Pair::score(test.spec(), &p.candidate, &p.baseline, truth));
        }
        let evidence = match &decision {
            Some(d) => d.evidence.clone(),
            None => test.evidence(),
        };
        Ok(Status {
            spec: self.spec.clone(),
            active: self.store.state()?.active,
            running: decision.is_none(),
            predictions_logged: view.prediction_rows(),
            predictions_pending: lock(&self.writer).pending() as u64,
            outcomes_recorded: view.outcome_count(),
            outcomes_joined: joined.len() as u64,
            outcomes_unmatched: unmatched,
            duplicate_outcomes: view.duplicate_outcomes(),
            evidence,
            decision,
            drift: self
                .drift
                .as_ref()
                .map(|w| lock(&w.live).drift(&w.reference, psi::DEFAULT_THRESHOLD))
                .transpose()?,
        })
    }

    /// Flushes, evaluates, and applies a decision if the evidence (or the store) calls for one;
    /// returns the status afterwards.
    pub fn check(&self) -> Result<Status> {
        self.flush()?;
        let status = self.status()?;
        if status.decision.is_some() {
            return Ok(status);
        }
        if let Some(d) = read_claim(&self.store, self.spec.guard)? {
            self.complete(d)?;
            return self.status();
        }
        let s = &self.spec;
        let e = &status.evidence;
        let kind = if status.active != Some(s.expected_active()) {
            Some(DecisionKind::Superseded)
        } else {
            match e.verdict {
                crate::guard::decide::Verdict::Worse => Some(match s.mode {
                    Mode::Probation => DecisionKind::RolledBack,
                    _ => DecisionKind::Dropped,
                }),
                crate::guard::decide::Verdict::NotWorse => {
                    Some(if s.auto_promote && s.mode != Mode::Probation {
                        DecisionKind::Promoted
                    } else {
                        DecisionKind::Confirmed
                    })
                }
                crate::guard::decide::Verdict::Continue => None,
            }
        };
        let Some(kind) = kind else {
            return Ok(status);
        };
        let reason = self.reason_for(kind, e, status.active);
        self.decide(kind, e.clone(), status.active, reason)?;
        self.status()
    }

    /// Stops the guard without a verdict (recorded as `stopped`, with the evidence so far).
    pub fn stop(&self, reason: Option<String>) -> Result<Status> {
        self.flush()?;
        let status = self.status()?;
        if status.decision.is_some() {
            return Ok(status);
        }
        let reason = reason.unwrap_or_else(|| format!("guard {} stopped", self.spec.guard));
        self.decide(
            DecisionKind::Stopped,
            status.evidence.clone(),
            status.active,
            reason,
        )?;
        self.status()
    }

    fn decide(
        &self,
        kind: DecisionKind,
        evidence: Evidence,
        active: Option<u64>,
        reason: String,
    ) -> Result<()> {
        let d = DecisionRecord {
            guard: self.spec.guard,
            decision: kind,
            evidence,
            active,
            reason,
            action_event: None,
        };
        let winner = claim(&self.store, &d)?.unwrap_or(d);
        self.complete(winner)
    }

    fn reason_for(&self, kind: DecisionKind, e: &Evidence, active: Option<u64>) -> String {
        let s = &self.spec;
        let what = format!(
            "guard {}: {} vs {} on {} after {} outcomes, mean difference {:.4} in [{:.4}, {:.4}], \
             e-value {:.4e} (threshold {}, {} test)",
            s.guard,
            version_name(s.candidate),
            version_name(s.baseline),
            s.metric.as_str(),
            e.outcomes,
            e.estimate,
            e.lower,
            e.upper,
            e.e_value,
            e.threshold,
            e.test
        );
        match kind {
            DecisionKind::RolledBack | DecisionKind::Dropped => {
                format!("{what}: the candidate is significantly worse")
            }
            DecisionKind::Confirmed | DecisionKind::Promoted => format!(
                "{what}: the candidate is significantly not worse (upper bound below margin {})",
                s.margin
            ),
            DecisionKind::Superseded => format!(
                "guard {}: the active version became {} (expected {}); stopping without a verdict",
                s.guard,
                active.map_or("nothing".into(), version_name),
                version_name(s.expected_active())
            ),
            DecisionKind::Stopped => format!("guard {} stopped", s.guard),
        }
    }

    /// Carries out a claimed decision: the store move (if the store is still where the decision
    /// left it) and the `guard_decided` event, each at most once.
    fn complete(&self, mut d: DecisionRecord) -> Result<()> {
        if let Some(done) = state::guard(&self.store, self.spec.guard)?.decision {
            *lock(&self.decision) = Some(done);
            return Ok(());
        }
        let s = &self.spec;
        let active = self.store.state()?.active;
        match d.decision {
            DecisionKind::RolledBack if active == Some(s.candidate) => {
                let (_, ev) = self
                    .store
                    .rollback(Some(&Ref::Number(s.baseline)), Some(d.reason.clone()))?;
                d.action_event = Some(ev.seq);
            }
            DecisionKind::Promoted if active == Some(s.baseline) => {
                let (_, ev) = self.store.promote(
                    &Ref::Number(s.candidate),
                    Some(d.reason.clone()),
                    Some(Expect::Version(s.baseline)),
                )?;
                d.action_event = Some(ev.seq);
            }
            _ => {}
        }
        let written = self.store.append_guard_decided_once(
            s.guard,
            Some(s.candidate),
            Some(d.reason.clone()),
            decided_details(&d),
        )?;
        if written.is_none() {
            // Another process completed the same claim first: its event is the record.
            if let Some(done) = state::guard(&self.store, s.guard)?.decision {
                d = done;
            }
        }
        *lock(&self.decision) = Some(d);
        Ok(())
    }

    /// Writes what is buffered; the handle stays usable.
    pub fn close(&self) -> Result<()> {
        self.flush()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Best effort: a buffered row must not vanish with the handle.
        let _ = self.flush();
    }
}

/// Records outcomes for guard `guard`, or for the running guard when `None`.
pub fn record_outcomes(
    store: &Store,
    guard: Option<u64>,
    ids: &[String],
    y: &Labels,
) -> Result<OutcomeReport> {
    let id = match guard {
        Some(g) => state::guard(store, g)?.spec.guard,
        None => {
            state::running(store)?
                .ok_or_else(|| {
                    WoodlotError::Store(
                        "no guard is running in this store: start one with guard(), or name \
                         the guard whose outcomes these are"
                            .into(),
                    )
                })?
                .spec
                .guard
        }
    };
    outcomes::record_outcomes(store, id, ids, y, SegmentLimits::default())
}
