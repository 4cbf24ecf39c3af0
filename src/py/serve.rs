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
use crate::serve::http::{HttpOptions, HttpServer};
use crate::serve::{LiveModel, LiveOptions};
use crate::store::Ref;

/// A running HTTP scoring server (see `woodlot.serve`).
#[pyclass(module = "woodlot._native", name = "NativeHttpServer", frozen)]
pub struct NativeHttpServer {
    server: Mutex<Option<HttpServer>>,
    live: Arc<LiveModel>,
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
    /// `host:port` (0: an ephemeral port).
    #[new]
    #[pyo3(signature = (store, reference, host, port, poll_seconds=1.0, max_body_bytes=8388608,
        max_body_bytes_in_flight=67108864, header_timeout=10.0, body_timeout=30.0,
        max_connections=1024, workers=2, drain_timeout=30.0))]
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
        };
        let store = store.get().inner.clone();
        let server = py
            .detach(|| {
                let live = Arc::new(LiveModel::start(store, reference, live_options)?);
                HttpServer::start(live, options)
            })
            .py()?;
        Ok(Self {
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
