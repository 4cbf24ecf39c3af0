"""Type stubs for ``woodlot._native``, the Rust extension module (source: ``src/py/``)."""

from typing import Optional, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str

class FitInfo(TypedDict):
    training_fingerprint: str
    n_samples: int
    fit_seconds: float

class TreeArrays(TypedDict):
    node_count: int
    n_leaves: int
    max_depth: int
    n_classes: int
    n_features: int
    children_left: npt.NDArray[np.int64]
    children_right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    missing_go_to_left: npt.NDArray[np.uint8]
    impurity: npt.NDArray[np.float64]
    n_node_samples: npt.NDArray[np.int64]
    weighted_n_node_samples: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]

_Matrix = npt.NDArray[np.float32] | npt.NDArray[np.float64]

class NativeForest:
    """A fitted random forest (immutable, thread-safe)."""

    @staticmethod
    def fit(
        x: _Matrix,
        y: npt.NDArray[np.uint32],
        n_classes: int,
        sample_weight: Optional[npt.NDArray[np.float64]] = None,
        params: Optional[dict[str, object]] = None,
        n_jobs: Optional[int] = None,
        init: Optional[NativeForest] = None,
    ) -> NativeForest: ...
    def predict_proba(self, x: _Matrix, n_jobs: Optional[int] = None) -> npt.NDArray[np.float64]: ...
    def predict(self, x: _Matrix, n_jobs: Optional[int] = None) -> npt.NDArray[np.uint32]: ...
    def apply(self, x: _Matrix, n_jobs: Optional[int] = None) -> npt.NDArray[np.int64]: ...
    def feature_importances(self) -> npt.NDArray[np.float64]: ...
    def oob_score(self) -> Optional[float]: ...
    def oob_decision_function(self) -> Optional[npt.NDArray[np.float64]]: ...
    @property
    def n_trees(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def n_classes(self) -> int: ...
    def node_count(self, i: int) -> int: ...
    def max_depth(self, i: int) -> int: ...
    def n_leaves(self, i: int) -> int: ...
    def tree_arrays(self, i: int) -> TreeArrays: ...
    def fit_info(self) -> FitInfo: ...
    def params_json(self) -> str: ...
    def to_bytes(self, estimator_json: str) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> tuple[NativeForest, str]: ...
    @staticmethod
    def _from_model_file(data: bytes) -> NativeForest: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

def effective_n_jobs(n_jobs: Optional[int] = None) -> int: ...
