"""``Comparison.plot()`` and ``VersionStore.plot_history()`` render to real PNG files (Agg),
and say what to install when matplotlib is missing."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from woodlot._plot import MISSING_MATPLOTLIB, _metrics_from_confusion, bootstrap_intervals

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

ROOT = Path(__file__).resolve().parents[2]


def png_size(path: Path) -> tuple:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_comparison_plot_renders_metrics_and_confusion_matrices(hostile_store, tmp_path):
    cmp = hostile_store[1]
    fig = cmp.plot()
    try:
        # one metrics panel, then one confusion matrix per version
        assert len(fig.axes) == 1 + len(cmp.versions)
        metrics_ax = fig.axes[0]
        assert len(metrics_ax.containers) == len(cmp.versions)  # one errorbar set per version
        first_matrix = fig.axes[1]
        texts = sorted(int(t.get_text()) for t in first_matrix.texts)
        assert sum(texts) == cmp.n_rows
        path = tmp_path / "cmp.png"
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    w, h = png_size(path)
    assert 400 <= w <= 2000 and 200 <= h <= 800, (w, h)
    assert path.stat().st_size > 10_000


def test_history_plot_marks_promotions_and_rollbacks(hostile_store, tmp_path):
    store = hostile_store[0]
    fig = store.plot_history()
    try:
        ax = fig.axes[0]
        labels = ax.get_legend_handles_labels()[1]
        assert {"active version", "save", "promote", "rollback"} <= set(labels)
        assert [t.get_text() for t in ax.get_yticklabels()] == ["v1", "v2"]
        path = tmp_path / "history.png"
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    w, h = png_size(path)
    assert 400 <= w <= 2000 and 150 <= h <= 800, (w, h)


def test_bootstrap_intervals_cover_the_value_and_match_sklearn_metrics(hostile_store):
    cmp = hostile_store[1]
    for name in cmp.versions:
        m = cmp.metrics[name]
        cm = m["confusion_matrix"]
        acc, bal, f1 = _metrics_from_confusion(cm[None])[0]
        assert acc == pytest.approx(m["accuracy"]) and bal == pytest.approx(m["balanced_accuracy"])
        assert f1 == pytest.approx(m["macro_f1"])
        ci = bootstrap_intervals(cm, 500, 0)
        for key in ("accuracy", "balanced_accuracy", "macro_f1"):
            lo, hi = ci[key]
            assert lo <= m[key] <= hi
    # A known case against scikit-learn's own functions, from rows.
    y_true = np.array([0] * 10 + [1] * 5 + [2] * 5)
    y_pred = np.array([0] * 8 + [1] * 2 + [1] * 4 + [2] + [2] * 3 + [0] * 2)
    cm = np.zeros((3, 3), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    _, bal, f1 = _metrics_from_confusion(cm[None])[0]
    assert bal == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert bootstrap_intervals(cm, 300, 1) == bootstrap_intervals(cm, 300, 1)  # seeded


def test_missing_matplotlib_says_what_to_install(tmp_path):
    blocker = tmp_path / "blocker"
    (blocker / "matplotlib").mkdir(parents=True)
    (blocker / "matplotlib" / "__init__.py").write_text("raise ImportError('matplotlib is blocked for this test')\n")
    code = (
        "import woodlot\n"
        "from woodlot._records import History\n"
        "try:\n"
        "    History([]).plot()\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120, check=True).stdout.strip()
    assert out == MISSING_MATPLOTLIB
    assert 'pip install "woodlot[plot]"' in out
