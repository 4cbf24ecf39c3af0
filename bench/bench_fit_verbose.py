"""Does reporting progress slow a fit? verbose=0 against verbose=1 (the bar, or lines without
tqdm) and verbose=2 (a line per tree), same data, same seed, interleaved in one run.

Each finished tree does one atomic add in Rust; a Python thread reads the counter ten times a
second. Prints the median fit time of each and the ratio to verbose=0 (the machine is shared
and noisy: only the ratio within one run means anything).

    python bench/bench_fit_verbose.py                 # 100 trees, 20,000 x 20, n_jobs=-1
    python bench/bench_fit_verbose.py --repeats 3 --rows 5000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

from sklearn.datasets import make_classification

from woodlot import RandomForestClassifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--n-jobs", type=int, default=-1)
    args = ap.parse_args()
    X, y = make_classification(n_samples=args.rows, n_features=args.features, n_informative=10, n_classes=3,
                               random_state=0)
    times = {0: [], 1: [], 2: []}
    for _ in range(args.repeats):
        for verbose in (0, 1, 2):  # interleaved, so drift hits all three alike
            model = RandomForestClassifier(n_estimators=args.trees, random_state=0, n_jobs=args.n_jobs,
                                           verbose=verbose)
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                start = time.perf_counter()
                model.fit(X, y)
                times[verbose].append(time.perf_counter() - start)
    base = statistics.median(times[0])
    print(f"fit of {args.trees} trees on {args.rows:,} x {args.features}, n_jobs={args.n_jobs}, "
          f"median of {args.repeats} interleaved runs")
    for verbose, ts in times.items():
        med = statistics.median(ts)
        print(f"  verbose={verbose}: {med:.3f} s  (min {min(ts):.3f} s)  ratio to verbose=0: {med / base:.3f}")


if __name__ == "__main__":
    main()
