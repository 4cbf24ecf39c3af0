"""The records the version store returns, as small read-only Python views.

``ModelVersion`` (a manifest), ``Event`` (one history entry), ``Comparison`` and ``Pairwise``
(evaluation results, computed in Rust), ``Decision`` (what ``promote_if_better`` did) and
``VerifyReport``. They only wrap what Rust returns (JSON, or a native comparison); nothing here
touches the store, which lives in ``_store.py`` and imports these (never the other way round).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from . import _html, _plot

__all__ = ["ModelVersion", "Comparison", "Pairwise", "Decision", "Event", "VerifyReport", "History"]

Ref = Union[int, str, "ModelVersion"]

_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")


def _ref(ref: Any, what: str = "ref") -> Union[int, str]:
    """A version reference as the native layer takes it: an int or a string."""
    if isinstance(ref, ModelVersion):
        return ref.version
    if isinstance(ref, (bool, np.bool_)):
        raise TypeError(f"{what} must be a version number, 'vN', 'latest', 'active' or an alias, not a bool")
    if isinstance(ref, (int, np.integer)):
        return int(ref)
    if isinstance(ref, str):
        return ref
    raise TypeError(
        f"{what} must be a version number, 'vN', 'latest', 'active', an alias or a ModelVersion, "
        f"got {type(ref).__name__}"
    )


def _name(v: Optional[int]) -> Optional[str]:
    return None if v is None else f"v{v}"


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)




class ModelVersion:
    """One saved version: what the model is, where it came from, and the user's notes.

    Recorded without being asked: parameters, classes, feature names and count, the BLAKE3
    fingerprint of the exact training data, fit time, library version, creation time, user,
    host, file digest and size, and the parent (the version active when it was saved).
    Read-only; the full manifest is ``manifest``. (A thin view over the manifest dict rather
    than a dataclass: listing thousands of versions must stay fast.)
    """

    __slots__ = ("manifest",)
    manifest: dict

    def __init__(self, manifest: dict) -> None:
        object.__setattr__(self, "manifest", manifest)

    @classmethod
    def _from_manifest(cls, m: dict) -> "ModelVersion":
        return cls(m)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ModelVersion is read-only")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelVersion):
            return NotImplemented
        return self.version == other.version and self.digest == other.digest

    def __hash__(self) -> int:
        return hash((self.version, self.digest))

    def __int__(self) -> int:
        return self.version

    # identity and lineage
    version = property(lambda self: self.manifest["version"], doc="The version number.")
    name = property(lambda self: f"v{self.manifest['version']}", doc='``"v<version>"``.')
    created = property(lambda self: self.manifest["created"], doc="When it was saved (RFC 3339, UTC).")
    user = property(lambda self: self.manifest["user"], doc="Who saved it.")
    host = property(lambda self: self.manifest["host"], doc="On which host.")
    parent = property(lambda self: self.manifest.get("parent"), doc="The parent version number, or None.")
    digest = property(lambda self: self.manifest["blob"]["digest"], doc="BLAKE3 of the model file.")
    size = property(lambda self: self.manifest["blob"]["size"], doc="Size of the model file in bytes.")
    probe_rows = property(lambda self: self.manifest["probe_rows"], doc="Probe rows replayed by verification.")
    # the model
    kind = property(lambda self: self.manifest["model"]["kind"])
    library_version = property(lambda self: self.manifest["model"]["library_version"])
    n_features = property(lambda self: self.manifest["model"]["n_features"])
    n_classes = property(lambda self: self.manifest["model"]["n_classes"])
    n_trees = property(lambda self: self.manifest["model"]["n_trees"])
    classes = property(lambda self: self.manifest["model"].get("classes"))
    feature_names = property(lambda self: self.manifest["model"].get("feature_names"))
    params = property(lambda self: self.manifest["model"].get("params") or {})
    training_fingerprint = property(lambda self: self.manifest["model"]["training_fingerprint"])
    n_samples = property(lambda self: self.manifest["model"]["n_samples"])
    fit_seconds = property(lambda self: self.manifest["model"]["fit_seconds"])
    training = property(
        lambda self: self.manifest["model"].get("training"),
        doc="How the model was trained: mode (local, distributed, merged), engine, workers.",
    )
    # the user's
    tags = property(lambda self: self.manifest.get("tags") or {})
    description = property(lambda self: self.manifest.get("description"))
    metrics = property(lambda self: self.manifest.get("metrics") or {})

    def __repr__(self) -> str:
        parent = f", parent v{self.parent}" if self.parent is not None else ""
        return (
            f"ModelVersion({self.name}, {self.kind}, {self.n_trees} trees, {self.n_features} features, "
            f"created {self.created} by {self.user}@{self.host}{parent}, digest {self.digest[:12]})"
        )

    def _repr_html_(self) -> str:
        """The notebook view (``_html.version_html``)."""
        return _html.version_html(self, repr(self))


@dataclass(frozen=True)
class Event:
    """One entry of the append-only history."""

    seq: int
    kind: str
    time: str
    user: str
    host: str
    pid: int
    version: Optional[str]
    reason: Optional[str]
    details: Any
    active: Optional[str]
    aliases: dict
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def _from_json(cls, e: dict) -> "Event":
        state = e.get("state") or {}
        return cls(
            seq=e["seq"],
            kind=e["kind"],
            time=e["time"],
            user=e["user"],
            host=e["host"],
            pid=e["pid"],
            version=_name(e.get("version")),
            reason=e.get("reason"),
            details=e.get("details"),
            active=_name(state.get("active")),
            aliases={k: f"v{v}" for k, v in (state.get("aliases") or {}).items()},
            raw=e,
        )

    def __repr__(self) -> str:
        what = f" {self.version}" if self.version else ""
        why = f" ({self.reason})" if self.reason else ""
        return f"Event(#{self.seq} {self.time} {self.kind}{what} by {self.user}@{self.host}{why}; active={self.active})"


class History(list):
    """``store.history()``: a plain list of :class:`Event`, oldest first, that a notebook shows
    as a table (``_repr_html_``) and ``plot()`` draws as the active version over time."""

    def _repr_html_(self) -> str:
        return _html.history_html(list(self), f"History of {len(self)} events")

    def plot(self, title: Optional[str] = None) -> Any:
        """Which version was active when, promotions and rollbacks marked (matplotlib)."""
        return _plot.history_plot(list(self), title)


@dataclass(frozen=True)
class Pairwise:
    """Paired statistics of version ``a`` against ``b`` on the same rows."""

    a: str
    b: str
    n_rows: int
    disagreements: int
    a_only_correct: list
    b_only_correct: list
    accuracy_diff: float
    mcnemar_p: float
    ci_low: float
    ci_high: float
    n_bootstrap: int
    seed: int

    @property
    def flips(self) -> list:
        """Rows whose correctness differs between the two versions, ascending."""
        return sorted(self.a_only_correct + self.b_only_correct)

    @classmethod
    def _from_json(cls, p: dict) -> "Pairwise":
        return cls(
            a=p["a"],
            b=p["b"],
            n_rows=p["n_rows"],
            disagreements=p["disagreements"],
            a_only_correct=list(p.get("a_only_correct", [])),
            b_only_correct=list(p.get("b_only_correct", [])),
            accuracy_diff=_nan(p["accuracy_diff"]),
            mcnemar_p=_nan(p["mcnemar_p"]),
            ci_low=_nan(p["ci_low"]),
            ci_high=_nan(p["ci_high"]),
            n_bootstrap=p["n_bootstrap"],
            seed=p["seed"],
        )

    def __str__(self) -> str:
        return (
            f"{self.a} vs {self.b}: {self.disagreements} disagreements; {self.a} alone right on "
            f"{len(self.a_only_correct)} rows, {self.b} alone on {len(self.b_only_correct)}; accuracy "
            f"difference {self.accuracy_diff:+.4f} (95% bootstrap CI {self.ci_low:+.4f} to {self.ci_high:+.4f}); "
            f"exact McNemar p = {self.mcnemar_p:.4g}"
        )


class Comparison:
    """Versions compared on the same evaluation data (computed in Rust, each model predicting once).

    ``metrics["v2"]["accuracy"]``, ``best``, ``pairwise("v2", "v1")``, ``to_pandas()``; printing
    it shows a table.
    """

    def __init__(self, native) -> None:
        self._native = native
        s = json.loads(native.summary())
        self._summary = s
        self.versions: list = s["versions"]
        self.labels: list = s["labels"]
        self.n_rows: int = s["n_rows"]
        self.eval_fingerprint: str = s["eval_fingerprint"]
        self.best: str = s["best"]
        self.active: Optional[str] = s["active"]
        self.event: Optional[int] = s["event"]
        self.record_error: Optional[str] = s["record_error"]
        self.metrics: dict = {}
        for name, m in s["metrics"].items():
            m = dict(m)
            for k in _METRICS:
                m[k] = _nan(m[k])
            m["per_class_recall"] = {k: _nan(v) for k, v in m["per_class_recall"].items()}
            m["confusion_matrix"] = np.asarray(m["confusion_matrix"], dtype=np.int64)
            self.metrics[name] = m

    def pairwise(self, a: Ref, b: Ref) -> Pairwise:
        """Disagreements, flipped rows, exact McNemar p and bootstrap CI of ``a`` against ``b``.

        ``a`` and ``b`` are version numbers (``2``, ``"v2"``), ``"active"`` or ``"best"``,
        resolved by the store's one reference parser (in Rust).
        """
        return Pairwise._from_json(json.loads(self._native.pairwise(_ref(a), _ref(b))))

    def to_pandas(self):
        """One row per version: the four metrics, then recall per class."""
        import pandas as pd

        rows = []
        for name in self.versions:
            m = self.metrics[name]
            row = {k: m[k] for k in _METRICS}
            for label, r in m["per_class_recall"].items():
                row[f"recall[{label}]"] = r
            rows.append(row)
        df = pd.DataFrame(rows, index=pd.Index(self.versions, name="version"))
        return df

    def __str__(self) -> str:
        head = f"Comparison of {', '.join(self.versions)} on {self.n_rows} rows (data {self.eval_fingerprint[:12]})"
        cols = ["accuracy", "balanced_acc", "macro_f1", "log_loss"]
        width = max(7, *(len(v) for v in self.versions))
        lines = [head, f"{'version':<{width}}  " + "  ".join(f"{c:>12}" for c in cols)]
        for name in self.versions:
            m = self.metrics[name]
            vals = [m["accuracy"], m["balanced_accuracy"], m["macro_f1"], m["log_loss"]]
            marks = [w for w, on in (("best", name == self.best), ("active", name == self.active)) if on]
            lines.append(
                f"{name:<{width}}  " + "  ".join(f"{v:>12.4f}" for v in vals) + (f"  ({', '.join(marks)})" if marks else "")
            )
        for p in self._summary["pairwise"]:
            lines.append(str(Pairwise._from_json(p)))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        """The notebook view: metrics (best highlighted), pairwise tests, confusion matrices."""
        pairs = [Pairwise._from_json(p) for p in self._summary["pairwise"]]
        return _html.comparison_html(self, pairs, str(self))

    def plot(self, n_bootstrap: int = 2000, seed: int = 0) -> Any:
        """A matplotlib figure: each version's metrics with bootstrap 95% intervals, and the
        confusion matrices side by side. Needs matplotlib (``pip install "woodlot[plot]"``)."""
        return _plot.comparison_plot(self, n_bootstrap, seed)


@dataclass(frozen=True)
class Decision:
    """What ``promote_if_better`` decided and why; truthy when it promoted."""

    promoted: bool
    candidate: str
    active_before: Optional[str]
    active_after: Optional[str]
    metric: str
    candidate_value: Optional[float]
    active_value: Optional[float]
    delta: Optional[float]
    min_delta: float
    alpha: Optional[float]
    p_value: Optional[float]
    reason: str
    event: int
    comparison: Optional[Comparison] = field(repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.promoted

    def __str__(self) -> str:
        return self.reason

    def _repr_html_(self) -> str:
        return _html.decision_html(self, repr(self))


@dataclass(frozen=True)
class VerifyReport:
    """The result of ``verify()``: ``ok`` and the ``problems`` found (truthy when ok)."""

    ok: bool
    versions_checked: int
    versions_deleted: int
    events_checked: int
    problems: list
    notes: list

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = (
            f"{'OK' if self.ok else 'PROBLEMS'}: {self.versions_checked} versions and "
            f"{self.events_checked} events checked"
        )
        lines = [head] + [f"  problem: {p['subject']}: {p['message']}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
