//! Comparing versions on the same evaluation data, in Rust, each model predicting once.
//!
//! The result holds each version's metrics (see `metrics.rs`) and per-row predictions, so any
//! pair can be compared afterwards (`pairwise`, see `stats.rs`) without predicting again. A few
//! pairs are computed up front: every version against the best one and against the active one,
//! which is what a table shows and what a later promotion cites as evidence.
//!
//! Unless told not to, a comparison is recorded as a `compare` event (metrics, the pairs above
//! without row lists, and the BLAKE3 fingerprint of the evaluation data), so "why was v2
//! promoted?" has an answer in the history. Recording needs a writable store; on a read-only
//! one the comparison is still returned, with `record_error` saying why it was not recorded.

use std::collections::BTreeSet;

use ndarray::ArrayView2;
use serde_json::{json, Map, Value};

use crate::error::{Result, WoodlotError};
use crate::fingerprint::Fingerprinter;
use crate::format;
use crate::store::events::{self, Draft, EventKind};
use crate::store::labels::{classes_from_json, Label, Labels, Universe};
use crate::store::metrics::{evaluate, predictions, Metrics};
use crate::store::names::{version_name, Ref};
use crate::store::stats::{pairwise, Pairwise};
use crate::store::store::{about, Store};

/// How a comparison runs.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Bootstrap resamples per pair (0 disables the interval).
    pub n_bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Threads for prediction (0: all cores).
    pub n_threads: usize,
    /// Record the comparison as an event.
    pub record: bool,
    /// The evaluation data's column names, if it has them (a DataFrame's columns). Every
    /// compared version fitted with feature names must have been fitted on exactly these, in
    /// this order; otherwise it would be scored on misaligned columns.
    pub feature_names: Option<Vec<String>>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            n_bootstrap: 2000,
            seed: 0,
            n_threads: 0,
            record: true,
            feature_names: None,
        }
    }
}

/// One version's results.
#[derive(Debug, Clone)]
pub struct VersionEval {
    /// The version.
    pub version: u64,
    /// Its metrics.
    pub metrics: Metrics,
    /// Predicted universe codes per row.
    pub pred: Vec<u32>,
    /// Whether each row was predicted correctly.
    pub correct: Vec<bool>,
}

/// The comparison of several versions on one evaluation set.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// BLAKE3 fingerprint of the evaluation features and labels.
    pub eval_fingerprint: String,
    /// Rows evaluated.
    pub n_rows: u64,
    /// The label universe (sorted union of `y` and every version's classes).
    pub labels: Vec<Label>,
    /// Per-version results, ascending by version.
    pub evals: Vec<VersionEval>,
    /// The version with the highest accuracy (ties go to the newer version).
    pub best: u64,
    /// The version active when the comparison ran, if any.
    pub active: Option<u64>,
    /// Pairs computed up front: each version against the best and against the active one.
    pub highlights: Vec<Pairwise>,
    /// The `compare` event, if recorded.
    pub event_seq: Option<u64>,
    /// Why it was not recorded, if recording was asked for and failed (e.g. a read-only store).
    pub record_error: Option<String>,
    /// Bootstrap settings used for every pair.
    pub n_bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
}

impl Comparison {
    /// The results of one version.
    pub fn eval(&self, v: u64) -> Result<&VersionEval> {
        self.evals.iter().find(|e| e.version == v).ok_or_else(|| {
            WoodlotError::VersionNotFound(format!(
                "{} is not part of this comparison",
                version_name(v)
            ))
        })
    }

    /// The version a reference names within this comparison: a version number (`3`, `"v3"`),
    /// `"active"` (the version active when it ran) or `"best"`. Parsed by the store's one
    /// reference parser ([`Ref::parse`]); store aliases mean nothing here.
    pub fn resolve(&self, r: &Ref) -> Result<u64> {
        let v = match r {
            Ref::Number(n) => Some(*n),
            Ref::Active => self.active,
            Ref::Alias(a) if a == "best" => Some(self.best),
            _ => None,
        };
        match v {
            Some(v) if self.evals.iter().any(|e| e.version == v) => Ok(v),
            _ => Err(WoodlotError::VersionNotFound(format!(
                "{r} is not a version of this comparison ({})",
                self.evals
                    .iter()
                    .map(|e| version_name(e.version))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Paired statistics of `a` against `b`.
    pub fn pairwise(&self, a: u64, b: u64) -> Result<Pairwise> {
        if let Some(p) = self.highlights.iter().find(|p| p.a == a && p.b == b) {
            return Ok(p.clone());
        }
        let (ea, eb) = (self.eval(a)?, self.eval(b)?);
        Ok(pairwise(
            (a, &ea.pred, &ea.correct),
            (b, &eb.pred, &eb.correct),
            self.n_bootstrap,
            self.seed,
        ))
    }

    /// Metrics as JSON (labels as display strings for recall keys).
    fn metrics_json(&self, m: &Metrics, full: bool) -> Value {
        let mut o = json!({
            "accuracy": m.accuracy,
            "balanced_accuracy": m.balanced_accuracy,
            "macro_f1": m.macro_f1,
            "log_loss": m.log_loss,
            "n_unknown_labels": m.n_unknown_labels,
        });
        if full {
            let recall: Map<String, Value> = self
                .labels
                .iter()
                .zip(&m.per_class_recall)
                .map(|(l, r)| (l.display(), json!(r)))
                .collect();
            o["per_class_recall"] = Value::Object(recall);
            o["confusion_matrix"] = json!(m.confusion);
        }
        o
    }

    /// A pair as JSON; `rows` includes the row lists.
    pub fn pair_json(p: &Pairwise, rows: bool) -> Value {
        let mut v = json!({
            "a": version_name(p.a),
            "b": version_name(p.b),
            "n_rows": p.n_rows,
            "disagreements": p.disagreements,
            "n_a_only_correct": p.a_only_correct.len(),
            "n_b_only_correct": p.b_only_correct.len(),
            "accuracy_diff": p.accuracy_diff,
            "mcnemar_p": p.mcnemar_p,
            "ci_low": p.ci_low,
            "ci_high": p.ci_high,
            "n_bootstrap": p.n_bootstrap,
            "seed": p.seed,
        });
        if rows {
            v["a_only_correct"] = json!(p.a_only_correct);
            v["b_only_correct"] = json!(p.b_only_correct);
        }
        v
    }

    /// The whole comparison as JSON (what the Python wrapper reads); `full` adds per-class
    /// recall, confusion matrices and row lists, which the recorded event leaves out.
    pub fn to_json(&self, full: bool) -> Value {
        let metrics: Map<String, Value> = self
            .evals
            .iter()
            .map(|e| (version_name(e.version), self.metrics_json(&e.metrics, full)))
            .collect();
        json!({
            "eval_fingerprint": self.eval_fingerprint,
            "n_rows": self.n_rows,
            "labels": self.labels.iter().map(Label::to_json).collect::<Vec<_>>(),
            "versions": self.evals.iter().map(|e| version_name(e.version)).collect::<Vec<_>>(),
            "metrics": metrics,
            "best": version_name(self.best),
            "active": self.active.map(version_name),
            "pairwise": self.highlights.iter().map(|p| Self::pair_json(p, full)).collect::<Vec<_>>(),
            "event": self.event_seq,
            "record_error": self.record_error,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
        })
    }
}

/// Refuses evaluation columns that differ from the feature names version `v` was fitted with
/// (a version fitted without names, `null`, accepts any columns of the right count).
fn check_feature_names(v: u64, recorded: &Value, given: &[String]) -> Result<()> {
    let Some(arr) = recorded.as_array() else {
        return Ok(());
    };
    let fitted: Vec<String> = arr
        .iter()
        .map(|n| match n {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    if fitted == given {
        return Ok(());
    }
    fn show(names: &[&String]) -> String {
        let mut out: Vec<String> = names.iter().take(10).map(|n| format!("{n:?}")).collect();
        if names.len() > 10 {
            out.push(format!("... ({} in all)", names.len()));
        }
        format!("[{}]", out.join(", "))
    }
    let fitted_set: BTreeSet<&String> = fitted.iter().collect();
    let given_set: BTreeSet<&String> = given.iter().collect();
    let missing: Vec<&String> = fitted.iter().filter(|n| !given_set.contains(n)).collect();
    let extra: Vec<&String> = given.iter().filter(|n| !fitted_set.contains(n)).collect();
    let name = version_name(v);
    let detail = if missing.is_empty() && extra.is_empty() {
        let i = fitted
            .iter()
            .zip(given)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        format!(
            "the same names in another order (column {i} of X is {:?}, {name} expects {:?} there)",
            given.get(i).map(String::as_str).unwrap_or(""),
            fitted.get(i).map(String::as_str).unwrap_or("")
        )
    } else {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing from X: {}", show(&missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("not seen at fit: {}", show(&extra)));
        }
        parts.join("; ")
    };
    Err(WoodlotError::input(format!(
        "X's columns do not match the feature names {name} was fitted with: {detail}; it was not \
         scored (select and order X's columns as at fit)"
    )))
}

fn threads(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

impl Store {
    /// Compares versions (all live ones when `refs` is `None`) on `x` and `y`.
    pub fn compare(
        &self,
        x: ArrayView2<'_, f64>,
        y: &Labels,
        refs: Option<&[Ref]>,
        opts: &CompareOptions,
    ) -> Result<Comparison> {
        let n = x.nrows();
        if n == 0 {
            return Err(WoodlotError::input(
                "compare needs at least one evaluation row",
            ));
        }
        if y.len() != n {
            return Err(WoodlotError::input(format!(
                "X has {n} rows but y has {} labels",
                y.len()
            )));
        }
        let state = self.state()?;
        let versions: Vec<u64> = match refs {
            Some(rs) => {
                let set: Result<BTreeSet<u64>> =
                    rs.iter().map(|r| self.resolve_in(r, &state)).collect();
                set?.into_iter().collect()
            }
            None => self.listing_in(&state)?.live().collect(),
        };
        if versions.is_empty() {
            return Err(WoodlotError::VersionNotFound(
                "there are no versions to compare".into(),
            ));
        }

        if let Some(names) = &opts.feature_names {
            if names.len() != x.ncols() {
                return Err(WoodlotError::input(format!(
                    "X has {} columns but {} column names",
                    x.ncols(),
                    names.len()
                )));
            }
            // Every version is checked before any predicts: none is scored on misaligned data.
            for &v in &versions {
                check_feature_names(v, &self.manifest(v)?.model.feature_names, names)?;
            }
        }
        let mut probas = Vec::with_capacity(versions.len());
        let mut classes = Vec::with_capacity(versions.len());
        for &v in &versions {
            let m = self.manifest(v)?;
            if m.model.n_features as usize != x.ncols() {
                return Err(WoodlotError::input(format!(
                    "X has {} features but {} expects {}",
                    x.ncols(),
                    version_name(v),
                    m.model.n_features
                )));
            }
            let bytes = self.read_blob(v, &m.blob, "model")?;
            let (forest, _) = format::decode(&bytes).map_err(|e| about(v, e))?;
            // Metrics here are one label per row; a multi-output version is refused, naming it.
            forest
                .require_single_output(&format!("comparing {}", version_name(v)))
                .map_err(|e| about(v, e))?;
            classes.push(
                classes_from_json(&m.model.classes, forest.n_classes as usize)
                    .map_err(|e| about(v, e))?,
            );
            probas.push(
                crate::forest::Predictor::new(forest).predict_proba(x, threads(opts.n_threads))?,
            );
        }
        let universe = Universe::new(y, classes.iter().map(Vec::as_slice))?;
        let y_codes = universe.encode(y);
        let evals: Vec<VersionEval> = versions
            .iter()
            .zip(&probas)
            .zip(&classes)
            .map(|((&v, proba), cls)| {
                let map: Vec<u32> = cls
                    .iter()
                    .map(|c| universe.code(c).expect("in universe"))
                    .collect();
                let pred = predictions(proba.view(), &map);
                let metrics = evaluate(&y_codes, proba.view(), &map, &pred, universe.len());
                let correct = pred.iter().zip(&y_codes).map(|(p, t)| p == t).collect();
                VersionEval {
                    version: v,
                    metrics,
                    pred,
                    correct,
                }
            })
            .collect();

        let mut fp = Fingerprinter::new();
        fp.matrix("X", x);
        match y {
            Labels::Num(v) => fp.numbers("y", v.iter().copied()),
            Labels::Str(v) => fp.strings("y", v.iter().map(String::as_str)),
        };
        let best = evals
            .iter()
            .fold(&evals[0], |b, e| {
                if e.metrics.accuracy >= b.metrics.accuracy {
                    e
                } else {
                    b
                }
            })
            .version;
        let active = state.active;
        let mut cmp = Comparison {
            eval_fingerprint: fp.hex(),
            n_rows: n as u64,
            labels: universe.labels().to_vec(),
            evals,
            best,
            active,
            highlights: Vec::new(),
            event_seq: None,
            record_error: None,
            n_bootstrap: opts.n_bootstrap,
            seed: opts.seed,
        };
        let mut highlights = Vec::new();
        for &v in &versions {
            if v != best {
                highlights.push(cmp.pairwise(best, v)?);
            }
        }
        if let Some(a) = active.filter(|a| versions.contains(a) && *a != best) {
            for &v in &versions {
                // best-vs-active is already there (as best vs every other version).
                if v != a && v != best {
                    highlights.push(cmp.pairwise(v, a)?);
                }
            }
        }
        cmp.highlights = highlights;

        if opts.record {
            match self.record_comparison(&cmp) {
                Ok(seq) => cmp.event_seq = Some(seq),
                Err(WoodlotError::Io { context, source }) => {
                    cmp.record_error = Some(format!("{context}: {source}"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(cmp)
    }

    fn record_comparison(&self, cmp: &Comparison) -> Result<u64> {
        let details = cmp.to_json(false);
        let _lock = self.backend.lock()?;
        let ev = events::append(&*self.backend, |head| {
            Ok(Draft {
                kind: EventKind::Compare,
                version: None,
                reason: None,
                details: details.clone(),
                state: head.state(),
            })
        })?;
        Ok(ev.seq)
    }

    /// The evidence for version `v` from the newest `compare` event that included it (looking
    /// back at most 1,000 events), or `null`.
    pub(crate) fn last_comparison(&self, v: u64) -> Result<Value> {
        let head = events::head(&*self.backend)?;
        let name = version_name(v);
        let mut seq = head.seq;
        while seq > 0 && head.seq - seq < 1000 {
            if let Some((ev, _)) = events::read(&*self.backend, seq)? {
                if ev.kind == EventKind::Compare && ev.details["metrics"].get(&name).is_some() {
                    let pairs: Vec<Value> = ev.details["pairwise"]
                        .as_array()
                        .map(|ps| {
                            ps.iter()
                                .filter(|p| p["a"] == json!(name) || p["b"] == json!(name))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    return Ok(json!({
                        "compare_event": seq,
                        "time": ev.time,
                        "eval_fingerprint": ev.details["eval_fingerprint"],
                        "n_rows": ev.details["n_rows"],
                        "metrics": ev.details["metrics"],
                        "pairwise": pairs,
                    }));
                }
            }
            seq -= 1;
        }
        Ok(Value::Null)
    }
}
