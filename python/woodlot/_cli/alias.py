"""``woodlot alias set NAME REF`` and ``woodlot alias rm NAME``."""

from __future__ import annotations

import argparse

from . import _exit
from ._common import common_arguments, new_command, open_store
from ._output import print_json

__all__ = ["add_parser", "run_set", "run_rm"]


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "alias",
        "point an alias at a version, or remove it",
        "Aliases are names (ASCII letters, digits, '.', '_', '-') that point at a version and\n"
        "can be served or promoted like one; every change is an event in the history.\n\n"
        'JSON: set {"alias", "version"}; rm {"alias", "removed": true}.',
        ["woodlot alias set champion v4 --store models", "woodlot alias rm challenger --json"],
    )
    sub = p.add_subparsers(dest="alias_command", metavar="ACTION")
    sub.required = True
    s = sub.add_parser("set", help="point NAME at REF", description="Point alias NAME at version REF.",
                       epilog="example:\n  woodlot alias set champion v4 --store models",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("name", metavar="NAME")
    s.add_argument("ref", metavar="REF")
    common_arguments(s)
    s.set_defaults(func=run_set)
    r = sub.add_parser("rm", help="remove alias NAME", description="Remove alias NAME (not found if there is none).",
                       epilog="example:\n  woodlot alias rm challenger --store models",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("name", metavar="NAME")
    common_arguments(r)
    r.set_defaults(func=run_rm)


def run_set(args: argparse.Namespace) -> int:
    store = open_store(args)
    store.set_alias(args.name, args.ref)
    target = store.aliases[args.name]
    if args.json:
        print_json({"alias": args.name, "version": target})
    else:
        print(f"{args.name} -> {target}")
    return _exit.OK


def run_rm(args: argparse.Namespace) -> int:
    store = open_store(args)
    store.remove_alias(args.name)
    if args.json:
        print_json({"alias": args.name, "removed": True})
    else:
        print(f"removed alias {args.name}")
    return _exit.OK
