"""Batch prediction, load and save: woodlot against scikit-learn, ONNX Runtime and YDF, one run.

Every figure is printed beside its peer measured in the same run (these machines are shared and
noisy; only a side-by-side ratio means anything):

- the 100k x 50, 5-class, 100 fully grown trees forest (issue 12's case): fit time; rows/s of
  `predict_proba` for batches of 1k, 20k and 200k rows, cold (the first call after loading the
  model from its file) and warm (median of repeats), for woodlot, scikit-learn n_jobs=1 and -1,
  ONNX Runtime (skl2onnx conversion of scikit-learn's forest) and YDF (`ydf.from_sklearn`);
  `predict` and `apply` warm; load and save time and file size against joblib and pickle
  (load also as the first load in a fresh process); peak
  RSS of a 20k-row batch (fresh process each);
- the small forests (tutorial wine v1 and v2, breast_cancer, digits): one-row latency, a 1k
  batch, load and save against joblib.

    python bench/bench_batch.py               # everything (about 10 minutes on 2 cores)
    python bench/bench_batch.py --quick       # 20k x 20, 30 trees: a smoke run
    python bench/bench_batch.py --no-peers    # without ONNX Runtime and YDF

ONNX Runtime, skl2onnx and YDF are optional (`pip install onnxruntime skl2onnx ydf`); a peer
that does not import is reported as such.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.ensemble import RandomForestClassifier as SkForest
from sklearn.model_selection import train_test_split

import woodlot
from woodlot import RandomForestClassifier as WdForest

BATCHES = (1_000, 20_000, 200_000)


def timed(f: Callable[[], object]) -> Tuple[float, object]:
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def times_of(f: Callable[[], object], repeat: int) -> List[float]:
    """Seconds of each of `repeat` calls of `f`. What a call returns is freed after its clock
    stops: freeing a loaded model (hundreds of MB for joblib's) is not part of loading it."""
    return [timed(f)[0] for _ in range(repeat)]


def best_of(f: Callable[[], object], repeat: int) -> float:
    return min(times_of(f, repeat))


def median_of(f: Callable[[], object], repeat: int) -> float:
    times = sorted(times_of(f, repeat))
    return times[len(times) // 2]


def batch_of(X: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(X))
    return np.ascontiguousarray(np.tile(X, (reps, 1))[:n], dtype=np.float32)


def case_data(quick: bool):
    if quick:
        X, y = make_classification(n_samples=20_000, n_features=20, n_informative=10, n_classes=5, random_state=0)
    else:
        X, y = make_classification(n_samples=100_000, n_features=50, n_informative=20, n_classes=5, random_state=0)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0)
    return np.ascontiguousarray(X_train, dtype=np.float32), y_train, np.ascontiguousarray(X_test, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Peak RSS of one 20k-row batch, in a fresh process per library


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(kind: str, path: str, n_features: int) -> None:
    if kind == "woodlot":
        model = woodlot.load(path)
        model.set_params(n_jobs=-1)
    else:
        model = joblib.load(path)
        model.set_params(n_jobs=-1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, n_features)).astype(np.float32)
    before = _status_mb("VmRSS")
    # Reset the peak (VmHWM) to the current RSS, so the peak below is the batch's own.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    model.predict_proba(X)
    print(json.dumps({"before_mb": before, "after_mb": _status_mb("VmHWM")}))


def load_child(kind: str, path: str) -> None:
    """Times one load in this fresh process: nothing loaded before, no freed memory to reuse."""
    elapsed, _ = timed(lambda: woodlot.load(path) if kind == "woodlot" else joblib.load(path))
    print(json.dumps({"seconds": elapsed}))


def fresh_load(kind: str, path: str, repeat: int = 3) -> float:
    """Best of `repeat` first loads, each in a process of its own (imports done before)."""
    cmd = [sys.executable, __file__, "--load-child", kind, path]
    runs = []
    for _ in range(repeat):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1])["seconds"])
    return min(runs)


def peak_rss(kind: str, path: str, n_features: int) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", kind, path, str(n_features)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


# ---------------------------------------------------------------------------------------------
# Peers


def onnx_predictor(sk: SkForest, n_features: int) -> Tuple[Optional[Callable[[np.ndarray], np.ndarray]], str]:
    try:
        import onnxruntime as ort
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as e:
        return None, f"not installed ({e.name})"
    t0 = time.perf_counter()
    onx = convert_sklearn(
        sk, initial_types=[("X", FloatTensorType([None, n_features]))], options={id(sk): {"zipmap": False}}
    )
    opts = ort.SessionOptions()
    # ONNX Runtime's pool threads spin for a while after each run by default, which takes the
    # cores from whatever is measured next; off, each engine is timed on its own.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    sess = ort.InferenceSession(onx.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    note = f"onnxruntime {ort.__version__}, converted in {time.perf_counter() - t0:.1f} s"
    return (lambda X: sess.run(None, {"X": X})[1]), note


def ydf_predictor(sk: SkForest) -> Tuple[Optional[Callable[[np.ndarray], np.ndarray]], str]:
    try:
        import ydf
    except ImportError as e:
        return None, f"not installed ({e.name})"
    t0 = time.perf_counter()
    try:
        model = ydf.from_sklearn(sk)
    except Exception as e:  # noqa: BLE001 - a peer that cannot convert is reported, not fatal
        return None, f"from_sklearn failed: {type(e).__name__}: {str(e)[:120]}"
    note = f"ydf {ydf.__version__}, converted in {time.perf_counter() - t0:.1f} s"

    def predict(X: np.ndarray) -> np.ndarray:
        # from_sklearn models take one multi-dimensional feature named "features".
        return np.asarray(model.predict({"features": X}))

    return predict, note


# ---------------------------------------------------------------------------------------------
# The large case


def large_case(quick: bool, peers: bool) -> None:
    X_train, y_train, X_test = case_data(quick)
    n, f = X_train.shape
    trees = 30 if quick else 100
    print(f"\n== {n + len(X_test):,} x {f}, 5 classes, {trees} fully grown trees ==")
    t_wd, wd = timed(lambda: WdForest(n_estimators=trees, n_jobs=-1, random_state=0).fit(X_train, y_train))
    t_sk, sk = timed(lambda: SkForest(n_estimators=trees, n_jobs=-1, random_state=0).fit(X_train, y_train))
    nodes = sum(e.tree_.node_count for e in wd.estimators_)
    print(f"  fit (n_jobs=-1)   woodlot {t_wd:7.2f} s   sklearn {t_sk:7.2f} s   ratio {t_sk / t_wd:5.1f}x   ({nodes / trees:,.0f} nodes per tree)")

    with tempfile.TemporaryDirectory() as tmp:
        wpath, jpath = os.path.join(tmp, "m.wdl"), os.path.join(tmp, "m.joblib")
        save_w = best_of(lambda: woodlot.dump(wd, wpath), 3)
        save_j = best_of(lambda: joblib.dump(sk, jpath), 3)
        save_p = best_of(lambda: pickle.dumps(sk, protocol=pickle.HIGHEST_PROTOCOL), 3)
        pbytes = pickle.dumps(sk, protocol=pickle.HIGHEST_PROTOCOL)
        load_w = best_of(lambda: woodlot.load(wpath), 5)
        load_j = best_of(lambda: joblib.load(jpath), 3)
        load_p = best_of(lambda: pickle.loads(pbytes), 3)
        size_w, size_j, size_p = os.path.getsize(wpath), os.path.getsize(jpath), len(pbytes)
        print(
            f"  save              woodlot {save_w * 1e3:7.1f} ms  joblib {save_j * 1e3:7.1f} ms ({save_j / save_w:4.1f}x)"
            f"  pickle {save_p * 1e3:7.1f} ms ({save_p / save_w:4.1f}x)"
        )
        print(
            f"  load              woodlot {load_w * 1e3:7.1f} ms  joblib {load_j * 1e3:7.1f} ms ({load_j / load_w:4.1f}x)"
            f"  pickle {load_p * 1e3:7.1f} ms ({load_p / load_w:4.1f}x)"
        )
        fresh_w, fresh_j = fresh_load("woodlot", wpath), fresh_load("joblib", jpath)
        print(
            f"  load, new process woodlot {fresh_w * 1e3:7.1f} ms  joblib {fresh_j * 1e3:7.1f} ms"
            f" ({fresh_j / fresh_w:4.1f}x)   (best of 3 first loads, one process each)"
        )
        print(
            f"  file size         woodlot {size_w / 1e6:7.1f} MB  joblib {size_j / 1e6:7.1f} MB (1/{size_j / size_w:.0f})"
            f"  pickle {size_p / 1e6:7.1f} MB (1/{size_p / size_w:.0f})"
        )

        # Cold: the first call on a model just loaded from its file (woodlot builds its layout at
        # load, so the load is timed above and the first call here pays nothing more).
        libs: Dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        cold: Dict[str, Dict[int, float]] = {}
        for label in ("woodlot n_jobs=-1", "woodlot n_jobs=1", "sklearn n_jobs=-1", "sklearn n_jobs=1"):
            cold[label] = {}
        for b in BATCHES:
            Xb = batch_of(X_test, b)
            for label, jobs in (("woodlot n_jobs=-1", -1), ("woodlot n_jobs=1", 1)):
                m = woodlot.load(wpath)
                m.set_params(n_jobs=jobs)
                cold[label][b] = timed(lambda: m.predict_proba(Xb))[0]
            for label, jobs in (("sklearn n_jobs=-1", -1), ("sklearn n_jobs=1", 1)):
                m = joblib.load(jpath)
                m.set_params(n_jobs=jobs)
                cold[label][b] = timed(lambda: m.predict_proba(Xb))[0]
        rss = {"woodlot": peak_rss("woodlot", wpath, f), "sklearn": peak_rss("sklearn", jpath, f)}

    wd1 = pickle.loads(pickle.dumps(wd))
    wd1.set_params(n_jobs=1)
    wd.set_params(n_jobs=-1)
    sk1 = pickle.loads(pickle.dumps(sk))
    sk1.set_params(n_jobs=1)
    sk.set_params(n_jobs=-1)
    libs["woodlot n_jobs=-1"] = wd.predict_proba
    libs["woodlot n_jobs=1"] = wd1.predict_proba
    libs["sklearn n_jobs=-1"] = sk.predict_proba
    libs["sklearn n_jobs=1"] = sk1.predict_proba
    notes: List[str] = []
    if peers:
        for name, (pred, note) in (
            ("onnxruntime", onnx_predictor(sk, f)),
            ("ydf", ydf_predictor(sk)),
        ):
            notes.append(f"{name}: {note}")
            if pred is not None:
                libs[name] = pred
                cold[name] = {}

    warm: Dict[str, Dict[int, float]] = {k: {} for k in libs}
    # woodlot and scikit-learn first, the peers after them: a peer's threads still winding down
    # must not land in another engine's timing.
    order = [k for k in libs if k.startswith(("woodlot", "sklearn"))]
    order += [k for k in libs if k not in order]
    for label in order:
        pred = libs[label]
        for b in BATCHES:
            Xb = batch_of(X_test, b)
            if label in cold and b not in cold[label]:
                cold[label][b] = timed(lambda: pred(Xb))[0]  # peers: the first call after conversion
            slow = label not in ("woodlot n_jobs=-1", "woodlot n_jobs=1", "sklearn n_jobs=-1")
            reps = 1 if (slow and b >= 200_000) else (3 if b >= 200_000 or slow else 5)
            warm[label][b] = median_of(lambda: pred(Xb), reps)
    for note in notes:
        print(f"  peer: {note}")
    ref = warm["sklearn n_jobs=-1"]
    print("  predict_proba rows/s (warm | cold; ratio = rows/s / sklearn n_jobs=-1 warm)")
    for label in libs:
        cells = []
        for b in BATCHES:
            w, c = warm[label][b], cold.get(label, {}).get(b, float("nan"))
            cells.append(f"{b // 1000:>4}k {b / w:9,.0f} ({ref[b] / w:5.2f}x) | {b / c:9,.0f}")
        print(f"    {label:18s} " + "   ".join(cells))
    Xb = batch_of(X_test, 20_000)
    for method in ("predict", "apply"):
        tw = median_of(lambda: getattr(wd, method)(Xb), 5)
        ts = median_of(lambda: getattr(sk, method)(Xb), 3)
        print(f"  {method:8s} 20k     woodlot {20_000 / tw:9,.0f} rows/s   sklearn n_jobs=-1 {20_000 / ts:9,.0f} rows/s   ratio {ts / tw:5.2f}x")
    for lib in ("woodlot", "sklearn"):
        r = rss[lib]
        print(
            f"  peak RSS, 20k batch  {lib:8s} {r['after_mb']:7.0f} MB"
            f" (model loaded and input made: {r['before_mb']:.0f} MB, +{r['after_mb'] - r['before_mb']:.0f} MB for the batch)"
        )


# ---------------------------------------------------------------------------------------------
# Small forests


def small_cases() -> None:
    print("\n== small forests: one row and 1k rows (n_jobs=1), load and save ==")
    datasets = {
        "wine v1 (100 trees, depth 4)": (load_wine, {"n_estimators": 100, "max_depth": 4}),
        "wine v2 (200 trees, depth 6)": (load_wine, {"n_estimators": 200, "max_depth": 6}),
        "breast_cancer (100 trees)": (load_breast_cancer, {"n_estimators": 100}),
        "digits (100 trees)": (load_digits, {"n_estimators": 100}),
    }
    for name, (loader, params) in datasets.items():
        X, y = loader(return_X_y=True)
        X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
        wd = WdForest(random_state=42, **params).fit(X_train, y_train)
        sk = SkForest(random_state=42, **params).fit(X_train, y_train)
        row = np.ascontiguousarray(X_test[:1])
        X1k = np.ascontiguousarray(np.tile(X_test, (-(-1000 // len(X_test)), 1))[:1000])
        wd.predict_proba(row)
        one_w = median_of(lambda: wd.predict_proba(row), 3000)
        one_s = median_of(lambda: sk.predict_proba(row), 50)
        k_w = median_of(lambda: wd.predict_proba(X1k), 50)
        k_s = median_of(lambda: sk.predict_proba(X1k), 5)
        buf = io.BytesIO()
        save_w = best_of(lambda: woodlot.dumps(wd), 20)
        data = woodlot.dumps(wd)
        save_j = best_of(lambda: joblib.dump(sk, io.BytesIO()), 5)
        joblib.dump(sk, buf)
        jbytes = buf.getvalue()
        load_w = best_of(lambda: woodlot.loads(data), 20)
        load_j = best_of(lambda: joblib.load(io.BytesIO(jbytes)), 5)
        print(f"  {name}")
        print(f"    one row      woodlot {one_w * 1e6:8.1f} µs    sklearn {one_s * 1e6:9.1f} µs   ratio {one_s / one_w:6.0f}x")
        print(f"    1k rows      woodlot {1000 / k_w:10,.0f} rows/s  sklearn {1000 / k_s:10,.0f} rows/s   ratio {k_s / k_w:6.1f}x")
        print(f"    save         woodlot {save_w * 1e3:8.2f} ms    joblib {save_j * 1e3:8.2f} ms   ratio {save_j / save_w:6.1f}x")
        print(f"    load         woodlot {load_w * 1e3:8.2f} ms    joblib {load_j * 1e3:8.2f} ms   ratio {load_j / load_w:6.1f}x")
        print(f"    size         woodlot {len(data) / 1e3:8.1f} kB    joblib {len(jbytes) / 1e3:8.1f} kB   1/{len(jbytes) / len(data):.0f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        rss_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--load-child":
        load_child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small large case, for a smoke run")
    parser.add_argument("--no-peers", action="store_true", help="skip ONNX Runtime and YDF")
    parser.add_argument("--no-small", action="store_true", help="skip the small forests")
    args = parser.parse_args()
    print(
        f"woodlot {woodlot.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
    )
    if not args.no_small:
        small_cases()
    large_case(args.quick, not args.no_peers)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
