"""What scoring through a guard costs the HTTP server: the same ``woodlot serve`` (in-process,
Rust, 2 workers) over the same store, without a guard and with a shadow guard (both versions
score every row and both outputs are logged to the store), in the same run (ratios, not
absolutes).

Each cell: ``--threads`` client threads (http.client, keep-alive) POST 1-row or 100-row
``instances`` bodies for ``--seconds``; reported: requests/s, rows/s, p50/p99 latency, and the
guarded/unguarded ratio. Then the prediction-log segments the guarded run wrote (rows per
segment: the server checks, and so flushes, every poll interval, 0.2 s here).

    python bench/bench_serve_guard.py [--seconds 5] [--threads 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import woodlot


def _fit(X, y, seed):
    return woodlot.RandomForestClassifier(n_estimators=100, max_depth=6, random_state=seed).fit(X, y)


def _load(url, body, seconds, threads):
    host, port = url.split("//")[1].split(":")
    lat, stop = [], time.monotonic() + seconds
    lock = threading.Lock()

    def run(k):
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        mine = []
        n = 0
        while time.monotonic() < stop:
            t = time.perf_counter()
            c.request("POST", "/invocations", body, {"Content-Type": "application/json", "x-request-id": f"t{k}-{n}"})
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
            mine.append(time.perf_counter() - t)
            n += 1
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    return len(lat) / seconds, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 10))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    with tempfile.TemporaryDirectory() as d:
        store = woodlot.VersionStore(Path(d) / "models")
        store.promote(store.save(_fit(X, y, 1)))
        store.save(_fit(X, y, 2))
        bodies = {rows: json.dumps({"instances": X[:rows].tolist()}).encode() for rows in (1, 100)}
        with woodlot.serve(store, port=0, poll_seconds=0.2, block=False) as server:
            plain = {rows: _load(server.url, b, a.seconds, a.threads) for rows, b in bodies.items()}
            g = store.guard("v2", mode="shadow", min_outcomes=10**9)
            time.sleep(0.5)
            assert server.guard_status() is not None
            guarded = {rows: _load(server.url, b, a.seconds, a.threads) for rows, b in bodies.items()}
            st = server.guard_status()
            g.stop("bench")
        print(f"{a.threads} client threads, {a.seconds:g} s per cell, 100 trees depth 6, 10 features")
        print(f"{'rows':>5} {'plain req/s':>12} {'guarded req/s':>14} {'ratio':>6} {'plain p50/p99 ms':>17} {'guarded p50/p99 ms':>19}")
        for rows in bodies:
            p, q = plain[rows], guarded[rows]
            print(f"{rows:>5} {p[0]:>12.0f} {q[0]:>14.0f} {q[0] / p[0]:>6.2f} {p[1]:>8.2f}/{p[2]:<8.2f} {q[1]:>9.2f}/{q[2]:<8.2f}")
        segments = len(list((Path(d) / "models" / "guard").glob(f"{st.guard:012}-p-*.json")))
        print(f"prediction rows logged {st.predictions_logged} in {segments} segments "
              f"({st.predictions_logged / max(segments, 1):.0f} rows per segment)")


if __name__ == "__main__":
    main()
