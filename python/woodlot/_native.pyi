"""Type stubs for ``woodlot._native``, the Rust extension module (source: ``src/py/``)."""

import os
from typing import Optional, TypedDict, Union, final, type_check_only

import numpy as np
import numpy.typing as npt

# The module's own __all__ (pyo3 lists every registered class and function): a function added
# in src/py is added here too, or scripts/check-stubs fails.
__all__ = [
    "__version__",
    "NativeForest",
    "effective_n_jobs",
    "NativeStore",
    "NativeComparison",
    "NativeLiveModel",
    "NativeHttpServer",
    "_store_fault_arm",
    "_store_fault_steps",
    "_store_fault_arm_process",
    "_store_fault_process_steps",
    "_store_fault_process_log",
    "write_file_durably",
    "_store_gc_pause_arm",
    "_store_gc_pause_wait",
    "_store_gc_pause_release",
    "FitProgress",
    "prepare_training_set",
    "grow_tree_range",
    "assemble_shares",
    "merge_forests",
    "NativeGuard",
    "guard_records",
    "guard_record_outcomes",
    "guard_simulate",
    "guard_simulate_trace",
    "guard_drift",
    "guard_version_drift",
]

__version__: str

# The two TypedDicts name the shape of dicts the module returns; no such class exists at run time.
@type_check_only
class FitInfo(TypedDict):
    training_fingerprint: str
    n_samples: int
    fit_seconds: float

@type_check_only
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

@final
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
        progress: Optional[FitProgress] = None,
        output_classes: Optional[list[int]] = None,
    ) -> NativeForest: ...
    @staticmethod
    def check_params(
        params: dict[str, object], n_samples: int, n_features: int, n_classes: int
    ) -> None: ...
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
    @property
    def output_classes(self) -> list[int]: ...
    def node_count(self, i: int) -> int: ...
    def max_depth(self, i: int) -> int: ...
    def n_leaves(self, i: int) -> int: ...
    def tree_arrays(self, i: int) -> TreeArrays: ...
    @staticmethod
    def from_node_arrays(
        n_features: int,
        n_classes: int,
        trees: list[dict[str, object]],
        params: dict[str, object],
        n_samples: int,
        output_classes: Optional[list[int]] = None,
    ) -> NativeForest: ...
    def bootstrap_draws(
        self, i: int, n_samples: int, base_weights: Optional[npt.NDArray[np.float64]] = None
    ) -> npt.NDArray[np.uint32]: ...
    def fit_info(self) -> FitInfo: ...
    def training_histogram_json(self) -> Optional[str]: ...
    def params_json(self) -> str: ...
    def to_bytes(self, estimator_json: str) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> tuple[NativeForest, str]: ...
    @staticmethod
    def _from_model_file(data: bytes) -> NativeForest: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

def effective_n_jobs(n_jobs: Optional[int] = None) -> int: ...

# --- the version store (src/py/store.rs); records cross as JSON strings -------------------------

_RefArg = Union[int, str]

@final
class NativeStore:
    """A version store on a local directory or ``s3://bucket/prefix``; every method runs in Rust
    with the GIL released."""

    def __new__(
        cls,
        path: Union[str, "os.PathLike[str]"],
        storage_options: Optional[list[tuple[str, str]]] = None,
    ) -> NativeStore: ...
    @property
    def location(self) -> str: ...
    def save(
        self,
        model: bytes,
        tags_json: str = "{}",
        description: Optional[str] = None,
        metrics_json: str = "{}",
        parent: Optional[_RefArg] = None,
    ) -> str: ...
    def versions(self) -> str: ...
    def get(self, r: _RefArg) -> str: ...
    def active(self) -> Optional[str]: ...
    def read_model(self, r: _RefArg, verify: bool) -> tuple[str, bytes]: ...
    def state(self) -> str: ...
    def promote(
        self,
        r: _RefArg,
        reason: Optional[str] = None,
        expect: Optional[_RefArg] = None,
        expect_nothing: bool = False,
    ) -> tuple[str, str]: ...
    def rollback(self, to: Optional[_RefArg] = None, reason: Optional[str] = None) -> tuple[str, str]: ...
    def history(self) -> str: ...
    def set_alias(self, name: str, r: _RefArg) -> str: ...
    def remove_alias(self, name: str) -> str: ...
    def verify(self) -> str: ...
    def delete(self, r: _RefArg, force: bool = False, reason: Optional[str] = None) -> str: ...
    def gc(self, dry_run: bool = False, grace_seconds: float = 3600.0) -> str: ...
    def compare(
        self,
        x: npt.NDArray[np.float64],
        y_num: Optional[npt.NDArray[np.float64]] = None,
        y_str: Optional[list[str]] = None,
        versions: Optional[list[_RefArg]] = None,
        n_bootstrap: int = 2000,
        seed: int = 0,
        n_threads: int = 0,
        record: bool = True,
        feature_names: Optional[list[str]] = None,
    ) -> NativeComparison: ...
    def promote_if_better(
        self,
        r: _RefArg,
        x: npt.NDArray[np.float64],
        y_num: Optional[npt.NDArray[np.float64]] = None,
        y_str: Optional[list[str]] = None,
        metric: str = "accuracy",
        min_delta: float = 0.0,
        alpha: Optional[float] = None,
        reason: Optional[str] = None,
        n_bootstrap: int = 2000,
        seed: int = 0,
        n_threads: int = 0,
        feature_names: Optional[list[str]] = None,
    ) -> tuple[str, Optional[NativeComparison]]: ...

@final
class NativeComparison:
    """The result of NativeStore.compare: per-version metrics and pairwise statistics."""

    def summary(self) -> str: ...
    def resolve(self, r: _RefArg) -> int: ...
    def pairwise(self, a: _RefArg, b: _RefArg) -> str: ...

@final
class NativeLiveModel:
    """A model following a store reference from a Rust watcher thread (src/serve)."""

    def __new__(cls, store: NativeStore, reference: _RefArg, poll_seconds: float = 1.0) -> NativeLiveModel: ...
    def epoch(self) -> int: ...
    def served(self) -> tuple[int, int, str, bytes]: ...
    def refresh(self) -> bool: ...
    def status(self) -> str: ...
    def notices_since(self, seq: int) -> tuple[str, int]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def reference(self) -> str: ...

@final
class NativeHttpServer:
    """The HTTP scoring server (src/serve/http.rs), following a store reference."""

    def __new__(
        cls,
        store: NativeStore,
        reference: _RefArg,
        host: str,
        port: int,
        poll_seconds: float = 1.0,
        max_body_bytes: int = 8388608,
        max_body_bytes_in_flight: int = 67108864,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        max_connections: int = 1024,
        workers: int = 2,
        drain_timeout: float = 30.0,
        guard: Optional[_RefArg] = None,
        guard_mode: str = "probation",
        guard_metric: str = "log_loss",
        guard_alpha: float = 0.05,
        guard_margin: float = 0.0,
        guard_min_outcomes: int = 200,
        canary_fraction: float = 0.0,
        auto_promote: bool = False,
        guard_flush_seconds: float = 5.0,
    ) -> NativeHttpServer: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def status(self) -> str: ...
    def guard_status(self) -> Optional[str]: ...
    def notices_since(self, seq: int) -> tuple[str, int]: ...
    def stop(self) -> None: ...

def _store_fault_arm(at: int, crash: bool = False) -> None:
    """Test-only: make I/O step `at` of the next store operation fail (or abort the process)."""

def _store_fault_steps() -> list[str]: ...
def _store_fault_arm_process(at: int, crash: bool = True) -> None:
    """Test-only: make the `at`-th I/O step counted from process start fail (or abort)."""

def _store_fault_process_steps() -> int: ...
def _store_fault_process_log() -> list[str]: ...
def write_file_durably(path: Union[str, os.PathLike[str]], data: bytes) -> None:
    """Writes `data` to `path` as the store writes its records: a temp file in the same
    directory, fsync, rename, directory fsync, permissions from the umask."""
def _store_gc_pause_arm(stage: str) -> None:
    """Test-only: the next gc to reach `stage` ("sweep" or "delete") stops until released."""

def _store_gc_pause_wait(timeout: float) -> bool: ...
def _store_gc_pause_release() -> None: ...

@final
class FitProgress:
    """A trees-built counter that a fit bumps once per finished tree."""

    def __new__(cls) -> FitProgress: ...
    @property
    def trees_built(self) -> int: ...

# --- distributed fits and merging (src/py/forest.rs, woodlot/_distributed.py) -----------------

# (codes (n_samples, n_features) uint8, lower, upper, offsets, has_missing): the shipped bins.
_BinnedParts = tuple[
    npt.NDArray[np.uint8],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint64],
    npt.NDArray[np.bool_],
]

def prepare_training_set(
    x: _Matrix,
    y: npt.NDArray[np.uint32],
    n_classes: int,
    sample_weight: Optional[npt.NDArray[np.float64]] = None,
    params: Optional[dict[str, object]] = None,
    n_jobs: Optional[int] = None,
) -> tuple[_BinnedParts, str]: ...
def grow_tree_range(
    binned: _BinnedParts,
    y: npt.NDArray[np.uint32],
    n_classes: int,
    sample_weight: Optional[npt.NDArray[np.float64]],
    params: dict[str, object],
    start: int,
    stop: int,
    training_fingerprint: str,
    n_jobs: Optional[int] = None,
) -> tuple[NativeForest, Optional[npt.NDArray[np.uint64]]]: ...
def assemble_shares(
    shares: list[tuple[int, NativeForest, Optional[npt.NDArray[np.uint64]]]],
    x: _Matrix,
    y: npt.NDArray[np.uint32],
    n_classes: int,
    sample_weight: Optional[npt.NDArray[np.float64]],
    params: dict[str, object],
    training_fingerprint: str,
    fit_seconds: float,
    n_jobs: Optional[int] = None,
    init: Optional[NativeForest] = None,
) -> NativeForest: ...
def merge_forests(forests: list[NativeForest]) -> NativeForest: ...

# --- deployment guard (src/py/guard.rs, woodlot/_guard.py) ----------------------------------

@final
class NativeGuard:
    """A deployment guard (src/guard): scores with two versions, logs, decides, acts."""

    @staticmethod
    def start(
        store: NativeStore,
        candidate: _RefArg,
        mode: str = "probation",
        metric: str = "log_loss",
        alpha: float = 0.05,
        margin: float = 0.0,
        min_outcomes: int = 200,
        canary_fraction: float = 0.0,
        auto_promote: bool = False,
        clip: float = 0.001,
        reason: Optional[str] = None,
        max_rows: int = 4096,
        max_bytes: int = 2097152,
        max_age_seconds: float = 5.0,
    ) -> NativeGuard: ...
    @staticmethod
    def open(
        store: NativeStore, guard: int, max_rows: int = 4096, max_bytes: int = 2097152, max_age_seconds: float = 5.0
    ) -> NativeGuard: ...
    @property
    def id(self) -> int: ...
    def spec_json(self) -> str: ...
    def score(
        self, x: npt.NDArray[np.float64], request_ids: Optional[list[str]] = None
    ) -> tuple[npt.NDArray[np.float64], list[str], list[int]]: ...
    def flush(self) -> None: ...
    def check(self) -> str: ...
    def status(self) -> str: ...
    def stop(self, reason: Optional[str] = None) -> str: ...
    def record_outcomes(
        self,
        request_ids: list[str],
        y_num: Optional[npt.NDArray[np.float64]] = None,
        y_str: Optional[list[str]] = None,
    ) -> str: ...
    def close(self) -> None: ...

def guard_records(store: NativeStore) -> str: ...
def guard_record_outcomes(
    store: NativeStore,
    request_ids: list[str],
    y_num: Optional[npt.NDArray[np.float64]] = None,
    y_str: Optional[list[str]] = None,
    guard: Optional[int] = None,
) -> str: ...
def guard_simulate(
    streams: int,
    max_outcomes: int,
    metric: str = "accuracy",
    alpha: float = 0.05,
    margin: float = 0.0,
    min_outcomes: int = 200,
    base_accuracy: float = 0.85,
    delta: float = 0.0,
    discordance: float = 0.12,
    seed: int = 0,
    clip: float = 0.001,
) -> str: ...
def guard_simulate_trace(
    max_outcomes: int,
    every: int = 10,
    metric: str = "accuracy",
    alpha: float = 0.05,
    margin: float = 0.0,
    min_outcomes: int = 200,
    base_accuracy: float = 0.85,
    delta: float = 0.0,
    discordance: float = 0.12,
    seed: int = 0,
    clip: float = 0.001,
) -> str: ...
def guard_drift(
    x_ref: npt.NDArray[np.float64], x: npt.NDArray[np.float64], bins: int = 10, threshold: float = 0.2
) -> str: ...
def guard_version_drift(
    store: NativeStore, ref: _RefArg, x: npt.NDArray[np.float64], threshold: float = 0.2
) -> str: ...
