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

# moto's WSGI app under a single-threaded werkzeug server: one request at a time.
SINGLE_THREADED_MOTO = textwrap.dedent(
    """
    import os, sys
    from werkzeug.serving import run_simple
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    os.environ["MOTO_PORT"] = sys.argv[1]
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=False, processes=1)
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


def start_moto(log_path, single_threaded: bool = False):
    """Starts a moto server: ``python -m moto.server``, or with ``single_threaded`` the server
    above; returns (process, endpoint URL, open log file)."""
    port = free_port()
    if single_threaded:
        cmd = [sys.executable, "-c", SINGLE_THREADED_MOTO, str(port)]
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

