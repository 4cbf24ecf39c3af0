"""Opening the native store behind a location (a directory or an ``s3://`` URL).

Both ``VersionStore`` and ``LiveModel`` open stores, and ``LiveModel`` sits below
``VersionStore`` (``VersionStore.live`` returns one), so the one way to turn a location and its
``storage_options`` into a ``NativeStore`` lives here, below both.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Union

import numpy as np

from ._native import NativeStore


def open_native_store(
    location: Union[str, "os.PathLike[str]"], storage_options: Optional[Mapping[str, Any]] = None
) -> NativeStore:
    """The native store at ``location``, with ``storage_options`` as ``VersionStore`` takes them."""
    return NativeStore(os.fspath(location), _storage_options(storage_options))


def _storage_options(options: Optional[Mapping[str, Any]]) -> Optional[list]:
    """``storage_options`` as the native layer takes them: (key, string value) pairs."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise TypeError(f"storage_options must be a dict, got {type(options).__name__}")
    pairs = []
    for key, value in options.items():
        if not isinstance(key, str):
            raise TypeError(f"storage_options keys must be strings, got {key!r}")
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            value = "true" if value else "false"
        elif isinstance(value, (int, float, np.integer, np.floating)):
            value = repr(float(value)) if isinstance(value, (float, np.floating)) else str(int(value))
        elif not isinstance(value, str):
            raise TypeError(f"storage_options[{key!r}] must be a string, number or bool, got {type(value).__name__}")
        pairs.append((key, value))
    return pairs
