"""``woodlot serve`` as a real subprocess: it prints where it listens, SIGTERM (and SIGINT)
lets an in-flight slow request complete and exits 0; ``--help`` works; bad arguments exit 2,
a missing store 3."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

import woodlot
from woodlot._cli import main
from tests.serving._http_util import Client
from tests.serving._live_util import small_models

WOODLOT = [sys.executable, "-c", "from woodlot._cli import console_main; console_main()"]


def _run(*args, timeout=60):
    return subprocess.run([*WOODLOT, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def store_path(tmp_path):
    (model,), X_test = small_models(1)
    path = tmp_path / "models"
    store = woodlot.VersionStore(path)
    store.promote(store.save(model))
    return path, model, X_test


def _start(path, *extra):
    proc = subprocess.Popen(
        [*WOODLOT, "serve", "--store", str(path), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    url = line.split("listening on ", 1)[1].split(",", 1)[0]
    return proc, url


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_the_request_in_flight_and_exits_0(store_path, sig):
    path, model, X_test = store_path
    proc, url = _start(path)
    try:
        assert Client(url).get("/ping")[0] == 200
        body = json.dumps({"instances": X_test[:2].tolist()}).encode()
        parts = urlsplit(url)
        s = socket.create_connection((parts.hostname, parts.port), timeout=20)
        s.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:10])
        )
        time.sleep(0.3)
        proc.send_signal(sig)
        time.sleep(0.5)
        assert proc.poll() is None, "the server waits for the request in flight"
        s.sendall(body[10:])
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        assert out.startswith(b"HTTP/1.1 200"), out
        assert json.loads(out.split(b"\r\n\r\n", 1)[1]) == {"predictions": model.predict(X_test[:2]).tolist()}
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_log_names_swaps_on_stderr(store_path):
    path, model, X_test = store_path
    proc, url = _start(path, "--poll-seconds", "0.05")
    try:
        store = woodlot.VersionStore(path)
        store.promote(store.save(model))
        client = Client(url)
        deadline = time.monotonic() + 10
        while client.get("/ping")[1].get("x-woodlot-version") != "v2" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.6)  # the notices are logged four times a second
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
        assert "now serving v2" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _main(*args):
    """``woodlot`` in this process (argparse's exit on bad arguments is a SystemExit)."""
    try:
        return main(list(args))
    except SystemExit as e:
        return e.code


def test_help_and_bad_arguments(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WOODLOT_STORE", raising=False)
    assert _main("serve", "--help") == 0
    out = capsys.readouterr().out
    assert "example:" in out and "--max-body-bytes" in out and "SIGTERM" in out
    for args in (
        ["--port", "70000"],
        ["--port", "http"],
        ["--workers", "0"],
        ["--poll-seconds", "-1"],
        ["--max-body-bytes", "0"],
        ["--bogus"],
    ):
        assert _main("serve", "--store", str(tmp_path), *args) == 2, args
        assert "error" in capsys.readouterr().err
    assert _main("serve") == 2  # no store, no WOODLOT_STORE
    assert "no store given" in capsys.readouterr().err
    assert _main("serve", "--store", str(tmp_path / "missing"), "--port", "0") == 3
    assert "no store at" in capsys.readouterr().err
    # And in a subprocess, through the console script's entry point.
    r = _run("serve", "--help")
    assert r.returncode == 0 and "example:" in r.stdout
