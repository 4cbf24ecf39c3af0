"""The Python package's imports point one way: no module of ``woodlot`` imports, directly or
through others, a module that imports it back.

Every import statement counts, wherever it stands: at module level, inside a function (a lazy
import only hides a circle until the function runs), under ``if TYPE_CHECKING:`` or in a
``try``. The graph is read from the source with ``ast``, so the check needs no build and sees
modules that no test imports. (The compiled ``_native`` imports ``woodlot._errors`` from Rust;
``_errors`` imports nothing, so that edge can close no circle.)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "woodlot"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "python" / PACKAGE


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (``from .x import y`` in ``pkg.m`` -> ``pkg.x``)."""
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    # In a package's __init__, "." is the package itself; in a module, its parent.
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop] if drop else base
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for every ``.py`` file under ``root``."""
    files = sorted(root.rglob("*.py"))
    modules = {_module_name(p, root, package): p for p in files}
    # Compiled or stub-only modules (``_native``) are nodes too, so edges to them are kept.
    for stub in root.rglob("*.pyi"):
        modules.setdefault(_module_name(stub, root, package), stub)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        if path.suffix != ".py":
            continue
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, name, is_package)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    # ``from . import x`` imports the submodule x if there is one, else a name
                    # of the package itself.
                    targets.append(sub if sub in modules else base)
            for target in targets:
                # ``import woodlot._x.y`` imports woodlot._x.y; keep the longest known prefix.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None if the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_woodlot_package_has_no_import_circle():
    graph = import_graph(PACKAGE_DIR, PACKAGE)
    # The graph really was read (a wrong path would make an empty graph pass).
    assert {"woodlot", "woodlot._estimator", "woodlot._persist", "woodlot._native"} <= set(graph)
    assert "woodlot._estimator" in graph["woodlot._persist"]
    cycle = find_cycle(graph)
    assert cycle is None, "import circle in the woodlot package: " + " -> ".join(cycle or [])


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_a_circle_hidden_in_a_function_level_import(tmp_path):
    _write(
        tmp_path,
        {
            "__init__.py": "from ._a import A\n",
            "_a.py": "from ._b import B\nclass A: pass\n",
            "_b.py": "class B:\n    def f(self):\n        from ._a import A\n        return A\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg._b"] == {"pkg._a"}
    assert find_cycle(graph) == ["pkg._a", "pkg._b", "pkg._a"]


def test_checker_resolves_every_import_form(tmp_path):
    _write(
        tmp_path,
        {
            "__init__.py": "from . import _a\n",
            "_a.py": "import pkg._b\n",
            "_b.py": "from pkg import _c\nfrom typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .sub.deep import D\n",
            "_c.py": "",
            "sub/__init__.py": "from .deep import D\nfrom .. import _c\n",
            "sub/deep.py": "try:\n    import pkg\nexcept ImportError:\n    pass\nclass D: pass\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": {"pkg._a"},
        "pkg._a": {"pkg._b"},
        "pkg._b": {"pkg._c", "pkg.sub.deep"},
        "pkg._c": set(),
        "pkg.sub": {"pkg.sub.deep", "pkg._c"},
        "pkg.sub.deep": {"pkg"},
    }
    # pkg -> _a -> _b -> sub.deep -> pkg (the last edge under a try, the third under TYPE_CHECKING)
    assert find_cycle(graph) == ["pkg", "pkg._a", "pkg._b", "pkg.sub.deep", "pkg"]
