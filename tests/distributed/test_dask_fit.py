"""Fitting through dask's joblib backend on a real LocalCluster of worker processes.

What is promised (issue 15): under ``joblib.parallel_config(backend="dask")`` the trees are
split into chunks and grown on the cluster's workers, and the result is bit-identical to a
local fit with the same ``random_state`` whichever workers run the chunks (the out-of-bag
estimate too); a worker lost mid-fit is retried by dask and changes nothing; a fit dask gives
up on raises a clear error and never leaves a smaller forest; the store's lineage records how
the model was trained.
"""

from __future__ import annotations

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import make_classification

import woodlot
from woodlot import RandomForestClassifier
from woodlot._distributed import DistributedFitError, _ship, active_engine
from woodlot._native import prepare_training_set
from tests.distributed._faults import KillOnChunk, set_allowed_failures

# Forests of a few trees leave some rows never out of bag; that is what the warning says.
pytestmark = pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=1500, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    X[::37, 2] = np.nan  # missing values travel in the bins too
    weights = np.random.default_rng(1).uniform(0.2, 2.0, size=len(y))
    return X, y, weights


CONFIGS = {
    "default": dict(n_estimators=7, max_depth=8),
    "weighted": dict(
        n_estimators=8, max_depth=6, class_weight="balanced_subsample", max_samples=0.7,
        max_features=0.5,
    ),
}


def assert_same_forest(a: RandomForestClassifier, b: RandomForestClassifier, X) -> None:
    """Every tree array, the probabilities, the importances and the out-of-bag estimate are
    equal bit for bit."""
    assert len(a.estimators_) == len(b.estimators_)
    for i, (ta, tb) in enumerate(zip(a.estimators_, b.estimators_)):
        for name in ("children_left", "children_right", "feature", "threshold",
                     "missing_go_to_left", "impurity", "n_node_samples",
                     "weighted_n_node_samples", "value"):
            assert np.array_equal(
                getattr(ta.tree_, name), getattr(tb.tree_, name), equal_nan=True
            ), f"tree {i} differs in {name}"
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    assert np.array_equal(a.feature_importances_, b.feature_importances_)
    assert a.fit_info_["training_fingerprint"] == b.fit_info_["training_fingerprint"]
    if a.oob_score:
        assert np.array_equal(a.oob_decision_function_, b.oob_decision_function_)
        assert a.oob_score_ == b.oob_score_


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_bit_identical_to_a_local_fit_for_1_2_and_3_workers(
    dask_client, workers, data, n_workers, config
):
    X, y, weights = data
    params = dict(CONFIGS[config], random_state=11, oob_score=True)
    sw = weights if config == "weighted" else None
    local = RandomForestClassifier(**params).fit(X, y, sample_weight=sw)
    # Three slots (the cluster's threads) make three chunks; the tasks may run only on the
    # first n_workers workers, so one worker grows every chunk, or two share them.
    # Which processes grew the chunks: only the allowed ones, and more than one when allowed.
    # Dask gives three chunks submitted at once to idle workers first, but on a loaded machine
    # it has packed all three onto one worker (once in CI, with 3 workers allowed), so a fit
    # that spreads them is looked for in up to three attempts; one that never does fails.
    for _ in range(3):
        with parallel_config(
            backend="dask", workers=workers[:n_workers], allow_other_workers=False
        ):
            dist = RandomForestClassifier(**params).fit(X, y, sample_weight=sw)
        training = dict(dist._training)
        used = training.pop("workers")
        assert training == {"mode": "distributed", "engine": "dask", "chunks": 3}
        assert 1 <= used <= n_workers
        if used >= min(n_workers, 2):
            break
    assert min(n_workers, 2) <= used <= n_workers
    assert local._training["mode"] == "local"
    assert len(dist.estimators_) == params["n_estimators"]
    assert_same_forest(local, dist, X)


def test_every_chunking_gives_the_same_forest(dask_client, data):
    """Fewer trees than slots (two chunks of one tree), and more: the chunking never shows."""
    X, y, _ = data
    for n in (2, 10):
        local = RandomForestClassifier(n_estimators=n, random_state=5, oob_score=True,
                                       max_depth=5).fit(X, y)
        with parallel_config(backend="dask"):
            dist = RandomForestClassifier(n_estimators=n, random_state=5, oob_score=True,
                                          max_depth=5).fit(X, y)
        assert dist._training["chunks"] == min(n, 3)
        assert_same_forest(local, dist, X)


def test_warm_start_on_the_cluster_equals_a_local_warm_start(dask_client, data):
    X, y, _ = data
    local = RandomForestClassifier(n_estimators=3, random_state=2, warm_start=True,
                                   oob_score=True, max_depth=6).fit(X, y)
    local.set_params(n_estimators=8).fit(X, y)
    dist = RandomForestClassifier(n_estimators=3, random_state=2, warm_start=True,
                                  oob_score=True, max_depth=6).fit(X, y)
    with parallel_config(backend="dask"):
        dist.set_params(n_estimators=8).fit(X, y)
    assert dist._training["chunks"] == 3  # trees 3..8 in three chunks
    assert_same_forest(local, dist, X)


def test_the_default_and_local_backends_stay_on_rust_threads(data):
    X, y, _ = data
    est = RandomForestClassifier(n_estimators=4, random_state=0, n_jobs=2).fit(X, y)
    assert est._training == {"mode": "local", "engine": None, "workers": 1, "threads": 2}
    for backend in ("loky", "threading", "multiprocessing", "sequential"):
        with parallel_config(backend=backend):
            est = RandomForestClassifier(n_estimators=4, random_state=0, n_jobs=2).fit(X, y)
        assert est._training["mode"] == "local", backend


def test_a_worker_killed_mid_fit_is_retried_and_changes_nothing(dask_client, workers, data,
                                                                tmp_path):
    X, y, _ = data
    params = dict(n_estimators=9, random_state=4, oob_score=True, max_depth=7)
    local = RandomForestClassifier(**params).fit(X, y)
    marker = tmp_path / "killed"
    dask_client.register_plugin(KillOnChunk(str(marker)), name="kill-once")
    try:
        with parallel_config(backend="dask"):
            dist = RandomForestClassifier(**params).fit(X, y)
    finally:
        dask_client.unregister_worker_plugin("kill-once")
    assert marker.exists(), "no worker was killed: the test did not test anything"
    assert len(dist.estimators_) == 9
    assert_same_forest(local, dist, X)


def test_a_fit_the_engine_gives_up_on_fails_clearly_and_leaves_the_estimator_alone(
    dask_client, workers, data, tmp_path
):
    X, y, _ = data
    est = RandomForestClassifier(n_estimators=6, random_state=4, max_depth=4).fit(X, y)
    before = est.predict_proba(X)
    # dask gives up on a task at the first worker that dies running it, and one worker dies.
    old = dask_client.run_on_scheduler(set_allowed_failures, 0)
    dask_client.register_plugin(KillOnChunk(str(tmp_path / "killed")), name="kill-and-give-up")
    try:
        with parallel_config(backend="dask"), pytest.raises(DistributedFitError) as info:
            est.set_params(n_estimators=9).fit(X, y)
    finally:
        dask_client.unregister_worker_plugin("kill-and-give-up")
        dask_client.run_on_scheduler(set_allowed_failures, old)
    message = str(info.value)
    assert "dask" in message and "no forest was built" in message, message
    # The engine's own error is named and chained.
    assert "KilledWorker" in message, message
    assert type(info.value.__cause__).__name__ == "KilledWorker"
    # The estimator still holds its old, complete forest.
    assert len(est.estimators_) == 6
    assert np.array_equal(est.predict_proba(X), before)


def test_the_store_records_how_a_version_was_trained(dask_client, workers, data, tmp_path):
    X, y, _ = data
    store = woodlot.VersionStore(str(tmp_path / "models"))
    local = RandomForestClassifier(n_estimators=4, random_state=1, n_jobs=2).fit(X, y)
    with parallel_config(backend="dask"):
        dist = RandomForestClassifier(n_estimators=4, random_state=1).fit(X, y)
    v1, v2 = store.save(local), store.save(dist)
    assert store.get(v1.name).training == {
        "mode": "local", "engine": None, "workers": 1, "threads": 2,
    }
    recorded = store.get(v2.name).training
    assert recorded == dist._training
    assert recorded["mode"] == "distributed" and recorded["engine"] == "dask"
    assert recorded["chunks"] == 3 and 2 <= recorded["workers"] <= 3
    # The record travels in the model file: a loaded model and a pickle keep it.
    assert store.load(v2.name)._training == dist._training
    assert woodlot.loads(woodlot.dumps(dist))._training == dist._training


def test_the_data_goes_to_each_worker_once_before_any_task(dask_client, workers, data):
    """What a fit ships is broadcast: one replica per worker (a retried task finds it on any
    worker), and the tasks carry only references to it."""
    X, y, weights = data
    y_codes = np.unique(y, return_inverse=True)[1].astype(np.uint32)
    binned, _ = prepare_training_set(X, y_codes, 3, weights, None, 1)
    with parallel_config(backend="dask"):
        name, backend, _ = active_engine()
    shipped, release = _ship(name, backend, (binned, y_codes, weights))
    try:
        assert all(type(f).__name__ == "Future" for f in shipped)
        holders = dask_client.who_has(list(shipped))
        assert len(holders) == 3
        for key, where in holders.items():
            assert sorted(where) == workers, key
    finally:
        release()


def test_a_multi_output_fit_on_the_cluster_is_refused_clearly(dask_client, data):
    X, y, _ = data
    Y = np.column_stack([y, y[::-1]])
    with parallel_config(backend="dask"):
        with pytest.raises(ValueError, match="multi-output y .* cannot be fitted on the joblib"):
            RandomForestClassifier(n_estimators=6, random_state=0).fit(X, Y)
    # Outside the engine the same fit runs on the local threads.
    assert RandomForestClassifier(n_estimators=6, random_state=0).fit(X, Y).n_outputs_ == 2
