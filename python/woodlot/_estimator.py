"""``woodlot.RandomForestClassifier``: scikit-learn's random forest classifier, trained in Rust.

This module is the scikit-learn face of the native forest (``woodlot._native.NativeForest``):
it validates parameters and input once, with scikit-learn's own validators so errors and
warnings match scikit-learn's word for word, encodes labels, and delegates every piece of heavy
work to Rust. Prediction has a lean path: a 2-D float32/float64 numpy array handed to a model
fitted without feature names goes straight to Rust, which checks shape and values itself.
"""

from __future__ import annotations

import json
import numbers
import warnings

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier as _SkRandomForestClassifier
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._errors import CorruptModelError
from ._native import NativeForest

try:  # scikit-learn >= 1.3: validates parameters once, skips nested validation
    from sklearn.base import _fit_context
except ImportError:  # pragma: no cover - very old scikit-learn
    _fit_context = None

__all__ = ["RandomForestClassifier"]

_MAX_SEED = np.iinfo(np.int32).max
_FLOAT_DTYPES = (np.float64, np.float32)
_LEAN_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

#: Format version of the estimator description stored in model files.
ESTIMATOR_FORMAT = 1

#: Constructor parameters forwarded to the native forest (the rest shape how a fit runs, or are
#: handled here in Python).
_NATIVE_PARAMS = (
    "n_estimators",
    "criterion",
    "max_depth",
    "min_samples_split",
    "min_samples_leaf",
    "min_weight_fraction_leaf",
    "max_features",
    "max_leaf_nodes",
    "min_impurity_decrease",
    "bootstrap",
    "ccp_alpha",
)


def _plain_number(value):
    """numpy scalars and bools to plain ``int``/``float`` (scikit-learn treats bools as ints)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _n_samples_bootstrap(n_samples, max_samples, sample_weight):
    """scikit-learn 1.9's bootstrap size (``ensemble._bootstrap._get_n_samples_bootstrap``)."""
    if max_samples is None:
        return n_samples
    if isinstance(max_samples, numbers.Integral):
        return int(max_samples)
    if sample_weight is None:
        weighted = n_samples
        msg = f"the number of samples is {weighted} "
    else:
        weighted = sample_weight.sum()
        msg = f"the total sum of sample weights is {weighted} "
    n = max(int(max_samples * weighted), 1)
    if n < max(10, n_samples ** (1 / 3)):
        warnings.warn(
            f"Using the fractional value {max_samples=} when {msg}"
            f"results in a low number ({n}) of bootstrap samples. "
            "We recommend passing `max_samples` as an integer instead."
        )
    return n


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

    def __init__(self, forest: "RandomForestClassifier", index: int):
        self._forest = forest
        self._native = forest._native
        self._index = index
        self._tree = None

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


class RandomForestClassifier(ClassifierMixin, BaseEstimator):
    """A random forest classifier trained and evaluated in Rust.

    A drop-in for :class:`sklearn.ensemble.RandomForestClassifier` (scikit-learn 1.9): the same
    constructor parameters with the same names, defaults and meaning, the same methods and
    fitted attributes, validated by scikit-learn's own code. Trees are grown on bootstrap
    samples with a fresh draw of ``max_features`` candidate features at every split; missing
    values (NaN) are learned at each split; ``predict_proba`` is the mean of the trees' leaf
    class fractions. The same ``random_state`` gives bit-identical models for every
    ``n_jobs``.

    Differences from scikit-learn: a single output only (``y`` must be 1-D); sparse ``X`` is
    densified; each tree is seeded from ``(random_state, tree index)`` with woodlot's own
    generator, so models are statistically equivalent to scikit-learn's but not identical.
    ``estimators_`` holds light read-only tree views (``tree_`` arrays, ``get_depth()``,
    ``get_n_leaves()``, ``predict_proba``), not ``DecisionTreeClassifier`` objects.

    Persist with :func:`woodlot.dump` / :func:`woodlot.load` (a checksummed file, never
    pickle) or with pickle/joblib, which carry the same bytes.
    """

    _parameter_constraints: dict = dict(_SkRandomForestClassifier._parameter_constraints)

    def __init__(
        self,
        n_estimators=100,
        *,
        criterion="gini",
        max_depth=None,
        min_samples_split=2,
        min_samples_leaf=1,
        min_weight_fraction_leaf=0.0,
        max_features="sqrt",
        max_leaf_nodes=None,
        min_impurity_decrease=0.0,
        bootstrap=True,
        oob_score=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        class_weight=None,
        ccp_alpha=0.0,
        max_samples=None,
        monotonic_cst=None,
    ):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.class_weight = class_weight
        self.ccp_alpha = ccp_alpha
        self.max_samples = max_samples
        self.monotonic_cst = monotonic_cst

    # ------------------------------------------------------------------------------------------
    # scikit-learn protocol
    # ------------------------------------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.monotonic_cst is None
        tags.input_tags.sparse = True  # accepted and densified
        tags.classifier_tags.multi_label = False
        return tags

    def _allow_nan(self) -> bool:
        return self.monotonic_cst is None

    def _validate_X(self, X, *, reset: bool):
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype=_FLOAT_DTYPES,
            ensure_all_finite="allow-nan" if self._allow_nan() else True,
        )
        if issparse(X):
            X = X.toarray()
        return X

    def _validate_X_predict(self, X):
        check_is_fitted(self, "_native")
        return self._validate_X(X, reset=False)

    # ------------------------------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Build a forest of trees from the training set (X, y).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training samples; any real dtype and memory layout; NaN marks a missing value.
        y : array-like of shape (n_samples,)
            Class labels (ints, strings, bools, ...).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights; None weighs every sample 1.

        Returns
        -------
        self : RandomForestClassifier
        """
        if _fit_context is None:  # pragma: no cover
            self._validate_params()
        return self._fit(X, y, sample_weight)

    if _fit_context is not None:
        fit = _fit_context(prefer_skip_nested_validation=True)(fit)

    def _fit(self, X, y, sample_weight):
        if issparse(y):
            raise ValueError("sparse multilabel-indicator for y is not supported.")
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            accept_sparse="csr",
            dtype=_FLOAT_DTYPES,
            ensure_all_finite="allow-nan" if self._allow_nan() else True,
        )
        if issparse(X):
            X = X.toarray()
        y = np.atleast_1d(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change the "
                "shape of y to (n_samples,), for example using ravel().",
                DataConversionWarning,
                stacklevel=3,
            )
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                "woodlot's RandomForestClassifier supports a single output only: y must be 1-D, "
                f"got y with shape {y.shape}. Multi-output and multilabel targets are not "
                "supported; fit one classifier per output instead."
            )
        check_classification_targets(y)
        classes, y_codes = np.unique(y, return_inverse=True)
        y_codes = np.ascontiguousarray(y_codes.reshape(-1), dtype=np.uint32)
        n_classes = len(classes)

        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            sample_weight = np.ascontiguousarray(sample_weight, dtype=np.float64)

        if not self.bootstrap and self.max_samples is not None:
            raise ValueError(
                "`max_sample` cannot be set if `bootstrap=False`. Either switch to "
                "`bootstrap=True` or set `max_sample=None`."
            )
        if not self.bootstrap and self.oob_score:
            raise ValueError("Out of bag estimation only available if bootstrap=True")

        previous = getattr(self, "_native", None) if self.warm_start else None
        if previous is not None:
            n_existing = previous.n_trees
            if self.n_estimators < n_existing:
                raise ValueError(
                    "n_estimators=%d must be larger or equal to len(estimators_)=%d when "
                    "warm_start==True" % (self.n_estimators, n_existing)
                )
            if len(classes) != len(self.classes_) or np.any(classes != self.classes_):
                raise ValueError(
                    "warm_start=True needs the same classes as the first fit: got "
                    f"{classes!r}, the forest was fitted on {self.classes_!r}"
                )
            if self.n_estimators == n_existing:
                warnings.warn(
                    "Warm-start fitting without increasing n_estimators does not fit new trees."
                )
                return self
            seed = self._seed
        else:
            seed = int(check_random_state(self.random_state).randint(_MAX_SEED))

        params = self._native_params(
            y, classes, sample_weight, X.shape[0], seed, bool(self.oob_score)
        )
        native = NativeForest.fit(
            X,
            y_codes,
            n_classes,
            sample_weight,
            params,
            self.n_jobs,
            previous,
        )

        self._native = native
        self._seed = seed
        self.classes_ = classes
        self.n_classes_ = n_classes
        self.n_outputs_ = 1
        self._estimators = None
        self._lean = not hasattr(self, "feature_names_in_") and self._allow_nan()
        self._feature_names = (
            list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None
        )
        if self.oob_score:
            self._set_oob(y_codes)
        else:
            self.__dict__.pop("oob_score_", None)
            self.__dict__.pop("oob_decision_function_", None)
        return self

    def _native_params(self, y, classes, sample_weight, n_samples, seed, oob) -> dict:
        params = {name: _plain_number(getattr(self, name)) for name in _NATIVE_PARAMS}
        params["bootstrap"] = bool(self.bootstrap)
        if params["criterion"] == "log_loss":
            params["criterion"] = "entropy"
        params["oob_score"] = oob
        params["random_state"] = seed

        cw = self.class_weight
        if isinstance(cw, list):
            if len(cw) != 1:
                raise ValueError(
                    "class_weight as a list is for multi-output targets (one dict per output); "
                    f"woodlot supports a single output, got a list of {len(cw)}"
                )
            cw = cw[0]
        if cw is None:
            params["class_weight"] = None
        elif isinstance(cw, dict):
            params["class_weight"] = [float(w) for w in compute_class_weight(cw, classes=classes, y=y)]
        elif cw == "balanced_subsample" and self.bootstrap:
            if self.warm_start:
                self._warn_class_weight_preset()
            params["class_weight"] = "balanced_subsample"
        else:  # "balanced", or "balanced_subsample" without bootstrap (the same thing)
            if self.warm_start:
                self._warn_class_weight_preset()
            weights = compute_class_weight(
                "balanced", classes=classes, y=y, sample_weight=sample_weight
            )
            params["class_weight"] = [float(w) for w in weights]

        if self.bootstrap and self.max_samples is not None:
            params["max_samples"] = _n_samples_bootstrap(n_samples, self.max_samples, sample_weight)
        else:
            params["max_samples"] = None

        if self.monotonic_cst is not None:
            cst = np.asarray(self.monotonic_cst)
            params["monotonic_cst"] = [int(c) for c in cst.reshape(-1)] if cst.ndim == 1 else None
            if cst.ndim != 1 or not np.all(np.isin(cst, (-1, 0, 1))):
                raise ValueError("monotonic_cst must be None or an array-like of -1, 0 or 1.")
        return params

    @staticmethod
    def _warn_class_weight_preset():
        warnings.warn(
            'class_weight presets "balanced" or "balanced_subsample" are not recommended for '
            "warm_start if the fitted data differs from the full dataset. In order to use "
            '"balanced" weights, use compute_class_weight ("balanced", classes, y). In place '
            "of y you can use a large enough sample of the full training set target to "
            "properly estimate the class frequency distributions. Pass the resulting weights "
            "as the class_weight parameter."
        )

    def _set_oob(self, y_codes):
        decision = self._native.oob_decision_function()
        if decision is None:  # pragma: no cover - the core always returns one when asked
            raise RuntimeError("the native forest returned no out-of-bag estimate")
        if np.any(decision.sum(axis=1) == 0):
            warnings.warn(
                "Some inputs do not have OOB scores. This probably means too few trees were "
                "used to compute any reliable OOB estimates.",
                UserWarning,
            )
        scorer = self.oob_score if callable(self.oob_score) else accuracy_score
        self.oob_decision_function_ = decision
        self.oob_score_ = float(scorer(y_codes, np.argmax(decision, axis=1)))

    # ------------------------------------------------------------------------------------------
    # predict
    # ------------------------------------------------------------------------------------------

    def _lean_input(self, X):
        """``X`` itself, or its values, if it can go to Rust without scikit-learn's validation
        (Rust checks shape and values itself); None if it needs the full validation.

        Two cases qualify: a 2-D float32/float64 numpy array for a model fitted without feature
        names, and a DataFrame whose columns are exactly the fitted feature names (so no
        feature-name warning is due) and whose values are all float32/float64.
        """
        if "_native" not in self.__dict__:
            return None
        if type(X) is np.ndarray:
            if (
                self._lean
                and X.ndim == 2
                and X.dtype in _LEAN_DTYPES
                and X.shape[0] > 0
                and X.shape[1] == self.n_features_in_
            ):
                return X
            return None
        names = self.__dict__.get("_feature_names")
        if names is not None and type(X).__name__ == "DataFrame" and self._allow_nan():
            try:
                if list(X.columns) != names or X.shape[0] == 0:
                    return None
                values = X.to_numpy()
            except Exception:  # an exotic frame: let scikit-learn's validation judge it
                return None
            if type(values) is np.ndarray and values.ndim == 2 and values.dtype in _LEAN_DTYPES:
                return values
        return None

    def predict_proba(self, X):
        """Class probabilities: the mean of the trees' leaf class fractions.

        Returns an array of shape (n_samples, n_classes), columns in the order of ``classes_``.
        """
        lean = self._lean_input(X)
        if lean is not None:
            try:
                return self._native.predict_proba(lean, self.n_jobs)
            except (ValueError, TypeError):
                pass  # validate below, for scikit-learn's exact message
        X = self._validate_X_predict(X)
        return self._native.predict_proba(X, self.n_jobs)

    def predict(self, X):
        """Predicted class labels (in the original label type)."""
        lean = self._lean_input(X)
        if lean is not None:
            try:
                return self.classes_.take(self._native.predict(lean, self.n_jobs))
            except (ValueError, TypeError):
                pass
        X = self._validate_X_predict(X)
        return self.classes_.take(self._native.predict(X, self.n_jobs))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba)

    def apply(self, X):
        """Index of the leaf each sample lands in, per tree: (n_samples, n_estimators)."""
        lean = self._lean_input(X)
        if lean is not None:
            try:
                return self._native.apply(lean, self.n_jobs)
            except (ValueError, TypeError):
                pass
        X = self._validate_X_predict(X)
        return self._native.apply(X, self.n_jobs)

    def decision_path(self, X):
        """The nodes each sample passes through, as scikit-learn's ``decision_path``.

        Returns ``(indicator, n_nodes_ptr)``: a CSR matrix of shape (n_samples, total nodes) with
        a 1 where a sample passes through a node, and the column offsets of each tree.
        """
        from scipy.sparse import csr_matrix, hstack

        leaves = self.apply(X)
        n = leaves.shape[0]
        blocks, ptr = [], [0]
        for i, tree in enumerate(self.estimators_):
            t = tree.tree_
            parent = np.full(t.node_count, -1, dtype=np.intp)
            inner = np.flatnonzero(t.children_left >= 0)
            parent[t.children_left[inner]] = inner
            parent[t.children_right[inner]] = inner
            rows, cols = [], []
            node = leaves[:, i].astype(np.intp)
            row = np.arange(n)
            while node.size:
                rows.append(row)
                cols.append(node)
                node = parent[node]
                keep = node >= 0
                node, row = node[keep], row[keep]
            r, c = np.concatenate(rows), np.concatenate(cols)
            blocks.append(
                csr_matrix((np.ones(r.size, dtype=np.int64), (r, c)), shape=(n, t.node_count))
            )
            ptr.append(ptr[-1] + t.node_count)
        return hstack(blocks).tocsr(), np.asarray(ptr, dtype=np.intp)

    # ------------------------------------------------------------------------------------------
    # fitted attributes
    # ------------------------------------------------------------------------------------------

    @property
    def feature_importances_(self):
        """Impurity-based feature importances, normalised to sum to 1 (all zeros if no tree
        splits)."""
        check_is_fitted(self, "_native")
        return self._native.feature_importances()

    @property
    def estimators_(self):
        """Read-only views of the fitted trees (see ``_ForestTree``)."""
        check_is_fitted(self, "_native")
        trees = self.__dict__.get("_estimators")
        if trees is None or (trees and trees[0]._native is not self._native):
            trees = [_ForestTree(self, i) for i in range(self._native.n_trees)]
            self._estimators = trees
        return trees

    @property
    def estimator_(self):
        """The template tree estimator, as in scikit-learn."""
        check_is_fitted(self, "_native")
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier()

    @property
    def fit_info_(self) -> dict:
        """Lineage of the fit: training data fingerprint, number of samples, fit seconds."""
        check_is_fitted(self, "_native")
        return self._native.fit_info()

    def __len__(self):
        return len(self.estimators_)

    def __getitem__(self, index):
        return self.estimators_[index]

    def __iter__(self):
        return iter(self.estimators_)

    # ------------------------------------------------------------------------------------------
    # persistence: the model file carries the trees and a JSON description of this estimator
    # ------------------------------------------------------------------------------------------

    def _description(self, *, strict: bool) -> dict:
        """JSON-safe description of this fitted estimator (stored in the model file's meta)."""
        desc = {
            "class": "RandomForestClassifier",
            "format": ESTIMATOR_FORMAT,
            "params": _params_to_json(self.get_params(deep=False)),
            "classes": _classes_to_json(self.classes_, strict=strict),
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": (
                [str(n) for n in self.feature_names_in_]
                if hasattr(self, "feature_names_in_")
                else None
            ),
            "n_outputs": 1,
            "seed": int(self._seed),
            "oob_score": getattr(self, "oob_score_", None),
        }
        return desc

    def _to_model_bytes(self, *, strict: bool = True) -> bytes:
        check_is_fitted(self, "_native")
        desc = self._description(strict=strict)
        return self._native.to_bytes(json.dumps(desc, allow_nan=False))

    @classmethod
    def _from_model(cls, native, meta: dict) -> "RandomForestClassifier":
        try:
            desc = meta["estimator"]
            if not isinstance(desc, dict) or desc.get("class") != "RandomForestClassifier":
                raise CorruptModelError("the model file does not hold a RandomForestClassifier")
            if desc.get("format") != ESTIMATOR_FORMAT:
                raise CorruptModelError(
                    f"unsupported estimator description format {desc.get('format')!r}"
                )
            est = cls(**_params_from_json(desc["params"]))
            est._restore(native, desc)
        except CorruptModelError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptModelError(f"invalid estimator description in model file: {e!r}") from e
        return est

    def _restore(self, native, desc: dict, classes=None):
        if classes is None:
            classes = _classes_from_json(desc["classes"])
        n_features = int(desc["n_features_in"])
        if len(classes) != native.n_classes or n_features != native.n_features:
            raise CorruptModelError(
                "the estimator description does not match the forest: "
                f"{len(classes)} classes / {n_features} features described, "
                f"{native.n_classes} / {native.n_features} in the forest"
            )
        names = desc.get("feature_names_in")
        if names is not None:
            if len(names) != n_features or not all(isinstance(n, str) for n in names):
                raise CorruptModelError("feature_names_in does not match n_features_in")
            self.feature_names_in_ = np.asarray(names, dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
        self._native = native
        self._seed = int(desc["seed"])
        self.classes_ = classes
        self.n_classes_ = len(classes)
        self.n_outputs_ = 1
        self.n_features_in_ = n_features
        self._estimators = None
        self._lean = names is None and self._allow_nan()
        self._feature_names = list(names) if names is not None else None
        oob = native.oob_decision_function()
        if oob is not None and desc.get("oob_score") is not None:
            self.oob_decision_function_ = oob
            self.oob_score_ = float(desc["oob_score"])
        else:
            self.__dict__.pop("oob_score_", None)
            self.__dict__.pop("oob_decision_function_", None)

    # Pickle, joblib and copy.deepcopy carry the model file's bytes, never the native object.
    _TRANSIENT = ("_native", "_estimators")

    def __getstate__(self):
        state = super().__getstate__()
        state = {k: v for k, v in state.items() if k not in self._TRANSIENT}
        native = self.__dict__.get("_native")
        if native is not None:
            state["_woodlot_model"] = self._to_model_bytes(strict=False)
            # The fitted attributes below are rebuilt from the model file on unpickling.
            for k in ("oob_decision_function_",):
                state.pop(k, None)
        return state

    def __setstate__(self, state):
        state = dict(state)
        model = state.pop("_woodlot_model", None)
        super().__setstate__(state)
        if model is not None:
            from ._persist import _read_model

            native, meta = _read_model(model)
            # classes_ travel as a pickled array (exact, whatever their type).
            self._restore(native, meta["estimator"], classes=state.get("classes_"))


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
        value = _plain_number(value) if not isinstance(value, bool) else value
        out[name] = value
    return out


def _params_from_json(params: dict) -> dict:
    if not isinstance(params, dict):
        raise TypeError("params must be an object")
    valid = set(RandomForestClassifier._get_param_names())
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


def _classes_from_json(desc: dict) -> np.ndarray:
    dtype = np.dtype(desc["dtype"])
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
