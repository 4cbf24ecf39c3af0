"""``woodlot delete REF``: delete a version (its number is never reused)."""

from __future__ import annotations

import argparse

from . import _exit
from ._common import common_arguments, event_json, new_command, open_store
from ._output import print_json

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "delete",
        "delete a version (the active one or an alias target needs --force)",
        "Delete a version: from then on it can never be promoted, aliased or rolled back to;\n"
        "`woodlot gc` frees its files. Deleting the active version or an alias target without\n"
        "--force exits with the refused code.\n\n"
        'JSON: {"deleted": version, "event": the delete event (as in `woodlot history --json`)}.',
        ['woodlot delete v3 --reason "trained on leaked labels" --store models', "woodlot delete v5 --force --json"],
    )
    p.add_argument("ref", metavar="REF")
    p.add_argument("--force", action="store_true", help="also delete the active version or an alias target")
    p.add_argument("--reason", help="why (kept in the history)")
    common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    name = store.get(args.ref).name
    e = store.delete(args.ref, force=args.force, reason=args.reason)
    if args.json:
        print_json({"deleted": name, "event": event_json(e)})
    else:
        print(f"deleted {name} (event #{e.seq}); run `woodlot gc` to free its files")
    return _exit.OK
