"""Each parameter rule that the Rust core checks is written once: the estimator's error for it is
the core's error, word for word, not a second Python wording of the same check.

For every rule below the test asks the core directly (``NativeForest.fit`` with the parameter
dict the estimator would send) and then the estimator, and requires the same class and message.
"""

from __future__ import annotations

import numpy as np
import pytest

from woodlot import RandomForestClassifier
from woodlot._native import NativeForest


@pytest.fixture(scope="module")
def binary_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(np.int64)
    return X, y


def _core_error(X, y, params, init=None) -> ValueError:
    codes = np.ascontiguousarray(y, dtype=np.uint32)
    with pytest.raises(ValueError) as info:
        NativeForest.fit(X, codes, 2, None, params, None, init)
    return info.value


def _estimator_error(est, X, y) -> ValueError:
    with pytest.raises(ValueError) as info:
        est.fit(X, y)
    return info.value


RULES = {
    "oob_score without bootstrap": (
        dict(bootstrap=False, oob_score=True),
        {"n_estimators": 5, "bootstrap": False, "oob_score": True},
    ),
    "max_samples without bootstrap": (
        dict(bootstrap=False, max_samples=0.5),
        {"n_estimators": 5, "bootstrap": False, "max_samples": 0.5},
    ),
    "monotonic_cst out of range": (
        dict(monotonic_cst=[2, 0, 0, 0, 0]),
        {"n_estimators": 5, "monotonic_cst": [2, 0, 0, 0, 0]},
    ),
    "monotonic_cst not integral": (
        dict(monotonic_cst=[0.5, 0, 0, 0, 0]),
        {"n_estimators": 5, "monotonic_cst": [0.5, 0, 0, 0, 0]},
    ),
    "monotonic_cst of the wrong length": (
        dict(monotonic_cst=[1, 0]),
        {"n_estimators": 5, "monotonic_cst": [1, 0]},
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_estimator_reports_the_cores_message(binary_data, rule):
    X, y = binary_data
    est_params, core_params = RULES[rule]
    core = _core_error(X, y, core_params)
    est = _estimator_error(RandomForestClassifier(n_estimators=5, **est_params), X, y)
    assert type(est) is type(core)
    assert str(est) == str(core)


def test_warm_start_with_fewer_trees_reports_the_cores_message(binary_data):
    X, y = binary_data
    est = RandomForestClassifier(n_estimators=10, warm_start=True, random_state=0).fit(X, y)
    core = _core_error(X, y, {"n_estimators": 5}, init=est._native)
    err = _estimator_error(est.set_params(n_estimators=5), X, y)
    assert type(err) is type(core)
    assert str(err) == str(core)
    assert "must be larger or equal to len(estimators_)=10" in str(err)
    assert len(est.estimators_) == 10  # the refused fit changed nothing


def test_integral_float_constraints_are_accepted_like_sklearn(binary_data):
    X, y = binary_data
    as_floats = RandomForestClassifier(
        n_estimators=5, monotonic_cst=np.array([1.0, 0.0, 0.0, 0.0, True]), random_state=0
    )
    as_bools = RandomForestClassifier(
        n_estimators=5, monotonic_cst=[True, False, False, False, True], random_state=0
    )
    expected = RandomForestClassifier(
        n_estimators=5, monotonic_cst=[1, 0, 0, 0, 1], random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(as_floats.fit(X, y).predict_proba(X), expected.predict_proba(X))
    np.testing.assert_array_equal(as_bools.fit(X, y).predict_proba(X), expected.predict_proba(X))


def test_warm_start_with_no_new_tree_still_refuses_bad_parameters_like_sklearn(binary_data):
    # scikit-learn checks parameters before it sees that a warm start adds no tree, so switching
    # to bootstrap=False with oob_score=True raises there instead of warning "does not fit new
    # trees". The estimator asks the core (NativeForest.check_params) for the same message a fit
    # would give.
    X, y = binary_data
    est = RandomForestClassifier(n_estimators=5, warm_start=True, random_state=0).fit(X, y)
    core = _core_error(X, y, dict(bootstrap=False, oob_score=True))
    err = _estimator_error(est.set_params(bootstrap=False, oob_score=True), X, y)
    assert type(err) is type(core)
    assert str(err) == str(core)
    assert len(est.estimators_) == 5


def test_warm_start_with_no_new_tree_and_valid_parameters_only_warns(binary_data):
    X, y = binary_data
    est = RandomForestClassifier(n_estimators=5, warm_start=True, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="does not fit new trees"):
        est.fit(X, y)
    assert len(est.estimators_) == 5


@pytest.mark.parametrize("bad", [2, -2, 300, -(2**40)])
def test_monotonic_cst_values_are_judged_by_the_core_rule_alone(binary_data, bad):
    # The binding once had its own range check with other words; a value beyond i8 must not
    # wrap into a valid one (300 as i8 is 44, 256 would be 0) but reach the core's rule.
    X, y = binary_data
    cst = [bad, 0, 0, 0, 0]
    err = _estimator_error(RandomForestClassifier(n_estimators=5, monotonic_cst=cst), X, y)
    assert (
        "invalid parameter `monotonic_cst`: monotonic_cst must be None or an array-like of -1, 0 "
        "or 1." in str(err)
    )
    core = _core_error(X, y, {"n_estimators": 5, "monotonic_cst": cst})
    assert str(core) == str(err)
