"""Multi-output classification: woodlot's one forest of k outputs against scikit-learn's, and
against k single-output woodlot forests, in the same run (only side-by-side ratios mean
anything on a shared machine).

Data: make_multilabel_classification (n rows, 20 features, k labels), a 70/30 split. For each
contender: fit seconds (best of `--repeat`), predict_proba seconds on the test rows, and the
mean per-output test accuracy.

    python bench/bench_multi_output.py                  # 20k rows, 5 outputs, 100 trees
    python bench/bench_multi_output.py --quick          # 4k rows, 3 outputs, 30 trees
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.ensemble import RandomForestClassifier as SkForest
from sklearn.model_selection import train_test_split

from woodlot import RandomForestClassifier


def timed(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def accuracy(pred, Y):
    return float(np.mean([np.mean(pred[:, k] == Y[:, k]) for k in range(Y.shape[1])]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--n-jobs", type=int, default=-1)
    args = ap.parse_args()
    n, k, trees = (4000, 3, 30) if args.quick else (20000, 5, 100)
    X, Y = make_multilabel_classification(n_samples=n, n_features=20, n_classes=k, random_state=0)
    Xtr, Xte, Ytr, Yte = train_test_split(X, Y, test_size=0.3, random_state=0)
    print(f"{len(Xtr)} training rows, {len(Xte)} test rows, {k} outputs, {trees} trees, "
          f"n_jobs={args.n_jobs}")

    def run(name, make):
        fit_s, model = timed(lambda: make().fit(Xtr, Ytr), args.repeat)
        pred_s, _ = timed(lambda: model.predict_proba(Xte), args.repeat)
        acc = accuracy(model.predict(Xte), Yte)
        return name, fit_s, pred_s, acc

    rows = [
        run("woodlot, one forest of k outputs",
            lambda: RandomForestClassifier(trees, random_state=0, n_jobs=args.n_jobs)),
        run("scikit-learn, one forest of k outputs",
            lambda: SkForest(trees, random_state=0, n_jobs=args.n_jobs)),
    ]

    class PerOutput:
        """k single-output woodlot forests, one per label column."""

        def fit(self, X, Y):
            self.models = [
                RandomForestClassifier(trees, random_state=0, n_jobs=args.n_jobs).fit(X, Y[:, j])
                for j in range(Y.shape[1])
            ]
            return self

        def predict_proba(self, X):
            return [m.predict_proba(X) for m in self.models]

        def predict(self, X):
            return np.column_stack([m.predict(X) for m in self.models])

    rows.append(run("woodlot, k single-output forests", PerOutput))
    base = rows[0]
    print(f"{'contender':40s} {'fit s':>8s} {'x':>6s} {'proba s':>8s} {'x':>6s} {'mean acc':>9s}")
    for name, fit_s, pred_s, acc in rows:
        print(f"{name:40s} {fit_s:8.3f} {fit_s / base[1]:6.2f} {pred_s:8.4f} "
              f"{pred_s / base[2]:6.2f} {acc:9.4f}")
    print("x: seconds relative to woodlot's multi-output forest (larger: slower than it)")


if __name__ == "__main__":
    main()
