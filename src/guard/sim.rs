//! Label-stream simulations of the decision rule: how often an equally good candidate is
//! rolled back, and how many outcomes a regression takes to detect.
//!
//! Each stream draws rows on which the two models' errors are correlated as real models'
//! are: most rows both get right or both get wrong, and only a fraction `discordance` (plus
//! the accuracy difference) separates them. For log-loss the models' confidences share a
//! per-row difficulty, so their losses move together too. The test is checked after every
//! outcome, exactly as a guard's replay checks it.

use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};
use crate::guard::decide::{Pair, Sequential, TestSpec, Verdict};
use crate::rng::Rng;

/// One simulation's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimSpec {
    /// Independent label streams.
    pub streams: usize,
    /// Outcomes per stream at most (a stream stops at its decision).
    pub max_outcomes: u64,
    /// The test.
    pub test: TestSpec,
    /// The baseline's accuracy.
    pub base_accuracy: f64,
    /// How much less accurate the candidate is (0.03 = three points worse; negative: better).
    pub delta: f64,
    /// The fraction of rows where exactly one model is right, when they are equally good.
    pub discordance: f64,
    /// The seed (streams are reproducible).
    pub seed: u64,
}

/// What the streams did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimResult {
    /// Streams run.
    pub streams: u64,
    /// Streams that ended with "worse".
    pub rolled_back: u64,
    /// Streams that ended with "not worse".
    pub confirmed: u64,
    /// Streams with no decision within `max_outcomes`.
    pub undecided: u64,
    /// For each "worse" stream, the outcomes it took.
    pub rollback_at: Vec<u64>,
    /// For each "not worse" stream, the outcomes it took.
    pub confirm_at: Vec<u64>,
}

/// One stream's rows: correlated correctness and confidences of the two models.
struct Stream {
    rng: Rng,
    test: TestSpec,
    p11: f64,
    p10: f64,
    p01: f64,
}

impl Stream {
    fn new(spec: &SimSpec, index: u64) -> Result<Self> {
        let q = spec.discordance;
        let p10 = (q + spec.delta) / 2.0; // baseline right, candidate wrong
        let p01 = (q - spec.delta) / 2.0; // candidate right, baseline wrong
        let p11 = spec.base_accuracy - p10;
        let p00 = 1.0 - p11 - p10 - p01;
        if [p10, p01, p11, p00]
            .iter()
            .any(|p| !(0.0..=1.0).contains(p))
            || spec.streams == 0
        {
            return Err(WoodlotError::input(format!(
                "no joint distribution has baseline accuracy {}, difference {} and discordance \
                 {q} (need |delta| <= discordance <= 2 min(accuracy, 1 - accuracy)), or no \
                 streams",
                spec.base_accuracy, spec.delta
            )));
        }
        Ok(Self {
            rng: Rng::new(spec.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            test: spec.test,
            p11,
            p10,
            p01,
        })
    }

    fn next_pair(&mut self) -> Pair {
        let rng = &mut self.rng;
        let u = rng.unit_f64();
        let (cb, cc) = if u < self.p11 {
            (true, true)
        } else if u < self.p11 + self.p10 {
            (true, false)
        } else if u < self.p11 + self.p10 + self.p01 {
            (false, true)
        } else {
            (false, false)
        };
        let difficulty = rng.unit_f64();
        let proba = |right: bool, rng: &mut Rng| -> [f32; 2] {
            let conf = (0.8 * difficulty + 0.2 * rng.unit_f64()).clamp(0.0, 1.0);
            let p = if right {
                0.5 + 0.49 * conf + 0.005
            } else {
                0.495 * (1.0 - conf)
            };
            [(1.0 - p) as f32, p as f32]
        };
        let pb = proba(cb, rng);
        let pc = proba(cc, rng);
        Pair::score(&self.test, &pc, &pb, Some(1))
    }
}

/// One point of a traced stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    /// Outcomes so far.
    pub outcomes: u64,
    /// The running mean difference.
    pub estimate: f64,
    /// Lower confidence bound.
    pub lower: f64,
    /// Upper confidence bound.
    pub upper: f64,
    /// The e-value against "not worse".
    pub e_value: f64,
    /// The verdict at this point.
    pub verdict: Verdict,
}

/// Stream 0 of `spec`, with the evidence every `every` outcomes (and at the decision), until
/// the decision or `max_outcomes`: the picture of one guard's evidence over time.
pub fn trace(spec: &SimSpec, every: u64) -> Result<Vec<TracePoint>> {
    let mut stream = Stream::new(spec, 0)?;
    let mut test = Sequential::new(spec.test)?;
    let mut out = Vec::new();
    for n in 1..=spec.max_outcomes {
        let v = test.push(stream.next_pair());
        if n % every.max(1) == 0 || v != Verdict::Continue {
            let e = test.evidence();
            out.push(TracePoint {
                outcomes: n,
                estimate: e.estimate,
                lower: e.lower,
                upper: e.upper,
                e_value: e.e_value,
                verdict: v,
            });
        }
        if v != Verdict::Continue {
            break;
        }
    }
    Ok(out)
}

/// Runs the simulation.
pub fn simulate(spec: &SimSpec) -> Result<SimResult> {
    Stream::new(spec, 0)?;
    let mut out = SimResult {
        streams: spec.streams as u64,
        ..SimResult::default()
    };
    for s in 0..spec.streams {
        let mut stream = Stream::new(spec, s as u64)?;
        let mut test = Sequential::new(spec.test)?;
        let mut verdict = Verdict::Continue;
        let mut n = 0;
        while n < spec.max_outcomes && verdict == Verdict::Continue {
            verdict = test.push(stream.next_pair());
            n += 1;
        }
        match verdict {
            Verdict::Worse => {
                out.rolled_back += 1;
                out.rollback_at.push(n);
            }
            Verdict::NotWorse => {
                out.confirmed += 1;
                out.confirm_at.push(n);
            }
            Verdict::Continue => out.undecided += 1,
        }
    }
    Ok(out)
}
