"""The Qt part of ``--self-test`` (desktop_app/selftest.py): start a QApplication offscreen, run its event loop,
quit; check the platform plugins the desktop needs are installed. Lives under ui/ because it imports Qt.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

LOOP_TIMEOUT_MS = 10_000  # the loop must quit on its own long before this; the guard only avoids a hang


class QtCheckFailure(RuntimeError):
    pass


def _platform_plugins(library_paths: list[str]) -> list[str]:
    names: set[str] = set()
    for d in library_paths:
        p = Path(d) / "platforms"
        if p.is_dir():
            for f in p.iterdir():
                stem = f.stem.split(".")[0]
                if stem.startswith("libq"):
                    stem = stem[4:]
                elif stem.startswith("q"):
                    stem = stem[1:]
                names.add(stem)
    return sorted(names)


def required_platforms() -> list[str]:
    if sys.platform.startswith("linux"):
        return ["offscreen", "xcb"]
    if sys.platform == "win32":
        return ["offscreen", "windows"]
    if sys.platform == "darwin":
        return ["offscreen", "cocoa"]
    return ["offscreen"]


def event_loop_check() -> str:
    """Raises :class:`QtCheckFailure` (or Qt's own error) on failure; returns what was checked."""
    from desktop_app.ui.qtenv import prepare_qt_environment

    prepare_qt_environment()
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a self-test opens no window, with or without a display
    t0 = time.perf_counter()
    from PySide6.QtCore import QCoreApplication, QTimer, qVersion
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(["fdface-attendance", "-platform", "offscreen"])
    t_app = time.perf_counter() - t0
    label = QLabel("FDFace Attendance self-test")
    label.show()
    ran: list[bool] = []

    def _quit() -> None:
        ran.append(label.isVisible())
        app.quit()

    QTimer.singleShot(0, _quit)
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(app.quit)
    guard.start(LOOP_TIMEOUT_MS)
    t1 = time.perf_counter()
    app.exec()
    guard.stop()
    t_loop = time.perf_counter() - t1
    label.close()
    label.deleteLater()
    if not ran:
        raise QtCheckFailure(f"the Qt event loop did not run its first timer within {LOOP_TIMEOUT_MS} ms")
    if not ran[0]:
        raise QtCheckFailure("a widget shown offscreen was not visible")
    plugins = _platform_plugins(QCoreApplication.libraryPaths())
    missing = [p for p in required_platforms() if p not in plugins]
    if missing:
        raise QtCheckFailure(f"Qt platform plugin(s) {', '.join(missing)} missing from "
                             f"{QCoreApplication.libraryPaths()} (found: {', '.join(plugins) or 'none'})")
    gui = _gui_modules()
    return (f"Qt {qVersion()} on {app.platformName()!r}: app {t_app * 1e3:.0f} ms, event loop ran and quit in "
            f"{t_loop * 1e3:.0f} ms; platform plugins: {', '.join(plugins)}; {_collation()}; {gui}")


# Names sorted the way a German and a Swedish reader expect: German files Ö with O (so "Öl" before "Ola"), Swedish
# puts Ö after Z. Sorting by code points, what Qt falls back to when it cannot open a collator (e.g. with ICU's
# collation data missing from a trimmed bundle: packaging/trim_icu.py), gets the German order wrong.
COLLATION = {"de_DE": ["Öl", "Ola", "Zoe"], "sv_SE": ["Ola", "Zoe", "Öl"]}


def _collation() -> str:
    from PySide6.QtCore import QCollator, QLocale

    for loc, want in COLLATION.items():
        got = sorted(["Zoe", "Öl", "Ola"], key=QCollator(QLocale(loc)).sortKey)
        if got != want:
            raise QtCheckFailure(f"names sort as {got} under {loc}, expected {want}: Qt cannot collate for that "
                                 "language (ICU collation data missing from the bundle?)")
    return f"names collate per language ({', '.join(COLLATION)})"


def gui_first_frame(video: str, threads: int = 0, timeout_s: float = 120.0) -> tuple[float, int, str]:
    """Start the real desktop app (``create_app``: main window, controller, database, capture worker) on ``video``
    with a fresh settings file and database in a temporary folder; return (perf_counter when the first processed
    frame was shown in the window, its face count, the recognition notice). Quits right after that frame."""
    import argparse
    import tempfile

    from desktop_app.ui.qtenv import prepare_qt_environment

    prepare_qt_environment()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer

    from desktop_app.ui.controller import create_app

    with tempfile.TemporaryDirectory(prefix="fdface-firstframe-") as tmp:
        settings = Path(tmp) / "settings.toml"
        if threads:
            settings.write_text(f"[performance]\nthreads = {int(threads)}\n")
        args = argparse.Namespace(source=video, settings=str(settings), db=str(Path(tmp) / "first-frame.db"),
                                  verbose=False)
        app, ctl = create_app(args)
        shown: list[tuple[float, int]] = []

        def _first(packet) -> None:
            if not shown:
                shown.append((time.perf_counter(), len(packet.result.faces)))
                QTimer.singleShot(0, app.quit)

        ctl.packetShown.connect(_first)
        QTimer.singleShot(int(timeout_s * 1000), app.quit)
        ctl.start()
        app.exec()
        notice = getattr(ctl, "model_notice", None) or ""
        ctl.shutdown()
        if ctl.unstopped:  # a camera or database call that hangs: the process must end as the app's would (leave)
            import shutil

            from desktop_app.ui.controller import leave

            shutil.rmtree(tmp, ignore_errors=True)  # leave() ends the process before the with-block would

            print(f"fdface-attendance: {' and '.join(ctl.unstopped)} did not stop after the first frame",
                  file=sys.stderr, flush=True)
            leave(1, ctl)
    if not shown:
        raise QtCheckFailure(f"the app showed no processed frame of {video} within {timeout_s:.0f} s")
    return shown[0][0], shown[0][1], notice


def _gui_modules() -> str:
    """Import the GUI's modules so a bundle missing one of them (or one of their imports) fails here."""
    import importlib
    import pkgutil

    import desktop_app.ui as ui

    names = sorted(m.name for m in pkgutil.iter_modules(ui.__path__) if m.name != "selftest_qt")
    for n in names:
        importlib.import_module(f"desktop_app.ui.{n}")
    return f"GUI modules import: {', '.join(names) or 'none found'}"


def report_pdf_check(grid, path: Path) -> str:
    """The monthly PDF of the self-test's grid, drawn by Qt's PDF writer, read back: a one-page PDF file with its
    pages in landscape (the PDF's MediaBox is wider than high)."""
    import re

    from desktop_app.ui.report_pdf import ensure_gui_app, write_monthly_pdf

    ensure_gui_app()
    pages = write_monthly_pdf(path, grid)
    data = path.read_bytes()
    found = len(re.findall(rb"/Type\s*/Page\b", data))
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    if not data.startswith(b"%PDF-") or pages != 1 or found != 1:
        raise QtCheckFailure(f"the monthly PDF {path.name} is not a one-page PDF (pages drawn {pages}, found {found})")
    if box is None or float(box.group(1)) <= float(box.group(2)):
        raise QtCheckFailure("the monthly PDF's page is not landscape")
    return f"monthly PDF: {pages} page, landscape, {len(data) / 1024:.0f} KiB"


def main(argv: list[str] | None = None) -> int:
    """``--self-test`` / ``--first-frame VIDEO`` with the Qt checks: the entry of ``fdface-gui --self-test``, the frozen
    launcher and ``python -m desktop_app.ui.selftest_qt`` (the core's self-test does not import ui)."""
    from desktop_app import selftest

    return selftest.main(argv, qt_checks=sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
