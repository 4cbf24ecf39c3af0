"""Guarded deployment: a candidate version watched on live traffic beside the active one.

``store.guard("v2", mode="probation")`` returns a :class:`Guard`. Its ``predict`` and
``predict_proba`` score every row with both versions, answer with the one the mode says, and
log both outputs to the store (batched, create-only segments); ``store.record_outcomes`` (from
any process) joins labels to those rows by request id; ``check()`` runs the anytime-valid test
and acts: a candidate significantly worse is rolled back (probation) or dropped (shadow,
canary), one significantly not worse is confirmed (and, with ``auto_promote``, promoted). All of
it, statistics included, runs in Rust (``woodlot._native.NativeGuard``), so the HTTP server
drives the same guard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ._native import NativeGuard, guard_drift, guard_record_outcomes, guard_records, guard_version_drift
from ._records import _name, _ref


def _matrix(X: Any) -> np.ndarray:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"X must be 2-dimensional (rows x features), got shape {x.shape}")
    return np.ascontiguousarray(x)


def _outcome_labels(y_true: Any) -> Tuple[Optional[np.ndarray], Optional[list]]:
    """``(y_num, y_str)`` as the native layer takes labels."""
    if hasattr(y_true, "to_numpy"):
        y_true = y_true.to_numpy()
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-dimensional, got shape {y.shape}")
    if y.dtype.kind in "biuf":
        return np.ascontiguousarray(y, dtype=np.float64), None
    values = y.tolist()
    if all(isinstance(v, str) for v in values):
        return None, values
    if all(isinstance(v, (int, float, bool)) for v in values):
        return np.asarray(values, dtype=np.float64), None
    raise TypeError("y_true must hold numbers or strings (as the model's classes do)")


def _ids(request_ids: Any) -> Optional[list]:
    if request_ids is None:
        return None
    if isinstance(request_ids, str):
        raise TypeError("request_ids must be a sequence of strings, not one string")
    return [str(i) for i in request_ids]


def _required_ids(request_ids: Any) -> list:
    """Outcomes need the ids of the requests they belong to."""
    ids = _ids(request_ids)
    if ids is None:
        raise TypeError("request_ids is required: the ids of the logged requests the labels belong to")
    return ids


@dataclass(frozen=True)
class GuardStatus:
    """A guard at one moment: its settings, the evidence so far and the decision, if any.

    ``estimate`` is the mean of ``loss(candidate) - loss(baseline)`` over the joined outcomes
    (for accuracy: the baseline's accuracy minus the candidate's; positive means the candidate
    is worse); ``interval`` its anytime-valid confidence bounds (each side at level ``alpha``);
    ``e_value`` the evidence that the candidate is worse by more than ``margin`` (a rollback at
    ``1 / alpha``).
    """

    guard: int
    mode: str
    metric: str
    candidate: Optional[str]
    baseline: Optional[str]
    active: Optional[str]
    running: bool
    alpha: float
    margin: float
    min_outcomes: int
    outcomes: int
    outcomes_recorded: int
    outcomes_unmatched: int
    duplicate_outcomes: int
    predictions_logged: int
    predictions_pending: int
    estimate: float
    interval: Tuple[float, float]
    e_value: float
    threshold: float
    test: str
    discordant: Tuple[int, int]
    mcnemar_e_value: float
    verdict: str
    decision: Optional[str]
    decision_reason: Optional[str]
    drift: Optional["DriftReport"]
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def _from_json(cls, text: str) -> "GuardStatus":
        d = json.loads(text)
        s, e, dec = d["spec"], d["evidence"], d.get("decision")
        return cls(
            guard=s["guard"],
            mode=s["mode"],
            metric=s["metric"],
            candidate=_name(s["candidate"]),
            baseline=_name(s["baseline"]),
            active=_name(d.get("active")),
            running=d["running"],
            alpha=s["alpha"],
            margin=s["margin"],
            min_outcomes=s["min_outcomes"],
            outcomes=d["outcomes_joined"],
            outcomes_recorded=d["outcomes_recorded"],
            outcomes_unmatched=d["outcomes_unmatched"],
            duplicate_outcomes=d["duplicate_outcomes"],
            predictions_logged=d["predictions_logged"],
            predictions_pending=d["predictions_pending"],
            estimate=e["estimate"],
            interval=(e["lower"], e["upper"]),
            e_value=e["e_value"],
            threshold=e["threshold"],
            test=e["test"],
            discordant=(e["baseline_only_right"], e["candidate_only_right"]),
            mcnemar_e_value=e["mcnemar_e_value"],
            verdict=e["verdict"],
            decision=None if dec is None else dec["decision"],
            decision_reason=None if dec is None else dec["reason"],
            drift=None if d.get("drift") is None else DriftReport._from_dict(d["drift"], None),
            raw=d,
        )


class Guard:
    """A running (or decided) guard; obtain one from ``store.guard(...)``.

    Thread-safe. Prediction rows are buffered and written in segments (at most ``max_rows``
    rows or ``max_bytes`` bytes, or after ``max_age_seconds``, checked on each call), and on
    ``flush()``, ``check()``, ``close()`` and when the guard is garbage-collected.
    """

    def __init__(self, store: Any, native: NativeGuard) -> None:
        self._store = store
        self._native = native
        spec = json.loads(native.spec_json())
        self._spec = spec
        self._classes = np.asarray(store.load(spec["candidate"]).classes_)

    @property
    def id(self) -> int:
        """The guard's id: the number of its ``guard_started`` event."""
        return int(self._native.id)

    @property
    def candidate(self) -> str:
        """The version under test."""
        return str(_name(self._spec["candidate"]))

    @property
    def baseline(self) -> str:
        """The version it is compared with."""
        return str(_name(self._spec["baseline"]))

    @property
    def mode(self) -> str:
        """``"probation"``, ``"shadow"`` or ``"canary"``."""
        return str(self._spec["mode"])

    def __repr__(self) -> str:
        return f"Guard({self.id}: {self.mode} of {self.candidate} against {self.baseline})"

    def predict_proba(self, X: Any, request_ids: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, list]:
        """Class probabilities of the answering version, and the request ids used (generated
        when not given; pass them to ``record_outcomes`` with the labels)."""
        proba, ids, _ = self._native.score(_matrix(X), _ids(request_ids))
        return proba, ids

    def predict(self, X: Any, request_ids: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, list]:
        """Predicted classes of the answering version, and the request ids used."""
        proba, ids = self.predict_proba(X, request_ids)
        return self._classes[np.argmax(proba, axis=1)], ids

    def served_by(self, X: Any, request_ids: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, list, list]:
        """As ``predict_proba``, plus the version that answered each row (``"v2"``, ...)."""
        proba, ids, served = self._native.score(_matrix(X), _ids(request_ids))
        return proba, ids, [_name(v) for v in served]

    def record_outcomes(self, request_ids: Sequence[str], y_true: Any) -> dict:
        """Records true labels for logged requests; returns counts of recorded, unknown and
        duplicate ids (neither is an error)."""
        y_num, y_str = _outcome_labels(y_true)
        return dict(json.loads(self._native.record_outcomes(_required_ids(request_ids), y_num, y_str)))

    def flush(self) -> None:
        """Writes the buffered prediction rows now."""
        self._native.flush()

    def check(self) -> GuardStatus:
        """Evaluates every outcome so far and applies a decision if one is due."""
        return GuardStatus._from_json(self._native.check())

    def status(self) -> GuardStatus:
        """The evidence so far and the decision, if any; decides nothing."""
        return GuardStatus._from_json(self._native.status())

    def stop(self, reason: Optional[str] = None) -> GuardStatus:
        """Stops the guard without a verdict (recorded as ``stopped``)."""
        return GuardStatus._from_json(self._native.stop(reason))

    def close(self) -> None:
        """Writes what is buffered (the guard itself keeps running in the store)."""
        self._native.close()

    def __enter__(self) -> "Guard":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def start_guard(
    store: Any,
    candidate: Any,
    mode: str = "probation",
    metric: str = "log_loss",
    alpha: float = 0.05,
    margin: float = 0.0,
    min_outcomes: int = 200,
    canary_fraction: Optional[float] = None,
    auto_promote: bool = False,
    clip: float = 0.001,
    reason: Optional[str] = None,
    max_rows: int = 4096,
    max_bytes: int = 2 << 20,
    max_age_seconds: float = 5.0,
) -> Guard:
    """Starts a guard of ``candidate`` against the active version (``VersionStore.guard``)."""
    if canary_fraction is None:
        canary_fraction = 0.1 if mode == "canary" else 0.0
    native = NativeGuard.start(
        store._native,
        _ref(candidate, "candidate"),
        mode,
        metric,
        float(alpha),
        float(margin),
        int(min_outcomes),
        float(canary_fraction),
        bool(auto_promote),
        float(clip),
        reason,
        int(max_rows),
        int(max_bytes),
        float(max_age_seconds),
    )
    return Guard(store, native)


def open_guard(
    store: Any,
    guard: Optional[int] = None,
    max_rows: int = 4096,
    max_bytes: int = 2 << 20,
    max_age_seconds: float = 5.0,
) -> Guard:
    """Reopens guard ``guard`` (the newest running one when ``None``) with nothing lost."""
    if guard is None:
        running = [g for g in guards(store) if g["decision"] is None]
        if not running:
            raise LookupError("no guard is running in this store; start one with store.guard(candidate)")
        guard = int(running[-1]["spec"]["guard"])
    native = NativeGuard.open(store._native, int(guard), int(max_rows), int(max_bytes), float(max_age_seconds))
    return Guard(store, native)


def guards(store: Any) -> list:
    """Every guard in the history, oldest first, as dicts (``spec``, ``started``, ``decision``)."""
    return list(json.loads(guard_records(store._native)))


def record_outcomes(store: Any, request_ids: Sequence[str], y_true: Any, guard: Optional[int] = None) -> dict:
    """Records true labels for the running guard's (or guard ``guard``'s) logged requests."""
    y_num, y_str = _outcome_labels(y_true)
    ids = _required_ids(request_ids)
    return dict(json.loads(guard_record_outcomes(store._native, ids, y_num, y_str, guard)))


@dataclass(frozen=True)
class DriftReport:
    """PSI per feature of live rows against a reference (a version's training histogram, or
    reference rows), with each feature's chi-square p-value (``p_values``: how likely counts this
    far from the reference's would be by sampling alone). ``flagged`` lists the features (names,
    or indices when the data had none) whose PSI is above ``threshold`` and whose p-value is below
    0.01 over the feature count, so a small sample's noise is not flagged; ``rows`` counts the
    live rows compared. A warning, not a verdict."""

    psi: dict
    p_values: dict
    flagged: list
    threshold: float
    rows: int

    @classmethod
    def _from_dict(cls, d: dict, names: Optional[list]) -> "DriftReport":
        keys = names if names is not None else list(range(len(d["psi"])))
        return cls(
            psi=dict(zip(keys, d["psi"])),
            p_values=dict(zip(keys, d["p_value"])),
            flagged=[keys[j] for j in d["flagged"]],
            threshold=d["threshold"],
            rows=d["rows"],
        )


def _column_names(X: Any) -> Optional[list]:
    return [str(c) for c in X.columns] if hasattr(X, "columns") else None


def drift(X: Any, reference: Any, bins: int = 10, threshold: float = 0.2) -> DriftReport:
    """PSI of each feature of ``X`` against ``reference`` rows (e.g. the training rows)."""
    d = json.loads(guard_drift(_matrix(reference), _matrix(X), int(bins), float(threshold)))
    return DriftReport._from_dict(d, _column_names(X))


def version_drift(store: Any, X: Any, ref: Any = "active", threshold: float = 0.2) -> DriftReport:
    """PSI of each feature of ``X`` against the training histogram of the version ``ref`` names."""
    if hasattr(ref, "shape") or isinstance(ref, (list, tuple)):
        raise TypeError(
            f"ref names a version (\"active\", an alias, \"v3\" or 3), got {type(ref).__name__}; "
            "to compare with reference rows, pass them as reference="
        )
    d = json.loads(guard_version_drift(store._native, _ref(ref, "ref"), _matrix(X), float(threshold)))
    return DriftReport._from_dict(d, _column_names(X))
