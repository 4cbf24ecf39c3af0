//! `NativeHttpServer`: the binding of [`HttpServer`](crate::serve::http::HttpServer), thin.
//!
//! The whole server (the watcher thread, the tokio runtime, parsing and scoring) runs in Rust
//! threads that never touch the interpreter; Python only starts it, asks for its status and
//! notices, and stops it. `python/woodlot/_serve.py` wraps it as `woodlot.serve(...)`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::store::{NativeStore, RefArg};
use crate::guard::decide::Metric;
use crate::guard::{Mode, SegmentLimits, StartOptions};
use crate::serve::guarded::start_or_resume;
use crate::serve::http::{HttpOptions, HttpServer};
use crate::serve::{GuardFollower, LiveModel, LiveOptions};
use crate::store::Ref;

/// A running HTTP scoring server (see `woodlot.serve`).
#[pyclass(module = "woodlot._native", name = "NativeHttpServer", frozen)]
pub struct NativeHttpServer {
    server: Mutex<Option<HttpServer>>,
    live: Arc<LiveModel>,
    guard: Option<Arc<GuardFollower>>,
    addr: SocketAddr,
}

fn seconds(name: &str, s: f64) -> PyResult<Duration> {
    if !(s.is_finite() && s > 0.0 && s <= 86_400.0) {
        return Err(PyValueError::new_err(format!(
            "{name} must lie in (0, 86400] seconds, got {s}"
        )));
    }
    Ok(Duration::from_secs_f64(s))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[pymethods]
impl NativeHttpServer {
    /// Starts following `reference` of `store` (checking it once now; the server starts even
    /// if nothing can be served yet, answering 503 until a verified model is) and binds
    /// `host:port` (0: an ephemeral port). With `guard`, first starts a guard of that
    /// candidate (or resumes its running guard); a server of `active` follows whatever guard
    /// runs either way.
    #[new]
    #[pyo3(signature = (store, reference, host, port, poll_seconds=1.0, max_body_bytes=8388608,
        max_body_bytes_in_flight=67108864, header_timeout=10.0, body_timeout=30.0,
        max_connections=1024, workers=2, drain_timeout=30.0, guard=None, guard_mode="probation",
        guard_metric="log_loss", guard_alpha=0.05, guard_margin=0.0, guard_min_outcomes=200,
        canary_fraction=0.0, auto_promote=false, guard_flush_seconds=5.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, NativeStore>,
        reference: RefArg,
        host: String,
        port: u16,
        poll_seconds: f64,
        max_body_bytes: usize,
        max_body_bytes_in_flight: usize,
        header_timeout: f64,
        body_timeout: f64,
        max_connections: usize,
        workers: usize,
        drain_timeout: f64,
        guard: Option<RefArg>,
        guard_mode: &str,
        guard_metric: &str,
        guard_alpha: f64,
        guard_margin: f64,
        guard_min_outcomes: u64,
        canary_fraction: f64,
        auto_promote: bool,
        guard_flush_seconds: f64,
    ) -> PyResult<Self> {
        let reference = match reference {
            RefArg::Int(n) => Ref::number(n),
            RefArg::Str(s) => Ref::parse(&s),
        }
        .py()?;
        let live_options = LiveOptions::with_poll_seconds(poll_seconds).py()?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| PyValueError::new_err(format!("host {host:?} does not resolve: {e}")))?
            .next()
            .ok_or_else(|| PyValueError::new_err(format!("host {host:?} has no address")))?;
        let options = HttpOptions {
            addr,
            max_body_bytes,
            max_body_bytes_in_flight,
            header_timeout: seconds("header_timeout", header_timeout)?,
            body_timeout: seconds("body_timeout", body_timeout)?,
            max_connections,
            workers,
            drain_timeout: seconds("drain_timeout", drain_timeout)?,
            follow_guards: true,
            guard_limits: SegmentLimits {
                max_age: seconds("guard_flush_seconds", guard_flush_seconds)?,
                ..SegmentLimits::default()
            },
        };
        if guard.is_some() && reference != Ref::Active {
            return Err(PyValueError::new_err(format!(
                "a guard compares a candidate with the active version: serve ref \"active\" \
                 to guard, not {reference:?}"
            )));
        }
        let start = match guard {
            None => None,
            Some(candidate) => {
                let candidate = match candidate {
                    RefArg::Int(n) => Ref::number(n),
                    RefArg::Str(s) => Ref::parse(&s),
                }
                .py()?;
                let mut opts = StartOptions::new(candidate);
                opts.mode = Mode::parse(guard_mode).py()?;
                opts.metric = Metric::parse(guard_metric).py()?;
                opts.alpha = guard_alpha;
                opts.margin = guard_margin;
                opts.min_outcomes = guard_min_outcomes;
                opts.canary_fraction = canary_fraction;
                opts.auto_promote = auto_promote;
                Some(opts)
            }
        };
        let store = store.get().inner.clone();
        let limits = options.guard_limits;
        let server = py
            .detach(|| {
                if let Some(opts) = start {
                    // Written to the history before the live model's first check, so a
                    // probation candidate is what it loads, and the follower attaches at once.
                    start_or_resume(store.clone(), opts, limits)?.close()?;
                }
                let live = Arc::new(LiveModel::start(store, reference, live_options)?);
                HttpServer::start(live, options)
            })
            .py()?;
        Ok(Self {
            guard: server.guard().cloned(),
            live: server.live().clone(),
            addr: server.local_addr(),
            server: Mutex::new(Some(server)),
        })
    }

    /// The bound address's host.
    #[getter]
    fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The bound port (the real one when 0 was asked for).
    #[getter]
    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://host:port`.
    #[getter]
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the server still runs.
    #[getter]
    fn running(&self) -> bool {
        lock(&self.server).as_ref().is_some_and(|s| s.is_running())
    }

    /// The live model's status as JSON.
    fn status(&self) -> PyResult<String> {
        serde_json::to_string(&self.live.status())
            .map_err(|e| PyValueError::new_err(format!("could not serialise a status: {e}")))
    }

    /// The guard's status as JSON (the attached guard's now, or the last one's final status),
    /// or `None` when the server follows no guard or has seen none.
    fn guard_status(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let Some(g) = &self.guard else {
            return Ok(None);
        };
        let st = py.detach(|| g.status()).py()?;
        st.map(|s| {
            serde_json::to_string(&s)
                .map_err(|e| PyValueError::new_err(format!("could not serialise a status: {e}")))
        })
        .transpose()
    }

    /// `(notices newer than seq as JSON, how many of them were dropped unseen)`.
    fn notices_since(&self, seq: u64) -> PyResult<(String, u64)> {
        let (notices, dropped) = self.live.notices_since(seq);
        let json = serde_json::to_string(&notices)
            .map_err(|e| PyValueError::new_err(format!("could not serialise notices: {e}")))?;
        Ok((json, dropped))
    }

    /// Stops accepting, lets requests in flight finish (up to the drain timeout), then stops
    /// the watcher; without the GIL. Idempotent.
    fn stop(&self, py: Python<'_>) {
        let server = lock(&self.server).take();
        let live = &self.live;
        py.detach(move || {
            if let Some(mut s) = server {
                s.shutdown();
            }
            live.close();
        });
    }
}
