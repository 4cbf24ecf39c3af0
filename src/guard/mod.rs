//! Guarded deployment: watch a candidate version on live traffic against the active one,
//! collect outcomes, and roll back (or drop, confirm, promote) on anytime-valid evidence.
//!
//! The layer sits between the store and serving (`store <- guard <- serve`): it uses only
//! [`Store`](crate::store::Store)'s public API and the forest's predictor, and knows nothing of
//! HTTP or Python, so the server and the binding hold the same [`Guard`].
//!
//! - [`confseq`]: the predictable plug-in empirical-Bernstein confidence sequence and its
//!   e-values, for bounded paired loss differences with a margin.
//! - [`mcnemar`]: the sequential McNemar e-process on discordant pairs.
//! - [`decide`]: pairs of losses to a verdict with its evidence, frozen at the first crossing.
//! - [`predlog`]: the prediction log's bounded create-only segments (and their writer).
//! - [`outcomes`]: recording outcomes and joining them to predictions by request id.
//! - [`state`]: the guard's events and decision claim, and replaying them.
//! - [`runner`]: [`Guard`]: scoring with both versions, logging, checking, acting.
//! - [`psi`]: population stability index of live inputs against a reference, for drift.
//! - [`drift`]: drift against a stored version's training histogram.
//! - [`sim`]: label-stream simulations of the decision rule (tests and the benchmark).
//!
//! See docs/ARCHITECTURE.md, "Guarded deployment".

pub mod confseq;
pub mod decide;
pub mod drift;
pub mod mcnemar;
pub mod outcomes;
pub mod predlog;
pub mod psi;
pub mod runner;
pub mod sim;
pub mod state;

#[cfg(test)]
mod tests;

pub use decide::{Evidence, Metric, Pair, Sequential, TestSpec, Verdict};
pub use outcomes::OutcomeReport;
pub use predlog::SegmentLimits;
pub use runner::{record_outcomes, Guard, Scored, StartOptions, Status};
pub use state::{guards, DecisionKind, DecisionRecord, GuardRecord, GuardSpec, Mode};
