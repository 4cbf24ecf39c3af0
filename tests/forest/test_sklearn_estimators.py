"""``estimators_`` are real scikit-learn trees, ``estimators_samples_`` is scikit-learn's,
``n_jobs=None`` follows joblib's ``parallel_config``, and a warm start with ``oob_score=True``
at the same ``n_estimators`` computes ``oob_score_`` as scikit-learn does."""

from __future__ import annotations

import pickle
import warnings

import joblib
import matplotlib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_wine, make_classification
from sklearn.ensemble import RandomForestClassifier as SkForest
from sklearn.tree import DecisionTreeClassifier, export_graphviz, export_text, plot_tree

import woodlot
from woodlot import RandomForestClassifier

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


def _data(nan=False, n=240, seed=0):
    X, y = make_classification(n_samples=n, n_features=5, n_informative=3, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=seed)
    if nan:
        X[np.random.RandomState(seed).rand(*X.shape) < 0.2] = np.nan
    return X, y


@pytest.mark.parametrize("nan", [False, True])
def test_estimators_are_decision_trees_equal_to_the_rust_trees(nan):
    X, y = _data(nan=nan)
    labels = np.array(["x", "y", "z"])[y]
    m = RandomForestClassifier(n_estimators=12, max_depth=5, random_state=0).fit(X, labels)
    trees = m.estimators_
    assert trees is m.estimators_  # cached
    assert all(type(t) is DecisionTreeClassifier for t in trees)
    leaves = m.apply(X)
    for i, t in enumerate(trees):
        np.testing.assert_array_equal(t.apply(X), leaves[:, i])
        np.testing.assert_array_equal(t.tree_.apply(X.astype(np.float32)), leaves[:, i])
        np.testing.assert_array_equal(t.classes_, np.arange(3, dtype=np.float64))
        assert t.get_depth() <= 5
    mean = np.mean([t.predict_proba(X) for t in trees], axis=0)
    np.testing.assert_allclose(mean, m.predict_proba(X), rtol=1e-15, atol=1e-16)
    np.testing.assert_array_equal(
        m.classes_.take(np.argmax(mean, axis=1)), m.predict(X)
    )
    # Their own parameters: the forest's tree parameters and a random_state each.
    seeds = {t.random_state for t in trees}
    assert len(seeds) == len(trees) and all(isinstance(s, int) for s in seeds)
    assert {t.max_depth for t in trees} == {5}
    # A refit invalidates the cache.
    m.set_params(max_depth=2).fit(X, labels)
    assert m.estimators_ is not trees and max(t.get_depth() for t in m.estimators_) <= 2


def test_tree_api_decision_path_and_importances_work():
    X, y = _data()
    m = RandomForestClassifier(n_estimators=5, random_state=1).fit(X, y)
    t = m.estimators_[2]
    path = t.decision_path(X)
    indicator, ptr = m.decision_path(X)
    np.testing.assert_array_equal(
        path.toarray(), indicator[:, ptr[2]:ptr[3]].toarray()
    )
    imp = t.tree_.compute_feature_importances()
    np.testing.assert_allclose(imp, t.feature_importances_)
    forest_imp = np.mean([e.feature_importances_ for e in m.estimators_], axis=0)
    np.testing.assert_allclose(forest_imp / forest_imp.sum(), m.feature_importances_, rtol=1e-5)
    assert t.tree_.node_count == len(t.tree_.threshold) == t.tree_.value.shape[0]


def test_plot_tree_export_text_export_graphviz_clone_and_refit():
    X, y = load_wine(return_X_y=True)
    m = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(X, y)
    t = m.estimators_[0]
    text = export_text(t)
    assert text.count("class:") == t.get_n_leaves()
    dot = export_graphviz(t, out_file=None)
    assert dot.startswith("digraph Tree") and dot.count("->") == t.tree_.node_count - 1
    fig = plt.figure()
    try:
        artists = plot_tree(t)
        boxes = [a for a in artists if "samples = " in a.get_text()]
        assert len(boxes) == t.tree_.node_count
    finally:
        plt.close(fig)
    c = clone(t)
    assert c.get_params() == t.get_params() and not hasattr(c, "tree_")
    c.fit(X, y)
    assert c.score(X, y) > 0.8
    # Refitting the cached tree itself works as in scikit-learn (it then is the user's tree).
    m.estimators_[1].fit(X[:100], y[:100])
    assert m.estimators_[1].tree_.n_node_samples[0] == 100


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(max_samples=0.5),
        dict(class_weight="balanced"),
        dict(bootstrap=False),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_estimators_samples_are_the_in_bag_draws(params, weighted):
    X, y = _data(n=150)
    sw = np.random.RandomState(3).randint(1, 4, size=len(y)).astype(float) if weighted else None
    m = RandomForestClassifier(n_estimators=6, oob_score=False, random_state=4, **params)
    m.fit(X, y, sample_weight=sw)
    samples = m.estimators_samples_
    assert len(samples) == 6
    expected = len(y)
    if "max_samples" in params:  # scikit-learn 1.9: a fraction of the total weight
        expected = int(0.5 * (sw.sum() if weighted else len(y)))
    for i, s in enumerate(samples):
        assert s.dtype == np.int32 and len(s) == expected
        in_bag = np.zeros(len(y), dtype=bool)
        in_bag[s] = True
        root = m.estimators_[i].tree_.n_node_samples[0]
        assert in_bag.sum() == root  # the tree's root saw exactly the distinct drawn rows
    if params.get("bootstrap", True):
        # The out-of-bag rows of every tree are the ones its draw missed: recompute the OOB
        # decision function from the samples and compare with the fitted one.
        o = RandomForestClassifier(n_estimators=6, oob_score=True, random_state=4, **params)
        o.fit(X, y, sample_weight=sw)
        total = np.zeros((len(y), 3))
        for i, s in enumerate(o.estimators_samples_):
            out = np.setdiff1d(np.arange(len(y)), s)
            total[out] += o.estimators_[i].predict_proba(X[out])
        sums = total.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            expect = np.where(sums > 0, total / np.where(sums > 0, sums, 1), 0)
        np.testing.assert_allclose(expect, o.oob_decision_function_, atol=1e-6)


def test_estimators_samples_refuse_what_they_cannot_know(tmp_path):
    X, y = _data(n=100)
    m = RandomForestClassifier(n_estimators=3, random_state=0).fit(
        X, y, sample_weight=np.linspace(1, 3, len(y))
    )
    woodlot.dump(m, tmp_path / "m.wdl")
    with pytest.raises(AttributeError, match="weights the model file does not keep"):
        woodlot.load(tmp_path / "m.wdl").estimators_samples_
    # A pickle keeps the weights, so the draws are known.
    again = pickle.loads(pickle.dumps(m))
    for a, b in zip(again.estimators_samples_, m.estimators_samples_):
        np.testing.assert_array_equal(a, b)
    plain = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    woodlot.dump(plain, tmp_path / "p.wdl")
    for a, b in zip(woodlot.load(tmp_path / "p.wdl").estimators_samples_,
                    plain.estimators_samples_):
        np.testing.assert_array_equal(a, b)
    sk = woodlot.from_sklearn(SkForest(n_estimators=3, random_state=0).fit(X, y))
    with pytest.raises(AttributeError, match="converted from scikit-learn"):
        sk.estimators_samples_


def test_n_jobs_none_follows_joblib_parallel_config(monkeypatch):
    X, y = _data(n=2000)
    m = RandomForestClassifier(n_estimators=4, random_state=0)
    seen = []
    native = woodlot._distributed.NativeForest

    class Spy:
        @staticmethod
        def fit(*args, **kwargs):
            seen.append(args[5])  # (X, y, n_classes, sample_weight, params, n_jobs, init)
            return native.fit(*args, **kwargs)

    # A local fit goes through _distributed.fit_forest (the joblib engine's dispatch).
    monkeypatch.setattr(woodlot._distributed, "NativeForest", Spy)
    m.fit(X, y)
    with joblib.parallel_config(n_jobs=2):
        m.fit(X, y)
    with joblib.parallel_backend("threading", n_jobs=3):
        m.fit(X, y)
    m.set_params(n_jobs=1)
    with joblib.parallel_config(n_jobs=2):
        m.fit(X, y)  # an explicit n_jobs wins, as in scikit-learn
    assert seen == [1, 2, 3, 1]
    assert m._n_jobs(5) == 1
    m.set_params(n_jobs=None)
    with joblib.parallel_config(n_jobs=2):
        assert m._n_jobs(len(X)) == 2
        assert m._n_jobs(1) is None  # one row: no joblib call on the fast path
        p = m.predict_proba(X)
    np.testing.assert_array_equal(p, m.predict_proba(X))


def test_warm_start_oob_at_the_same_n_estimators_computes_it_as_sklearn_does():
    X, y = _data(n=200)
    for est in (SkForest, RandomForestClassifier):
        m = est(n_estimators=20, warm_start=True, random_state=0).fit(X, y)
        assert not hasattr(m, "oob_score_")
        m.set_params(oob_score=True)
        with pytest.warns(UserWarning, match="does not fit new trees"):
            m.fit(X, y)
        assert 0.5 < m.oob_score_ <= 1.0
        assert m.oob_decision_function_.shape == (200, 3)
        assert len(m.estimators_) == 20
    # woodlot's equals a fresh fit with oob_score=True (the same trees, the same OOB rows).
    fresh = RandomForestClassifier(n_estimators=20, oob_score=True, random_state=0).fit(X, y)
    assert m.oob_score_ == fresh.oob_score_
    np.testing.assert_array_equal(m.oob_decision_function_, fresh.oob_decision_function_)
    np.testing.assert_array_equal(m.predict_proba(X), fresh.predict_proba(X))
    # A second refit has nothing to do (oob_score_ exists): it warns and changes nothing.
    before = m._native
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        m.fit(X, y)
    assert m._native is before
