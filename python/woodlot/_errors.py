"""woodlot's exception classes.

Every woodlot-specific error is a :class:`WoodlotError`; each specific class also inherits the
builtin exception a caller would naturally catch, so ``except ValueError`` keeps working for a
damaged model file. The native module (``src/py/errors.rs``) imports these classes by name.
"""

from __future__ import annotations

__all__ = [
    "WoodlotError",
    "CorruptModelError",
    "VersionNotFoundError",
    "ConflictError",
    "InvalidNameError",
    "StoreError",
]


class WoodlotError(Exception):
    """Base class of every woodlot-specific error."""


class CorruptModelError(WoodlotError, ValueError):
    """A model file failed validation (size, magic, version, checksum, structure, metadata).

    The message names the check that failed. Loading never runs code from the file.
    """


class VersionNotFoundError(WoodlotError, KeyError):
    """A version reference (``3``, ``"v3"``, ``"latest"``, ``"active"``, an alias) names nothing.

    It is also a :class:`KeyError`, so ``except KeyError`` works as for a dict lookup.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConflictError(WoodlotError):
    """A concurrent change won: e.g. ``promote(..., expect_active=...)`` saw a stale state.

    Re-read the store (``store.active``, ``store.history()``) and decide again.
    """


class InvalidNameError(WoodlotError, ValueError):
    """An alias or reference was refused (empty, too long, separators, traversal, control or
    non-ASCII characters). Names never become paths; they are still held to a plain alphabet."""


class StoreError(WoodlotError):
    """The store refused an operation in its current state: deleting the active version without
    ``force=True``, rolling back with nothing to roll back to, a newer store format, ..."""
