"""A model that follows the store: every promote and rollback reaches the running service.

>>> live = woodlot.LiveModel(store, ref="active", poll_seconds=1.0)
>>> live.predict_proba(X)                          # the active version's model, whatever it is now
>>> proba, version = live.predict_proba(X, return_version=True)   # "v7": log it with the result
>>> live.status()                                  # served version, last check, errors, staleness

The watching is Rust (``src/serve``): a background thread asks the store what ``ref`` points
to every ``poll_seconds``, loads a new target, validates it and replays its probes, and only
then swaps; a target that fails is refused and the last good version keeps serving. That thread
never touches Python. This wrapper keeps, for the one model Rust serves now, the estimator
built from the exact bytes Rust verified (so input handling, feature-name checks and
``classes_`` are the estimator's own), and it learns about swaps with one atomic read per call:
when Rust's notice counter moved, it fetches the new model and logs what happened (swaps,
refusals, failed checks, recoveries) to the ``woodlot`` logger. The cache holds one model keyed
by Rust's load generation, so it can only ever hold what Rust is serving or just served.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Optional

from ._estimator import RandomForestClassifier
from ._html import live_html
from ._native import NativeLiveModel
from ._persist import loads
from ._location import open_native_store
from ._native import NativeStore
from ._records import ModelVersion, _ref

__all__ = ["LiveModel", "LiveStatus", "Pinned"]

logger = logging.getLogger("woodlot")

_LEVELS = {
    "swapped": logging.INFO,
    "recovered": logging.INFO,
    "check_failed": logging.WARNING,
    "refused": logging.ERROR,
}


def _name(v: Optional[int]) -> Optional[str]:
    return None if v is None else f"v{v}"


@dataclass(frozen=True)
class LiveStatus:
    """A snapshot of a :class:`LiveModel` (times are Unix seconds)."""

    reference: str
    """The reference followed (``"active"``, an alias, ``"latest"``, ``"v3"``)."""
    version: Optional[str]
    """The version served now (``"v3"``)."""
    generation: int
    """Which load the served model is: 1 for the first, +1 per swap."""
    target: Optional[str]
    """What the reference pointed to at the last successful check (differs from ``version``
    while that target is refused)."""
    poll_seconds: float
    last_check: Optional[float]
    """When the store was last asked, successfully or not."""
    last_success: Optional[float]
    """When the store last answered."""
    staleness_seconds: float
    """Seconds since the store last answered: how out of date the served version may be."""
    last_error: Optional[str]
    last_error_time: Optional[float]
    checks: int
    failed_checks: int
    swaps: int
    """How many times the served model was replaced (the first load is not a swap)."""
    refused_swaps: int
    """Targets that failed to load or verify and were therefore never served."""
    last_load_seconds: Optional[float]
    """How long the last load (read, validate, probe replay) took."""
    closed: bool

    @classmethod
    def _from_json(cls, s: dict) -> "LiveStatus":
        s = dict(s)
        s["version"] = _name(s["version"])
        s["target"] = _name(s["target"])
        return cls(**s)


class Pinned(NamedTuple):
    """One served version, held for a block of work (see :meth:`LiveModel.serving`)."""

    model: RandomForestClassifier
    version: ModelVersion


class LiveModel:
    """The model a store reference points to, kept current by a watcher thread in Rust.

    ``store`` is a :class:`VersionStore`, or a directory / ``s3://`` URL (then
    ``storage_options`` as for ``VersionStore``). ``ref`` is ``"active"`` (the default), an
    alias, ``"latest"`` or a fixed version. Construction loads and verifies the target and
    raises if there is none or it fails; afterwards nothing the store does can make a call
    fail: an unverifiable target is refused and an unreachable store only makes the served
    version stale (see :meth:`status`). Thread-safe; ``close()`` (or ``with``) stops the
    watcher.
    """

    def __init__(
        self,
        store: Any,
        ref: Any = "active",
        poll_seconds: float = 1.0,
        *,
        storage_options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        # A VersionStore is recognised by the native store it holds (this module sits below
        # _store.py, whose VersionStore.live returns a LiveModel, so it cannot name the class).
        native_store = getattr(store, "_native", None)
        if isinstance(native_store, NativeStore):
            if storage_options is not None:
                raise TypeError("storage_options only apply when store is a path or URL")
            path = store.path
        elif isinstance(store, (str, os.PathLike)):
            path = os.fspath(store)
            native_store = open_native_store(path, storage_options)
        else:
            raise TypeError(
                f"store must be a woodlot.VersionStore, a directory or an s3:// URL, got "
                f"{type(store).__name__}"
            )
        if isinstance(poll_seconds, bool) or not isinstance(poll_seconds, (int, float)):
            raise TypeError(f"poll_seconds must be a number, got {type(poll_seconds).__name__}")
        if not math.isfinite(poll_seconds) or not 0.001 <= poll_seconds <= 86400:
            raise ValueError(f"poll_seconds must lie between 0.001 and 86400, got {poll_seconds!r}")
        self._path = path
        self._lock = threading.Lock()
        self._logged = 0
        self._seen = -1
        self._slot: Optional[tuple] = None
        self._native = NativeLiveModel(native_store, _ref(ref), float(poll_seconds))
        self._sync()

    # -- keeping up with Rust ------------------------------------------------------------------

    def _sync(self) -> tuple:
        """Logs new notices and, if Rust serves a new load, builds its estimator."""
        with self._lock:
            epoch = self._native.epoch()  # raises StoreError once closed
            self._log_notices()
            generation, version, manifest, data = self._native.served()
            slot = self._slot
            if slot is None or slot[0] != generation:
                # The exact bytes Rust verified (BLAKE3, full validation, probe replay).
                slot = (generation, loads(data), ModelVersion(json.loads(manifest)), f"v{version}")
                self._slot = slot
            self._seen = epoch
            return slot

    def _log_notices(self) -> None:
        notices, dropped = self._native.notices_since(self._logged)
        if dropped:
            logger.warning("live model of %s: %d older notice(s) were dropped unlogged", self._path, dropped)
        for n in json.loads(notices):
            logger.log(_LEVELS.get(n["kind"], logging.WARNING), "live model: %s", n["message"])
            self._logged = n["seq"]

    def _current(self) -> tuple:
        # The hot path: one atomic read in Rust; the slow path only after a notice.
        if self._native.epoch() == self._seen:
            slot = self._slot
            if slot is not None:
                return slot
        return self._sync()

    # -- the estimator's face ------------------------------------------------------------------

    def predict_proba(self, X: Any, return_version: bool = False) -> Any:
        """Class probabilities from the version served now; with ``return_version=True``,
        ``(proba, "v<n>")`` naming the version that computed them."""
        slot: Any = self._slot if self._native.epoch() == self._seen else self._sync()
        proba = slot[1].predict_proba(X)
        return (proba, slot[3]) if return_version else proba

    def predict(self, X: Any, return_version: bool = False) -> Any:
        """Class labels from the version served now; with ``return_version=True``,
        ``(labels, "v<n>")``."""
        slot: Any = self._slot if self._native.epoch() == self._seen else self._sync()
        labels = slot[1].predict(X)
        return (labels, slot[3]) if return_version else labels

    @property
    def classes_(self) -> Any:
        """The served model's classes."""
        return self._current()[1].classes_

    @property
    def n_features_in_(self) -> int:
        return self._current()[1].n_features_in_

    @property
    def feature_names_in_(self) -> Any:
        """The served model's feature names (``AttributeError`` if it was fitted without)."""
        return self._current()[1].feature_names_in_

    @property
    def version(self) -> ModelVersion:
        """The :class:`ModelVersion` served now."""
        return self._current()[2]

    @property
    def model(self) -> RandomForestClassifier:
        """The estimator served now (a snapshot: it does not follow later swaps)."""
        return self._current()[1]

    def serving(self) -> "_Serving":
        """Pins the version served now for a block: ``with live.serving() as (model, version):``
        every call on ``model`` uses that one version, whatever the store does meanwhile."""
        return _Serving(self)

    # -- control -------------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        """The reference followed."""
        return self._native.reference

    @property
    def closed(self) -> bool:
        return self._native.closed

    def refresh(self) -> bool:
        """Checks the store now (and retries a refused target at once); returns whether the
        served version changed. Raises the store's error if the check failed or the target was
        refused; the served version is unchanged then."""
        try:
            return self._native.refresh()
        finally:
            if not self._native.closed:
                self._sync()

    def status(self) -> LiveStatus:
        """What is served and how the watching goes (also logs notices not logged yet)."""
        if not self._native.closed:
            with self._lock:
                self._log_notices()
        return LiveStatus._from_json(json.loads(self._native.status()))

    def close(self) -> None:
        """Stops the watcher thread (at once, or after the check in progress) and releases the
        model. Later calls raise :class:`woodlot.StoreError`. Idempotent."""
        self._native.close()
        with self._lock:
            self._slot = None
            self._seen = -1

    def __enter__(self) -> "LiveModel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._native.closed:
            return f"LiveModel({self._path!r}, ref={self.ref!r}: closed)"
        s = json.loads(self._native.status())
        return (
            f"LiveModel({self._path!r}, ref={self.ref!r}: serving {_name(s['version'])}, "
            f"{s['swaps']} swaps, {s['refused_swaps']} refused, stale {s['staleness_seconds']:.1f} s)"
        )

    def _repr_html_(self) -> str:
        """The notebook view: reference, served version, staleness, swaps and refusals."""
        return live_html(self._path, self.status(), repr(self))


class _Serving:
    """The context manager behind :meth:`LiveModel.serving`."""

    __slots__ = ("_live", "_pinned")

    def __init__(self, live: LiveModel) -> None:
        self._live = live
        self._pinned: Optional[Pinned] = None

    def __enter__(self) -> Pinned:
        slot = self._live._current()
        self._pinned = Pinned(slot[1], slot[2])
        return self._pinned

    def __exit__(self, *exc: Any) -> None:
        self._pinned = None
