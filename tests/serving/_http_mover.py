"""The other process of the swap-under-load test: moves ``active`` of a store back and forth
while the server follows it, and records when each move happened and when the server was
first seen serving its result.

Run as ``python _http_mover.py STORE URL MOVES OUT.json``. Odd moves promote v2 or v3
(alternately), even moves roll back to v1. For each move it records the wall-clock times
just before the call (``t0``) and after it returned (``t1``: the move's commit lies in
[t0, t1]), then asks ``GET /version`` every 2 ms until the server serves the new version
(``seen``: when the first answer naming it arrived), then moves on. Wall-clock
times (``time.time()``) are comparable across processes of one machine."""

from __future__ import annotations

import http.client
import json
import sys
import time
from urllib.parse import urlsplit

import woodlot


def main() -> None:
    store_path, url, moves, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = woodlot.VersionStore(store_path)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    log = []
    for i in range(moves):
        t0 = time.time()
        if i % 2 == 0:
            target = store.promote(2 + (i // 2) % 2)
        else:
            target = store.rollback()
        t1 = time.time()
        want = target.version
        deadline = time.monotonic() + 30
        while True:
            conn.request("GET", "/version")
            r = conn.getresponse()
            doc = json.loads(r.read())
            # After the answer: the server had swapped before it took the model for this
            # request, so every request that starts from now on gets the new version.
            answered = time.time()
            if r.status == 200 and doc["version"] == want:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"move {i}: v{want} not served after 30 s")
            time.sleep(0.002)
        log.append({"version": f"v{want}", "t0": t0, "t1": t1, "seen": answered})
    with open(out, "w") as f:
        json.dump(log, f)


if __name__ == "__main__":
    main()
