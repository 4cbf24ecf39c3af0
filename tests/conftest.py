"""Shared fixtures for woodlot's pytest suites."""

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
    from _reliability_util import Zygote

    z = Zygote()
    yield z
    z.close()
