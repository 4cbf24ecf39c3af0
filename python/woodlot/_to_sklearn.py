"""woodlot trees as real scikit-learn objects: ``DecisionTreeClassifier`` and the whole forest.

Why a module of its own: users hand ``estimators_[i]`` to ``sklearn.tree.plot_tree``,
``export_text``, ``export_graphviz`` or ``clone`` and expect a real ``DecisionTreeClassifier``
with a working ``tree_`` (``apply``, ``decision_path``, ``predict``,
``compute_feature_importances``); and ``model.to_sklearn()`` must give a scikit-learn forest
that predicts exactly what woodlot predicts. Both need the same thing: one woodlot tree's arrays
(``NativeForest.tree_arrays``) poured into scikit-learn's ``sklearn.tree._tree.Tree`` through
its own pickling state, which scikit-learn validates.

Why the predictions are identical, not merely close: woodlot compares ``float32`` inputs with
``float32`` thresholds; scikit-learn casts inputs to ``float32`` and compares with an ``f64``
threshold. An ``f32`` threshold widened to ``f64`` routes every ``float32`` input the same way
(NaN follows ``missing_go_to_left`` in both). Leaf values are ``f32`` fractions widened exactly,
so every tree returns the same numbers and the forest's mean differs only by where the division
by the number of trees rounds (one unit in the last place at most).

This module imports nothing of woodlot: it sees plain arrays and parameter dicts.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier as SkRandomForestClassifier
from sklearn.tree import DecisionTreeClassifier
from sklearn.tree._tree import NODE_DTYPE, Tree

__all__ = ["TREE_PARAMS", "decision_tree", "forest_to_sklearn", "resolved_max_features"]

#: The forest parameters each tree of a scikit-learn forest carries (``estimator_params``).
TREE_PARAMS = (
    "criterion",
    "max_depth",
    "min_samples_split",
    "min_samples_leaf",
    "min_weight_fraction_leaf",
    "max_features",
    "max_leaf_nodes",
    "min_impurity_decrease",
    "ccp_alpha",
    "monotonic_cst",
)

#: Node fields this module writes; a scikit-learn whose node layout differs is refused.
_NODE_FIELDS = (
    "left_child",
    "right_child",
    "feature",
    "threshold",
    "impurity",
    "n_node_samples",
    "weighted_n_node_samples",
    "missing_go_to_left",
)


def _sklearn_version() -> tuple:
    parts = []
    for p in sklearn.__version__.split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_sklearn_layout() -> None:
    """Refuses a scikit-learn whose trees cannot hold woodlot's (no missing-value routing)."""
    names = tuple(NODE_DTYPE.names or ())
    if _sklearn_version() < (1, 4) or any(f not in names for f in _NODE_FIELDS):
        raise NotImplementedError(
            f"scikit-learn {sklearn.__version__} cannot hold woodlot's trees exactly: its "
            "forests route no missing values (NaN), which woodlot's trees learn at every "
            "split. Install scikit-learn >= 1.4 to convert."
        )


def resolved_max_features(max_features: Any, n_features: int) -> int:
    """scikit-learn's ``max_features_`` for a tree: the number of features each split draws."""
    if max_features == "sqrt":
        return max(1, int(math.sqrt(n_features)))
    if max_features == "log2":
        return max(1, int(math.log2(n_features)))
    if max_features is None:
        return n_features
    if isinstance(max_features, numbers.Integral):
        return int(max_features)
    return max(1, int(float(max_features) * n_features))


def decision_tree(
    arrays: dict,
    *,
    n_features: int,
    n_classes: int,
    params: dict,
    random_state: Optional[int],
    output_classes: Optional[list] = None,
) -> DecisionTreeClassifier:
    """A fitted ``DecisionTreeClassifier`` equal in prediction to one woodlot tree.

    ``arrays`` is ``NativeForest.tree_arrays(i)``; ``params`` the forest's parameters (those in
    ``TREE_PARAMS`` become the tree's, as scikit-learn's forest sets them); ``random_state`` the
    tree's own seed. As in a scikit-learn forest, the tree was fitted on encoded labels:
    ``classes_`` are ``0.0 .. n_classes - 1`` and ``predict`` returns them.

    With ``output_classes`` (each output's class count, two or more outputs, summing to
    ``n_classes``) the tree is a multi-output one as scikit-learn builds it: ``tree_.value`` of
    shape ``(nodes, n_outputs, max classes)``, each output's fractions zero-padded on the right,
    and ``classes_`` / ``n_classes_`` per output.
    """
    check_sklearn_layout()
    tree_params = {k: params[k] for k in TREE_PARAMS if k in params}
    est = DecisionTreeClassifier(random_state=random_state, **tree_params)
    n = int(arrays["node_count"])
    nodes = np.zeros(n, dtype=NODE_DTYPE)
    nodes["left_child"] = arrays["children_left"]
    nodes["right_child"] = arrays["children_right"]
    nodes["feature"] = arrays["feature"]
    nodes["threshold"] = arrays["threshold"]
    nodes["impurity"] = arrays["impurity"]
    nodes["n_node_samples"] = arrays["n_node_samples"]
    nodes["weighted_n_node_samples"] = arrays["weighted_n_node_samples"]
    nodes["missing_go_to_left"] = arrays["missing_go_to_left"]
    flat = np.ascontiguousarray(arrays["value"], dtype=np.float64).reshape(n, n_classes)
    widths = list(output_classes) if output_classes and len(output_classes) > 1 else [n_classes]
    k = len(widths)
    values = np.zeros((n, k, max(widths)), dtype=np.float64)
    start = 0
    for j, width in enumerate(widths):
        values[:, j, :width] = flat[:, start : start + width]
        start += width
    tree = Tree(int(n_features), np.array(widths, dtype=np.intp), k)
    tree.__setstate__(
        {
            "max_depth": int(arrays["max_depth"]),
            "node_count": n,
            "nodes": nodes,
            "values": values,
        }
    )
    est.tree_ = tree
    est.n_features_in_ = int(n_features)
    if k > 1:
        est.n_outputs_ = k
        est.classes_ = [np.arange(w, dtype=np.float64) for w in widths]
        est.n_classes_ = np.array(widths, dtype=np.intp)
    else:
        est.n_outputs_ = 1
        est.classes_ = np.arange(n_classes, dtype=np.float64)
        est.n_classes_ = int(n_classes)
    est.max_features_ = resolved_max_features(est.max_features, int(n_features))
    return est


#: woodlot parameters a scikit-learn forest takes as they are (``verbose`` and ``n_jobs`` too:
#: they change how it runs, never what it predicts).
_FOREST_PARAMS = TREE_PARAMS + (
    "n_estimators",
    "bootstrap",
    "oob_score",
    "n_jobs",
    "random_state",
    "verbose",
    "warm_start",
    "class_weight",
    "max_samples",
)


def forest_to_sklearn(
    params: dict,
    trees: list,
    *,
    classes: np.ndarray,
    n_features: int,
    feature_names: Optional[np.ndarray],
    n_samples: int,
    oob: Optional[tuple] = None,
) -> SkRandomForestClassifier:
    """A fitted ``sklearn.ensemble.RandomForestClassifier`` holding ``trees`` (see
    :func:`decision_tree`), with woodlot's constructor ``params``, the original ``classes``,
    ``feature_names`` (or None) and ``oob`` as ``(oob_score_, oob_decision_function_)``.
    ``classes`` is a list of arrays, one per output, for a multi-output forest."""
    check_sklearn_layout()
    sk_params = {k: v for k, v in params.items() if k in _FOREST_PARAMS}
    forest = SkRandomForestClassifier(**sk_params)
    forest.estimator_ = DecisionTreeClassifier()
    forest.estimators_ = list(trees)
    forest.classes_ = classes
    if isinstance(classes, list):
        forest.n_classes_ = [len(c) for c in classes]
        forest.n_outputs_ = len(classes)
    else:
        forest.n_classes_ = len(classes)
        forest.n_outputs_ = 1
    forest.n_features_in_ = int(n_features)
    if feature_names is not None:
        forest.feature_names_in_ = np.asarray(feature_names, dtype=object)
    forest._n_samples = int(n_samples)
    if oob is not None:
        forest.oob_score_, forest.oob_decision_function_ = oob
    return forest
