"""Saving and loading fitted models as woodlot model files: ``woodlot.dump``/``load``/
``dumps``/``loads``.

A model file is the checksummed envelope described in docs/ARCHITECTURE.md (the file format):
the trees in a bounded binary payload, plus JSON metadata that describes the
scikit-learn-facing estimator (parameters, classes and their dtype, feature names). Loading
validates every byte in Rust and never runs pickle or any code from the file; a damaged or
hostile file raises :class:`woodlot.CorruptModelError`. Pickling a fitted estimator carries the
same bytes.

This module is the public file API only: the bytes themselves are made and read by
``_description`` (which the estimator's pickling uses too), so imports point one way:
``_persist`` -> ``_estimator`` -> ``_description``.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Union

from ._description import read_model
from ._estimator import RandomForestClassifier
from ._native import write_file_durably

__all__ = ["dump", "dumps", "load", "loads"]

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


def dumps(model: RandomForestClassifier) -> bytes:
    """The model file of a fitted woodlot estimator, as bytes."""
    if not isinstance(model, RandomForestClassifier):
        raise TypeError(
            f"woodlot.dumps expects a fitted woodlot.RandomForestClassifier, got {type(model).__name__}"
        )
    return model._to_model_bytes()


def loads(data: bytes) -> RandomForestClassifier:
    """The fitted estimator stored in model-file bytes (see :func:`dumps`).

    Raises :class:`woodlot.CorruptModelError` if the bytes fail any check.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"woodlot.loads expects bytes, got {type(data).__name__}")
    native, meta = read_model(data)
    return RandomForestClassifier._from_model(native, meta)


def dump(model: RandomForestClassifier, file: PathOrFile) -> None:
    """Saves a fitted estimator to a path (written atomically and durably) or a binary file object.

    The counterpart of ``joblib.dump(model, path)``: ``woodlot.load(path)`` gives it back.
    """
    data = dumps(model)
    if hasattr(file, "write"):
        file.write(data)
        return
    # The core writes it as the store writes its records: temp file beside it, fsync, rename,
    # directory fsync, permissions from the umask; a failure leaves any old file whole.
    write_file_durably(os.fspath(file), data)


def load(file: PathOrFile) -> RandomForestClassifier:
    """Loads an estimator saved by :func:`dump` from a path or a binary file object.

    Never runs pickle or code from the file. Raises :class:`woodlot.CorruptModelError` (a
    ``ValueError``) if the file is damaged, truncated or not a woodlot model.
    """
    if hasattr(file, "read"):
        data = file.read()
    else:
        with open(os.fspath(file), "rb") as f:
            data = f.read()
    return loads(data)
