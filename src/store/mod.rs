//! The version store: every trained model saved as an immutable, checksummed version, compared
//! on the same data with real statistics, promoted, rolled back in one call, with every move in
//! an append-only history.
//!
//! One commit protocol (DESIGN.md section 5, the way Delta Lake commits) serves a local
//! directory and object storage alike: content-addressed blobs, create-only manifests whose
//! creation is a version's commit point, and a create-only, hash-chained event log whose newest
//! event holds the store's state. Two writers racing for a number: exactly one wins; the other
//! re-reads and retries (a save) or gets a conflict (a promotion with a stale expectation).
//! Readers never lock and never see half-written records.
//!
//! - [`layout`]: typed keys for every record; user input never becomes a path.
//! - [`names`]: version references and alias validation.
//! - [`backend`] / [`local`]: the storage trait and the local-filesystem implementation
//!   (temp + fsync + hard link, rename, dir fsync, `File::lock`).
//! - [`object`] / [`s3config`] / [`open`]: the object-storage backend (S3 through the
//!   `object_store` crate: `If-None-Match: *` puts, no lock), its URL and options, and opening a
//!   store by location (`s3://bucket/prefix` or a directory).
//! - [`faults`]: the test-only switch that fails or crashes at the N-th I/O step.
//! - [`manifest`], [`events`]: the records.
//! - [`probe`]: probe rows replayed to prove a model still predicts as it did.
//! - [`labels`], [`metrics`], [`stats`], [`compare`]: evaluation in Rust.
//! - [`store`], [`promote`], [`verify`], [`gc`]: the operations, all methods of [`Store`].
//! - [`sysinfo`]: user, host, process and RFC 3339 time for the audit trail.

pub mod backend;
pub mod compare;
pub mod events;
pub mod faults;
pub mod gc;
pub mod labels;
pub mod layout;
pub mod local;
pub mod manifest;
pub mod metrics;
pub mod names;
#[cfg(feature = "s3")]
pub mod object;
pub mod open;
pub mod probe;
pub mod promote;
#[cfg(feature = "s3")]
pub mod s3config;
pub mod stats;
#[allow(clippy::module_inception)]
pub mod store;
pub mod sysinfo;
pub mod verify;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use compare::{CompareOptions, Comparison};
pub use events::{Event, EventKind, State};
pub use labels::{Label, Labels};
pub use manifest::Manifest;
pub use names::Ref;
pub use promote::{Decision, Expect};
pub use store::{SaveOptions, Store};
pub use verify::VerifyReport;
