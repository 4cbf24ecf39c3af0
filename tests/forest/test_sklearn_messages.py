"""Error messages for invalid parameters and input match the patterns scikit-learn's own test
suite matches on (sklearn/ensemble/tests/test_forest.py, sklearn/tree/tests/
test_monotonic_tree.py), so code and tests written against scikit-learn keep working. Each
case runs against scikit-learn's forest too: the pattern is scikit-learn's, not ours."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier as SkForest

from woodlot import RandomForestClassifier

X = np.random.RandomState(0).rand(60, 3)
y2 = np.arange(60) % 2
y3 = np.arange(60) % 3


def _warm_fewer(cls):
    m = cls(n_estimators=5, warm_start=True, random_state=0).fit(X, y2)
    m.set_params(n_estimators=3).fit(X, y2)


CASES = {
    "oob_without_bootstrap": (
        lambda cls: cls(oob_score=True, bootstrap=False).fit(X, y2),
        "Out of bag estimation only available if bootstrap=True",
    ),
    "max_samples_without_bootstrap": (
        lambda cls: cls(max_samples=0.5, bootstrap=False).fit(X, y2),
        "`max_sample` cannot be set if `bootstrap=False`. Either switch to `bootstrap=True` or "
        "set `max_sample=None`.",
    ),
    "monotonic_multiclass": (
        lambda cls: cls(monotonic_cst=[1, 0, 0]).fit(X, y3),
        "Monotonicity constraints are not supported with multiclass classification",
    ),
    "monotonic_shape": (
        lambda cls: cls(monotonic_cst=[1, 0]).fit(X, y2),
        "monotonic_cst has shape 2 but the input data X has 3 features.",
    ),
    "monotonic_values": (
        lambda cls: cls(monotonic_cst=[-2, 2, 0]).fit(X, y2),
        "monotonic_cst must be None or an array-like of -1, 0 or 1.",
    ),
    "warm_start_fewer_trees": (
        _warm_fewer,
        "n_estimators=3 must be larger or equal to len\\(estimators_\\)=5 when warm_start==True",
    ),
    "n_features_at_predict": (
        lambda cls: cls(n_estimators=3).fit(X, y2).predict(X[:, :2]),
        "X has 2 features, but RandomForestClassifier is expecting 3 features as input",
    ),
    "continuous_target": (
        lambda cls: cls(n_estimators=3).fit(X, X[:, 0]),
        "Unknown label type",
    ),
}


@pytest.mark.parametrize("estimator", [SkForest, RandomForestClassifier], ids=["sklearn", "woodlot"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_messages_match_sklearns_test_patterns(estimator, case):
    call, pattern = CASES[case]
    with pytest.raises(ValueError, match=pattern):
        call(estimator)
