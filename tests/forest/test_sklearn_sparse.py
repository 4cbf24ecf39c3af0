"""Sparse ``X`` (scipy CSR/CSC): densified at fit; at predict, one block of rows at a time."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification

import woodlot._estimator as estimator_module
from woodlot import RandomForestClassifier


class _RecordingForest:
    """Delegates to the native forest and records the shape of every matrix handed to it."""

    def __init__(self, native):
        self._inner = native
        self.shapes: list = []

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name not in ("predict_proba", "predict", "apply"):
            return attr

        def call(X, n_jobs=None):
            self.shapes.append((type(X).__name__, X.shape))
            return attr(X, n_jobs)

        return call


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_predict_equals_dense_and_densifies_one_block_at_a_time(fmt, monkeypatch):
    X, y = make_classification(n_samples=600, n_features=30, n_informative=5, random_state=0)
    X[np.abs(X) < 0.8] = 0.0  # mostly zeros
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    dense = RandomForestClassifier(n_estimators=15, random_state=0).fit(X, y)
    sparse = RandomForestClassifier(n_estimators=15, random_state=0).fit(Xs, y)
    np.testing.assert_array_equal(sparse.predict_proba(X), dense.predict_proba(X))

    monkeypatch.setattr(estimator_module, "_SPARSE_BLOCK_ROWS", 128)
    spy = _RecordingForest(dense._native)
    dense.__dict__["_native"] = spy
    big = sp.vstack([Xs] * 4).tocsr() if fmt == "csr" else sp.vstack([Xs] * 4).tocsc()
    p = dense.predict_proba(big)
    labels = dense.predict(big)
    leaves = dense.apply(big)
    dense.__dict__["_native"] = spy._inner
    dense_big = np.vstack([X] * 4)
    np.testing.assert_array_equal(p, dense.predict_proba(dense_big))
    np.testing.assert_array_equal(labels, dense.predict(dense_big))
    np.testing.assert_array_equal(leaves, dense.apply(dense_big))
    assert spy.shapes, "nothing reached the native forest"
    assert all(kind == "ndarray" and shape[0] <= 128 for kind, shape in spy.shapes), spy.shapes
    assert sum(shape[0] for _, shape in spy.shapes) == 3 * big.shape[0]
