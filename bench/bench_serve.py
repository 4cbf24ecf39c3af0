"""Benchmark of ``woodlot serve`` against MLflow's scoring server and a FastAPI app, in the same
run, on the same cores, with the same load generator (ratios, not absolutes).

- ``woodlot serve`` (the Rust server, 2 workers) serving the tutorial's v1 (100 trees, depth 4
  on wine, fitted on the DataFrame) from a local store;
- ``mlflow models serve --env-manager local`` serving scikit-learn's same v1 (same parameters,
  same rows), saved with ``mlflow.sklearn.save_model``: what MLflow users run;
- a minimal FastAPI + uvicorn app around scikit-learn's same model (bench/serve_fastapi_app.py).

Each cell is ``wrk`` (Debian's package: ``apt-get install -y wrk``; one thread) with
bench/wrk/post.lua POSTing a ``dataframe_split`` body of 1 or 100 rows at concurrency 1, 8 and
64 for ``--duration`` seconds, after a 1 s warm-up; reported: requests/s, p50/p99 from wrk's
latency histogram, errors, and the CPU wrk itself used (cores, from its rusage) so a saturated
load generator shows. Then the time for a promote on a local store to be visible at ``/version``
(``--poll-seconds``, default 1.0 as ``woodlot serve``'s default), median and max of ``--moves``.

Targets (issue 10, 2 cores): 1-row requests/s at c=8 at least 200x MLflow's and 50x the FastAPI
app's, p99 at most 2 ms there, a promote visible within 1.5 s.

    pip install mlflow fastapi uvicorn    # benchmark-only, not test dependencies
    python bench/bench_serve.py [--duration 10] [--skip-mlflow] [--skip-fastapi]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import joblib
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier as SkForest
from sklearn.model_selection import train_test_split

import woodlot

try:  # benchmark-only dependency (pip install mlflow); --skip-mlflow runs without it
    import mlflow.sklearn as mlflow_sklearn
except ImportError:
    mlflow_sklearn = None

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "post.lua"
PARAMS = dict(n_estimators=100, max_depth=4, random_state=42)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer /ping within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants (uvicorn/gunicorn workers)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            total += cpu_seconds(p)
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except OSError:
            pass
    return total


def wrk(url: str, body_file: Path, connections: int, duration: float, server_pid: int) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(LUA), url + "/invocations", "--", str(body_file)]
    subprocess.run(["wrk", "-t1", f"-c{connections}", "-d1s", "-s", str(LUA), url + "/invocations", "--", str(body_file)], capture_output=True, check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = process_tree_cpu(server_pid)
    t = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = process_tree_cpu(server_pid) - server_before
    line = next(l for l in out.splitlines() if l.startswith("WRK_RESULT "))
    r = json.loads(line[len("WRK_RESULT ") :])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    r["wrk_cores"] = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / wall
    r["server_cores"] = server_cpu / wall
    return r


def promote_visibility(store: woodlot.VersionStore, url: str, v1, v2, moves: int) -> list:
    times = []
    for i in range(moves):
        target = v2 if i % 2 == 0 else v1
        store.promote(target)
        t = time.monotonic()
        while True:
            with urllib.request.urlopen(url + "/version", timeout=5) as r:
                if json.loads(r.read())["version"] == target.version:
                    break
            time.sleep(0.005)
        times.append(time.monotonic() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk cell")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--rows", default="1,100")
    ap.add_argument("--poll-seconds", type=float, default=1.0)
    ap.add_argument("--moves", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2, help="woodlot serve's worker threads (p99 on 2 busy cores: try 1)")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--skip-fastapi", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    concurrency = [int(c) for c in args.concurrency.split(",")]
    row_counts = [int(r) for r in args.rows.split(",")]

    data = load_wine(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace("/", "_"))
    X_train, X_test, y_train, _ = train_test_split(X, data.target, test_size=0.3, random_state=42, stratify=data.target)
    ours = woodlot.RandomForestClassifier(**PARAMS).fit(X_train, y_train)
    theirs = SkForest(**PARAMS).fit(X_train, y_train)

    root = Path(tempfile.mkdtemp(prefix="woodlot-bench-serve-"))
    procs = {}
    try:
        bodies = {}
        for n in row_counts:
            rows = X_test.sample(n=n, replace=n > len(X_test), random_state=0)
            bodies[n] = root / f"body_{n}.json"
            bodies[n].write_text(json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}))
        store = woodlot.VersionStore(root / "models")
        v1 = store.save(ours, description="tutorial v1")
        v2 = store.save(woodlot.RandomForestClassifier(n_estimators=200, max_depth=6, random_state=42).fit(X_train, y_train))
        store.promote(v1)
        servers = {}
        port = free_port()
        procs["woodlot"] = subprocess.Popen(
            [sys.executable, "-c", "from woodlot._cli import console_main; console_main()", "serve", "--store", str(root / "models"),
             "--port", str(port), "--workers", str(args.workers), "--poll-seconds", str(args.poll_seconds)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        servers["woodlot"] = f"http://127.0.0.1:{port}"
        if not args.skip_mlflow:
            if mlflow_sklearn is None:
                sys.exit("mlflow is not installed: pip install mlflow (or pass --skip-mlflow)")
            # We fitted this model in this run, so its tree type is trusted (skops asks).
            mlflow_sklearn.save_model(theirs, str(root / "mlflow_model"), skops_trusted_types=["sklearn.tree._tree.Tree"])
            port = free_port()
            procs["mlflow"] = subprocess.Popen(
                [shutil.which("mlflow") or "mlflow", "models", "serve", "-m", str(root / "mlflow_model"), "--env-manager", "local",
                 "-h", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            servers["mlflow"] = f"http://127.0.0.1:{port}"
        if not args.skip_fastapi:
            joblib.dump(theirs, root / "model.joblib")
            port = free_port()
            procs["fastapi"] = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "serve_fastapi_app:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                cwd=HERE, env={**os.environ, "WOODLOT_BENCH_MODEL": str(root / "model.joblib")},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            servers["fastapi"] = f"http://127.0.0.1:{port}"
        for name, url in servers.items():
            wait_ready(url, procs[name])
        # Every server answers the same body the same way before it is timed.
        for name, url in servers.items():
            req = urllib.request.Request(url + "/invocations", data=bodies[row_counts[0]].read_bytes(), headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                print(f"{name:8s} {url}: {r.read()[:80].decode()}")

        print(f"\nwrk -t1, {args.duration:g} s per cell, {os.cpu_count()} cores; latencies in ms; cores = CPU used / wall time")
        print(f"{'server':8s} {'rows':>4s} {'conc':>4s} {'req/s':>10s} {'p50':>8s} {'p99':>8s} {'errors':>6s} {'wrk cores':>9s} {'server cores':>12s}")
        results = {}
        for n in row_counts:
            for c in concurrency:
                for name, url in servers.items():
                    r = wrk(url, bodies[n], c, args.duration, procs[name].pid)
                    results[(name, n, c)] = r
                    print(f"{name:8s} {n:4d} {c:4d} {r['rps']:10.0f} {r['p50_us'] / 1e3:8.3f} {r['p99_us'] / 1e3:8.3f} {r['errors']:6d} "
                          f"{r['wrk_cores']:9.2f} {r['server_cores']:12.2f}", flush=True)
        print("\nratios (woodlot req/s over the peer's, same cell):")
        for n in row_counts:
            for c in concurrency:
                w = results[("woodlot", n, c)]["rps"]
                parts = [f"{peer} {w / results[(peer, n, c)]['rps']:.0f}x" for peer in ("mlflow", "fastapi") if (peer, n, c) in results]
                print(f"  {n:3d} rows, c={c:2d}: " + ", ".join(parts))
        times = promote_visibility(store, servers["woodlot"], v1, v2, args.moves)
        print(f"\npromote visible at /version (poll {args.poll_seconds:g} s, {args.moves} moves): "
              f"median {statistics.median(times):.3f} s, max {max(times):.3f} s")
        key = ("woodlot", 1, 8)
        if key in results:
            r = results[key]
            print("\ntargets at 1 row, c=8:")
            for peer, want in (("mlflow", 200), ("fastapi", 50)):
                if (peer, 1, 8) in results:
                    ratio = r["rps"] / results[(peer, 1, 8)]["rps"]
                    print(f"  vs {peer}: {ratio:.0f}x (target >= {want}x): {'met' if ratio >= want else 'NOT met'}")
            print(f"  p99 {r['p99_us'] / 1e3:.3f} ms (target <= 2 ms): {'met' if r['p99_us'] <= 2000 else 'NOT met'}")
        print(f"  promote visible max {max(times):.3f} s (target <= 1.5 s): {'met' if max(times) <= 1.5 else 'NOT met'}")
    finally:
        for p in procs.values():
            stop(p)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
