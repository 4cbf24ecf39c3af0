"""Helpers shared by the LiveModel tests (tests/serving/test_live_*.py)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

import woodlot

from tests._moto import free_port  # noqa: F401  (re-exported for the serving tests)


def wine_split():
    X, y = load_wine(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)


def small_models(n, n_estimators=20):
    """`n` fitted forests on the wine data that differ (seed and depth), so every version's
    probabilities for the test rows are distinct."""
    X_train, X_test, y_train, _ = wine_split()
    models = [
        woodlot.RandomForestClassifier(
            n_estimators=n_estimators, max_depth=2 + i, random_state=100 + i
        ).fit(X_train, y_train)
        for i in range(n)
    ]
    return models, X_test


def watcher_threads():
    """Threads of this process named like LiveModel's watcher (Rust threads: threading does
    not list them, /proc does)."""
    n = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() == "woodlot-live":
                n += 1
        except OSError:
            pass
    return n


def wait_for(predicate, timeout, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def blob_file(store_dir, version):
    """The file holding a version's model blob in a local store (found by its digest)."""
    hexdigest = version.digest.rsplit(":", 1)[-1]
    hits = [p for p in Path(store_dir).rglob("*") if p.is_file() and hexdigest in p.name]
    assert len(hits) == 1, hits
    return hits[0]


def damage(path):
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0x20
    Path(path).write_bytes(bytes(data))


def fast_failing_s3_options(endpoint):
    """Storage options for moto at ``endpoint``: an unreachable endpoint fails a check within
    about a second instead of after minutes of retries."""
    return {
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "allow_http": True,
        "connect_timeout": "0.5",
        "timeout": "2",
        "max_retries": "0",
        "retry_timeout": "1",
    }


class Moto:
    """``python -m moto.server`` on a fixed loopback port, which can be stopped and started
    again on the same port (moto keeps its data in memory: a restart starts empty)."""

    def __init__(self, port, log_path):
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto did not start listening within 60 s")
                time.sleep(0.1)

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()


def proba_by_version(store, rows):
    """Each version's exact probabilities for `rows`, from a plain load."""
    return {v.name: store.load(v).predict_proba(rows) for v in store.versions()}


def assert_same(a, b):
    assert np.array_equal(a, b)
