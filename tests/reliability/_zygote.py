"""The fork server of the reliability suite.

Importing woodlot (numpy, scikit-learn) costs about 2 s and the suite runs thousands of trials,
so one helper process imports it once and forks a fresh child per trial. Children are real
processes running the real extension; the tests kill them with SIGKILL, let them abort through
the fault switch, or watch them die (a segfault or abort in a fuzz case).

A child runs a worker function named by its module and name (``Zygote.start(fn, ...)`` takes
the function itself), so workers live in modules of their own (``_workers_*.py``, the fuzzer)
and the server imports each module once, before it forks, by its dotted name under the
repository root (``tests.reliability._workers_store``): the same name pytest imports it by.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# The repository root: ``tests`` is a package below it (tests/__init__.py).
REPO_ROOT = Path(__file__).resolve().parents[2]

ZYGOTE_SRC = r"""
import importlib, json, os, sys, traceback
sys.path.insert(0, sys.argv[1])
import woodlot  # the expensive import, done once
inp, out = sys.stdin, sys.stdout
for line in inp:
    cmd = json.loads(line)
    if cmd["op"] == "fork":
        fn = getattr(importlib.import_module(cmd["module"]), cmd["fn"])
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.setpgid(0, 0)
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                if cmd.get("quiet", True):
                    os.dup2(devnull, 1)
                code = fn(*cmd["args"]) or 0
            except BaseException:
                traceback.print_exc()
                code = 99
            finally:
                sys.stdout.flush(); sys.stderr.flush()
                os._exit(code)
        out.write(json.dumps({"pid": pid}) + "\n"); out.flush()
    elif cmd["op"] == "wait":
        _, status = os.waitpid(cmd["pid"], 0)
        if os.WIFSIGNALED(status):
            res = {"signal": os.WTERMSIG(status)}
        else:
            res = {"code": os.WEXITSTATUS(status)}
        out.write(json.dumps(res) + "\n"); out.flush()
    elif cmd["op"] == "exit":
        break
"""


class Zygote:
    """A process that has imported woodlot and forks a fresh child per request."""

    def __init__(self):
        env = dict(os.environ)
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE_SRC, str(REPO_ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def _ask(self, cmd: dict) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        return json.loads(line)

    def start(self, fn, *args, quiet: bool = True) -> int:
        """Forks a child running ``fn(*args)`` (a module-level function of an importable module;
        arguments must be JSON); returns its pid."""
        cmd = {"op": "fork", "module": fn.__module__, "fn": fn.__name__, "args": list(args), "quiet": quiet}
        return self._ask(cmd)["pid"]

    def wait(self, pid: int) -> dict:
        """``{"code": n}`` or ``{"signal": n}``."""
        return self._ask({"op": "wait", "pid": pid})

    def run(self, fn, *args, timeout: float = 300.0) -> dict:
        pid = self.start(fn, *args)
        # waitpid in the server blocks; enforce the timeout from here with a kill.
        timer = threading.Timer(max(0.0, timeout), lambda: kill(pid))
        timer.start()
        try:
            return self.wait(pid)
        finally:
            timer.cancel()

    def kill9(self, pid: int) -> dict:
        kill(pid)
        return self.wait(pid)

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def kill(pid: int):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(predicate, what: str, timeout: float = 30.0):
    """Polls ``predicate`` until it holds; fails the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)
