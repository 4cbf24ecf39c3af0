"""``woodlot.merge_forests``: one forest from forests people fitted in parts themselves.

Why a module of its own: it builds an estimator from other estimators, so it sits above
``_estimator`` (which the distributed fit path in ``_distributed`` sits below). The core
(``src/forest/merge.rs``) checks what only the trees know: feature and class counts, the tree
parameters, the binning (the training data's fingerprint: equal data, equal bins) and distinct
seeds. This module checks what only Python knows: that every part is a fitted woodlot forest,
and that the class labels and feature names agree. Every refusal is a ``ValueError`` naming
what differs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._description import describe
from ._estimator import RandomForestClassifier
from ._native import merge_forests as _native_merge

__all__ = ["merge_forests"]


def merge_forests(forests: Sequence[RandomForestClassifier]) -> RandomForestClassifier:
    """Merges fitted forests into one whose trees are all of theirs, in order (R's
    ``randomForest::combine``; scikit-learn has no equivalent).

    The parts must be fitted on the same ``X``, ``y`` and ``sample_weight`` (so their binning
    agrees), with the same classes, feature names and tree parameters, and each with its own
    ``random_state`` (parts sharing a seed would hold the same trees). Anything else raises a
    ``ValueError`` that names the difference. The result predicts with the mean over all trees
    and its ``feature_importances_`` are the mean of the trees' (scikit-learn's definition);
    it has ``n_estimators`` = the total tree count, the first part's other parameters, and no
    out-of-bag estimate (``oob_score=False``: that needs the training data).
    """
    parts = list(forests)
    if not parts:
        raise ValueError("merge_forests needs at least one fitted forest, got none")
    for k, f in enumerate(parts):
        if not isinstance(f, RandomForestClassifier) or "_native" not in f.__dict__:
            raise ValueError(
                f"merge_forests: forest {k} is not a fitted woodlot.RandomForestClassifier "
                f"(got {type(f).__module__}.{type(f).__name__}); fit it first"
            )
    head = parts[0]
    for k, f in enumerate(parts[1:], start=1):
        if not _same_classes(f.classes_, head.classes_):
            raise ValueError(
                f"cannot merge these forests: classes: forest 0 has {head.classes_!r}, "
                f"forest {k} has {f.classes_!r}"
            )
        names0 = _names(head)
        names = _names(f)
        if names != names0:
            raise ValueError(
                f"cannot merge these forests: feature names: forest 0 has {names0}, "
                f"forest {k} has {names}"
            )
    native = _native_merge([f._native for f in parts])
    desc = describe(head, strict=False)
    desc["params"]["n_estimators"] = native.n_trees
    desc["params"]["oob_score"] = False
    desc["oob_score"] = None
    desc["training"] = {
        "mode": "merged",
        "engine": None,
        "workers": None,
        "parts": [getattr(f, "_training", None) for f in parts],
    }
    params = dict(head.get_params(deep=False), n_estimators=native.n_trees, oob_score=False)
    merged = RandomForestClassifier(**params)
    classes = head.classes_
    merged._restore(
        native, desc,
        classes=[c.copy() for c in classes] if isinstance(classes, list) else classes.copy(),
    )
    return merged


def _same_classes(a, b) -> bool:
    """Equal labels of equal dtype; for multi-output forests, output by output."""
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
            and all(_same_classes(x, y) for x, y in zip(a, b))
        )
    return a.dtype == b.dtype and np.array_equal(a, b)


def _names(est: RandomForestClassifier):
    names = getattr(est, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]
