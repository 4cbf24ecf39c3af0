"""``woodlot compare --data FILE --target COLUMN``: versions on the same rows, in Rust."""

from __future__ import annotations

import argparse
import itertools
from typing import Any, Dict, List

from . import _exit
from ._common import common_arguments, new_command, open_store
from ._data import data_arguments, read_dataset
from ._output import fmt_number, paint, print_json, table, use_colour

__all__ = ["add_parser", "run"]

_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "compare",
        "compare versions on the same evaluation data",
        "Evaluate versions (all by default) on the same rows of a CSV or Parquet file: accuracy,\n"
        "balanced accuracy, macro F1, log loss, per-class recall, confusion matrices, and per pair\n"
        "the exact McNemar p-value and a paired-bootstrap 95% interval of the accuracy difference.\n"
        "The data's fingerprint is recorded in the history (unless --no-record).\n\n"
        'JSON: {"versions", "labels", "n_rows", "eval_fingerprint", "best", "active", "event",\n'
        '"metrics": {version: {"accuracy", "balanced_accuracy", "macro_f1", "log_loss",\n'
        '"per_class_recall", "confusion_matrix"}}, "pairwise": [{"a", "b", "n_rows",\n'
        '"disagreements", "accuracy_diff", "mcnemar_p", "ci_low", "ci_high", "n_bootstrap", "seed"}]}.',
        [
            "woodlot compare --data holdout.csv --target label --store models",
            "woodlot compare --data holdout.parquet --target label --versions v3 active --json",
        ],
    )
    data_arguments(p, required=True)
    p.add_argument("--versions", nargs="+", metavar="REF", help="versions to compare (default: all)")
    p.add_argument("--n-bootstrap", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--no-record", action="store_true", help="do not record the comparison in the history")
    common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.n_bootstrap < 1:
        raise ValueError("--n-bootstrap must be at least 1")
    X, y = read_dataset(args.data, args.target)
    store = open_store(args)
    cmp = store.compare(X, y, versions=args.versions, n_bootstrap=args.n_bootstrap, seed=args.seed,
                        record=not args.no_record)
    pairs = [cmp.pairwise(a, b) for a, b in itertools.combinations(cmp.versions, 2)]
    if args.json:
        metrics: Dict[str, Any] = {}
        for name in cmp.versions:
            m = cmp.metrics[name]
            metrics[name] = {k: m[k] for k in _METRICS}
            metrics[name]["per_class_recall"] = dict(m["per_class_recall"])
            metrics[name]["confusion_matrix"] = m["confusion_matrix"].tolist()
        print_json({
            "versions": list(cmp.versions), "labels": [str(label) for label in cmp.labels], "n_rows": cmp.n_rows,
            "eval_fingerprint": cmp.eval_fingerprint, "best": cmp.best, "active": cmp.active, "event": cmp.event,
            "metrics": metrics,
            "pairwise": [{
                "a": p.a, "b": p.b, "n_rows": p.n_rows, "disagreements": p.disagreements,
                "accuracy_diff": p.accuracy_diff, "mcnemar_p": p.mcnemar_p, "ci_low": p.ci_low,
                "ci_high": p.ci_high, "n_bootstrap": p.n_bootstrap, "seed": p.seed,
            } for p in pairs],
        })
        return _exit.OK
    colour = use_colour()
    print(f"{len(cmp.versions)} versions on {cmp.n_rows} rows of {args.data} (data {cmp.eval_fingerprint[:12]})")
    rows: List[List[str]] = []
    styles: List[Any] = []
    for name in cmp.versions:
        m = cmp.metrics[name]
        marks = [w for w, on in (("best", name == cmp.best), ("active", name == cmp.active)) if on]
        rows.append([name] + [fmt_number(m[k]) for k in _METRICS] + [", ".join(marks)])
        styles.append("green" if name == cmp.best else None)
    print(table(["VERSION", "ACCURACY", "BALANCED", "MACRO_F1", "LOG_LOSS", "MARKS"], rows, styles, colour))
    for p in pairs:
        print(paint(str(p), "dim", colour) if colour else str(p))
    return _exit.OK
