"""Fixtures shared by the store's tests."""

import pytest

import woodlot
from woodlot import RandomForestClassifier


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, wine):
    """A small fitted model's file, for child processes that save it (local and S3 races)."""
    X_train, _, y_train, _ = wine
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X_train, y_train)
    path = tmp_path_factory.mktemp("model") / "model.wdl"
    path.write_bytes(woodlot.dumps(model))
    return path
