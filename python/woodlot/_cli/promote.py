"""``woodlot promote REF``: make a version active, optionally only if it beats the active one."""

from __future__ import annotations

import argparse

from . import _exit
from ._common import common_arguments, new_command, open_store
from ._data import data_arguments, read_dataset
from ._output import fmt_number, paint, print_json, use_colour

__all__ = ["add_parser", "run"]

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "promote",
        "make a version active (optionally gated on evaluation data)",
        "Make REF the active version, after loading it and replaying its probes. The event\n"
        "records who, when, why, and the last comparison that included it.\n\n"
        "--expect-active REF (or none) promotes only if the active version is still REF: a\n"
        "concurrent promotion makes it exit with the conflict code and change nothing.\n"
        "--if-better evaluates REF and the active version on --data/--target in Rust and promotes\n"
        "only if REF beats it by --min-delta on --metric (and, with --alpha, McNemar's exact test\n"
        "is significant); a refused gate exits with the refused code. The decision is recorded\n"
        "either way.\n\n"
        'JSON: {"promoted": bool, "version", "active_before", "active_after"}; with --if-better\n'
        'also "metric", "candidate_value", "active_value", "delta", "min_delta", "alpha",\n'
        '"p_value", "reason", "event".',
        [
            'woodlot promote v2 --reason "beats v1 on March data" --store models',
            "woodlot promote v3 --expect-active v2 --json",
            "woodlot promote v3 --if-better --data holdout.csv --target label --min-delta 0.01",
        ],
    )
    p.add_argument("ref", metavar="REF", help="the version to promote: 3, v3, latest or an alias")
    p.add_argument("--reason", help="why (kept in the history)")
    p.add_argument("--expect-active", metavar="REF",
                   help="promote only if the active version is still REF ('none': no active version)")
    p.add_argument("--if-better", action="store_true",
                   help="promote only if REF beats the active version on --data (needs --data and --target)")
    data_arguments(p, required=False)
    p.add_argument("--metric", choices=METRICS, default="accuracy", help="the gate's metric (default: accuracy)")
    p.add_argument("--min-delta", type=float, default=0.0, help="required improvement (default: 0.0)")
    p.add_argument("--alpha", type=float, help="also require McNemar's exact p < ALPHA")
    common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.if_better and (not args.data or not args.target):
        raise ValueError("--if-better needs --data FILE and --target COLUMN")
    if not args.if_better and (args.data or args.target):
        raise ValueError("--data and --target are only used with --if-better")
    if args.if_better and args.expect_active:
        raise ValueError("--if-better checks the active version itself; leave out --expect-active")
    store = open_store(args)
    colour = use_colour()
    if args.if_better:
        X, y = read_dataset(args.data, args.target)
        d = store.promote_if_better(args.ref, X, y, metric=args.metric, min_delta=args.min_delta,
                                    alpha=args.alpha, reason=args.reason)
        if args.json:
            print_json({
                "promoted": d.promoted, "version": d.candidate, "active_before": d.active_before,
                "active_after": d.active_after, "metric": d.metric, "candidate_value": d.candidate_value,
                "active_value": d.active_value, "delta": d.delta, "min_delta": d.min_delta, "alpha": d.alpha,
                "p_value": d.p_value, "reason": d.reason, "event": d.event,
            })
        else:
            word = paint("promoted", "green", colour) if d.promoted else paint("refused", "red", colour)
            print(f"{word}: {d.reason}")
            print(f"  {d.metric}: {d.candidate} {fmt_number(d.candidate_value)}, active "
                  f"{d.active_before or '-'} {fmt_number(d.active_value)}; active now {d.active_after or '-'}")
        return _exit.OK if d.promoted else _exit.REFUSED
    before = store.active
    v = store.promote(args.ref, reason=args.reason, expect_active=args.expect_active)
    before_name = None if before is None else before.name
    if args.json:
        print_json({"promoted": True, "version": v.name, "active_before": before_name, "active_after": v.name})
    else:
        print(f"{paint(v.name, 'green', colour)} is active (was {before_name or 'none'})")
    return _exit.OK
