"""kill -9 at random moments while a process churns through save + promote + rollback (+ alias,
delete), and aborts at random I/O steps through the fault switch: afterwards the store opens,
verify() is clean, the active version loads, the history holds every operation the dead process
had completed (and at most the one it was in), only debris remains and gc removes it, and the
next writer is not blocked by the dead one's lock.

Trials: WOODLOT_CRASH_TRIALS kill -9 trials (default 50) and WOODLOT_ABORT_TRIALS abort-at-step
trials (default 20), each seeded, on top of the 6 in test_store_concurrency.py.
"""

import random
import threading
import time
from pathlib import Path

import pytest

import woodlot
from tests.reliability._budget import env_int
from tests.reliability._checks import check_store, store_files
from tests.reliability._models import small_model
from tests.reliability._workers_store import worker_churn, worker_lock_holder

CRASH_TRIALS = env_int("WOODLOT_CRASH_TRIALS", 50)
ABORT_TRIALS = env_int("WOODLOT_ABORT_TRIALS", 20)



@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash-models")
    (d / "model.wdl").write_bytes(woodlot.dumps(small_model(0)))
    (d / "alt1.wdl").write_bytes(woodlot.dumps(small_model(1, n_estimators=4)))
    (d / "alt2.wdl").write_bytes(woodlot.dumps(small_model(2, max_depth=2)))
    return d


def _read_log(path: Path) -> list:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        parts = line.split()
        if parts and parts[0] != "ready":
            out.append((parts[0], int(parts[1])))
    return out


def _check_after_crash(root: Path, log: list) -> dict:
    facts = check_store(root)
    history = facts["history"]
    # Every operation the dead process saw complete is in the history, in order; at most the
    # operation it was in the middle of got further (its event written, its log line not).
    done = [(k, v) for k, v in log]
    assert history[: len(done)] == done, f"history {history[-5:]} lost completed ops {done[-5:]}"
    assert len(history) - len(done) <= 1, (history[len(done):], done[-3:])
    saved = {v for k, v in done if k == "save"}
    deleted = {v for k, v in history if k == "delete"}
    assert saved - deleted <= set(facts["versions"]), "a completed save lost its version"
    # Version numbers are gapless: every number up to the highest manifest exists.
    manifests = sorted(int(f[9:19]) for f in store_files(root) if f.endswith(".json") and f.startswith("versions/"))
    assert manifests == list(range(1, len(manifests) + 1))
    return facts


def _next_writer_is_not_blocked(root: Path, model: bytes):
    # The dead process may have held the writer lock; the kernel released it with the process.
    store = woodlot.VersionStore(root)
    done = threading.Event()

    def write():
        v = store.save(model)
        store.promote(v)
        done.set()

    t = threading.Thread(target=write, daemon=True)
    t.start()
    assert done.wait(30), "the next writer is blocked by a dead process's lock"
    assert store.verify().ok


@pytest.mark.parametrize("seed", range(CRASH_TRIALS))
def test_kill9_at_a_random_moment_loses_nothing(tmp_path, zygote, models, seed):
    rng = random.Random(1000 + seed)
    root = tmp_path / "store"
    woodlot.VersionStore(root)
    log = tmp_path / "log"
    pid = zygote.start(worker_churn, str(root), str(models / "model.wdl"), str(log), seed, 0)
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text().startswith("ready")):
        assert time.monotonic() < deadline, "worker never started"
        time.sleep(0.002)
    time.sleep(rng.uniform(0.005, 0.6))
    status = zygote.kill9(pid)
    assert status.get("signal") == 9, f"the worker ended on its own: {status}"
    _check_after_crash(root, _read_log(log))
    _next_writer_is_not_blocked(root, (models / "model.wdl").read_bytes())


@pytest.mark.parametrize("seed", range(ABORT_TRIALS))
def test_abort_at_a_random_io_step_loses_nothing(tmp_path, zygote, models, seed):
    rng = random.Random(2000 + seed)
    root = tmp_path / "store"
    woodlot.VersionStore(root)
    log = tmp_path / "log"
    at = rng.randint(1, 400)
    status = zygote.run(worker_churn, str(root), str(models / "model.wdl"), str(log), seed, at, timeout=60)
    assert status.get("signal") == 6, f"the worker should have aborted at I/O step {at}: {status}"
    _check_after_crash(root, _read_log(log))
    _next_writer_is_not_blocked(root, (models / "model.wdl").read_bytes())


def test_a_lock_holder_killed_with_sigkill_does_not_block_the_next_writer(tmp_path, zygote, models):
    root = tmp_path / "store"
    store = woodlot.VersionStore(root)
    model = (models / "model.wdl").read_bytes()
    ready = tmp_path / "ready"
    pid = zygote.start(worker_lock_holder, str(root), str(ready))
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline
        time.sleep(0.002)
    done = threading.Event()
    result = {}

    def write():
        result["v"] = store.save(model).version
        done.set()

    t = threading.Thread(target=write, daemon=True)
    t.start()
    # The holder really excludes the writer (it is the lock woodlot uses) ...
    assert not done.wait(0.5), "the writer did not wait for the lock holder"
    # ... and its death by SIGKILL releases it.
    assert zygote.kill9(pid).get("signal") == 9
    assert done.wait(30), "the next writer stayed blocked after the holder was killed"
    assert result["v"] == 1
    check_store(root)
