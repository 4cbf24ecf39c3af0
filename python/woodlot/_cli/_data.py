"""Evaluation data for ``compare`` and ``promote --if-better``: a CSV or Parquet file, split
into the feature columns (named, so the store checks them against each version's feature
names) and the target column.

CSV is read with pandas when it is installed, else with the standard library's ``csv`` module
and numpy (woodlot itself needs neither pandas nor pyarrow). Parquet needs pandas and pyarrow:
``pip install "woodlot[parquet]"``.
"""

from __future__ import annotations

import csv
import os
from typing import Any, List, Tuple

import numpy as np

try:  # optional: faster CSV, and the only Parquet reader
    import pandas as _pd
except ImportError:  # pragma: no cover - exercised by the "no pandas" subprocess test
    _pd = None

__all__ = ["read_dataset", "Columns", "data_arguments"]

PARQUET_HINT = 'reading Parquet needs pandas and pyarrow: pip install "woodlot[parquet]"'


class Columns:
    """A float matrix with column names: what the store's ``compare`` reads names from
    (``.columns``) and converts with ``np.asarray`` (``__array__``), without pandas."""

    def __init__(self, names: List[str], values: np.ndarray) -> None:
        self.columns = names
        self.values = values

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.values if dtype is None else self.values.astype(dtype)

    def __len__(self) -> int:
        return self.values.shape[0]


def data_arguments(parser: Any, required: bool) -> None:
    """``--data FILE`` and ``--target COLUMN``."""
    parser.add_argument("--data", required=required, metavar="FILE",
                        help="evaluation rows: a .csv (header row) or .parquet file")
    parser.add_argument("--target", required=required, metavar="COLUMN",
                        help="the column holding the true labels; every other column is a feature")


def _labels(raw: List[str]) -> np.ndarray:
    """CSV labels as ints if they all are, else floats if they all are, else strings."""
    for kind in (int, float):
        try:
            return np.asarray([kind(v) for v in raw])
        except ValueError:
            continue
    return np.asarray(raw, dtype=object)


def _read_csv_stdlib(path: str) -> Tuple[List[str], List[List[str]]]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: the file is empty (a header row naming the columns is needed)") from None
        rows = [r for r in reader if r]
    for i, r in enumerate(rows):
        if len(r) != len(header):
            raise ValueError(f"{path}: row {i + 2} has {len(r)} fields, the header has {len(header)}")
    return header, rows


def read_dataset(path: str, target: str) -> Tuple[Any, Any]:
    """``(X, y)`` from a CSV or Parquet file; ``X`` keeps the column names."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no data file {path!r}")
    is_parquet = path.lower().endswith((".parquet", ".pq"))
    if is_parquet:
        if _pd is None:
            raise ImportError(PARQUET_HINT)
        try:
            frame = _pd.read_parquet(path)
        except ImportError:
            raise ImportError(PARQUET_HINT) from None
        except Exception as e:  # pyarrow's own errors (not a Parquet file, ...)
            raise ValueError(f"{path}: not a readable Parquet file ({e})") from None
    elif _pd is not None:
        try:
            frame = _pd.read_csv(path)
        except _pd.errors.EmptyDataError:
            raise ValueError(f"{path}: the file is empty (a header row naming the columns is needed)") from None
        except _pd.errors.ParserError as e:
            raise ValueError(f"{path}: not a readable CSV file ({str(e).strip()})") from None
    else:
        header, rows = _read_csv_stdlib(path)
        if target not in header:
            raise ValueError(f"{path}: no column {target!r} (columns: {', '.join(header)})")
        t = header.index(target)
        names = [h for i, h in enumerate(header) if i != t]
        try:
            values = np.asarray([[float(v) if v != "" else np.nan for i, v in enumerate(r) if i != t] for r in rows],
                                dtype=np.float64).reshape(len(rows), len(names))
        except ValueError as e:
            raise ValueError(f"{path}: feature columns must be numbers ({e})") from None
        return Columns(names, values), _labels([r[t] for r in rows])
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise ValueError(f"{path}: no column {target!r} (columns: {', '.join(columns)})")
    y = frame[target]
    X = frame.drop(columns=[target])
    bad = [str(c) for c in X.columns if X[c].dtype.kind not in "biuf"]
    if bad:
        raise ValueError(f"{path}: feature columns must be numbers; not numeric: {', '.join(bad)}")
    return X, y
