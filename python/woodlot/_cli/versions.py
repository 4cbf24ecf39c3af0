"""``woodlot list``: every live version, with active and alias markers."""

from __future__ import annotations

import argparse

from . import _exit
from ._common import common_arguments, markers, new_command, open_store, version_json
from ._output import paint, print_json, table, use_colour

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "list",
        "list the versions (active and aliases marked)",
        "List every version of the store, oldest first (deleted ones are left out).\n\n"
        'JSON: {"store", "active", "aliases": {name: version}, "versions": [{"version", "name",\n'
        '"created", "user", "host", "parent", "kind", "n_trees", "n_features", "n_classes",\n'
        '"n_samples", "digest", "size", "description", "tags", "metrics", "active", "aliases"}]}',
        ["woodlot list --store models", "WOODLOT_STORE=s3://bucket/models woodlot list --json | jq '.active'"],
    )
    common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    versions = store.versions()
    aliases = store.aliases
    active_v = store.active
    active = None if active_v is None else active_v.name
    if args.json:
        print_json({
            "store": store.path,
            "active": active,
            "aliases": aliases,
            "versions": [version_json(v, active, aliases) for v in versions],
        })
        return _exit.OK
    if not versions:
        print(f"no versions in {store.path}")
        return _exit.OK
    colour = use_colour()
    rows = []
    styles = []
    for v in versions:
        marks = markers(v.name, active, aliases)
        rows.append([
            v.name,
            v.created.replace("T", " ")[:19],
            str(v.n_trees),
            str(v.n_features),
            f"{v.size:,}",
            ", ".join(marks),
            (v.description or "")[:60].replace("\n", " "),
        ])
        styles.append("green" if v.name == active else None)
    print(table(["VERSION", "CREATED (UTC)", "TREES", "FEATURES", "BYTES", "MARKS", "DESCRIPTION"], rows, styles, colour))
    if active is None:
        print(paint("no active version", "yellow", colour))
    return _exit.OK
