"""Layers point one way: the engine never imports the pipeline (ML.benchmarking) nor the interfaces, and no import
cycle among the modules of src/ML, lazy imports inside functions included
(a lazy import hides a cycle from Python, not from the reader)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules(package: Path) -> dict[str, Path]:
    out = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _absolute(node: ast.ImportFrom, here: str) -> str:
    """The module an ``ImportFrom`` names, relative levels resolved against the package ``here``."""
    if not node.level:
        return node.module or ""
    up = here.split(".")[: len(here.split(".")) - node.level + 1]
    return ".".join(up + ([node.module] if node.module else []))


def _bound(tree: ast.Module, here: str, modules: dict[str, Path]) -> set[str]:
    """Names a module binds at its top level to something other than its own submodule of that name (what
    ``from module import name`` finds there rather than in the submodule)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, here)
            names |= {a.asname or a.name for a in node.names if f"{base}.{a.name}" not in modules or a.asname}
        elif isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _package(name: str, modules: dict[str, Path]) -> str:
    """The package a module's relative imports start from."""
    return name if modules[name].name == "__init__.py" else name.rpartition(".")[0]


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports, anywhere in its body."""
    modules = _modules(package)
    trees = {name: ast.parse(path.read_text()) for name, path in modules.items()}
    bound = {name: _bound(tree, _package(name, modules), modules) for name, tree in trees.items()}

    def owner(name: str) -> str | None:  # the module that ``name`` lives in
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in trees.items():
        for node in ast.walk(tree):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, _package(name, modules))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    bound_in_base = base in modules and alias.name in bound[base]
                    targets.append(sub if sub in modules and not bound_in_base else owner(base))
            graph[name] |= {t for t in targets if t and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_checker_finds_a_cycle_and_passes_a_chain(tmp_path: Path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub.leaf import helper\nfrom . import other\n")
    (package / "sub" / "other.py").write_text("from pkg.sub import other\n")  # the submodule, not the init
    (package / "sub" / "leaf.py").write_text("def helper():\n    from pkg import top\n")  # lazy: still counts
    (package / "top.py").write_text("from pkg.sub import helper\nfrom . import chain\n")
    (package / "chain.py").write_text("VALUE = 1\n")
    (package / "user.py").write_text("import pkg.sub.leaf\nimport pkg.top\n")  # above the cycle, not in it
    graph = import_graph(package)
    assert graph["pkg.top"] == {"pkg.sub", "pkg.chain"}  # `helper` is bound in pkg.sub's __init__
    assert graph["pkg.sub.other"] == set()  # its own name: not an edge to the package's __init__
    assert cycles(graph) == [["pkg.sub", "pkg.sub.leaf", "pkg.top"]]
    (package / "sub" / "leaf.py").write_text("def helper():\n    pass\n")
    assert cycles(import_graph(package)) == []


def test_no_import_cycles_in_ML():
    found = cycles(import_graph(SRC / "ML"))
    assert not found, "import cycles in src/ML: " + " | ".join(" <-> ".join(c) for c in found)


def private_torch_names(package: Path) -> list[str]:
    """``module:line torch.<...>._name`` for every attribute of torch reached through a private name (one
    starting with ``_``, dunders aside): those change without notice between torch releases."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            chain: list[str] = []
            if isinstance(node, ast.Import):
                chain = [part for a in node.names if a.name.startswith("torch.") for part in a.name.split(".")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
                chain = [*(node.module or "").split("."), *(a.name for a in node.names)]
            elif isinstance(node, ast.Attribute):
                cur: ast.expr = node
                while isinstance(cur, ast.Attribute):
                    chain.append(cur.attr)
                    cur = cur.value
                chain = chain if isinstance(cur, ast.Name) and cur.id == "torch" else []
            private = [a for a in chain if a.startswith("_") and not a.startswith("__")]
            if private:
                found.append(f"{path.relative_to(package.parent)}:{node.lineno} torch...{private[-1]}")
    return sorted(set(found))


def test_the_private_torch_checker_finds_a_private_kernel(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("import torch\ntorch._foreach_add_([], 1)\ntorch.optim.Adam\n"
                                            "torch.nn.utils._foreach_utils\nfrom torch._dynamo import x\n")
    assert private_torch_names(tmp_path / "pkg") == ["pkg/a.py:2 torch..._foreach_add_",
                                                     "pkg/a.py:4 torch..._foreach_utils",
                                                     "pkg/a.py:5 torch..._dynamo"]


def test_ML_uses_public_torch_only():
    found = private_torch_names(SRC / "ML")
    assert not found, "private torch APIs in src/ML: " + "; ".join(found)


PIPELINE = "ML.benchmarking"
INTERFACES = {"ML", "ML.__main__", "ML.cli", "ML.helptext", "ML.plot_cli"}  # argv / code entries: may use every layer


def _layer(module: str) -> int:
    """0 the engine, 1 the pipeline (``ML.benchmarking``), 2 the interfaces: imports point down only."""
    if module in INTERFACES:
        return 2
    return 1 if module == PIPELINE or module.startswith(PIPELINE + ".") else 0


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if _layer(b) > _layer(a))


def test_the_layer_checker_finds_an_engine_module_importing_the_pipeline(tmp_path: Path):
    package = tmp_path / "ML"
    (package / "benchmarking").mkdir(parents=True)
    for name in ("__init__.py", "cli.py", "benchmarking/__init__.py", "benchmarking/grid.py"):
        (package / name).write_text("")
    (package / "run.py").write_text("def train():\n    from ML.benchmarking import grid\n")  # lazy: counts
    (package / "benchmarking" / "cells.py").write_text("import ML.run\nfrom ML import cli\n")
    assert upward_imports(import_graph(package)) == ["ML.benchmarking.cells -> ML.cli",
                                                     "ML.run -> ML.benchmarking.grid"]


def test_the_engine_never_imports_the_pipeline():
    found = upward_imports(import_graph(SRC / "ML"))
    assert not found, "imports against the layers (engine ← pipeline ← interfaces): " + "; ".join(found)
