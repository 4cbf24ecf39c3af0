//! The anytime-valid test on paired loss differences: a predictable plug-in empirical-Bernstein
//! confidence sequence (PrPl-EB; Waudby-Smith & Ramdas, "Estimating means of bounded random
//! variables by betting", JRSS-B 2023, Theorem 2; the empirical-Bernstein supermartingale of
//! Howard et al., "Time-uniform, nonparametric, nonasymptotic confidence sequences", 2021).
//!
//! Why this one: a guard looks at its evidence after every outcome, for as long as it runs. A
//! fixed-sample test re-run after each batch inflates false alarms (five looks at 5% give about
//! 14%); a confidence sequence holds at every time at once, so the probability that the
//! candidate is *ever* called worse when it is not stays at most `alpha`, however often anyone
//! checks. PrPl-EB adapts to the variance of the differences (paired losses of two similar
//! models vary little), costs O(1) per observation, and its bounds and e-values are closed
//! forms of five running sums, so a decision can be replayed from the log bit for bit.
//!
//! For observations `x_i` in `[0, 1]` with conditional mean `mu`:
//!
//! ```text
//! mu_hat_t    = (1/2 + sum_{i<=t} x_i) / (t + 1)           sigma2_t = (1/4 + sum_{i<=t} (x_i - mu_hat_i)^2) / (t + 1)
//! lambda_t    = min(1/2, sqrt(2 ln(1/alpha) / (sigma2_{t-1} t ln(1 + t))))      (predictable)
//! v_t         = 4 (x_t - mu_hat_{t-1})^2                   psi_E(l) = (-ln(1 - l) - l) / 4
//! ln E_t(m)   = sum lambda_i (x_i - m) - sum v_i psi_E(lambda_i)     (evidence that mu > m)
//! lower_t     = (sum lambda_i x_i - ln(1/alpha) - sum v_i psi_E(lambda_i)) / sum lambda_i
//! ```
//!
//! `E_t(m)` is a nonnegative supermartingale whenever `mu <= m`, so by Ville's inequality
//! `P(exists t: E_t(m) >= 1/alpha) <= alpha`; `lower_t > m` is the same event. The upper bound is
//! the mirror image (evidence that `mu < m`). Each side is a one-sided level-`alpha` sequence, so
//! `[lower, upper]` together cover `mu` at all times with probability at least `1 - 2 alpha`.

use crate::error::{Result, WoodlotError};

/// The largest bet: `lambda <= 1/2` keeps `psi_E` moderate (the paper's choice).
pub const TRUNCATION: f64 = 0.5;

/// `psi_E(lambda) = (-ln(1 - lambda) - lambda) / 4`.
pub fn psi_e(lambda: f64) -> f64 {
    (-(-lambda).ln_1p() - lambda) / 4.0
}

/// A running PrPl-EB confidence sequence for the mean of observations in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EbConfSeq {
    log_inv_alpha: f64,
    t: u64,
    sum_x: f64,
    sum_sq: f64,
    sum_lambda: f64,
    sum_lambda_x: f64,
    sum_v_psi: f64,
}

impl EbConfSeq {
    /// A sequence at level `alpha` (each side), with no observations yet.
    pub fn new(alpha: f64) -> Result<Self> {
        check_alpha(alpha)?;
        Ok(Self {
            log_inv_alpha: (1.0 / alpha).ln(),
            t: 0,
            sum_x: 0.0,
            sum_sq: 0.0,
            sum_lambda: 0.0,
            sum_lambda_x: 0.0,
            sum_v_psi: 0.0,
        })
    }

    /// Observations so far.
    pub fn len(&self) -> u64 {
        self.t
    }

    /// Whether nothing was observed yet.
    pub fn is_empty(&self) -> bool {
        self.t == 0
    }

    fn mu_hat(&self) -> f64 {
        (0.5 + self.sum_x) / (self.t as f64 + 1.0)
    }

    fn sigma2_hat(&self) -> f64 {
        (0.25 + self.sum_sq) / (self.t as f64 + 1.0)
    }

    /// The bet for the next observation, from the past only.
    pub fn next_lambda(&self) -> f64 {
        let t = self.t as f64 + 1.0;
        let l = (2.0 * self.log_inv_alpha / (self.sigma2_hat() * t * (1.0 + t).ln())).sqrt();
        if l.is_finite() {
            l.min(TRUNCATION)
        } else {
            TRUNCATION
        }
    }

    /// Adds one observation; values outside `[0, 1]` (rounding) are clamped.
    pub fn push(&mut self, x: f64) {
        let x = if x.is_nan() { 0.5 } else { x.clamp(0.0, 1.0) };
        let lambda = self.next_lambda();
        let v = 4.0 * (x - self.mu_hat()).powi(2);
        self.sum_lambda += lambda;
        self.sum_lambda_x += lambda * x;
        self.sum_v_psi += v * psi_e(lambda);
        self.t += 1;
        self.sum_x += x;
        let mu_now = self.mu_hat();
        self.sum_sq += (x - mu_now).powi(2);
    }

    /// The running mean of the observations (0.5 before any).
    pub fn mean(&self) -> f64 {
        if self.t == 0 {
            0.5
        } else {
            self.sum_x / self.t as f64
        }
    }

    /// The lower confidence bound (0 before any observation).
    pub fn lower(&self) -> f64 {
        if self.sum_lambda <= 0.0 {
            return 0.0;
        }
        ((self.sum_lambda_x - self.log_inv_alpha - self.sum_v_psi) / self.sum_lambda).max(0.0)
    }

    /// The upper confidence bound (1 before any observation).
    pub fn upper(&self) -> f64 {
        if self.sum_lambda <= 0.0 {
            return 1.0;
        }
        ((self.sum_lambda_x + self.log_inv_alpha + self.sum_v_psi) / self.sum_lambda).min(1.0)
    }

    /// `ln E_t(m)`: the log e-value against "the mean is at most `m`".
    pub fn log_e_above(&self, m: f64) -> f64 {
        self.sum_lambda_x - m * self.sum_lambda - self.sum_v_psi
    }

    /// The log e-value against "the mean is at least `m`".
    pub fn log_e_below(&self, m: f64) -> f64 {
        m * self.sum_lambda - self.sum_lambda_x - self.sum_v_psi
    }
}

/// `alpha` must be a probability strictly between 0 and 1/2.
pub fn check_alpha(alpha: f64) -> Result<()> {
    if alpha.is_finite() && alpha > 0.0 && alpha < 0.5 {
        Ok(())
    } else {
        Err(WoodlotError::param(
            "alpha",
            format!("alpha must be in (0, 0.5), e.g. 0.05; got {alpha}"),
        ))
    }
}
