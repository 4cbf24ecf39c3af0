"""Fitting through Ray's registered joblib backend on a real local Ray instance.

Ray is not in the ``test`` extra (its wheel is about 240 MB); this module runs where ray is
installed (``pip install ray``) and is skipped elsewhere, except when ``WOODLOT_REQUIRE_RAY=1``
(CI installs ray and sets it, so a broken install fails instead of skipping). A local Ray
instance with 2 CPUs and no dashboard is started for the module and shut down after it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import make_classification

from woodlot import RandomForestClassifier

if os.environ.get("WOODLOT_REQUIRE_RAY") == "1":
    import ray
    import ray.util.joblib as ray_joblib
else:
    ray = pytest.importorskip("ray")
    ray_joblib = pytest.importorskip("ray.util.joblib")

pytestmark = pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ray_joblib.register_ray()
    try:
        yield
    finally:
        ray.shutdown()


def test_bit_identical_to_a_local_fit_on_ray_workers(ray_cluster):
    X, y = make_classification(n_samples=1200, n_features=6, n_informative=4, n_classes=3,
                               random_state=2)
    params = dict(n_estimators=7, random_state=9, oob_score=True, max_depth=7)
    local = RandomForestClassifier(**params).fit(X, y)
    # Under Ray, n_jobs is the number of slots, as for scikit-learn.
    with parallel_config(backend="ray"):
        dist = RandomForestClassifier(n_jobs=2, **params).fit(X, y)
    training = dict(dist._training)
    assert 1 <= training.pop("workers") <= 2
    assert training == {"mode": "distributed", "engine": "ray", "chunks": 2}
    assert len(dist.estimators_) == 7
    assert np.array_equal(local.predict_proba(X), dist.predict_proba(X))
    assert np.array_equal(local.oob_decision_function_, dist.oob_decision_function_)
    for a, b in zip(local.estimators_, dist.estimators_):
        assert np.array_equal(a.tree_.threshold, b.tree_.threshold)
        assert np.array_equal(a.tree_.value, b.tree_.value)
