"""What woodlot accepts and refuses: dtypes, memory layouts, lists, DataFrames, label kinds,
missing values, infinities, bad shapes and bad parameters."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import DataConversionWarning, NotFittedError

from woodlot import RandomForestClassifier


def small_forest(**kw):
    kw.setdefault("n_estimators", 10)
    kw.setdefault("random_state", 0)
    return RandomForestClassifier(**kw)


@pytest.fixture(scope="module")
def int_data():
    """Integer-valued features, exactly representable in every numeric dtype."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 100, size=(120, 5)).astype(np.float64)
    y = (X[:, 0] + X[:, 1] > 100).astype(int) + (X[:, 2] > 60)
    return X, y


@pytest.fixture(scope="module")
def fitted(int_data):
    X, y = int_data
    return small_forest().fit(X, y)


# --------------------------------------------------------------------------------------------
# dtypes and layouts
# --------------------------------------------------------------------------------------------

DTYPES = [
    np.float64, np.float32, np.float16, np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64, ">f8", ">f4", "<f8",
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_real_dtype_gives_the_same_model_and_predictions(int_data, fitted, dtype):
    X, y = int_data
    Xd = X.astype(dtype)
    np.testing.assert_array_equal(fitted.predict_proba(Xd), fitted.predict_proba(X))
    np.testing.assert_array_equal(fitted.predict(Xd), fitted.predict(X))
    np.testing.assert_array_equal(fitted.apply(Xd), fitted.apply(X))
    other = small_forest().fit(Xd, y)
    np.testing.assert_array_equal(other.predict_proba(X), fitted.predict_proba(X))


def test_bool_features(int_data):
    X, y = int_data
    Xb = X > 50
    m = small_forest().fit(Xb, y)
    np.testing.assert_array_equal(m.predict_proba(Xb), m.predict_proba(Xb.astype(float)))


def _layouts(X):
    """(name, array equal to X in that memory layout)."""
    big = np.zeros((X.shape[0] * 2, X.shape[1] * 3))
    big[::2, ::3] = X
    packed = np.zeros(X.shape[0], dtype=[("pad", "u1"), ("x", "<f8", (X.shape[1],))])
    packed["x"] = X  # a packed record: the "x" field is misaligned
    yield "C", np.ascontiguousarray(X)
    yield "F", np.asfortranarray(X)
    yield "strided", big[::2, ::3]
    yield "negative strides", np.flip(np.flip(X, 0).copy(), 0)
    yield "negative column strides", np.flip(np.flip(X, 1).copy(), 1)
    yield "transposed twice", np.asfortranarray(X.T).T
    yield "misaligned", packed["x"]
    yield "float32 F", np.asfortranarray(X, dtype=np.float32)
    yield "readonly", _readonly(X)


def _readonly(X):
    X = X.copy()
    X.flags.writeable = False
    return X


@pytest.mark.parametrize("layout", [name for name, _ in _layouts(np.zeros((2, 2)))])
def test_any_memory_layout(int_data, fitted, layout):
    X, y = int_data
    Xl = dict(_layouts(X))[layout]
    np.testing.assert_array_equal(Xl, X)
    np.testing.assert_array_equal(fitted.predict_proba(Xl), fitted.predict_proba(X))
    np.testing.assert_array_equal(fitted._native.predict_proba(Xl), fitted.predict_proba(X))
    np.testing.assert_array_equal(small_forest().fit(Xl, y).predict_proba(X), fitted.predict_proba(X))


def test_negative_strides_hit_the_right_rows(int_data, fitted):
    X, _ = int_data
    np.testing.assert_array_equal(fitted.predict_proba(X[::-1]), fitted.predict_proba(X)[::-1])
    np.testing.assert_array_equal(fitted.predict_proba(X[:, ::-1][:, ::-1]), fitted.predict_proba(X))


def test_nested_lists(int_data, fitted):
    X, y = int_data
    m = small_forest().fit(X.tolist(), y.tolist())
    np.testing.assert_array_equal(m.predict_proba(X.tolist()), fitted.predict_proba(X))
    np.testing.assert_array_equal(fitted.predict(X[:3].tolist()), fitted.predict(X[:3]))


def test_sparse_input_is_densified(int_data, fitted):
    sp = pytest.importorskip("scipy.sparse")
    X, y = int_data
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        np.testing.assert_array_equal(fitted.predict_proba(fmt(X)), fitted.predict_proba(X))
        np.testing.assert_array_equal(small_forest().fit(fmt(X), y).predict_proba(X), fitted.predict_proba(X))


# --------------------------------------------------------------------------------------------
# DataFrames and feature names
# --------------------------------------------------------------------------------------------


def test_dataframe_feature_names_are_remembered_and_checked(wine_frame):
    X_train, X_test, y_train, _ = wine_frame
    m = small_forest().fit(X_train, y_train)
    np.testing.assert_array_equal(m.feature_names_in_, np.asarray(X_train.columns, dtype=object))
    assert m.n_features_in_ == X_train.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p_frame = m.predict_proba(X_test)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but RandomForestClassifier was fitted with feature names"):
        p_array = m.predict_proba(X_test.to_numpy())
    np.testing.assert_array_equal(p_frame, p_array)
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        m.predict(X_test[X_test.columns[::-1]])


def test_numpy_fit_then_dataframe_predict_warns(wine_frame):
    X_train, X_test, y_train, _ = wine_frame
    m = small_forest().fit(X_train.to_numpy(), y_train.to_numpy())
    assert not hasattr(m, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but RandomForestClassifier was fitted without feature names"):
        m.predict(X_test)


def test_dataframe_with_mixed_dtypes_and_missing_values():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {
            "a": np.arange(40, dtype=np.int32),
            "b": np.linspace(0, 1, 40, dtype=np.float32),
            "c": pd.array([1.0, None] * 20, dtype="Float64"),
        }
    )
    y = pd.Series(["x", "y"] * 20)
    m = small_forest().fit(df, y)
    assert set(m.predict(df)) <= {"x", "y"}


def test_non_numeric_columns_are_refused():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["u", "v", "u", "v"]})
    with pytest.raises(ValueError, match="could not convert string to float"):
        small_forest().fit(df, [0, 1, 0, 1])


# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------

LABELS = {
    "int": np.array([3, -1, 7]),
    "uint8": np.array([1, 2, 250], dtype=np.uint8),
    "str": np.array(["cat", "dog", "eel"]),
    "object str": np.array(["cat", "dog", "eel"], dtype=object),
    "bool": np.array([False, True]),
    "float": np.array([0.0, 1.0, 2.0]),
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_label_kinds_round_trip(int_data, kind):
    X, y = int_data
    labels = LABELS[kind]
    y_lab = labels[y % len(labels)]
    m = small_forest().fit(X, y_lab)
    np.testing.assert_array_equal(m.classes_, np.unique(y_lab))
    assert m.classes_.dtype == np.unique(y_lab).dtype
    pred = m.predict(X)
    assert pred.dtype == m.classes_.dtype
    assert set(pred.tolist()) <= set(labels.tolist())
    assert m.score(X, y_lab) > 0.9
    assert m.n_classes_ == len(labels)


def test_labels_as_python_list_of_strings(int_data):
    X, y = int_data
    m = small_forest().fit(X, [f"c{v}" for v in y])
    assert m.predict(X[:1])[0] in {"c0", "c1", "c2"}


def test_column_vector_y_warns_like_sklearn(int_data):
    X, y = int_data
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        small_forest().fit(X, y.reshape(-1, 1))


def test_multi_output_y_fits_one_forest_of_every_output(int_data):
    # The behaviour itself is tested in test_multi_output.py.
    X, y = int_data
    m = small_forest().fit(X, np.c_[y, y])
    assert m.n_outputs_ == 2 and m.predict(X).shape == (len(X), 2)


def test_continuous_y_is_refused(int_data):
    X, _ = int_data
    with pytest.raises(ValueError, match="Unknown label type"):
        small_forest().fit(X, np.linspace(0, 1, len(X)))


def test_nan_in_y_is_refused(int_data):
    X, y = int_data
    y = y.astype(float)
    y[3] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        small_forest().fit(X, y)


def test_single_class_fits_like_sklearn(int_data):
    X, _ = int_data
    m = small_forest().fit(X, np.full(len(X), "only"))
    assert m.predict_proba(X).shape == (len(X), 1)
    np.testing.assert_array_equal(m.predict(X), np.full(len(X), "only"))


# --------------------------------------------------------------------------------------------
# missing values and infinity
# --------------------------------------------------------------------------------------------


def test_nan_is_learned_at_fit_and_used_at_predict():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] > 0).astype(int)
    X[y == 1, 1] = np.nan  # missingness itself is the signal in feature 1
    X[rng.random(400) < 0.1, 0] = np.nan
    m = small_forest(n_estimators=30, max_features=None).fit(X, y)
    assert m.score(X, y) > 0.95
    probe = np.array([[np.nan, np.nan, 0.0], [np.nan, 1.0, 0.0]])
    pred = m.predict(probe)
    assert pred.tolist() == [1, 0]
    assert np.isfinite(m.predict_proba(probe)).all()


def test_all_nan_column_and_all_nan_row(int_data):
    X, y = int_data
    X = X.copy()
    X[:, 4] = np.nan
    m = small_forest().fit(X, y)
    row = np.full((1, X.shape[1]), np.nan)
    assert m.predict_proba(row).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e300])
def test_infinity_is_refused_at_fit(int_data, value):
    X, y = int_data
    X = X.copy()
    X[5, 2] = value
    with pytest.raises(ValueError, match="infinity|too large"):
        small_forest().fit(X, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e300])
def test_infinity_is_refused_at_predict(int_data, fitted, value, dtype):
    X, _ = int_data
    if dtype == np.float32 and value == 1e300:
        value = np.inf
    X = X[:4].astype(dtype)
    X[1, 0] = value
    for method in (fitted.predict, fitted.predict_proba, fitted.apply):
        with pytest.raises(ValueError, match="infinity|too large"):
            method(X)
        with pytest.raises(ValueError, match="infinity|too large"):
            method(X.tolist())
    with pytest.raises(ValueError):
        fitted._native.predict_proba(X)


def test_monotonic_cst_refuses_nan_like_sklearn(int_data):
    X, y = int_data
    X = X.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RandomForestClassifier(n_estimators=5, monotonic_cst=[1, 0, 0, 0, 0]).fit(X, y > 0)


# --------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------


def test_empty_X_is_refused(int_data, fitted):
    X, y = int_data
    with pytest.raises(ValueError, match="0 sample"):
        small_forest().fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="0 sample"):
        fitted.predict(X[:0])
    with pytest.raises(ValueError, match="0 feature"):
        small_forest().fit(X[:, :0], y)


def test_1d_and_3d_X_are_refused(int_data, fitted):
    X, y = int_data
    with pytest.raises(ValueError, match="Expected 2D array"):
        small_forest().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="Expected 2D array"):
        fitted.predict(X[0])
    with pytest.raises(ValueError, match="dim"):
        fitted.predict(X[None])


def test_mismatched_lengths_are_refused(int_data):
    X, y = int_data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small_forest().fit(X, y[:-1])
    with pytest.raises(ValueError, match="sample_weight"):
        small_forest().fit(X, y, sample_weight=np.ones(len(y) - 1))


def test_wrong_number_of_features_at_predict(int_data, fitted):
    X, _ = int_data
    msg = re.escape("X has 4 features, but RandomForestClassifier is expecting 5 features as input")
    for method in (fitted.predict, fitted.predict_proba, fitted.apply, fitted.predict_log_proba):
        with pytest.raises(ValueError, match=msg):
            method(X[:, :4])
        with pytest.raises(ValueError, match=msg):
            method(X[:, :4].astype(np.float32))
    with pytest.raises(ValueError, match="feature"):
        fitted._native.predict_proba(X[:, :4])


def test_native_refuses_wrong_dtype_and_rank(fitted):
    with pytest.raises(TypeError):
        fitted._native.predict_proba(np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(TypeError):
        fitted._native.predict_proba([[0.0] * 5])
    with pytest.raises(ValueError, match="2D"):
        fitted._native.predict_proba(np.zeros(5))


# --------------------------------------------------------------------------------------------
# not fitted
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda m, X: m.predict(X),
        lambda m, X: m.predict_proba(X),
        lambda m, X: m.predict_log_proba(X),
        lambda m, X: m.apply(X),
        lambda m, X: m.decision_path(X),
        lambda m, X: m.score(X, np.zeros(len(X))),
        lambda m, X: m.feature_importances_,
        lambda m, X: m.estimators_,
    ],
)
def test_use_before_fit_raises_not_fitted(int_data, call):
    X, _ = int_data
    with pytest.raises(NotFittedError):
        call(RandomForestClassifier(), X)


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------

BAD_PARAMS = [
    ("n_estimators", 0),
    ("n_estimators", -3),
    ("n_estimators", 1.5),
    ("n_estimators", "10"),
    ("criterion", "mse"),
    ("max_depth", 0),
    ("max_depth", 2.0),
    ("min_samples_split", 1),
    ("min_samples_split", 0.0),
    ("min_samples_split", 1.5),
    ("min_samples_leaf", 0),
    ("min_samples_leaf", 1.0),
    ("min_weight_fraction_leaf", 0.6),
    ("min_weight_fraction_leaf", -0.1),
    ("max_features", "auto"),
    ("max_features", 0),
    ("max_features", 1.5),
    ("max_features", 0.0),
    ("max_leaf_nodes", 1),
    ("min_impurity_decrease", -1.0),
    ("bootstrap", "yes"),
    ("oob_score", "yes"),
    ("n_jobs", 1.5),
    ("random_state", "seed"),
    ("verbose", "loud"),
    ("warm_start", 2),
    ("class_weight", "balance"),
    ("ccp_alpha", -0.5),
    ("max_samples", 0),
    ("max_samples", 0.0),
    ("max_samples", -1.0),
    ("monotonic_cst", "up"),
]


@pytest.mark.parametrize("name,value", BAD_PARAMS, ids=[f"{n}={v!r}" for n, v in BAD_PARAMS])
def test_bad_parameter_raises_value_error_naming_it(int_data, name, value):
    X, y = int_data
    with pytest.raises(ValueError, match=re.escape(name)):
        RandomForestClassifier(**{"n_estimators": 5, name: value}).fit(X, y)


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(max_features=6), "max_features"),
        (dict(bootstrap=False, oob_score=True), "(?i)oob_score.*out.of.bag estimation.*only available if bootstrap=True"),
        (dict(bootstrap=False, max_samples=0.5), "max_sample"),
        (dict(n_jobs=0), "n_jobs"),
        (dict(monotonic_cst=[1, 0]), "monotonic_cst"),
        (dict(monotonic_cst=[2, 0, 0, 0, 0]), "monotonic_cst"),
        (dict(class_weight={0: 1.0, 1: 1.0, 7: 2.0}), "class"),
        (dict(class_weight=[{0: 1.0}, {1: 2.0}]), "class_weight"),
    ],
)
def test_bad_parameter_combinations(int_data, params, match):
    X, y = int_data
    with pytest.raises(ValueError, match=match):
        RandomForestClassifier(n_estimators=5, **params).fit(X, y)


def test_monotonic_cst_multiclass_is_refused(int_data):
    X, y = int_data
    with pytest.raises(ValueError, match="(?i)monoton"):
        RandomForestClassifier(n_estimators=5, monotonic_cst=[1, 0, 0, 0, 0]).fit(X, y)


def test_params_accept_numpy_scalars_and_bools_like_sklearn(int_data):
    X, y = int_data
    m = RandomForestClassifier(
        n_estimators=np.int64(5), max_depth=np.int32(3), min_samples_leaf=np.float64(0.1),
        max_features=True, bootstrap=np.bool_(True), random_state=np.int64(3),
    ).fit(X, y)
    assert len(m.estimators_) == 5
    assert max(t.get_depth() for t in m.estimators_) <= 3


def test_native_params_dict_is_checked(int_data):
    from woodlot._native import NativeForest

    X, y = int_data
    codes = np.ascontiguousarray(y, dtype=np.uint32)
    with pytest.raises(ValueError, match="unknown RandomForestClassifier parameter"):
        NativeForest.fit(X, codes, 3, None, {"n_estimator": 5})
    with pytest.raises(ValueError, match="bootstrap"):
        NativeForest.fit(X, codes, 3, None, {"bootstrap": 1})
    with pytest.raises(ValueError, match="n_estimators"):
        NativeForest.fit(X, codes, 3, None, {"n_estimators": True})
    with pytest.raises(ValueError):
        NativeForest.fit(X, codes, 2, None, {"n_estimators": 5})  # a code >= n_classes


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 40),
    d=st.integers(1, 6),
    k=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
    nan_frac=st.sampled_from([0.0, 0.2]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_probabilities_are_a_distribution_and_predict_is_their_argmax(n, d, k, seed, nan_frac, dtype):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    X[rng.random((n, d)) < nan_frac] = np.nan
    y = rng.integers(0, k, size=n)
    m = RandomForestClassifier(n_estimators=7, random_state=seed).fit(X, y)
    proba = m.predict_proba(X)
    assert proba.shape == (n, len(m.classes_))
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(m.predict(X), m.classes_[np.argmax(proba, axis=1)])
    leaves = m.apply(X)
    assert leaves.shape == (n, 7)
    for i, tree in enumerate(m.estimators_):
        assert np.all(tree.tree_.children_left[leaves[:, i]] == -1)


def test_dataframe_fast_path_agrees_with_validation(wine_frame):
    X_train, X_test, y_train, _ = wine_frame
    m = small_forest().fit(X_train, y_train)
    expected = m._native.predict_proba(np.ascontiguousarray(X_test.to_numpy()))
    np.testing.assert_array_equal(m.predict_proba(X_test), expected)
    np.testing.assert_array_equal(m.predict_proba(X_test.astype(np.float32)), expected)
    np.testing.assert_array_equal(m.predict_proba(X_test.round().astype(int)), m.predict_proba(X_test.round()))
    bad = X_test.copy()
    bad.iloc[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        m.predict(bad)
    renamed = X_test.rename(columns={X_test.columns[0]: "other"})
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        m.predict(renamed)
    with pytest.raises(ValueError, match="0 sample"):
        m.predict(X_test.iloc[:0])
