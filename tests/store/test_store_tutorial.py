"""The tutorial script and notebook run end to end, so they never rot."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_tutorial_script(tmp_path):
    env = dict(os.environ, WOODLOT_STORE=str(tmp_path / "models"))
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tutorial.py")],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "Rolled back to v1; its accuracy:" in out.stdout
    assert "Accuracy v2:" in out.stdout and "McNemar" in out.stdout
    assert not (tmp_path / "models" / "tmp").exists() or os.listdir(tmp_path / "models" / "tmp") == []


def test_tutorial_notebook(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(ROOT / "examples" / "tutorial.ipynb", as_version=4)
    os.environ["WOODLOT_STORE"] = str(tmp_path / "models")
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        del os.environ["WOODLOT_STORE"]
    text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "Rolled back to v1" in text
