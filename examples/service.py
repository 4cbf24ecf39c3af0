"""A small HTTP prediction service that embeds ``woodlot.LiveModel``, using only the standard
library's ``http.server``: it always answers with the store's active version, follows every
promote and rollback within a second without a restart, and prints (and returns) the version
that produced each prediction, so predictions can be logged and joined to outcomes later.

    python examples/service.py                      # demo: a temporary store, a promote, a rollback
    python examples/service.py --store models --port 8000    # serve an existing store until Ctrl-C

    curl -s localhost:8000/predict -d '{"rows": [[13.2, 1.8, 2.1, ...]]}'
    # {"predictions": [0], "version": "v1"}

(For a ready-made server with MLflow's scoring protocol, metrics and SIGTERM draining, use
``woodlot serve --store models``; this file shows how to embed the live model in your own.)
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

import woodlot


def make_handler(live: woodlot.LiveModel) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/predict":
                return self._send(404, {"error": "POST /predict"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
                if length > 1_000_000:
                    return self._send(413, {"error": "body over 1 MB"})
                rows = json.loads(self.rfile.read(length))["rows"]
                labels, version = live.predict(rows, return_version=True)
            except (ValueError, KeyError, TypeError) as e:  # the estimator's own input checks
                return self._send(400, {"error": str(e)})
            print(f"served {len(rows)} row(s) with {version}", flush=True)
            self._send(200, {"predictions": labels.tolist(), "version": version})

        def do_GET(self) -> None:
            st = live.status()
            self._send(200, {"version": st.version, "staleness_seconds": st.staleness_seconds})

        def _send(self, code: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # one line per prediction is enough
            pass

    return Handler


def start(store: woodlot.VersionStore, port: int, poll_seconds: float = 1.0) -> tuple:
    """The service on 127.0.0.1:port, in a background thread: (server, live model)."""
    live = store.live("active", poll_seconds=poll_seconds)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(live))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, live


def predict(port: int, rows: list) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/predict", json.dumps({"rows": rows}), {"Content-Type": "application/json"})
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc


def wait_for_version(port: int, rows: list, version: str, timeout: float = 10.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        doc = predict(port, rows)
        if doc["version"] == version or time.monotonic() > end:
            return doc
        time.sleep(0.05)


def demo() -> None:
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    with tempfile.TemporaryDirectory() as tmp:
        store = woodlot.VersionStore(Path(tmp) / "models")
        v1 = store.save(woodlot.RandomForestClassifier(n_estimators=100, max_depth=4, random_state=42).fit(X_train, y_train))
        v2 = store.save(woodlot.RandomForestClassifier(n_estimators=200, max_depth=6, random_state=42).fit(X_train, y_train))
        store.promote(v1)
        server, live = start(store, port=0, poll_seconds=0.2)
        port = server.server_address[1]
        rows = X_test[:3].tolist()
        try:
            assert predict(port, rows)["version"] == "v1"
            store.promote(v2, reason="demo: v2 goes live")  # no restart: the service follows
            assert wait_for_version(port, rows, "v2")["version"] == "v2"
            store.rollback(reason="demo: back to v1")
            assert wait_for_version(port, rows, "v1")["version"] == "v1"
            print(f"followed {v1.name} -> {v2.name} -> {v1.name} without a restart; {live!r}")
        finally:
            server.shutdown()
            server.server_close()
            live.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="A small HTTP service embedding woodlot.LiveModel.")
    ap.add_argument("--store", help="serve this existing store until Ctrl-C (default: a self-contained demo)")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    if args.store is None:
        return demo()
    server, live = start(woodlot.VersionStore(args.store), args.port)
    print(f"serving {live.version.name} of {args.store} on http://127.0.0.1:{args.port}/predict", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        live.close()


if __name__ == "__main__":
    main()
