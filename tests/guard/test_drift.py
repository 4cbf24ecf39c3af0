"""Drift against each version's training histogram: ``store.drift(X, ref)``, the estimator's
``training_histogram_``, the guard's status, and the ``reference=`` rows path."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import woodlot

from ._guardutil import store_with_pair, traffic

OLD_FILE = pathlib.Path(__file__).resolve().parents[1] / "data" / "model-format-2.0.wdl"


def _store(tmp_path, wine):
    X_train, X_test, y_train, y_test = wine
    return store_with_pair(tmp_path / "s", X_train, y_train)


def test_the_training_histogram_is_kept_with_the_model(wine):
    X_train, _, y_train, _ = wine
    m = woodlot.RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, y_train)
    h = m.training_histogram_
    assert h["rows"] == len(X_train)
    assert len(h["edges"]) == len(h["counts"]) == X_train.shape[1]
    for f, (edges, counts) in enumerate(zip(h["edges"], h["counts"])):
        assert len(counts) == len(edges) + 1
        assert sum(counts) + h["missing"][f] == len(X_train)
        # The counts are exactly the training rows between the edges (at float32 precision).
        col = X_train[:, f].astype(np.float32).astype(np.float64)
        direct = np.bincount(np.searchsorted(np.asarray(edges), col, side="left"), minlength=len(counts))
        assert direct.tolist() == counts, f
    back = woodlot.loads(woodlot.dumps(m))
    assert back.training_histogram_ == h


def test_live_rows_like_the_training_rows_drift_little_and_a_shifted_column_is_flagged(tmp_path, wine):
    X_train, X_test, _, _ = wine
    store = _store(tmp_path, wine)
    same = store.drift(X_train)  # the active version's own training rows: exactly its histogram
    assert max(same.psi.values()) < 1e-12 and same.flagged == [] and same.rows == len(X_train)
    fresh = store.drift(X_test, "active")
    assert fresh.rows == len(X_test)
    # Only 54 held-out rows in 10 bins: an empty bin alone costs ~0.7 with the 1e-4 floor, so
    # PSI is noise at this size (most features pass 0.2); the chi-square gate flags none of them.
    assert np.median(list(fresh.psi.values())) < 0.5, fresh.psi
    assert sum(p > 0.2 for p in fresh.psi.values()) >= 5, fresh.psi
    assert fresh.flagged == [], (fresh.psi, fresh.p_values)
    assert list(fresh.p_values) == list(fresh.psi) and all(0 <= p <= 1 for p in fresh.p_values.values())
    shifted = X_test.copy()
    shifted[:, 6] += 2 * X_train[:, 6].std()
    rep = store.drift(shifted, "v1", threshold=0.5)
    assert 6 in rep.flagged and rep.psi[6] > 3 * fresh.psi[6] and rep.threshold == 0.5
    assert rep.p_values[6] < 0.01 / X_test.shape[1], rep.p_values
    assert all(rep.psi[j] == fresh.psi[j] for j in range(X_test.shape[1]) if j != 6)
    assert store.drift(shifted, 1).psi == rep.psi
    store.set_alias("prod", 1)
    assert store.drift(shifted, "prod").psi == rep.psi


def test_dataframe_column_names_key_the_report(tmp_path, wine_frame):
    X_train, X_test, y_train, _ = wine_frame
    store = woodlot.VersionStore(tmp_path / "s")
    store.save(woodlot.RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, y_train))
    store.promote(1)
    live = X_test.copy()
    live["proline"] = live["proline"] * 3
    rep = store.drift(live)
    assert list(rep.psi) == [str(c) for c in X_train.columns]
    assert "proline" in rep.flagged


def test_reference_rows_are_used_when_given(tmp_path, wine):
    X_train, X_test, _, _ = wine
    store = _store(tmp_path, wine)
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(4000, 3))
    live = rng.normal(size=(2000, 3))
    live[:, 1] += 0.5
    rep = store.drift(live, reference=reference)
    assert rep.flagged == [1] and rep.rows == 2000
    assert store.drift(live, "active", reference=reference, bins=20).flagged == [1]
    with pytest.raises(TypeError, match="reference="):
        store.drift(live, reference)  # rows passed where a version name goes


def test_a_version_without_a_histogram_says_to_pass_reference_rows(tmp_path, wine):
    _, X_test, _, _ = wine
    store = woodlot.VersionStore(tmp_path / "s")
    old = woodlot.load(OLD_FILE)  # written by the format 2.0 encoder
    assert old.training_histogram_ is None
    store.save(old)
    with pytest.raises(ValueError, match=r"v1 has no training histogram.*reference="):
        store.drift(X_test, "v1")
    assert store.drift(X_test, "v1", reference=X_test).flagged == []
    with pytest.raises(ValueError, match="features"):
        store.drift(X_test[:, :5], reference=X_test)


def test_the_guard_status_reports_drift_of_the_rows_it_scored(tmp_path, wine):
    X_train, X_test, y_train, y_test = wine
    store = _store(tmp_path, wine)
    guard = store.guard("v2", mode="shadow")
    st = guard.status()
    assert st.drift is not None and st.drift.rows == 0 and st.drift.flagged == []
    live, _ = traffic(X_test, y_test, 400, seed=1)
    live = live.copy()
    live[:, 9] *= 3
    for start in range(0, 400, 50):
        guard.predict(live[start:start + 50])
    st = guard.status()
    assert st.drift.rows == 400
    assert 9 in st.drift.flagged and st.drift.threshold == 0.2
    assert st.drift.psi[9] > 1.0
    assert st.decision is None  # a warning, never a decision
    guard.stop("test done")


def test_a_converted_scikit_learn_forest_has_no_histogram(tmp_path, wine):
    from sklearn.ensemble import RandomForestClassifier

    X_train, X_test, y_train, _ = wine
    store = woodlot.VersionStore(tmp_path / "s")
    store.import_sklearn(RandomForestClassifier(n_estimators=3, random_state=0).fit(X_train, y_train))
    assert store.load("v1").training_histogram_ is None
    with pytest.raises(ValueError, match="reference="):
        store.drift(X_test, "latest")
