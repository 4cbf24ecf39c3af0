"""A small store with hostile user strings everywhere a user can put one, for the notebook
views and plots (one per module: fits are small)."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from woodlot import RandomForestClassifier, VersionStore

#: Would run script, load an image or break out of an attribute if it were not escaped.
HOSTILE = "<script>alert('x')</script>\"><img src=x onerror=alert(1)> & </table>"


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    frame = load_wine(as_frame=True)
    X = frame.data.rename(columns={"alcohol": HOSTILE})
    y = frame.target.map({0: "<b>zero</b>", 1: "one", 2: "two & three"})
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    root = tmp_path_factory.mktemp("nb") / "store <i>"
    store = VersionStore(root)
    m1 = RandomForestClassifier(n_estimators=8, max_depth=2, random_state=0).fit(X_train, y_train)
    m2 = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X_train, y_train)
    v1 = store.save(m1, description=HOSTILE, tags={HOSTILE: HOSTILE, "stage": "baseline"}, metrics={HOSTILE: 1.5})
    store.promote(v1, reason=HOSTILE)
    v2 = store.save(m2, description="bigger")
    store.set_alias("champion", v2)
    cmp = store.compare(X_test, y_test)
    decision = store.promote_if_better(v2, X_test, y_test, min_delta=-1.0, reason=HOSTILE)
    store.rollback(reason=HOSTILE + " $\\frac{1}{0}$")
    return store, cmp, decision, (X_train, X_test, y_train, y_test)
