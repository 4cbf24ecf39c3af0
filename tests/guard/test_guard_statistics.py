"""The guard's statistics, checked against an independent computation written here in numpy
from the papers' formulas (the confseq package does not build on this machine: it needs Boost),
on the real guard's own evidence; and the simulation's false-rollback promise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import woodlot
from woodlot import _native
from tests.guard._guardutil import store_with_pair, traffic


def prpl_eb(x: np.ndarray, alpha: float):
    """Waudby-Smith & Ramdas (2023), predictable plug-in empirical Bernstein, one-sided at
    ``alpha`` each: (lower, upper, sum lambda, sum lambda x, sum v psi) after all of ``x``."""
    t = np.arange(1, len(x) + 1)
    mu = (0.5 + np.cumsum(x)) / (t + 1)
    mu_prev = np.concatenate([[0.5], mu[:-1]])
    sigma2 = (0.25 + np.cumsum((x - mu) ** 2)) / (t + 1)
    sigma2_prev = np.concatenate([[0.25], sigma2[:-1]])
    lam = np.minimum(np.sqrt(2 * math.log(1 / alpha) / (sigma2_prev * t * np.log(1 + t))), 0.5)
    v = 4 * (x - mu_prev) ** 2
    psi = (-np.log(1 - lam) - lam) / 4
    sl, slx, svp = lam.sum(), (lam * x).sum(), (v * psi).sum()
    lower = max((slx - math.log(1 / alpha) - svp) / sl, 0.0)
    upper = min((slx + math.log(1 / alpha) + svp) / sl, 1.0)
    return lower, upper, sl, slx, svp


def mcnemar_mixture(b: int, c: int) -> float:
    p = 0.5 + 0.3 * (np.arange(1, 33) / 32) ** 2
    return float(np.mean((2 * p) ** b * (2 * (1 - p)) ** c))


@pytest.mark.parametrize("metric", ["log_loss", "accuracy"])
def test_the_guards_evidence_matches_an_independent_computation(tmp_path, wine, metric):
    X_train, X_test, y_train, y_test = wine
    store = store_with_pair(tmp_path / "s", X_train, y_train)
    # Shadow, so nothing is decided while evidence accumulates; a margin so EB decides.
    margin = 0.05 if metric == "accuracy" else 0.0
    g = store.guard("v2", mode="shadow", metric=metric, margin=margin, alpha=0.05)
    Xs, ys = traffic(X_test, y_test, 60, seed=1)
    _, ids = g.predict(Xs)
    g.flush()
    store.record_outcomes(ids, ys)
    st = g.status()
    assert st.outcomes == 60
    # Independent: both models' probabilities from the store, the losses, the formulas.
    pc = store.load("v2").predict_proba(Xs)
    pb = store.load("v1").predict_proba(Xs)
    classes = list(store.load("v1").classes_)
    k = np.array([classes.index(v) for v in ys])
    pc32, pb32 = pc.astype(np.float32).astype(np.float64), pb.astype(np.float32).astype(np.float64)
    if metric == "log_loss":
        bound = -math.log(0.001)
        lc = -np.log(np.clip(pc32[np.arange(60), k], 0.001, 1))
        lb = -np.log(np.clip(pb32[np.arange(60), k], 0.001, 1))
    else:
        bound = 1.0
        lc = (np.argmax(pc32, axis=1) != k).astype(float)
        lb = (np.argmax(pb32, axis=1) != k).astype(float)
    d = lc - lb
    x = (d + bound) / (2 * bound)
    lower, upper, sl, slx, svp = prpl_eb(x, 0.05)
    assert st.estimate == pytest.approx(d.mean(), abs=1e-9)
    assert st.interval[0] == pytest.approx(lower * 2 * bound - bound, abs=1e-9)
    assert st.interval[1] == pytest.approx(upper * 2 * bound - bound, abs=1e-9)
    m_x = (margin + bound) / (2 * bound)
    assert st.e_value == pytest.approx(math.exp(slx - m_x * sl - svp), rel=1e-9)
    b = int(((np.argmax(pb32, 1) == k) & (np.argmax(pc32, 1) != k)).sum())
    c = int(((np.argmax(pc32, 1) == k) & (np.argmax(pb32, 1) != k)).sum())
    assert st.discordant == (b, c)
    assert st.mcnemar_e_value == pytest.approx(mcnemar_mixture(b, c), rel=1e-9)
    assert st.verdict in ("continue", "worse")


def test_the_mcnemar_e_value_decides_accuracy_without_a_margin(tmp_path, wine):
    X_train, X_test, y_train, y_test = wine
    store = store_with_pair(tmp_path / "s", X_train, y_train)
    g = store.guard("v2", mode="shadow", metric="accuracy")
    Xs, ys = traffic(X_test, y_test, 40, seed=2)
    _, ids = g.predict(Xs)
    g.flush()
    store.record_outcomes(ids, ys)
    st = g.status()
    assert st.test == "mcnemar"
    assert st.e_value == pytest.approx(mcnemar_mixture(*st.discordant), rel=1e-9)


def test_equally_good_models_are_rolled_back_at_most_alpha_plus_binomial_slack():
    """1,000 streams of 2,000 outcomes each, equally good models with correlated errors,
    checked after every outcome: a fixed-sample test would alarm far more often."""
    for metric in ("accuracy", "log_loss"):
        r = json.loads(_native.guard_simulate(1000, 2000, metric=metric, delta=0.0, seed=5))
        rate = r["rolled_back"] / r["streams"]
        assert r["streams"] == 1000
        assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 1000), (metric, rate)


def test_three_points_worse_is_caught_and_three_points_better_is_confirmed():
    worse = json.loads(_native.guard_simulate(200, 20000, delta=0.03, seed=6))
    assert worse["rolled_back"] >= 190 and worse["confirmed"] == 0
    assert np.median(worse["rollback_at"]) < 20000
    better = json.loads(_native.guard_simulate(200, 20000, delta=-0.03, seed=7))
    assert better["rolled_back"] == 0
    assert better["confirmed"] >= 190
