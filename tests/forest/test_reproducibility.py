"""Same ``random_state``, same model: bit-identical for every ``n_jobs``, across fits, warm
starts and processes."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_classification

from woodlot import RandomForestClassifier

N_JOBS = [None, 1, 2, -1]


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=2000, n_features=12, n_informative=6, n_classes=3, random_state=0
    )
    X[::17, 3] = np.nan
    return X, y


@pytest.mark.parametrize("n_jobs", N_JOBS)
def test_bit_identical_for_every_n_jobs(data, n_jobs):
    X, y = data
    params = dict(n_estimators=40, random_state=7, oob_score=True)
    ref = RandomForestClassifier(n_jobs=1, **params).fit(X, y)
    m = RandomForestClassifier(n_jobs=n_jobs, **params).fit(X, y)
    np.testing.assert_array_equal(m.predict_proba(X), ref.predict_proba(X))
    np.testing.assert_array_equal(m.apply(X), ref.apply(X))
    np.testing.assert_array_equal(m.feature_importances_, ref.feature_importances_)
    np.testing.assert_array_equal(m.oob_decision_function_, ref.oob_decision_function_)
    assert m.oob_score_ == ref.oob_score_
    # and predicting with any n_jobs gives the same bits
    ref.set_params(n_jobs=n_jobs)
    np.testing.assert_array_equal(ref.predict_proba(X), m.predict_proba(X))


def test_same_seed_same_model_different_seed_different_model(data):
    X, y = data
    a = RandomForestClassifier(n_estimators=20, random_state=3).fit(X, y).predict_proba(X)
    b = RandomForestClassifier(n_estimators=20, random_state=3).fit(X, y).predict_proba(X)
    c = RandomForestClassifier(n_estimators=20, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_random_state_none_differs_between_fits(data):
    X, y = data
    a = RandomForestClassifier(n_estimators=10).fit(X, y).predict_proba(X)
    b = RandomForestClassifier(n_estimators=10).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, b)


def test_random_state_instance_is_consumed_like_sklearn(data):
    X, y = data
    a = RandomForestClassifier(n_estimators=10, random_state=np.random.RandomState(5)).fit(X, y)
    b = RandomForestClassifier(n_estimators=10, random_state=np.random.RandomState(5)).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_float32_and_float64_inputs_give_the_same_model(data):
    X, y = data
    a = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    b = RandomForestClassifier(n_estimators=10, random_state=0).fit(X.astype(np.float32), y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("n_jobs", [1, -1])
def test_warm_start_equals_one_big_fit(data, n_jobs):
    X, y = data
    big = RandomForestClassifier(n_estimators=30, random_state=11, n_jobs=n_jobs).fit(X, y)
    grown = RandomForestClassifier(n_estimators=10, random_state=11, warm_start=True, n_jobs=n_jobs)
    grown.fit(X, y)
    first = grown.apply(X)
    grown.set_params(n_estimators=30).fit(X, y)
    assert len(grown.estimators_) == 30
    np.testing.assert_array_equal(grown.apply(X)[:, :10], first)  # old trees kept
    np.testing.assert_array_equal(grown.predict_proba(X), big.predict_proba(X))


def test_warm_start_rules(data):
    X, y = data
    m = RandomForestClassifier(n_estimators=5, random_state=0, warm_start=True).fit(X, y)
    with pytest.warns(UserWarning, match="without increasing n_estimators"):
        m.fit(X, y)
    with pytest.raises(ValueError, match="must be larger or equal to len"):
        m.set_params(n_estimators=3).fit(X, y)
    with pytest.raises(ValueError, match="classes"):
        m.set_params(n_estimators=8).fit(X, np.where(y == 2, 5, y))


def test_no_warm_start_refits_from_scratch(data):
    X, y = data
    m = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    m.set_params(n_estimators=3).fit(X, y)
    assert len(m.estimators_) == 3


def test_bit_identical_across_processes(data, tmp_path):
    X, y = data
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    script = f"""
import numpy as np
from woodlot import RandomForestClassifier
X = np.load({str(tmp_path / 'X.npy')!r}); y = np.load({str(tmp_path / 'y.npy')!r})
p = RandomForestClassifier(n_estimators=15, random_state=2, n_jobs=-1).fit(X, y).predict_proba(X)
np.save({str(tmp_path / 'p.npy')!r}, p)
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    here = RandomForestClassifier(n_estimators=15, random_state=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), here)
