"""Swap under load over HTTP: client threads send scoring requests continuously while another
process moves ``active`` 100 times (promote, rollback, promote, ...).

Checked: zero failed requests; every answer equals, to the last bit printed, the answer of
the version its ``x-woodlot-version`` header names (no half-loaded or mixed model); every
response's version was active at some moment during its request, or had been replaced less
than that move's measured visibility delay before the request started (a server polling
every ``poll`` seconds cannot know sooner); and each move was visible within the poll
interval plus the new version's load time (with a fixed allowance for this loaded 2-core
machine's scheduling, printed)."""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import woodlot
from tests.serving._http_util import Client
from tests.serving._live_util import small_models

MOVES = 100
POLL = 0.1
#: Scheduling allowance on top of poll + load (the mover's 2 ms polling, HTTP round trips,
#: a busy machine).
SLACK = 0.3
CLIENTS = 4


def test_clients_see_every_move_and_only_versions_that_were_active(tmp_path):
    models, X_test = small_models(3)
    path = tmp_path / "models"
    store = woodlot.VersionStore(path)
    versions = [store.save(m) for m in models]
    store.promote(versions[0])
    rows = X_test[:5]
    expected = {v.name: m.predict_proba(rows) for v, m in zip(versions, models)}
    body = json.dumps({"instances": rows.tolist()}).encode()

    with woodlot.serve(store, port=0, poll_seconds=POLL, block=False) as server:
        stop = threading.Event()
        results = [[] for _ in range(CLIENTS)]
        failures = []

        def client(out):
            c = Client(server.url)
            while not stop.is_set():
                s = time.time()
                status, headers, data = c.request(
                    "POST", "/invocations?output=proba", body, {"Content-Type": "application/json"}
                )
                e = time.time()
                version = headers.get("x-woodlot-version")
                if status != 200 or version not in expected:
                    failures.append((status, version, data[:200]))
                    continue
                got = np.array(json.loads(data)["predictions"])
                if not np.allclose(got, expected[version], rtol=0, atol=1e-12):
                    failures.append(("mixed", version, data[:200]))
                out.append((s, e, version))
            c.close()

        threads = [threading.Thread(target=client, args=(results[i],)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        log_path = tmp_path / "moves.json"
        started = time.monotonic()
        try:
            mover = subprocess.run(
                [sys.executable, str(Path(__file__).with_name("_http_mover.py")), str(path), server.url, str(MOVES), str(log_path)],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        took = time.monotonic() - started
        assert mover.returncode == 0, mover.stderr
        status = server.status()

    moves = json.loads(log_path.read_text())
    responses = [r for rs in results for r in rs]
    assert not failures, failures[:5]
    assert len(moves) == MOVES and status.swaps == MOVES and status.refused_swaps == 0
    load = status.last_load_seconds or 0.0
    delays = [m["seen"] - m["t1"] for m in moves]
    print(
        f"\n{len(responses)} responses from {CLIENTS} clients during {MOVES} moves in {took:.1f} s; "
        f"visibility after a move: median {np.median(delays) * 1e3:.0f} ms, max {max(delays) * 1e3:.0f} ms "
        f"(poll {POLL * 1e3:.0f} ms, load {load * 1e3:.1f} ms)"
    )
    late = [(i, round(d, 3)) for i, d in enumerate(delays) if d > POLL + load + SLACK]
    assert not late, f"moves seen later than poll + load + {SLACK} s: {late}"
    # When each version may have been served: from the start of the move that made it active
    # (its commit lies after t0) until the server was seen serving the next one.
    windows = [("v1", float("-inf"), moves[0]["seen"])]
    for i, m in enumerate(moves):
        end = moves[i + 1]["seen"] if i + 1 < len(moves) else float("inf")
        windows.append((m["version"], m["t0"], end))
    begins = [w[1] for w in windows]  # increasing, as are the ends
    for s, e, version in responses:
        i = bisect.bisect_right(begins, e) - 1
        candidates = []
        while i >= 0 and windows[i][2] >= s:
            candidates.append(windows[i][0])
            i -= 1
        assert version in candidates, f"a response of {version} in [{s:.4f}, {e:.4f}], when only {candidates} may be served"
    # The load was real: requests started between (almost) every two moves.
    response_starts = sorted(s for s, _, _ in responses)
    busy = sum(
        1
        for a, b in zip(begins[1:], begins[2:])
        if bisect.bisect_left(response_starts, b) > bisect.bisect_left(response_starts, a)
    )
    assert busy >= (MOVES - 1) * 0.9, f"requests ran between only {busy} of {MOVES - 1} pairs of moves"
    assert {v for _, _, v in responses} == {"v1", "v2", "v3"}
