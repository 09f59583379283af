"""Qt stays inside desktop_app/ui: every other module of the package imports without PySide6, and no source file
outside ui/ mentions it in an import. The packages of desktop_app import each other without a cycle, and no ui module
imports SQL or the ORM (both read statically from the import graph)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "desktop_app"
QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt\d|shiboken6)\b", re.M)


def core_modules() -> list[str]:
    out = []
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = p.relative_to(REPO).with_suffix("")
        parts = rel.parts
        if parts[1] in ("ui", "nets", "train") or parts[-1] == "__main__" or "migrations" in parts:
            continue  # ui is Qt; nets/train import torch (optional); Alembic runs migration scripts itself
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_core_modules_import_without_qt():
    mods = core_modules()
    assert "desktop_app.capture.reader" in mods and "desktop_app.vision.pipeline" in mods
    code = ("import importlib, sys\n"
            f"for m in {mods!r}:\n"
            "    importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6'))\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_no_qt_import_outside_ui():
    offenders = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
                 if "ui" not in p.relative_to(PACKAGE).parts[:1] and QT_IMPORT.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


# --------------------------------------------------------------------------------------------- the import graph
# Read statically with ast over every file of desktop_app/: module-level and function-level (lazy) imports both
# count, and so do imports under ``if TYPE_CHECKING:``: a lazy import is still a dependency a reader must follow.

def _module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import statement in ``path``."""
    parts = path.relative_to(REPO).with_suffix("").parts
    package = list(parts[:-1])  # a module's package; an __init__'s is its own folder
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [a.name for a in node.names]
            if module == "desktop_app":  # `from desktop_app import config`: the names are the modules
                out += [(f"{module}.{n}", [], node.lineno) for n in names]
            else:
                out.append((module, names, node.lineno))
    return out


def package_of(module: str) -> str:
    """desktop_app.gallery.index -> desktop_app.gallery; a top-level module (desktop_app.config) is its own node."""
    return ".".join(module.split(".")[:2])


def package_graph() -> dict[str, dict[str, str]]:
    """package -> {package it imports: one 'file:line' that does}."""
    graph: dict[str, dict[str, str]] = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        src = package_of(_module_name(p))
        for module, _names, line in imports_of(p):
            dst = package_of(module)
            if module.startswith("desktop_app.") and dst != src:
                graph.setdefault(src, {}).setdefault(dst, f"{p.relative_to(REPO)}:{line}")
    return graph


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}, "d": {"a": ""}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": ""}, "b": {}}) == []


#: Cycles known and named, to be removed (the list only shrinks; empty since the self-test takes its Qt checks from
#: the entry points that have Qt instead of importing ui).
KNOWN_CYCLES: list[list[str]] = []


def test_no_import_cycle_between_packages():
    graph = package_graph()
    assert "desktop_app.gallery" in graph.get("desktop_app.ui", {})  # the graph is really read
    found = [c for c in cycles(graph) if c not in KNOWN_CYCLES]
    why = [" ; ".join(f"{a} -> {b} ({graph[a][b]})" for a in comp for b in comp if b in graph.get(a, {}))
           for comp in found]
    assert found == [], why
    gone = [c for c in KNOWN_CYCLES if c not in cycles(graph)]
    assert gone == [], f"no longer a cycle: take it off KNOWN_CYCLES: {gone}"


def ui_module_graph() -> dict[str, dict[str, str]]:
    """ui module -> {ui module it imports: 'file:line'}; `from desktop_app.ui import x` counts as importing x."""
    ui = {_module_name(p): p for p in (PACKAGE / "ui").rglob("*.py")}
    graph: dict[str, dict[str, str]] = {}
    for src, path in ui.items():
        for module, names, line in imports_of(path):
            for dst in [module] + [f"{module}.{n}" for n in names]:
                if dst in ui and dst != src and dst != "desktop_app.ui":
                    graph.setdefault(src, {}).setdefault(dst, f"{path.relative_to(REPO)}:{line}")
    return graph


def test_no_import_cycle_between_ui_modules():
    """The controller makes the dialogs and hands itself in; no dialog imports the controller back (issue 18:
    ``Capture`` in controller.py made the controller -> enroll_dialog -> controller circle)."""
    graph = ui_module_graph()
    assert "desktop_app.ui.enroll_dialog" in graph.get("desktop_app.ui.controller", {})  # the graph is really read
    found = cycles(graph)
    assert found == [], [" ; ".join(f"{a} -> {b} ({graph[a][b]})" for a in c for b in c if b in graph.get(a, {}))
                         for c in found]


def test_benchmarks_are_not_in_the_core():
    """The benchmark modules live in desktop_app/bench, which only the CLI imports (lazily)."""
    graph = package_graph()
    users = sorted(src for src, dsts in graph.items() if "desktop_app.bench" in dsts)
    assert users == ["desktop_app.cli"]
    assert not (PACKAGE / "vision" / "bench.py").exists() and not (PACKAGE / "nets" / "bench.py").exists()


def test_attendance_rules_do_not_import_the_orm():
    """The rules are pure (day, dedupe, kind): the event kinds live in a plain module that the rules and the store's
    event table both use (issue 18: rules.py imported the ORM for an enum)."""
    found = [f"{m}:{line}" for m, _names, line in imports_of(PACKAGE / "attendance" / "rules.py")
             if m.split(".")[0] == "sqlalchemy" or m.startswith(("desktop_app.storage", "desktop_app.gallery"))]
    assert found == []
    assert not (PACKAGE / "gallery" / "store.py").exists()  # one place for the store: desktop_app/storage


#: What a ui module may not import: SQL and the ORM belong to the core (desktop_app/storage); the ui reads through
#: desktop_app/attendance/queries.py (plain rows, no session in its hands).
STORE_MODULES = ("sqlalchemy", "desktop_app.storage")
#: Names of desktop_app.storage that are neither SQL nor the ORM: the error the ui shows, the database named for a
#: label, whether a chosen location can hold a database (asked before the settings are saved), and opening (and
#: migrating) a database whose handle the ui hands on to the core untouched.
STORE_NAMES_ALLOWED = {"StoreError", "database_location_problem", "describe_url", "open_engine"}


def store_imports_of(path) -> list[str]:
    """'module:line' for each import in ``path`` of SQL or the ORM (anything of STORE_MODULES but the allowed
    names)."""
    def store(module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in STORE_MODULES)

    out = []
    for module, names, line in imports_of(path):
        # `from desktop_app import storage` reads as the module desktop_app.storage with no names: not allowed
        bad = (not names or not set(names) <= STORE_NAMES_ALLOWED) if store(module) else \
            any(store(f"{module}.{n}") for n in names)
        if bad:
            out.append(f"{module}:{line}")
    return out


def ui_store_imports() -> dict[str, list[str]]:
    return {str(p.relative_to(REPO)): found for p in sorted((PACKAGE / "ui").rglob("*.py"))
            if (found := store_imports_of(p))}


def test_store_import_check_sees_the_orm(tmp_path, monkeypatch):
    src = tmp_path / "ui" / "view.py"
    src.parent.mkdir()
    src.write_text("from desktop_app.storage import StoreError, describe_url\n"
                   "from desktop_app.storage import Person\n"
                   "from desktop_app import storage as st\n"
                   "def f():\n    from sqlalchemy.orm import Session\n"
                   "from desktop_app.attendance.queries import list_people\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)  # imports_of names modules relative to REPO
    assert store_imports_of(src) == ["desktop_app.storage:2", "desktop_app.storage:3", "sqlalchemy.orm:5"]


def test_no_ui_module_imports_sql_or_the_orm():
    found = ui_store_imports()
    assert found == {}, "the ui must ask the core (attendance/queries.py), not run SQL: " + repr(found)
