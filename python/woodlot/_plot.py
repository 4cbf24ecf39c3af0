"""Plots: ``Comparison.plot()`` and ``VersionStore.plot_history()`` (matplotlib, optional).

matplotlib is the ``plot`` extra (``pip install "woodlot[plot]"``). Importing ``pyplot`` costs
about a second, which every ``import woodlot`` and every ``woodlot`` command would pay, so it is
loaded by :func:`_pyplot` on the first plot (with ``importlib``: it is a third-party module, not
part of woodlot's import graph). The module imports nothing from woodlot; it reads the objects'
public attributes.

Per-version intervals: accuracy, balanced accuracy and macro F1 are functions of the confusion
matrix alone, so their bootstrap over rows is a multinomial resample of the matrix's cells (the
same distribution as resampling the rows themselves); seeded, 2,000 resamples, percentile 95%
intervals. Log loss needs each row's probabilities, which a comparison does not keep, so it is
shown as a value without an interval.
"""

from __future__ import annotations

import importlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["comparison_plot", "history_plot", "bootstrap_intervals", "MISSING_MATPLOTLIB"]

MISSING_MATPLOTLIB = 'plotting needs matplotlib: pip install "woodlot[plot]" (or pip install matplotlib)'

_CI_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def _pyplot() -> Any:
    """``matplotlib.pyplot``, or an ImportError that says what to install."""
    try:
        return importlib.import_module("matplotlib.pyplot")
    except ImportError:
        raise ImportError(MISSING_MATPLOTLIB) from None


def _metrics_from_confusion(cm: np.ndarray) -> np.ndarray:
    """(accuracy, balanced accuracy, macro F1) for a stack of confusion matrices ``(b, k, k)``,
    with scikit-learn's conventions (a class absent from the rows is left out of the balanced
    accuracy; an undefined F1 counts 0)."""
    cm = cm.astype(np.float64)
    diag = np.diagonal(cm, axis1=1, axis2=2)
    total = cm.sum(axis=(1, 2))
    true = cm.sum(axis=2)
    pred = cm.sum(axis=1)
    acc = diag.sum(axis=1) / np.maximum(total, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(true > 0, diag / true, np.nan)
        bal = np.nanmean(recall, axis=1)
        denom = true + pred
        f1 = np.where(denom > 0, 2 * diag / denom, 0.0)
    present = (true + pred) > 0
    macro_f1 = np.where(present, f1, 0.0).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    return np.stack([acc, bal, macro_f1], axis=1)


def bootstrap_intervals(cm: Any, n_bootstrap: int = 2000, seed: int = 0) -> Dict[str, Tuple[float, float]]:
    """95% percentile bootstrap intervals of accuracy, balanced accuracy and macro F1 from one
    confusion matrix (rows: true class, columns: predicted)."""
    cm = np.asarray(cm, dtype=np.int64)
    n = int(cm.sum())
    if n == 0:
        return {k: (float("nan"), float("nan")) for k in _CI_METRICS}
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cm.ravel() / n, size=n_bootstrap).reshape(n_bootstrap, *cm.shape)
    values = _metrics_from_confusion(draws)
    lo, hi = np.nanpercentile(values, [2.5, 97.5], axis=0)
    return {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(_CI_METRICS)}


def comparison_plot(cmp: Any, n_bootstrap: int = 2000, seed: int = 0) -> Any:
    """One figure: each version's metrics with bootstrap 95% intervals (left), then each
    version's confusion matrix, side by side on one colour scale."""
    plt = _pyplot()
    names: List[str] = list(cmp.versions)
    labels = [str(label) for label in cmp.labels]
    k = len(names)
    fig = plt.figure(figsize=(4.8 + 2.9 * k, 3.9), layout="constrained")
    grid = fig.add_gridspec(1, k + 1, width_ratios=[1.7] + [1.0] * k)
    ax = fig.add_subplot(grid[0, 0])
    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0", "C1", "C2"])
    width = 0.8 / max(k, 1)
    x = np.arange(len(_CI_METRICS))
    for i, name in enumerate(names):
        m = cmp.metrics[name]
        ci = bootstrap_intervals(m["confusion_matrix"], n_bootstrap, seed)
        values = np.array([m[key] for key in _CI_METRICS])
        err = np.array([[values[j] - ci[key][0], ci[key][1] - values[j]] for j, key in enumerate(_CI_METRICS)]).T
        label = f"{name} (log loss {m['log_loss']:.3f})"
        if name == cmp.best:
            label += ", best"
        if name == cmp.active:
            label += ", active"
        ax.errorbar(x + (i - (k - 1) / 2) * width, values, yerr=np.clip(err, 0, None), fmt="o", capsize=4,
                    color=colours[i % len(colours)], label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(["accuracy", "balanced\naccuracy", "macro F1"])
    ax.set_ylabel("score (95% bootstrap interval)")
    bottom, top = ax.get_ylim()  # scores cannot pass 1: do not draw room above it
    ax.set_ylim(bottom, min(top, 1.02))
    ax.set_title(f"{k} versions on the same {cmp.n_rows} rows", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    vmax = max(int(np.max(cmp.metrics[n]["confusion_matrix"])) for n in names) if names else 1
    for i, name in enumerate(names):
        cax = fig.add_subplot(grid[0, i + 1])
        cm = np.asarray(cmp.metrics[name]["confusion_matrix"])
        cax.imshow(cm, cmap="Blues", vmin=0, vmax=max(vmax, 1))
        for r in range(cm.shape[0]):
            for c in range(cm.shape[1]):
                cax.text(c, r, str(int(cm[r, c])), ha="center", va="center", fontsize=9,
                         color="white" if cm[r, c] > 0.6 * vmax else "black")
        cax.set_xticks(range(len(labels)))
        cax.set_xticklabels(labels)
        cax.set_yticks(range(len(labels)))
        cax.set_yticklabels(labels)
        cax.set_xlabel("predicted")
        if i == 0:
            cax.set_ylabel("true")
        cax.set_title(f"{name}: accuracy {cmp.metrics[name]['accuracy']:.3f}", fontsize=10)
    return fig


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def _time(iso: str) -> datetime:
    """An RFC 3339 time (any number of fractional digits, ``Z`` or an offset) as an aware
    datetime; Python 3.9's ``fromisoformat`` takes neither ``Z`` nor nanoseconds."""
    m = _RFC3339.match(str(iso))
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {iso!r}")
    base, frac, zone = m.groups()
    micro = (frac or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    return datetime.fromisoformat(f"{base.replace(' ', 'T')}.{micro}{zone}")


def history_plot(events: Sequence[Any], title: Optional[str] = None) -> Any:
    """Which version was active when (a step line over time, one row per version), with
    promotions, rollbacks and deletions marked and saves as ticks."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 3.6), layout="constrained")
    if not events:
        ax.text(0.5, 0.5, "no events yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    times = [_time(e.time) for e in events]
    numbers = sorted({int(v[1:]) for e in events for v in (e.version, e.active) if v})
    row = {f"v{n}": i for i, n in enumerate(numbers)}
    # The active version after each event, as a step line (gaps where none is active).
    xs: List[datetime] = []
    ys: List[float] = []
    for t, e in zip(times, events):
        xs.append(t)
        ys.append(row[e.active] if e.active in row else np.nan)
    # The last state holds on: draw it a little past the newest event.
    xs.append(times[-1] + max((times[-1] - times[0]) * 0.08, timedelta(seconds=1)))
    ys.append(ys[-1])
    ax.step(xs, ys, where="post", color="C0", linewidth=2.5, label="active version")
    marks = {
        "save": dict(marker="|", color="0.45", s=120, label="save"),
        "promote": dict(marker="^", color="C2", s=90, label="promote"),
        "rollback": dict(marker="v", color="C3", s=90, label="rollback"),
        "delete": dict(marker="x", color="C3", s=70, label="delete"),
    }
    seen = set()
    n_notes = 0
    for t, e in zip(times, events):
        style = marks.get(e.kind)
        if style is None:
            continue
        target = e.active if e.kind in ("promote", "rollback") else e.version
        if target not in row:
            continue
        kwargs = dict(style)
        if e.kind in seen:
            kwargs.pop("label")
        seen.add(e.kind)
        ax.scatter([t], [row[target]], zorder=3, **kwargs)
        if e.kind in ("promote", "rollback") and e.reason:
            # Alternate above and below the line so neighbouring reasons do not overprint.
            dy = 8 if n_notes % 2 == 0 else -14
            n_notes += 1
            ax.annotate(e.reason[:40], (t, row[target]), textcoords="offset points", xytext=(5, dy), fontsize=7, parse_math=False,
                        color="0.3")
    ax.set_yticks(range(len(numbers)))
    ax.set_yticklabels([f"v{n}" for n in numbers])
    ax.set_ylim(-0.6, len(numbers) - 0.4)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("version")
    ax.set_title(title or "Active version over time", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=5)
    locator = importlib.import_module("matplotlib.dates").AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(importlib.import_module("matplotlib.dates").ConciseDateFormatter(locator))
    return fig
