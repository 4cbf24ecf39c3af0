"""Fitting on a cluster through an existing engine: the joblib-backend path of ``fit``.

Why a module of its own: a random forest is embarrassingly parallel across trees, and the
habit of scikit-learn users who outgrow one machine is ``with
joblib.parallel_config(backend="dask"):`` (or Ray's registered joblib backend) around ``fit``.
woodlot grows its trees in Rust threads, so under such a backend it would leave the cluster
idle. This module is the one place that decides, for each fit, whether to stay on the local
Rust threads or to split the trees across the engine's workers, and that talks to joblib.

How a distributed fit stays bit-identical to a local one with the same ``random_state``
(``src/forest/merge.rs`` holds the core of it):

- the driver (this process) checks the input and bins it once, in Rust
  (``prepare_training_set``); the workers receive the bins (one byte per value, a quarter to
  an eighth of ``X``) with ``y`` and ``sample_weight``, so class weights and bootstrap draws use
  the global counts;
- tree ``i`` draws all of its randomness from ``(random_state, i)``, so a worker growing trees
  ``a..b`` (``grow_tree_range``) grows exactly the local fit's trees ``a..b``;
- the driver puts the shares back in tree order (``assemble_shares``), refusing any gap or
  overlap (never a smaller forest), and sums the out-of-bag estimate in tree order over the
  masks each share brought back, exactly as the local fit does.

What ``n_jobs`` means is what it means to scikit-learn under the active backend: the number of
parallel slots joblib itself reports for it (under dask, every worker thread of the cluster
whatever ``n_jobs`` says; under Ray, ``n_jobs`` slots, ``-1`` meaning every CPU of the cluster).
The trees are split into that many chunks (scikit-learn's ``_partition_estimators`` rule), one
task each, each growing its trees on one thread. Under dask the tasks are submitted on the joblib
backend's own client with its options (``parallel_config(backend="dask", workers=[...])``
restricts them as it restricts joblib's tasks); under any other engine they go through
``joblib.Parallel``. The data goes to each worker once: with dask it is broadcast before the
tasks are submitted (one copy per worker, which also survives a lost worker), with Ray it is
put in the object store once.

Failures are the engine's to retry (dask reschedules the tasks of a lost worker up to its
``allowed-failures``); when it gives up, :class:`DistributedFitError` says so and the estimator
is left as it was. Under the default backend (loky) and joblib's other local backends nothing
here runs: the fit stays on the fast Rust-threads path.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from typing import Any, Optional

import numpy as np
from joblib import Parallel, delayed
from joblib._parallel_backends import (
    LokyBackend,
    MultiprocessingBackend,
    SequentialBackend,
    ThreadingBackend,
)
from joblib.parallel import get_active_backend

from ._native import (
    FitProgress,
    NativeForest,
    assemble_shares,
    effective_n_jobs,
    grow_tree_range,
    prepare_training_set,
)

__all__ = ["DistributedFitError", "active_engine", "fit_forest", "partition_trees"]

#: joblib's own backends: they run on this machine, where the Rust threads are faster.
_LOCAL_BACKENDS = (LokyBackend, ThreadingBackend, MultiprocessingBackend, SequentialBackend)


class DistributedFitError(RuntimeError):
    """A fit through a joblib engine failed after the engine's own retries; no forest was built
    and the estimator is unchanged."""


def active_engine() -> Optional[tuple]:
    """``(engine name, backend, configured n_jobs)`` when the active joblib backend runs tasks
    away from this process's threads (dask, Ray, any registered cluster backend), else None.

    A subclass of a local backend is not local: Ray's backend is a ``MultiprocessingBackend``
    whose pool is made of Ray actors.
    """
    backend, config_n_jobs = get_active_backend()
    if type(backend) in _LOCAL_BACKENDS:
        return None
    return _engine_name(backend), backend, config_n_jobs


def _engine_name(backend: Any) -> str:
    module = type(backend).__module__
    if module.startswith("joblib._dask") or hasattr(backend, "client"):
        return "dask"
    if module.startswith("ray."):
        return "ray"
    return type(backend).__name__


def _slots(backend: Any, config_n_jobs: Optional[int], n_jobs: Optional[int]) -> int:
    """The parallel slots joblib's ``Parallel(n_jobs=n_jobs)`` would use under ``backend``:
    ``n_jobs``, else the configured default, else the backend's, through the backend's own
    ``effective_n_jobs`` (which is where dask counts the cluster's threads)."""
    n = n_jobs if n_jobs is not None else config_n_jobs
    if n is None:
        n = backend.default_n_jobs
    return max(1, int(backend.effective_n_jobs(int(n))))


def partition_trees(first: int, stop: int, n_chunks: int) -> list:
    """Tree index ranges ``[(a, b), ...]`` covering ``first..stop`` in at most ``n_chunks``
    nearly equal chunks (scikit-learn's ``_partition_estimators`` rule)."""
    n = stop - first
    n_chunks = max(1, min(n_chunks, n))
    sizes = [n // n_chunks + (1 if k < n % n_chunks else 0) for k in range(n_chunks)]
    out, a = [], first
    for size in sizes:
        out.append((a, a + size))
        a += size
    return out


def fit_forest(
    X: np.ndarray,
    y_codes: np.ndarray,
    n_classes: int,
    sample_weight: Optional[np.ndarray],
    params: dict,
    n_jobs: Optional[int],
    previous: Optional[NativeForest],
    *,
    local_n_jobs: Optional[int] = None,
    progress: Optional[FitProgress] = None,
    output_classes: Optional[list[int]] = None,
) -> tuple:
    """Fits ``params["n_estimators"]`` trees (after ``previous``'s, on a warm start) locally or
    through the active joblib engine. Returns ``(native forest, training)``, where
    ``training`` is the lineage record of how: ``{"mode", "engine", "workers", ...}``.

    ``local_n_jobs`` is the thread count of a local fit (``n_jobs`` resolved against joblib's
    configuration); ``progress`` is the trees-built counter a local fit bumps (an engine's
    workers report nothing back until their share is done). ``output_classes`` (each output's
    class count) makes it a multi-output fit, which runs locally only."""
    engine = active_engine()
    multi = output_classes is not None and len(output_classes) > 1
    if engine is None:
        threads_arg = n_jobs if local_n_jobs is None else local_n_jobs
        native = NativeForest.fit(
            X, y_codes, n_classes, sample_weight, params, threads_arg, previous,
            progress=progress, output_classes=output_classes,
        )
        threads = effective_n_jobs(threads_arg)
        return native, {"mode": "local", "engine": None, "workers": 1, "threads": threads}
    name, backend, config_n_jobs = engine
    slots = _slots(backend, config_n_jobs, n_jobs)
    if output_classes is not None and multi and slots > 1:
        raise ValueError(
            f"a multi-output y (here {len(output_classes)} outputs) cannot be fitted on the "
            f"joblib engine {name!r} yet: woodlot splits only single-output fits across "
            "workers; fit outside the parallel_config / parallel_backend block (the local fit "
            "uses every core), or fit one forest per output"
        )
    if slots == 1:
        # joblib itself would run a single slot here, sequentially: the Rust threads do the same
        # fit faster (bit-identical either way).
        native = NativeForest.fit(
            X, y_codes, n_classes, sample_weight, params, 1, previous,
            progress=progress, output_classes=output_classes,
        )
        return native, {"mode": "local", "engine": None, "workers": 1, "threads": 1}
    return _fit_on_engine(
        name, backend, slots, X, y_codes, n_classes, sample_weight, params, previous
    )


def _fit_on_engine(
    name: str,
    backend: Any,
    slots: int,
    X: np.ndarray,
    y_codes: np.ndarray,
    n_classes: int,
    sample_weight: Optional[np.ndarray],
    params: dict,
    previous: Optional[NativeForest],
) -> tuple:
    started = time.perf_counter()
    first = 0 if previous is None else previous.n_trees
    # The driver's steps (binning, out-of-bag sums) use this machine's cores: it is idle while
    # the workers grow trees.
    binned, fingerprint = prepare_training_set(X, y_codes, n_classes, sample_weight, params, -1)
    chunks = partition_trees(first, int(params["n_estimators"]), slots)
    shipped, release = _ship(name, backend, (binned, y_codes, sample_weight))
    try:
        results = _run_chunks(name, backend, slots, shipped, n_classes, params, chunks,
                              fingerprint)
    except Exception as e:
        raise DistributedFitError(
            f"the distributed fit on {name} failed and no forest was built (the estimator is "
            f"unchanged): {type(e).__name__}: {e}. Retry once the cluster is healthy, or fit "
            "outside the joblib backend to train locally."
        ) from e
    finally:
        release()
    if len(results) != len(chunks):
        raise DistributedFitError(
            f"{name} returned {len(results)} results for {len(chunks)} chunks of trees; "
            "no forest was built"
        )
    shares = [(a, forest, masks) for (a, forest, masks, _) in results]
    native = assemble_shares(
        shares, X, y_codes, n_classes, sample_weight, params, fingerprint,
        time.perf_counter() - started, -1, previous,
    )
    workers = len({worker for (*_, worker) in results})
    return native, {"mode": "distributed", "engine": name, "workers": workers,
                    "chunks": len(chunks)}


def _run_chunks(name: str, backend: Any, slots: int, shipped: Any, n_classes: int,
                params: dict, chunks: list, fingerprint: str) -> list:
    """One task per chunk on the engine; the results in chunk order.

    dask: the tasks go to the joblib backend's own client with its submit options (``workers=``
    and the like from ``parallel_config``), and ``gather`` raises the engine's error when it
    gives up on a task. (Through ``joblib.Parallel`` a task dask gives up on after a worker
    died left the call waiting forever, with joblib 1.6 and distributed 2026.8.) Any other
    engine: ``joblib.Parallel`` with the backend's slots.
    """
    client = getattr(backend, "client", None)
    if name == "dask" and client is not None:
        options = dict(getattr(backend, "submit_kwargs", None) or {})
        call = uuid.uuid4().hex
        futures = [
            client.submit(_grow_chunk, shipped, n_classes, params, a, b, fingerprint,
                          key=f"woodlot_grow_chunk-{a}-{b}-{call}", pure=False, **options)
            for a, b in chunks
        ]
        try:
            return list(client.gather(futures))
        finally:
            client.cancel(futures)
    return list(Parallel(n_jobs=slots)(
        delayed(_grow_chunk)(shipped, n_classes, params, a, b, fingerprint) for a, b in chunks
    ))


def _ship(name: str, backend: Any, data: tuple) -> tuple:
    """``(what to pass to every task, release)``: the data once per worker, not once per task.

    dask: broadcast to every worker before any task (joblib's own scatter would put one copy
    on one worker, and a task retried after that worker died could not find it); Ray: one copy
    in the object store. Any other engine gets the arrays as task arguments (its own business
    how it moves them).
    """
    client = getattr(backend, "client", None)
    if name == "dask" and client is not None:
        futures = client.scatter(list(data), broadcast=True, hash=False)

        def release() -> None:
            for f in futures:
                f.release()

        return tuple(futures), release
    ray = sys.modules.get("ray")
    if name == "ray" and ray is not None:
        ref = ray.put(data)
        return ref, _nothing
    return data, _nothing


def _nothing() -> None:
    return None


def _unship(shipped: Any) -> tuple:
    """The data tuple on a worker: dask hands the scattered value itself; a Ray object
    reference is fetched once from the worker's object store."""
    ray = sys.modules.get("ray")
    if ray is not None and isinstance(shipped, ray.ObjectRef):
        return ray.get(shipped)
    return shipped


def _grow_chunk(shipped: Any, n_classes: int, params: dict, start: int, stop: int,
                fingerprint: str) -> tuple:
    """One task on a worker: trees ``start..stop`` on one thread (the task is one of joblib's
    slots). Returns ``(start, forest, masks, worker)``; the forest pickles as a checked model
    file, and ``worker`` names the process that grew it (for the lineage's worker count)."""
    binned, y_codes, sample_weight = _unship(shipped)
    # An engine's deserialiser may hand back views on unaligned receive buffers; Rust borrows
    # only aligned C-contiguous arrays (a no-op copy for arrays that already are).
    binned = tuple(_aligned(a) for a in binned)
    y_codes = _aligned(y_codes)
    sample_weight = None if sample_weight is None else _aligned(sample_weight)
    forest, masks = grow_tree_range(
        binned, y_codes, n_classes, sample_weight, params, start, stop, fingerprint, 1
    )
    return start, forest, masks, f"{socket.gethostname()}:{os.getpid()}"


def _aligned(a: np.ndarray) -> np.ndarray:
    return np.require(a, requirements=["C", "A"])
