"""How commands print: human tables (colour only on a terminal), or JSON for scripts.

Colour follows the common conventions: only when stdout is a terminal, never with ``NO_COLOR``
set (https://no-color.org: any value, even empty, turns it off) or ``TERM=dumb``. JSON is
printed with sorted keys and one document per command, so ``woodlot list --json | jq`` is
stable across releases.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, List, Optional, Sequence, TextIO

import numpy as np

__all__ = ["use_colour", "paint", "table", "print_json", "jsonable", "fmt_number"]

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def use_colour(stream: Optional[TextIO] = None) -> bool:
    """Whether to colour what goes to ``stream`` (stdout by default)."""
    stream = sys.stdout if stream is None else stream
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, style: str, on: bool) -> str:
    """``text`` in ``style`` (a key of the ANSI table above) when ``on``, else unchanged."""
    if not on or not text:
        return text
    return f"\x1b[{_CODES[style]}m{text}\x1b[0m"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Optional[List[Optional[str]]] = None,
          colour: bool = False) -> str:
    """A plain left-aligned text table (two spaces between columns), headers in bold.

    ``styles`` gives one optional style per row (e.g. the active version in green). Widths are
    measured before painting, so escape codes never break the alignment.
    """
    cells = [[str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in cells:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(widths[i]) for i, v in enumerate(values)).rstrip()

    out = [paint(line(list(headers)), "bold", colour)]
    for i, r in enumerate(cells):
        style = styles[i] if styles else None
        out.append(paint(line(r), style, colour) if style else line(r))
    return "\n".join(out)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays made plain, and NaN as ``null`` (JSON has none)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(document: Any) -> None:
    """One JSON document on stdout (sorted keys, no NaN)."""
    print(json.dumps(jsonable(document), sort_keys=True, indent=2, allow_nan=False))


def fmt_number(value: Any, digits: int = 4) -> str:
    """A metric for a table: fixed digits, ``-`` for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
