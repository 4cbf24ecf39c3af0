//! Outcomes: labels that arrive later, from elsewhere, joined to logged predictions by
//! request id.
//!
//! `record_outcomes` appends one outcome segment (`guard/<guard>-o-<n>.json`, create-only; a
//! large batch becomes several bounded segments) from any process that can open the store: a
//! label job, a notebook, the server. Unknown and duplicate ids are counted and reported, never
//! fatal: an id already recorded (in the store or earlier in the batch) is not written again
//! (the first label wins); an id with no logged prediction yet is written (its prediction may
//! still be in a server's buffer) and reported as unknown. [`LogView`] is the reader's side: it
//! reads each segment once and joins in the order the outcomes were recorded, so the stream
//! the test sees, and a decision replayed from it, does not depend on who reads.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::guard::predlog::{
    check_request_id, now_ms, read_segment, PredictionRow, SegmentLimits, SegmentWriter,
};
use crate::store::labels::{Label, Labels};
use crate::store::{GuardPart, Store};

/// Most ids listed by value in a report (the counts are always complete).
pub const MAX_IDS_SHOWN: usize = 20;

/// One recorded outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRow {
    /// The request id it labels.
    pub id: String,
    /// The true label (a number or a string).
    pub y: Value,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// What `record_outcomes` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomeReport {
    /// The guard the outcomes were recorded for.
    pub guard: u64,
    /// Outcomes written.
    pub recorded: u64,
    /// Of those, ids with no logged prediction (yet).
    pub unknown: u64,
    /// Ids not written because they already had an outcome.
    pub duplicate: u64,
    /// Up to [`MAX_IDS_SHOWN`] unknown ids.
    pub unknown_ids: Vec<String>,
    /// Up to [`MAX_IDS_SHOWN`] duplicate ids.
    pub duplicate_ids: Vec<String>,
    /// The outcome segments written.
    pub segments: Vec<u64>,
}

/// The guard's log as read so far: predictions by id and outcomes in recorded order.
#[derive(Debug, Default)]
pub struct LogView {
    predictions: HashMap<String, PredictionRow>,
    prediction_rows: u64,
    duplicate_predictions: u64,
    read_predictions: BTreeSet<u64>,
    outcomes: Vec<OutcomeRow>,
    outcome_ids: HashSet<String>,
    duplicate_outcomes: u64,
    read_outcomes: BTreeSet<u64>,
}

impl LogView {
    /// Reads every segment of `guard` not read yet.
    pub fn refresh(&mut self, store: &Store, guard: u64) -> Result<()> {
        for seq in store.guard_records(guard, GuardPart::Predictions)? {
            if self.read_predictions.contains(&seq) {
                continue;
            }
            if let Some(rows) =
                read_segment::<PredictionRow>(store, guard, GuardPart::Predictions, seq)?
            {
                for r in rows {
                    self.prediction_rows += 1;
                    if self.predictions.contains_key(&r.id) {
                        self.duplicate_predictions += 1;
                    } else {
                        self.predictions.insert(r.id.clone(), r);
                    }
                }
            }
            self.read_predictions.insert(seq);
        }
        for seq in store.guard_records(guard, GuardPart::Outcomes)? {
            if self.read_outcomes.contains(&seq) {
                continue;
            }
            if let Some(rows) = read_segment::<OutcomeRow>(store, guard, GuardPart::Outcomes, seq)?
            {
                for r in rows {
                    if self.outcome_ids.insert(r.id.clone()) {
                        self.outcomes.push(r);
                    } else {
                        self.duplicate_outcomes += 1;
                    }
                }
            }
            self.read_outcomes.insert(seq);
        }
        Ok(())
    }

    /// Logged prediction rows (every row, duplicates of an id included).
    pub fn prediction_rows(&self) -> u64 {
        self.prediction_rows
    }

    /// Whether a prediction with this id is logged.
    pub fn has_prediction(&self, id: &str) -> bool {
        self.predictions.contains_key(id)
    }

    /// Whether this id has an outcome.
    pub fn has_outcome(&self, id: &str) -> bool {
        self.outcome_ids.contains(id)
    }

    /// Distinct outcomes recorded.
    pub fn outcome_count(&self) -> u64 {
        self.outcomes.len() as u64
    }

    /// Outcomes found twice in the log (concurrent recorders; the first counts).
    pub fn duplicate_outcomes(&self) -> u64 {
        self.duplicate_outcomes
    }

    /// Prediction rows whose id was logged before (the first counts).
    pub fn duplicate_predictions(&self) -> u64 {
        self.duplicate_predictions
    }

    /// The joined pairs, in recorded order: (prediction, true label); and how many outcomes have
    /// no logged prediction.
    pub fn joined(&self) -> (Vec<(&PredictionRow, &Value)>, u64) {
        let mut out = Vec::with_capacity(self.outcomes.len());
        let mut unmatched = 0;
        for o in &self.outcomes {
            match self.predictions.get(&o.id) {
                Some(p) => out.push((p, &o.y)),
                None => unmatched += 1,
            }
        }
        (out, unmatched)
    }
}

/// Records outcomes for a guard's logged predictions (see the module docs).
pub fn record_outcomes(
    store: &Store,
    guard: u64,
    ids: &[String],
    y: &Labels,
    limits: SegmentLimits,
) -> Result<OutcomeReport> {
    if ids.len() != y.len() {
        return Err(crate::error::WoodlotError::input(format!(
            "record_outcomes got {} request ids but {} labels; pass one label per id",
            ids.len(),
            y.len()
        )));
    }
    for id in ids {
        check_request_id(id)?;
    }
    if let Labels::Num(v) = y {
        if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(crate::error::WoodlotError::input(format!(
                "y_true[{i}] is {x}; labels must be finite numbers or strings"
            )));
        }
    }
    let mut view = LogView::default();
    view.refresh(store, guard)?;
    let mut report = OutcomeReport {
        guard,
        ..OutcomeReport::default()
    };
    let mut batch: HashSet<&str> = HashSet::new();
    let mut writer = SegmentWriter::new(guard, GuardPart::Outcomes, limits);
    let time_ms = now_ms();
    for (i, id) in ids.iter().enumerate() {
        if view.has_outcome(id) || !batch.insert(id.as_str()) {
            report.duplicate += 1;
            if report.duplicate_ids.len() < MAX_IDS_SHOWN {
                report.duplicate_ids.push(id.clone());
            }
            continue;
        }
        if !view.has_prediction(id) {
            report.unknown += 1;
            if report.unknown_ids.len() < MAX_IDS_SHOWN {
                report.unknown_ids.push(id.clone());
            }
        }
        let label: Label = y.get(i);
        writer.push(
            store,
            OutcomeRow {
                id: id.clone(),
                y: label.to_json(),
                time_ms,
            },
        )?;
        report.recorded += 1;
    }
    writer.flush(store)?;
    report.segments = writer.segments_written().to_vec();
    Ok(report)
}
