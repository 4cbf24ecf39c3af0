"""The estimator's scikit-learn constructor parameters, translated for the native forest.

Why a module of its own: scikit-learn spells a parameter one way for users (``class_weight`` as
a dict of labels, ``max_samples`` as a fraction, ``criterion="log_loss"``), the Rust core takes
one plain dict (``src/py/convert.rs``: per-class weights by class code, a bootstrap size,
``"entropy"``). The rules that turn one into the other, including scikit-learn 1.9's bootstrap
size and its warnings, are one concept, used by ``fit`` only.

Validation lives in one place per rule: scikit-learn's ``_parameter_constraints`` check types
and ranges before this module runs; what depends on several parameters together (``oob_score``
or ``max_samples`` without ``bootstrap``, ``monotonic_cst`` values) is checked by the core
alone, so such values are passed on for it to refuse, never dropped or truncated here.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

__all__ = [
    "NATIVE_PARAMS",
    "native_params",
    "n_samples_bootstrap",
    "plain_number",
    "recorded_params",
]

#: Constructor parameters forwarded to the native forest as they are (the rest shape how a fit
#: runs, or are translated below).
NATIVE_PARAMS = (
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


def plain_number(value):
    """numpy scalars and bools to plain ``int``/``float`` (scikit-learn treats bools as ints)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def n_samples_bootstrap(n_samples, max_samples, sample_weight):
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


def _constraint(value):
    """A ``monotonic_cst`` entry as the core takes it: integral numbers (``1.0``, ``True``) as
    ``int``, as scikit-learn accepts them; anything else unchanged, for the core to refuse."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def native_params(est, y, classes, sample_weight, n_samples, seed, oob) -> dict:
    """The native forest's parameter dict for one fit of the estimator ``est``.

    ``y`` holds the labels, ``classes`` their sorted unique values, ``seed`` the fit's seed and
    ``oob`` whether to compute out-of-bag estimates. For a multi-output fit, ``y`` is 2-D and
    ``classes`` holds one array per output: class weights then go to the core as every
    output's weights side by side (the core multiplies a row's weights across outputs, as
    scikit-learn's ``compute_sample_weight`` does).
    """
    params = {name: plain_number(getattr(est, name)) for name in NATIVE_PARAMS}
    params["bootstrap"] = bool(est.bootstrap)
    if params["criterion"] == "log_loss":
        params["criterion"] = "entropy"
    params["oob_score"] = oob
    params["random_state"] = seed

    cw = est.class_weight
    if np.ndim(y) == 2:
        params["class_weight"] = _multi_output_class_weight(est, y, classes, sample_weight)
    elif isinstance(cw, list):
        if len(cw) != 1:
            # scikit-learn's own check first (its forest calls the same), then ours.
            compute_sample_weight(cw, np.reshape(y, (-1, 1)))
            raise ValueError(
                "class_weight as a list is for multi-output targets (one dict per output); "
                f"y has a single output, got a list of {len(cw)}"
            )
        cw = cw[0]
    if np.ndim(y) == 2:
        pass
    elif cw is None:
        params["class_weight"] = None
    elif isinstance(cw, dict):
        params["class_weight"] = [float(w) for w in compute_class_weight(cw, classes=classes, y=y)]
    elif cw == "balanced_subsample" and est.bootstrap:
        if est.warm_start:
            _warn_class_weight_preset()
        params["class_weight"] = "balanced_subsample"
    else:  # "balanced", or "balanced_subsample" without bootstrap (the same thing)
        if est.warm_start:
            _warn_class_weight_preset()
        weights = compute_class_weight("balanced", classes=classes, y=y, sample_weight=sample_weight)
        params["class_weight"] = [float(w) for w in weights]

    if est.bootstrap and est.max_samples is not None:
        params["max_samples"] = n_samples_bootstrap(n_samples, est.max_samples, sample_weight)
    else:
        # None, or a max_samples without bootstrap, which the core refuses with its message.
        params["max_samples"] = plain_number(est.max_samples)

    if est.monotonic_cst is not None:
        # The core checks the values and their number (one message, in Rust).
        cst = np.asarray(est.monotonic_cst).tolist()
        params["monotonic_cst"] = [_constraint(c) for c in cst] if isinstance(cst, list) else cst
    return params


def _multi_output_class_weight(est, y, classes, sample_weight):
    """The native ``class_weight`` of a multi-output fit: None, ``"balanced_subsample"`` (drawn
    per tree by the core), or every output's per-class weights side by side."""
    cw = est.class_weight
    if cw is None:
        return None
    if isinstance(cw, (dict, list)):
        # scikit-learn's own checks and messages (a dict, or a list of the wrong length).
        compute_sample_weight(cw, y)
        weights = []
        for k, classes_k in enumerate(classes):
            weights.extend(compute_class_weight(cw[k], classes=classes_k, y=y[:, k]))
        return [float(w) for w in weights]
    if est.warm_start:
        _warn_class_weight_preset()
    if cw == "balanced_subsample" and est.bootstrap:
        return "balanced_subsample"
    weights = []
    for k, classes_k in enumerate(classes):
        weights.extend(
            compute_class_weight(
                "balanced", classes=classes_k, y=y[:, k], sample_weight=sample_weight
            )
        )
    return [float(w) for w in weights]


def _warn_class_weight_preset():
    warnings.warn(
        'class_weight presets "balanced" or "balanced_subsample" are not recommended for '
        "warm_start if the fitted data differs from the full dataset. In order to use "
        '"balanced" weights, use compute_class_weight ("balanced", classes, y). In place '
        "of y you can use a large enough sample of the full training set target to "
        "properly estimate the class frequency distributions. Pass the resulting weights "
        "as the class_weight parameter."
    )


def recorded_params(est, classes, seed, bootstrap_size) -> dict:
    """The native parameter dict to *record* with a forest that was not fitted by woodlot (one
    converted from scikit-learn): the same translation as :func:`native_params`, without the
    training labels it never sees. A ``class_weight`` dict becomes per-class weights (1 for a
    class it does not name, as scikit-learn does); the presets are recorded by name;
    ``max_samples`` becomes the bootstrap size the source forest drew (``bootstrap_size``, or
    None), and ``oob_score`` is off (no out-of-bag estimate travels with the trees).
    """
    params = {name: plain_number(getattr(est, name)) for name in NATIVE_PARAMS}
    params["bootstrap"] = bool(est.bootstrap)
    if params["criterion"] == "log_loss":
        params["criterion"] = "entropy"
    params["oob_score"] = False
    params["random_state"] = int(seed)
    cw = est.class_weight
    if isinstance(classes, list) and isinstance(cw, list):
        # Multi-output: every output's weights side by side (1 for a class a dict does not name).
        params["class_weight"] = [
            float(d.get(c, 1.0)) for d, cls in zip(cw, classes) for c in cls.tolist()
        ]
        cw = "recorded"
    elif isinstance(cw, list):
        cw = cw[0] if len(cw) == 1 else cw
    if cw == "recorded":
        pass
    elif isinstance(cw, dict):
        params["class_weight"] = [float(cw.get(c, 1.0)) for c in classes.tolist()]
    elif cw in ("balanced", "balanced_subsample") or cw is None:
        params["class_weight"] = cw
    else:
        raise ValueError(f"class_weight={cw!r} cannot be recorded for a single-output forest")
    params["max_samples"] = int(bootstrap_size) if est.bootstrap and bootstrap_size else None
    if est.monotonic_cst is not None:
        params["monotonic_cst"] = [_constraint(c) for c in np.asarray(est.monotonic_cst).tolist()]
    return params
