"""Fitted attributes: feature importances, out-of-bag estimates, per-tree inspection, apply and
decision_path, compared with scikit-learn where they should agree."""

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer, load_wine, make_classification
from sklearn.ensemble import RandomForestClassifier as SkForest

from woodlot import RandomForestClassifier


@pytest.fixture(scope="module")
def wine_models():
    X, y = load_wine(return_X_y=True)
    params = dict(n_estimators=300, oob_score=True, random_state=0)
    return X, y, RandomForestClassifier(**params).fit(X, y), SkForest(**params).fit(X, y)


def test_fitted_attribute_basics(wine_models):
    X, y, m, _ = wine_models
    np.testing.assert_array_equal(m.classes_, [0, 1, 2])
    assert m.n_classes_ == 3
    assert m.n_features_in_ == 13
    assert m.n_outputs_ == 1
    assert len(m.estimators_) == len(m) == 300
    assert m[0] is m.estimators_[0]
    assert sum(1 for _ in m) == 300
    assert m.fit_info_["n_samples"] == len(X)
    assert len(m.fit_info_["training_fingerprint"]) == 64


def test_feature_importances_are_normalised_and_rank_like_sklearn(wine_models):
    X, _, m, sk = wine_models
    imp = m.feature_importances_
    assert imp.shape == (13,)
    assert imp.dtype == np.float64
    assert np.all(imp >= 0)
    assert imp.sum() == pytest.approx(1.0)
    rho = spearmanr(imp, sk.feature_importances_).statistic
    assert rho > 0.8, (imp, sk.feature_importances_)
    top = set(np.argsort(imp)[-4:])
    top_sk = set(np.argsort(sk.feature_importances_)[-4:])
    assert len(top & top_sk) >= 3


def test_feature_importances_are_the_mean_of_the_trees(wine_models):
    _, _, m, _ = wine_models
    per_tree = [t.feature_importances_ for t in m.estimators_ if t.tree_.node_count > 1]
    mean = np.mean(per_tree, axis=0)
    np.testing.assert_allclose(m.feature_importances_, mean / mean.sum(), rtol=1e-5, atol=1e-8)


def test_feature_importances_all_zero_without_splits():
    X = np.random.default_rng(0).normal(size=(20, 3))
    m = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, np.zeros(20))
    np.testing.assert_array_equal(m.feature_importances_, np.zeros(3))


def test_oob_score_close_to_sklearn(wine_models):
    X, y, m, sk = wine_models
    assert 0.9 < m.oob_score_ <= 1.0
    assert abs(m.oob_score_ - sk.oob_score_) < 0.04
    d = m.oob_decision_function_
    assert d.shape == (len(X), 3)
    np.testing.assert_allclose(d.sum(axis=1), 1.0)
    assert m.oob_score_ == pytest.approx(np.mean(np.argmax(d, axis=1) == y))


def test_oob_score_callable(wine_models):
    X, y, _, _ = wine_models
    from sklearn.metrics import balanced_accuracy_score

    m = RandomForestClassifier(n_estimators=50, oob_score=balanced_accuracy_score, random_state=0)
    m.fit(X, y)
    expected = balanced_accuracy_score(y, np.argmax(m.oob_decision_function_, axis=1))
    assert m.oob_score_ == pytest.approx(expected)


def test_no_oob_attributes_without_oob_score():
    X, y = load_wine(return_X_y=True)
    m = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    assert not hasattr(m, "oob_score_")
    assert not hasattr(m, "oob_decision_function_")


def test_tree_arrays_are_consistent(wine_models):
    X, _, m, _ = wine_models
    for tree in m.estimators_[:20]:
        t = tree.tree_
        n = t.node_count
        for name in ("children_left", "children_right", "feature", "threshold", "impurity",
                     "n_node_samples", "weighted_n_node_samples", "missing_go_to_left"):
            assert getattr(t, name).shape == (n,), name
        assert t.value.shape == (n, 1, 3)
        leaf = t.children_left == -1
        assert leaf.sum() == t.n_leaves == tree.get_n_leaves()
        assert np.all(t.children_right[leaf] == -1)
        assert np.all(t.feature[leaf] == -2)
        assert np.all(t.threshold[leaf] == -2.0)
        inner = ~leaf
        assert np.all(t.children_left[inner] > np.flatnonzero(inner))  # children after parents
        assert np.all((t.feature[inner] >= 0) & (t.feature[inner] < 13))
        np.testing.assert_allclose(t.value.sum(axis=2), 1.0, rtol=1e-5)
        # a node's samples are its children's samples
        kids = t.n_node_samples[t.children_left[inner]] + t.n_node_samples[t.children_right[inner]]
        np.testing.assert_array_equal(kids, t.n_node_samples[inner])
        np.testing.assert_allclose(
            t.weighted_n_node_samples[t.children_left[inner]]
            + t.weighted_n_node_samples[t.children_right[inner]],
            t.weighted_n_node_samples[inner],
            rtol=1e-5,
        )
        assert np.all(t.impurity >= 0)
        assert t.max_depth == tree.get_depth()


def test_tree_depth_limits_are_obeyed():
    X, y = load_breast_cancer(return_X_y=True)
    m = RandomForestClassifier(n_estimators=20, max_depth=3, max_leaf_nodes=6, random_state=0).fit(X, y)
    assert max(t.get_depth() for t in m.estimators_) <= 3
    assert max(t.get_n_leaves() for t in m.estimators_) <= 6


def test_walking_the_tree_arrays_reproduces_predictions(wine_models):
    """The arrays mean what scikit-learn's mean: walk them by hand, get the same leaves."""
    X, _, m, _ = wine_models
    X32 = X.astype(np.float32)
    leaves = m.apply(X)
    for i in range(5):
        t = m.estimators_[i].tree_
        for r in range(0, len(X), 7):
            node = 0
            while t.children_left[node] != -1:
                v = X32[r, t.feature[node]]
                go_left = v <= t.threshold[node] if not np.isnan(v) else t.missing_go_to_left[node]
                node = t.children_left[node] if go_left else t.children_right[node]
            assert node == leaves[r, i]
    manual = np.mean([m.estimators_[i].tree_.value[leaves[:, i], 0] for i in range(len(m))], axis=0)
    np.testing.assert_allclose(manual, m.predict_proba(X), rtol=1e-6)


def test_per_tree_predictions(wine_models):
    X, _, m, _ = wine_models
    tree = m.estimators_[3]
    proba = tree.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_array_equal(tree.predict(X), np.argmax(proba, axis=1))
    np.testing.assert_allclose(
        np.mean([t.predict_proba(X) for t in m.estimators_], axis=0), m.predict_proba(X), rtol=1e-6
    )


def test_apply_shape_and_range(wine_models):
    X, _, m, _ = wine_models
    leaves = m.apply(X)
    assert leaves.shape == (len(X), 300)
    assert np.issubdtype(leaves.dtype, np.integer)
    counts = np.array([t.tree_.node_count for t in m.estimators_])
    assert np.all(leaves >= 0) and np.all(leaves < counts)


def test_decision_path_matches_apply(wine_models):
    X, _, m, _ = wine_models
    indicator, ptr = m.decision_path(X[:20])
    counts = [t.tree_.node_count for t in m.estimators_]
    assert indicator.shape == (20, sum(counts))
    np.testing.assert_array_equal(ptr, np.r_[0, np.cumsum(counts)])
    leaves = m.apply(X[:20])
    dense = indicator.toarray()
    for i in (0, 7, 299):
        block = dense[:, ptr[i] : ptr[i + 1]]
        assert np.all(block[:, 0] == 1)  # everyone passes the root
        assert np.all(block[np.arange(20), leaves[:, i]] == 1)
        depth_plus_one = block.sum(axis=1)
        assert np.all(depth_plus_one <= m.estimators_[i].get_depth() + 1)


def test_predict_log_proba(wine_models):
    X, _, m, _ = wine_models
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(m.predict_log_proba(X), np.log(m.predict_proba(X)))


def test_class_weight_shifts_predictions_towards_the_heavy_class():
    X, y = make_classification(n_samples=600, n_features=8, weights=[0.9, 0.1], flip_y=0.05, random_state=0)
    plain = RandomForestClassifier(n_estimators=50, min_samples_leaf=5, random_state=0).fit(X, y)
    heavy = RandomForestClassifier(
        n_estimators=50, min_samples_leaf=5, class_weight={0: 1.0, 1: 10.0}, random_state=0
    ).fit(X, y)
    balanced = RandomForestClassifier(
        n_estimators=50, min_samples_leaf=5, class_weight="balanced", random_state=0
    ).fit(X, y)
    assert heavy.predict(X).mean() > plain.predict(X).mean()
    assert balanced.predict(X).mean() > plain.predict(X).mean()


def test_sample_weight_zero_is_like_dropping_rows():
    X, y = load_wine(return_X_y=True)
    w = np.ones(len(y))
    w[y == 2] = 0.0
    m = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y, sample_weight=w)
    assert m.predict_proba(X)[:, 2].max() == 0.0
