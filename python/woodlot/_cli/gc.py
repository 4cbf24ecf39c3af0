"""``woodlot gc``: free the files no live version needs."""

from __future__ import annotations

import argparse

from . import _exit
from ._common import common_arguments, new_command, open_store
from ._output import print_json

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "gc",
        "remove unreferenced blobs and old temp files",
        "Remove blobs no live version references and temp files older than --grace-seconds.\n"
        "--dry-run only reports (no lock, no write: works on a read-only store). On object\n"
        "storage a run marks unreferenced blobs and a later run deletes them.\n\n"
        'JSON: {"dry_run", "removed": [{"path", "bytes", "reason"}], "bytes_freed",\n'
        '"kept_recent", "marked", "restored", "repaired", "skipped"}.',
        ["woodlot gc --dry-run --store models", "woodlot gc --grace-seconds 0 --json"],
    )
    p.add_argument("--dry-run", action="store_true", help="report what would go; change nothing")
    p.add_argument("--grace-seconds", type=float, default=3600.0,
                   help="keep debris younger than this (default: 3600)")
    common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    r = store.gc(dry_run=args.dry_run, grace_seconds=args.grace_seconds)
    if args.json:
        print_json(r)
        return _exit.OK
    verb = "would remove" if r["dry_run"] else "removed"
    for item in r["removed"]:
        print(f"{verb} {item['path']} ({item['bytes']:,} bytes): {item['reason']}")
    print(f"{verb} {len(r['removed'])} files, {r['bytes_freed']:,} bytes"
          + (f"; marked {r['marked']}" if r.get("marked") else "")
          + (f"; kept {r['kept_recent']} recent" if r.get("kept_recent") else ""))
    for s in r.get("skipped") or []:
        print(f"skipped: {s}")
    return _exit.OK
