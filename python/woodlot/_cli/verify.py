"""``woodlot verify``: check every version and the whole history."""

from __future__ import annotations

import argparse

from . import _exit
from ._common import common_arguments, new_command, open_store
from ._output import paint, print_json, use_colour

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "verify",
        "check every version and the history (exit 5 on a problem)",
        "Check every version (file digest, validation, probe replay) and the hash-chained\n"
        "history. Problems exit with the corrupt code; notes (debris, unreferenced blobs) do not.\n\n"
        'JSON: {"ok", "versions_checked", "versions_deleted", "events_checked",\n'
        '"problems": [{"subject", "message"}], "notes": [str]}.',
        ["woodlot verify --store models", "woodlot verify --json > report.json || page-oncall"],
    )
    common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    r = store.verify()
    if args.json:
        print_json({
            "ok": r.ok, "versions_checked": r.versions_checked, "versions_deleted": r.versions_deleted,
            "events_checked": r.events_checked, "problems": r.problems, "notes": r.notes,
        })
    else:
        colour = use_colour()
        head = paint("OK", "green", colour) if r.ok else paint("PROBLEMS", "red", colour)
        print(f"{head}: {r.versions_checked} versions and {r.events_checked} events checked")
        for p in r.problems:
            print(f"  {paint('problem', 'red', colour)}: {p['subject']}: {p['message']}")
        for n in r.notes:
            print(f"  note: {n}")
    return _exit.OK if r.ok else _exit.CORRUPT
