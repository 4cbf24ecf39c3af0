"""The HTTP scoring server: ``woodlot.serve(...)`` and ``woodlot serve``.

>>> woodlot.serve("models")                                   # blocks; Ctrl-C or SIGTERM drains and returns
>>> with woodlot.serve("models", port=0, block=False) as server:
...     requests.post(server.url + "/invocations", json={"instances": [[...]]})

The server is Rust (``src/serve/http.rs``: hyper on tokio): the watcher that follows the store,
the runtime's threads that parse and score, all run without the GIL; Python starts it, stops
it, and logs its notices (swaps, refusals, failed checks, recoveries) to the ``woodlot``
logger. ``POST /invocations`` takes MLflow's scoring-server inputs (JSON ``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``; ``text/csv`` with a header row) and answers
``{"predictions": [...]}``; ``?output=proba`` (or ``"params": {"predict_proba": true}``)
asks for probabilities. ``GET /ping``, ``/version`` and ``/metrics`` (Prometheus) tell what
is served.

Guarded deployment: a server of ``active`` follows the store's running guard (one started by
``store.guard(...)`` in any process, or by ``serve(..., guard="v2")``), noticed within
``poll_seconds``. While it runs, every ``/invocations`` request is scored by both versions and
both outputs are logged with the row ids (the request's ``x-request-id`` for one row,
``<id>/<i>`` for row ``i`` of more), returned as ``"request_ids"`` beside ``predictions``;
``x-woodlot-version`` names the version that answered. ``POST /feedback`` with
``{"request_ids": [...], "y_true": [...]}`` records the true labels (the only endpoint that
writes to the store); the server checks the guard every poll and soon after feedback, and
carries out its decision (a worse probation candidate is rolled back by the server itself).
``GET /guard`` shows the guard's status; ``/metrics`` its gauges. Stopping the server flushes
the prediction log; after a SIGKILL at most the rows of the last poll interval (or
``guard_flush_seconds``, whichever is shorter) are lost, and their outcomes count as unknown.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
from typing import Any, Dict, Mapping, Optional

from dataclasses import dataclass

from ._guard import GuardStatus
from ._live import LiveStatus
from ._location import open_native_store
from ._native import NativeHttpServer, NativeStore
from ._records import _ref

__all__ = ["serve", "Server", "ServerStatus"]

logger = logging.getLogger("woodlot")

_LEVELS = {
    "swapped": logging.INFO,
    "recovered": logging.INFO,
    "check_failed": logging.WARNING,
    "refused": logging.ERROR,
}

#: Defaults shared with the command line.
DEFAULT_MAX_BODY_BYTES = 8 << 20
DEFAULT_MAX_BODY_BYTES_IN_FLIGHT = 64 << 20


@dataclass(frozen=True)
class ServerStatus(LiveStatus):
    """A server's :class:`~woodlot.LiveStatus`, plus the status of the guard it follows
    (``None`` when it has seen none)."""

    guard: Optional[GuardStatus] = None


_GUARD_MODES = ("probation", "shadow", "canary")
_GUARD_METRICS = ("log_loss", "accuracy")


class Server:
    """A running ``woodlot.serve`` server. ``url``, ``host``, ``port`` say where it listens;
    ``status()`` is the served model's :class:`~woodlot.LiveStatus`; ``stop()`` (or leaving a
    ``with`` block) stops accepting, lets requests in flight finish and stops the watcher."""

    def __init__(self, native: NativeHttpServer, store_path: str) -> None:
        self._native = native
        self._store_path = store_path
        self._logged = 0
        self._log_lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return self._native.url

    @property
    def host(self) -> str:
        return self._native.host

    @property
    def port(self) -> int:
        """The bound port (the real one when ``port=0`` asked for an ephemeral one)."""
        return self._native.port

    @property
    def running(self) -> bool:
        return self._native.running

    def status(self) -> ServerStatus:
        """What is served and how the watching goes, with the guard's status when the server
        follows one (also logs notices not logged yet)."""
        self.log_notices()
        live = LiveStatus._from_json(json.loads(self._native.status()))
        return ServerStatus(**vars(live), guard=self.guard_status())

    def guard_status(self) -> Optional[GuardStatus]:
        """The followed guard's status now (or the last guard's final one); ``None`` when the
        server has seen no guard. ``GET /guard`` answers the same."""
        text = self._native.guard_status()
        return None if text is None else GuardStatus._from_json(text)

    def log_notices(self) -> None:
        """Logs the swaps, refusals, failed checks and recoveries not logged yet to the
        ``woodlot`` logger (``serve(block=True)`` does this four times a second)."""
        with self._log_lock:
            notices, dropped = self._native.notices_since(self._logged)
            if dropped:
                logger.warning("server of %s: %d older notice(s) were dropped unlogged", self._store_path, dropped)
            for n in json.loads(notices):
                logger.log(_LEVELS.get(n["kind"], logging.WARNING), "serve: %s", n["message"])
                self._logged = n["seq"]

    def stop(self) -> None:
        """Stops accepting, lets requests in flight finish (up to ``drain_timeout``), stops the
        watcher. Idempotent."""
        self._native.stop()
        self.log_notices()

    def serve_forever(self) -> None:
        """Blocks until SIGTERM or SIGINT (in the main thread; elsewhere until ``stop()``),
        logging notices meanwhile, then stops gracefully."""
        stopping = threading.Event()
        previous: Dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: stopping.set())
        try:
            while self.running and not stopping.wait(0.25):
                self.log_notices()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self.stop()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Server({self.url}, store={self._store_path!r}: {state})"


def _number(name: str, value: Any, low: float, high: float, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        want = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {want}, got {type(value).__name__}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must lie between {low:g} and {high:g}, got {value!r}")
    return value


def serve(
    store: Any,
    ref: Any = "active",
    host: str = "127.0.0.1",
    port: int = 8080,
    poll_seconds: float = 1.0,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_body_bytes_in_flight: int = DEFAULT_MAX_BODY_BYTES_IN_FLIGHT,
    header_timeout: float = 10.0,
    body_timeout: float = 30.0,
    max_connections: int = 1024,
    workers: int = 2,
    drain_timeout: float = 30.0,
    storage_options: Optional[Mapping[str, Any]] = None,
    block: bool = True,
    guard: Any = None,
    guard_mode: str = "probation",
    guard_metric: str = "log_loss",
    guard_alpha: float = 0.05,
    guard_margin: float = 0.0,
    guard_min_outcomes: int = 200,
    canary_fraction: Optional[float] = None,
    auto_promote: bool = False,
    guard_flush_seconds: float = 5.0,
) -> Server:
    """Serve what ``ref`` of ``store`` points to over HTTP, following every promote and
    rollback within ``poll_seconds`` plus the new version's load time.

    ``store`` is a :class:`VersionStore` or a directory / ``s3://`` URL (a local directory
    must exist). The server binds ``host:port`` (loopback by default; ``port=0`` picks a free
    port, see ``Server.port``). It starts even when nothing can be served yet (``/ping`` and
    ``/invocations`` answer 503 until a verified version is). Bodies over ``max_body_bytes``
    get a 413; at most ``max_body_bytes_in_flight`` bytes of bodies are buffered at once;
    clients must send headers within ``header_timeout`` and bodies within ``body_timeout``
    seconds; ``workers`` threads parse and score. With ``block=True`` (the default) this
    returns only after SIGTERM or SIGINT, once requests in flight have finished; with
    ``block=False`` it returns the running :class:`Server` (a context manager).

    With ``guard`` (a version), the server first starts a guard of it against the active
    version (``guard_mode`` probation, shadow or canary; ``guard_metric``, ``guard_alpha``,
    ``guard_margin``, ``guard_min_outcomes``, ``canary_fraction``, ``auto_promote`` as in
    ``store.guard``), or resumes that candidate's guard if it is already running (a restarted
    server picks up where it left off). ``guard_flush_seconds`` bounds how long a logged
    prediction waits in memory. Without ``guard`` a server of ``active`` still follows any
    guard the store runs.
    """
    native_store = getattr(store, "_native", None)
    if isinstance(native_store, NativeStore):
        if storage_options is not None:
            raise TypeError("storage_options only apply when store is a path or URL")
        path = store.path
    elif isinstance(store, (str, os.PathLike)):
        path = os.fspath(store)
        if "://" not in path and not os.path.isdir(path):
            raise FileNotFoundError(f"no store at {path!r}: give the directory of an existing store or an s3:// URL")
        native_store = open_native_store(path, storage_options)
    else:
        raise TypeError(f"store must be a woodlot.VersionStore, a directory or an s3:// URL, got {type(store).__name__}")
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a non-empty string, got {host!r}")
    _number("port", port, 0, 65535, integer=True)
    _number("poll_seconds", poll_seconds, 0.001, 86400)
    _number("max_body_bytes", max_body_bytes, 1, 2**32 - 1, integer=True)
    _number("max_body_bytes_in_flight", max_body_bytes_in_flight, 1, 2**61, integer=True)
    _number("max_connections", max_connections, 1, 1 << 20, integer=True)
    _number("workers", workers, 1, 1024, integer=True)
    for name, value in (("header_timeout", header_timeout), ("body_timeout", body_timeout), ("drain_timeout", drain_timeout)):
        _number(name, value, 0.001, 86400)
    if guard is not None:
        if guard_mode not in _GUARD_MODES:
            raise ValueError(f"guard_mode must be one of {', '.join(_GUARD_MODES)}, got {guard_mode!r}")
        if guard_metric not in _GUARD_METRICS:
            raise ValueError(f"guard_metric must be one of {', '.join(_GUARD_METRICS)}, got {guard_metric!r}")
    _number("guard_alpha", guard_alpha, 1e-12, 0.5)
    _number("guard_margin", guard_margin, 0, 1e6)
    _number("guard_min_outcomes", guard_min_outcomes, 1, 2**53, integer=True)
    _number("guard_flush_seconds", guard_flush_seconds, 0.001, 86400)
    if canary_fraction is None:
        canary_fraction = 0.1 if guard_mode == "canary" else 0.0
    _number("canary_fraction", canary_fraction, 0, 1)
    native = NativeHttpServer(
        native_store,
        _ref(ref),
        host,
        int(port),
        float(poll_seconds),
        int(max_body_bytes),
        int(max_body_bytes_in_flight),
        float(header_timeout),
        float(body_timeout),
        int(max_connections),
        int(workers),
        float(drain_timeout),
        None if guard is None else _ref(guard, "guard"),
        guard_mode,
        guard_metric,
        float(guard_alpha),
        float(guard_margin),
        int(guard_min_outcomes),
        float(canary_fraction),
        bool(auto_promote),
        float(guard_flush_seconds),
    )
    server = Server(native, path)
    server.log_notices()
    if block:
        server.serve_forever()
    return server
