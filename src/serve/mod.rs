//! Serving: follow what a reference of the store points to, and swap the served model only
//! after the new target has loaded, validated and replayed its probes.
//!
//! This layer sits above the store (tree <- forest <- format <- store <- serve <- py) and uses
//! only [`Store`](crate::store::Store)'s public API. It is pure Rust: the Python binding
//! (`src/py/live.rs`) and any HTTP front end are thin users of [`LiveModel`].
//!
//! - [`target`]: the cheap question "what does this reference point to now", and loading a
//!   version into a [`Served`] model (fully verified).
//! - [`status`]: what a live model reports: [`Status`] and the [`Notice`]s (swaps, refusals,
//!   failed checks, recoveries) a caller can turn into log records.
//! - [`live`]: [`LiveModel`], the watcher thread and the atomic swap.
//! - `http` (feature `http`): the HTTP/1.1 scoring server in front of a [`LiveModel`] (first
//!   cut: `/ping`, `/version`, JSON `/invocations`).
//! - [`input`]: scoring requests in MLflow's JSON formats, checked against the served model's
//!   features (the parsing half of the HTTP front end to come).

#[cfg(feature = "http")]
pub mod http;
pub mod input;
pub mod live;
pub mod status;
pub mod target;

pub use live::{LiveModel, LiveOptions};
pub use status::{Notice, NoticeKind, Status};
pub use target::Served;

#[cfg(test)]
mod tests;
