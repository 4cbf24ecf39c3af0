"""examples/service.py (the README's embedded-LiveModel service) runs its demo: a real
http.server service follows a promote and a rollback without a restart, and prints the
version that served each prediction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "service.py"


def test_the_example_service_follows_a_promote_and_a_rollback():
    r = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "served 3 row(s) with v1" in lines and "served 3 row(s) with v2" in lines, r.stdout
    assert "followed v1 -> v2 -> v1 without a restart" in r.stdout
    # Versions only ever move forward through the moves: v1..., v2..., v1...
    versions = [l.rsplit(" ", 1)[1] for l in lines if l.startswith("served ")]
    changes = [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]
    assert changes == ["v1", "v2", "v1"], versions
