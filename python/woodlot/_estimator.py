"""``woodlot.RandomForestClassifier``: scikit-learn's random forest classifier, trained in Rust.

This module is the scikit-learn face of the native forest (``woodlot._native.NativeForest``):
it validates input once, with scikit-learn's own validators so errors and warnings match
scikit-learn's word for word, encodes labels, and delegates every piece of heavy work to Rust.
Each check is written once, in one layer: scikit-learn's validators judge input and each
parameter alone; rules between parameters (``oob_score`` or ``max_samples`` without
``bootstrap``, ``monotonic_cst`` values, fewer trees on a warm start) are the core's.
Prediction has a lean path: a 2-D float32/float64 numpy array handed to a model fitted without
feature names goes straight to Rust, which checks shape and values itself.

What is not the estimator lives below it, each in a module of its own: the translation of its
parameters for the core (``_params``), the read-only tree views of ``estimators_``
(``_tree_view``) and the model file's estimator description (``_description``), which pickling
uses here and ``woodlot.dump``/``load`` use in ``_persist``. Pickles name this module's path
(``woodlot._estimator.RandomForestClassifier``), so the class must stay here.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier as _SkRandomForestClassifier
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._description import (
    classes_from_json,
    describe,
    estimator_description,
    params_from_json,
    read_model,
    write_model,
)
from ._distributed import fit_forest
from ._errors import CorruptModelError
from ._native import NativeForest
from ._params import native_params

# Re-exported: pickles of a bare tree view made before ``_tree_view`` existed name this module.
from ._tree_view import _ForestTree, _TreeArrays  # noqa: F401

try:  # scikit-learn >= 1.3: validates parameters once, skips nested validation
    from sklearn.base import _fit_context
except ImportError:  # pragma: no cover - very old scikit-learn
    _fit_context = None

__all__ = ["RandomForestClassifier"]

_MAX_SEED = np.iinfo(np.int32).max
_FLOAT_DTYPES = (np.float64, np.float32)
_LEAN_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


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

        previous = getattr(self, "_native", None) if self.warm_start else None
        if previous is not None:
            # Fewer trees than the forest has is refused by the core (one message, in Rust).
            n_existing = previous.n_trees
            if len(classes) != len(self.classes_) or np.any(classes != self.classes_):
                raise ValueError(
                    "warm_start=True needs the same classes as the first fit: got "
                    f"{classes!r}, the forest was fitted on {self.classes_!r}"
                )
            if self.n_estimators == n_existing:
                # No new tree, but the same parameter errors as a fit (scikit-learn checks first).
                NativeForest.check_params(
                    native_params(self, y, classes, sample_weight, X.shape[0], self._seed,
                                  bool(self.oob_score)),
                    X.shape[0], X.shape[1], n_classes,
                )
                warnings.warn(
                    "Warm-start fitting without increasing n_estimators does not fit new trees."
                )
                return self
            seed = self._seed
        else:
            seed = int(check_random_state(self.random_state).randint(_MAX_SEED))

        params = native_params(
            self, y, classes, sample_weight, X.shape[0], seed, bool(self.oob_score)
        )
        # Local Rust threads, or the trees split across the active joblib engine's workers.
        native, training = fit_forest(
            X, y_codes, n_classes, sample_weight, params, self.n_jobs, previous
        )
        self._training = training

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

    def _to_model_bytes(self, *, strict: bool = True) -> bytes:
        check_is_fitted(self, "_native")
        return write_model(self._native, describe(self, strict=strict))

    @classmethod
    def _from_model(cls, native, meta: dict) -> "RandomForestClassifier":
        try:
            desc = estimator_description(meta)
            est = cls(**params_from_json(desc["params"], cls._get_param_names()))
            est._restore(native, desc)
        except CorruptModelError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptModelError(f"invalid estimator description in model file: {e!r}") from e
        return est

    def _restore(self, native, desc: dict, classes=None):
        if classes is None:
            classes = classes_from_json(desc["classes"])
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
        self._training = desc.get("training")
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
            native, meta = read_model(model)
            # classes_ travel as a pickled array (exact, whatever their type).
            self._restore(native, meta["estimator"], classes=state.get("classes_"))

