"""`oob_score=True` without `bootstrap` is refused by the Rust core, in scikit-learn's words:
the check is written once, there, and the Python estimator relies on it."""

import numpy as np
import pytest

from woodlot._native import NativeForest

MESSAGE = "Out of bag estimation only available if bootstrap=True"


def test_the_core_refuses_oob_score_without_bootstrap_with_scikit_learns_message():
    X = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = (np.arange(20) % 2).astype(np.uint32)
    with pytest.raises(ValueError) as info:
        NativeForest.fit(X, y, 2, params={"bootstrap": False, "oob_score": True, "n_estimators": 3})
    assert MESSAGE in str(info.value)
    assert "oob_score" in str(info.value)
