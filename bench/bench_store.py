"""Benchmark of the version store against joblib, in the same run (ratios, not absolutes).

- bytes on disk and load time of the tutorial's v2 (200 trees, depth 6 on wine): woodlot's
  model file in the store vs `joblib.dump` (uncompressed) of scikit-learn's same model;
- save time: `store.save` (validation, probes, blob + manifest + event, fsyncs) vs `joblib.dump`;
- `versions()` and `get("active")` on a store holding 1,000 versions (cold: a new VersionStore
  object; warm: the same object again).

Targets (issue 3): at most 1/3 of joblib's bytes, load at least 5x faster than joblib.load,
versions()/get("active") under 50 ms at 1,000 versions.

    python bench/bench_store.py [--versions 1000] [--repeat 30]
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time

import joblib
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier as SkForest
from sklearn.model_selection import train_test_split

import woodlot
from woodlot import RandomForestClassifier, VersionStore


def median_time(f, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()

    data = load_wine(as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=42, stratify=data.target
    )
    params = dict(n_estimators=200, max_depth=6, random_state=42)
    ours = RandomForestClassifier(**params).fit(X_train, y_train)
    theirs = SkForest(**params).fit(X_train, y_train)

    root = tempfile.mkdtemp(prefix="woodlot-bench-")
    try:
        store = VersionStore(os.path.join(root, "models"))
        v = store.save(ours)
        jl_path = os.path.join(root, "model_v2.joblib")
        joblib.dump(theirs, jl_path, compress=0)
        jl_bytes = os.path.getsize(jl_path)
        blob = os.path.join(store.path, "blobs", v.digest)
        wl_bytes = os.path.getsize(blob)

        t_load_wl = median_time(lambda: store.load(v.version), args.repeat)
        t_load_wl_verify = median_time(lambda: store.load(v.version, verify=True), args.repeat)
        t_load_jl = median_time(lambda: joblib.load(jl_path), args.repeat)
        t_save_wl = median_time(lambda: store.save(ours), max(5, args.repeat // 3))
        t_save_jl = median_time(lambda: joblib.dump(theirs, jl_path, compress=0), max(5, args.repeat // 3))

        print("tutorial v2 (200 trees, depth 6, wine)")
        print(f"  bytes on disk     woodlot {wl_bytes:>10,}   joblib {jl_bytes:>10,}   ratio {wl_bytes / jl_bytes:.3f} (target <= 0.333)")
        print(f"  load              woodlot {t_load_wl * 1e3:8.2f} ms   joblib {t_load_jl * 1e3:8.2f} ms   joblib/woodlot {t_load_jl / t_load_wl:.1f}x (target >= 5x)")
        print(f"  load(verify=True) woodlot {t_load_wl_verify * 1e3:8.2f} ms                          joblib/woodlot {t_load_jl / t_load_wl_verify:.1f}x")
        print(f"  save              woodlot {t_save_wl * 1e3:8.2f} ms   joblib {t_save_jl * 1e3:8.2f} ms   woodlot/joblib {t_save_wl / t_save_jl:.2f}x")

        # A store with many versions: a small model saved N times (each save is a full save).
        big = VersionStore(os.path.join(root, "many"))
        small = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X_train, y_train)
        payload = woodlot.dumps(small)
        t = time.perf_counter()
        for _ in range(args.versions):
            big.save(payload)
        t_fill = time.perf_counter() - t
        big.promote("latest")
        path = big.path
        cold_versions = median_time(lambda: VersionStore(path).versions(), 5)
        warm_versions = median_time(big.versions, 10)
        cold_active = median_time(lambda: VersionStore(path).get("active"), 10)
        warm_active = median_time(lambda: big.get("active"), 50)
        print(f"store with {args.versions:,} versions (filled in {t_fill:.1f} s, {t_fill / args.versions * 1e3:.1f} ms per save)")
        print(f"  versions()        cold {cold_versions * 1e3:8.2f} ms   warm {warm_versions * 1e3:8.2f} ms   (target < 50 ms)")
        print(f"  get('active')     cold {cold_active * 1e3:8.2f} ms   warm {warm_active * 1e3:8.2f} ms   (target < 50 ms)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
