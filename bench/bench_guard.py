"""Benchmark of the deployment guard's decision rule (issue 11), on simulated label streams.

Streams: baseline accuracy 85%, the two models' errors correlated as real models' are (they
disagree on correctness on 12% of rows when equally good), checked after every outcome by the
guard's own Rust code (`woodlot._native.guard_simulate`, the same `Sequential` test a guard
replays from its log).

- outcomes needed to detect a 1, 3 and 5 point accuracy regression at alpha = 0.05 (median
  and 90th percentile over the streams; the sequential McNemar e-process decides), beside the
  sample size a fixed-sample one-sided exact McNemar test needs for the same power (90%: the
  fraction of sequential streams detected by their p90). The ratio is the price of being
  allowed to look after every outcome;
- the measured false-rollback rate with equally good models (accuracy and log-loss), against
  the naive alternative: a fixed-sample McNemar test re-run every 100 outcomes;
- one picture (docs/images/guard_stream.png, with matplotlib): a 3-point-worse stream's
  estimate and anytime-valid interval over time, and the rollback point.

    python bench/bench_guard.py [--streams 2000] [--max-outcomes 200000] [--no-plot]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy import stats

from woodlot import _native

ALPHA = 0.05
BASE = 0.85
DISCORDANCE = 0.12


def fixed_mcnemar_n(delta: float, power: float, alpha: float = ALPHA) -> int:
    """Smallest n at which a one-sided exact McNemar test at ``alpha`` rejects with probability
    ``power`` when the candidate is ``delta`` less accurate (same joint law as the streams)."""
    q = DISCORDANCE
    p = (q + delta) / (2 * q)  # P(baseline-only-right | discordant)

    def power_at(n: int) -> float:
        d = np.arange(n + 1)
        pd = stats.binom.pmf(d, n, q)
        # Critical b for each d: smallest k with P(Bin(d, 1/2) >= k) <= alpha.
        crit = stats.binom.isf(alpha, d, 0.5) + 1
        ok = stats.binom.sf(crit - 1, d, 0.5) <= alpha
        crit = np.where(ok, crit, crit + 1)
        return float(np.sum(pd * stats.binom.sf(crit - 1, d, p)))

    lo, hi = 1, 16
    while power_at(hi) < power:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if power_at(mid) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


def repeated_fixed_false_alarms(streams: int, max_outcomes: int, every: int, seed: int) -> float:
    """Fraction of equally-good streams on which a one-sided exact McNemar test, re-run every
    ``every`` outcomes, ever rejects at ``ALPHA``: what the homemade answer promises."""
    rng = np.random.default_rng(seed)
    looks = max_outcomes // every
    alarms = 0
    for _ in range(streams):
        disc = rng.random(max_outcomes) < DISCORDANCE
        against = rng.random(max_outcomes) < 0.5
        b = np.cumsum(disc & against)[every - 1 :: every][:looks]
        d = np.cumsum(disc)[every - 1 :: every][:looks]
        pvals = stats.binom.sf(b - 1, d, 0.5)
        alarms += bool(np.any(pvals <= ALPHA))
    return alarms / streams


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--max-outcomes", type=int, default=200_000)
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()

    print(f"# woodlot guard benchmark: alpha={ALPHA}, baseline accuracy {BASE}, discordance "
          f"{DISCORDANCE}, {args.streams} streams per row, checked after every outcome")
    print()
    print("| regression | detected | sequential median | sequential p90 | fixed McNemar n (same power) | p90 / fixed |")
    print("|---|---|---|---|---|---|")
    for points in (1, 3, 5):
        delta = points / 100
        t0 = time.perf_counter()
        r = json.loads(_native.guard_simulate(args.streams, args.max_outcomes, metric="accuracy",
                                              delta=delta, discordance=DISCORDANCE,
                                              base_accuracy=BASE, seed=points))
        at = np.sort(np.asarray(r["rollback_at"]))
        detected = r["rolled_back"] / r["streams"]
        med = int(np.median(at))
        p90 = int(np.quantile(at, 0.9)) if detected >= 0.9 else None
        fixed = fixed_mcnemar_n(delta, 0.9)
        ratio = f"{p90 / fixed:.2f}" if p90 else "n/a"
        print(f"| {points} points | {detected:.3f} | {med} | {p90 if p90 else '> horizon'} | {fixed} | {ratio} |"
              f"  <!-- {time.perf_counter() - t0:.1f} s -->")
    print()
    print("| equally good models | streams | outcomes per stream | rolled back | rate | bound (alpha + 3 s.e.) |")
    print("|---|---|---|---|---|---|")
    horizon = 20_000
    for metric in ("accuracy", "log_loss"):
        r = json.loads(_native.guard_simulate(args.streams, horizon, metric=metric, delta=0.0,
                                              discordance=DISCORDANCE, base_accuracy=BASE, seed=99))
        rate = r["rolled_back"] / r["streams"]
        bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / r["streams"])
        print(f"| guard ({metric}) | {r['streams']} | {horizon} | {r['rolled_back']} | {rate:.4f} | {bound:.4f} |")
    naive = repeated_fixed_false_alarms(min(args.streams, 2000), horizon, 100, seed=5)
    print(f"| fixed McNemar re-run every 100 outcomes | {min(args.streams, 2000)} | {horizon} | - | {naive:.4f} | - |")

    if args.no_plot:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\n(matplotlib not installed: no picture)")
        return
    pts = json.loads(_native.guard_simulate_trace(200_000, every=10, metric="accuracy", delta=0.03,
                                                  discordance=DISCORDANCE, base_accuracy=BASE,
                                                  seed=4))  # a stream near the median
    n = np.array([p["outcomes"] for p in pts])
    est = np.array([p["estimate"] for p in pts]) * 100
    lo = np.array([p["lower"] for p in pts]) * 100
    hi = np.array([p["upper"] for p in pts]) * 100
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    ax.fill_between(n, lo, hi, color="tab:blue", alpha=0.2, label="anytime-valid interval (PrPl-EB, each side 5%)")
    ax.plot(n, est, color="tab:blue", label="estimate: accuracy(v1) - accuracy(v2), points")
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(3, color="gray", lw=0.8, ls=":", label="true regression: 3 points")
    ax.axvline(n[-1], color="tab:red", ls="--", label=f"rollback after {n[-1]} outcomes (McNemar e-value >= 20)")
    ev = np.array([p["e_value"] for p in pts])
    ax2 = ax.twinx()
    ax2.semilogy(n, ev, color="tab:green", lw=1, label="McNemar e-value (right axis)")
    ax2.axhline(1 / ALPHA, color="tab:green", lw=0.8, ls=":")
    ax2.set_ylabel("e-value against 'v2 not worse' (rollback at 1/alpha = 20)")
    ax2.set_ylim(1e-3, 1e3)
    ax2.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("outcomes joined")
    ax.set_ylabel("points of accuracy")
    ax.set_ylim(-15, 15)
    ax.set_title("A 3-point-worse candidate on probation, checked after every outcome")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / "images" / "guard_stream.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"\npicture: {out.relative_to(out.parents[2])} (rollback at {n[-1]} outcomes)")


if __name__ == "__main__":
    main()
