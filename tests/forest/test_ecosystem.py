"""woodlot inside scikit-learn's ecosystem: meta-estimators, model selection, inspection,
pickling, and its own model files."""

import copy
import io
import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.inspection import permutation_importance
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import woodlot
from woodlot import CorruptModelError, RandomForestClassifier, WoodlotError


@pytest.fixture(scope="module")
def fitted(wine):
    X_train, _, y_train, _ = wine
    return RandomForestClassifier(n_estimators=30, max_depth=4, oob_score=True, random_state=42).fit(
        X_train, y_train
    )


def assert_same_model(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.apply(X), b.apply(X))
    np.testing.assert_array_equal(a.classes_, b.classes_)
    assert a.classes_.dtype == b.classes_.dtype
    np.testing.assert_array_equal(a.feature_importances_, b.feature_importances_)
    assert a.get_params() == b.get_params() or repr(a.get_params()) == repr(b.get_params())
    assert a.n_features_in_ == b.n_features_in_


# --------------------------------------------------------------------------------------------
# meta-estimators and model selection
# --------------------------------------------------------------------------------------------


def test_clone_keeps_params_and_drops_fit(fitted):
    c = clone(fitted)
    assert c.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        c.predict(np.zeros((1, 13)))


def test_pipeline(wine):
    X_train, X_test, y_train, y_test = wine
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=50, random_state=0))
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.9
    assert isinstance(pipe, Pipeline)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_grid_search(wine, n_jobs):
    X_train, X_test, y_train, y_test = wine
    grid = GridSearchCV(
        RandomForestClassifier(n_estimators=20, random_state=0),
        {"max_depth": [2, 4], "criterion": ["gini", "entropy"]},
        cv=3,
        n_jobs=n_jobs,
    ).fit(X_train, y_train)
    assert grid.best_params_["max_depth"] in (2, 4)
    assert grid.score(X_test, y_test) > 0.85


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_cross_val_score(wine, n_jobs):
    X_train, _, y_train, _ = wine
    scores = cross_val_score(
        RandomForestClassifier(n_estimators=20, random_state=0), X_train, y_train, cv=4, n_jobs=n_jobs
    )
    assert scores.shape == (4,)
    assert scores.mean() > 0.85


def test_cross_val_score_is_the_same_in_processes(wine):
    X_train, _, y_train, _ = wine
    est = RandomForestClassifier(n_estimators=20, random_state=0)
    serial = cross_val_score(est, X_train, y_train, cv=3)
    parallel = cross_val_score(est, X_train, y_train, cv=3, n_jobs=2)
    np.testing.assert_array_equal(serial, parallel)


def test_calibrated_classifier(wine):
    X_train, X_test, y_train, y_test = wine
    cal = CalibratedClassifierCV(RandomForestClassifier(n_estimators=20, random_state=0), cv=3)
    cal.fit(X_train, y_train)
    proba = cal.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert cal.score(X_test, y_test) > 0.85


def test_permutation_importance(wine, fitted):
    _, X_test, _, y_test = wine
    result = permutation_importance(fitted, X_test, y_test, n_repeats=3, random_state=0)
    assert result.importances_mean.shape == (13,)
    assert result.importances_mean.max() > 0


# --------------------------------------------------------------------------------------------
# pickle, joblib, deepcopy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip(wine, fitted, protocol):
    _, X_test, _, _ = wine
    again = pickle.loads(pickle.dumps(fitted, protocol=protocol))
    assert_same_model(fitted, again, X_test)
    assert again.oob_score_ == fitted.oob_score_
    np.testing.assert_array_equal(again.oob_decision_function_, fitted.oob_decision_function_)


def test_pickle_carries_the_model_file_bytes(fitted):
    state = fitted.__getstate__()
    assert "_native" not in state
    assert state["_woodlot_model"][:4] == woodlot.dumps(fitted)[:4]
    assert woodlot.loads(state["_woodlot_model"]).predict_proba(np.zeros((1, 13))).shape == (1, 3)


def test_joblib_round_trip(wine, fitted, tmp_path):
    _, X_test, _, _ = wine
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    assert_same_model(fitted, joblib.load(path), X_test)


def test_deepcopy(wine, fitted):
    _, X_test, _, _ = wine
    assert_same_model(fitted, copy.deepcopy(fitted), X_test)
    assert_same_model(fitted, copy.copy(fitted), X_test)


def test_unfitted_pickles(fitted):
    est = RandomForestClassifier(n_estimators=3, class_weight={0: 2.0})
    again = pickle.loads(pickle.dumps(est))
    assert again.get_params() == est.get_params()


def test_native_forest_pickles(wine, fitted):
    _, X_test, _, _ = wine
    native = pickle.loads(pickle.dumps(fitted._native))
    np.testing.assert_array_equal(native.predict_proba(X_test), fitted._native.predict_proba(X_test))


def test_pickled_model_keeps_training_with_warm_start(wine):
    X_train, X_test, y_train, _ = wine
    a = RandomForestClassifier(n_estimators=10, warm_start=True, random_state=1).fit(X_train, y_train)
    b = pickle.loads(pickle.dumps(a))
    a.set_params(n_estimators=20).fit(X_train, y_train)
    b.set_params(n_estimators=20).fit(X_train, y_train)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))


# --------------------------------------------------------------------------------------------
# woodlot.dump / woodlot.load
# --------------------------------------------------------------------------------------------


def test_dump_load_path(wine, fitted, tmp_path):
    _, X_test, _, _ = wine
    path = tmp_path / "wine.wdl"
    woodlot.dump(fitted, path)
    loaded = woodlot.load(path)
    assert type(loaded) is RandomForestClassifier
    assert_same_model(fitted, loaded, X_test)
    assert loaded.oob_score_ == fitted.oob_score_
    woodlot.dump(fitted, str(path))  # str paths, and overwriting
    assert_same_model(fitted, woodlot.load(str(path)), X_test)
    assert [p.name for p in tmp_path.iterdir()] == ["wine.wdl"]  # no temp debris


def test_dump_load_file_objects_and_bytes(wine, fitted):
    _, X_test, _, _ = wine
    buf = io.BytesIO()
    woodlot.dump(fitted, buf)
    assert buf.getvalue() == woodlot.dumps(fitted)
    assert_same_model(fitted, woodlot.load(io.BytesIO(buf.getvalue())), X_test)
    assert_same_model(fitted, woodlot.loads(bytearray(buf.getvalue())), X_test)


def test_dumps_is_deterministic(fitted):
    assert woodlot.dumps(fitted) == woodlot.dumps(fitted)
    assert woodlot.dumps(woodlot.loads(woodlot.dumps(fitted))) == woodlot.dumps(fitted)


def test_model_file_is_small(fitted):
    # 30 trees of depth <= 4: far below pickle-of-sklearn sizes.
    assert len(woodlot.dumps(fitted)) < 60_000


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["class_0", "class_1", "class_2"]),
        np.array(["a", "bb", "ccc"], dtype=object),
        np.array([10, 20, 30], dtype=np.int64),
        np.array([-1, 0, 5], dtype=np.int8),
        np.array([0.0, 1.0, 2.0]),
        np.array([False, True, True]),
    ],
    ids=lambda a: str(a.dtype),
)
def test_labels_round_trip_exactly(wine, labels, tmp_path):
    X_train, X_test, y_train, _ = wine
    y = labels[y_train]
    m = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, y)
    for again in (woodlot.loads(woodlot.dumps(m)), pickle.loads(pickle.dumps(m))):
        assert again.classes_.dtype == m.classes_.dtype
        np.testing.assert_array_equal(again.classes_, m.classes_)
        np.testing.assert_array_equal(again.predict(X_test), m.predict(X_test))
        assert again.predict(X_test).dtype == m.predict(X_test).dtype


def test_feature_names_and_params_round_trip(wine_frame):
    X_train, X_test, y_train, _ = wine_frame
    m = RandomForestClassifier(
        n_estimators=5,
        class_weight={0: 1.0, 1: 2.0, 2: 0.5},
        random_state=np.random.RandomState(3),
        max_features=0.5,
        criterion="log_loss",
    ).fit(X_train, y_train)
    again = woodlot.loads(woodlot.dumps(m))
    np.testing.assert_array_equal(again.feature_names_in_, m.feature_names_in_)
    assert again.get_params()["class_weight"] == {0: 1.0, 1: 2.0, 2: 0.5}
    assert again.get_params()["random_state"] is None
    assert again.get_params()["criterion"] == "log_loss"
    assert again.get_params()["max_features"] == 0.5
    with pytest.warns(UserWarning, match="valid feature names"):
        again.predict(X_test.to_numpy())
    np.testing.assert_array_equal(again.predict_proba(X_test), m.predict_proba(X_test))


def test_dump_refuses_unfitted_and_foreign_objects(tmp_path):
    with pytest.raises(NotFittedError):
        woodlot.dump(RandomForestClassifier(), tmp_path / "x.wdl")
    with pytest.raises(TypeError):
        woodlot.dumps(StandardScaler())
    with pytest.raises(TypeError):
        woodlot.loads("not bytes")


def _corruptions(data: bytes):
    yield "empty", b""
    yield "truncated header", data[:10]
    yield "truncated payload", data[:-1]
    yield "extra byte", data + b"\0"
    yield "bad magic", b"X" + data[1:]
    yield "flipped payload bit", data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]
    yield "flipped meta bit", data[:80] + bytes([data[80] ^ 0x20]) + data[81:]
    yield "random bytes", np.random.default_rng(0).bytes(len(data))
    yield "a pickle", pickle.dumps({"not": "a model"})
    yield "zeros", bytes(len(data))


@pytest.mark.parametrize("case", [name for name, _ in _corruptions(b"\0" * 200)])
def test_corrupt_file_raises_corrupt_model_error(fitted, tmp_path, case):
    bad = dict(_corruptions(woodlot.dumps(fitted)))[case]
    path = tmp_path / "bad.wdl"
    path.write_bytes(bad)
    with pytest.raises(CorruptModelError) as info:
        woodlot.load(path)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WoodlotError)
    assert str(info.value)  # says which check failed
    with pytest.raises(CorruptModelError):
        woodlot.loads(bad)


def test_every_single_byte_flip_is_detected(fitted):
    data = woodlot.dumps(fitted)
    rng = np.random.default_rng(1)
    for pos in rng.choice(len(data), size=200, replace=False):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(CorruptModelError):
            woodlot.loads(bytes(bad))


def test_missing_file_raises_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        woodlot.load(tmp_path / "nope.wdl")
