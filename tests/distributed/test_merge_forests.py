"""``woodlot.merge_forests``: forests fitted in parts by their users, merged into one.

The merge keeps every tree of every part, predicts with the mean over all of them, computes
importances as scikit-learn does (the mean of the trees' normalised importances), and refuses
parts that disagree on classes, features (names and count), tree parameters, binning (their
training data) or seeds, with a ValueError naming the difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

import woodlot
from woodlot import RandomForestClassifier, merge_forests


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=600, n_features=6, n_informative=4, n_classes=3,
                               random_state=3)


def fit(X, y, seed, **kw):
    return RandomForestClassifier(random_state=seed, max_depth=6, **kw).fit(X, y)


def test_the_merged_forest_holds_every_tree_and_predicts_with_their_mean(data, tmp_path):
    X, y = data
    a, b = fit(X, y, 1, n_estimators=4), fit(X, y, 2, n_estimators=6)
    m = merge_forests([a, b])
    assert len(m.estimators_) == 10 and m.n_estimators == 10
    trees = list(a.estimators_) + list(b.estimators_)
    for tm, t in zip(m.estimators_, trees):
        assert np.array_equal(tm.tree_.threshold, t.tree_.threshold)
        assert np.array_equal(tm.tree_.value, t.tree_.value)
    mean = np.mean([t.predict_proba(X) for t in trees], axis=0)
    np.testing.assert_allclose(m.predict_proba(X), mean, rtol=1e-6, atol=1e-7)
    # scikit-learn's definition: the mean of the trees' normalised importances.
    importances = np.mean([t.feature_importances_ for t in trees], axis=0)
    np.testing.assert_allclose(m.feature_importances_, importances / importances.sum(),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(m.classes_, a.classes_)
    assert not hasattr(m, "oob_score_") and m.oob_score is False
    assert m._training["mode"] == "merged" and len(m._training["parts"]) == 2
    # It is a model like any other: saved, versioned, loaded.
    store = woodlot.VersionStore(str(tmp_path / "models"))
    v = store.save(m)
    assert store.get(v.name).training["mode"] == "merged"
    assert np.array_equal(store.load(v.name).predict_proba(X), m.predict_proba(X))


def test_string_labels_and_feature_names_survive_the_merge(data):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = np.array(["ash", "birch", "oak"])[y]
    a, b = fit(frame, labels, 1, n_estimators=3), fit(frame, labels, 2, n_estimators=3)
    m = merge_forests([a, b])
    assert list(m.feature_names_in_) == list(frame.columns)
    assert set(m.predict(frame)) <= {"ash", "birch", "oak"}


@pytest.mark.parametrize("what", ["classes", "feature names", "features", "binning",
                                  "parameters", "seeds", "not fitted", "empty"])
def test_mismatched_parts_are_refused_naming_what_differs(data, what):
    X, y = data
    a = fit(X, y, 1, n_estimators=3)
    if what == "classes":
        b, needle = fit(X, np.where(y == 2, 5, y), 2, n_estimators=3), "classes"
    elif what == "feature names":
        a = fit(pd.DataFrame(X, columns=list("abcdef")), y, 1, n_estimators=3)
        b = fit(pd.DataFrame(X, columns=list("abcdeg")), y, 2, n_estimators=3)
        needle = "feature names"
    elif what == "features":
        b, needle = fit(X[:, :5], y, 2, n_estimators=3), "features: forest 0 has 6 features"
    elif what == "binning":
        b, needle = fit(X[::-1] * 2.0, y[::-1], 2, n_estimators=3), "binning"
    elif what == "parameters":
        b = RandomForestClassifier(n_estimators=3, random_state=2, max_depth=3).fit(X, y)
        needle = "max_depth"
    elif what == "seeds":
        b, needle = fit(X, y, 1, n_estimators=5), "same seed"
    elif what == "not fitted":
        b, needle = RandomForestClassifier(), "forest 1 is not a fitted"
    else:
        with pytest.raises(ValueError, match="at least one"):
            merge_forests([])
        return
    with pytest.raises(ValueError) as info:
        merge_forests([a, b])
    assert needle in str(info.value), str(info.value)
