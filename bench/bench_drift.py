"""What keeping the training histogram costs: fit time and model file size, against a woodlot
build without it (format 2.0), measured in the same run.

The fit bins every feature anyway; the histogram is one more pass over the 1-byte bin codes,
so fit time should not move, and the file grows by the histogram's JSON in the meta. Both
builds fit the same 100k x 50, 5-class data with the same seed in fresh processes, interleaved
(this machine is shared and noisy: only the side-by-side ratio means anything).

    pip install --target /tmp/woodlot-2.0 woodlot-<older>.whl     # a build without histograms
    python bench/bench_drift.py --baseline /tmp/woodlot-2.0 [--trees 30] [--repeats 3]

Without ``--baseline`` it reports this build alone (fit time, file size, histogram size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Dict, List, Optional

CHILD = r"""
import json, sys, time
import numpy as np
from sklearn.datasets import make_classification
import woodlot
trees = int(sys.argv[1])
X, y = make_classification(n_samples=100_000, n_features=50, n_informative=12, n_classes=5,
                           random_state=0)
m = woodlot.RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=-1)
t = time.perf_counter()
m.fit(X, y)
fit = time.perf_counter() - t
blob = woodlot.dumps(m)
h = getattr(m, "training_histogram_", None)
print(json.dumps({"fit": fit, "bytes": len(blob), "format": list(blob[8:12]),
                  "histogram_json": len(json.dumps(h, separators=(",", ":"))) if h else 0}))
"""


def run(trees: int, path: Optional[str]) -> Dict[str, float]:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", CHILD, str(trees)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="a directory holding a woodlot build without histograms")
    ap.add_argument("--trees", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    builds = {"this build": None}
    if a.baseline:
        builds["baseline"] = a.baseline
    results: Dict[str, List[Dict[str, float]]] = {k: [] for k in builds}
    for _ in range(a.repeats):
        for name, path in builds.items():
            results[name].append(run(a.trees, path))
    print(f"100,000 x 50, 5 classes, {a.trees} trees, n_jobs=-1, {a.repeats} interleaved fits each")
    for name, rs in results.items():
        fits = [r["fit"] for r in rs]
        r0 = rs[0]
        print(f"  {name:10s}: format {r0['format'][0]}.{r0['format'][2]}  fit median "
              f"{statistics.median(fits):.2f} s (min {min(fits):.2f})  file {r0['bytes']:,} B  "
              f"histogram JSON {r0['histogram_json']:,} B")
    if a.baseline:
        cur, base = results["this build"], results["baseline"]
        ratio = statistics.median(r["fit"] for r in cur) / statistics.median(r["fit"] for r in base)
        best = min(r["fit"] for r in cur) / min(r["fit"] for r in base)
        grow = cur[0]["bytes"] - base[0]["bytes"]
        print(f"fit time this/baseline: median {ratio:.3f}, best {best:.3f}")
        print(f"file size: +{grow:,} B ({100 * grow / base[0]['bytes']:.3f}% of {base[0]['bytes']:,} B)")


if __name__ == "__main__":
    main()
