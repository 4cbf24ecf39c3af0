"""What every store command shares: the ``--store`` option and opening the store it names."""

from __future__ import annotations

import argparse
import os

from .._store import VersionStore

__all__ = ["store_argument", "open_store"]


def store_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--store`` (defaulting to ``$WOODLOT_STORE``) to a command's parser."""
    parser.add_argument(
        "--store",
        default=os.environ.get("WOODLOT_STORE"),
        metavar="PATH_OR_URL",
        help="the store: a directory or s3://bucket/prefix (default: $WOODLOT_STORE)",
    )


def open_store(args: argparse.Namespace) -> VersionStore:
    """The store named by ``--store`` or ``$WOODLOT_STORE``; a usage error when neither is set."""
    if not args.store:
        raise ValueError("no store given: pass --store PATH_OR_URL or set WOODLOT_STORE")
    return VersionStore(args.store)
