"""``verbose`` during fit: scikit-learn's per-tree messages, a tqdm bar or joblib-style lines,
fed by a counter the Rust fit threads bump while the fit runs without the GIL."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from woodlot import RandomForestClassifier
from woodlot import _progress
from woodlot._native import FitProgress, NativeForest
from woodlot._params import native_params


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def test_verbose_2_prints_a_line_per_tree(xy, capsys):
    RandomForestClassifier(n_estimators=30, max_depth=3, random_state=0, verbose=2, n_jobs=2).fit(*xy)
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"building tree {i} of 30" for i in range(1, 31)]
    assert "built 30 trees in" in out.err


def test_warm_start_counts_only_the_new_trees(xy, capsys):
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0, warm_start=True).fit(*xy)
    capsys.readouterr()
    model.set_params(n_estimators=15, verbose=2).fit(*xy)
    assert capsys.readouterr().out.splitlines() == [f"building tree {i} of 5" for i in range(1, 6)]


def test_verbose_1_shows_a_tqdm_bar(xy, capsys):
    assert _progress._tqdm is not None  # tqdm is in the test extra
    RandomForestClassifier(n_estimators=20, max_depth=3, random_state=0, verbose=1).fit(*xy)
    err = capsys.readouterr().err
    assert "woodlot fit" in err and "20/20" in err


def test_verbose_1_without_tqdm_prints_joblib_style_lines(xy, capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_tqdm", None)
    RandomForestClassifier(n_estimators=20, max_depth=3, random_state=0, verbose=1).fit(*xy)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[woodlot] building 20 trees"
    assert err[-1].startswith("[woodlot] built 20 of 20 trees | elapsed: ")


def test_verbose_0_starts_no_reporter_and_results_do_not_change(xy, capsys, monkeypatch):
    X, y = xy
    loud = RandomForestClassifier(n_estimators=15, random_state=3, verbose=2).fit(X, y)
    capsys.readouterr()

    def refuse(*args, **kwargs):
        raise AssertionError("verbose=0 must not report")

    monkeypatch.setattr(_progress, "FitReporter", refuse)
    quiet = RandomForestClassifier(n_estimators=15, random_state=3).fit(X, y)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(quiet.predict_proba(X), loud.predict_proba(X))


def test_counter_moves_while_the_fit_runs_without_the_gil():
    """Read from another thread during a fit: the count climbs tree by tree to n."""
    rng = np.random.default_rng(1)
    X = np.ascontiguousarray(rng.normal(size=(3000, 10)))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.uint32)
    model = RandomForestClassifier(n_estimators=120, random_state=0, n_jobs=1)
    params = native_params(model, y, np.array([0, 1]), None, X.shape[0], 7, False)
    progress = FitProgress()
    seen = set()
    done = threading.Event()
    result = {}

    def fit():
        result["forest"] = NativeForest.fit(X, y, 2, None, params, 1, None, progress=progress)
        done.set()

    t = threading.Thread(target=fit)
    t.start()
    while not done.wait(0.0005):  # this loop holds the GIL between waits: the fit must not need it
        seen.add(progress.trees_built)
    t.join()
    assert progress.trees_built == 120 and result["forest"].n_trees == 120
    intermediate = {v for v in seen if 0 < v < 120}
    assert len(intermediate) >= 3, sorted(seen)
