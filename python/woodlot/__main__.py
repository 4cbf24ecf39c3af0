"""``python -m woodlot``: the ``woodlot`` command line."""

from __future__ import annotations

from ._cli import console_main

console_main()
