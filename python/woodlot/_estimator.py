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

import json
import warnings

import joblib
import numpy as np
from scipy.sparse import csr_matrix, hstack, issparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier as _SkRandomForestClassifier
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
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
from ._progress import fit_progress
from ._to_sklearn import decision_tree, forest_to_sklearn

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
#: From this many rows on, ``n_jobs=None`` asks joblib (``parallel_config``) for the number of
#: threads, as scikit-learn's forest does; below it one thread is as fast, and asking joblib
#: (about 10 µs) would double the one-row latency.
_JOBLIB_MIN_ROWS = 1024
#: Rows of a sparse ``X`` densified at a time at predict (4,096 rows x 1,000 features of float64
#: is 32 MB per block; a block is also enough rows to use every thread).
_SPARSE_BLOCK_ROWS = 4096


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
    densified at fit (prediction densifies one block of rows at a time); each tree is seeded from ``(random_state, tree index)`` with woodlot's own
    generator, so models are statistically equivalent to scikit-learn's but not identical.
    ``estimators_`` are real ``DecisionTreeClassifier`` objects built on first use from the
    Rust trees (prediction through the forest keeps using the Rust trees);
    :meth:`to_sklearn` gives the whole forest as scikit-learn's, predicting the same.

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
        tags.input_tags.sparse = True  # densified at fit, block by block at predict
        # y of shape (n_samples, n_outputs), multilabel indicators included, as scikit-learn's
        # forest (MultiOutputMixin and ForestClassifier's tags).
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags

    def _allow_nan(self) -> bool:
        return self.monotonic_cst is None

    def _validate_X(self, X, *, reset: bool, densify: bool = True):
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype=_FLOAT_DTYPES,
            ensure_all_finite="allow-nan" if self._allow_nan() else True,
        )
        if issparse(X) and densify:
            X = X.toarray()
        return X

    def _n_jobs(self, n_rows=None):
        """``n_jobs`` for the native forest: ``None`` follows joblib's ``parallel_config`` /
        ``parallel_backend`` (``joblib.effective_n_jobs``, as scikit-learn's forest does) for a
        fit and for batches of at least ``_JOBLIB_MIN_ROWS`` rows."""
        if self.n_jobs is not None or (n_rows is not None and n_rows < _JOBLIB_MIN_ROWS):
            return self.n_jobs
        return int(joblib.effective_n_jobs(None))

    def _validate_X_predict(self, X):
        """``X`` checked for prediction; a sparse matrix stays sparse (CSR, see
        :meth:`_run_native`)."""
        check_is_fitted(self, "_native")
        return self._validate_X(X, reset=False, densify=False)

    def _run_native(self, method, X):
        """``method(X, n_jobs)`` of the native forest; a sparse ``X`` goes block by block,
        densifying ``_SPARSE_BLOCK_ROWS`` rows at a time, never the whole matrix."""
        n_jobs = self._n_jobs(X.shape[0])
        if not issparse(X):
            return method(X, n_jobs)
        step = _SPARSE_BLOCK_ROWS
        parts = [method(X[s : s + step].toarray(), n_jobs) for s in range(0, X.shape[0], step)]
        return np.concatenate(parts)

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
        check_classification_targets(y)
        multi = y.ndim == 2
        if multi:
            # scikit-learn's multi-output classes: one sorted array per output; the core takes
            # every output's codes per row (row-major) and their class counts.
            if self.oob_score and type_of_target(y) == "multiclass-multioutput":
                raise ValueError(
                    "The type of target cannot be used to compute OOB estimates. Got "
                    "multiclass-multioutput while only the following are supported: "
                    "continuous, continuous-multioutput, binary, multiclass, "
                    "multilabel-indicator."
                )
            per_output = [np.unique(y[:, k], return_inverse=True) for k in range(y.shape[1])]
            classes = [c for c, _ in per_output]
            codes = np.column_stack([inv.reshape(-1) for _, inv in per_output])
            y_codes = np.ascontiguousarray(codes, dtype=np.uint32).reshape(-1)
            output_classes = [len(c) for c in classes]
            n_classes = sum(output_classes)
        else:
            classes, y_codes = np.unique(y, return_inverse=True)
            y_codes = np.ascontiguousarray(y_codes.reshape(-1), dtype=np.uint32)
            n_classes = len(classes)
            output_classes = None

        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            sample_weight = np.ascontiguousarray(sample_weight, dtype=np.float64)

        previous = getattr(self, "_native", None) if self.warm_start else None
        if previous is not None:
            # Fewer trees than the forest has is refused by the core (one message, in Rust).
            n_existing = previous.n_trees
            if not _same_classes(classes, self.classes_):
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
                if not (self.oob_score and "oob_score_" not in self.__dict__):
                    return self
                # scikit-learn computes a missing oob_score_ even without new trees: go on,
                # growing none, to the out-of-bag estimate below.
            seed = self._seed
        else:
            seed = int(check_random_state(self.random_state).randint(_MAX_SEED))

        params = native_params(
            self, y, classes, sample_weight, X.shape[0], seed, bool(self.oob_score)
        )
        n_new = self.n_estimators - (0 if previous is None else previous.n_trees)
        with fit_progress(self.verbose, n_new, self.n_jobs) as progress:  # verbose: _progress.py
            # Local Rust threads, or the trees split across the active joblib engine's workers.
            native, training = fit_forest(
                X, y_codes, n_classes, sample_weight, params, self.n_jobs, previous,
                local_n_jobs=self._n_jobs(), progress=progress, output_classes=output_classes,
            )
        self._training = training

        self._native = native
        self._seed = seed
        self.classes_ = classes
        self.n_classes_ = output_classes if multi else n_classes
        self.n_outputs_ = len(classes) if multi else 1
        self._estimators = None
        self._bootstrap_weights = _bootstrap_weights(
            params, y_codes, sample_weight, output_classes
        )
        self._weighted_draws_unknown = False
        self.__dict__.pop("_source", None)
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
        if self.__dict__.get("n_outputs_", 1) > 1:
            # scikit-learn's shape: (n_samples, n_classes_[0], n_outputs), which exists only
            # when every output has as many classes as the first.
            widths = list(self.n_classes_)
            if len(set(widths)) != 1:
                raise ValueError(
                    "oob_decision_function_ of a multi-output forest has scikit-learn's shape "
                    "(n_samples, n_classes, n_outputs), so every output needs the same number "
                    f"of classes; these have {widths}. Fit with oob_score=False"
                )
            k = self.n_outputs_
            decision = decision.reshape(decision.shape[0], k, widths[0]).transpose(0, 2, 1)
            codes = y_codes.reshape(-1, k)
            self.oob_decision_function_ = decision
            self.oob_score_ = float(scorer(codes, np.argmax(decision, axis=1)))
            return
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

        Returns an array of shape (n_samples, n_classes), columns in the order of ``classes_``;
        for a multi-output forest, a list of ``n_outputs_`` such arrays, one per output.
        """
        proba = self._predict_proba_rows(X)
        if self.__dict__.get("n_outputs_", 1) > 1:
            return self._split_outputs(proba)
        return proba

    def _split_outputs(self, proba):
        """A multi-output forest's probability rows (every output's side by side) as
        scikit-learn's list of one array per output."""
        bounds = np.cumsum([0] + list(self.n_classes_))
        return [
            np.ascontiguousarray(proba[:, bounds[k] : bounds[k + 1]])
            for k in range(self.n_outputs_)
        ]

    def _predict_proba_rows(self, X):
        lean = self._lean_input(X)
        if lean is not None:
            try:
                return self._native.predict_proba(lean, self._n_jobs(lean.shape[0]))
            except (ValueError, TypeError):
                pass  # validate below, for scikit-learn's exact message
        X = self._validate_X_predict(X)
        return self._run_native(self._native.predict_proba, X)

    def predict(self, X):
        """Predicted class labels (in the original label type); for a multi-output forest an
        array of shape (n_samples, n_outputs) of the type of ``classes_[0]``, as
        scikit-learn's."""
        if self.__dict__.get("n_outputs_", 1) > 1:
            probas = self.predict_proba(X)
            out = np.empty((probas[0].shape[0], self.n_outputs_), dtype=self.classes_[0].dtype)
            for k, proba in enumerate(probas):
                out[:, k] = self.classes_[k].take(np.argmax(proba, axis=1))
            return out
        lean = self._lean_input(X)
        if lean is not None:
            try:
                return self.classes_.take(self._native.predict(lean, self._n_jobs(lean.shape[0])))
            except (ValueError, TypeError):
                pass
        X = self._validate_X_predict(X)
        return self.classes_.take(self._run_native(self._native.predict, X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            if isinstance(proba, list):
                return [np.log(p) for p in proba]
            return np.log(proba)

    def apply(self, X):
        """Index of the leaf each sample lands in, per tree: (n_samples, n_estimators)."""
        lean = self._lean_input(X)
        if lean is not None:
            try:
                return self._native.apply(lean, self._n_jobs(lean.shape[0]))
            except (ValueError, TypeError):
                pass
        X = self._validate_X_predict(X)
        return self._run_native(self._native.apply, X)

    def decision_path(self, X):
        """The nodes each sample passes through, as scikit-learn's ``decision_path``.

        Returns ``(indicator, n_nodes_ptr)``: a CSR matrix of shape (n_samples, total nodes) with
        a 1 where a sample passes through a node, and the column offsets of each tree.
        """
        leaves = self.apply(X)
        n = leaves.shape[0]
        blocks, ptr = [], [0]
        for i in range(self._native.n_trees):
            t = _TreeArrays(self._native.tree_arrays(i), int(self._native.n_classes))
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
        """The fitted trees as real ``sklearn.tree.DecisionTreeClassifier`` objects.

        Built from the Rust trees on first access and cached until the next fit: each has its
        own parameters (the forest's tree parameters and a ``random_state`` of its own) and a
        working ``tree_``, so ``plot_tree``, ``export_text``, ``export_graphviz``, ``clone`` and
        refitting one tree work, and each predicts exactly what its Rust tree predicts. As in
        scikit-learn, the trees were fitted on encoded labels (``classes_`` are ``0.0 ..
        n_classes - 1``). The forest's own predictions never go through them.
        """
        check_is_fitted(self, "_native")
        cached = self.__dict__.get("_estimators")
        if cached is None or cached[0] is not self._native:
            cached = (self._native, self._build_trees())
            self._estimators = cached
        return cached[1]

    def _tree_random_states(self) -> np.ndarray:
        """Each tree's ``random_state``, drawn from the fit's seed as scikit-learn draws them."""
        return np.random.RandomState(self._seed).randint(_MAX_SEED, size=self._native.n_trees)

    def _build_trees(self) -> list:
        params = self.get_params(deep=False)
        outputs = list(self._native.output_classes)
        n_features, n_classes = int(self._native.n_features), int(self._native.n_classes)
        return [
            decision_tree(
                self._native.tree_arrays(i),
                n_features=n_features,
                n_classes=n_classes,
                params=params,
                random_state=int(seed),
                output_classes=outputs if len(outputs) > 1 else None,
            )
            for i, seed in enumerate(self._tree_random_states())
        ]

    @property
    def estimator_(self):
        """The template tree estimator, as in scikit-learn."""
        check_is_fitted(self, "_native")
        return DecisionTreeClassifier()

    @property
    def estimators_samples_(self):
        """Each tree's in-bag sample indices (``int32``, in draw order with repeats), as
        scikit-learn defines them: the bootstrap draw is replayed from the tree's seed. Without
        bootstrap every tree saw every sample. Needs the fit to have happened in this process
        or in an unpickled copy when ``sample_weight`` or ``class_weight`` shaped the draw;
        a model loaded from a model file recalls only unweighted draws."""
        check_is_fitted(self, "_native")
        if "_source" in self.__dict__ and self._source.get("converted_from"):
            raise AttributeError(
                "estimators_samples_ is not known for a forest converted from scikit-learn: "
                "its bootstrap draws were made by scikit-learn's generator; read "
                "estimators_samples_ of the original forest"
            )
        n = int(self._native.fit_info()["n_samples"])
        weights = self.__dict__.get("_bootstrap_weights")
        if weights is None and self.__dict__.get("_weighted_draws_unknown"):
            raise AttributeError(
                "estimators_samples_ is not available for this loaded model: its bootstrap "
                "draws depended on sample or class weights the model file does not keep"
            )
        return [
            self._native.bootstrap_draws(i, n, weights).astype(np.int32)
            for i in range(self._native.n_trees)
        ]

    def to_sklearn(self):
        """The forest as a fitted ``sklearn.ensemble.RandomForestClassifier`` that predicts
        exactly what this one predicts (same leaves for every input, NaN included; the same
        probabilities up to where the division by the number of trees rounds).

        It shares this forest's parameters, classes, feature names and out-of-bag estimate; its
        trees are :attr:`estimators_`. Raises ``NotImplementedError`` on a scikit-learn older
        than 1.4, whose forests cannot route missing values as woodlot's trees do.
        """
        check_is_fitted(self, "_native")
        trees = self._build_trees()
        oob = None
        if "oob_score_" in self.__dict__ and "oob_decision_function_" in self.__dict__:
            oob = (self.oob_score_, np.array(self.oob_decision_function_))
        return forest_to_sklearn(
            self.get_params(deep=False),
            trees,
            classes=(
                [np.array(c) for c in self.classes_] if isinstance(self.classes_, list)
                else np.array(self.classes_)
            ),
            n_features=self.n_features_in_,
            feature_names=getattr(self, "feature_names_in_", None),
            n_samples=int(self._native.fit_info()["n_samples"]),
            oob=oob,
        )

    @property
    def training_histogram_(self) -> dict | None:
        """Each feature's histogram over the training rows, kept for drift (``store.drift``):
        ``edges`` (per feature, the inner bin edges), ``counts`` (rows per bin), ``missing``
        (rows with NaN) and ``rows``; None for a converted or merged forest, or one loaded from
        a file older than format 2.1."""
        check_is_fitted(self, "_native")
        text = self._native.training_histogram_json()
        return None if text is None else json.loads(text)

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
            raw = desc["classes"]
            # A multi-output description lists every output's classes.
            classes = (
                [classes_from_json(c) for c in raw] if isinstance(raw, list)
                else classes_from_json(raw)
            )
        n_features = int(desc["n_features_in"])
        multi = isinstance(classes, list)
        widths = [len(c) for c in classes] if multi else [len(classes)]
        if widths != list(native.output_classes) or n_features != native.n_features:
            raise CorruptModelError(
                "the estimator description does not match the forest: "
                f"{widths} classes / {n_features} features described, "
                f"{list(native.output_classes)} / {native.n_features} in the forest"
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
        self.n_classes_ = widths if multi else len(classes)
        self.n_outputs_ = len(widths) if multi else 1
        self.n_features_in_ = n_features
        self._estimators = None
        # A model file keeps whether the bootstrap draws were weighted, not the weights: a
        # pickle brings them back (set before this runs); otherwise the draws are not known.
        weighted = desc.get("weighted_draws", True)
        self._weighted_draws_unknown = bool(weighted) and (
            self.__dict__.get("_bootstrap_weights") is None
        )
        if isinstance(desc.get("source"), dict):
            self._source = dict(desc["source"])
        self._lean = names is None and self._allow_nan()
        self._feature_names = list(names) if names is not None else None
        oob = native.oob_decision_function()
        if oob is not None and desc.get("oob_score") is not None:
            if multi:
                k = len(widths)
                oob = oob.reshape(oob.shape[0], k, widths[0]).transpose(0, 2, 1)
            self.oob_decision_function_ = oob
            self.oob_score_ = float(desc["oob_score"])
        else:
            self.__dict__.pop("oob_score_", None)
            self.__dict__.pop("oob_decision_function_", None)

    # Pickle, joblib and copy.deepcopy carry the model file's bytes, never the native object.
    # (``_bootstrap_weights`` and ``_source`` travel as plain attributes.)
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


def _same_classes(a, b) -> bool:
    """Whether two fits' ``classes_`` (an array, or one per output) are the same."""
    if isinstance(a, list) or isinstance(b, list):
        if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
            return False
        return all(_same_classes(x, y) for x, y in zip(a, b))
    return len(a) == len(b) and not np.any(a != b)


def _bootstrap_weights(params: dict, y_codes, sample_weight, output_classes=None):
    """The per-row weights the fit drew its bootstrap samples in proportion to (sample weight
    x class weight, computed exactly as the core computes them: a product over outputs), or
    None for uniform draws."""
    if not params.get("bootstrap"):
        return None
    cw = params.get("class_weight")
    per_class = np.asarray(cw, dtype=np.float64) if isinstance(cw, list) else None
    k = 1 if output_classes is None else len(output_classes)
    n = len(y_codes) // k
    if sample_weight is None and per_class is None:
        return None
    sw = sample_weight if sample_weight is not None else np.ones(n, dtype=np.float64)
    if per_class is not None and k > 1:
        codes = np.asarray(y_codes).reshape(n, k)
        offsets = np.cumsum([0] + list(output_classes[:-1]))
        factors = per_class[codes + offsets]
        class_factor = factors[:, 0].copy()
        for j in range(1, k):
            class_factor *= factors[:, j]
        weights = sw * class_factor
    else:
        weights = sw * (per_class[y_codes] if per_class is not None else 1.0)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.size == 0 or np.all(weights == weights[0]):
        return None
    return weights
