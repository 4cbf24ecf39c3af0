"""What every store command shares: ``--store``, ``--json``, opening the store, and the JSON
shape of a version and an event (the documented, stable keys scripts read)."""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional

from .._records import Event, ModelVersion
from .._store import VersionStore
from . import _exit

__all__ = [
    "store_argument",
    "json_argument",
    "common_arguments",
    "open_store",
    "resolve_store",
    "version_json",
    "event_json",
    "markers",
    "EPILOG_JSON",
    "new_command",
]

#: Appended to every command's epilog.
EPILOG_JSON = "With --json the result is one JSON document on stdout (sorted keys); errors still go to stderr."


def store_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--store`` and ``--storage-option`` to a parser. The store defaults to one given
    before the command name, then to ``$WOODLOT_STORE``: :func:`resolve_store` fills it in after
    parsing, so a store named after the command always wins."""
    parser.add_argument(
        "--store",
        default=None,
        metavar="PATH_OR_URL",
        help="the store: a directory or s3://bucket/prefix (default: $WOODLOT_STORE)",
    )
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an object-storage option (endpoint_url, region, allow_http, ...); repeatable; "
        "options left out come from the AWS_* environment variables",
    )


def json_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` (machine-readable output) to a parser."""
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--store``, ``--storage-option`` and ``--json``: what every store command takes."""
    store_argument(parser)
    json_argument(parser)


def resolve_store(args: argparse.Namespace) -> None:
    """Fill a command's ``--store`` from the one given before the command name
    (``woodlot --store models list``), then from ``$WOODLOT_STORE``; and put storage options
    given before the command ahead of the command's own (a key given twice: the command's wins)."""
    if not hasattr(args, "store"):
        return
    args.store = args.store or getattr(args, "global_store", None) or os.environ.get("WOODLOT_STORE")
    args.storage_option = list(getattr(args, "global_storage_option", None) or []) + list(
        getattr(args, "storage_option", None) or []
    )


def _storage_options(pairs: List[str]) -> Optional[Dict[str, Any]]:
    options: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--storage-option takes KEY=VALUE, got {pair!r}")
        lowered = value.lower()
        options[key] = True if lowered == "true" else False if lowered == "false" else value
    return options or None


def open_store(args: argparse.Namespace) -> VersionStore:
    """The store named by ``--store`` or ``$WOODLOT_STORE``; a usage error when neither is set.

    A local path must exist: a typo in ``--store`` must not create an empty store and then
    report "no versions" (only saving, in Python, creates a store).
    """
    if not args.store:
        raise ValueError("no store given: pass --store PATH_OR_URL or set WOODLOT_STORE")
    location = str(args.store)
    options = _storage_options(getattr(args, "storage_option", []) or [])
    if "://" not in location and not os.path.isdir(location):
        raise FileNotFoundError(f"no store at {location!r}: the directory does not exist (check --store)")
    return VersionStore(location, storage_options=options)


def markers(version: str, active: Optional[str], aliases: Dict[str, str]) -> List[str]:
    """``["active", "alias:champion", ...]`` for one version name."""
    out = ["active"] if version == active else []
    out += [f"alias:{name}" for name, target in sorted(aliases.items()) if target == version]
    return out


def version_json(v: ModelVersion, active: Optional[str], aliases: Dict[str, str]) -> Dict[str, Any]:
    """The stable JSON shape of one version (``woodlot list --json``'s items)."""
    return {
        "version": v.version,
        "name": v.name,
        "created": v.created,
        "user": v.user,
        "host": v.host,
        "parent": None if v.parent is None else f"v{v.parent}",
        "kind": v.kind,
        "n_trees": v.n_trees,
        "n_features": v.n_features,
        "n_classes": v.n_classes,
        "n_samples": v.n_samples,
        "digest": v.digest,
        "size": v.size,
        "description": v.description,
        "tags": dict(v.tags),
        "metrics": dict(v.metrics),
        "active": v.name == active,
        "aliases": [name for name, target in sorted(aliases.items()) if target == v.name],
    }


def event_json(e: Event) -> Dict[str, Any]:
    """The stable JSON shape of one history event (``woodlot history --json``'s items)."""
    return {
        "seq": e.seq,
        "kind": e.kind,
        "time": e.time,
        "user": e.user,
        "host": e.host,
        "pid": e.pid,
        "version": e.version,
        "reason": e.reason,
        "active": e.active,
        "aliases": dict(e.aliases),
        "details": e.details,
    }


def new_command(
    subparsers: "argparse._SubParsersAction",
    name: str,
    summary: str,
    description: str,
    examples: List[str],
) -> argparse.ArgumentParser:
    """A command's parser: one-line ``summary`` in ``woodlot --help``; its own ``--help`` shows
    ``description``, the examples, the JSON note and the exit codes."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    epilog += f"\n\n{EPILOG_JSON}\n\n{_exit.EXIT_CODES_HELP}"
    return subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
