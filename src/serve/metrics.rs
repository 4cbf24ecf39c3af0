//! The HTTP server's counters and their rendering in Prometheus' text exposition format
//! (`GET /metrics`).
//!
//! Counting is a handful of relaxed atomic adds per request, so it never contends with
//! scoring; the live model's own numbers (served version, swaps, refusals, failed checks,
//! staleness) come from its [`Status`] at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::serve::Status;

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
