"""``woodlot history``: every move in the store's append-only history."""

from __future__ import annotations

import argparse

from . import _exit
from ._common import common_arguments, event_json, new_command, open_store
from ._output import print_json, table, use_colour

__all__ = ["add_parser", "run"]

_STYLE = {"promote": "green", "rollback": "yellow", "delete": "red"}


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "history",
        "show the history (saves, promotions, rollbacks, ...)",
        "Show every event of the hash-chained history, oldest first (the newest last, as a log).\n\n"
        'JSON: {"events": [{"seq", "kind", "time", "user", "host", "pid", "version", "reason",\n'
        '"active", "aliases", "details"}]} where "active" is the active version after the event.',
        ["woodlot history --store models --last 10", "woodlot history --json | jq '.events[-1].active'"],
    )
    common_arguments(p)
    p.add_argument("--last", type=int, metavar="N", help="only the newest N events")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    events: list = store.history()
    if args.last is not None:
        if args.last < 0:
            raise ValueError("--last must be 0 or more")
        events = events[len(events) - args.last:] if args.last else []
    if args.json:
        print_json({"events": [event_json(e) for e in events]})
        return _exit.OK
    rows = [
        [f"#{e.seq}", e.time.replace("T", " ")[:19], e.kind, e.version or "", e.active or "-",
         f"{e.user}@{e.host}", (e.reason or "").replace("\n", " ")]
        for e in events
    ]
    styles = [_STYLE.get(e.kind) for e in events]
    print(table(["SEQ", "TIME (UTC)", "EVENT", "VERSION", "ACTIVE AFTER", "BY", "REASON"], rows, styles, use_colour()))
    return _exit.OK
