"""The package's shape (docs/architecture.md): every module imports, nothing outside edgepack/stages/
imports a stage, and edgepack's modules import each other without circles."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgepack"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def edgepack_imports(name: str, path: Path) -> set[str]:
    """The edgepack modules `name` imports, at any depth of its code (function-level imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the submodule pkg.mod when there is one
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return {m for m in found if m in MODULES}


GRAPH = {name: edgepack_imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(m for m in MODULES if not m.endswith("__main__")))  # that one runs the CLI
def test_every_module_imports(name):
    importlib.import_module(name)


def test_only_the_pipeline_imports_stages():
    # pipeline.py is the flow itself: it lists the stages. Every other module is a library the
    # stages call, or a command; none of them may reach into a stage.
    outside = {name: sorted(m for m in deps if m == "edgepack.stages" or m.startswith("edgepack.stages."))
               for name, deps in GRAPH.items()
               if not name.startswith("edgepack.stages") and name != "edgepack.pipeline"}
    assert {k: v for k, v in outside.items() if v} == {}


def test_stages_hold_only_stages():
    """Each stage file defines `run(ctx)` and nothing else public: reusable work lives in a library."""
    import inspect

    for name in MODULES:
        if name.startswith("edgepack.stages."):
            module = importlib.import_module(name)
            assert list(inspect.signature(module.run).parameters) == ["ctx"], name
            own = [k for k, v in vars(module).items()
                   if inspect.isfunction(v) and v.__module__ == name and not k.startswith("_")]
            assert own == ["run"], (name, own)


def test_no_import_cycles():
    # A package's __init__ is run before any of its submodules, so "edgepack.x imports edgepack" is
    # not a circle that matters; every other edge counts.
    graph = {name: {d for d in deps if not name.startswith(d + ".") and d != name} for name, deps in GRAPH.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_measuring_imports_no_torch():
    # `edgepack bench` measures in child processes that must look like an app, and `edgepack check`
    # without --teacher must not pay for torch: the measuring package imports it only when called.
    import subprocess
    import sys

    measure = sorted(m for m in MODULES if m.startswith("edgepack.measure"))
    code = f"import sys; import {', '.join(measure)}; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
