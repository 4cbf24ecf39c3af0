//! What a live model reports about itself.
//!
//! [`Status`] is a snapshot for dashboards and health checks. [`Notice`]s are the events worth
//! a log line (a swap, a refused target, the first failed check of a streak, the recovery):
//! the watcher thread records them in a small ring with increasing sequence numbers, so a
//! caller that cannot run code on the watcher thread (Python: the watcher never touches the
//! interpreter) fetches the ones it has not seen yet and logs them itself, at call time.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How many notices are kept for callers that have not fetched them yet.
pub const NOTICE_RING: usize = 64;

/// A snapshot of a live model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    /// The reference followed (`"active"`, an alias, `"latest"`, `"v3"`).
    pub reference: String,
    /// The version served now, if any.
    pub version: Option<u64>,
    /// Which load the served model is (1 for the first, +1 per swap).
    pub generation: u64,
    /// What the reference pointed to at the last successful check (may differ from `version`
    /// while that target is being refused).
    pub target: Option<u64>,
    /// The poll interval, in seconds.
    pub poll_seconds: f64,
    /// Unix time of the last check, successful or not.
    pub last_check: Option<f64>,
    /// Unix time of the last check that reached the store and resolved the reference.
    pub last_success: Option<f64>,
    /// Seconds since the last successful check (since the start if there was none): how stale
    /// the served answer may be.
    pub staleness_seconds: f64,
    /// The newest error (a failed check or a refused target), if any.
    pub last_error: Option<String>,
    /// Unix time of `last_error`.
    pub last_error_time: Option<f64>,
    /// Checks made (by the watcher and by `refresh`).
    pub checks: u64,
    /// Checks that failed to reach the store or resolve the reference.
    pub failed_checks: u64,
    /// Times the served model was replaced (the first load is not a swap).
    pub swaps: u64,
    /// Targets that failed to load or verify and were therefore not served.
    pub refused_swaps: u64,
    /// Seconds the last successful load (read, validate, probe replay) took.
    pub last_load_seconds: Option<f64>,
    /// Whether `close` was called.
    pub closed: bool,
}

/// What a notice is about.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A new version is served.
    Swapped,
    /// A target failed to load or verify; the previous version keeps serving.
    Refused,
    /// A check failed (store unreachable, reference gone); the first of a streak, or a new
    /// error message within one.
    CheckFailed,
    /// A check succeeded after failed ones.
    Recovered,
}

/// One event worth logging.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Notice {
    /// Increasing from 1.
    pub seq: u64,
    /// Unix time.
    pub time: f64,
    /// What happened.
    pub kind: NoticeKind,
    /// The version concerned (the new one for a swap, the refused one for a refusal).
    pub version: Option<u64>,
    /// In words.
    pub message: String,
}

/// The bounded list of recent notices.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    ring: VecDeque<Notice>,
    last_seq: u64,
}

impl Notices {
    /// Records a notice; the oldest is dropped beyond [`NOTICE_RING`].
    pub fn push(&mut self, kind: NoticeKind, version: Option<u64>, message: String) {
        self.last_seq += 1;
        if self.ring.len() == NOTICE_RING {
            self.ring.pop_front();
        }
        self.ring.push_back(Notice {
            seq: self.last_seq,
            time: unix_now(),
            kind,
            version,
            message,
        });
    }

    /// The sequence number of the newest notice (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The notices after `seq`, oldest first, and how many newer than `seq` were dropped.
    pub fn since(&self, seq: u64) -> (Vec<Notice>, u64) {
        let kept: Vec<Notice> = self.ring.iter().filter(|n| n.seq > seq).cloned().collect();
        let newer = self.last_seq.saturating_sub(seq);
        let dropped = newer.saturating_sub(kept.len() as u64);
        (kept, dropped)
    }
}

/// Seconds since the Unix epoch, as a float (0 if the clock is before 1970).
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_and_counts_what_it_dropped() {
        let mut n = Notices::default();
        for i in 0..(NOTICE_RING as u64 + 10) {
            n.push(NoticeKind::Swapped, Some(i), format!("{i}"));
        }
        let (all, dropped) = n.since(0);
        assert_eq!(all.len(), NOTICE_RING);
        assert_eq!(dropped, 10);
        assert_eq!(all[0].seq, 11);
        let (tail, dropped) = n.since(NOTICE_RING as u64 + 8);
        assert_eq!((tail.len(), dropped), (2, 0));
        assert_eq!(tail[1].seq, NOTICE_RING as u64 + 10);
    }
}
