"""Multi-output classification: ``y`` of shape (n_samples, n_outputs), as scikit-learn's forest.

Shapes and types are checked against scikit-learn's own forest fitted on the same data, and
per-output accuracy against scikit-learn's on held-out rows (the forests differ in their random
draws and in woodlot's binned thresholds, so the accuracies are close, not equal).
"""

import json
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine, make_multilabel_classification
from sklearn.ensemble import RandomForestClassifier as SkForest
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import train_test_split

import woodlot
from woodlot import RandomForestClassifier


@pytest.fixture(scope="module")
def wine_two_outputs():
    """Wine with string labels (the cultivar's name) and a second, derived label: whether the
    alcohol is above 13 (an output with another class count than the first)."""
    X, y = load_wine(return_X_y=True)
    first = np.array(["barolo", "grignolino", "barbera"])[y]
    second = np.where(X[:, 0] > 13.0, "strong", "light")
    Y = np.column_stack([first, second])
    return train_test_split(X, Y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(
        n_samples=400, n_features=10, n_classes=3, random_state=0
    )
    return train_test_split(X, Y, test_size=0.3, random_state=0)


def test_fitted_attributes_and_output_shapes_are_scikit_learns(wine_two_outputs):
    X_train, X_test, Y_train, _ = wine_two_outputs
    ours = RandomForestClassifier(n_estimators=20, random_state=0).fit(X_train, Y_train)
    theirs = SkForest(n_estimators=20, random_state=0).fit(X_train, Y_train)
    assert ours.n_outputs_ == theirs.n_outputs_ == 2
    assert ours.n_classes_ == theirs.n_classes_ == [3, 2]
    assert isinstance(ours.classes_, list) and len(ours.classes_) == 2
    for a, b in zip(ours.classes_, theirs.classes_):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    pred, sk_pred = ours.predict(X_test), theirs.predict(X_test)
    assert pred.shape == sk_pred.shape == (len(X_test), 2)
    assert pred.dtype == sk_pred.dtype
    assert set(pred[:, 1]) <= {"strong", "light"}
    proba, sk_proba = ours.predict_proba(X_test), theirs.predict_proba(X_test)
    assert isinstance(proba, list) and len(proba) == len(sk_proba) == 2
    for p, q in zip(proba, sk_proba):
        assert p.shape == q.shape
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    # predict is each output's argmax of predict_proba.
    for k in range(2):
        np.testing.assert_array_equal(pred[:, k], ours.classes_[k][np.argmax(proba[k], axis=1)])
    log = ours.predict_log_proba(X_test)
    assert isinstance(log, list)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(log[1], np.log(proba[1]))


def test_each_output_is_as_accurate_as_scikit_learns(wine_two_outputs):
    X_train, X_test, Y_train, Y_test = wine_two_outputs
    ours = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, Y_train)
    theirs = SkForest(n_estimators=100, random_state=0).fit(X_train, Y_train)
    pred, sk_pred = ours.predict(X_test), theirs.predict(X_test)
    for k in range(2):
        acc = np.mean(pred[:, k] == Y_test[:, k])
        sk_acc = np.mean(sk_pred[:, k] == Y_test[:, k])
        assert acc >= sk_acc - 0.04, (k, acc, sk_acc)
        assert acc > 0.9, (k, acc)


def test_multilabel_accuracy_is_close_to_scikit_learns(multilabel):
    X_train, X_test, Y_train, Y_test = multilabel
    ours = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, Y_train)
    theirs = SkForest(n_estimators=100, random_state=0).fit(X_train, Y_train)
    for k in range(Y_train.shape[1]):
        acc = np.mean(ours.predict(X_test)[:, k] == Y_test[:, k])
        sk_acc = np.mean(theirs.predict(X_test)[:, k] == Y_test[:, k])
        assert acc >= sk_acc - 0.05, (k, acc, sk_acc)
    # score() is scikit-learn's: subset accuracy on a multilabel target.
    subset = np.mean(np.all(ours.predict(X_test) == Y_test, axis=1))
    assert ours.score(X_test, Y_test) == pytest.approx(subset)


def test_score_refuses_multiclass_multioutput_as_scikit_learn_does(wine_two_outputs):
    X_train, X_test, Y_train, Y_test = wine_two_outputs
    ours = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, Y_train)
    with pytest.raises(ValueError, match="multiclass-multioutput is not supported"):
        ours.score(X_test, Y_test)


def test_a_column_y_warns_and_fits_a_single_output_forest(wine_two_outputs):
    X_train, _, Y_train, _ = wine_two_outputs
    y = Y_train[:, :1]
    with pytest.warns(DataConversionWarning):
        m = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, y)
    assert m.n_outputs_ == 1 and m.n_classes_ == 3
    assert m.predict(X_train).shape == (len(X_train),)


def test_oob_on_a_multilabel_target_has_scikit_learns_shape_and_score(multilabel):
    X_train, _, Y_train, _ = multilabel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = RandomForestClassifier(n_estimators=30, oob_score=True, random_state=0).fit(
            X_train, Y_train
        )
        sk = SkForest(n_estimators=30, oob_score=True, random_state=0).fit(X_train, Y_train)
    assert m.oob_decision_function_.shape == sk.oob_decision_function_.shape == (
        len(X_train), 2, 3
    )
    np.testing.assert_allclose(m.oob_decision_function_.sum(axis=1), 1.0, atol=1e-9)
    subset = np.mean(np.all(np.argmax(m.oob_decision_function_, axis=1) == Y_train, axis=1))
    assert m.oob_score_ == pytest.approx(subset)
    assert abs(m.oob_score_ - sk.oob_score_) < 0.1
    # The same out-of-bag estimate survives the model file.
    back = woodlot.loads(woodlot.dumps(m))
    np.testing.assert_array_equal(back.oob_decision_function_, m.oob_decision_function_)
    assert back.oob_score_ == m.oob_score_


def test_oob_on_multiclass_multioutput_is_refused_with_scikit_learns_message(wine_two_outputs):
    X_train, _, Y_train, _ = wine_two_outputs
    with pytest.raises(ValueError, match="Got multiclass-multioutput"):
        RandomForestClassifier(n_estimators=5, oob_score=True).fit(X_train, Y_train)


def test_class_weight_per_output(wine_two_outputs):
    X_train, X_test, Y_train, _ = wine_two_outputs
    fit = lambda cw: RandomForestClassifier(  # noqa: E731
        n_estimators=10, random_state=0, class_weight=cw
    ).fit(X_train, Y_train)
    plain = fit(None).predict_proba(X_test)
    ones = {"barolo": 1.0, "grignolino": 1.0, "barbera": 1.0}
    weights = [ones, {"light": 1.0, "strong": 1.0}]
    np.testing.assert_array_equal(fit(weights).predict_proba(X_test)[0], plain[0])
    skewed = fit([ones, {"light": 1.0, "strong": 20.0}]).predict_proba(X_test)
    assert skewed[1][:, 1].mean() > plain[1][:, 1].mean()
    for preset in ("balanced", "balanced_subsample"):
        assert fit(preset).predict(X_test).shape == (len(X_test), 2)
    with pytest.raises(ValueError, match="number of elements in class_weight"):
        fit([ones])
    with pytest.raises(ValueError, match="list of dicts"):
        fit(ones)


def test_balanced_weights_multiply_across_outputs(multilabel):
    """With bootstrap off every tree sees the weights themselves: the root's weighted sample
    count is the sum over rows of the product of each output's balanced weight."""
    from sklearn.utils.class_weight import compute_sample_weight

    X_train, _, Y_train, _ = multilabel
    m = RandomForestClassifier(
        n_estimators=1, bootstrap=False, class_weight="balanced", max_depth=1, random_state=0
    ).fit(X_train, Y_train)
    root = m._native.tree_arrays(0)["weighted_n_node_samples"][0]
    assert root == pytest.approx(compute_sample_weight("balanced", Y_train).sum(), rel=1e-5)


def test_model_file_pickle_and_warm_start_round_trip(wine_two_outputs, tmp_path):
    X_train, X_test, Y_train, _ = wine_two_outputs
    m = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, Y_train)
    path = tmp_path / "multi.wdl"
    woodlot.dump(m, path)
    for back in (woodlot.load(path), pickle.loads(pickle.dumps(m))):
        assert back.n_outputs_ == 2 and back.n_classes_ == [3, 2]
        for a, b in zip(back.classes_, m.classes_):
            np.testing.assert_array_equal(a, b)
        for p, q in zip(back.predict_proba(X_test), m.predict_proba(X_test)):
            np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(back.predict(X_test), m.predict(X_test))
    m.set_params(warm_start=True, n_estimators=15).fit(X_train, Y_train)
    assert m._native.n_trees == 15
    with pytest.raises(ValueError, match="same classes"):
        m.set_params(n_estimators=20).fit(X_train, Y_train[:, 0])


def test_the_store_keeps_multi_output_models_and_refuses_to_compare_them(
    wine_two_outputs, tmp_path
):
    X_train, X_test, Y_train, Y_test = wine_two_outputs
    m = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, Y_train)
    store = woodlot.VersionStore(tmp_path / "models")
    v = store.save(m)
    assert v.classes == [["barbera", "barolo", "grignolino"], ["light", "strong"]]
    assert v.n_classes == 5
    back = store.load(v.version, verify=True)
    for p, q in zip(back.predict_proba(X_test), m.predict_proba(X_test)):
        np.testing.assert_array_equal(p, q)
    store.save(m)
    with pytest.raises(ValueError, match="single-output forest.*2 outputs"):
        store.compare(X_test, Y_test[:, 0])
    with pytest.raises(ValueError, match="single-output forest"):
        store.promote_if_better("v2", X_test, Y_test[:, 0])


def test_estimators_and_to_sklearn_are_scikit_learns_multi_output_trees(wine_two_outputs):
    from sklearn.tree import DecisionTreeClassifier, export_text

    X_train, X_test, Y_train, _ = wine_two_outputs
    m = RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(X_train, Y_train)
    trees = m.estimators_
    assert all(isinstance(t, DecisionTreeClassifier) for t in trees)
    t0 = trees[0]
    assert t0.n_outputs_ == 2 and list(t0.n_classes_) == [3, 2]
    assert t0.tree_.value.shape == (t0.tree_.node_count, 2, 3)
    assert t0.predict(X_test).shape == (len(X_test), 2)
    assert "class:" in export_text(t0)
    # The trees' mean is the forest's (per output), and so is the scikit-learn forest's.
    X32 = X_test.astype(np.float32)
    mean = [np.mean([t.predict_proba(X32)[k] for t in trees], axis=0) for k in range(2)]
    sk = m.to_sklearn()
    assert sk.n_outputs_ == 2 and sk.n_classes_ == [3, 2]
    for k, (ours, theirs) in enumerate(zip(m.predict_proba(X_test), sk.predict_proba(X_test))):
        np.testing.assert_allclose(mean[k], ours, atol=1e-12)
        np.testing.assert_allclose(theirs, ours, atol=1e-12)
    np.testing.assert_array_equal(sk.predict(X_test), m.predict(X_test))
    with pytest.raises(ValueError, match="single-output forest"):
        m._native.predict(X_train)


def test_merge_forests_of_the_same_outputs_and_refuses_others(wine_two_outputs):
    X_train, X_test, Y_train, _ = wine_two_outputs
    a = RandomForestClassifier(n_estimators=4, random_state=1).fit(X_train, Y_train)
    b = RandomForestClassifier(n_estimators=6, random_state=2).fit(X_train, Y_train)
    merged = woodlot.merge_forests([a, b])
    assert merged._native.n_trees == 10 and merged.n_classes_ == [3, 2]
    want = [(4 * p + 6 * q) / 10 for p, q in zip(a.predict_proba(X_test), b.predict_proba(X_test))]
    for got, w in zip(merged.predict_proba(X_test), want):
        np.testing.assert_allclose(got, w, atol=1e-12)
    single = RandomForestClassifier(n_estimators=3, random_state=3).fit(X_train, Y_train[:, 0])
    with pytest.raises(ValueError, match="cannot merge these forests: classes"):
        woodlot.merge_forests([a, single])



def test_the_guard_and_the_server_refuse_a_multi_output_version(wine_two_outputs, tmp_path):
    from tests.serving._http_util import Client

    X_train, X_test, Y_train, _ = wine_two_outputs
    store = woodlot.VersionStore(tmp_path / "models")
    single = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, Y_train[:, 0])
    multi = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, Y_train)
    store.promote(store.save(single))
    store.save(multi)
    with pytest.raises(ValueError, match="guarding version 2 needs a single-output forest"):
        store.guard("v2", mode="shadow")
    store.promote("v2")
    # The server starts, refuses the active multi-output version (logging why) and answers
    # 503 with a JSON reason instead of serving it.
    with woodlot.serve(store, port=0, block=False) as server:
        client = Client(server.url)
        status, _, body = client.post_json("/invocations", {"instances": X_test[:2].tolist()})
        assert status == 503 and json.loads(body)["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "needs a single-output forest" in json.loads(body)["message"], body  # the reason, in the body
        status, _, body = client.get("/ping")
        assert status == 503 and "needs a single-output forest" in json.loads(body)["message"], body
        assert "serving version 2 needs a single-output forest" in server.status().last_error


def test_from_sklearn_converts_a_multi_output_forest_exactly(wine_two_outputs):
    X_train, X_test, Y_train, _ = wine_two_outputs
    X_nan = X_test.copy()
    X_nan[::5, 3] = np.nan
    sk = SkForest(
        n_estimators=8, max_depth=6, random_state=0,
        class_weight=[{"barolo": 2.0}, {"strong": 3.0}],
    ).fit(X_train, Y_train)
    ours = woodlot.from_sklearn(sk)
    assert ours.n_outputs_ == 2 and ours.n_classes_ == [3, 2]
    for X in (X_test, X_nan):
        for p, q in zip(ours.predict_proba(X), sk.predict_proba(X)):
            np.testing.assert_allclose(p, q, atol=1e-6)
        np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    # ... and it is a woodlot model from then on: it saves and loads.
    back = woodlot.loads(woodlot.dumps(ours))
    np.testing.assert_array_equal(back.predict(X_test), ours.predict(X_test))
