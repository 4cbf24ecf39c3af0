"""Read-only views of the trees of a fitted forest, shaped like scikit-learn's.

Why a module of its own: scikit-learn users reach into ``estimators_[i].tree_`` (arrays named
``children_left``, ``threshold``, ``value``, ...), call ``get_depth()`` or a single tree's
``predict_proba``. The trees live in Rust; these classes are the thin Python face that fetches
one tree's arrays on first use and never copies the forest. They depend on nothing in woodlot
but the native forest object they are handed.

The class names and this module's objects are not pickled with an estimator (its
``estimators_`` are rebuilt on demand), but ``woodlot._estimator`` still re-exports both classes
so that pickles of a bare tree view made before this module existed keep loading.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["_ForestTree", "_TreeArrays"]


class _TreeArrays:
    """One tree's arrays under scikit-learn's ``tree_`` names (read-only snapshot)."""

    def __init__(self, arrays: dict, n_classes: int):
        self.node_count = int(arrays["node_count"])
        self.capacity = self.node_count
        self.max_depth = int(arrays["max_depth"])
        self.n_leaves = int(arrays["n_leaves"])
        self.n_features = int(arrays["n_features"])
        self.n_outputs = 1
        self.n_classes = np.array([n_classes], dtype=np.intp)
        self.children_left = arrays["children_left"]
        self.children_right = arrays["children_right"]
        self.feature = arrays["feature"]
        self.threshold = arrays["threshold"]
        self.missing_go_to_left = arrays["missing_go_to_left"]
        self.impurity = arrays["impurity"]
        self.n_node_samples = arrays["n_node_samples"]
        self.weighted_n_node_samples = arrays["weighted_n_node_samples"]
        self.value = arrays["value"]
        for a in arrays.values():
            if isinstance(a, np.ndarray):
                a.flags.writeable = False

    def __repr__(self):
        return f"<woodlot tree: {self.node_count} nodes, depth {self.max_depth}>"


class _ForestTree:
    """A lightweight view of one tree of a fitted forest, shaped like the
    ``DecisionTreeClassifier`` objects in scikit-learn's ``estimators_``.

    As in scikit-learn, the trees of a forest are trained on encoded labels, so ``classes_`` are
    the class codes ``0..n_classes-1`` and ``predict`` returns codes.
    """

    def __init__(self, forest, index: int):
        # ``forest`` is the fitted woodlot.RandomForestClassifier (not imported here: the
        # estimator imports this module). Only its ``_native`` and ``apply`` are used.
        self._forest = forest
        self._native = forest._native
        self._index = index
        self._tree: Optional[_TreeArrays] = None

    @property
    def tree_(self) -> _TreeArrays:
        if self._tree is None:
            self._tree = _TreeArrays(self._native.tree_arrays(self._index), int(self._native.n_classes))
        return self._tree

    @property
    def n_features_in_(self) -> int:
        return int(self._native.n_features)

    @property
    def n_classes_(self) -> int:
        return int(self._native.n_classes)

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes_, dtype=np.float64)

    @property
    def n_outputs_(self) -> int:
        return 1

    def get_depth(self) -> int:
        return self._native.max_depth(self._index)

    def get_n_leaves(self) -> int:
        return self._native.n_leaves(self._index)

    @property
    def feature_importances_(self) -> np.ndarray:
        t = self.tree_
        imp = np.zeros(self.n_features_in_, dtype=np.float64)
        inner = np.flatnonzero(t.children_left >= 0)
        w, i = t.weighted_n_node_samples, t.impurity
        left, right = t.children_left[inner], t.children_right[inner]
        gain = w[inner] * i[inner] - w[left] * i[left] - w[right] * i[right]
        np.add.at(imp, t.feature[inner], gain)
        total = imp.sum()
        return imp / total if total > 0 else imp

    def apply(self, X) -> np.ndarray:
        return self._forest.apply(X)[:, self._index]

    def predict_proba(self, X) -> np.ndarray:
        return self.tree_.value[self.apply(X), 0, :]

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1).astype(np.float64)

    def __repr__(self):
        return f"<woodlot forest tree {self._index}: {self._native.node_count(self._index)} nodes>"
