"""A real S3 endpoint on loopback for the tests: moto's server (``moto[server]``, in the test
extras) on a free 127.0.0.1 port, and the small helpers every S3 test needs (a boto3 client, a
fresh bucket, woodlot's storage options). The fixtures that start and stop servers are in
tests/conftest.py; import the helpers from here (``from tests._moto import bucket, options``).

Only loopback addresses are used, and the tests clear every AWS_* variable of the environment
(``no_aws_environment``) so no request can go anywhere else.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
import uuid

# moto's WSGI app under a multi-threaded werkzeug server (a thread per connection, so requests
# from several clients are served at the same time), for the races. moto checks a conditional
# write's precondition (If-None-Match / If-Match) and then writes, without a lock, so two
# conditional PUTs of one key served at once could both succeed; S3 itself is atomic per key.
# The wrapper gives moto exactly that: writes (PUT, POST, DELETE) of one key are serialised
# with a lock per key; everything else (reads, listings, writes of other keys) runs
# concurrently. Each request is first held for ``delay`` seconds (outside any lock; a request
# may ask for another hold with an ``X-Woodlot-Hold: <seconds>`` header) to widen the windows
# between a client's requests, and the wrapper counts the requests in flight, so a
# test can show that the race really overlapped: GET /_woodlot/stats returns
# {"max_in_flight": n, "threads": n, "requests": n}, and /_woodlot/stats?reset=1 restarts them.
RACE_MOTO = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from werkzeug.serving import run_simple
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    port, delay = int(sys.argv[1]), float(sys.argv[2])
    os.environ["MOTO_PORT"] = str(port)
    moto = DomainDispatcherApplication(create_backend_app)
    guard = threading.Lock()
    key_locks = {}
    stats = {"in_flight": 0, "max_in_flight": 0, "requests": 0, "threads": set()}

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_woodlot/stats":
            with guard:
                if "reset=1" in environ.get("QUERY_STRING", ""):
                    stats.update(max_in_flight=0, requests=0, threads=set())
                body = json.dumps({"max_in_flight": stats["max_in_flight"], "requests": stats["requests"],
                                   "threads": len(stats["threads"])}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with guard:
            stats["in_flight"] += 1
            stats["requests"] += 1
            stats["threads"].add(threading.get_ident())
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            hold = float(environ.get("HTTP_X_WOODLOT_HOLD", delay))
            if hold:
                time.sleep(hold)
            if environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE"):
                with guard:
                    lock = key_locks.setdefault(path, threading.Lock())
                with lock:
                    # The whole response is produced under the lock: moto does its work here.
                    return list(moto(environ, start_response))
            return list(moto(environ, start_response))
        finally:
            with guard:
                stats["in_flight"] -= 1

    run_simple("127.0.0.1", port, app, threaded=True)
    """
)

CREDENTIALS = {
    "region": "us-east-1",
    "access_key_id": "testing",
    "secret_access_key": "testing",
    "allow_http": True,
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(log_path, race_delay=None):
    """Starts a moto server: ``python -m moto.server``, or with ``race_delay`` (seconds) the
    race server above; returns (process, endpoint URL, open log file)."""
    port = free_port()
    if race_delay is not None:
        cmd = [sys.executable, "-c", RACE_MOTO, str(port), str(race_delay)]
    else:
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"moto exited with {proc.returncode}: {open(log_path).read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto did not start listening within 60 s")
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}", log


def stop_moto(proc, log):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    log.close()


def s3_client(endpoint):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def bucket(endpoint) -> str:
    """A fresh, empty bucket on the server."""
    name = f"woodlot-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def options(endpoint, **extra) -> dict:
    """woodlot ``storage_options`` for the server."""
    return dict(CREDENTIALS, endpoint_url=endpoint, **extra)


def keys(endpoint, bucket_name) -> list:
    out = s3_client(endpoint).list_objects_v2(Bucket=bucket_name)
    return sorted(o["Key"] for o in out.get("Contents", []))


def race_stats(endpoint, reset: bool = False) -> dict:
    """The race server's request counts (see RACE_MOTO); ``reset`` restarts them."""
    import json
    import urllib.request

    url = f"{endpoint}/_woodlot/stats" + ("?reset=1" if reset else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())
