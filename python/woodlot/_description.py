"""The estimator description stored in a model file, and the model file's bytes.

Why a module of its own: a woodlot model file (see the file format in docs/ARCHITECTURE.md) is
a checksummed envelope that the Rust core writes and validates; its meta section carries one
JSON object the core treats as opaque, ``estimator``, which describes the scikit-learn face of
the model: constructor parameters, the class labels with their numpy dtype (so they round-trip
exactly), feature names, the fit's seed and OOB score. This module is the codec of that object
and the one place that turns model-file bytes into a native forest and back. The estimator
(pickling), ``woodlot.dump``/``load`` and the store all go through it, so it imports nothing of
theirs: it sits below them and only sees a fitted estimator's attributes.
"""

from __future__ import annotations

import json
import numbers
import re

import numpy as np

from ._errors import CorruptModelError
from ._native import NativeForest
from ._params import plain_number

__all__ = [
    "ESTIMATOR_FORMAT",
    "describe",
    "estimator_description",
    "params_from_json",
    "classes_from_json",
    "read_model",
    "write_model",
]

#: Format version of the estimator description stored in model files.
ESTIMATOR_FORMAT = 1

#: The ``class`` an estimator description names.
ESTIMATOR_CLASS = "RandomForestClassifier"


def read_model(data) -> tuple:
    """Validates model-file bytes in Rust: ``(NativeForest, meta dict)``.

    The core checks every byte, including that the meta is JSON holding an ``estimator``
    object (``src/format/meta.rs``), and raises :class:`woodlot.CorruptModelError` naming the
    failed check; the meta it hands back is its own serialisation, so it is not checked again.
    """
    native, meta_json = NativeForest.from_bytes(bytes(data))
    return native, json.loads(meta_json)


def write_model(native, desc: dict) -> bytes:
    """The model file of ``native`` with ``desc`` as its estimator description."""
    return native.to_bytes(json.dumps(desc, allow_nan=False))


def describe(est, *, strict: bool) -> dict:
    """JSON-safe description of the fitted estimator ``est`` (stored in the model file's meta).

    With ``strict=False`` (pickling) class labels that JSON cannot hold are left out: the pickle
    carries them itself.
    """
    return {
        "class": ESTIMATOR_CLASS,
        "format": ESTIMATOR_FORMAT,
        "params": _params_to_json(est.get_params(deep=False)),
        # One entry per output for a multi-output forest (scikit-learn's list of arrays).
        "classes": (
            [_classes_to_json(c, strict=strict) for c in est.classes_]
            if isinstance(est.classes_, list)
            else _classes_to_json(est.classes_, strict=strict)
        ),
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": (
            [str(n) for n in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None
        ),
        "n_outputs": int(getattr(est, "n_outputs_", 1)),
        "seed": int(est._seed),
        "oob_score": getattr(est, "oob_score_", None),
        # Whether bootstrap draws were weighted (estimators_samples_ replays only unweighted
        # ones without the weights), and where a converted model came from.
        "weighted_draws": est.__dict__.get("_bootstrap_weights") is not None
        or bool(est.__dict__.get("_weighted_draws_unknown", False)),
        "source": est.__dict__.get("_source"),
        # How it was trained (local threads, a joblib engine's workers, merged); the store's
        # lineage records it.
        "training": getattr(est, "_training", None),
    }


def estimator_description(meta: dict) -> dict:
    """The estimator description in a model file's meta, after checking its kind and format."""
    desc = meta["estimator"]  # a JSON object: the core checked that
    if desc.get("class") != ESTIMATOR_CLASS:
        raise CorruptModelError("the model file does not hold a RandomForestClassifier")
    if desc.get("format") != ESTIMATOR_FORMAT:
        raise CorruptModelError(f"unsupported estimator description format {desc.get('format')!r}")
    return desc


def _params_to_json(params: dict) -> dict:
    out = {}
    for name, value in params.items():
        if name == "random_state":
            value = value if isinstance(value, numbers.Integral) else None
        elif name == "class_weight" and isinstance(value, dict):
            value = {"dict": [[_label_to_json(k), float(v)] for k, v in value.items()]}
        elif name == "class_weight" and isinstance(value, list):
            value = {
                "list": [[[_label_to_json(k), float(v)] for k, v in d.items()] for d in value]
            }
        elif name == "oob_score" and callable(value):
            value = True
        elif name == "monotonic_cst" and value is not None:
            value = [int(v) for v in np.asarray(value).reshape(-1)]
        value = plain_number(value) if not isinstance(value, bool) else value
        out[name] = value
    return out


def params_from_json(params: dict, valid_names) -> dict:
    """Constructor keyword arguments from a description's ``params``; every name must be one
    of ``valid_names`` (the estimator's parameters)."""
    if not isinstance(params, dict):
        raise TypeError("params must be an object")
    valid = set(valid_names)
    out = {}
    for name, value in params.items():
        if name not in valid:
            raise ValueError(f"unknown parameter {name!r}")
        if name == "class_weight" and isinstance(value, dict):
            if "dict" in value:
                value = {_hashable(k): v for k, v in value["dict"]}
            else:
                value = [{_hashable(k): v for k, v in d} for d in value["list"]]
        out[name] = value
    return out


def _hashable(label):
    return tuple(label) if isinstance(label, list) else label


def _label_to_json(label):
    if isinstance(label, np.generic):
        return label.item()
    return label


def _classes_to_json(classes: np.ndarray, *, strict: bool) -> dict:
    """Class labels with their numpy dtype, so they round-trip exactly."""
    dtype = classes.dtype
    if dtype.kind in "biuf":
        values = classes.tolist()
    elif dtype.kind == "U":
        values = [str(v) for v in classes]
    elif dtype.kind == "O" and all(
        isinstance(v, (str, bool, int, float, np.generic)) for v in classes
    ):
        values = [_label_to_json(v) for v in classes]
    elif strict:
        raise TypeError(
            f"class labels of dtype {dtype} cannot be stored in a model file; use str or "
            "numeric labels"
        )
    else:
        return {"dtype": None, "values": None}
    return {"dtype": dtype.str, "values": values}


#: The dtype strings a model file may name for its class labels.
_DTYPE_STR = re.compile(r"[<>|=]?[biufUO][0-9]{0,4}")


def classes_from_json(desc: dict) -> np.ndarray:
    """The class labels of a description's ``classes`` (see ``_classes_to_json``)."""
    raw = desc["dtype"]
    # Only what ``dtype.str`` writes for the kinds stored ("<i8", "|b1", "<U5", "|O"): numpy
    # parses other strings with its own grammar (a damaged "<i8," raised SyntaxError).
    if not isinstance(raw, str) or not _DTYPE_STR.fullmatch(raw):
        raise ValueError(f"unsupported class dtype {raw!r}")
    dtype = np.dtype(raw)
    values = desc["values"]
    if not isinstance(values, list):
        raise TypeError("classes must be a list")
    if dtype.kind == "O":
        classes = np.empty(len(values), dtype=object)
        classes[:] = values
        return classes
    if dtype.kind not in "biufU":
        raise ValueError(f"unsupported class dtype {dtype}")
    return np.asarray(values, dtype=dtype)
