"""``python -m woodlot._cli``: the same as the ``woodlot`` console script."""

from __future__ import annotations

from . import console_main

console_main()
