//! Moving the active version: promote, promote-if-better, rollback, aliases and delete.
//!
//! Each of these is one event appended with a create-only write, computed from the state it
//! follows (see `events.rs`). That is what keeps promotions from interleaving: a writer whose
//! expectation (`expect_active`) no longer holds when it gets its turn fails with
//! [`WoodlotError::Conflict`] instead of overwriting someone else's decision. Nothing becomes
//! active without first loading, validating and replaying its probes.

use std::collections::HashSet;
use std::sync::Arc;

use ndarray::ArrayView2;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Result, WoodlotError};
use crate::store::compare::{CompareOptions, Comparison};
use crate::store::events::{self, Draft, Event, EventKind, Head, State};
use crate::store::labels::Labels;
use crate::store::manifest::Manifest;
use crate::store::metrics::metric_direction;
use crate::store::names::{validate_alias, validate_text, version_name, Ref};
use crate::store::store::Store;

/// What the caller believes the active version is, checked atomically with the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No version is active.
    Nothing,
    /// This version is active.
    Version(u64),
}

impl Expect {
    fn holds(self, active: Option<u64>) -> bool {
        match self {
            Expect::Nothing => active.is_none(),
            Expect::Version(v) => active == Some(v),
        }
    }
}

/// The outcome of [`Store::promote_if_better`].
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Whether the candidate was promoted.
    pub promoted: bool,
    /// The candidate.
    pub candidate: u64,
    /// The version active before the decision.
    pub active_before: Option<u64>,
    /// The version active after it.
    pub active_after: Option<u64>,
    /// The metric decided on.
    pub metric: String,
    /// The candidate's value of it.
    pub candidate_value: Option<f64>,
    /// The active version's value of it.
    pub active_value: Option<f64>,
    /// Improvement of the candidate (positive is better, whatever the metric's direction).
    pub delta: Option<f64>,
    /// Required improvement.
    pub min_delta: f64,
    /// Required McNemar significance, if any.
    pub alpha: Option<f64>,
    /// McNemar p-value of candidate vs active.
    pub p_value: Option<f64>,
    /// Why, in words.
    pub reason: String,
    /// The event that recorded the decision (a `promote` or a `decision` event).
    pub event_seq: u64,
    /// The comparison behind the decision, if one ran.
    #[serde(skip)]
    pub comparison: Option<Comparison>,
}

fn describe_head(head: &Head) -> String {
    match &head.event {
        Some(e) => format!(
            "event {} ({} by {}@{} at {})",
            e.seq,
            e.kind.as_str(),
            e.user,
            e.host,
            e.time
        ),
        None => "an empty history".into(),
    }
}

fn show(v: Option<u64>) -> String {
    v.map(version_name).unwrap_or_else(|| "nothing".into())
}

fn check_reason(reason: &Option<String>) -> Result<()> {
    if let Some(r) = reason {
        validate_text("reason", r, 10_000)?;
    }
    Ok(())
}

impl Store {
    /// Resolves an expectation now (aliases and `latest` mean what they mean at this moment).
    pub fn resolve_expect(&self, r: &Ref) -> Result<Expect> {
        Ok(match r {
            Ref::Number(n) => Expect::Version(*n),
            Ref::Active => match self.state()?.active {
                Some(n) => Expect::Version(n),
                None => Expect::Nothing,
            },
            other => Expect::Version(self.resolve(other)?),
        })
    }

    /// Makes a version active. With `expect`, fails with a conflict unless the active version is
    /// still what the caller saw. The target is fully loaded and its probes replayed first.
    pub fn promote(
        &self,
        r: &Ref,
        reason: Option<String>,
        expect: Option<Expect>,
    ) -> Result<(Arc<Manifest>, Event)> {
        let v = self.resolve(r)?;
        self.promote_version(v, reason, expect, Value::Null)
    }

    fn promote_version(
        &self,
        v: u64,
        reason: Option<String>,
        expect: Option<Expect>,
        decision: Value,
    ) -> Result<(Arc<Manifest>, Event)> {
        check_reason(&reason)?;
        self.load_verified(v)?;
        let evidence = self.last_comparison(v)?;
        let manifest = self.manifest(v)?;
        let _lock = self.backend.lock()?;
        let event = events::append(&*self.backend, |head| {
            let s = head.state();
            if let Some(exp) = expect {
                if !exp.holds(s.active) {
                    return Err(WoodlotError::Conflict(format!(
                        "expected the active version to be {} but it is {} (last change: {}); \
                         re-read the store and decide again",
                        match exp {
                            Expect::Nothing => "nothing".into(),
                            Expect::Version(e) => version_name(e),
                        },
                        show(s.active),
                        describe_head(head)
                    )));
                }
            }
            // Checked against the state this event follows, so a delete that committed first
            // is seen: a deleted version can never become active again.
            if self.is_deleted_in(v, &s)? {
                return Err(WoodlotError::VersionNotFound(format!(
                    "{} was deleted",
                    version_name(v)
                )));
            }
            let mut ns = s.clone();
            ns.active = Some(v);
            if s.active.is_some() && s.active != Some(v) {
                ns.back = Some(head.seq);
            }
            Ok(Draft {
                kind: EventKind::Promote,
                version: Some(v),
                reason: reason.clone(),
                details: json!({
                    "from": s.active.map(version_name),
                    "digest": manifest.blob.digest,
                    "verified": true,
                    "evidence": evidence,
                    "decision": decision,
                }),
                state: ns,
            })
        })?;
        Ok((manifest, event))
    }

    /// Returns to the previously active version (or to `to`; a no-op when `to` is already
    /// active), after verifying it loads,
    /// validates and replays its probes. Rolling back repeatedly walks further back in the
    /// activation history, skipping deleted versions.
    pub fn rollback(
        &self,
        to: Option<&Ref>,
        reason: Option<String>,
    ) -> Result<(Arc<Manifest>, Event)> {
        check_reason(&reason)?;
        let _lock = self.backend.lock()?;
        if let Some(r) = to {
            // Rolling back to the version that is already active changes nothing: return it
            // with the newest event, and write nothing.
            let head = events::head(&*self.backend)?;
            let state = head.state();
            let t = self.resolve_in(r, &state)?;
            if state.active == Some(t) {
                if let Some(ev) = head.event {
                    return Ok((self.manifest(t)?, ev));
                }
            }
        }
        let mut verified: HashSet<u64> = HashSet::new();
        let event = events::append(&*self.backend, |head| {
            let s = head.state();
            let (target, back) = match to {
                Some(r) => {
                    let t = self.resolve_in(r, &s)?;
                    if s.active == Some(t) {
                        return Err(WoodlotError::Conflict(format!(
                            "{} became active while rolling back to it",
                            version_name(t)
                        )));
                    }
                    (
                        t,
                        if s.active.is_some() {
                            Some(head.seq)
                        } else {
                            s.back
                        },
                    )
                }
                None => self.previous_active(&s)?,
            };
            if !verified.contains(&target) {
                self.load_verified(target).map_err(|e| match e {
                    WoodlotError::CorruptModel(m) => WoodlotError::CorruptModel(format!(
                        "refusing to roll back to {}: {m}",
                        version_name(target)
                    )),
                    other => other,
                })?;
                verified.insert(target);
            }
            let m = self.manifest(target)?;
            Ok(Draft {
                kind: EventKind::Rollback,
                version: Some(target),
                reason: reason.clone(),
                details: json!({
                    "from": s.active.map(version_name),
                    "digest": m.blob.digest,
                    "verified": true,
                }),
                state: State {
                    active: Some(target),
                    back,
                    aliases: s.aliases.clone(),
                    deleted: s.deleted.clone(),
                },
            })
        })?;
        let m = self.manifest(event.version.expect("rollback names its target"))?;
        Ok((m, event))
    }

    /// The version a plain rollback returns to, and the `back` it inherits.
    fn previous_active(&self, s: &State) -> Result<(u64, Option<u64>)> {
        let mut back = s.back;
        while let Some(seq) = back {
            let (ev, _) = events::read(&*self.backend, seq)?
                .ok_or_else(|| WoodlotError::corrupt(format!("the history lost event {seq}")))?;
            match ev.state.active {
                Some(t) if Some(t) != s.active && !self.is_deleted_in(t, s)? => {
                    return Ok((t, ev.state.back))
                }
                _ => back = ev.state.back,
            }
        }
        Err(WoodlotError::Store(match s.active {
            Some(a) => format!(
                "nothing to roll back to: {} is the first version that was made active \
                 (pass to= to choose a version)",
                version_name(a)
            ),
            None => "nothing to roll back to: no version has been made active yet".into(),
        }))
    }

    /// Points an alias at a version (creating or moving it).
    pub fn set_alias(&self, name: &str, r: &Ref) -> Result<Event> {
        validate_alias(name)?;
        let _lock = self.backend.lock()?;
        events::append(&*self.backend, |head| {
            let s = head.state();
            let v = self.resolve_in(r, &s)?;
            let mut ns = s.clone();
            let previous = ns.aliases.insert(name.to_string(), v);
            Ok(Draft {
                kind: EventKind::AliasSet,
                version: Some(v),
                reason: None,
                details: json!({"alias": name, "previous": previous.map(version_name)}),
                state: ns,
            })
        })
    }

    /// Removes an alias.
    pub fn remove_alias(&self, name: &str) -> Result<Event> {
        validate_alias(name)?;
        let _lock = self.backend.lock()?;
        events::append(&*self.backend, |head| {
            let mut ns = head.state();
            let v = ns
                .aliases
                .remove(name)
                .ok_or_else(|| WoodlotError::VersionNotFound(format!("no alias named {name:?}")))?;
            Ok(Draft {
                kind: EventKind::AliasRemoved,
                version: Some(v),
                reason: None,
                details: json!({"alias": name}),
                state: ns,
            })
        })
    }

    /// Deletes a version: refused for the active version or an alias target unless `force`.
    ///
    /// The `delete` event is the one commit point: its state lists the version as deleted (and,
    /// forced, no longer active or aliased). Every later event is computed from a state that
    /// says so, so no interleaving can promote, alias or roll back to it afterwards, and gc
    /// frees its blobs (once no live version shares them) only because that state says so.
    /// The manifest stays: numbers are never reused.
    pub fn delete(&self, r: &Ref, force: bool, reason: Option<String>) -> Result<Event> {
        check_reason(&reason)?;
        let _lock = self.backend.lock()?;
        events::append(&*self.backend, |head| {
            let s = head.state();
            let v = self.resolve_in(r, &s)?;
            let aliases: Vec<String> = s
                .aliases
                .iter()
                .filter(|(_, t)| **t == v)
                .map(|(a, _)| a.clone())
                .collect();
            if !force && s.active == Some(v) {
                return Err(WoodlotError::Store(format!(
                    "{} is the active version; promote or roll back to another version first, or pass force=True",
                    version_name(v)
                )));
            }
            if !force && !aliases.is_empty() {
                return Err(WoodlotError::Store(format!(
                    "{} is the target of alias(es) {}; remove them first, or pass force=True",
                    version_name(v),
                    aliases.join(", ")
                )));
            }
            let mut ns = s.clone();
            if ns.active == Some(v) {
                ns.active = None;
            }
            ns.aliases.retain(|_, t| *t != v);
            ns.deleted.insert(v);
            Ok(Draft {
                kind: EventKind::Delete,
                version: Some(v),
                reason: reason.clone(),
                details: json!({"forced": force, "was_active": s.active == Some(v), "removed_aliases": aliases}),
                state: ns,
            })
        })
    }

    /// The tutorial's rule made safe: promote `r` only if it beats the active version by
    /// `min_delta` on `metric` (and, with `alpha`, McNemar's test is significant). The decision
    /// and its reason are recorded either way; the promotion expects the active version the
    /// comparison saw, so a concurrent change turns into a conflict, not a silent overwrite.
    #[allow(clippy::too_many_arguments)]
    pub fn promote_if_better(
        &self,
        r: &Ref,
        x: ArrayView2<'_, f64>,
        y: &Labels,
        metric: &str,
        min_delta: f64,
        alpha: Option<f64>,
        reason: Option<String>,
        opts: &CompareOptions,
    ) -> Result<Decision> {
        let higher_is_better = metric_direction(metric)?;
        if !min_delta.is_finite() {
            return Err(WoodlotError::param("min_delta", "must be a finite number"));
        }
        if let Some(a) = alpha {
            if !(a > 0.0 && a <= 1.0) {
                return Err(WoodlotError::param(
                    "alpha",
                    format!("must be in (0, 1], got {a}"),
                ));
            }
        }
        check_reason(&reason)?;
        let state = self.state()?;
        let cand = self.resolve_in(r, &state)?;
        let mut d = Decision {
            promoted: false,
            candidate: cand,
            active_before: state.active,
            active_after: state.active,
            metric: metric.to_string(),
            candidate_value: None,
            active_value: None,
            delta: None,
            min_delta,
            alpha,
            p_value: None,
            reason: String::new(),
            event_seq: 0,
            comparison: None,
        };
        let Some(active) = state.active else {
            let cmp = self.compare(x, y, Some(&[Ref::Number(cand)]), opts)?;
            d.candidate_value = Some(cmp.eval(cand)?.metrics.get(metric)?);
            d.reason = format!(
                "no version was active, so {} becomes active",
                version_name(cand)
            );
            d.comparison = Some(cmp);
            return self.finish_decision(d, reason, Expect::Nothing, true);
        };
        if active == cand {
            d.reason = format!("{} is already the active version", version_name(cand));
            return self.finish_decision(d, reason, Expect::Version(active), false);
        }
        let cmp = self.compare(x, y, Some(&[Ref::Number(cand), Ref::Number(active)]), opts)?;
        let (mc, ma) = (
            cmp.eval(cand)?.metrics.get(metric)?,
            cmp.eval(active)?.metrics.get(metric)?,
        );
        let delta = if higher_is_better { mc - ma } else { ma - mc };
        let p = cmp.pairwise(cand, active)?.mcnemar_p;
        let better = delta >= min_delta;
        let significant = alpha.is_none_or(|a| p < a);
        let (c, a) = (version_name(cand), version_name(active));
        let mut why = format!(
            "{c} {metric} {mc:.4} vs {a} {ma:.4}: improvement {delta:+.4} {} min_delta {min_delta}",
            if better { ">=" } else { "<" }
        );
        if let Some(al) = alpha {
            why += &format!(
                "; McNemar p = {p:.4} {} alpha {al}",
                if significant { "<" } else { ">=" }
            );
        }
        let promote = better && significant;
        why = format!(
            "{}: {why}",
            if promote {
                format!("promoted {c}")
            } else {
                format!("kept {a}")
            }
        );
        d.candidate_value = Some(mc);
        d.active_value = Some(ma);
        d.delta = Some(delta);
        d.p_value = Some(p);
        d.reason = why;
        d.comparison = Some(cmp);
        self.finish_decision(d, reason, Expect::Version(active), promote)
    }

    fn finish_decision(
        &self,
        mut d: Decision,
        reason: Option<String>,
        expect: Expect,
        promote: bool,
    ) -> Result<Decision> {
        let mut record = serde_json::to_value(&d).expect("decision serialises");
        record["compare_event"] = json!(d.comparison.as_ref().and_then(|c| c.event_seq));
        let user_reason = reason.or_else(|| Some(d.reason.clone()));
        if promote {
            let (_, ev) = self.promote_version(d.candidate, user_reason, Some(expect), record)?;
            d.promoted = true;
            d.active_after = Some(d.candidate);
            d.event_seq = ev.seq;
        } else {
            let _lock = self.backend.lock()?;
            let ev = events::append(&*self.backend, |head| {
                Ok(Draft {
                    kind: EventKind::Decision,
                    version: Some(d.candidate),
                    reason: user_reason.clone(),
                    details: record.clone(),
                    state: head.state(),
                })
            })?;
            d.event_seq = ev.seq;
            d.active_after = ev.state.active;
        }
        Ok(d)
    }

    /// The history, oldest first.
    pub fn history(&self) -> Result<Vec<Event>> {
        events::all(&*self.backend)
    }
}
