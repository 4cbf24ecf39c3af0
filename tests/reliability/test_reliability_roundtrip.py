"""Property (hypothesis): for random data and forest parameters, every way a model is written
and read back (VersionStore save/load, with and without verify; pickle; woodlot.dumps/loads;
woodlot.dump/load through a file) gives bit-identical predict_proba, and re-encoding the
loaded model gives the same bytes.

Counts: WOODLOT_ROUNDTRIP_EXAMPLES (default 100) hypothesis examples, derandomized (the same
100 every run), each checked through 6 ways of reading back.
"""

import io
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import woodlot
from tests.reliability._budget import env_int

EXAMPLES = env_int("WOODLOT_ROUNDTRIP_EXAMPLES", 100)


@st.composite
def problems(draw):
    n = draw(st.integers(8, 150))
    d = draw(st.integers(1, 8))
    k = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e-6, 1.0, 1e6]))
    X = rng.normal(size=(n, d)) * scale
    if draw(st.booleans()):
        X = np.round(X, 1)  # ties and repeated values
    if draw(st.booleans()):
        X[rng.random(size=X.shape) < 0.1] = np.nan
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)  # every class present
    labels = draw(st.sampled_from(["int", "str", "float"]))
    if labels == "str":
        y = np.array(["neg", "pos", "x\u00e9", "\u202eodd"])[y]
    elif labels == "float":
        y = y.astype(float) * 2.0 - 1.0  # integral floats, as scikit-learn requires
    params = dict(
        n_estimators=draw(st.integers(1, 8)),
        criterion=draw(st.sampled_from(["gini", "entropy", "log_loss"])),
        max_depth=draw(st.one_of(st.none(), st.integers(1, 8))),
        min_samples_leaf=draw(st.integers(1, 5)),
        max_features=draw(st.sampled_from(["sqrt", "log2", None, 1, 0.5])),
        bootstrap=draw(st.booleans()),
        class_weight=draw(st.sampled_from([None, "balanced"])),
        max_leaf_nodes=draw(st.one_of(st.none(), st.integers(2, 20))),
        random_state=draw(st.integers(0, 1000)),
    )
    if params["bootstrap"] and draw(st.booleans()):
        params["oob_score"] = True
    return X, y, params


def _same(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(problems())
def test_every_round_trip_is_bit_identical(tmp_path_factory, problem):
    X, y, params = problem
    model = woodlot.RandomForestClassifier(**params).fit(X, y)
    Xq = np.vstack([X, np.full((1, X.shape[1]), np.nan), np.zeros((1, X.shape[1]))])
    expected = model.predict_proba(Xq)
    data = woodlot.dumps(model)

    d = tmp_path_factory.mktemp("rt")
    store = woodlot.VersionStore(d / "store")
    v = store.save(model)
    store.promote(v)
    copies = {
        "store.load": store.load(v),
        "store.load(verify)": store.load("active", verify=True),
        "pickle": pickle.loads(pickle.dumps(model)),
        "loads": woodlot.loads(data),
    }
    woodlot.dump(model, d / "m.wdl")
    copies["dump/load"] = woodlot.load(d / "m.wdl")
    buf = io.BytesIO()
    woodlot.dump(model, buf)
    buf.seek(0)
    copies["dump/load(file object)"] = woodlot.load(buf)
    for how, m in copies.items():
        assert _same(m.predict_proba(Xq), expected), how
        assert list(m.classes_) == list(model.classes_), how
        assert woodlot.dumps(m) == data, f"{how}: re-encoding changed the bytes"
    assert store.verify().ok
