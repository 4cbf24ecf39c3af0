"""Shared fixtures for woodlot's pytest suites (tests/forest, tests/store, tests/reliability).

``tests`` is a package (tests/__init__.py and one in each folder), so test modules and helpers
import each other by their dotted names from the repository root
(``from tests.reliability._checks import check_store``); pytest's default import mode puts the
repository root on ``sys.path``, and the fork server of the reliability suite does the same.
"""

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.model_selection import train_test_split


@pytest.fixture(scope="session")
def wine():
    """The tutorial split of the wine data: (X_train, X_test, y_train, y_test)."""
    X, y = load_wine(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)


@pytest.fixture(scope="session")
def wine_frame():
    """The wine data as a DataFrame and a Series, split as in the tutorial."""
    pytest.importorskip("pandas")
    data = load_wine(as_frame=True)
    return train_test_split(
        data.data, data.target, test_size=0.3, random_state=42, stratify=data.target
    )


@pytest.fixture(scope="session")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def zygote():
    """A helper process that imported woodlot once and forks a fresh child per trial (the
    reliability suites run thousands of trials; importing woodlot costs about 2 s)."""
    from tests.reliability._zygote import Zygote

    z = Zygote()
    yield z
    z.close()


@pytest.fixture()
def no_aws_environment(monkeypatch):
    """Options come from the test alone; nothing in the environment can redirect a request."""
    import os

    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """A threaded moto S3 server (``python -m moto.server``, as people run it) on loopback, for
    one test module; its URL. Helpers for it are in tests/_moto.py."""
    pytest.importorskip("moto")
    from tests._moto import start_moto, stop_moto

    proc, endpoint, log = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    yield endpoint
    stop_moto(proc, log)


@pytest.fixture(scope="module")
def moto_race_endpoint(tmp_path_factory):
    """moto's S3 app under a multi-threaded server that, like S3, makes each key's writes
    atomic, and holds every request 10 ms to widen race windows; for one test module. Its
    request counts (``tests._moto.race_stats``) show whether requests overlapped."""
    pytest.importorskip("moto")
    from tests._moto import start_moto, stop_moto

    proc, endpoint, log = start_moto(tmp_path_factory.mktemp("moto-race") / "moto.log", race_delay=0.01)
    yield endpoint
    stop_moto(proc, log)
