"""The version store: save, compare, promote and roll back model versions.

>>> store = VersionStore("models")
>>> v1 = store.save(model_v1); store.promote(v1, reason="first deploy")
>>> v2 = store.save(model_v2)
>>> store.compare(X_test, y_test)              # both versions, same rows, real statistics
>>> store.promote_if_better(v2, X_test, y_test) # the tutorial's acc_v2 >= acc_v1, recorded
>>> store.rollback(reason="bad deploy")         # back to v1, verified before it moves

Everything that touches the store (files, history, comparison statistics, promotion, rollback,
verification, gc) runs in Rust (``src/store``); this module converts inputs and wraps the
records Rust returns in the read-only views of ``_records.py``. The on-disk protocol is
described in ``src/store/mod.rs`` and ``src/store/layout.rs``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from ._errors import InvalidNameError
from ._estimator import RandomForestClassifier
from ._from_sklearn import from_sklearn, import_pickle
from ._guard import DriftReport, Guard, drift, guards, open_guard, record_outcomes, start_guard, version_drift
from ._live import LiveModel
from ._location import open_native_store
from ._persist import dumps, loads
from ._html import store_html
from ._records import (
    Comparison,
    Decision,
    Event,
    History,
    ModelVersion,
    Pairwise,
    Ref,
    VerifyReport,
    _name,
    _ref,
)

__all__ = ["VersionStore", "ModelVersion", "Comparison", "Pairwise", "Decision", "Event", "VerifyReport"]


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


class VersionStore:
    """Immutable, checksummed model versions with an append-only history, in a local directory
    or on S3-compatible object storage.

    ``VersionStore("models")`` creates the directory if needed. ``VersionStore("s3://bucket/prefix",
    storage_options={"endpoint_url": ..., "region": ..., "access_key_id": ...,
    "secret_access_key": ..., "allow_http": True})`` keeps the store under a prefix of an existing
    bucket; options left out come from the standard ``AWS_*`` environment variables. Versions are
    numbered 1, 2, 3, ... and never reused; a reference is a number, ``"v3"``, ``"latest"``,
    ``"active"`` or an alias. Several processes, threads and machines may use one store at once.
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"] = "models",
        storage_options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self._path = os.fspath(path)
        self._native = open_native_store(self._path, storage_options)

    @property
    def path(self) -> str:
        """The store's directory, or its ``s3://`` URL."""
        return self._path

    def __repr__(self) -> str:
        state = json.loads(self._native.state())
        n = len(json.loads(self._native.versions()))
        return f"VersionStore({self._path!r}: {n} versions, active {_name(state.get('active'))})"

    def _repr_html_(self) -> str:
        """The notebook view: every version with its active and alias markers, metrics, tags."""
        active = self.active
        return store_html(self._path, self.versions(), None if active is None else active.name, self.aliases,
                          repr(self))

    def plot_history(self, title: Optional[str] = None) -> Any:
        """Which version was active when, with promotions and rollbacks marked: a matplotlib
        figure (``pip install "woodlot[plot]"``)."""
        return self.history().plot(title)

    def __len__(self) -> int:
        return len(self.versions())

    def __iter__(self) -> Iterator[ModelVersion]:
        return iter(self.versions())

    def __contains__(self, ref: Any) -> bool:
        """Whether ``ref`` names a live version; a name that could never be one (``"../x"``)
        is simply not in the store, as with a dict."""
        try:
            self.get(ref)
        except (KeyError, InvalidNameError):
            return False
        return True

    # -- saving and reading --------------------------------------------------------------------

    def save(
        self,
        model: Any,
        tags: Optional[Union[dict, Sequence[str]]] = None,
        description: Optional[str] = None,
        metrics: Optional[dict] = None,
        parent: Optional[Ref] = None,
    ) -> ModelVersion:
        """Saves a fitted model as the next version and returns it.

        ``tags`` is a dict of strings (a list of strings becomes ``{tag: ""}``); ``metrics`` any
        JSON-able dict of your own numbers; ``parent`` defaults to the active version.
        """
        if isinstance(model, (bytes, bytearray, memoryview)):
            data = bytes(model)
        elif isinstance(model, RandomForestClassifier):
            data = dumps(model)
        else:
            raise TypeError(
                f"VersionStore.save expects a fitted woodlot.RandomForestClassifier, got "
                f"{type(model).__module__}.{type(model).__name__}; woodlot's estimator takes the "
                "same parameters as scikit-learn's"
            )
        if tags is None:
            tags = {}
        elif isinstance(tags, (list, tuple, set, frozenset)):
            tags = {str(t): "" for t in tags}
        elif isinstance(tags, dict):
            tags = {str(k): str(v) for k, v in tags.items()}
        else:
            raise TypeError(f"tags must be a dict or a list of strings, got {type(tags).__name__}")
        if metrics is None:
            metrics = {}
        if not isinstance(metrics, dict):
            raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
        if description is not None and not isinstance(description, str):
            raise TypeError("description must be a string")
        try:
            metrics_json = json.dumps(metrics, allow_nan=False, default=_json_default)
        except (TypeError, ValueError) as e:
            raise ValueError(f"metrics must be JSON-able with finite numbers: {e}") from None
        m = self._native.save(
            data,
            json.dumps(tags),
            description,
            metrics_json,
            None if parent is None else _ref(parent, "parent"),
        )
        return ModelVersion._from_manifest(json.loads(m))

    def import_sklearn(
        self,
        source: Any,
        trust: bool = False,
        tags: Optional[Union[dict, Sequence[str]]] = None,
        description: Optional[str] = None,
        metrics: Optional[dict] = None,
        parent: Optional[Ref] = None,
    ) -> ModelVersion:
        """Saves a scikit-learn forest as the next version (see :meth:`save`).

        ``source`` is a fitted scikit-learn ``RandomForestClassifier`` / ``ExtraTreesClassifier``
        or the path of a pickle or joblib file holding one; a file is only unpickled with
        ``trust=True`` (unpickling runs code the file names). The version's tags record where it
        came from: ``source_class``, ``sklearn_version`` and, for a file, ``source_file`` and
        ``source_sha256`` (the model file keeps them too, in its description).
        """
        if isinstance(source, (str, os.PathLike)):
            model = import_pickle(source, trust=trust)
        else:
            model = from_sklearn(source)
        lineage = {"source_class": model._source["converted_from"]}
        lineage.update({k: str(v) for k, v in model._source.items() if k != "converted_from"})
        if tags is None:
            tags = {}
        elif isinstance(tags, (list, tuple, set, frozenset)):
            tags = {str(t): "" for t in tags}
        elif not isinstance(tags, dict):
            raise TypeError(f"tags must be a dict or a list of strings, got {type(tags).__name__}")
        return self.save(model, tags={**lineage, **tags}, description=description,
                         metrics=metrics, parent=parent)

    def versions(self) -> list:
        """Every version (deleted ones excluded), oldest first."""
        return [ModelVersion._from_manifest(m) for m in json.loads(self._native.versions())]

    def get(self, ref: Ref) -> ModelVersion:
        """The version ``ref`` names; raises :class:`VersionNotFoundError` (a ``KeyError``)."""
        return ModelVersion._from_manifest(json.loads(self._native.get(_ref(ref))))

    def load(self, ref: Ref = "active", verify: bool = False) -> RandomForestClassifier:
        """The fitted model of a version.

        The file's BLAKE3 is always checked. With ``verify=True`` the model is also fully
        validated and its stored probe predictions replayed bit for bit before it is returned.
        """
        _, data = self._native.read_model(_ref(ref), bool(verify))
        return loads(data)

    @property
    def active(self) -> Optional[ModelVersion]:
        """The active version, or ``None``."""
        m = self._native.active()
        return None if m is None else ModelVersion._from_manifest(json.loads(m))

    # -- comparing -----------------------------------------------------------------------------

    def _eval_data(self, X: Any, y: Any) -> tuple:
        """``(x, y_num, y_str, column names or None)`` as the native layer takes them. The
        column names are checked in Rust against every compared version's feature names."""
        names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"X must be 2-dimensional (rows x features), got shape {x.shape}")
        x = np.ascontiguousarray(x)
        if hasattr(y, "to_numpy"):
            y = y.to_numpy()
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"y must be 1-dimensional, got shape {y.shape}")
        if y.dtype.kind in "biuf":
            return x, np.ascontiguousarray(y, dtype=np.float64), None, names
        values = y.tolist()
        if all(isinstance(v, str) for v in values):
            return x, None, values, names
        if all(isinstance(v, (int, float, bool)) for v in values):
            return x, np.asarray(values, dtype=np.float64), None, names
        raise TypeError("y must hold numbers or strings (as the model's classes do)")

    def compare(
        self,
        X: Any,
        y: Any,
        versions: Optional[Sequence[Ref]] = None,
        *,
        n_bootstrap: int = 2000,
        seed: int = 0,
        record: bool = True,
    ) -> Comparison:
        """Compares versions (all by default) on the same data, in Rust.

        Per version: accuracy, balanced accuracy, macro F1, log loss, per-class recall and the
        confusion matrix. Per pair (on demand with ``pairwise``): disagreements, flipped rows, the
        exact McNemar p-value and a seeded paired-bootstrap 95% interval of the accuracy
        difference. The fingerprint of the evaluation data is recorded in the history (unless
        ``record=False``) so a later promotion can cite it.
        """
        refs = None if versions is None else [_ref(v, "versions") for v in versions]
        x, y_num, y_str, names = self._eval_data(X, y)
        native = self._native.compare(x, y_num, y_str, refs, int(n_bootstrap), int(seed), 0, bool(record), names)
        cmp = Comparison(native)
        if record and cmp.record_error:
            import warnings

            warnings.warn(f"the comparison was not recorded in the history: {cmp.record_error}", stacklevel=2)
        return cmp

    # -- moving the active version -------------------------------------------------------------

    def promote(self, ref: Ref, reason: Optional[str] = None, expect_active: Optional[Ref] = None) -> ModelVersion:
        """Makes a version active (after loading it and replaying its probes) and records who,
        when, why and the evidence (the last comparison that included it).

        With ``expect_active`` (a reference, or ``"none"`` for "no version is active"), the
        promotion happens only if the active version is still that one; otherwise
        :class:`ConflictError` is raised and nothing changes.
        """
        expect_nothing = isinstance(expect_active, str) and expect_active == "none"
        expect = None if expect_active is None or expect_nothing else _ref(expect_active, "expect_active")
        m, _ = self._native.promote(_ref(ref), reason, expect, expect_nothing)
        return ModelVersion._from_manifest(json.loads(m))

    def promote_if_better(
        self,
        ref: Ref,
        X: Any,
        y: Any,
        metric: str = "accuracy",
        min_delta: float = 0.0,
        alpha: Optional[float] = None,
        reason: Optional[str] = None,
        *,
        n_bootstrap: int = 2000,
        seed: int = 0,
    ) -> Decision:
        """Promotes ``ref`` only if it beats the active version by ``min_delta`` on ``metric``
        (``accuracy``, ``balanced_accuracy``, ``macro_f1`` or ``log_loss``, where lower is
        better) and, with ``alpha``, McNemar's exact test is significant. With no active version
        the candidate is promoted. The decision and its reason are recorded either way; if the
        active version changes meanwhile, :class:`ConflictError` is raised.
        """
        r = _ref(ref)
        x, y_num, y_str, names = self._eval_data(X, y)
        d_json, native = self._native.promote_if_better(
            r, x, y_num, y_str, metric, float(min_delta), None if alpha is None else float(alpha),
            reason, int(n_bootstrap), int(seed), 0, names,
        )
        d = json.loads(d_json)
        return Decision(
            promoted=d["promoted"],
            candidate=f"v{d['candidate']}",
            active_before=_name(d["active_before"]),
            active_after=_name(d["active_after"]),
            metric=d["metric"],
            candidate_value=d["candidate_value"],
            active_value=d["active_value"],
            delta=d["delta"],
            min_delta=d["min_delta"],
            alpha=d["alpha"],
            p_value=d["p_value"],
            reason=d["reason"],
            event=d["event_seq"],
            comparison=None if native is None else Comparison(native),
        )

    def rollback(self, to: Optional[Ref] = None, reason: Optional[str] = None) -> ModelVersion:
        """Returns to the previously active version (or ``to``) and returns it.

        The target must load, validate and replay its probes first; with nothing to roll back
        to, :class:`StoreError` is raised. Repeated rollbacks walk further back.
        """
        m, _ = self._native.rollback(None if to is None else _ref(to, "to"), reason)
        return ModelVersion._from_manifest(json.loads(m))

    def live(self, ref: Ref = "active", poll_seconds: float = 1.0) -> LiveModel:
        """A :class:`woodlot.LiveModel` serving ``ref`` (``"active"``, an alias, ``"latest"`` or a
        version) and following every promote, rollback and alias move within ``poll_seconds``."""
        return LiveModel(self, ref, poll_seconds)

    def history(self) -> History:
        """Every event, oldest first (a list; a notebook shows it as a table)."""
        return History(Event._from_json(e) for e in json.loads(self._native.history()))

    # -- aliases -------------------------------------------------------------------------------

    def set_alias(self, name: str, ref: Ref) -> None:
        """Points alias ``name`` (ASCII letters, digits, ``.``, ``_``, ``-``) at a version."""
        if not isinstance(name, str):
            raise TypeError("an alias name must be a string")
        self._native.set_alias(name, _ref(ref))

    def remove_alias(self, name: str) -> None:
        """Removes an alias; raises :class:`VersionNotFoundError` if there is none."""
        if not isinstance(name, str):
            raise TypeError("an alias name must be a string")
        self._native.remove_alias(name)

    @property
    def aliases(self) -> dict:
        """Alias name to version name, e.g. ``{"champion": "v2"}``."""
        state = json.loads(self._native.state())
        return {k: f"v{v}" for k, v in sorted((state.get("aliases") or {}).items())}

    # -- upkeep --------------------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Checks every version (digest, validation, probe replay) and the whole history."""
        r = json.loads(self._native.verify())
        return VerifyReport(
            ok=r["ok"],
            versions_checked=r["versions_checked"],
            versions_deleted=r["versions_deleted"],
            events_checked=r["events_checked"],
            problems=r["problems"],
            notes=r["notes"],
        )

    def delete(self, ref: Ref, force: bool = False, reason: Optional[str] = None) -> Event:
        """Deletes a version. The active version or an alias target needs ``force=True``. The
        number is never reused; ``gc()`` frees the files. The ``delete`` event is the one commit
        point: once it is written no one can promote, alias or roll back to the version."""
        return Event._from_json(json.loads(self._native.delete(_ref(ref), bool(force), reason)))

    def gc(self, dry_run: bool = False, grace_seconds: float = 3600.0) -> dict:
        """Removes unreferenced blobs and temp files older than ``grace_seconds``; returns what
        was (or, with ``dry_run``, would be) removed.

        A dry run takes no lock and writes nothing, so it works on a read-only store. On object
        storage gc sweeps in two phases: a run marks unreferenced blobs (``marked``), and a
        later run deletes those still unreferenced and unclaimed by a save once the mark is
        ``grace_seconds`` old on the service's clock (``restored`` lists blobs a concurrent save
        claimed during the sweep, written back)."""
        if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, (int, float)) or math.isnan(grace_seconds):
            raise ValueError("grace_seconds must be a non-negative number")
        return json.loads(self._native.gc(bool(dry_run), float(grace_seconds)))

    # -- guarded deployment (woodlot._guard) -----------------------------------------------------

    def guard(
        self,
        candidate: Optional[Ref] = None,
        mode: str = "probation",
        metric: str = "log_loss",
        alpha: float = 0.05,
        margin: float = 0.0,
        min_outcomes: int = 200,
        canary_fraction: Optional[float] = None,
        auto_promote: bool = False,
        reason: Optional[str] = None,
        **options: Any,
    ) -> Guard:
        """Starts guarding ``candidate`` against the active version and returns the guard; with
        no candidate, reopens the running guard (or ``options["guard_id"]``) with nothing lost.

        ``mode``: ``"probation"`` (promote now, roll back on evidence it is worse),
        ``"shadow"`` (the active version answers, the candidate is scored and logged) or
        ``"canary"`` (``canary_fraction`` of request ids answered by the candidate). The
        probability of ever calling an equally good candidate worse is at most ``alpha``,
        however often ``check()`` runs. Further options: ``clip`` (log-loss),
        ``max_rows``, ``max_bytes``, ``max_age_seconds`` (prediction-log segments).
        """
        if candidate is None:
            return open_guard(self, options.pop("guard_id", None), **options)
        return start_guard(
            self, candidate, mode, metric, alpha, margin, min_outcomes, canary_fraction,
            auto_promote, reason=reason, **options,
        )

    def guards(self) -> list:
        """Every guard in the history, oldest first (dicts: ``spec``, ``started``, ``decision``)."""
        return guards(self)

    def record_outcomes(self, request_ids: Sequence[str], y_true: Any, guard: Optional[int] = None) -> dict:
        """Records true labels for logged requests of the running guard (or ``guard``): returns
        ``recorded``, ``unknown`` and ``duplicate`` counts (neither is an error)."""
        return record_outcomes(self, request_ids, y_true, guard)

    def drift(
        self, X: Any, ref: Any = "active", *, reference: Any = None, threshold: float = 0.2, bins: int = 10
    ) -> DriftReport:
        """PSI per feature of live rows ``X`` against the training histogram the version ``ref``
        names (``"active"``, an alias, ``"latest"``, ``"v3"`` or ``3``) kept from its fit,
        features above ``threshold`` flagged: an early warning before labels arrive, never a
        rollback. With ``reference=`` rows (e.g. a window the model was known good on) it
        compares with their ``bins``-quantile bins instead; a version without a histogram
        (saved before format 2.1, converted from scikit-learn, merged) needs that."""
        if reference is not None:
            return drift(X, reference, bins, threshold)
        return version_drift(self, X, ref, threshold)
