//! The HTTP/1.1 scoring server: hyper on a tokio runtime of its own, in front of a
//! [`LiveModel`]. A first cut of `woodlot serve` (issue 10): `GET /ping`, `GET /version`,
//! `GET /metrics` (Prometheus text: requests by status,
//! latency histogram, rows scored, served version, swaps, refusals, staleness), `POST
//! /invocations` (JSON bodies in MLflow's formats, see [`input`](super::input)); every
//! response names the served version (`x-woodlot-version`) and carries a request id
//! (`x-request-id`, the client's if it sent one). Bad input gets a 400 with a JSON body naming
//! the problem; a body over the limit gets a 413; scoring runs on the runtime's worker
//! threads, never under a Python lock. [`HttpServer::shutdown`] stops accepting and lets the
//! requests in flight finish. No endpoint writes to the store.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::error::{Result, WoodlotError};
use crate::forest::predict::argmax_rows;
use crate::serve::input::{parse_json, Features};
use crate::serve::live::LiveModel;

/// How the server listens.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Address to bind; loopback unless told otherwise.
    pub addr: SocketAddr,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// How long a client may take to send its request headers.
    pub header_timeout: Duration,
    /// Worker threads of the runtime.
    pub workers: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 << 20,
            header_timeout: Duration::from_secs(10),
            workers: 2,
        }
    }
}

/// A running server; [`HttpServer::shutdown`] (or drop) stops it.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

/// Upper bounds (seconds) of the latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 10] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0,
];
/// Status codes counted one by one; anything else is counted as `other`.
const CODES: [u16; 8] = [200, 400, 404, 405, 413, 415, 500, 503];

/// Counters for `/metrics`: atomics only, so counting never contends with scoring.
#[derive(Default)]
struct Counters {
    by_code: [AtomicU64; CODES.len() + 1],
    rows: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_micros: AtomicU64,
}

impl Counters {
    fn record(&self, code: u16, seconds: f64) {
        let i = CODES.iter().position(|&c| c == code).unwrap_or(CODES.len());
        self.by_code[i].fetch_add(1, Ordering::Relaxed);
        let b = LATENCY_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[b].fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

struct App {
    live: Arc<LiveModel>,
    max_body: usize,
    next_id: AtomicU64,
    counters: Counters,
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

fn error_reply(status: StatusCode, message: &str) -> Reply {
    json_reply(
        status,
        &json!({"error_code": status.as_u16(), "message": message}),
    )
}

impl App {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> std::result::Result<Reply, Infallible> {
        let id = req
            .headers()
            .get("x-request-id")
            .filter(|v| v.len() <= 128)
            .cloned()
            .unwrap_or_else(|| {
                let n = self.next_id.fetch_add(1, Ordering::Relaxed);
                HeaderValue::from_str(&format!("{}-{n}", std::process::id()))
                    .unwrap_or(HeaderValue::from_static("0"))
            });
        let started = std::time::Instant::now();
        let served = self.live.served().ok();
        let mut resp = match (req.method(), req.uri().path()) {
            (&Method::GET, "/metrics") => {
                reply(StatusCode::OK, "text/plain; version=0.0.4", self.metrics())
            }
            (&Method::GET, "/ping") => match &served {
                Some(_) => reply(StatusCode::OK, "text/plain", "ok\n"),
                None => error_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no verified model loaded yet",
                ),
            },
            (&Method::GET, "/version") => match &served {
                Some(s) => json_reply(
                    StatusCode::OK,
                    &serde_json::to_value(&*s.manifest).unwrap_or(Value::Null),
                ),
                None => error_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no verified model loaded yet",
                ),
            },
            (&Method::POST, "/invocations") => self.invocations(req, served.clone()).await,
            (_, "/ping" | "/version" | "/invocations" | "/metrics") => {
                error_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            }
            _ => error_reply(StatusCode::NOT_FOUND, "no such endpoint"),
        };
        self.counters
            .record(resp.status().as_u16(), started.elapsed().as_secs_f64());
        let h = resp.headers_mut();
        h.insert("x-request-id", id);
        if let Some(s) = &served {
            if let Ok(v) = HeaderValue::from_str(&s.name()) {
                h.insert("x-woodlot-version", v);
            }
        }
        Ok(resp)
    }

    async fn invocations(
        &self,
        req: Request<Incoming>,
        served: Option<Arc<crate::serve::Served>>,
    ) -> Reply {
        let Some(served) = served else {
            return error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "no verified model loaded yet",
            );
        };
        let json_body = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.starts_with("application/json"));
        if !json_body {
            return error_reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send application/json (text/csv is not supported yet)",
            );
        }
        let body = match Limited::new(req.into_body(), self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return error_reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the body is larger than {} bytes", self.max_body),
                )
            }
            Err(e) => {
                return error_reply(StatusCode::BAD_REQUEST, &format!("reading the body: {e}"))
            }
        };
        let features = Features::of(&served.manifest);
        let parsed = match parse_json(&body, &features) {
            Ok(p) => p,
            Err(e) => return error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let proba_wanted = parsed
            .params
            .get("predict_proba")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let proba = match served.forest.predict_proba(parsed.x.view(), 1) {
            Ok(p) => p,
            Err(e) => return error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        self.counters
            .rows
            .fetch_add(proba.nrows() as u64, Ordering::Relaxed);
        let predictions: Vec<Value> = if proba_wanted {
            proba
                .rows()
                .into_iter()
                .map(|r| json!(r.to_vec()))
                .collect()
        } else {
            let classes = served.manifest.model.classes.as_array();
            argmax_rows(&proba)
                .into_iter()
                .map(|k| {
                    classes
                        .and_then(|c| c.get(k as usize).cloned())
                        .unwrap_or_else(|| json!(k))
                })
                .collect()
        };
        json_reply(StatusCode::OK, &json!({ "predictions": predictions }))
    }
}

impl App {
    /// Prometheus' text exposition format.
    fn metrics(&self) -> String {
        use std::fmt::Write;
        let c = &self.counters;
        let st = self.live.status();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP woodlot_requests_total HTTP requests answered, by status code."
        );
        let _ = writeln!(out, "# TYPE woodlot_requests_total counter");
        for (i, n) in c.by_code.iter().enumerate() {
            let code = CODES.get(i).map_or("other".to_string(), |c| c.to_string());
            let _ = writeln!(
                out,
                "woodlot_requests_total{{code=\"{code}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP woodlot_request_seconds Time to answer a request."
        );
        let _ = writeln!(out, "# TYPE woodlot_request_seconds histogram");
        let mut cumulative = 0;
        for (i, n) in c.latency.iter().enumerate() {
            cumulative += n.load(Ordering::Relaxed);
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "woodlot_request_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "woodlot_request_seconds_sum {}\nwoodlot_request_seconds_count {cumulative}",
            c.latency_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let gauges: [(&str, &str, &str, f64); 6] = [
            (
                "rows_scored_total",
                "counter",
                "Rows scored.",
                c.rows.load(Ordering::Relaxed) as f64,
            ),
            (
                "served_version",
                "gauge",
                "The version served (0: none).",
                st.version.unwrap_or(0) as f64,
            ),
            (
                "swaps_total",
                "counter",
                "Times the served model was replaced.",
                st.swaps as f64,
            ),
            (
                "refused_swaps_total",
                "counter",
                "Targets refused because they failed to load or verify.",
                st.refused_swaps as f64,
            ),
            (
                "failed_checks_total",
                "counter",
                "Store checks that failed.",
                st.failed_checks as f64,
            ),
            (
                "seconds_since_last_successful_check",
                "gauge",
                "Staleness of the served version.",
                st.staleness_seconds,
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP woodlot_{name} {help}\n# TYPE woodlot_{name} {kind}\nwoodlot_{name} {v}"
            );
        }
        out
    }
}

impl HttpServer {
    /// Binds and starts serving `live` on a runtime of its own.
    pub fn start(live: Arc<LiveModel>, options: HttpOptions) -> Result<Self> {
        let io = |context: &str, source| WoodlotError::Io {
            context: context.into(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.workers.max(1))
            .thread_name("woodlot-http")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| io("starting the HTTP runtime", e))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(options.addr))
            .map_err(|e| io(&format!("binding {}", options.addr), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| io("reading the bound address", e))?;
        let app = Arc::new(App {
            live,
            max_body: options.max_body_bytes,
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let header_timeout = options.header_timeout;
        let thread = std::thread::Builder::new()
            .name("woodlot-http-main".into())
            .spawn(move || runtime.block_on(accept_loop(listener, app, stopped, header_timeout)))
            .map_err(|e| io("starting the HTTP thread", e))?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, and waits for that.
    pub fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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
    header_timeout: Duration,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                let mut stop = stopped.clone();
                connections.spawn(async move {
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
            }
        }
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use crate::serve::live::LiveOptions;
    use crate::store::{Ref, SaveOptions, Store};

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

    #[test]
    fn serves_ping_version_and_invocations_with_version_and_request_id() {
        let _turn = crate::serve::tests::turn();
        let t = crate::serve::tests::TempDir::new("http");
        let store = Store::open(&t.0).unwrap();
        store
            .save(&crate::serve::tests::model(0.5), SaveOptions::default())
            .unwrap();
        store.promote(&Ref::Number(1), None, None).unwrap();
        let live = Arc::new(
            LiveModel::open(Arc::new(store), Ref::Active, LiveOptions::default()).unwrap(),
        );
        let mut server = HttpServer::start(
            live,
            HttpOptions {
                addr: "127.0.0.1:0".parse().unwrap(),
                max_body_bytes: 1000,
                ..HttpOptions::default()
            },
        )
        .unwrap();
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
}
