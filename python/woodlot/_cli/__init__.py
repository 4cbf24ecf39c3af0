"""The ``woodlot`` command line: operate a version store from the shell.

Each command lives in its own module that exposes ``add_parser(subparsers)``; the module's
parser sets ``func`` (called with the parsed arguments, returning an exit code). ``main``
builds the parser from :data:`COMMANDS`, runs the command, and turns every woodlot exception
into one line on stderr and the exit code from :mod:`._exit`. Parsing is argparse's (the
standard library's, so the console script adds no dependency).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, List, NoReturn, Optional, Sequence

from .._native import __version__
from . import _exit
from ._common import resolve_store
from . import alias
from . import compare
from . import delete
from . import gc
from . import guard
from . import history
from . import import_model
from . import promote
from . import rollback
from . import serve
from . import show
from . import verify
from . import versions

__all__ = ["main", "build_parser", "COMMANDS"]

#: Every command module's ``add_parser``, in the order ``--help`` lists them.
COMMANDS: List[Callable[[argparse._SubParsersAction], None]] = [
    versions.add_parser,
    show.add_parser,
    history.add_parser,
    compare.add_parser,
    promote.add_parser,
    rollback.add_parser,
    alias.add_parser,
    delete.add_parser,
    verify.add_parser,
    gc.add_parser,
    import_model.add_parser,
    serve.add_parser,
    guard.add_parser,
]


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one line on stderr (exit code 2, as argparse's),
    so a script's log shows what was wrong without a usage dump."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(_exit.USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global options, then one subcommand per entry of :data:`COMMANDS`."""
    parser = _Parser(
        prog="woodlot",
        description="Operate a woodlot version store: list, compare, promote, roll back, serve.",
        epilog=_exit.EXIT_CODES_HELP
        + "\n\nThe store is --store PATH_OR_URL (a directory or s3://bucket/prefix), given before "
        "or after the command name, or the WOODLOT_STORE environment variable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"woodlot {__version__}")
    parser.add_argument(
        "--store",
        dest="global_store",
        metavar="PATH_OR_URL",
        help="the store for the command: before or after the command name (after wins); "
        "default $WOODLOT_STORE",
    )
    parser.add_argument(
        "--storage-option",
        dest="global_storage_option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an object-storage option for the command; repeatable",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser in COMMANDS:
        add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    resolve_store(args)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return _exit.USAGE
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `woodlot history | head`: the reader went away; not an error worth a traceback.
        return _exit.OK
    except Exception as error:  # one clear line on stderr, the code scripts rely on
        print(f"woodlot {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return _exit.code_for(error)


def _one_line(error: BaseException) -> str:
    """The error's message on one line (a ``KeyError``'s without the quotes ``str`` adds)."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        message = error.args[0]
    else:
        message = str(error)
    message = " ".join(message.split()) or type(error).__name__
    return message


def console_main() -> None:
    """Entry point of the ``woodlot`` console script."""
    sys.exit(main())
