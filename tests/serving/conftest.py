"""Fixtures of the S3 serving tests (the live model's and the HTTP server's): a real moto server
on a loopback port that a test can stop and start again, and no AWS_* variables from the
environment, so only the options a test passes reach the store."""

import os

import pytest

from tests.serving._live_util import Moto, free_port


@pytest.fixture()
def no_aws_environment(monkeypatch):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)


@pytest.fixture()
def moto(tmp_path):
    server = Moto(free_port(), tmp_path / "moto.log")
    server.start()
    yield server
    server.stop()
