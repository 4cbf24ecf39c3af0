"""Makes the README's pictures from the tutorial's data (run from the repository root):

    pip install ".[examples,plot]" nbconvert && apt-get install -y chromium
    python docs/images/make_images.py

- ``comparison.png``: ``Comparison.plot()`` of the tutorial's v1 and v2 on its test rows.
- ``history.png``: ``store.plot_history()`` after the tutorial's promote, promote_if_better and
  rollback.
- ``notebook.png``: a screenshot, by headless Chromium, of the tutorial notebook executed and
  exported to HTML by nbconvert (JupyterLab's light theme), with three cells added at the end
  that show the store, the comparison and the history as a notebook shows them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbconvert import HTMLExporter  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

WINDOW = "1180,860"

EXTRA_CELLS = [
    "store  # the notebook view of the store: versions, markers, metrics, tags",
    "comparison  # metrics with the best highlighted, the pairwise tests",
    "store.history()",
    "comparison.plot().savefig(os.path.join(os.environ['WOODLOT_IMAGES'], 'comparison.png'), dpi=110)\n"
    "store.plot_history().savefig(os.path.join(os.environ['WOODLOT_IMAGES'], 'history.png'), dpi=110)",
]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="woodlot-images-"))
    try:
        nb = nbformat.read(ROOT / "examples" / "tutorial.ipynb", as_version=4)
        for src in EXTRA_CELLS:
            nb.cells.append(nbformat.v4.new_code_cell(src))
        os.environ["WOODLOT_STORE"] = str(work / "models")
        os.environ["WOODLOT_IMAGES"] = str(HERE)
        os.environ["MPLBACKEND"] = "Agg"
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
        # The picture shows the cells that display views (the tutorial's own cells print text).
        view = nbformat.from_dict(nb)
        view.cells = [nbformat.v4.new_markdown_cell("### examples/tutorial.ipynb, then the notebook views")]
        view.cells += nb.cells[-len(EXTRA_CELLS):-1]
        body, _ = HTMLExporter(template_name="lab", theme="light").from_notebook_node(view)
        page = work / "tutorial.html"
        page.write_text(body)
        browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if browser is None:
            sys.exit("no Chromium found: apt-get install -y chromium (the plots were written)")
        shot = HERE / "notebook.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WINDOW}", f"--screenshot={shot}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
        print(f"wrote {HERE / 'comparison.png'}, {HERE / 'history.png'}, {shot}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
