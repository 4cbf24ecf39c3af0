"""Several real processes on one store: unique gapless numbers, promotions that never
interleave, crashes (including a lock holder's) that lose nothing."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import woodlot
from woodlot import RandomForestClassifier, VersionStore

WORKER = textwrap.dedent(
    """
    import sys, time
    from woodlot import VersionStore, ConflictError
    from woodlot import _native

    import os

    mode, root, model_path = sys.argv[1], sys.argv[2], sys.argv[3]
    data = open(model_path, "rb").read()
    store = VersionStore(root)

    def wait_for_go(go):
        # Every worker is imported and ready before any starts: a real race, not a queue.
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.0005)

    if mode == "save":
        wait_for_go(sys.argv[4])
        for _ in range(int(sys.argv[5])):
            print(store.save(data).version, flush=True)
    elif mode == "promote":
        target = int(sys.argv[5])
        wait_for_go(sys.argv[4])
        try:
            store.promote(target, expect_active="v1")
            print("won", flush=True)
        except ConflictError:
            print("conflict", flush=True)
    elif mode == "crash":
        # Loop save + promote + rollback and abort at the given I/O step, as kill -9 would,
        # printing each operation only after it returned: the log of what completed.
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        at = int(sys.argv[4])
        _native._store_fault_arm(at, True)
        for i in range(1000):
            v = store.save(data)
            print("save", v.version, flush=True)
            store.promote(v)
            print("promote", v.version, flush=True)
            if i % 2:
                back = store.rollback()
                print("rollback", back.version, flush=True)
    """
)


def _spawn(*args):
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _start_together(procs, go):
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.write_text("go")


def test_concurrent_saves_are_unique_and_gapless(tmp_path, model_file):
    root = tmp_path / "s"
    VersionStore(root)
    go = tmp_path / "go"
    procs = [_spawn("save", root, model_file, go, 4) for _ in range(6)]
    _start_together(procs, go)
    got = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        got += [int(v) for v in out.split()]
    assert sorted(got) == list(range(1, 25))
    store = VersionStore(root)
    assert [v.version for v in store.versions()] == list(range(1, 25))
    report = store.verify()
    assert report.ok, report
    assert [e.kind for e in store.history()].count("save") == 24


def test_racing_promotions_have_exactly_one_winner(tmp_path, model_file):
    root = tmp_path / "s"
    store = VersionStore(root)
    data = model_file.read_bytes()
    for _ in range(9):
        store.save(data)
    store.promote(1)
    go = tmp_path / "go"
    procs = [_spawn("promote", root, model_file, go, v) for v in range(2, 10)]
    _start_together(procs, go)
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(out.strip())
    assert results.count("won") == 1 and results.count("conflict") == 7
    promotes = [e for e in store.history() if e.kind == "promote"]
    assert len(promotes) == 2
    assert store.active.version == promotes[-1].raw["version"]


@pytest.mark.parametrize("seed", range(6))
def test_a_crash_at_a_random_io_step_loses_nothing(tmp_path, model_file, seed):
    root = tmp_path / "s"
    VersionStore(root)
    at = random.Random(seed).randint(1, 150)
    p = _spawn("crash", root, model_file, at)
    out, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGABRT, f"the worker should have aborted at I/O step {at}: {p.returncode} {err[-2000:]}"
    done = [(kind, int(v)) for kind, v in (line.split() for line in out.splitlines())]
    store = VersionStore(root)
    report = store.verify()
    assert report.ok, report
    if store.active is not None:
        store.load("active", verify=True)
    history = store.history()
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    # Every operation the worker saw complete is in the history, in order; at most the one it
    # was in when it died got further.
    recorded = [(e.kind, e.raw.get("version")) for e in history]
    assert recorded[: len(done)] == done, (recorded[-4:], done[-4:])
    assert len(recorded) - len(done) <= 1, (recorded[len(done):], done[-3:])
    promoted = [v for kind, v in done if kind in ("promote", "rollback")]
    if promoted and len(recorded) == len(done):
        assert store.active.version == promoted[-1], "the last completed promotion was lost"
    # The crashed process held the writer lock; the kernel released it.
    v = store.save(model_file.read_bytes())
    store.promote(v)
    store.gc(grace_seconds=0)
    assert os.listdir(os.path.join(root, "tmp")) == []
    assert store.verify().ok
