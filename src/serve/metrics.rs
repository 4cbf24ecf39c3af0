//! The HTTP server's counters and their rendering in Prometheus' text exposition format
//! (`GET /metrics`).
//!
//! Counting is a handful of relaxed atomic adds per request, so it never contends with
//! scoring; the live model's own numbers (served version, swaps, refusals, failed checks,
//! staleness) come from its [`Status`] at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::guard::psi::Drift;
use crate::guard::{DecisionKind, Status as GuardStatus};
use crate::serve::guarded::GuardCounters;
use crate::serve::Status;

/// Every value of the `woodlot_guard_decision` state gauge (`none`: running, or no guard).
pub const DECISIONS: [&str; 7] = [
    "none",
    "rolled_back",
    "dropped",
    "confirmed",
    "promoted",
    "superseded",
    "stopped",
];

/// Appends the guard's gauges to `out`: from `st`, the follower's status as of its last round
/// (zeros when the server has seen no guard), and its counters.
pub fn render_guard(out: &mut String, st: Option<&GuardStatus>, c: &GuardCounters) {
    let num = |f: fn(&GuardStatus) -> f64| st.map_or(0.0, f);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    let gauges: [(&str, &str, &str, f64); 17] = [
        (
            "guard_id",
            "gauge",
            "The guard followed (0: none seen).",
            num(|s| s.spec.guard as f64),
        ),
        (
            "guard_running",
            "gauge",
            "1 while a guard runs and requests are scored through it.",
            num(|s| f64::from(u8::from(s.running))),
        ),
        (
            "guard_candidate_version",
            "gauge",
            "The guard's candidate version (0: none).",
            num(|s| s.spec.candidate as f64),
        ),
        (
            "guard_baseline_version",
            "gauge",
            "The guard's baseline version (0: none).",
            num(|s| s.spec.baseline as f64),
        ),
        (
            "guard_predictions_logged",
            "gauge",
            "Prediction rows in the guard's log (all servers).",
            num(|s| s.predictions_logged as f64),
        ),
        (
            "guard_outcomes_joined",
            "gauge",
            "Outcomes joined to a logged prediction: the test's sample size.",
            num(|s| s.outcomes_joined as f64),
        ),
        (
            "guard_outcomes_unknown",
            "gauge",
            "Outcomes whose request id has no logged prediction.",
            num(|s| s.outcomes_unmatched as f64),
        ),
        (
            "guard_outcomes_duplicate",
            "gauge",
            "Outcomes recorded again for an id (the first counts).",
            num(|s| s.duplicate_outcomes as f64),
        ),
        (
            "guard_estimate",
            "gauge",
            "Mean loss difference, candidate minus baseline (positive: candidate worse).",
            num(|s| s.evidence.estimate),
        ),
        (
            "guard_interval_lower",
            "gauge",
            "Lower anytime-valid confidence bound on the difference.",
            num(|s| s.evidence.lower),
        ),
        (
            "guard_interval_upper",
            "gauge",
            "Upper anytime-valid confidence bound on the difference.",
            num(|s| s.evidence.upper),
        ),
        (
            "guard_e_value",
            "gauge",
            "Evidence that the candidate is worse (rollback at 1/alpha).",
            num(|s| s.evidence.e_value),
        ),
        (
            "guard_feedback_recorded_total",
            "counter",
            "Outcomes POST /feedback recorded on this server.",
            load(&c.feedback_recorded),
        ),
        (
            "guard_feedback_unknown_total",
            "counter",
            "Of those, ids with no logged prediction when recorded.",
            load(&c.feedback_unknown),
        ),
        (
            "guard_feedback_duplicate_total",
            "counter",
            "Outcomes POST /feedback skipped: the id already had one.",
            load(&c.feedback_duplicate),
        ),
        (
            "guard_checks_total",
            "counter",
            "Guard checks run by this server.",
            c.checks.load(Ordering::Relaxed) as f64,
        ),
        (
            "guard_score_fallbacks_total",
            "counter",
            "Requests answered without the guard because it could not score them.",
            c.score_fallbacks.load(Ordering::Relaxed) as f64,
        ),
    ];
    for (name, kind, help, v) in gauges {
        let _ = writeln!(
            out,
            "# HELP woodlot_{name} {help}\n# TYPE woodlot_{name} {kind}\nwoodlot_{name} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP woodlot_guard_failed_checks_total Guard checks that failed.\n\
         # TYPE woodlot_guard_failed_checks_total counter\n\
         woodlot_guard_failed_checks_total {}",
        c.failed_checks.load(Ordering::Relaxed)
    );
    let decided = st
        .and_then(|s| s.decision.as_ref())
        .map_or("none", |d| DecisionKind::as_str(d.decision));
    let _ = writeln!(
        out,
        "# HELP woodlot_guard_decision The guard's decision (1 on the current one).\n\
         # TYPE woodlot_guard_decision gauge"
    );
    for d in DECISIONS {
        let _ = writeln!(
            out,
            "woodlot_guard_decision{{decision=\"{d}\"}} {}",
            u8::from(d == decided)
        );
    }
    render_drift(out, st.and_then(|s| s.drift.as_ref()));
}

/// Appends the drift early warning: the PSI of each feature (by column index) of the rows the
/// guard scored against the baseline's training histogram, how many features pass the
/// threshold, and how many rows were counted. Without a report (no guard, or a baseline with
/// no histogram) the counts are 0 and no per-feature series is written, so an alert on
/// `woodlot_guard_drift_flagged_features > 0` never fires on missing data.
pub fn render_drift(out: &mut String, drift: Option<&Drift>) {
    per_feature_gauge(
        out,
        "woodlot_guard_drift_psi",
        "Population stability index of each feature (column index) of the rows the guard \
         scored, against the baseline's training histogram.",
        drift.map(|d| d.psi.as_slice()),
    );
    per_feature_gauge(
        out,
        "woodlot_guard_drift_p_value",
        "Chi-square p-value of each feature's live counts against the training histogram's \
         (small: unlikely to be sampling noise).",
        drift.map(|d| d.p_value.as_slice()),
    );
    let flagged = drift.map_or(0, |d| d.flagged.len());
    let rows = drift.map_or(0, |d| d.rows);
    let threshold = drift.map_or(0.0, |d| d.threshold);
    let _ = writeln!(
        out,
        "# HELP woodlot_guard_drift_flagged_features Features whose PSI passes the threshold \
         with a p-value below 0.01 over the feature count (a warning, never a rollback).\n\
         # TYPE woodlot_guard_drift_flagged_features gauge\n\
         woodlot_guard_drift_flagged_features {flagged}\n\
         # HELP woodlot_guard_drift_threshold The PSI above which a feature is flagged.\n\
         # TYPE woodlot_guard_drift_threshold gauge\n\
         woodlot_guard_drift_threshold {threshold}\n\
         # HELP woodlot_guard_drift_rows Rows counted into the drift report.\n\
         # TYPE woodlot_guard_drift_rows gauge\n\
         woodlot_guard_drift_rows {rows}"
    );
}

/// A gauge with one series per feature (labelled by column index): its HELP and TYPE lines
/// always, its series only when there are values.
fn per_feature_gauge(out: &mut String, name: &str, help: &str, values: Option<&[f64]>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (feature, v) in values.unwrap_or_default().iter().enumerate() {
        let _ = writeln!(out, "{name}{{feature=\"{feature}\"}} {v}");
    }
}

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.25, 1.0, 5.0,
];
/// Status codes counted one by one; anything else is counted as `other`.
pub const CODES: [u16; 10] = [200, 400, 404, 405, 408, 413, 415, 500, 503, 429];

/// Requests, rows and latencies since the server started.
#[derive(Default)]
pub struct Counters {
    by_code: [AtomicU64; CODES.len() + 1],
    rows: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_micros: AtomicU64,
    in_flight: AtomicU64,
}

impl Counters {
    /// Counts one answered request.
    pub fn record(&self, code: u16, seconds: f64) {
        let i = CODES.iter().position(|&c| c == code).unwrap_or(CODES.len());
        self.by_code[i].fetch_add(1, Ordering::Relaxed);
        let b = LATENCY_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[b].fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Counts rows scored.
    pub fn scored(&self, rows: usize) {
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// A request started (`+1`) or ended (`-1`): the in-flight gauge.
    pub fn in_flight(&self, started: bool) {
        if started {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
        } else {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The exposition text, with the live model's status `st`.
    pub fn render(&self, st: &Status) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP woodlot_requests_total HTTP requests answered, by status code.\n\
             # TYPE woodlot_requests_total counter"
        );
        for (i, n) in self.by_code.iter().enumerate() {
            let code = CODES.get(i).map_or("other".to_string(), |c| c.to_string());
            let _ = writeln!(
                out,
                "woodlot_requests_total{{code=\"{code}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP woodlot_request_seconds Time to answer a request.\n\
             # TYPE woodlot_request_seconds histogram"
        );
        let mut cumulative = 0;
        for (i, n) in self.latency.iter().enumerate() {
            cumulative += n.load(Ordering::Relaxed);
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "woodlot_request_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "woodlot_request_seconds_sum {}\nwoodlot_request_seconds_count {cumulative}",
            self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let gauges: [(&str, &str, &str, f64); 8] = [
            (
                "rows_scored_total",
                "counter",
                "Rows scored.",
                self.rows.load(Ordering::Relaxed) as f64,
            ),
            (
                "requests_in_flight",
                "gauge",
                "Requests being answered now.",
                self.in_flight.load(Ordering::Relaxed) as f64,
            ),
            (
                "served_version",
                "gauge",
                "The version served (0: none).",
                st.version.unwrap_or(0) as f64,
            ),
            (
                "swaps_total",
                "counter",
                "Times the served model was replaced.",
                st.swaps as f64,
            ),
            (
                "refused_swaps_total",
                "counter",
                "Targets refused because they failed to load or verify.",
                st.refused_swaps as f64,
            ),
            (
                "checks_total",
                "counter",
                "Store checks made.",
                st.checks as f64,
            ),
            (
                "failed_checks_total",
                "counter",
                "Store checks that failed.",
                st.failed_checks as f64,
            ),
            (
                "seconds_since_last_successful_check",
                "gauge",
                "Staleness of the served version.",
                st.staleness_seconds,
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP woodlot_{name} {help}\n# TYPE woodlot_{name} {kind}\nwoodlot_{name} {v}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_rendered_per_feature_and_zero_without_a_report() {
        let mut out = String::new();
        render_drift(&mut out, None);
        assert!(out
            .lines()
            .any(|l| l == "woodlot_guard_drift_flagged_features 0"));
        assert!(out.lines().any(|l| l == "woodlot_guard_drift_rows 0"));
        assert!(!out.contains("woodlot_guard_drift_psi{"), "{out}");

        let report = Drift {
            psi: vec![0.01, 0.75, 0.0],
            p_value: vec![0.9, 1e-9, 1.0],
            flagged: vec![1],
            threshold: 0.2,
            rows: 40,
        };
        let mut out = String::new();
        render_drift(&mut out, Some(&report));
        for line in [
            "woodlot_guard_drift_psi{feature=\"0\"} 0.01",
            "woodlot_guard_drift_psi{feature=\"1\"} 0.75",
            "woodlot_guard_drift_psi{feature=\"2\"} 0",
            "woodlot_guard_drift_p_value{feature=\"1\"} 0.000000001",
            "woodlot_guard_drift_flagged_features 1",
            "woodlot_guard_drift_threshold 0.2",
            "woodlot_guard_drift_rows 40",
            "# TYPE woodlot_guard_drift_psi gauge",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
        }
    }
}
