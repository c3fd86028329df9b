"""No import cycle inside ``cel``: a static walk over every module's imports (function-local
imports included, since they only postpone a cycle), with the implicit import of each parent
package's ``__init__``. Also: ``cel`` never imports snakemake, and ``cel.errors`` is a leaf."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the ``cel`` modules it imports (resolved to modules, parents' __init__ added)."""
    modules = {module_name(p, src): p for p in (src / "cel").rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod if is_pkg else mod.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                targets = [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                r = resolve(t)
                if r is None or not r.startswith("cel"):
                    continue
                while r:                                   # importing a.b.c runs a/__init__, a.b/__init__
                    if r != mod and not mod.startswith(r + "."):
                        graph[mod].add(r)
                    r = r.rpartition(".")[0]
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a module path, or None (iterative DFS with colours)."""
    colour = {m: 0 for m in graph}
    for root in sorted(graph):
        if colour[root]:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        colour[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour.get(nxt) == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(sorted(graph[nxt]))))
                path.append(nxt)
    return None


def test_no_import_cycle_inside_cel():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_check_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "cel"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cel.sub.b import x\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from cel import a   # function-local: still a cycle\n")
    cycle = find_cycle(import_graph(tmp_path))
    assert cycle is not None and set(cycle) == {"cel.a", "cel.sub.b"}


def test_errors_is_a_leaf_and_snakemake_is_never_imported():
    graph = import_graph()
    assert graph["cel.errors"] <= {"cel"}
    for path in (SRC / "cel").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not any(n.split(".")[0] == "snakemake" for n in names), path


@pytest.mark.parametrize("module", ["cel.config", "cel.embeddings.base", "cel.train.trainer", "cel.cli"])
def test_modules_import_on_their_own(module):
    import importlib

    importlib.import_module(module)
