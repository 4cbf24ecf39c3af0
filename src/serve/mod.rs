//! Serving: follow what a reference of the store points to, and swap the served model only
//! after the new target has loaded, validated and replayed its probes.
//!
//! This layer sits above the store and the guard (tree <- forest <- format <- store <- guard
//! <- serve <- py) and uses only [`Store`](crate::store::Store)'s and
//! [`Guard`](crate::guard::Guard)'s public APIs. It is pure Rust: the Python binding
//! (`src/py/live.rs`) and any HTTP front end are thin users of [`LiveModel`].
//!
//! - [`target`]: the cheap question "what does this reference point to now", and loading a
//!   version into a [`Served`] model (fully verified).
//! - [`status`]: what a live model reports: [`Status`] and the [`Notice`]s (swaps, refusals,
//!   failed checks, recoveries) a caller can turn into log records.
//! - [`live`]: [`LiveModel`], the watcher thread and the atomic swap.
//! - `http` (feature `http`): the HTTP/1.1 scoring server behind `woodlot serve`, in front of
//!   a [`LiveModel`]: `/ping`, `/version`, `/metrics`, `/invocations`; its bounds and timeouts.
//! - `invocations` (feature `http`): what `/invocations` does with a body it has read
//!   (content type, labels or probabilities, MLflow's answer).
//! - `metrics` (feature `http`): the server's counters in Prometheus' text format.
//! - `csv_input` (feature `http`): `text/csv` scoring requests, read as pandas reads them.
//! - [`guarded`]: [`GuardFollower`], a server's follower of the store's running guard:
//!   scoring through it, running its checks, detaching once it is decided.
//! - `feedback` (feature `http`): `POST /feedback` bodies (request ids and true labels).
//! - [`input`]: scoring requests in MLflow's JSON formats, checked against the served model's
//!   features.

#[cfg(feature = "http")]
pub mod csv_input;
#[cfg(feature = "http")]
pub mod feedback;
pub mod guarded;
#[cfg(feature = "http")]
pub mod http;
pub mod input;
#[cfg(feature = "http")]
pub mod invocations;
pub mod live;
#[cfg(feature = "http")]
pub mod metrics;
pub mod status;
pub mod target;

pub use guarded::GuardFollower;
pub use live::{LiveModel, LiveOptions};
pub use status::{Notice, NoticeKind, Status};
pub use target::Served;

#[cfg(test)]
mod tests;
