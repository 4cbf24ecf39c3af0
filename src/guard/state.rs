//! A guard's records in the store's history, and replaying them.
//!
//! `guard_started` carries the guard's whole specification (candidate, baseline, mode, metric,
//! alpha, margin, min outcomes, canary fraction, auto-promote, clip); its event number is the
//! guard's id, so ids are unique and assigned by the store. `guard_decided` carries the decision
//! and the evidence at that moment. The decision's commit point is a create-only claim record
//! (`guard/<id>-d-1.json`, holding the same [`DecisionRecord`]): of two processes deciding at
//! once exactly one creates it, and a process that died after the claim but before the events
//! is finished by the next one that opens the guard ([`crate::guard::runner`]).
//!
//! Everything a guard is can be rebuilt from the history and its records, so any process that
//! opens the store sees the same guard and a restarted one resumes with nothing lost.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, WoodlotError};
use crate::guard::decide::{Evidence, Metric, TestSpec};
use crate::store::{Event, EventKind, GuardPart, Store};

/// How the candidate meets traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The active version answers; the candidate scores the same rows, logged, not returned.
    Shadow,
    /// A fraction of requests (by request id) is answered by the candidate.
    Canary,
    /// The candidate is promoted; the previous version scores in shadow; rolled back if worse.
    Probation,
}

impl Mode {
    /// Parses `"shadow"`, `"canary"` or `"probation"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "shadow" => Ok(Mode::Shadow),
            "canary" => Ok(Mode::Canary),
            "probation" => Ok(Mode::Probation),
            other => Err(WoodlotError::param(
                "mode",
                format!("mode must be \"shadow\", \"canary\" or \"probation\", not {other:?}"),
            )),
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Shadow => "shadow",
            Mode::Canary => "canary",
            Mode::Probation => "probation",
        }
    }
}

/// A guard's specification, as its `guard_started` event records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardSpec {
    /// The guard's id: the number of its `guard_started` event (0 before it is written).
    #[serde(default)]
    pub guard: u64,
    /// The version under test.
    pub candidate: u64,
    /// The version it is compared with (the active one when the guard started).
    pub baseline: u64,
    /// How the candidate meets traffic.
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
    /// Shadow or canary: promote the candidate once it is confirmed.
    pub auto_promote: bool,
    /// Log-loss clipping.
    pub clip: f64,
    /// Probation: the event that promoted the candidate.
    #[serde(default)]
    pub promote_event: Option<u64>,
}

impl GuardSpec {
    /// The test's settings.
    pub fn test(&self) -> TestSpec {
        TestSpec {
            metric: self.metric,
            alpha: self.alpha,
            margin: self.margin,
            min_outcomes: self.min_outcomes,
            clip: self.clip,
        }
    }

    /// Checks every setting.
    pub fn check(&self) -> Result<()> {
        self.test().check()?;
        if self.candidate == self.baseline {
            return Err(WoodlotError::input(format!(
                "the candidate v{} is the baseline (the active version): guard a different \
                 version",
                self.candidate
            )));
        }
        let f = self.canary_fraction;
        let ok = match self.mode {
            Mode::Canary => f.is_finite() && f > 0.0 && f < 1.0,
            _ => f.is_finite() && (0.0..1.0).contains(&f),
        };
        if !ok {
            return Err(WoodlotError::param(
                "canary_fraction",
                format!("canary_fraction must be in (0, 1) for a canary, e.g. 0.1; got {f}"),
            ));
        }
        if self.auto_promote && self.mode == Mode::Probation {
            return Err(WoodlotError::param(
                "auto_promote",
                "auto_promote applies to shadow and canary guards; a probation candidate is \
                 already active",
            ));
        }
        Ok(())
    }

    /// The version that must be active while the guard runs.
    pub fn expected_active(&self) -> u64 {
        match self.mode {
            Mode::Probation => self.candidate,
            Mode::Shadow | Mode::Canary => self.baseline,
        }
    }
}

/// What a guard decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Probation: the candidate was worse and the baseline is active again.
    RolledBack,
    /// Shadow or canary: the candidate was worse and is no longer considered.
    Dropped,
    /// The candidate is significantly not worse (it stays as it is).
    Confirmed,
    /// Shadow or canary with auto-promote: confirmed, then promoted.
    Promoted,
    /// The active version was changed by someone else; the guard stopped without a verdict.
    Superseded,
    /// Stopped by a user.
    Stopped,
}

impl DecisionKind {
    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::RolledBack => "rolled_back",
            DecisionKind::Dropped => "dropped",
            DecisionKind::Confirmed => "confirmed",
            DecisionKind::Promoted => "promoted",
            DecisionKind::Superseded => "superseded",
            DecisionKind::Stopped => "stopped",
        }
    }
}

/// A decision with its evidence, as the claim and the `guard_decided` event hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The guard.
    pub guard: u64,
    /// What was decided.
    pub decision: DecisionKind,
    /// The evidence at the moment of the decision.
    pub evidence: Evidence,
    /// The active version seen when deciding.
    pub active: Option<u64>,
    /// Why, in words.
    pub reason: String,
    /// The rollback or promote event that carried the decision out (in the event only).
    #[serde(default)]
    pub action_event: Option<u64>,
}

/// A guard as the history tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardRecord {
    /// Its specification.
    pub spec: GuardSpec,
    /// When it started (RFC 3339).
    pub started: String,
    /// Its decision, once the `guard_decided` event is written.
    pub decision: Option<DecisionRecord>,
    /// The number of that event.
    pub decided_event: Option<u64>,
}

fn spec_of(e: &Event) -> Result<GuardSpec> {
    let mut spec: GuardSpec = serde_json::from_value(e.details.clone()).map_err(|err| {
        WoodlotError::corrupt(format!(
            "event {} (guard_started) does not hold a guard: {err}",
            e.seq
        ))
    })?;
    spec.guard = e.seq;
    Ok(spec)
}

/// Every guard in the history, oldest first.
pub fn guards(store: &Store) -> Result<Vec<GuardRecord>> {
    guards_in(&store.history()?)
}

/// Every guard in a history, oldest first.
pub fn guards_in(history: &[Event]) -> Result<Vec<GuardRecord>> {
    let mut out: Vec<GuardRecord> = Vec::new();
    for e in history {
        match e.kind {
            EventKind::GuardStarted => out.push(GuardRecord {
                spec: spec_of(e)?,
                started: e.time.clone(),
                decision: None,
                decided_event: None,
            }),
            EventKind::GuardDecided => {
                let d: DecisionRecord =
                    serde_json::from_value(e.details.clone()).map_err(|err| {
                        WoodlotError::corrupt(format!(
                            "event {} (guard_decided) does not hold a decision: {err}",
                            e.seq
                        ))
                    })?;
                if let Some(g) = out.iter_mut().find(|g| g.spec.guard == d.guard) {
                    if g.decision.is_none() {
                        g.decision = Some(d);
                        g.decided_event = Some(e.seq);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The guard with id `id`.
pub fn guard(store: &Store, id: u64) -> Result<GuardRecord> {
    guards(store)?
        .into_iter()
        .find(|g| g.spec.guard == id)
        .ok_or_else(|| {
            WoodlotError::VersionNotFound(format!("the store has no guard {id} (see guards())"))
        })
}

/// The newest guard without a decision, if any.
pub fn running(store: &Store) -> Result<Option<GuardRecord>> {
    Ok(guards(store)?
        .into_iter()
        .rev()
        .find(|g| g.decision.is_none()))
}

/// The decision claim, if one was made.
pub fn read_claim(store: &Store, id: u64) -> Result<Option<DecisionRecord>> {
    match store.read_guard_record(id, GuardPart::Decision, 1)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            WoodlotError::corrupt(format!("guard {id}'s decision claim is not valid: {e}"))
        }),
    }
}

/// Claims the decision (create-only): `Ok(None)` when this call made it, `Ok(Some(other))` when
/// another process decided first.
pub fn claim(store: &Store, d: &DecisionRecord) -> Result<Option<DecisionRecord>> {
    let mut bytes = serde_json::to_vec_pretty(d)
        .map_err(|e| WoodlotError::input(format!("a decision does not serialise: {e}")))?;
    bytes.push(b'\n');
    if store.create_guard_record(d.guard, GuardPart::Decision, 1, &bytes)? {
        Ok(None)
    } else {
        read_claim(store, d.guard)?
            .map(Some)
            .ok_or_else(|| WoodlotError::corrupt("a decision claim vanished while being read"))
    }
}

/// The details a `guard_decided` event carries.
pub fn decided_details(d: &DecisionRecord) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}
