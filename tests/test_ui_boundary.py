"""Qt stays inside desktop_app/ui: every other module of the package imports without PySide6, and no source file
outside ui/ mentions it in an import."""

from __future__ import annotations

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
