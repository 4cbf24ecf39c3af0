"""Swap under load: client threads predict continuously while another process promotes and
rolls back; no call fails, every answer is the reported version's own, and every move is
followed within the poll interval plus the load time."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import woodlot
from tests.serving._live_util import proba_by_version, small_models

MOVES = int(os.environ.get("WOODLOT_LIVE_MOVES", "50"))
SPACING = 0.5  # seconds between two moves
POLL = 0.05
# How long after a move the old version may still be served: one poll interval, plus loading
# and verifying the new target, plus scheduling slack on a busy 2-core machine.
LAG = POLL + 0.25
CLIENTS = 4

MOVER = textwrap.dedent(
    """
    import json, sys, time
    import woodlot
    store = woodlot.VersionStore(sys.argv[1])
    moves, spacing = int(sys.argv[2]), float(sys.argv[3])
    names = [v.name for v in store.versions()]
    active = store.active.name
    for i in range(moves):
        time.sleep(spacing)
        before = time.monotonic()
        if i % 3 == 2:
            now = store.rollback(reason=f"move {i}").name
        else:
            target = names[(names.index(active) + 1 + i % 2) % len(names)]
            now = store.promote(target, reason=f"move {i}").name
        after = time.monotonic()
        assert now != active, (i, now, active)
        active = now
        print(json.dumps({"before": before, "after": after, "version": now}), flush=True)
    """
)


def test_swaps_under_load_from_another_process(tmp_path):
    models, X_test = small_models(3)
    path = tmp_path / "models"
    store = woodlot.VersionStore(path)
    for m in models:
        store.save(m)
    store.promote("v1")
    row = X_test[:1]
    expected = proba_by_version(store, row)

    live = woodlot.LiveModel(store, poll_seconds=POLL)
    calls, failures = [], []
    stop = threading.Event()

    def client():
        starts, ends, versions = [], [], []
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                proba, version = live.predict_proba(row, return_version=True)
            except Exception as e:  # noqa: BLE001 - every failure is a test failure
                failures.append(repr(e))
                continue
            t1 = time.monotonic()
            if not np.array_equal(proba, expected[version]):
                failures.append(f"{version} answered with another version's probabilities")
            starts.append(t0)
            ends.append(t1)
            versions.append(version)
        calls.append((starts, ends, versions))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    start = time.monotonic()
    for t in threads:
        t.start()
    mover = subprocess.run(
        [sys.executable, "-c", MOVER, str(path), str(MOVES), str(SPACING)],
        capture_output=True,
        text=True,
        timeout=MOVES * SPACING * 3 + 60,
    )
    time.sleep(LAG + 0.1)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    end = time.monotonic()
    status = live.status()
    live.close()

    assert mover.returncode == 0, mover.stderr[-3000:]
    moves = [json.loads(line) for line in mover.stdout.splitlines()]
    assert len(moves) == MOVES
    assert not failures, failures[:5]
    # When each version may have been active: from the start of the move that made it active
    # to the end of the next move (the commit point lies somewhere inside each call).
    spans = [("v1", start, moves[0]["after"])]
    for i, m in enumerate(moves):
        until = moves[i + 1]["after"] if i + 1 < len(moves) else end
        spans.append((m["version"], m["before"], until))

    t0 = np.concatenate([np.array(c[0]) for c in calls])
    t1 = np.concatenate([np.array(c[1]) for c in calls])
    version = np.concatenate([np.array([int(v[1:]) for v in c[2]]) for c in calls])
    n_calls = len(t0)
    assert n_calls > 1000

    # 1. Every answer came from a version that was active during the call, or at most LAG
    #    before it started (a promotion is seen at the next poll, not at its commit).
    ok = np.zeros(n_calls, dtype=bool)
    for v, lo, hi in spans:
        ok |= (version == int(v[1:])) & (t1 >= lo) & (t0 - LAG <= hi)
    bad = np.flatnonzero(~ok)
    assert not len(bad), (
        f"{len(bad)} of {n_calls} answers from a version not active then: "
        f"{[(t0[k], t1[k], version[k]) for k in bad[:3]]}"
    )

    # 2. After each move, every call that starts once LAG has passed (until the next move)
    #    gets the new version, and there are such calls: the move was followed in time.
    for i, m in enumerate(moves):
        lo = m["after"] + LAG
        hi = moves[i + 1]["before"] if i + 1 < len(moves) else end - 0.1
        window = (t0 >= lo) & (t1 <= hi)
        assert window.any(), f"no call between move {i} + {LAG} s and the next move"
        wrong = window & (version != int(m["version"][1:]))
        assert not wrong.any(), (
            f"move {i} to {m['version']}: {int(wrong.sum())} later calls got another version"
        )

    assert status.swaps == MOVES and status.refused_swaps == 0 and status.failed_checks == 0
    print(
        f"\n{n_calls} calls from {CLIENTS} threads during {MOVES} moves in {end - start:.1f} s; "
        f"last load {status.last_load_seconds * 1e3:.2f} ms"
    )
