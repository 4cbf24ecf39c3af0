//! The version store: every trained model saved as an immutable, checksummed version, compared
//! on the same data with real statistics, promoted, rolled back in one call, with every move in
//! an append-only history.
//!
//! One commit protocol (docs/ARCHITECTURE.md, "The store protocol and its invariants"; the way
//! Delta Lake commits) serves a local directory and object storage alike: content-addressed blobs, create-only manifests whose
//! creation is a version's commit point, and a create-only, hash-chained event log whose newest
//! event holds the store's state. Two writers racing for a number: exactly one wins; the other
//! re-reads and retries (a save) or gets a conflict (a promotion with a stale expectation).
//! Readers never lock and never see half-written records.
//!
//! - [`layout`]: typed keys for every record; user input never becomes a path.
//! - [`names`]: version references and alias validation.
//! - [`backend`]: the storage layer, a folder of its own: the trait, the local-filesystem
//!   backend ([`local`]), the object-storage one ([`object`], [`s3config`]), choosing one by
//!   location, and the test-only fault switch ([`faults`]). Re-exported here under their old
//!   paths (`crate::store::local`, ...).
//! - [`open`]: opening a store by location (`s3://bucket/prefix` or a directory).
//! - [`manifest`], [`events`]: the records.
//! - [`probe`]: probe rows replayed to prove a model still predicts as it did.
//! - [`labels`], [`metrics`], [`stats`], [`compare`]: evaluation in Rust.
//! - [`store`], [`promote`], [`verify`], [`gc`]: the operations, all methods of [`Store`].
//! - [`guardlog`]: the store's side of deployment guards: their events and create-only
//!   records (prediction-log and outcome segments) under `guard/`.
//! - [`sysinfo`]: user, host, process and RFC 3339 time for the audit trail.

pub mod backend;
pub mod compare;
pub mod events;
pub mod gc;
pub mod guardlog;
pub mod labels;
pub mod layout;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod open;
pub mod probe;
pub mod promote;
pub mod stats;
#[allow(clippy::module_inception)]
pub mod store;
pub mod sysinfo;
pub mod verify;

// The storage layer's modules under the paths the rest of the store (and py) use.
pub use backend::{faults, local};
#[cfg(feature = "s3")]
pub use backend::{object, s3config};

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

pub use compare::{CompareOptions, Comparison};
pub use events::{Event, EventKind, State};
pub use labels::{Label, Labels};
pub use layout::GuardPart;
pub use manifest::Manifest;
pub use names::Ref;
pub use promote::{Decision, Expect};
pub use store::{SaveOptions, Store};
pub use verify::VerifyReport;
