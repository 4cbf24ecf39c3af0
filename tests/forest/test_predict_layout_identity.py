"""Batch prediction (the compiled layout) gives exactly what the one-row path (the plain walk of
the original trees) gives: the same probability bits, the same leaves, for every kind of forest.

A one-row call never uses the compiled layout (see src/forest/predictor.rs), so comparing a
batch with the rows predicted one at a time compares the two paths through the public API.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pytest

import woodlot
from woodlot import RandomForestClassifier


def _data(n_classes: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(300, 6)) * 3) / 3
    X[rng.random(X.shape) < 0.08] = np.nan
    score = np.nan_to_num(X[:, 0], nan=2.0) + np.nan_to_num(X[:, 1], nan=-1.0)
    y = (np.abs(score) * 2 + rng.integers(0, 2, size=len(X))).astype(int) % n_classes
    return X, y


CASES: Dict[str, Dict[str, Any]] = {
    "fully_grown": {},
    "max_depth_3": {"max_depth": 3},
    "min_samples_leaf_6": {"min_samples_leaf": 6},
    "balanced_class_weight": {"class_weight": "balanced", "max_leaf_nodes": 30},
    "balanced_subsample": {"class_weight": "balanced_subsample"},
    "no_bootstrap_sqrt": {"bootstrap": False, "max_features": "sqrt"},
}


def _row_by_row(model: RandomForestClassifier, X: np.ndarray, method: str) -> np.ndarray:
    return np.vstack([getattr(model, method)(X[i : i + 1]) for i in range(len(X))])


ROWS = 120  # rows compared (the forests are fitted on 300)


@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize("case", sorted(CASES))
def test_batch_probabilities_and_leaves_are_bit_identical_to_the_one_row_path(
    case: str, n_classes: int
) -> None:
    X, y = _data(n_classes, seed=n_classes)
    model = RandomForestClassifier(n_estimators=15, random_state=3, **CASES[case]).fit(X, y)
    for dtype in (np.float64, np.float32):
        Xd = X[:ROWS].astype(dtype)
        one = _row_by_row(model, Xd, "predict_proba")
        for n_jobs in (1, 2):
            model.set_params(n_jobs=n_jobs)
            batch = model.predict_proba(Xd)
            assert batch.dtype == one.dtype and batch.shape == one.shape
            assert np.array_equal(batch.view(np.uint64), one.view(np.uint64)), (case, dtype, n_jobs)
            assert np.array_equal(model.apply(Xd), _row_by_row(model, Xd, "apply"))
            assert np.array_equal(model.predict(Xd), model.classes_[one.argmax(axis=1)])
        model.set_params(n_jobs=None)


def test_a_loaded_model_predicts_the_same_bits_as_the_fitted_one(tmp_path) -> None:
    X, y = _data(3, seed=9)
    model = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(X, y)
    path = tmp_path / "m.wdl"
    woodlot.dump(model, path)
    loaded = woodlot.load(path)
    want = model.predict_proba(X)
    assert np.array_equal(loaded.predict_proba(X).view(np.uint64), want.view(np.uint64))
    assert np.array_equal(loaded.apply(X), model.apply(X))
