"""The opencv-python / PySide6 Qt plugin clash, proven on a real X server (Xvfb) in a fresh process.

Importing cv2 from the non-headless opencv-python wheel points QT_QPA_PLATFORM_PLUGIN_PATH at the Qt 5 plugins
inside cv2/. The app's start-up (desktop_app.ui.qtenv.prepare_qt_environment) must send Qt back to PySide6's own
plugins; then the real main window opens on the xcb platform with PySide6's xcb plugin loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from desktop_app.ui.qtenv import display_problem, prepare_qt_environment

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, argparse, tempfile
    import cv2  # first, as a user's code or a plugin might: opencv-python sets its Qt plugin path here
    before = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "")
    from desktop_app.ui.qtenv import prepare_qt_environment, pyside_plugins_dir
    changed = prepare_qt_environment()
    from PySide6.QtCore import QTimer
    from PySide6.QtTest import QTest
    from desktop_app.ui.controller import create_app
    tmp = tempfile.mkdtemp()
    args = argparse.Namespace(source="", settings=os.path.join(tmp, "s.toml"), db=os.path.join(tmp, "a.db"),
                              verbose=False)
    app, ctl = create_app(args)
    ctl.start()
    exposed = QTest.qWaitForWindowExposed(ctl.window, 20000)
    QTest.qWait(300)
    maps = open("/proc/self/maps").read().splitlines()
    xcb = sorted({l.split()[-1] for l in maps if l.endswith("libqxcb.so")})
    print(json.dumps({
        "cv2_headless": __import__("cv2.version").version.headless,
        "before": before, "after": os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", ""), "changed": changed,
        "pyside_plugins": str(pyside_plugins_dir()), "platform": app.platformName(), "exposed": bool(exposed),
        "visible": ctl.window.isVisible(), "xcb_plugins": xcb,
        "title": ctl.window.windowTitle(),
    }))
    ctl.shutdown()
    """
)


def test_window_opens_on_a_real_x_server_after_cv2(tmp_path):
    if not shutil.which("xvfb-run"):
        pytest.skip("needs xvfb-run (apt-get install -y xvfb) to start a real X server")
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "QT_QPA_PLATFORM_PLUGIN_PATH")}
    env["PYTHONPATH"] = str(REPO)
    env["HOME"] = str(tmp_path)  # no settings of the person running the tests
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-c", SCRIPT],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["platform"] == "xcb" and out["exposed"] and out["visible"], out
    assert out["title"] == "FDFace Attendance"
    plugins = out["pyside_plugins"]
    assert out["after"].startswith(plugins), out
    assert out["xcb_plugins"] and all(p.startswith(plugins) for p in out["xcb_plugins"]), out
    if not out["cv2_headless"]:  # the clash exists: cv2 set the variable, and the app replaced it
        assert "cv2" in out["before"], out
        assert any("QT_QPA_PLATFORM_PLUGIN_PATH" in c for c in out["changed"]), out


def test_prepare_qt_environment_replaces_foreign_paths(tmp_path):
    env = {"QT_QPA_PLATFORM_PLUGIN_PATH": "/somewhere/site-packages/cv2/qt/plugins",
           "QT_QPA_FONTDIR": "/somewhere/site-packages/cv2/qt/fonts"}
    changed = prepare_qt_environment(env)
    assert "cv2" not in env["QT_QPA_PLATFORM_PLUGIN_PATH"] and env["QT_QPA_PLATFORM_PLUGIN_PATH"].endswith("platforms")
    assert "QT_QPA_FONTDIR" not in env and len(changed) == 2
    again = dict(env)
    assert prepare_qt_environment(again) == [] and again == env  # idempotent


def test_display_problem_says_what_to_do(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("X11 checks are Linux-only")
    assert "no display" in display_problem({})
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    import desktop_app.ui.qtenv as qtenv

    monkeypatch.setattr(qtenv, "missing_xcb_libraries", lambda: ["libxcb-cursor0"])
    msg = display_problem({"DISPLAY": ":0"})
    assert "apt-get install libxcb-cursor0" in msg
