"""Imports point one way (ARCHITECTURE.md "Layers"): core <- compress, bench <- footprint, and core <- reports.

Every ``import`` counts, at module level or inside a function: a lazy import that runs upward is still a
dependency.  Entry shims (``__main__.py``) and the pytest-benchmark face (``bench/conftest.py``,
``bench/benchmarks/``) are command-layer code that lives beside its package, so they may import upward.
"""
from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "compress", "bench", "reports", "footprint")
# package -> the project packages it may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "compress": {"core", "compress"},
    "bench": {"core", "bench"},
    "reports": {"core", "reports"},
    "footprint": set(PACKAGES),
}
# reports reads the results schema, and the speed-up statistic bench shares, and nothing that needs torch
REPORTS_MAY_USE_FROM_CORE = {"core.errors", "core.results", "core.schema", "core.speedup", "core.train_log"}


def _is_entry_point(path: Path) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return path.name == "__main__.py" or rel == "bench/conftest.py" or rel.startswith("bench/benchmarks/")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            # ``from pkg import module`` imports a module too
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def _project_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _known_modules() -> set[str]:
    return {_module_name(p) for p in _project_files()}


def test_imports_point_one_way() -> None:
    known = _known_modules()
    wrong = []
    for path in _project_files():
        if _is_entry_point(path):
            continue
        pkg = _module_name(path).split(".")[0]
        for line, mod in _imports(path):
            top = mod.split(".")[0]
            if top not in PACKAGES:
                continue
            if top not in ALLOWED[pkg]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {mod} ({pkg} may use {sorted(ALLOWED[pkg])})")
            elif pkg == "reports" and top == "core" and mod in known and mod not in REPORTS_MAY_USE_FROM_CORE:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {mod} (reports may use only "
                             f"{sorted(REPORTS_MAY_USE_FROM_CORE)} of core)")
    assert not wrong, "imports that run upward:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    known = _known_modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for path in _project_files():
        if _is_entry_point(path):
            continue
        me = _module_name(path)
        for _, mod in _imports(path):
            if mod in known and mod != me and not me.startswith(mod + "."):  # a package's own __init__ is fine
                graph[me].add(mod)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path) -> None:  # noqa: ANN001
    f = ROOT / "bench" / "_layer_probe_tmp.py"
    f.write_text("def f():\n    from compress.variants import load_variant\n    from . import runner\n")
    try:
        found = [m for _, m in _imports(f)]
    finally:
        f.unlink()
    assert "compress.variants" in found and "bench.runner" in found
