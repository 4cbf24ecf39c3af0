"""Helpers for the guard tests: a store with a good v1 active and a deliberately worse v2."""

from __future__ import annotations

import numpy as np

import woodlot


def fit_pair(X, y, seed: int = 0):
    """A good model, and a worse one (fitted on labels with 40% of them shuffled)."""
    good = woodlot.RandomForestClassifier(n_estimators=15, random_state=seed).fit(X, y)
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    flip = rng.random(len(y)) < 0.4
    noisy[flip] = rng.permutation(noisy[flip])
    bad = woodlot.RandomForestClassifier(n_estimators=15, max_depth=2, random_state=seed).fit(X, noisy)
    return good, bad


def store_with_pair(location, X, y, storage_options=None):
    s = woodlot.VersionStore(location, storage_options=storage_options)
    good, bad = fit_pair(X, y)
    s.save(good)
    s.promote(1)
    s.save(bad)
    return s


def traffic(X, y, n: int, seed: int):
    """``n`` rows drawn with replacement (live traffic), with their labels."""
    idx = np.random.default_rng(seed).integers(0, len(X), n)
    return X[idx], y[idx]
