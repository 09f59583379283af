"""Make Qt find PySide6's own plugins, whatever else was imported first. Call before creating QApplication.

opencv-python (the non-headless wheel) sets ``QT_QPA_PLATFORM_PLUGIN_PATH`` and ``QT_QPA_FONTDIR`` to the Qt 5
plugins and fonts bundled inside ``cv2/`` as soon as ``cv2`` is imported. Those are built for another Qt: a Qt 6
application that loads one of them aborts with "Could not load the Qt platform plugin 'xcb'". Depending on the
Qt version and the directory layout, Qt 6 may also just search that directory first and fall back, so the clash
can stay hidden on one machine and abort on another; either way the variable must point at PySide6.

A second cause of that same abort on Linux is missing X11 libraries (libxcb-cursor0 and friends), which a
pip-installed PySide6 does not bring; :func:`missing_xcb_libraries` finds them so ``main`` can say which
package to install instead of letting Qt abort the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# Libraries Qt 6's xcb platform plugin needs at run time beyond libxcb itself (Debian/Ubuntu package names).
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "xcb-shape": "libxcb-shape0",
    "xcb-randr": "libxcb-randr0",
}


def pyside_plugins_dir() -> Path:
    import PySide6

    base = Path(PySide6.__file__).resolve().parent
    for cand in (base / "Qt" / "plugins", base / "plugins"):
        if cand.is_dir():
            return cand
    return base / "Qt" / "plugins"


def _foreign(path: str, ours: Path) -> bool:
    """True when ``path`` is set and does not lie inside PySide6's plugin directory."""
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(ours.resolve())
        return False
    except (ValueError, OSError):
        return True


def prepare_qt_environment(environ: dict[str, str] | None = None) -> list[str]:
    """Point Qt at PySide6's platform plugins; drop opencv-python's font directory. Returns what was changed
    (for the log and for tests). Safe to call more than once and with cv2 imported or not."""
    env = os.environ if environ is None else environ
    changed: list[str] = []
    plugins = pyside_plugins_dir()
    platforms = plugins / "platforms"
    current = env.get("QT_QPA_PLATFORM_PLUGIN_PATH", "")
    if _foreign(current, plugins) and platforms.is_dir():
        env["QT_QPA_PLATFORM_PLUGIN_PATH"] = str(platforms)
        changed.append(f"QT_QPA_PLATFORM_PLUGIN_PATH: {current} -> {platforms}")
    fontdir = env.get("QT_QPA_FONTDIR", "")
    if fontdir and ("cv2" in Path(fontdir).parts or not Path(fontdir).is_dir()):
        del env["QT_QPA_FONTDIR"]
        changed.append(f"QT_QPA_FONTDIR: {fontdir} removed")
    qt_plugin_path = env.get("QT_PLUGIN_PATH", "")
    if qt_plugin_path and "cv2" in Path(qt_plugin_path).parts:
        del env["QT_PLUGIN_PATH"]
        changed.append(f"QT_PLUGIN_PATH: {qt_plugin_path} removed")
    for c in changed:
        log.info("Qt environment: %s", c)
    return changed


def wants_xcb(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_xcb_libraries() -> list[str]:
    """Debian/Ubuntu packages whose libraries Qt's xcb plugin needs and this system lacks (empty: all there)."""
    missing = []
    for lib, package in XCB_LIBRARIES.items():
        name = ctypes.util.find_library(lib)
        try:
            ctypes.CDLL(name or f"lib{lib}.so")
        except OSError:
            missing.append(package)
    return missing


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why a window cannot open here, in words, or None. Checked before QApplication, which would abort."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0]
    if platform in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return None
    if not platform and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return ("no display found (DISPLAY and WAYLAND_DISPLAY are not set): start the app from a desktop "
                "session, or use the command line: fdface --help")
    if wants_xcb(env):
        missing = missing_xcb_libraries()
        if missing:
            return ("Qt's X11 support needs system libraries that are missing: "
                    f"install them with  sudo apt-get install {' '.join(missing)}")
    return None
