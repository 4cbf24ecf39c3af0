"""A dask worker plugin that kills its worker process when a chunk of trees starts executing.

It lives in a module of its own so that worker processes (spawned, with the test process's
``sys.path``) import it by name when the scheduler installs it, also on every worker a nanny
restarts. With a marker file it kills only the first worker that starts a chunk (a worker lost
mid-fit, which the engine retries); without one it kills every worker that tries (the engine
gives up and the fit must fail clearly).
"""

from __future__ import annotations

import os
import signal
from typing import Optional

from distributed.diagnostics.plugin import WorkerPlugin


class KillOnChunk(WorkerPlugin):
    """SIGKILLs the worker process when a task growing a chunk of trees begins to execute."""

    def __init__(self, marker: Optional[str], name: str = "kill-on-chunk"):
        self.marker = marker
        self.name = name

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "grow_chunk" not in str(key):
            return
        if self.marker is not None:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return  # someone was killed already: let this one run
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def set_allowed_failures(n: int, dask_scheduler=None) -> int:
    """Run on the scheduler: how many workers may die running one task before dask gives up
    on it (returns the previous value, to restore)."""
    old = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = n
    return old
