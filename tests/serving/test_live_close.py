"""LiveModel.close(): prompt, joins the watcher thread, and a closed model refuses clearly."""

import gc
import time

import pytest

import woodlot
from tests.serving._live_util import small_models, wait_for, watcher_threads


def threads_settle_at(n: int) -> bool:
    """The watcher thread count comes back to ``n``. A joined thread's /proc entry can outlive
    its join by a moment on a loaded machine; a leaked thread never goes, so 2 s tells them
    apart."""
    return wait_for(lambda: watcher_threads() == n, 2)


@pytest.fixture()
def store(tmp_path):
    models, _ = small_models(2, n_estimators=5)
    s = woodlot.VersionStore(tmp_path / "models")
    s.promote(s.save(models[0]))
    s.save(models[1])
    return s


def test_close_joins_the_watcher_well_within_the_poll_interval(store):
    before = watcher_threads()
    live = woodlot.LiveModel(store, poll_seconds=30.0)
    assert wait_for(lambda: watcher_threads() == before + 1, 5)
    started = time.monotonic()
    live.close()
    elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"close took {elapsed:.3f} s with a 30 s poll interval"
    assert threads_settle_at(before)
    assert live.closed and live.status().closed


def test_a_closed_live_model_raises_a_clear_error(store):
    _, X_test = small_models(1, n_estimators=5)
    with woodlot.LiveModel(store, poll_seconds=0.05) as live:
        live.predict(X_test[:1])
    for call in (
        lambda: live.predict(X_test[:1]),
        lambda: live.predict_proba(X_test[:1], return_version=True),
        lambda: live.classes_,
        lambda: live.version,
        live.refresh,
    ):
        with pytest.raises(woodlot.StoreError, match="closed"):
            call()
    live.close()  # idempotent
    assert "closed" in repr(live)


def test_no_thread_outlives_its_live_model(store):
    before = watcher_threads()
    for i in range(20):
        live = woodlot.LiveModel(store, poll_seconds=0.01)
        if i % 2:
            live.close()
        else:
            del live  # dropped without close(): the native object's Drop joins the thread
            gc.collect()
    assert threads_settle_at(before)


def test_bad_arguments_are_refused_before_anything_starts(store, tmp_path):
    before = watcher_threads()
    for bad in (0, -1, float("nan"), float("inf"), 1e-5):
        with pytest.raises(ValueError, match="poll_seconds"):
            woodlot.LiveModel(store, poll_seconds=bad)
    with pytest.raises(TypeError, match="poll_seconds"):
        woodlot.LiveModel(store, poll_seconds="1")
    with pytest.raises(TypeError, match="store"):
        woodlot.LiveModel(42)
    with pytest.raises(woodlot.VersionNotFoundError):
        woodlot.LiveModel(store, ref="no-such-alias")
    with pytest.raises(woodlot.VersionNotFoundError, match="active"):
        woodlot.LiveModel(woodlot.VersionStore(tmp_path / "empty"))
    assert threads_settle_at(before)


def test_a_path_opens_its_own_store_and_the_context_manager_closes(store):
    before = watcher_threads()
    with woodlot.LiveModel(store.path, ref=1, poll_seconds=0.05) as live:
        assert live.version.name == "v1" and live.ref == "v1"
        assert live.status().reference == "v1"
        with pytest.raises(TypeError, match="storage_options"):
            woodlot.LiveModel(store, storage_options={"region": "x"})
    assert live.closed and threads_settle_at(before)
