"""woodlot's exception classes.

Every woodlot-specific error is a :class:`WoodlotError`; each specific class also inherits the
builtin exception a caller would naturally catch, so ``except ValueError`` keeps working for a
damaged model file. The native module (``src/py/errors.rs``) imports these classes by name.
"""

from __future__ import annotations

__all__ = ["WoodlotError", "CorruptModelError"]


class WoodlotError(Exception):
    """Base class of every woodlot-specific error."""


class CorruptModelError(WoodlotError, ValueError):
    """A model file failed validation (size, magic, version, checksum, structure, metadata).

    The message names the check that failed. Loading never runs code from the file.
    """
