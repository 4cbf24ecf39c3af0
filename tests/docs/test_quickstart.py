"""The README's quickstart is what a newcomer copies: these checks keep it runnable.

`.ci/newcomer` walks the first command for real in a fresh clone and a fresh venv; these tests
catch the cheap mistakes earlier: an example importing a package that neither woodlot nor the
`examples` extra installs, or a README whose quickstart blocks CI can no longer find.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]

# Import names of the distributions woodlot and its `examples` extra bring (pip name -> import name
# where they differ), plus what those pull in that an example may use directly.
IMPORT_NAME = {"scikit-learn": "sklearn", "ipykernel": "ipykernel"}


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].strip().lower()


def _installed_by_first_command() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    first = _readme_block(1)
    extras = re.findall(r'"\.\[([a-z,]+)\]"', first)
    names = [_requirement_name(s) for s in project["dependencies"]]
    for extra in ",".join(extras).split(","):
        if extra:
            names += [_requirement_name(s) for s in project["optional-dependencies"][extra]]
    return {IMPORT_NAME.get(n, n.replace("-", "_")) for n in names} | {"woodlot"}


def _readme_block(n: int) -> str:
    out = subprocess.run(
        ["bash", str(ROOT / ".ci" / "readme-command"), str(n), str(ROOT / "README.md")],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def _top_level_imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _example_sources() -> dict[str, str]:
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "examples").glob("*.py"))}
    for nb in sorted((ROOT / "examples").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        # IPython magics and shell escapes are not Python; drop them before parsing.
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        sources[str(nb.relative_to(ROOT))] = code
    return sources


def test_readme_quickstart_has_the_two_commands_ci_runs():
    first, second = _readme_block(1), _readme_block(2)
    assert first.startswith("pip install ") and "examples/tutorial.py" in first
    assert second.startswith("pip install ") and "pytest" in second


def test_examples_import_only_what_the_first_command_installs():
    allowed = _installed_by_first_command() | set(sys.stdlib_module_names)
    sources = _example_sources()
    assert any(name.endswith(".py") for name in sources) and any(name.endswith(".ipynb") for name in sources)
    missing = {name: sorted(_top_level_imports(src) - allowed) for name, src in sources.items()}
    assert not any(missing.values()), f"examples import packages the README's first command does not install: {missing}"


def test_the_examples_extra_brings_pandas_for_the_tutorials_dataframe():
    # The bug this guards: `pip install .` brought numpy and scikit-learn only, and the tutorial's
    # load_wine(as_frame=True) failed on a fresh machine for want of pandas.
    assert "pandas" in _installed_by_first_command()
