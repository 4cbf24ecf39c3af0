"""What a forked child of the test fork server (tests/reliability/_zygote.py) runs: one
``woodlot`` command, exactly as the console script runs it, with its stdout and stderr in
files. The server has imported woodlot already, so a command costs a fork, not the 2 s import
of scikit-learn; the child is still a real process with its own exit code and file
descriptors."""

from __future__ import annotations

import os
import sys

from woodlot._cli import main


def run_cli(argv: list, env: dict, out_path: str, err_path: str) -> int:
    for key in ("WOODLOT_STORE", "NO_COLOR"):
        os.environ.pop(key, None)
    os.environ.update(env)
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's --help, --version and usage errors
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    return code
