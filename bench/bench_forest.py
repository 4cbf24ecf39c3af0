"""woodlot vs scikit-learn, same data, same hyperparameters, same run.

Prints ratios (scikit-learn time / woodlot time), never bare timings alone: these machines are
shared and noisy, so only a comparison measured side by side means anything.

    python bench/bench_forest.py                 # one-row latency, 100k x 50 fit/predict, memory
    python bench/bench_forest.py --large         # also 1M x 20 (scikit-learn takes ~5 minutes)
    python bench/bench_forest.py --quick         # small sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import timeit

import numpy as np


def make_data(n_samples: int, n_features: int, n_informative: int, n_classes: int, seed: int = 0):
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_classes=n_classes,
        random_state=seed,
    )
    return train_test_split(X, y, test_size=0.2, random_state=seed)


def estimator(lib: str, **params):
    if lib == "woodlot":
        from woodlot import RandomForestClassifier
    else:
        from sklearn.ensemble import RandomForestClassifier
    return RandomForestClassifier(**params)


def one_row_latency() -> dict:
    """Median µs of one-row predict_proba on the tutorial's v1 model (wine, 100 trees, depth 4)."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    row = np.ascontiguousarray(X_test[:1])
    out = {}
    for lib, n_jobs in [("woodlot", 1), ("sklearn", 1), ("woodlot", -1), ("sklearn", -1)]:
        model = estimator(lib, n_estimators=100, max_depth=4, random_state=42, n_jobs=n_jobs).fit(X_train, y_train)
        model.predict_proba(row)
        number = 2000 if lib == "woodlot" else 50
        times = timeit.repeat(lambda: model.predict_proba(row), number=number, repeat=7)
        out[f"{lib}_njobs{n_jobs}_us"] = min(sorted(times)[3] / number * 1e6, float("inf"))
    return out


def fit_child(lib: str, n: int, f: int, inf: int, k: int, trees: int) -> None:
    """Runs in a fresh process: fit once, print timing, accuracy, log loss, predict speed, peak RSS."""
    from sklearn.metrics import accuracy_score, log_loss

    X_train, X_test, y_train, y_test = make_data(n, f, inf, k)
    X_train = np.ascontiguousarray(X_train, dtype=np.float32)
    X_test = np.ascontiguousarray(X_test, dtype=np.float32)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = estimator(lib, n_estimators=trees, n_jobs=-1, random_state=0)
    t0 = time.perf_counter()
    model.fit(X_train, y_train)
    fit_s = time.perf_counter() - t0
    rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The first batch call includes one-time work (woodlot compiles its prediction layout);
    # report it, then the median of warm calls, the steady state of a serving process.
    t0 = time.perf_counter()
    proba = model.predict_proba(X_test)
    first_s = time.perf_counter() - t0
    warm = []
    for _ in range(5):
        t0 = time.perf_counter()
        model.predict_proba(X_test)
        warm.append(time.perf_counter() - t0)
    pred_s = sorted(warm)[len(warm) // 2]
    result = {
        "fit_s": fit_s,
        "accuracy": accuracy_score(y_test, model.classes_[proba.argmax(1)]),
        "log_loss": log_loss(y_test, proba, labels=model.classes_),
        "predict_rows_per_s": len(X_test) / pred_s,
        "first_predict_rows_per_s": len(X_test) / first_s,
        "rss_before_fit_mb": rss_before / 1024,
        "peak_rss_fit_mb": rss_fit / 1024,
    }
    print(json.dumps(result))


def run_fit_case(name: str, n: int, f: int, inf: int, k: int, trees: int) -> dict:
    results = {}
    for lib in ("woodlot", "sklearn"):
        cmd = [sys.executable, __file__, "--child", lib, str(n), str(f), str(inf), str(k), str(trees)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[lib] = json.loads(out)
    w, s = results["woodlot"], results["sklearn"]
    print(f"\n== {name}: {n:,} x {f}, {k} classes, {trees} trees, n_jobs=-1 on both ==")
    print(f"  fit        woodlot {w['fit_s']:8.2f} s   sklearn {s['fit_s']:8.2f} s   speed-up {s['fit_s'] / w['fit_s']:6.1f}x")
    print(f"  accuracy   woodlot {w['accuracy']:.4f}     sklearn {s['accuracy']:.4f}     diff {100 * (w['accuracy'] - s['accuracy']):+.2f} pp")
    print(f"  log loss   woodlot {w['log_loss']:.4f}     sklearn {s['log_loss']:.4f}     ratio {w['log_loss'] / s['log_loss']:.3f}")
    print(
        f"  predict    woodlot {w['predict_rows_per_s']:10,.0f} rows/s   sklearn {s['predict_rows_per_s']:10,.0f} rows/s"
        f"   speed-up {w['predict_rows_per_s'] / s['predict_rows_per_s']:6.1f}x"
    )
    print(
        f"  1st call   woodlot {w['first_predict_rows_per_s']:10,.0f} rows/s   sklearn {s['first_predict_rows_per_s']:10,.0f} rows/s"
        f"   speed-up {w['first_predict_rows_per_s'] / s['first_predict_rows_per_s']:6.1f}x"
    )
    wd = w["peak_rss_fit_mb"] - w["rss_before_fit_mb"]
    sd = s["peak_rss_fit_mb"] - s["rss_before_fit_mb"]
    print(
        f"  peak RSS   woodlot {w['peak_rss_fit_mb']:8.0f} MB (+{wd:.0f} during fit)   "
        f"sklearn {s['peak_rss_fit_mb']:8.0f} MB (+{sd:.0f} during fit)"
    )
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        lib, *nums = sys.argv[2:]
        fit_child(lib, *map(int, nums))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="also run 1M x 20 (slow: sklearn ~5 min)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    import sklearn

    import woodlot

    print(f"woodlot {woodlot.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, cores {os.cpu_count()}")
    lat = one_row_latency()
    print("\n== one-row predict_proba, wine v1 model (100 trees, depth 4), median ==")
    for n_jobs in (1, -1):
        w, s = lat[f"woodlot_njobs{n_jobs}_us"], lat[f"sklearn_njobs{n_jobs}_us"]
        print(f"  n_jobs={n_jobs:2d}  woodlot {w:8.1f} µs   sklearn {s:9.1f} µs   speed-up {s / w:7.0f}x")
    if args.quick:
        run_fit_case("quick", 20_000, 20, 10, 3, 50)
    else:
        run_fit_case("make_classification", 100_000, 50, 20, 5, 100)
    if args.large:
        run_fit_case("make_classification large", 1_000_000, 20, 10, 2, 100)


if __name__ == "__main__":
    main()
