//! The decision: paired per-row losses in, "worse", "not worse" or "not yet" out, with the
//! evidence at that moment.
//!
//! Each joined outcome gives one pair: the candidate's and the baseline's loss on the same row.
//! The difference `d = loss(candidate) - loss(baseline)` is bounded (log-loss is computed on
//! probabilities clipped to `[clip, 1]`, so a loss lies in `[0, -ln clip]`; a 0/1 error in
//! `[0, 1]`), which is what makes a nonparametric anytime-valid test possible:
//!
//! - **worse** (`H0: E[d] <= margin` rejected): the PrPl-EB lower bound on `E[d]` exceeds the
//!   margin (equivalently its e-value reaches `1/alpha`); for `metric="accuracy"` with
//!   `margin == 0`, the sequential McNemar e-value on the discordant pairs reaches `1/alpha`
//!   instead (McNemar's conditional test is the sharper one there, and tests no margin);
//! - **not worse** (confirmed): at least `min_outcomes` pairs and the upper bound on `E[d]` below
//!   the margin.
//!
//! Exactly one test decides "worse" in each configuration, so the promise is simple: an equally
//! good (or better) candidate is ever called worse with probability at most `alpha`. The
//! decision is taken at the *first* pair where a boundary is crossed and frozen there, so it
//! does not depend on how often anyone checks: replaying the same log gives the same answer.

use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};
use crate::guard::confseq::{check_alpha, EbConfSeq};
use crate::guard::mcnemar;

/// Default clipping of probabilities for log-loss (the loss is then at most `ln 1000` = 6.9).
pub const DEFAULT_CLIP: f64 = 1e-3;

/// What a guard compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Log-loss of the true class's clipped probability.
    LogLoss,
    /// 0/1 error of the predicted class.
    Accuracy,
}

impl Metric {
    /// Parses `"log_loss"` or `"accuracy"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "log_loss" => Ok(Metric::LogLoss),
            "accuracy" => Ok(Metric::Accuracy),
            other => Err(WoodlotError::param(
                "metric",
                format!("metric must be \"log_loss\" or \"accuracy\", not {other:?}"),
            )),
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::LogLoss => "log_loss",
            Metric::Accuracy => "accuracy",
        }
    }
}

/// The test's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestSpec {
    /// What is compared.
    pub metric: Metric,
    /// The false-rollback probability promised.
    pub alpha: f64,
    /// Tolerance: the candidate is "worse" only when its mean loss exceeds the baseline's by
    /// more than this (log-loss units, or accuracy points as a fraction).
    pub margin: f64,
    /// Fewest joined outcomes before "not worse" may be confirmed.
    pub min_outcomes: u64,
    /// Log-loss clipping (probabilities below it count as it).
    pub clip: f64,
}

impl TestSpec {
    /// Checks every setting.
    pub fn check(&self) -> Result<()> {
        check_alpha(self.alpha)?;
        if !(self.clip.is_finite() && self.clip > 0.0 && self.clip < 0.5) {
            return Err(WoodlotError::param(
                "clip",
                format!("clip must be in (0, 0.5), e.g. 0.001; got {}", self.clip),
            ));
        }
        let bound = self.loss_bound();
        if !(self.margin.is_finite() && self.margin >= 0.0 && self.margin < bound) {
            return Err(WoodlotError::param(
                "margin",
                format!(
                    "margin must be >= 0 and below the largest loss difference ({bound:.4} for \
                     {}); got {}",
                    self.metric.as_str(),
                    self.margin
                ),
            ));
        }
        Ok(())
    }

    /// The largest loss: `-ln clip` for log-loss, 1 for accuracy.
    pub fn loss_bound(&self) -> f64 {
        match self.metric {
            Metric::LogLoss => -self.clip.ln(),
            Metric::Accuracy => 1.0,
        }
    }

    /// Whether the sequential McNemar test decides "worse".
    pub fn uses_mcnemar(&self) -> bool {
        self.metric == Metric::Accuracy && self.margin == 0.0
    }
}

/// One joined outcome: both models' loss and correctness on the same row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// The candidate's loss under the guard's metric.
    pub loss_candidate: f64,
    /// The baseline's loss.
    pub loss_baseline: f64,
    /// Whether the candidate predicted the true class.
    pub correct_candidate: bool,
    /// Whether the baseline did.
    pub correct_baseline: bool,
}

impl Pair {
    /// The pair for one row: each model's class probabilities and the true class's index
    /// (`None`: a label neither model knows, which both get wrong with the largest loss).
    pub fn score(
        spec: &TestSpec,
        candidate: &[f32],
        baseline: &[f32],
        truth: Option<usize>,
    ) -> Self {
        let loss = |p: &[f32]| -> (f64, bool) {
            let Some(k) = truth else {
                return (spec.loss_bound(), false);
            };
            let correct = argmax(p) == Some(k);
            match spec.metric {
                Metric::Accuracy => (if correct { 0.0 } else { 1.0 }, correct),
                Metric::LogLoss => {
                    let q = p.get(k).map_or(0.0, |v| f64::from(*v));
                    let q = if q.is_finite() {
                        q.clamp(spec.clip, 1.0)
                    } else {
                        spec.clip
                    };
                    (-q.ln(), correct)
                }
            }
        };
        let (lc, cc) = loss(candidate);
        let (lb, cb) = loss(baseline);
        Pair {
            loss_candidate: lc,
            loss_baseline: lb,
            correct_candidate: cc,
            correct_baseline: cb,
        }
    }
}

/// Index of the largest value, the first on ties (as `Predictor::predict`).
pub fn argmax(p: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, v) in p.iter().enumerate() {
        if best.is_none_or(|(_, b)| *v > b) {
            best = Some((i, *v));
        }
    }
    best.map(|(i, _)| i)
}

/// What the evidence says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Not enough evidence either way yet.
    Continue,
    /// The candidate is significantly worse than the baseline (by more than the margin).
    Worse,
    /// The candidate is significantly not worse (after `min_outcomes`).
    NotWorse,
}

/// The evidence at one moment: what status shows and what a decision event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The verdict.
    pub verdict: Verdict,
    /// Joined outcomes the evidence is computed from (at the decision: the pairs up to it).
    pub outcomes: u64,
    /// Mean of `loss(candidate) - loss(baseline)` (for accuracy: baseline accuracy minus
    /// candidate accuracy; positive means the candidate is worse).
    pub estimate: f64,
    /// Lower confidence bound on the mean difference (level `alpha`, anytime-valid).
    pub lower: f64,
    /// Upper confidence bound.
    pub upper: f64,
    /// The e-value against "the candidate is not worse than the margin" (the rollback side).
    pub e_value: f64,
    /// Its natural logarithm (finite where `e_value` overflows).
    pub log_e_value: f64,
    /// The e-value against "the candidate is worse" (the confirmation side).
    pub e_value_not_worse: f64,
    /// Discordant pairs where only the baseline was right.
    pub baseline_only_right: u64,
    /// Discordant pairs where only the candidate was right.
    pub candidate_only_right: u64,
    /// The sequential McNemar e-value on those pairs (against "the candidate is not worse").
    pub mcnemar_e_value: f64,
    /// Which test decides "worse": `"mcnemar"` or `"empirical_bernstein"`.
    pub test: String,
    /// The rejection threshold `1/alpha`.
    pub threshold: f64,
}

/// The sequential test over a stream of pairs, frozen at the first crossing.
#[derive(Debug, Clone)]
pub struct Sequential {
    spec: TestSpec,
    cs: EbConfSeq,
    n: u64,
    sum_d: f64,
    b: u64,
    c: u64,
    decided: Option<Evidence>,
}

impl Sequential {
    /// A test with no pairs yet.
    pub fn new(spec: TestSpec) -> Result<Self> {
        spec.check()?;
        Ok(Self {
            cs: EbConfSeq::new(spec.alpha)?,
            spec,
            n: 0,
            sum_d: 0.0,
            b: 0,
            c: 0,
            decided: None,
        })
    }

    /// The settings.
    pub fn spec(&self) -> &TestSpec {
        &self.spec
    }

    /// Adds one pair; returns the verdict (after a decision, the frozen one).
    pub fn push(&mut self, p: Pair) -> Verdict {
        if let Some(e) = &self.decided {
            return e.verdict;
        }
        let bound = self.spec.loss_bound();
        let d = (p.loss_candidate - p.loss_baseline).clamp(-bound, bound);
        self.n += 1;
        self.sum_d += d;
        self.cs.push((d + bound) / (2.0 * bound));
        match (p.correct_baseline, p.correct_candidate) {
            (true, false) => self.b += 1,
            (false, true) => self.c += 1,
            _ => {}
        }
        let e = self.evidence_now();
        if e.verdict != Verdict::Continue {
            self.decided = Some(e.clone());
        }
        e.verdict
    }

    /// Whether a boundary was crossed.
    pub fn decided(&self) -> Option<&Evidence> {
        self.decided.as_ref()
    }

    /// The evidence: frozen at the decision if there was one, else as of now.
    pub fn evidence(&self) -> Evidence {
        self.decided.clone().unwrap_or_else(|| self.evidence_now())
    }

    fn to_d(&self, x: f64) -> f64 {
        let bound = self.spec.loss_bound();
        x * 2.0 * bound - bound
    }

    fn evidence_now(&self) -> Evidence {
        let s = &self.spec;
        let bound = s.loss_bound();
        let m_x = (s.margin + bound) / (2.0 * bound);
        let threshold = 1.0 / s.alpha;
        let log_thr = threshold.ln();
        let log_mc = mcnemar::log_e_value(self.b, self.c);
        let log_eb = self.cs.log_e_above(m_x);
        let log_e = if s.uses_mcnemar() { log_mc } else { log_eb };
        let log_nw = self.cs.log_e_below(m_x);
        let (lower, upper) = if self.n == 0 {
            (-bound, bound)
        } else {
            (self.to_d(self.cs.lower()), self.to_d(self.cs.upper()))
        };
        let verdict = if self.n > 0 && log_e >= log_thr {
            Verdict::Worse
        } else if self.n >= s.min_outcomes.max(1) && upper < s.margin {
            Verdict::NotWorse
        } else {
            Verdict::Continue
        };
        Evidence {
            verdict,
            outcomes: self.n,
            estimate: if self.n == 0 {
                0.0
            } else {
                self.sum_d / self.n as f64
            },
            lower,
            upper,
            e_value: capped_exp(log_e),
            log_e_value: log_e,
            e_value_not_worse: capped_exp(log_nw),
            baseline_only_right: self.b,
            candidate_only_right: self.c,
            mcnemar_e_value: capped_exp(log_mc),
            test: if s.uses_mcnemar() {
                "mcnemar".into()
            } else {
                "empirical_bernstein".into()
            },
            threshold,
        }
    }
}

/// `exp`, capped at `f64::MAX` so that the evidence always serialises as a JSON number.
fn capped_exp(x: f64) -> f64 {
    x.exp().min(f64::MAX)
}
