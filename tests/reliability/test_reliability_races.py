"""Real processes racing on one store (forked from a fork server, released together by a go
file): promotions with the same expectation have exactly one winner and write exactly one
event; concurrent saves get distinct, gapless numbers and intact blobs (also while gc runs with
a zero grace period in a loop); several churning writers killed with SIGKILL leave a clean store
in which every operation each of them completed is recorded.

The promotions, the saves and the churners run twice: with the advisory writer lock, and with
every writer skipping it (WOODLOT_TEST_NO_LOCK=1, src/store/backend/local.rs), so that the
create-only protocol itself is what keeps them apart across processes. (gc racing saves is run
with the lock only: the lock is what keeps a zero-grace gc from a blob a save has written but
not yet referenced.) test_a_writer_without_the_lock_does_not_wait_for_it shows the switch works.

Counts: WOODLOT_PROMOTE_ROUNDS (default 4) rounds of 8 promoters, each with and without the
lock; 8 savers x 4 saves with gc looping (lock); 8 savers x 4 saves without the lock; 4
churners killed after 2.5 s, with and without the lock.
(test_store_concurrency.py holds the first single-round versions of the first two.)
"""

import json
import signal
import time
from pathlib import Path

import pytest

import woodlot
from tests.reliability._budget import env_int
from tests.reliability._checks import check_store
from tests.reliability._models import small_model
from tests.reliability._workers_store import (
    worker_churn,
    worker_gc_loop,
    worker_lock_holder,
    worker_promoter,
    worker_save_once,
    worker_saver,
)
from tests.reliability._zygote import wait_for

PROMOTE_ROUNDS = env_int("WOODLOT_PROMOTE_ROUNDS", 4)
SAVERS, SAVES_EACH = 8, 4



@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("race-models")
    (d / "model.wdl").write_bytes(woodlot.dumps(small_model(0)))
    (d / "alt1.wdl").write_bytes(woodlot.dumps(small_model(1, n_estimators=4)))
    return d


def _release(go: Path, settle: float = 0.3):
    time.sleep(settle)  # every child is forked and polling for the go file
    go.write_text("go")


LOCKING = {"lock": None, "no-lock": {"WOODLOT_TEST_NO_LOCK": 1}}


@pytest.mark.parametrize("locking", LOCKING)
@pytest.mark.parametrize("rnd", range(PROMOTE_ROUNDS))
def test_eight_promoters_with_one_expectation_have_one_winner(tmp_path, zygote, models, rnd, locking):
    root = tmp_path / "store"
    store = woodlot.VersionStore(root)
    data = (models / "model.wdl").read_bytes()
    for _ in range(10):
        store.save(data)
    expect = 1 + rnd % 3
    store.promote(expect)
    events_before = len(store.history())
    targets = [v for v in range(1, 11) if v != expect][:8]
    if rnd % 2:
        targets = [targets[0]] * 8  # all racing for the same target
    go = tmp_path / "go"
    outs = [tmp_path / f"out{i}" for i in range(8)]
    pids = [zygote.start(worker_promoter, str(root), str(go), t, expect, str(o), LOCKING[locking])
            for t, o in zip(targets, outs)]
    _release(go)
    for pid in pids:
        assert zygote.wait(pid) == {"code": 0}
    results = [o.read_text() for o in outs]
    assert results.count("won") == 1 and results.count("conflict") == 7, results
    winner = targets[results.index("won")]
    history = store.history()
    assert len(history) == events_before + 1, [e.kind for e in history[events_before:]]
    assert history[-1].kind == "promote" and history[-1].raw["version"] == winner
    assert store.active.version == winner
    check_store(root)


def test_concurrent_saves_with_gc_looping_lose_nothing(tmp_path, zygote, models):
    root = tmp_path / "store"
    woodlot.VersionStore(root)
    go, stop = tmp_path / "go", tmp_path / "stop"
    gc_out = tmp_path / "gc.json"
    gc_pid = zygote.start(worker_gc_loop, str(root), str(go), str(stop), str(gc_out))
    outs = [tmp_path / f"save{i}.json" for i in range(SAVERS)]
    model = models / ("model.wdl")
    pids = [zygote.start(worker_saver, str(root), str(model if i % 2 else models / "alt1.wdl"), str(go), SAVES_EACH, str(o))
            for i, o in enumerate(outs)]
    _release(go)
    for pid in pids:
        assert zygote.wait(pid) == {"code": 0}
    stop.write_text("stop")
    assert zygote.wait(gc_pid) == {"code": 0}
    assert json.loads(gc_out.read_text()) >= 1, "gc never ran during the saves"
    got = sorted(v for o in outs for v in json.loads(o.read_text()))
    n = SAVERS * SAVES_EACH
    assert got == list(range(1, n + 1)), "version numbers are not distinct and gapless"
    store = woodlot.VersionStore(root)
    assert [v.version for v in store.versions()] == got
    assert [e.kind for e in store.history()].count("save") == n
    facts = check_store(root)  # every blob verifies and every version loads with verify=True
    assert facts["versions"] == got


def test_concurrent_saves_without_the_lock_are_unique_and_gapless(tmp_path, zygote, models):
    root = tmp_path / "store"
    woodlot.VersionStore(root)
    go = tmp_path / "go"
    outs = [tmp_path / f"save{i}.json" for i in range(SAVERS)]
    pids = [zygote.start(worker_saver, str(root), str(models / ("model.wdl" if i % 2 else "alt1.wdl")), str(go),
                         SAVES_EACH, str(o), LOCKING["no-lock"])
            for i, o in enumerate(outs)]
    _release(go)
    for pid in pids:
        assert zygote.wait(pid) == {"code": 0}
    got = sorted(v for o in outs for v in json.loads(o.read_text()))
    n = SAVERS * SAVES_EACH
    assert got == list(range(1, n + 1)), "version numbers are not distinct and gapless"
    store = woodlot.VersionStore(root)
    assert [e.kind for e in store.history()].count("save") == n
    facts = check_store(root)
    assert facts["versions"] == got


def test_a_writer_without_the_lock_does_not_wait_for_it(tmp_path, zygote, models):
    root = tmp_path / "store"
    woodlot.VersionStore(root)
    ready, out = tmp_path / "ready", tmp_path / "out"
    holder = zygote.start(worker_lock_holder, str(root), str(ready))
    try:
        wait_for(ready.exists, "the lock holder")
        # The holder excludes every locking writer (test_reliability_crashes.py shows it); a
        # writer under WOODLOT_TEST_NO_LOCK=1 saves all the same.
        status = zygote.run(worker_save_once, str(root), str(models / "model.wdl"), str(out), LOCKING["no-lock"],
                            timeout=30)
        assert status == {"code": 0}, f"the writer without the lock did not finish while the lock was held: {status}"
        assert out.read_text() == "1"
    finally:
        assert zygote.kill9(holder).get("signal") == signal.SIGKILL


@pytest.mark.parametrize("locking", LOCKING)
def test_churning_writers_killed_together_leave_a_clean_store(tmp_path, zygote, models, locking):
    root = tmp_path / "store"
    woodlot.VersionStore(root)
    logs = [tmp_path / f"log{i}" for i in range(4)]
    pids = [zygote.start(worker_churn, str(root), str(models / "model.wdl"), str(log), 50 + i, 0, 10_000, True,
                         LOCKING[locking])
            for i, log in enumerate(logs)]
    time.sleep(2.5)
    for pid in pids:
        status = zygote.kill9(pid)
        assert status.get("signal") == signal.SIGKILL, f"a churner died on its own: {status}"
    facts = check_store(root)
    history = facts["history"]
    saved = set()
    for log in logs:
        done = [(k, int(v)) for k, v in (line.split() for line in log.read_text().splitlines() if line != "ready")]
        saved |= {v for k, v in done if k == "save"}
        # Every operation a churner saw complete is in the history, in its order (other
        # writers' events interleave). An alias event is matched by kind: under racing writers
        # the version "active" named at that moment is not known to the churner.
        missing = _not_a_subsequence(done, history)
        assert not missing, f"{log.name}: completed operations missing from the history: {missing[:5]}"
    deleted = {v for k, v in history if k == "delete"}
    assert saved, "no churner completed a save"
    assert saved - deleted <= set(facts["versions"])
    assert all(k in {"save", "promote", "rollback", "alias_set", "delete"} for k, _ in history)


def _not_a_subsequence(done: list, history: list) -> list:
    """The entries of ``done`` that cannot be matched, in order, against ``history``."""
    at = 0
    for i, (kind, v) in enumerate(done):
        while at < len(history) and not (
            history[at][0] == kind and (kind == "alias_set" or history[at][1] == v)
        ):
            at += 1
        if at == len(history):
            return done[i:]
        at += 1
    return []
