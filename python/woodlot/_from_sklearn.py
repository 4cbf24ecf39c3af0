"""Bringing scikit-learn forests into woodlot: ``from_sklearn`` and ``import_pickle``.

Why a module of its own: most woodlot users already have scikit-learn forests, often in
pickle or joblib files that run arbitrary code when loaded and break across scikit-learn
versions. This module converts a fitted ``RandomForestClassifier`` or ``ExtraTreesClassifier``
(their trees share one layout) into a woodlot forest once; from then on the model lives in
woodlot's model file, which runs no code. The trees' arrays are checked in Rust
(``src/forest/from_nodes.rs``): a damaged or hostile object gives a clear ``ValueError``.

Exactness: routing is identical for every input, NaN included (thresholds become the largest
``float32`` not above scikit-learn's ``float64`` threshold, which is the comparison scikit-learn
makes on its ``float32`` inputs). woodlot stores leaf fractions as ``float32``, so
``predict_proba`` agrees to ``float32`` rounding of each leaf value (a few 1e-8), not to 1e-12.

Loading a pickle is opt-in: :func:`import_pickle` refuses unless ``trust=True``, because
unpickling runs whatever code the file names.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from typing import Any, Optional, Union

import joblib
import numpy as np
import sklearn
from sklearn.ensemble import ExtraTreesClassifier as SkExtraTreesClassifier
from sklearn.ensemble import RandomForestClassifier as SkRandomForestClassifier
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.utils.validation import check_is_fitted

from ._estimator import RandomForestClassifier
from ._native import NativeForest
from ._params import recorded_params

__all__ = ["from_sklearn", "import_pickle", "read_trusted_pickle"]

_SUPPORTED = (SkRandomForestClassifier, SkExtraTreesClassifier)
_MAX_SEED = np.iinfo(np.int32).max

#: The node fields every supported layout (scikit-learn >= 1.3) has.
_REQUIRED_NODE_FIELDS = (
    "left_child",
    "right_child",
    "feature",
    "threshold",
    "impurity",
    "n_node_samples",
    "weighted_n_node_samples",
    "missing_go_to_left",
)


def _tree_arrays(index: int, tree: Any, n_classes: int, widths: Optional[list] = None) -> dict:
    """One scikit-learn tree's node arrays as ``NativeForest.from_node_arrays`` takes them.

    For a multi-output tree (``widths``: each output's class count) scikit-learn's values are
    ``(nodes, n_outputs, max classes)``, zero-padded; they become every output's values side
    by side, unpadded."""
    widths = list(widths) if widths else [n_classes]
    t = getattr(tree, "tree_", None)
    if t is None or not hasattr(t, "__getstate__"):
        raise ValueError(f"estimators_[{index}] has no fitted tree_")
    state = t.__getstate__()
    nodes = state.get("nodes") if isinstance(state, dict) else None
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None or not isinstance(
        values, np.ndarray
    ):
        raise ValueError(f"estimators_[{index}].tree_ has an unknown layout")
    missing = [f for f in _REQUIRED_NODE_FIELDS if f not in nodes.dtype.names]
    if missing:
        raise ValueError(
            f"estimators_[{index}].tree_ has the node layout of scikit-learn < 1.3 (no "
            f"{', '.join(missing)}); woodlot converts the layouts of scikit-learn 1.3 and "
            "later: load the forest with scikit-learn >= 1.3 and convert it there"
        )
    k = len(widths)
    if values.ndim != 3 or values.shape[1] != k or values.shape[0] != nodes.shape[0]:
        raise ValueError(
            f"estimators_[{index}].tree_ holds values of shape {values.shape}; a tree of {k} "
            f"output(s) over {nodes.shape[0]} nodes has ({nodes.shape[0]}, {k}, n_classes)"
        )
    if values.shape[2] != max(widths):
        raise ValueError(
            f"estimators_[{index}] has {values.shape[2]} classes, the forest {max(widths)}"
        )
    value = np.concatenate([values[:, j, :w] for j, w in enumerate(widths)], axis=1)

    def field(name, dtype):
        return np.ascontiguousarray(nodes[name], dtype=dtype)

    return {
        "children_left": field("left_child", np.int64),
        "children_right": field("right_child", np.int64),
        "feature": field("feature", np.int64),
        "threshold": field("threshold", np.float64),
        "impurity": field("impurity", np.float64),
        "n_node_samples": field("n_node_samples", np.int64),
        "weighted_n_node_samples": field("weighted_n_node_samples", np.float64),
        "missing_go_to_left": field("missing_go_to_left", np.uint8),
        "value": np.ascontiguousarray(value, dtype=np.float64),
    }


def from_sklearn(clf: Any) -> RandomForestClassifier:
    """A woodlot :class:`~woodlot.RandomForestClassifier` equivalent to a fitted scikit-learn
    ``RandomForestClassifier`` or ``ExtraTreesClassifier``.

    The result routes every input, NaN included, through the same leaves as ``clf`` (so
    ``apply`` agrees for depth-first trees), keeps ``clf``'s parameters, classes and feature
    names, and predicts its probabilities to ``float32`` rounding of the leaf values (woodlot
    stores leaves as ``float32``; the gap is a few 1e-8). Its trees are woodlot's from then on:
    save it, compare it, serve it. Multi-output forests convert too (``classes_`` per output).
    Other estimators and pre-1.3 tree layouts are refused with a ``TypeError`` or
    ``ValueError`` saying why.
    """
    if isinstance(clf, RandomForestClassifier):
        raise TypeError("this is already a woodlot RandomForestClassifier; nothing to convert")
    if not isinstance(clf, _SUPPORTED):
        raise TypeError(
            "woodlot.from_sklearn converts a fitted sklearn.ensemble.RandomForestClassifier or "
            f"ExtraTreesClassifier, got {type(clf).__module__}.{type(clf).__name__}"
        )
    check_is_fitted(clf, "estimators_")
    if not clf.estimators_:
        raise ValueError("the forest has no trees")
    n_features = int(clf.n_features_in_)
    widths = None
    classes: Any  # one array of labels, or a list of them for a multi-output forest
    if int(getattr(clf, "n_outputs_", 1)) > 1:
        # A multi-output forest: classes_ and n_classes_ per output.
        classes = [np.asarray(c) for c in clf.classes_]
        widths = [int(c) for c in clf.n_classes_]
        if [len(c) for c in classes] != widths:
            raise ValueError(f"classes_ has {[len(c) for c in classes]} labels, n_classes_ is "
                             f"{widths}")
        n_classes = sum(widths)
    else:
        classes = np.asarray(clf.classes_)
        n_classes = int(clf.n_classes_)
        if len(classes) != n_classes:
            raise ValueError(f"classes_ has {len(classes)} labels, n_classes_ is {n_classes}")
    trees = [_tree_arrays(i, t, n_classes, widths) for i, t in enumerate(clf.estimators_)]

    names = RandomForestClassifier._get_param_names()
    params = {k: v for k, v in clf.get_params(deep=False).items() if k in names}
    params["n_estimators"] = len(clf.estimators_)
    est = RandomForestClassifier(**params)
    rs = clf.random_state
    seed = int(rs) if isinstance(rs, (int, np.integer)) and 0 <= rs <= _MAX_SEED else 0
    roots = max(int(t["n_node_samples"][0]) for t in trees)
    n_samples = int(getattr(clf, "_n_samples", roots) or roots)
    bootstrap_size = getattr(clf, "_n_samples_bootstrap", None)
    native_params = recorded_params(est, classes, seed, bootstrap_size)
    native = NativeForest.from_node_arrays(
        n_features, n_classes, trees, native_params, n_samples, output_classes=widths
    )
    names_in = getattr(clf, "feature_names_in_", None)
    desc = {
        "n_features_in": n_features,
        "feature_names_in": None if names_in is None else [str(n) for n in names_in],
        "seed": seed,
    }
    est._restore(native, desc, classes=classes)
    if hasattr(clf, "oob_score_"):
        est.oob_score_ = float(clf.oob_score_)
        est.oob_decision_function_ = np.asarray(clf.oob_decision_function_)
    est._source = {
        "converted_from": f"{type(clf).__module__}.{type(clf).__name__}",
        "sklearn_version": str(getattr(clf, "_sklearn_version", sklearn.__version__)),
    }
    return est


def read_trusted_pickle(path: Union[str, os.PathLike], *, trust: bool = False) -> tuple:
    """``(object, source)``: the object in a pickle or joblib file and where it came from
    (``source_file``: the file's name, ``source_sha256``: the digest of its bytes), only when
    the caller says the file is trusted."""
    if trust is not True:
        raise PermissionError(
            "refusing to unpickle "
            f"{os.fspath(path)!r}: loading a pickle or joblib file runs whatever code the file "
            "names, so only load files you made or fully trust. Pass trust=True to load it "
            "once; woodlot then keeps the model in its own format, which runs no code."
        )
    with open(path, "rb") as f:
        data = f.read()
    source = {
        "source_file": os.path.basename(os.fspath(path)),
        "source_sha256": hashlib.sha256(data).hexdigest(),
    }
    # joblib.load reads joblib files and plain pickles alike. scikit-learn drops the version
    # that saved an estimator while unpickling and says it only in a warning: keep it from there
    # (and pass every warning on).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj = joblib.load(io.BytesIO(data))
    for w in caught:
        if isinstance(w.message, InconsistentVersionWarning):
            source.setdefault("sklearn_version", str(w.message.original_sklearn_version))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return obj, source


def import_pickle(path: Union[str, os.PathLike], *, trust: bool = False) -> RandomForestClassifier:
    """A woodlot forest from a pickle or joblib file holding a fitted scikit-learn
    ``RandomForestClassifier`` or ``ExtraTreesClassifier`` (see :func:`from_sklearn`).

    Refuses (``PermissionError``) unless ``trust=True``: unpickling runs code named by the file.
    The result records the file's name and SHA-256 and the scikit-learn version that saved it
    (``model._source``; ``VersionStore.import_sklearn`` stores them with the version).
    """
    obj, source = read_trusted_pickle(path, trust=trust)
    if not isinstance(obj, _SUPPORTED):
        raise TypeError(
            f"{source['source_file']} holds a {type(obj).__module__}.{type(obj).__name__}, not "
            "a fitted scikit-learn RandomForestClassifier or ExtraTreesClassifier"
        )
    est = from_sklearn(obj)
    est._source = {**est._source, **source}  # the saving version, when the pickle told it
    return est
