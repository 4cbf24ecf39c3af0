"""A fit through dask's joblib backend vs a local fit, same data, same machine, same run.

A LocalCluster of 2 single-threaded worker processes on 127.0.0.1 against a local fit on 2 Rust
threads: the ratio is the overhead of going through the engine (process start excluded,
shipping, per-worker binning of nothing, tree transfer back, assembly). Also prints the bytes
shipped to each worker (the broadcast bins, labels and weights, measured as the pickled size
dask sends) and back from each chunk (its trees as a model file), and checks the two forests are
bit-identical. Only ratios and sizes measured in this run mean anything on a shared machine.

    python bench/bench_distributed.py                   # 1M x 20, 100 trees (a few minutes)
    python bench/bench_distributed.py --quick           # 100k x 20, 20 trees, a smoke run
    python bench/bench_distributed.py --json out.json   # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import pickle
import time

import numpy as np
from distributed import Client, LocalCluster
from joblib import parallel_config
from sklearn.datasets import make_classification

from woodlot import RandomForestClassifier
from woodlot._native import prepare_training_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100k rows, 20 trees")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--trees", type=int, default=None)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    trees = args.trees or (20 if args.quick else 100)

    X, y = make_classification(n_samples=rows, n_features=args.features, n_informative=10,
                               n_classes=2, random_state=0)
    params = dict(n_estimators=trees, random_state=0)

    t = time.perf_counter()
    local = RandomForestClassifier(n_jobs=2, **params).fit(X, y)
    local_s = time.perf_counter() - t

    # What the driver ships to every worker (the same arrays _distributed broadcasts).
    y_codes = np.unique(y, return_inverse=True)[1].astype(np.uint32)
    t = time.perf_counter()
    binned, _ = prepare_training_set(X, y_codes, 2, None, None, -1)
    prepare_s = time.perf_counter() - t
    shipped = len(pickle.dumps((binned, y_codes, None), protocol=5))

    t = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    client.wait_for_workers(2)
    start_s = time.perf_counter() - t
    try:
        with parallel_config(backend="dask"):
            t = time.perf_counter()
            dist = RandomForestClassifier(**params).fit(X, y)
            dist_s = time.perf_counter() - t
    finally:
        client.close()
        cluster.close()

    identical = bool(np.array_equal(local.predict_proba(X[:20_000]),
                                    dist.predict_proba(X[:20_000])))
    model_bytes = len(pickle.dumps(local._native, protocol=5))
    chunks = dist._training["chunks"]
    figures = {
        "rows": rows, "features": args.features, "trees": trees,
        "local_2_threads_s": round(local_s, 2),
        "dask_2_workers_s": round(dist_s, 2),
        "dask_over_local": round(dist_s / local_s, 3),
        "driver_prepare_s": round(prepare_s, 2),
        "cluster_start_s": round(start_s, 2),
        "x_bytes": int(X.nbytes),
        "shipped_bytes_per_worker": shipped,
        "returned_bytes_per_chunk": model_bytes // chunks,
        "chunks": chunks,
        "workers": dist._training["workers"],
        "bit_identical": identical,
    }
    print(f"{rows:,} x {args.features}, {trees} trees")
    print(f"  local fit, 2 Rust threads        {local_s:8.2f} s")
    print(f"  dask, 2 single-threaded workers  {dist_s:8.2f} s   "
          f"({dist_s / local_s:.2f}x the local time; cluster start {start_s:.1f} s not counted)")
    print(f"  driver: check + bin + fingerprint {prepare_s:7.2f} s (part of the dask time)")
    print(f"  shipped to each worker once      {shipped / 1e6:8.1f} MB   "
          f"(X itself is {X.nbytes / 1e6:.1f} MB)")
    print(f"  returned per chunk (trees)       {model_bytes / chunks / 1e6:8.1f} MB   "
          f"({chunks} chunks on {dist._training['workers']} workers)")
    print(f"  bit-identical predictions        {identical}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
