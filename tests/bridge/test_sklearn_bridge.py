"""The bridge both ways: scikit-learn forests into woodlot (``from_sklearn``, ``import_pickle``,
``VersionStore.import_sklearn``) and woodlot forests out (``to_sklearn``), over many forests.

"Exact" here means: the same leaf for every row (``apply``), the same predicted labels, and
probabilities equal up to the float32 rounding of each leaf value (woodlot's leaf type) on the
way in, and up to one unit in the last place on the way out.
"""

from __future__ import annotations

import hashlib
import pickle

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_wine, make_classification
from sklearn.ensemble import ExtraTreesClassifier as SkExtraTrees
from sklearn.ensemble import RandomForestClassifier as SkForest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import export_text

import woodlot
from woodlot import RandomForestClassifier

#: float32 rounding of a leaf fraction is at most 2^-24 relative; the mean of the trees' values
#: keeps that bound.
F32_LEAF = 2.0**-24


def _data(n=300, n_features=6, n_classes=3, seed=0, nan=False):
    X, y = make_classification(
        n_samples=n,
        n_features=n_features,
        n_informative=min(n_features, 4),
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    if nan:
        rng = np.random.RandomState(seed)
        X[rng.rand(*X.shape) < 0.15] = np.nan
    return X, y


def _probe_rows(X, seed=1):
    """Training rows, their float32 neighbours, the thresholds themselves, NaNs and far values:
    every side of every split."""
    rng = np.random.RandomState(seed)
    Xf = np.asarray(X, dtype=np.float32)
    up = np.nextafter(Xf, np.float32(np.inf))
    down = np.nextafter(Xf, np.float32(-np.inf))
    wild = rng.normal(scale=10, size=(200, X.shape[1]))
    holes = np.array(Xf[:100], dtype=np.float64)
    holes[rng.rand(*holes.shape) < 0.3] = np.nan
    return np.vstack([X, up, down, wild, holes, np.full((3, X.shape[1]), np.nan)]).astype(np.float64)


def _thresholds_rows(sk, n_features):
    rows = []
    for t in sk.estimators_:
        tr = t.tree_
        inner = tr.children_left >= 0
        for f, th in zip(tr.feature[inner], tr.threshold[inner]):
            if np.isfinite(th):
                r = np.zeros(n_features)
                r[f] = th
                rows.append(r)
                r2 = r.copy()
                r2[f] = np.nextafter(np.float32(th), np.float32(np.inf))
                rows.append(r2)
    return np.array(rows) if rows else np.zeros((0, n_features))


FORESTS = [
    dict(n_estimators=10, max_depth=3, random_state=0),
    dict(n_estimators=15, random_state=1),
    dict(n_estimators=8, max_leaf_nodes=9, random_state=2),
    dict(n_estimators=8, min_samples_leaf=5, class_weight="balanced", random_state=3),
    dict(n_estimators=8, class_weight="balanced_subsample", bootstrap=True, max_samples=0.5, random_state=4),
    dict(n_estimators=6, criterion="entropy", max_features=None, bootstrap=False, random_state=5),
    dict(n_estimators=6, ccp_alpha=0.01, random_state=6),
]


@pytest.mark.parametrize("kind", [SkForest, SkExtraTrees])
@pytest.mark.parametrize("params", FORESTS)
@pytest.mark.parametrize("n_classes,nan", [(2, False), (3, True), (5, True)])
def test_from_sklearn_routes_every_row_through_the_same_leaf(kind, params, n_classes, nan):
    X, y = _data(n_classes=n_classes, nan=nan, seed=n_classes)
    sk = kind(**params).fit(X, y)
    wd = woodlot.from_sklearn(sk)
    rows = np.vstack([_probe_rows(X), _thresholds_rows(sk, X.shape[1])])
    if "max_leaf_nodes" not in params:  # best-first trees are renumbered into preorder
        np.testing.assert_array_equal(wd.apply(rows), sk.apply(rows))
    p_sk, p_wd = sk.predict_proba(rows), wd.predict_proba(rows)
    assert np.max(np.abs(p_sk - p_wd)) <= F32_LEAF
    # Labels agree wherever scikit-learn's top two classes are not within that rounding.
    top2 = np.sort(p_sk, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 4 * F32_LEAF
    np.testing.assert_array_equal(wd.predict(rows)[clear], sk.predict(rows)[clear])
    np.testing.assert_array_equal(wd.classes_, sk.classes_)
    assert wd.get_params()["n_estimators"] == len(sk.estimators_)


def test_from_sklearn_keeps_string_labels_feature_names_and_survives_the_model_file(tmp_path):
    X, y = load_wine(return_X_y=True, as_frame=True)
    labels = np.array(["barolo", "grignolino", "barbera"], dtype=object)[y]
    sk = SkForest(n_estimators=20, max_depth=4, random_state=0).fit(X, labels)
    wd = woodlot.from_sklearn(sk)
    assert list(wd.feature_names_in_) == list(X.columns)
    np.testing.assert_array_equal(wd.predict(X), sk.predict(X))
    assert np.max(np.abs(wd.predict_proba(X) - sk.predict_proba(X))) <= F32_LEAF
    woodlot.dump(wd, tmp_path / "m.wdl")
    back = woodlot.load(tmp_path / "m.wdl")
    np.testing.assert_array_equal(back.predict_proba(X), wd.predict_proba(X))
    assert back._source["converted_from"] == "sklearn.ensemble._forest.RandomForestClassifier"


@pytest.mark.parametrize(
    "params",
    [
        dict(n_estimators=12, max_depth=4, random_state=0),
        dict(n_estimators=12, random_state=1, class_weight="balanced"),
        dict(n_estimators=6, max_leaf_nodes=7, min_samples_leaf=3, random_state=2),
    ],
)
@pytest.mark.parametrize("nan", [False, True])
def test_to_sklearn_predicts_what_woodlot_predicts(params, nan):
    X, y = _data(n_classes=3, nan=nan, seed=7)
    labels = np.array(["a", "b", "c"])[y]
    wd = RandomForestClassifier(**params).fit(X, labels)
    sk = wd.to_sklearn()
    assert type(sk) is SkForest
    rows = _probe_rows(X)
    np.testing.assert_array_equal(sk.apply(rows), wd.apply(rows))
    np.testing.assert_allclose(sk.predict_proba(rows), wd.predict_proba(rows), rtol=1e-15, atol=1e-16)
    np.testing.assert_array_equal(sk.predict(rows), wd.predict(rows))
    # And back again: the same trees, the same numbers.
    again = woodlot.from_sklearn(sk)
    np.testing.assert_array_equal(again.predict_proba(rows), wd.predict_proba(rows))
    np.testing.assert_array_equal(again.apply(rows), wd.apply(rows))


def test_to_sklearn_carries_oob_and_feature_names():
    X, y = load_wine(return_X_y=True, as_frame=True)
    wd = RandomForestClassifier(n_estimators=30, oob_score=True, random_state=0).fit(X, y)
    sk = wd.to_sklearn()
    assert sk.oob_score_ == wd.oob_score_
    assert list(sk.feature_names_in_) == list(X.columns)
    np.testing.assert_array_equal(sk.predict(X), wd.predict(X))


def test_export_text_is_the_same_text_both_ways():
    X, y = _data(n_classes=3, seed=3)
    sk = SkForest(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    wd = woodlot.from_sklearn(sk)
    for a, b in zip(sk.estimators_, wd.estimators_):
        # Thresholds become the float32 just below scikit-learn's: the same split, and the same
        # text at export_text's two decimals.
        assert export_text(a) == export_text(b)


def test_unsupported_estimators_and_layouts_are_refused_clearly():
    X, y = _data()
    with pytest.raises(TypeError, match="RandomForestClassifier or ExtraTreesClassifier"):
        woodlot.from_sklearn(LogisticRegression().fit(X, y))
    with pytest.raises(Exception, match="not fitted"):
        woodlot.from_sklearn(SkForest())
    # A multi-output forest converts (tests/forest/test_multi_output.py); one whose trees
    # disagree with its outputs is refused.
    Y = np.column_stack([y, y % 2])
    sk = SkForest(n_estimators=3, random_state=0).fit(X, Y)
    sk.n_classes_ = [int(c) + 1 for c in sk.n_classes_]
    with pytest.raises(ValueError, match="labels, n_classes_ is"):
        woodlot.from_sklearn(sk)
    with pytest.raises(TypeError, match="already a woodlot"):
        woodlot.from_sklearn(RandomForestClassifier(n_estimators=3).fit(X, y))


def test_hostile_tree_arrays_give_a_value_error_naming_the_node():
    X, y = _data()
    sk = SkForest(n_estimators=2, max_depth=3, random_state=0).fit(X, y)
    state = sk.estimators_[1].tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 0  # the root's left child is the root: a cycle

    class Hostile:
        def __getstate__(self):
            return {**state, "nodes": nodes}

    class FakeTree:
        tree_ = Hostile()

    sk.estimators_[1] = FakeTree()
    with pytest.raises(ValueError, match=r"tree 1: node 0: .*reached twice"):
        woodlot.from_sklearn(sk)


def test_import_pickle_refuses_without_trust_and_converts_with_it(tmp_path):
    X, y = _data(n_classes=3, seed=5)
    sk = SkForest(n_estimators=10, max_depth=5, random_state=0).fit(X, y)
    path = tmp_path / "model_v1.pkl"
    joblib.dump(sk, path)
    with pytest.raises(PermissionError, match="runs whatever code"):
        woodlot.import_pickle(path)
    with pytest.raises(PermissionError, match="trust=True"):
        woodlot.import_pickle(path, trust="yes")  # only True itself counts
    wd = woodlot.import_pickle(path, trust=True)
    np.testing.assert_array_equal(wd.apply(X), sk.apply(X))
    assert wd._source["source_file"] == "model_v1.pkl"
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(sk))
    assert np.array_equal(woodlot.import_pickle(plain, trust=True).apply(X), sk.apply(X))
    other = tmp_path / "other.pkl"
    joblib.dump({"not": "a forest"}, other)
    with pytest.raises(TypeError, match="holds a builtins.dict"):
        woodlot.import_pickle(other, trust=True)


def test_the_untrusted_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(PermissionError):
        woodlot.import_pickle(path)
    assert not marker.exists()


def test_store_import_sklearn_records_where_the_version_came_from(tmp_path):
    X, y = _data(n_classes=3, seed=9)
    v1 = SkForest(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    v2 = SkForest(n_estimators=20, max_depth=6, random_state=1).fit(X, y)
    joblib.dump(v1, tmp_path / "model_v1.pkl")
    store = woodlot.VersionStore(tmp_path / "models")
    with pytest.raises(PermissionError):
        store.import_sklearn(tmp_path / "model_v1.pkl")
    assert len(store) == 0  # nothing saved
    a = store.import_sklearn(tmp_path / "model_v1.pkl", trust=True, description="from joblib")
    b = store.import_sklearn(v2, tags={"team": "ml"})
    digest = hashlib.sha256((tmp_path / "model_v1.pkl").read_bytes()).hexdigest()
    assert a.tags["source_file"] == "model_v1.pkl"
    assert a.tags["source_sha256"] == digest
    assert a.tags["source_class"].endswith("RandomForestClassifier")
    assert a.tags["sklearn_version"]
    assert b.tags["team"] == "ml" and "source_file" not in b.tags
    loaded = store.load(a.version, verify=True)
    np.testing.assert_array_equal(loaded.apply(X), v1.apply(X))
