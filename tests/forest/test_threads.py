"""The GIL is released during heavy work: several Python threads predict (and fit) at once,
with correct results, and a Python thread keeps running while Rust computes."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.datasets import make_classification

from woodlot import RandomForestClassifier


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=20_000, n_features=20, n_informative=8, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def model(data):
    X, y = data
    return RandomForestClassifier(n_estimators=60, random_state=0).fit(X, y)


def test_concurrent_predictions_are_correct(data, model):
    X, _ = data
    chunks = np.array_split(X, 16)
    expected = [model.predict_proba(c) for c in chunks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            results = list(pool.map(model.predict_proba, chunks))
            for got, want in zip(results, expected):
                np.testing.assert_array_equal(got, want)
    with ThreadPoolExecutor(max_workers=8) as pool:
        one_row = list(pool.map(lambda i: model.predict(X[i : i + 1])[0], range(500)))
    np.testing.assert_array_equal(one_row, model.predict(X[:500]))


def test_concurrent_fits_are_correct(data):
    X, y = data
    X, y = X[:3000], y[:3000]
    ref = RandomForestClassifier(n_estimators=10, random_state=1).fit(X, y).predict_proba(X)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda _: RandomForestClassifier(n_estimators=10, random_state=1).fit(X, y).predict_proba(X),
                range(4),
            )
        )
    for r in results:
        np.testing.assert_array_equal(r, ref)


def _python_progress_during(call) -> int:
    """How many times a pure-Python thread advances while ``call`` runs."""
    stop = threading.Event()
    ticks = [0]

    def spin():
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.01)
    start = ticks[0]
    try:
        call()
    finally:
        progressed = ticks[0] - start
        stop.set()
        t.join()
    return progressed


def test_gil_is_released_while_predicting(data, model):
    X, _ = data
    big = np.tile(X, (5, 1))
    started = time.perf_counter()
    progressed = _python_progress_during(lambda: model.predict_proba(big))
    elapsed = time.perf_counter() - started
    assert elapsed > 0.02, "the prediction is too quick to tell"
    # With the GIL held, the spinning thread gets at most a few switch intervals.
    assert progressed > 10_000


def test_gil_is_released_while_fitting(data):
    X, y = data
    progressed = _python_progress_during(
        lambda: RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    )
    assert progressed > 10_000
