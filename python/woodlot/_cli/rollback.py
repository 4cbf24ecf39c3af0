"""``woodlot rollback``: back to the previously active version (or ``--to REF``)."""

from __future__ import annotations

import argparse

from . import _exit
from ._common import common_arguments, new_command, open_store
from ._output import paint, print_json, use_colour

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "rollback",
        "return to the previously active version",
        "Make the previously active version active again (or --to REF). The target is loaded,\n"
        "validated and its probes replayed before anything moves; repeated rollbacks walk\n"
        "further back. Nothing to roll back to exits with the refused code.\n\n"
        'JSON: {"active_before", "active_after"}.',
        ['woodlot rollback --reason "v7 mislabels class 2" --store models', "woodlot rollback --to v3 --json"],
    )
    p.add_argument("--to", metavar="REF", help="the version to return to (default: the previous active one)")
    p.add_argument("--reason", help="why (kept in the history)")
    common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    before = store.active
    v = store.rollback(to=args.to, reason=args.reason)
    before_name = None if before is None else before.name
    if args.json:
        print_json({"active_before": before_name, "active_after": v.name})
    else:
        print(f"rolled back: {paint(v.name, 'green', use_colour())} is active (was {before_name or 'none'})")
    return _exit.OK
