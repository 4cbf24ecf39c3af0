//! The prediction log: every scored row, batched into bounded create-only segments.
//!
//! A row records the request id, the time, the version that answered, the other version, and
//! both models' class probabilities: everything needed to score the pair once its label
//! arrives, and to replay a decision later. Rows are buffered and written as one segment
//! `guard/<guard>-p-<n>.json` when the buffer reaches [`SegmentLimits::max_rows`] rows or
//! [`SegmentLimits::max_bytes`] bytes, when its oldest row is [`SegmentLimits::max_age`] old
//! (checked on every call), and on flush or close. Never one object per prediction (S3 bills
//! and rate-limits per request), and never an object larger than readers accept.
//!
//! Segments are create-only, numbered from 1: a writer that finds its number taken (another
//! process logging for the same guard) takes the next, so concurrent writers never overwrite
//! each other. A failed write keeps the buffer, so nothing is lost by a transient error.
//!
//! [`SegmentWriter`] and [`read_segment`] are generic: the outcome segments
//! (`crate::guard::outcomes`) use them too.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, WoodlotError};
use crate::store::{GuardPart, Store};

/// Format of the segments this woodlot writes.
pub const SEGMENT_FORMAT: u32 = 1;

/// Longest request id, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 256;

/// One logged prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow {
    /// The request id outcomes are joined by.
    pub id: String,
    /// When it was scored, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The version whose answer was returned.
    pub served: u64,
    /// The version scored alongside it.
    pub other: u64,
    /// The candidate's class probabilities.
    pub candidate: Vec<f32>,
    /// The baseline's class probabilities.
    pub baseline: Vec<f32>,
}

/// When a buffer becomes a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLimits {
    /// Most rows in a segment.
    pub max_rows: usize,
    /// Most bytes of rows in a segment (well under the store's record limit).
    pub max_bytes: usize,
    /// Longest a row waits in the buffer (checked whenever the writer is used).
    pub max_age: Duration,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        Self {
            max_rows: 4096,
            max_bytes: 2 << 20,
            max_age: Duration::from_secs(5),
        }
    }
}

/// A segment as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment<R> {
    /// [`SEGMENT_FORMAT`].
    pub format: u32,
    /// The guard it belongs to.
    pub guard: u64,
    /// `"predictions"` or `"outcomes"`.
    pub part: String,
    /// The rows, in the order they were logged.
    pub rows: Vec<R>,
}

fn part_name(part: GuardPart) -> &'static str {
    match part {
        GuardPart::Predictions => "predictions",
        GuardPart::Outcomes => "outcomes",
        GuardPart::Decision => "decision",
    }
}

/// Buffers rows and writes them as create-only segments of one guard's part.
#[derive(Debug)]
pub struct SegmentWriter<R> {
    guard: u64,
    part: GuardPart,
    limits: SegmentLimits,
    rows: Vec<R>,
    bytes: usize,
    oldest: Option<Instant>,
    next_seq: Option<u64>,
    written: Vec<u64>,
}

impl<R: Serialize> SegmentWriter<R> {
    /// A writer with an empty buffer.
    pub fn new(guard: u64, part: GuardPart, limits: SegmentLimits) -> Self {
        Self {
            guard,
            part,
            limits,
            rows: Vec::new(),
            bytes: 0,
            oldest: None,
            next_seq: None,
            written: Vec::new(),
        }
    }

    /// Rows waiting in the buffer.
    pub fn pending(&self) -> usize {
        self.rows.len()
    }

    /// The numbers of the segments this writer has written.
    pub fn segments_written(&self) -> &[u64] {
        &self.written
    }

    /// Buffers one row; writes a segment first if the row would not fit, and after it if the
    /// buffer is full or old.
    pub fn push(&mut self, store: &Store, row: R) -> Result<()> {
        let len = serde_json::to_vec(&row)
            .map_err(|e| WoodlotError::input(format!("a log row does not serialise: {e}")))?
            .len()
            + 1;
        if !self.rows.is_empty() && self.bytes + len > self.limits.max_bytes {
            self.flush(store)?;
        }
        self.rows.push(row);
        self.bytes += len;
        self.oldest.get_or_insert_with(Instant::now);
        if self.rows.len() >= self.limits.max_rows || self.bytes >= self.limits.max_bytes {
            self.flush(store)?;
        }
        Ok(())
    }

    /// Writes the buffer if its oldest row is older than the limit.
    pub fn flush_if_due(&mut self, store: &Store) -> Result<Option<u64>> {
        match self.oldest {
            Some(t) if t.elapsed() >= self.limits.max_age => self.flush(store),
            _ => Ok(None),
        }
    }

    /// Writes the buffered rows as one segment (nothing when empty); returns its number. On an
    /// error the rows stay buffered.
    pub fn flush(&mut self, store: &Store) -> Result<Option<u64>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        let seg = Segment {
            format: SEGMENT_FORMAT,
            guard: self.guard,
            part: part_name(self.part).into(),
            rows: std::mem::take(&mut self.rows),
        };
        let bytes = serde_json::to_vec(&seg);
        self.rows = seg.rows;
        let mut bytes = bytes
            .map_err(|e| WoodlotError::input(format!("a log segment does not serialise: {e}")))?;
        bytes.push(b'\n');
        let first = match self.next_seq {
            Some(s) => s,
            None => store
                .guard_records(self.guard, self.part)?
                .last()
                .map_or(1, |s| s + 1),
        };
        // Another writer may hold the next numbers; a bounded walk forward finds a free one.
        for seq in first..first.saturating_add(100_000) {
            if store.create_guard_record(self.guard, self.part, seq, &bytes)? {
                self.next_seq = Some(seq + 1);
                self.rows.clear();
                self.bytes = 0;
                self.oldest = None;
                self.written.push(seq);
                return Ok(Some(seq));
            }
        }
        Err(WoodlotError::Conflict(format!(
            "could not find a free segment number for guard {} after 100000 tries",
            self.guard
        )))
    }
}

/// Reads one segment's rows, checking that it is what its name says.
pub fn read_segment<R: DeserializeOwned>(
    store: &Store,
    guard: u64,
    part: GuardPart,
    seq: u64,
) -> Result<Option<Vec<R>>> {
    let Some(bytes) = store.read_guard_record(guard, part, seq)? else {
        return Ok(None);
    };
    let what = || format!("guard {guard}'s {} segment {seq}", part_name(part));
    let seg: Segment<R> = serde_json::from_slice(&bytes)
        .map_err(|e| WoodlotError::corrupt(format!("{} is not valid: {e}", what())))?;
    if seg.format == 0 || seg.format > SEGMENT_FORMAT {
        return Err(WoodlotError::Store(format!(
            "{} has format {}; this woodlot reads format {SEGMENT_FORMAT} (upgrade woodlot)",
            what(),
            seg.format
        )));
    }
    if seg.guard != guard || seg.part != part_name(part) {
        return Err(WoodlotError::corrupt(format!(
            "{} says it belongs to guard {} ({})",
            what(),
            seg.guard,
            seg.part
        )));
    }
    Ok(Some(seg.rows))
}

/// Checks a request id: 1 to [`MAX_REQUEST_ID_LEN`] bytes, no control characters.
pub fn check_request_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN || id.chars().any(char::is_control) {
        let shown: String = id.chars().take(40).flat_map(char::escape_default).collect();
        return Err(WoodlotError::input(format!(
            "request id \"{shown}\" is not usable: ids must be 1 to {MAX_REQUEST_ID_LEN} bytes \
             without control characters"
        )));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A JSON value's short description, for messages.
pub fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}
