"""Crashes of a process that churns through save + promote + rollback (+ alias, delete) on one
store, at I/O steps chosen from a seed, so every trial is reproducible: afterwards the store
opens, verify() is clean, the active version loads, the history holds every operation the dead
process had completed (and at most the one it was in), only debris remains and gc removes it,
and the next writer is not blocked by the dead one's lock.

Two families, both ending in SIGABRT (required), both deterministic:

- WOODLOT_CRASH_TRIALS (default 50) long-run trials: the child is started with
  WOODLOT_FAULT_AT_STEP=N (src/store/backend/faults.rs), N drawn from the trial's seed in
  1..2000, so it dies at exactly the N-th I/O step of the process (store opening included,
  reads and writes alike), some 20 operations into the run at most;
- WOODLOT_ABORT_TRIALS (default 20) trials that arm the switch on the churning thread after the
  store is open, at a step in 1..400.

Reproducibility is itself tested: two seeds are run twice each and must leave the same history
and the same files. The lock-holder test kills with SIGKILL (required) from outside. On top of
these, tests/store/test_store_concurrency.py runs 6 more abort trials in fresh processes.
"""

import random
import signal
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


def _crash_trial(tmp_path, zygote, models, seed: int) -> tuple:
    """One long-run trial: the crash step comes from the seed alone."""
    rng = random.Random(1000 + seed)
    at = rng.randint(1, 2000)
    root = tmp_path / "store"
    woodlot.VersionStore(root)
    log = tmp_path / "log"
    status = zygote.run(worker_churn, str(root), str(models / "model.wdl"), str(log), seed, 0, 10_000, False,
                        {"WOODLOT_FAULT_AT_STEP": at}, timeout=120)
    assert status.get("signal") == signal.SIGABRT, f"seed {seed}: the worker should have died at I/O step {at}: {status}"
    return root, log, at


@pytest.mark.parametrize("seed", range(CRASH_TRIALS))
def test_a_crash_at_a_seeded_io_step_of_a_long_run_loses_nothing(tmp_path, zygote, models, seed):
    root, log, at = _crash_trial(tmp_path, zygote, models, seed)
    _check_after_crash(root, _read_log(log))
    _next_writer_is_not_blocked(root, (models / "model.wdl").read_bytes())


@pytest.mark.parametrize("seed", [3, 17])
def test_a_crash_trial_is_reproducible_from_its_seed(tmp_path, zygote, models, seed):
    runs = []
    for i in range(2):
        d = tmp_path / f"run{i}"
        d.mkdir()
        root, log, at = _crash_trial(d, zygote, models, seed)
        store = woodlot.VersionStore(root)
        files = [f for f in store_files(root) if not f.startswith("tmp/") and f != "LOCK"]
        runs.append((at, _read_log(log), [(e.kind, e.raw.get("version")) for e in store.history()], files))
    assert runs[0] == runs[1], f"seed {seed}: two runs differ"
    assert runs[0][1], f"seed {seed}: the trial completed no operation (step {runs[0][0]})"


@pytest.mark.parametrize("seed", range(ABORT_TRIALS))
def test_abort_at_a_random_io_step_loses_nothing(tmp_path, zygote, models, seed):
    rng = random.Random(2000 + seed)
    root = tmp_path / "store"
    woodlot.VersionStore(root)
    log = tmp_path / "log"
    at = rng.randint(1, 400)
    status = zygote.run(worker_churn, str(root), str(models / "model.wdl"), str(log), seed, at, timeout=60)
    assert status.get("signal") == signal.SIGABRT, f"the worker should have aborted at I/O step {at}: {status}"
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
    assert zygote.kill9(pid).get("signal") == signal.SIGKILL
    assert done.wait(30), "the next writer stayed blocked after the holder was killed"
    assert result["v"] == 1
    check_store(root)
