"""``woodlot show REF``: everything a version's manifest records."""

from __future__ import annotations

import argparse
import json

from . import _exit
from ._common import common_arguments, markers, new_command, open_store, version_json
from ._output import paint, print_json, use_colour

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "show",
        "show one version's record",
        "Show one version: its model, lineage, training-data fingerprint, tags, metrics and\n"
        "parameters. REF is a number, vN, latest, active or an alias.\n\n"
        "JSON: the keys of `woodlot list --json`'s items, plus \"manifest\" (the full record).",
        ["woodlot show v2 --store models", "woodlot show active --json | jq -r .digest"],
    )
    p.add_argument("ref", metavar="REF", help="the version: 3, v3, latest, active or an alias")
    common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    v = store.get(args.ref)
    aliases = store.aliases
    active_v = store.active
    active = None if active_v is None else active_v.name
    if args.json:
        doc = version_json(v, active, aliases)
        doc["manifest"] = v.manifest
        print_json(doc)
        return _exit.OK
    colour = use_colour()
    marks = markers(v.name, active, aliases)
    title = v.name + (f"  ({', '.join(marks)})" if marks else "")
    print(paint(title, "green" if v.name == active else "bold", colour))
    fields = [
        ("created", f"{v.created} by {v.user}@{v.host}"),
        ("parent", "-" if v.parent is None else f"v{v.parent}"),
        ("model", f"{v.kind}, {v.n_trees} trees, {v.n_features} features, {v.n_classes} classes"),
        ("classes", ", ".join(str(c) for c in (v.classes or [])) or "-"),
        ("trained on", f"{v.n_samples} rows, fingerprint {v.training_fingerprint}"),
        ("fit", f"{v.fit_seconds:.3f} s with woodlot {v.library_version}"),
        ("file", f"{v.size:,} bytes, blake3 {v.digest}"),
        ("probes", str(v.probe_rows)),
        ("description", v.description or "-"),
        ("tags", ", ".join(f"{k}={val}" if val else k for k, val in sorted(v.tags.items())) or "-"),
        ("metrics", json.dumps(v.metrics, sort_keys=True) if v.metrics else "-"),
        ("features", ", ".join(v.feature_names or []) or "-"),
        ("params", ", ".join(f"{k}={val}" for k, val in sorted(v.params.items())) or "-"),
    ]
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        print(f"  {paint(key.ljust(width), 'dim', colour)}  {value}")
    return _exit.OK
