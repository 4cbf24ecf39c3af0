"""Pickles made by an earlier woodlot still load.

``data/estimators-0.1.0.pickle`` was written by woodlot 0.1.0 before the Python package was split
into modules (pickle protocol 4): a dict holding two fitted estimators (a plain numpy fit with
integer labels; a DataFrame fit with string labels, ``oob_score=True`` and
``class_weight="balanced"``), probe rows and the predictions the estimators made on them then.
A pickle names the class by its module path (``woodlot._estimator.RandomForestClassifier``), so
moving the class, or changing what ``__setstate__`` accepts, would break every stored pickle.
"""

from __future__ import annotations

import pickle
import pickletools
from pathlib import Path

import numpy as np
import pandas as pd

import woodlot

FIXTURE = Path(__file__).parent / "data" / "estimators-0.1.0.pickle"


def _load():
    return pickle.loads(FIXTURE.read_bytes())


def test_old_pickle_names_the_estimator_by_its_module_path():
    """The fixture really does reference the path this suite promises to keep."""
    data = FIXTURE.read_bytes()
    strings = [arg for op, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    # STACK_GLOBAL pushes module then qualified name as two strings.
    pairs = set(zip(strings, strings[1:]))
    assert ("woodlot._estimator", "RandomForestClassifier") in pairs


def test_old_pickle_unpickles_to_working_estimators():
    payload = _load()
    plain, framed = payload["plain"], payload["framed"]
    assert type(plain) is woodlot.RandomForestClassifier
    assert type(framed) is woodlot.RandomForestClassifier
    probe = payload["probe"]
    frame = pd.DataFrame(probe, columns=payload["probe_columns"])

    np.testing.assert_array_equal(plain.predict_proba(probe), payload["plain_proba"])
    np.testing.assert_array_equal(framed.predict_proba(frame), payload["framed_proba"])
    np.testing.assert_array_equal(framed.predict(frame), payload["framed_predict"])

    assert plain.n_estimators == 4 and len(plain.estimators_) == 4
    assert plain.classes_.tolist() == [0, 1, 2]
    assert not hasattr(plain, "feature_names_in_")
    assert framed.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert list(framed.feature_names_in_) == payload["probe_columns"]
    assert framed.class_weight == "balanced" and framed.oob_score is True
    assert framed.oob_score_ == payload["framed_oob_score"]
    assert framed.oob_decision_function_.shape == (150, 3)


def test_old_pickle_survives_a_second_round_trip():
    payload = _load()
    framed = payload["framed"]
    again = pickle.loads(pickle.dumps(framed))
    frame = pd.DataFrame(payload["probe"], columns=payload["probe_columns"])
    np.testing.assert_array_equal(again.predict_proba(frame), payload["framed_proba"])
    assert woodlot.loads(woodlot.dumps(again)).predict(frame).tolist() == (
        payload["framed_predict"].tolist()
    )
