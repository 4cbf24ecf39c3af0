//! The sequential McNemar test: an e-process on the discordant pairs.
//!
//! On a row where exactly one model is right, let the pair count against the candidate when the
//! baseline is the one that is right (`b`) and for it otherwise (`c`). Equal accuracy means
//! each discordant pair is a fair coin; the candidate being worse means the coin favours `b`.
//! For any `p > 1/2` the likelihood ratio `(2p)^b (2(1-p))^c` is a nonnegative supermartingale
//! under every `P(b) <= 1/2` (its one-step mean is `2(p q + (1-p)(1-q)) <= 1` for `q <= 1/2`), and
//! so is any average of such ratios. The e-process here averages a fixed grid of alternatives,
//! dense near 1/2 where small regressions live:
//!
//! ```text
//! E(b, c) = (1/K) sum_k (2 p_k)^b (2 (1 - p_k))^c,   p_k = 1/2 + 0.3 (k/K)^2,  k = 1..K, K = 32
//! ```
//!
//! Rejecting when `E >= 1/alpha` (Ville) calls an equally good candidate worse with probability at
//! most `alpha`, however often it is checked: the sequential form of McNemar's test. Rows where
//! both models agree carry no information on the difference and leave `E` unchanged, exactly as
//! in the fixed-sample test.

use std::sync::OnceLock;

/// Number of alternatives in the mixture.
pub const GRID: usize = 32;

/// The alternatives `p_k`.
pub fn grid() -> [f64; GRID] {
    let mut g = [0.0; GRID];
    for (k, p) in g.iter_mut().enumerate() {
        let r = (k as f64 + 1.0) / GRID as f64;
        *p = 0.5 + 0.3 * r * r;
    }
    g
}

/// `(ln 2 p_k, ln 2 (1 - p_k))` for every alternative, computed once.
fn log_ratios() -> &'static [(f64, f64); GRID] {
    static LOGS: OnceLock<[(f64, f64); GRID]> = OnceLock::new();
    LOGS.get_or_init(|| {
        let g = grid();
        let mut out = [(0.0, 0.0); GRID];
        for (o, p) in out.iter_mut().zip(g) {
            *o = ((2.0 * p).ln(), (2.0 * (1.0 - p)).ln());
        }
        out
    })
}

/// `ln E(b, c)`, computed stably (log-sum-exp over the grid).
pub fn log_e_value(b: u64, c: u64) -> f64 {
    let (b, c) = (b as f64, c as f64);
    let mut terms = [0.0; GRID];
    for (t, (lp, lq)) in terms.iter_mut().zip(log_ratios()) {
        *t = b * lp + c * lq;
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    max + (terms.iter().map(|t| (t - max).exp()).sum::<f64>() / GRID as f64).ln()
}
