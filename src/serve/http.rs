//! The HTTP/1.1 scoring server behind `woodlot serve`: hyper on a tokio runtime of its own, in
//! front of a [`LiveModel`].
//!
//! Endpoints: `GET /ping` (200 once a verified model is served, 503 before), `GET /version`
//! (the served version's manifest), `GET /metrics` (Prometheus text, see
//! [`metrics`](super::metrics)), `POST /invocations` (MLflow's JSON formats and `text/csv`,
//! see [`invocations`](super::invocations)). Every response names the served version
//! (`x-woodlot-version`) and carries a request id (`x-request-id`, the client's if it sent
//! one).
//!
//! While the store runs a guard (a server of `active` follows it, see
//! [`guarded`](super::guarded)), `/invocations` scores through it: both versions score, both
//! outputs are logged with the row ids (the request id for one row, `<request id>/<i>` for
//! row `i` of more), the mode's version answers (`x-woodlot-version` names it; `x-woodlot-guard`
//! the guard), and the body adds `"request_ids": [...]` next to `predictions` (MLflow's
//! clients read `predictions` only). `POST /feedback` takes `{"request_ids": [...],
//! "y_true": [...]}` and records them as the guard's outcomes (200 with the counts recorded,
//! unknown and duplicate; 400 a bad body, see [`feedback`](super::feedback); 404 no guard
//! running; 503 the store write failed): it is the only endpoint that writes to the store,
//! under the same body limit and timeouts as `/invocations`. `GET /guard` is the guard's
//! status (the running one's, or the last one's final status; 404 when there was none).
//!
//! Errors have MLflow's shape, `{"error_code": "BAD_REQUEST", "message": "..."}`, with
//! the status: 400 bad input, 404/405 unknown endpoint or method, 408 a body slower than
//! `body_timeout`, 413 a body over `max_body_bytes` (refused from `Content-Length` before
//! reading, or when a chunked body passes the limit), 415 an unsupported content type, 503 no
//! model yet or the server too busy to take the body within `body_timeout`, 500 a bug (a
//! panic while scoring is caught and answered, never propagated).
//!
//! What bounds the server's memory and time, whatever clients do:
//! - at most `max_connections` connections are served at once (more wait in the kernel's
//!   backlog), and a client must send its headers within `header_timeout` (hyper closes the
//!   connection otherwise, idle keep-alive connections included);
//! - bodies being read hold a share of a byte budget (`max_body_bytes_in_flight`): a request
//!   reserves its `Content-Length` (or `max_body_bytes` when chunked) before reading, so the
//!   bytes buffered at once are bounded; parsing and scoring run on the runtime's `workers`
//!   threads, so at most `workers` parsed requests exist at once;
//! - a body must arrive within `body_timeout`.
//!
//! [`HttpServer::shutdown`] stops accepting, lets requests in flight finish (up to
//! `drain_timeout`), then returns. Scoring runs on the runtime's threads and never touches
//! Python.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::error::{Result, WoodlotError};
use crate::guard::SegmentLimits;
use crate::serve::feedback::parse_feedback;
use crate::serve::guarded::{row_ids, GuardFollower};
use crate::serve::invocations::{answer, body_kind, parse_request, query_output, score};
use crate::serve::live::LiveModel;
use crate::serve::metrics::{render_guard, Counters};
use crate::serve::Served;
use crate::store::names::version_name;

/// How the server listens and what bounds it.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Address to bind; loopback unless told otherwise.
    pub addr: SocketAddr,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Bytes of request bodies that may be buffered at once, over all requests (at least
    /// `max_body_bytes`; requests wait for their share).
    pub max_body_bytes_in_flight: usize,
    /// How long a client may take to send its request headers (idle keep-alive included).
    pub header_timeout: Duration,
    /// How long a client may take to send its request body (408 beyond).
    pub body_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Worker threads of the runtime (the threads that parse and score).
    pub workers: usize,
    /// How long [`HttpServer::shutdown`] waits for requests in flight.
    pub drain_timeout: Duration,
    /// Whether a server of `active` follows the store's running guard (see
    /// [`guarded`](super::guarded)).
    pub follow_guards: bool,
    /// The prediction log's segment limits while scoring through a guard.
    pub guard_limits: SegmentLimits,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 8 << 20,
            max_body_bytes_in_flight: 64 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            workers: 2,
            drain_timeout: Duration::from_secs(30),
            follow_guards: true,
            guard_limits: SegmentLimits::default(),
        }
    }
}

impl HttpOptions {
    /// Refuses values the server cannot run with.
    fn check(&self) -> Result<()> {
        let bad = |name: &'static str, message: String| {
            Err(WoodlotError::InvalidParameter { name, message })
        };
        if self.max_body_bytes == 0 || self.max_body_bytes > u32::MAX as usize {
            return bad(
                "max_body_bytes",
                format!(
                    "must lie between 1 and {}, got {}",
                    u32::MAX,
                    self.max_body_bytes
                ),
            );
        }
        if self.workers == 0 || self.workers > 1024 {
            return bad(
                "workers",
                format!("must lie between 1 and 1024, got {}", self.workers),
            );
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1".into());
        }
        for (name, d) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
        ] {
            if d.is_zero() {
                return bad(name, "must be more than 0 seconds".into());
            }
        }
        Ok(())
    }
}

/// A running server; [`HttpServer::shutdown`] (or drop) stops it.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    live: Arc<LiveModel>,
    guard: Option<Arc<GuardFollower>>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

struct App {
    live: Arc<LiveModel>,
    max_body: usize,
    body_timeout: Duration,
    /// The byte budget of bodies being read (permits are bytes).
    body_budget: Arc<Semaphore>,
    next_id: AtomicU64,
    counters: Counters,
    guard: Option<Arc<GuardFollower>>,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_reply(status: StatusCode, v: &Value) -> Reply {
    reply(status, "application/json", v.to_string())
}

/// MLflow's error code for a status (its scoring server answers with these names).
fn error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BAD_REQUEST",
        404 => "ENDPOINT_NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        408 => "REQUEST_TIMEOUT",
        413 => "REQUEST_LIMIT_EXCEEDED",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        503 => "TEMPORARILY_UNAVAILABLE",
        _ => "INTERNAL_ERROR",
    }
}

fn error_reply(status: StatusCode, message: &str) -> Reply {
    json_reply(
        status,
        &json!({"error_code": error_code(status), "message": message}),
    )
}

const NO_GUARD: &str = "no guard is running in this store (or this server follows no guard: \
                        only a server of `active` does); start one with store.guard(...) or \
                        woodlot serve --guard";

/// The 503 reply while no verified model is served, with the reason the live model gives
/// (nothing promoted yet, a damaged blob, a multi-output version, ...), so a client and an
/// operator reading the body see why without the server's log.
fn no_model(why: &str) -> Reply {
    error_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("{why}; promote a servable version (or check the store) and retry"),
    )
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight(false);
    }
}

impl App {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> std::result::Result<Reply, Infallible> {
        self.counters.in_flight(true);
        let _in_flight = InFlight(&self.counters);
        let id = req
            .headers()
            .get("x-request-id")
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .cloned()
            .unwrap_or_else(|| {
                let n = self.next_id.fetch_add(1, Ordering::Relaxed);
                HeaderValue::from_str(&format!("{}-{n}", std::process::id()))
                    .unwrap_or(HeaderValue::from_static("0"))
            });
        let started = Instant::now();
        // The model this request is answered with, taken once: a swap meanwhile does not
        // change it, so the version header always names the model that scored.
        let served = self.live.served().map_err(|e| e.to_string());
        let mut resp = match (req.method(), req.uri().path()) {
            (&Method::GET, "/metrics") => {
                let mut text = self.counters.render(&self.live.status());
                if let Some(f) = &self.guard {
                    render_guard(&mut text, f.cached_status().as_ref(), f.counters());
                }
                reply(StatusCode::OK, "text/plain; version=0.0.4", text)
            }
            (&Method::GET, "/ping" | "/health") => match &served {
                Ok(_) => reply(StatusCode::OK, "text/plain", "ok\n"),
                Err(why) => no_model(why),
            },
            (&Method::GET, "/version") => match &served {
                Ok(s) => json_reply(
                    StatusCode::OK,
                    &serde_json::to_value(&*s.manifest).unwrap_or(Value::Null),
                ),
                Err(why) => no_model(why),
            },
            (&Method::POST, "/invocations") => {
                self.invocations(req, served.clone(), id.to_str().unwrap_or(""))
                    .await
            }
            (&Method::POST, "/feedback") => self.feedback(req).await,
            (&Method::GET, "/guard") => self.guard_status().await,
            (
                _,
                "/ping" | "/health" | "/version" | "/invocations" | "/metrics" | "/feedback"
                | "/guard",
            ) => error_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            _ => error_reply(
                StatusCode::NOT_FOUND,
                "no such endpoint; use POST /invocations, POST /feedback, GET /ping, /version, \
                 /guard or /metrics",
            ),
        };
        self.counters
            .record(resp.status().as_u16(), started.elapsed().as_secs_f64());
        let h = resp.headers_mut();
        h.insert("x-request-id", id);
        if let Some(s) = served.ok().filter(|_| !h.contains_key("x-woodlot-version")) {
            if let Ok(v) = HeaderValue::from_str(&s.name()) {
                h.insert("x-woodlot-version", v);
            }
        }
        Ok(resp)
    }

    /// Reads a body within the byte budget, the size limit and the body timeout; the error is
    /// the reply to send. The permit holds the body's share of the budget until dropped.
    async fn read_body(
        &self,
        req: Request<Incoming>,
    ) -> std::result::Result<(Bytes, OwnedSemaphorePermit), Reply> {
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || {
            error_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the body is larger than {} bytes; send fewer rows per request (or start \
                     the server with a larger max_body_bytes)",
                    self.max_body
                ),
            )
        };
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(too_large());
        }
        let share = declared.map_or(self.max_body, |n| n as usize).max(1) as u32;
        let deadline = tokio::time::Instant::now() + self.body_timeout;
        let permit = match tokio::time::timeout_at(
            deadline,
            self.body_budget.clone().acquire_many_owned(share),
        )
        .await
        {
            Ok(Ok(p)) => p,
            _ => {
                return Err(error_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server is too busy to take this body now; retry",
                ))
            }
        };
        let collected = tokio::time::timeout_at(
            deadline,
            Limited::new(req.into_body(), self.max_body).collect(),
        )
        .await;
        match collected {
            Err(_) => Err(error_reply(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {:.0} s",
                    self.body_timeout.as_secs_f64()
                ),
            )),
            Ok(Ok(b)) => Ok((b.to_bytes(), permit)),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(e)) => Err(error_reply(
                StatusCode::BAD_REQUEST,
                &format!("reading the body: {e}"),
            )),
        }
    }

    async fn invocations(
        &self,
        req: Request<Incoming>,
        served: std::result::Result<Arc<Served>, String>,
        request_id: &str,
    ) -> Reply {
        let served = match served {
            Ok(s) => s,
            Err(why) => return no_model(&why),
        };
        let content_type = req.headers().get(CONTENT_TYPE).map(|v| v.to_str());
        let kind = match content_type {
            None => body_kind(None),
            Some(Ok(ct)) => body_kind(Some(ct)),
            Some(Err(_)) => Err("the content type is not readable text".to_string()),
        };
        let kind = match kind {
            Ok(k) => k,
            Err(m) => return error_reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, &m),
        };
        let output = match query_output(req.uri().query()) {
            Ok(o) => o,
            Err(e) => return error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let (body, permit) = match self.read_body(req).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let guard = self.guard.as_ref().and_then(|f| f.attached());
        let scored = std::panic::catch_unwind(AssertUnwindSafe(|| match &guard {
            None => score(&served, kind, &body, output).map(|s| (s, None)),
            Some(g) => self.guarded(&served, g, kind, &body, output, request_id),
        }));
        drop(body);
        drop(permit);
        match scored {
            Ok(Ok((s, versions))) => {
                self.counters.scored(s.rows);
                let mut r = reply(StatusCode::OK, "application/json", s.body);
                if let Some(v) = versions.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    r.headers_mut().insert("x-woodlot-version", v);
                }
                if let Some(g) = &guard {
                    r.headers_mut()
                        .insert("x-woodlot-guard", HeaderValue::from(g.spec().guard));
                }
                r
            }
            Ok(Err(WoodlotError::InvalidInput(m))) => error_reply(StatusCode::BAD_REQUEST, &m),
            Ok(Err(e)) => error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
            Err(_) => error_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "scoring failed unexpectedly (a bug: please report it with the request)",
            ),
        }
    }

    /// Scores through the guard: both versions, both logged, the mode's answer, and the row
    /// ids in the body. A guard that cannot score (its store write failed, an id it refuses)
    /// costs the request nothing: the live model answers alone, and the fallback is counted.
    /// Returns the answer and the answering versions (`v2`, or `v2, v1` for a canary request
    /// whose rows went both ways).
    fn guarded(
        &self,
        served: &Served,
        g: &crate::guard::Guard,
        kind: crate::serve::invocations::BodyKind,
        body: &[u8],
        output: Option<crate::serve::invocations::Output>,
        request_id: &str,
    ) -> Result<(crate::serve::invocations::Scored, Option<String>)> {
        let parsed = parse_request(served, kind, body, output)?;
        let rows = parsed.x.nrows();
        let ids = row_ids(request_id, rows);
        match std::panic::catch_unwind(AssertUnwindSafe(|| g.score(parsed.x.view(), Some(ids)))) {
            Ok(Ok(s)) if rows > 0 => {
                let mut versions: Vec<u64> = Vec::new();
                for v in &s.served {
                    if !versions.contains(v) {
                        versions.push(*v);
                    }
                }
                let names: Vec<String> = versions.into_iter().map(version_name).collect();
                let body = answer(served, &s.proba, parsed.output, Some(&s.ids))?;
                Ok((
                    crate::serve::invocations::Scored { body, rows },
                    Some(names.join(", ")),
                ))
            }
            _ => {
                if rows > 0 {
                    if let Some(f) = &self.guard {
                        f.counters().score_fallbacks.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let proba = served.forest.predict_proba(parsed.x.view(), 1)?;
                Ok((
                    crate::serve::invocations::Scored {
                        body: answer(served, &proba, parsed.output, None)?,
                        rows,
                    },
                    None,
                ))
            }
        }
    }

    /// `POST /feedback`: true labels for guarded requests, joined through `record_outcomes`
    /// (the only write to the store any endpoint makes).
    async fn feedback(&self, req: Request<Incoming>) -> Reply {
        let Some(follower) = self.guard.clone() else {
            return error_reply(StatusCode::NOT_FOUND, NO_GUARD);
        };
        let Some(g) = follower.attached() else {
            return error_reply(StatusCode::NOT_FOUND, NO_GUARD);
        };
        let (body, permit) = match self.read_body(req).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let parsed = match parse_feedback(&body, g.classes()) {
            Ok(f) => f,
            Err(m) => return error_reply(StatusCode::BAD_REQUEST, &m),
        };
        drop(body);
        drop(permit);
        let done = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                // This server's own buffered rows first, so their outcomes join at once.
                g.flush()?;
                g.record_outcomes(&parsed.ids, &parsed.labels)
            }))
        })
        .await;
        follower.nudge();
        match done {
            Ok(Ok(Ok(report))) => {
                let c = follower.counters();
                c.feedback_recorded
                    .fetch_add(report.recorded, Ordering::Relaxed);
                c.feedback_unknown.fetch_add(report.unknown, Ordering::Relaxed);
                c.feedback_duplicate
                    .fetch_add(report.duplicate, Ordering::Relaxed);
                json_reply(
                StatusCode::OK,
                &serde_json::to_value(&report).unwrap_or(Value::Null),
            )
            }
            Ok(Ok(Err(WoodlotError::InvalidInput(m)))) => {
                error_reply(StatusCode::BAD_REQUEST, &m)
            }
            Ok(Ok(Err(e))) => error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the outcomes could not be recorded ({e}); retry (duplicates are counted, not doubled)"),
            ),
            _ => error_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "recording outcomes failed unexpectedly (a bug: please report it)",
            ),
        }
    }

    /// `GET /guard`: the attached guard's status now, or the last guard's final status.
    async fn guard_status(&self) -> Reply {
        let Some(follower) = self.guard.clone() else {
            return error_reply(StatusCode::NOT_FOUND, NO_GUARD);
        };
        let st = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| follower.status()))
        })
        .await;
        match st {
            Ok(Ok(Ok(Some(s)))) => json_reply(
                StatusCode::OK,
                &serde_json::to_value(&s).unwrap_or(Value::Null),
            ),
            Ok(Ok(Ok(None))) => error_reply(
                StatusCode::NOT_FOUND,
                "this store has no guard yet; start one with store.guard(...) or woodlot \
                 serve --guard",
            ),
            Ok(Ok(Err(e))) => error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the guard's status could not be read ({e}); retry"),
            ),
            _ => error_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the guard's status failed unexpectedly (a bug: please report it)",
            ),
        }
    }
}

impl HttpServer {
    /// Binds and starts serving `live` on a runtime of its own.
    pub fn start(live: Arc<LiveModel>, options: HttpOptions) -> Result<Self> {
        options.check()?;
        let guard = if options.follow_guards {
            GuardFollower::for_live(&live, options.guard_limits)?.map(Arc::new)
        } else {
            None
        };
        let io = |context: &str, source| WoodlotError::Io {
            context: context.into(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.workers)
            .thread_name("woodlot-http")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| io("starting the HTTP runtime", e))?;
        let listener = runtime
            .block_on(async { tokio::net::TcpListener::bind(options.addr).await })
            .map_err(|e| io(&format!("binding {}", options.addr), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| io("reading the bound address", e))?;
        let budget = options
            .max_body_bytes_in_flight
            .max(options.max_body_bytes)
            .min(Semaphore::MAX_PERMITS);
        let app = Arc::new(App {
            live: live.clone(),
            max_body: options.max_body_bytes,
            body_timeout: options.body_timeout,
            body_budget: Arc::new(Semaphore::new(budget)),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            guard: guard.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("woodlot-http-main".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, app, stopped, options));
                // Connections still open after the drain are cut here.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| io("starting the HTTP thread", e))?;
        Ok(Self {
            addr,
            live,
            guard,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live model served.
    pub fn live(&self) -> &Arc<LiveModel> {
        &self.live
    }

    /// The follower of the store's guard (`None` when the server does not follow guards).
    pub fn guard(&self) -> Option<&Arc<GuardFollower>> {
        self.guard.as_ref()
    }

    /// Whether the server still runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain timeout), and waits
    /// for that. Idempotent.
    pub fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // After the drain: every request scored is in the buffer; write it out.
        if let Some(g) = &self.guard {
            let _ = g.close();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    mut stopped: watch::Receiver<bool>,
    options: HttpOptions,
) {
    let slots = Arc::new(Semaphore::new(
        options.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = stopped.changed() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stopped.clone();
        let header_timeout = options.header_timeout;
        connections.spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| app.clone().handle(req));
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(options.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use crate::serve::live::LiveOptions;
    use crate::store::{Ref, SaveOptions, Store};
    use serde_json::json;

    /// One request over a fresh connection; returns (status, headers, body).
    fn send(addr: SocketAddr, raw: &[u8]) -> (u16, String, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }

    fn post(addr: SocketAddr, body: &str) -> (u16, String, String) {
        send(
            addr,
            format!(
                "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

    /// A server on 127.0.0.1:0 over a fresh store whose v1 (a stump on x0 at 0.5) is active.
    fn server(t: &crate::serve::tests::TempDir, options: HttpOptions) -> HttpServer {
        let store = Store::open(&t.0).unwrap();
        store
            .save(&crate::serve::tests::model(0.5), SaveOptions::default())
            .unwrap();
        store.promote(&Ref::Number(1), None, None).unwrap();
        let live = Arc::new(
            LiveModel::open(Arc::new(store), Ref::Active, LiveOptions::default()).unwrap(),
        );
        HttpServer::start(
            live,
            HttpOptions {
                addr: "127.0.0.1:0".parse().unwrap(),
                ..options
            },
        )
        .unwrap()
    }

    fn post_as(addr: SocketAddr, path: &str, ct: &str, body: &str) -> (u16, String, String) {
        send(
            addr,
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

    #[test]
    fn csv_bodies_and_the_output_parameter_are_answered_like_mlflow() {
        let _turn = crate::serve::tests::turn();
        let t = crate::serve::tests::TempDir::new("http-csv");
        let mut server = server(&t, HttpOptions::default());
        let addr = server.local_addr();
        let csv = "x0,x1\n1.0,0\n0,0\n";
        let (status, head, body) = post_as(addr, "/invocations", "text/csv", csv);
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"predictions":[1,0]}"#),
            "{head}"
        );
        let (status, _, body) = post_as(addr, "/invocations?output=proba", "text/csv", csv);
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"predictions":[[0.25,0.75],[0.75,0.25]]}"#)
        );
        let (status, _, body) = post_as(
            addr,
            "/invocations?output=proba",
            "application/json; charset=utf-8",
            r#"{"instances": [[1.0, 0.0]]}"#,
        );
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"predictions":[[0.25,0.75]]}"#)
        );
        let (status, _, body) = post_as(addr, "/invocations", "text/csv", "x0,x1\n1,inf\n");
        assert_eq!(status, 400);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error_code"], "BAD_REQUEST");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("not a finite number"),
            "{body}"
        );
        let (status, _, body) = post_as(addr, "/invocations?output=x", "text/csv", csv);
        assert!(status == 400 && body.contains("output=proba"), "{body}");
        let (status, _, body) = post_as(addr, "/invocations", "application/xml", "<a/>");
        assert_eq!(status, 415);
        assert!(
            body.contains("UNSUPPORTED_MEDIA_TYPE") && body.contains("text/csv"),
            "{body}"
        );
        server.shutdown();
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let _turn = crate::serve::tests::turn();
        let t = crate::serve::tests::TempDir::new("http-413");
        let mut server = server(
            &t,
            HttpOptions {
                max_body_bytes: 100,
                ..HttpOptions::default()
            },
        );
        // Only the headers are sent: the 413 comes without waiting for the 10 MB.
        let (status, _, body) = send(
            server.local_addr(),
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 10000000\r\n\r\n",
        );
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("REQUEST_LIMIT_EXCEEDED"), "{body}");
        server.shutdown();
    }

    #[test]
    fn slow_clients_time_out_on_headers_and_on_the_body() {
        let _turn = crate::serve::tests::turn();
        let t = crate::serve::tests::TempDir::new("http-slow");
        let mut server = server(
            &t,
            HttpOptions {
                header_timeout: Duration::from_millis(300),
                body_timeout: Duration::from_millis(300),
                ..HttpOptions::default()
            },
        );
        let addr = server.local_addr();
        // Half a request line, then nothing: the connection is closed after the header timeout.
        for partial in [&b"GET /pi"[..], b""] {
            let started = Instant::now();
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(partial).unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(250) && took < Duration::from_secs(4),
                "{partial:?}: closed after {took:?}"
            );
        }
        // Headers, then half the body: 408 after the body timeout.
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 40\r\n\r\n{\"instances\"",
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(4));
        server.shutdown();
    }

    #[test]
    fn shutdown_lets_a_request_in_flight_finish() {
        let _turn = crate::serve::tests::turn();
        let t = crate::serve::tests::TempDir::new("http-drain");
        let mut server = server(&t, HttpOptions::default());
        let addr = server.local_addr();
        let body = r#"{"instances": [[1.0, 0.0]]}"#;
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{}",
            body.len(),
            &body[..5]
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let stopper = std::thread::spawn(move || {
            server.shutdown();
            server
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !stopper.is_finished(),
            "shutdown waits for the request in flight"
        );
        assert!(
            TcpStream::connect(addr).is_err(),
            "no new connections meanwhile"
        );
        s.write_all(&body.as_bytes()[5..]).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with(r#"{"predictions":[1]}"#),
            "{text}"
        );
        let server = stopper.join().unwrap();
        assert!(!server.is_running());
    }

    #[test]
    fn serves_ping_version_and_invocations_with_version_and_request_id() {
        let _turn = crate::serve::tests::turn();
        let t = crate::serve::tests::TempDir::new("http");
        let mut server = server(
            &t,
            HttpOptions {
                max_body_bytes: 1000,
                ..HttpOptions::default()
            },
        );
        let addr = server.local_addr();
        let (status, head, body) = send(
            addr,
            b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        assert!(head.contains("x-woodlot-version: v1") && head.contains("x-request-id: "));
        let (status, _, body) = send(
            addr,
            b"GET /version HTTP/1.1\r\nHost: x\r\nx-request-id: abc\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["version"], 1);
        let (status, head, body) = post(addr, r#"{"instances": [[1.0, 0.0], [0.0, 0.0]]}"#);
        assert_eq!((status, body.as_str()), (200, r#"{"predictions":[1,0]}"#));
        assert!(head.contains("x-woodlot-version: v1"));
        let (status, _, body) = post(
            addr,
            r#"{"inputs": [[1.0, 0.0]], "params": {"predict_proba": true}}"#,
        );
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"predictions":[[0.25,0.75]]}"#)
        );
        let (status, _, body) = post(addr, r#"{"instances": [[1.0]]}"#);
        assert_eq!(status, 400);
        assert!(body.contains("row 0 has 1 values"), "{body}");
        let (status, _, _) = post(
            addr,
            &format!("{{\"instances\": [[{}]]}}", "1,".repeat(600)),
        );
        assert_eq!(status, 413);
        let (status, _, _) = send(
            addr,
            b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 404);
        let (status, _, body) = send(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
        for line in [
            "woodlot_requests_total{code=\"200\"} 4",
            "woodlot_requests_total{code=\"400\"} 1",
            "woodlot_requests_total{code=\"413\"} 1",
            "woodlot_requests_total{code=\"404\"} 1",
            "woodlot_request_seconds_count 7",
            "woodlot_rows_scored_total 3",
            "woodlot_served_version 1",
            "woodlot_refused_swaps_total 0",
        ] {
            assert!(body.lines().any(|l| l == line), "{line} not in\n{body}");
        }
        server.shutdown();
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        send(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    fn post_with_id(addr: SocketAddr, path: &str, id: &str, body: &str) -> (u16, String, String) {
        send(
            addr,
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 x-request-id: {id}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

    #[test]
    fn without_a_guard_feedback_and_guard_answer_404_json() {
        let _turn = crate::serve::tests::turn();
        let t = crate::serve::tests::TempDir::new("http-noguard");
        let mut server = server(&t, HttpOptions::default());
        let addr = server.local_addr();
        let (status, _, body) = post_with_id(
            addr,
            "/feedback",
            "a",
            r#"{"request_ids": ["a"], "y_true": [1]}"#,
        );
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("no guard is running"), "{body}");
        let (status, _, body) = get(addr, "/guard");
        assert_eq!(status, 404, "{body}");
        assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
        let (status, head, body) = post(addr, r#"{"instances": [[1.0, 0.0]]}"#);
        assert_eq!((status, body.as_str()), (200, r#"{"predictions":[1]}"#));
        assert!(!head.contains("x-woodlot-guard"), "{head}");
        server.shutdown();
    }

    #[test]
    fn a_running_guard_is_scored_through_fed_and_detached_once_decided() {
        use crate::guard::{Guard, Mode, StartOptions};
        let _turn = crate::serve::tests::turn();
        let t = crate::serve::tests::TempDir::new("http-guard");
        let mut server = server(&t, HttpOptions::default());
        let addr = server.local_addr();
        let store = server.live().store().clone();
        store
            .save(&crate::serve::tests::model(-0.5), SaveOptions::default())
            .unwrap();
        let mut opts = StartOptions::new(Ref::Number(2));
        opts.mode = Mode::Shadow;
        opts.min_outcomes = 5;
        let started = Guard::start(store.clone(), opts, SegmentLimits::default()).unwrap();
        let follower = server.guard().unwrap().clone();
        follower.tick();
        let g = follower.attached().expect("the running guard is attached");
        assert_eq!(g.spec().guard, started.spec().guard);
        drop(started);

        // Shadow: v1 answers, both are logged, the row ids come back.
        let (status, head, body) = post_with_id(
            addr,
            "/invocations",
            "r1",
            r#"{"instances": [[0.0, 0.0], [1.0, 0.0]]}"#,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            r#"{"predictions":[0,1],"request_ids":["r1/0","r1/1"]}"#
        );
        assert!(head.contains("x-woodlot-version: v1"), "{head}");
        assert!(head.contains("x-woodlot-guard: "), "{head}");
        let (_, _, body) =
            post_with_id(addr, "/invocations", "r2", r#"{"instances": [[0.0, 0.0]]}"#);
        assert_eq!(body, r#"{"predictions":[0],"request_ids":["r2"]}"#);

        // Feedback: bad bodies are 400 with a reason, good ones are recorded and counted.
        for bad in [
            r#"{"request_ids": ["r2"], "y_true": [1, 0]}"#,
            r#"{"request_ids": ["r2"], "y_true": [[1]]}"#,
            r#"{"request_ids": "r2", "y_true": [1]}"#,
            r#"{"request_ids": ["r2"], "y_true": [5]}"#,
        ] {
            let (status, _, body) = post_with_id(addr, "/feedback", "f", bad);
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body.contains("BAD_REQUEST"), "{body}");
        }
        let (status, _, body) = post_with_id(
            addr,
            "/feedback",
            "f",
            r#"{"request_ids": ["r1/0", "r1/1", "r2", "r2", "nope"], "y_true": [0, 1, 0, 0, 1]}"#,
        );
        assert_eq!(status, 200, "{body}");
        let report: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (
                &report["recorded"],
                &report["unknown"],
                &report["duplicate"]
            ),
            (&json!(4), &json!(1), &json!(1)),
            "{body}"
        );
        let (status, _, body) = get(addr, "/guard");
        assert_eq!(status, 200, "{body}");
        let st: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(st["running"], json!(true));
        assert_eq!(st["predictions_logged"], json!(3));
        assert_eq!(st["outcomes_joined"], json!(3));
        assert_eq!(st["spec"]["mode"], json!("shadow"));

        // Stopped from elsewhere: the next round detaches; requests go to the live model.
        Guard::open(store.clone(), g.spec().guard, SegmentLimits::default())
            .unwrap()
            .stop(Some("test".into()))
            .unwrap();
        drop(g);
        follower.tick();
        assert!(follower.attached().is_none());
        let (status, head, body) = post(addr, r#"{"instances": [[1.0, 0.0]]}"#);
        assert_eq!((status, body.as_str()), (200, r#"{"predictions":[1]}"#));
        assert!(!head.contains("x-woodlot-guard"), "{head}");
        let (status, _, body) = get(addr, "/guard");
        assert_eq!(status, 200, "{body}");
        let st: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (&st["running"], &st["decision"]["decision"]),
            (&json!(false), &json!("stopped"))
        );
        let (_, _, metrics) = get(addr, "/metrics");
        for line in [
            "woodlot_guard_decision{decision=\"stopped\"} 1",
            "woodlot_guard_decision{decision=\"none\"} 0",
            "woodlot_guard_running 0",
            "woodlot_guard_predictions_logged 3",
            "woodlot_guard_outcomes_joined 3",
            "woodlot_guard_outcomes_duplicate 0",
            "woodlot_guard_outcomes_unknown 1",
            "woodlot_guard_feedback_recorded_total 4",
            "woodlot_guard_feedback_duplicate_total 1",
            "# TYPE woodlot_guard_e_value gauge",
            "# TYPE woodlot_guard_drift_flagged_features gauge",
        ] {
            assert!(
                metrics.lines().any(|l| l == line),
                "{line} not in\n{metrics}"
            );
        }
        let (status, _, _) = post_with_id(
            addr,
            "/feedback",
            "f",
            r#"{"request_ids": ["r1/0"], "y_true": [0]}"#,
        );
        assert_eq!(status, 404, "no guard runs any more");
        server.shutdown();
    }
}
