"""VersionStore.compare: metrics computed in Rust, checked against sklearn.metrics and scipy."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from woodlot import ConflictError, RandomForestClassifier, VersionNotFoundError, VersionStore


@pytest.fixture(scope="module")
def fitted(wine):
    X_train, X_test, y_train, y_test = wine
    a = RandomForestClassifier(n_estimators=5, max_depth=1, random_state=1).fit(X_train, y_train)
    b = RandomForestClassifier(n_estimators=40, max_depth=5, random_state=2).fit(X_train, y_train)
    return a, b


@pytest.fixture
def store(tmp_path, fitted):
    s = VersionStore(tmp_path / "models")
    for m in fitted:
        s.save(m)
    return s


def test_metrics_match_sklearn(store, fitted, wine):
    _, X_test, _, y_test = wine
    cmp = store.compare(X_test, y_test)
    assert cmp.versions == ["v1", "v2"]
    for name, model in zip(["v1", "v2"], fitted):
        proba = model.predict_proba(X_test)
        pred = model.predict(X_test)
        m = cmp.metrics[name]
        assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_test, pred), abs=1e-12)
        assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_test, pred), abs=1e-12)
        assert m["macro_f1"] == pytest.approx(skm.f1_score(y_test, pred, average="macro"), abs=1e-12)
        assert m["log_loss"] == pytest.approx(skm.log_loss(y_test, proba, labels=[0, 1, 2]), rel=1e-9)
        np.testing.assert_array_equal(m["confusion_matrix"], skm.confusion_matrix(y_test, pred, labels=[0, 1, 2]))
        recall = skm.recall_score(y_test, pred, average=None, labels=[0, 1, 2])
        assert [m["per_class_recall"][k] for k in ("0", "1", "2")] == pytest.approx(list(recall), abs=1e-12)
    acc = {n: cmp.metrics[n]["accuracy"] for n in cmp.versions}
    assert cmp.best == max(sorted(acc), key=lambda n: (acc[n], n))


def test_pairwise_matches_scipy_and_counts(store, fitted, wine):
    from scipy.stats import binomtest

    _, X_test, _, y_test = wine
    cmp = store.compare(X_test, y_test, seed=3)
    p = cmp.pairwise("v2", "v1")
    pa, pb = (m.predict(X_test) for m in fitted[::-1])
    y = np.asarray(y_test)
    assert p.disagreements == int(np.sum(pa != pb))
    assert p.a_only_correct == list(np.flatnonzero((pa == y) & (pb != y)))
    assert p.b_only_correct == list(np.flatnonzero((pa != y) & (pb == y)))
    n01, n10 = len(p.a_only_correct), len(p.b_only_correct)
    want = 1.0 if n01 + n10 == 0 else binomtest(min(n01, n10), n01 + n10, 0.5).pvalue
    assert p.mcnemar_p == pytest.approx(want, rel=1e-9)
    assert p.accuracy_diff == pytest.approx(np.mean(pa == y) - np.mean(pb == y), abs=1e-12)
    assert p.ci_low <= p.accuracy_diff <= p.ci_high
    again = store.compare(X_test, y_test, seed=3, record=False).pairwise(2, 1)
    assert (again.ci_low, again.ci_high) == (p.ci_low, p.ci_high)
    assert p.flips == sorted(p.a_only_correct + p.b_only_correct)


def test_table_and_pandas(store, wine):
    _, X_test, _, y_test = wine
    cmp = store.compare(X_test, y_test)
    text = str(cmp)
    assert "accuracy" in text and "v1" in text and "v2" in text and "McNemar" in text and "(best" in text
    df = cmp.to_pandas()
    assert list(df.index) == ["v1", "v2"]
    assert {"accuracy", "balanced_accuracy", "macro_f1", "log_loss", "recall[0]"} <= set(df.columns)
    assert df.loc["v2", "accuracy"] == cmp.metrics["v2"]["accuracy"]


def test_comparison_is_recorded_and_cited_by_promote(store, wine):
    _, X_test, _, y_test = wine
    cmp = store.compare(X_test, y_test)
    ev = store.history()[-1]
    assert ev.kind == "compare" and ev.seq == cmp.event
    assert ev.details["eval_fingerprint"] == cmp.eval_fingerprint
    store.promote("v2", reason="won the comparison")
    promo = store.history()[-1]
    assert promo.details["evidence"]["compare_event"] == cmp.event
    assert promo.details["evidence"]["metrics"]["v2"]["accuracy"] == cmp.metrics["v2"]["accuracy"]


def test_dataframe_and_string_labels(tmp_path, wine_frame):
    X_train, X_test, y_train, y_test = wine_frame
    names = np.array(["barolo", "grignolino", "barbera"])
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X_train, names[y_train])
    s = VersionStore(tmp_path / "m")
    v = s.save(model)
    assert v.classes == sorted(names.tolist()) and v.feature_names == list(X_train.columns)
    cmp = s.compare(X_test, names[y_test])
    pred = model.predict(X_test)
    assert cmp.metrics["v1"]["accuracy"] == pytest.approx(skm.accuracy_score(names[y_test], pred))
    with pytest.raises(ValueError, match="feature names"):
        s.compare(X_test[X_test.columns[::-1]], names[y_test])
    # Labels the model never saw are errors for it, not a crash.
    odd = names[y_test].copy()
    odd[:5] = "chianti"
    cmp = s.compare(X_test, odd, record=False)
    assert cmp.metrics["v1"]["n_unknown_labels"] == 5
    assert "chianti" in cmp.metrics["v1"]["per_class_recall"]


def test_bad_compare_input(store, wine):
    _, X_test, _, y_test = wine
    with pytest.raises(ValueError, match="rows"):
        store.compare(X_test, y_test[:-1])
    with pytest.raises(ValueError, match="features"):
        store.compare(X_test[:, :5], y_test)
    with pytest.raises(ValueError, match="2-dimensional"):
        store.compare(X_test[0], y_test[:1])
    with pytest.raises(VersionNotFoundError):
        store.compare(X_test, y_test, versions=["v9"])
    with pytest.raises(ValueError, match="at least one"):
        store.compare(X_test[:0], y_test[:0])
    with pytest.raises(TypeError):
        store.compare(X_test, [object()] * len(y_test))


def test_promote_if_better(store, wine):
    _, X_test, _, y_test = wine
    d = store.promote_if_better("v1", X_test, y_test)
    assert d.promoted and d.active_before is None and d.active_after == "v1" and "no version was active" in d.reason
    cmp = store.compare(X_test, y_test, record=False)
    better = cmp.metrics["v2"]["accuracy"] >= cmp.metrics["v1"]["accuracy"]
    d = store.promote_if_better("v2", X_test, y_test, metric="accuracy", min_delta=0.0, alpha=1e-12)
    assert not d.promoted and "kept v1" in d.reason and d.p_value is not None
    assert store.history()[-1].kind == "decision"
    d = store.promote_if_better("v2", X_test, y_test)
    assert bool(d) == better and d.candidate == "v2"
    assert d.delta == pytest.approx(cmp.metrics["v2"]["accuracy"] - cmp.metrics["v1"]["accuracy"])
    assert store.active.name == ("v2" if better else "v1")
    assert d.comparison is not None and d.comparison.event is not None
    d2 = store.promote_if_better(store.active.name, X_test, y_test)
    assert not d2.promoted and "already" in d2.reason
    with pytest.raises(ValueError, match="metric"):
        store.promote_if_better("v1", X_test, y_test, metric="auc")
    with pytest.raises(ValueError, match="alpha"):
        store.promote_if_better("v1", X_test, y_test, alpha=2.0)
    assert math.isfinite(d.candidate_value)
