"""woodlot: random forests trained in Rust with scikit-learn's face.

>>> from woodlot import RandomForestClassifier
>>> clf = RandomForestClassifier(n_estimators=100, max_depth=4, random_state=42).fit(X, y)
>>> woodlot.dump(clf, "model.wdl"); clf2 = woodlot.load("model.wdl")
"""

from __future__ import annotations

from ._errors import (
    ConflictError,
    CorruptModelError,
    InvalidNameError,
    StoreError,
    VersionNotFoundError,
    WoodlotError,
)
from ._estimator import RandomForestClassifier
from ._from_sklearn import from_sklearn, import_pickle
from ._guard import DriftReport, Guard, GuardStatus
from ._live import LiveModel
from ._merge import merge_forests
from ._native import __version__
from ._persist import dump, dumps, load, loads
from ._serve import Server, ServerStatus, serve
from ._store import Comparison, Decision, Event, ModelVersion, VerifyReport, VersionStore

__all__ = [
    "RandomForestClassifier",
    "dump",
    "load",
    "dumps",
    "loads",
    "WoodlotError",
    "CorruptModelError",
    "VersionNotFoundError",
    "ConflictError",
    "InvalidNameError",
    "StoreError",
    "VersionStore",
    "LiveModel",
    "ModelVersion",
    "Comparison",
    "Decision",
    "Event",
    "VerifyReport",
    "serve",
    "Server",
    "ServerStatus",
    "Guard",
    "GuardStatus",
    "DriftReport",
    "__version__",
    "from_sklearn",
    "import_pickle",
    "merge_forests",
]
