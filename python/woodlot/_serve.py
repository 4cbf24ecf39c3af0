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
is served. No endpoint writes to the store.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
from typing import Any, Dict, Mapping, Optional

from ._live import LiveStatus
from ._location import open_native_store
from ._native import NativeHttpServer, NativeStore
from ._records import _ref

__all__ = ["serve", "Server"]

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

    def status(self) -> LiveStatus:
        """What is served and how the watching goes (also logs notices not logged yet)."""
        self.log_notices()
        return LiveStatus._from_json(json.loads(self._native.status()))

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
            for sig, handler in previous.items():
                signal.signal(sig, handler)
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
    )
    server = Server(native, path)
    server.log_notices()
    if block:
        server.serve_forever()
    return server
