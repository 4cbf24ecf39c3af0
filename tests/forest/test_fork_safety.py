"""Fit and predict work in a forked child after the parent has used its thread pools.

`fork()` copies only the calling thread, so a rayon pool the parent cached is, in the child, a
handle on threads that do not exist. Before the pools were rebuilt per process, the first
parallel fit or predict in the child waited forever; these tests run the child under a timeout
so the old behaviour FAILS instead of hanging the suite. This is the path of
`multiprocessing`'s fork start method (Linux's default before Python 3.14), `gunicorn
--preload` and Celery's prefork workers."""

import multiprocessing
import os
import select
import signal
import sys

import numpy as np
import pytest
from sklearn.datasets import make_classification

from woodlot import RandomForestClassifier, VersionStore

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or sys.platform == "darwin", reason="fork() is POSIX (and unsafe on macOS)"
)

# Generous for a loaded 2-core machine; the child's work takes well under a second.
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=3000, n_features=10, n_informative=5, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def parent_model(data):
    """Fitted and used with several threads, so the parent holds cached pools (and the compiled
    layout for large batches) when it forks."""
    X, y = data
    model = RandomForestClassifier(n_estimators=20, random_state=0, n_jobs=2).fit(X, y)
    model.predict_proba(X)  # 3000 rows: the compiled, multi-threaded path
    return model


def _child_work(X, y, model):
    """What a forked worker does: fit anew on several threads, predict with both models."""
    fresh = RandomForestClassifier(n_estimators=20, random_state=0, n_jobs=2).fit(X, y)
    return (
        fresh.predict_proba(X),
        model.predict_proba(X),
        RandomForestClassifier(n_estimators=5, random_state=1, n_jobs=-1).fit(X, y).predict(X),
    )


def _mp_target(conn, X, y, model):
    try:
        conn.send(("ok", _child_work(X, y, model)))
    except BaseException as e:  # report, do not hang the parent
        conn.send(("error", repr(e)))
    finally:
        conn.close()


def test_multiprocessing_fork_child_fits_and_predicts(data, parent_model):
    X, y = data
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_mp_target, args=(send, X, y, parent_model))
    child.start()
    send.close()
    try:
        assert receive.poll(TIMEOUT), (
            f"the forked child did not finish fit + predict within {TIMEOUT} s: thread pools "
            "inherited through fork() hang"
        )
        status, payload = receive.recv()
    finally:
        if child.is_alive():
            child.kill()
        child.join(10)
    assert status == "ok", payload
    fresh_proba, parent_proba, labels = payload
    # Same seed, same data: the child's forest is the parent's, bit for bit.
    np.testing.assert_array_equal(fresh_proba, parent_model.predict_proba(X))
    np.testing.assert_array_equal(parent_proba, parent_model.predict_proba(X))
    assert labels.shape == (len(X),)


def test_os_fork_child_fits_and_predicts(data, parent_model):
    """A bare os.fork(), as gunicorn --preload does; the child reports through a pipe."""
    X, y = data
    want = parent_model.predict_proba(X)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_fd)
            fresh_proba, parent_proba, _ = _child_work(X, y, parent_model)
            ok = np.array_equal(fresh_proba, want) and np.array_equal(parent_proba, want)
            os.write(write_fd, b"ok" if ok else b"mismatch")
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], TIMEOUT)
        assert ready, f"the os.fork() child did not finish fit + predict within {TIMEOUT} s"
        assert os.read(read_fd, 16) == b"ok"
    finally:
        os.close(read_fd)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def _store_target(conn, path, X, y, model):
    try:
        store = VersionStore(path)
        v = store.save(model, description="saved in a forked child")
        store.promote(v, reason="forked child")
        loaded = store.load("active", verify=True)
        cmp = store.compare(X, y)
        conn.send(("ok", (loaded.predict_proba(X), str(cmp))))
    except BaseException as e:
        conn.send(("error", repr(e)))
    finally:
        conn.close()


def test_forked_child_saves_promotes_loads_and_compares(tmp_path, data, parent_model):
    """The store's process-wide state (temp-name counters, thread pools used by compare and
    probe replay) works in a child forked after the parent used the store."""
    X, y = data
    parent_store = VersionStore(tmp_path / "store")
    parent_store.save(parent_model, description="saved in the parent")
    parent_store.compare(X, y)
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_store_target, args=(send, str(tmp_path / "store"), X, y, parent_model))
    child.start()
    send.close()
    try:
        assert receive.poll(TIMEOUT), f"the forked child's store calls did not finish within {TIMEOUT} s"
        status, payload = receive.recv()
    finally:
        if child.is_alive():
            child.kill()
        child.join(10)
    assert status == "ok", payload
    np.testing.assert_array_equal(payload[0], parent_model.predict_proba(X))
    assert [v.version for v in parent_store.versions()] == [1, 2]
    assert parent_store.active.version == 2
