"""The README's "Migrating from joblib" walk: the joblib tutorial's ``model_v1.pkl`` and
``model_v2.pkl`` (scikit-learn forests) become store versions once, under explicit trust, and
then behave as any woodlot version (load, compare, promote, roll back)."""

from __future__ import annotations

import joblib
import numpy as np
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from woodlot import VersionStore


def test_the_tutorials_pickles_become_store_versions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # What the joblib tutorial left behind.
    X, y = load_wine(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=42, stratify=y
    )
    sk_v1 = RandomForestClassifier(n_estimators=100, max_depth=4, random_state=42)
    sk_v2 = RandomForestClassifier(n_estimators=200, max_depth=6, random_state=42)
    joblib.dump(sk_v1.fit(X_train, y_train), "model_v1.pkl")
    joblib.dump(sk_v2.fit(X_train, y_train), "model_v2.pkl")

    # The README's migration, as written there.
    store = VersionStore("models")
    v1 = store.import_sklearn("model_v1.pkl", trust=True, description="from joblib: v1")
    store.promote(v1, reason="what production ran")
    v2 = store.import_sklearn("model_v2.pkl", trust=True, description="from joblib: v2")
    print(store.compare(X_test, y_test))
    decision = store.promote_if_better(v2, X_test, y_test, metric="accuracy")

    assert (v1.tags["source_file"], v2.tags["source_file"]) == ("model_v1.pkl", "model_v2.pkl")
    assert v2.parent == v1.version
    for version, sk in ((v1, sk_v1), (v2, sk_v2)):
        model = store.load(version.version, verify=True)
        np.testing.assert_array_equal(model.predict(X_test), sk.predict(X_test))
        assert np.max(np.abs(model.predict_proba(X_test) - sk.predict_proba(X_test))) < 1e-7
    assert store.active.version == (v2 if decision.promoted else v1).version
