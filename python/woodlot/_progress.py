"""``verbose`` during ``fit``: messages per tree as scikit-learn prints them, or a progress bar.

The trees are grown on Rust threads with the GIL released; each finished tree bumps a native
counter (``_native.FitProgress``, ``src/forest/progress.rs``). While the fit runs, a Python
thread polls that counter ten times a second and reports what changed, so the fit threads
never wait for Python (and ``verbose=0`` passes no counter at all).

- ``verbose >= 1``: a tqdm bar over the trees when tqdm is installed (``tqdm.auto``: a widget
  in a notebook, text in a terminal; ``pip install "woodlot[progress]"``), otherwise a line on
  stderr at every tenth of the trees and a closing line, as joblib prints for scikit-learn's
  forests.
- ``verbose >= 2``: ``building tree i of n`` on stdout for every tree, scikit-learn's message
  (its trees are numbered in the order they finish here, as they are under joblib's threads).
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any, Optional, Type

from ._native import FitProgress

try:  # optional: the progress bar
    from tqdm.auto import tqdm as _tqdm
except ImportError:  # pragma: no cover - exercised by the "no tqdm" test
    _tqdm = None

__all__ = ["fit_progress", "FitReporter", "POLL_SECONDS"]

#: How often the reporting thread reads the counter.
POLL_SECONDS = 0.1


class FitReporter:
    """Reports one fit's progress; a context manager whose value is the native counter."""

    def __init__(self, verbose: int, n_trees: int, n_jobs: Any = None, use_bar: Optional[bool] = None) -> None:
        self.verbose = int(verbose)
        self.n_trees = int(n_trees)
        self.counter = FitProgress()
        self.started = time.perf_counter()
        self.reported = 0
        self.next_line = 1
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        wants_bar = self.verbose == 1 and _tqdm is not None
        self.bar: Any = None
        if use_bar if use_bar is not None else wants_bar:
            self.bar = _tqdm(total=self.n_trees, desc="woodlot fit", unit="tree", file=sys.stderr, leave=True)
        elif self.verbose == 1:
            jobs = "" if n_jobs is None else f" (n_jobs={n_jobs})"
            print(f"[woodlot] building {self.n_trees} trees{jobs}", file=sys.stderr, flush=True)

    def _report(self, built: int) -> None:
        built = min(built, self.n_trees)
        if built <= self.reported:
            return
        if self.bar is not None:
            self.bar.update(built - self.reported)
        elif self.verbose >= 2:
            for i in range(self.reported + 1, built + 1):
                print(f"building tree {i} of {self.n_trees}", flush=True)
        else:
            step = max(1, self.n_trees // 10)
            if built >= self.next_line * step or built == self.n_trees:
                elapsed = time.perf_counter() - self.started
                print(f"[woodlot] built {built} of {self.n_trees} trees | elapsed: {elapsed:.1f}s",
                      file=sys.stderr, flush=True)
                self.next_line = built // step + 1
        self.reported = built

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._report(self.counter.trees_built)

    def __enter__(self) -> FitProgress:
        self._thread = threading.Thread(target=self._poll, name="woodlot-fit-progress", daemon=True)
        self._thread.start()
        return self.counter

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc_type is None:
            self._report(self.counter.trees_built)
        if self.bar is not None:
            self.bar.close()
        elif exc_type is None and self.verbose >= 2:
            elapsed = time.perf_counter() - self.started
            print(f"[woodlot] built {self.reported} trees in {elapsed:.2f}s", file=sys.stderr, flush=True)


class _Silent:
    """``verbose=0``: no counter, no thread."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def fit_progress(verbose: Any, n_trees: int, n_jobs: Any = None) -> Any:
    """The reporter for a fit of ``n_trees`` new trees: a context manager giving the counter to
    pass to ``NativeForest.fit`` (``None`` when there is nothing to report)."""
    if not verbose or int(verbose) <= 0 or n_trees <= 0:
        return _Silent()
    return FitReporter(int(verbose), n_trees, n_jobs)
