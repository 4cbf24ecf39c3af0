"""``woodlot import FILE --trust``: a scikit-learn forest from a pickle or joblib file, saved
once as a store version (``VersionStore.import_sklearn``).

Unpickling runs whatever code the file names, so the command refuses without ``--trust``
(exit code 6) and never opens the file then. Once imported, the version is a woodlot model
file: checksummed, verified on load, and it runs no code.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._store import VersionStore
from . import _exit
from ._common import common_arguments, new_command, open_store, version_json
from ._output import paint, print_json, use_colour

__all__ = ["add_parser", "run"]


def add_parser(subparsers: "argparse._SubParsersAction") -> None:
    p = new_command(
        subparsers,
        "import",
        "save a scikit-learn forest from a pickle/joblib file as a version (needs --trust)",
        "Convert a fitted scikit-learn RandomForestClassifier or ExtraTreesClassifier kept in a\n"
        "pickle or joblib file into a woodlot model and save it as the next version. Its tags\n"
        "record where it came from (source_class, sklearn_version, source_file, source_sha256).\n\n"
        "Unpickling runs code the file names: pass --trust only for files you made or trust;\n"
        "without it the command refuses and does not open the file. A local store directory is\n"
        "created if it does not exist yet (importing saves).\n\n"
        'JSON: the keys of `woodlot list --json`\'s items for the new version, plus "promoted".',
        [
            "woodlot import model_v1.pkl --trust --store models --promote --reason 'what production ran'",
            "woodlot import model_v2.pkl --trust --description 'from joblib: v2' --json",
        ],
    )
    p.add_argument("file", metavar="FILE", help="a pickle or joblib file holding a fitted scikit-learn forest")
    p.add_argument("--trust", action="store_true",
                   help="the file is trusted: unpickling it may run code it names")
    p.add_argument("--description", help="the version's description")
    p.add_argument("--tag", action="append", default=[], metavar="KEY[=VALUE]",
                   help="a tag for the version; repeatable")
    p.add_argument("--promote", action="store_true", help="make the imported version active")
    p.add_argument("--reason", help="why it was promoted (with --promote; kept in the history)")
    common_arguments(p)
    p.set_defaults(func=run)


def _tags(pairs: list) -> dict:
    tags = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key:
            raise ValueError(f"--tag takes KEY or KEY=VALUE, got {pair!r}")
        tags[key] = value
    return tags


def run(args: argparse.Namespace) -> int:
    if args.reason and not args.promote:
        raise ValueError("--reason is only used with --promote")
    if not args.trust:
        print(
            f"woodlot import: refused: unpickling {args.file!r} would run code it names; pass "
            "--trust if you made this file or trust where it came from",
            file=sys.stderr,
        )
        return _exit.REFUSED
    if not os.path.isfile(args.file):
        raise FileNotFoundError(f"no file at {args.file!r}")
    tags = _tags(args.tag)
    if args.store and "://" not in str(args.store) and not os.path.isdir(str(args.store)):
        store = VersionStore(str(args.store))  # importing saves: a new local store is fine
    else:
        store = open_store(args)
    v = store.import_sklearn(args.file, trust=True, tags=tags or None, description=args.description)
    if args.promote:
        store.promote(v, reason=args.reason)
    active_v = store.active
    active = None if active_v is None else active_v.name
    if args.json:
        doc = version_json(v, active, store.aliases)
        doc["promoted"] = bool(args.promote)
        print_json(doc)
        return _exit.OK
    colour = use_colour()
    word = paint(f"imported {v.name}", "green", colour)
    print(f"{word}: {v.tags.get('source_class', '?')} from {os.path.basename(args.file)} "
          f"(scikit-learn {v.tags.get('sklearn_version', '?')}), {v.n_trees} trees, "
          f"{v.size:,} bytes" + ("; now active" if args.promote else ""))
    return _exit.OK
