"""Exit codes of the ``woodlot`` command line, which scripts can rely on.

They are part of the command line's contract: documented in ``woodlot --help`` and never
renumbered. Each woodlot exception maps to one code, so a shell script can tell "no such
version" from "someone else promoted first" without parsing the message.
"""

from __future__ import annotations

from .._errors import (
    ConflictError,
    CorruptModelError,
    InvalidNameError,
    StoreError,
    VersionNotFoundError,
    WoodlotError,
)

__all__ = ["OK", "FAILURE", "USAGE", "NOT_FOUND", "CONFLICT", "CORRUPT", "REFUSED", "code_for", "EXIT_CODES_HELP"]

OK = 0
#: Anything not covered below (an I/O error, an unreachable store, a bug).
FAILURE = 1
#: Bad command line or argument values (argparse uses 2 as well).
USAGE = 2
#: A version, alias or file that does not exist.
NOT_FOUND = 3
#: A concurrent change won (``--expect-active`` saw another active version).
CONFLICT = 4
#: A model file or store record failed verification.
CORRUPT = 5
#: The store or a gate refused the operation in its current state (e.g. deleting the active
#: version without ``--force``, a promotion gate that found the candidate not better).
REFUSED = 6

EXIT_CODES_HELP = f"""exit codes:
  {OK}  success
  {FAILURE}  failure (I/O, unreachable store, unexpected error)
  {USAGE}  usage error (bad command line or argument value)
  {NOT_FOUND}  not found (version, alias or file)
  {CONFLICT}  conflict (a concurrent change won; re-read and decide again)
  {CORRUPT}  corrupt (a model file or store record failed verification)
  {REFUSED}  refused (the store's state or a promotion gate refused the operation)"""


def code_for(error: BaseException) -> int:
    """The exit code for an exception raised while running a command."""
    # Order matters: the specific woodlot classes also inherit ValueError/KeyError.
    if isinstance(error, VersionNotFoundError):
        return NOT_FOUND
    if isinstance(error, ConflictError):
        return CONFLICT
    if isinstance(error, CorruptModelError):
        return CORRUPT
    if isinstance(error, StoreError):
        return REFUSED
    if isinstance(error, InvalidNameError):
        return USAGE
    if isinstance(error, FileNotFoundError):
        return NOT_FOUND
    if isinstance(error, WoodlotError):
        return FAILURE
    if isinstance(error, ValueError):
        return USAGE
    return FAILURE
