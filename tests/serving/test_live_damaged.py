"""A target whose blob was damaged on disk is never served: the old version keeps serving,
status() counts the refusal and the `woodlot` logger records it."""

import logging

import numpy as np
import pytest

import woodlot
from tests.serving._live_util import blob_file, damage, proba_by_version, small_models, wait_for


@pytest.fixture()
def setup(tmp_path):
    models, X_test = small_models(2)
    path = tmp_path / "models"
    s = woodlot.VersionStore(path)
    v1 = s.save(models[0])
    v2 = s.save(models[1])
    s.promote(v1)
    return s, path, v1, v2, X_test[:3]


def _refusals(caplog, version):
    return [
        r
        for r in caplog.records
        if r.name == "woodlot" and r.levelno >= logging.ERROR and f"refused {version}" in r.getMessage()
    ]


def test_a_promoted_version_damaged_on_disk_is_refused(setup, caplog):
    store, path, v1, v2, rows = setup
    expected = proba_by_version(store, rows)
    caplog.set_level(logging.INFO, logger="woodlot")
    live = woodlot.LiveModel(store, poll_seconds=60.0)  # this test decides when checks happen
    store.promote(v2)  # verified by the store: intact at promotion time ...
    damage(blob_file(path, v2))  # ... and damaged on disk before the live model loads it
    with pytest.raises(woodlot.CorruptModelError, match="v2"):
        live.refresh()
    proba, served = live.predict_proba(rows, return_version=True)
    assert served == "v1" and live.version == v1
    assert np.array_equal(proba, expected["v1"])
    st = live.status()
    assert (st.version, st.target, st.refused_swaps, st.swaps) == ("v1", "v2", 1, 0)
    assert "refused v2" in st.last_error
    assert len(_refusals(caplog, "v2")) == 1
    live.close()


def test_the_watcher_refuses_a_damaged_target_and_a_cached_copy_is_not_served(setup, caplog):
    store, path, v1, v2, rows = setup
    expected = proba_by_version(store, rows)
    caplog.set_level(logging.INFO, logger="woodlot")
    store.set_alias("prod", v2)
    live = woodlot.LiveModel(store, ref="prod", poll_seconds=0.02)
    assert live.predict_proba(rows, return_version=True)[1] == "v2"
    store.set_alias("prod", v1)  # moving an alias loads nothing: only the live model verifies
    assert wait_for(lambda: live.predict_proba(rows, return_version=True)[1] == "v1", 10)
    # v2 was served before and its estimator was built in Python; now its blob rots and the
    # alias moves back to it. Rust refuses it, so nothing may serve the copy built earlier.
    damage(blob_file(path, v2))
    store.set_alias("prod", v2)
    assert wait_for(lambda: live.status().refused_swaps >= 1, 10)
    for _ in range(200):
        proba, served = live.predict_proba(rows, return_version=True)
        assert served == "v1"
        assert np.array_equal(proba, expected["v1"])
    st = live.status()
    assert st.reference == "prod"
    assert st.version == "v1" and st.target == "v2" and st.swaps == 1
    assert st.refused_swaps == 1, "a refused target is retried after a pause, not every poll"
    assert len(_refusals(caplog, "v2")) == 1
    swaps = [r for r in caplog.records if r.name == "woodlot" and "now serving" in r.getMessage()]
    assert len(swaps) == 2  # the first load (v2), then v1, and never v2 again
    live.close()
