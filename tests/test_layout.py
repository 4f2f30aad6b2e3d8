"""The package's layout as rules: no import cycle, no private name used outside its package,
and the registry of tasks light enough to import without any model."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "helpers"
TESTS = Path(__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package(module: str) -> str:
    """The package a module belongs to (a package is its own)."""
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path):
    """(imported module, names) of every import statement, at any depth (inside functions
    too), relative imports resolved."""
    here = _package(module).split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            yield target, [a.name for a in node.names]


def _graph() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, names in _imports(module, path):
            for t in [target, *(f"{target}.{n}" for n in names)]:
                if t in MODULES and t != module:
                    graph[module].add(t)
    return graph


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    """Imports inside functions count: a cycle there is a cycle of responsibilities."""
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _allowed(user: str | None, owner: str) -> bool:
    """Whether module ``user`` may use a private name of module ``owner``: its own, or one of
    the same subpackage (``helpers.probe.*`` among themselves); the top-level modules of
    ``helpers`` are each other's strangers."""
    if user is None:
        return False
    if user == owner:
        return True
    package = owner if MODULES[owner].name == "__init__.py" else owner.rpartition(".")[0]
    return package != "helpers" and (user == package or user.startswith(package + "."))


def _private_uses(path: Path, module: str | None):
    """(line, what) for each private name of a helpers module used from outside its package:
    ``from helpers.x import _name`` or ``helpers_module._name``."""
    tree = ast.parse(path.read_text())
    aliases = {}  # local name -> helpers module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if module is not None and node.level:
                base = _package(module).split(".")[: len(_package(module).split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("helpers"):
                continue
            for a in node.names:
                full = f"{target}.{a.name}"
                if full in MODULES:
                    aliases[a.asname or a.name] = full
                elif a.name.startswith("_") and not a.name.startswith("__"):
                    if target in MODULES and not _allowed(module, target):
                        yield node.lineno, f"from {target} import {a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("helpers") and a.asname:
                    aliases[a.asname] = a.name
    if "hp" not in aliases:
        aliases["hp"] = "helpers"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            base = node.value
            chain = []
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if not isinstance(base, ast.Name) or base.id not in aliases:
                continue
            owner = ".".join([aliases[base.id], *reversed(chain)])
            if owner in MODULES and not _allowed(module, owner):
                yield node.lineno, f"{owner}.{node.attr}"


def test_no_private_name_is_used_outside_its_package():
    """A leading underscore means 'this module only' (or 'this subpackage only', for the modules
    of one subpackage such as helpers.probe): no other module of helpers, and no test, uses it."""
    found = []
    for module, path in MODULES.items():
        found += [f"{path.relative_to(SRC)}:{line}: {what}"
                  for line, what in _private_uses(path, module)]
    for path in TESTS.glob("*.py"):
        found += [f"tests/{path.name}:{line}: {what}" for line, what in _private_uses(path, None)]
    assert found == []


def test_the_task_registry_imports_no_model():
    code = ("import sys, helpers.tasks as t; t.get('seq_spike'); "
            "print(sorted(m for m in sys.modules if m.startswith('helpers.models') "
            "or m in ('torch', 'scvi', 'transformers', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("module", ["helpers.probe", "helpers.tasks", "helpers.sweep"])
def test_the_probe_sits_below_the_tasks_and_the_sweep(module):
    graph = _graph()
    below = {m for m in graph if m.startswith("helpers.probe")}

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    if module == "helpers.probe":
        assert not {m for p in below for m in reach(p)} & {
            "helpers.tasks", "helpers.sweep", "helpers.models", "helpers.imaging"}
    else:
        assert "helpers.probe" in reach(module) or "helpers.probe.signals" in reach(module)
