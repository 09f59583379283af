"""Screenshots of the desktop app taken on a real X server (Xvfb), for the README.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--video CLIP] [--display :N]

What it does, as a person would: starts Xvfb (unless --display is given), opens the main window on the sample
clip with a fresh temporary database, enrols the singer through the enrollment dialog (it pauses the clip) from
frames stepped to while the guidance is green, waits until he is named and checked in, and saves:

- main.png: the live view (boxes, name and similarity, FPS and per-stage ms) and today's events;
- enroll.png: the enrollment dialog during captures (guidance, thumbnails, a refused photo with its reason);
- people.png: the people manager with the enrolled person's template thumbnails;
- log.png and log-chart.png: the attendance log (events, then the per-day chart). Besides the clip's check-in, the
  log holds a week of demonstration events (a check-in and a check-out on each past weekday, station "demo")
  written to the store by this script, so that the chart has several days to show.

Images are grabbed from the X server's screen (QScreen.grabWindow), i.e. what the server displays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def start_xvfb(size: str) -> tuple[subprocess.Popen, str]:
    if not shutil.which("Xvfb"):
        raise SystemExit("Xvfb is not installed: apt-get install -y xvfb (or pass --display :N)")
    for n in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    else:
        raise SystemExit("no free X display number between :90 and :139")
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = Path(f"/tmp/.X11-unix/X{n}")
    for _ in range(100):
        if sock.exists():
            return proc, f":{n}"
        if proc.poll() is not None:
            raise SystemExit(f"Xvfb :{n} exited with {proc.returncode}")
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit(f"Xvfb :{n} did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--video", default=str(REPO.parent / "shared" / "media" / "video" / "short_hamilton_clip.mp4"))
    ap.add_argument("--photos", default=str(REPO.parent / "shared" / "media" / "scenes" / "bbt1.jpg"),
                    help="a photo the enrollment dialog refuses (several faces), to show a refusal")
    ap.add_argument("--display", help="use this X display instead of starting Xvfb")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from desktop_app.ui.qtenv import missing_xcb_libraries

    if missing := missing_xcb_libraries():  # Qt would abort the process without saying which
        raise SystemExit(f"Qt's X11 plugin needs these packages: apt-get install -y {' '.join(missing)}")
    xvfb = None
    if args.display:
        os.environ["DISPLAY"] = args.display
    else:
        xvfb, os.environ["DISPLAY"] = start_xvfb("1400x900")
    os.environ.pop("QT_QPA_PLATFORM", None)
    try:
        return run(args)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


def run(args) -> int:
    from desktop_app.ui.qtenv import prepare_qt_environment

    prepare_qt_environment()
    from PySide6.QtCore import QElapsedTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from desktop_app.config import Settings
    from desktop_app.ui.controller import AppController

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fdface-shots-"))
    app = QApplication.instance() or QApplication(["fdface-screenshots"])
    settings = (Settings().with_changes("storage", database_url=f"sqlite:///{tmp / 'attendance.db'}")
                .with_changes("performance", threads=args.threads)
                .with_changes("attendance", station="front-door")
                .with_changes("recognition", recheck_frames=5))
    ctl = AppController(settings, tmp / "settings.toml", source="", pace=True, camera_lister=lambda: [])
    ctl.window.resize(1280, 720)
    ctl.window.move(0, 0)

    def wait(pred, seconds: float, what: str) -> None:
        t = QElapsedTimer()
        t.start()
        while not pred():
            app.processEvents()
            time.sleep(0.005)
            if t.elapsed() > seconds * 1000:
                raise SystemExit(f"timed out waiting for {what}")

    def shot(widget, name: str) -> None:
        widget.raise_()
        widget.activateWindow()
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        g = widget.frameGeometry()
        img = QGuiApplication.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height())
        path = out / name
        img.save(str(path))
        print(f"wrote {path} ({img.width()}x{img.height()})")

    try:
        return take(app, ctl, settings, args, wait, shot)
    finally:
        ctl.shutdown()


def take(app, ctl, settings, args, wait, shot) -> int:
    from datetime import UTC, datetime, timedelta

    from PySide6.QtCore import QTimer

    ready = []
    ctl.storeReady.connect(lambda: ready.append(1))
    ctl.start()
    wait(lambda: ready, 60, "the database")
    ctl.open_source(args.video)

    # enrol the singer (frames ~85-120: he faces the camera from the third second on); the dialog pauses the clip,
    # and the person enrolling steps through it frame by frame, capturing while the guidance is green
    dlg = ctl.show_enrollment()
    dlg.move(60, 40)
    dlg.name.setText("Lin-Manuel Miranda")
    dlg.external_id.setText("S-1001")
    dlg.group.setCurrentText("Performers")
    taken: list[int] = []
    while len(taken) < 4 and (ctl.last_packet is None or ctl.last_packet.index <= 125):
        pk = ctl.last_packet
        spaced = pk is not None and pk.index - max(taken, default=0) > 6
        if pk is not None and 85 <= pk.index <= 125 and dlg.ready and not dlg.busy and spaced:
            taken.append(pk.index)
            dlg.capture()
            wait(lambda: not dlg.busy, 60, "a capture's analysis")
        shown = ctl.frames_seen
        dlg.next_btn.click()
        wait(lambda shown=shown: ctl.frames_seen > shown, 60, "the next frame")
    if args.photos and Path(args.photos).exists():
        dlg.import_photos([args.photos])
    wait(lambda: not dlg.busy, 60, "the captures' analysis")
    shot(dlg, "enroll.png")
    if not dlg.usable:
        raise SystemExit("no capture was usable, nothing to enrol: " + "; ".join(str(r) for r in dlg.refusals))
    done = []
    dlg.enrolled.connect(lambda r: done.append(r))
    dlg.save_btn.click()
    wait(lambda: done, 60, "the enrollment to be saved")

    # the main window once the singer is named and his check-in is flashing
    def named() -> bool:
        pk = ctl.last_packet
        return (pk is not None and any(f.name and f.voted for f in pk.faces)
                and bool(ctl.window.view.flash_text or ctl.events_shown))

    wait(named, 120, "the singer to be named")
    shot(ctl.window, "main.png")

    # a week of demonstration events written to the store (a check-in and a check-out on each weekday), so that
    # the log and its chart have several days to show; station "demo" marks them
    from sqlalchemy.orm import Session

    from desktop_app import storage as st
    from desktop_app.attendance.rules import resolve_zone

    pid = done[0].person_id
    _, tz_name = resolve_zone(settings.attendance.timezone)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with Session(ctl.engine) as s, s.begin():
        person = s.get(st.Person, pid)
        for d in range(6, 0, -1):
            day = now - timedelta(days=d)
            if day.weekday() < 5:
                st.add_event(s, person, day.replace(hour=8) + timedelta(minutes=7 * d), tz_name, "demo",
                             st.EventKind.CHECK_IN, 0.71)
                st.add_event(s, person, day.replace(hour=16) + timedelta(minutes=11 * d), tz_name, "demo",
                             st.EventKind.CHECK_OUT, 0.69)
    people = ctl.show_people()
    people.move(40, 40)
    people.select(pid)
    shot(people, "people.png")
    people.accept()
    log = ctl.show_log()
    log.move(40, 40)
    log.refresh()
    log.events.setFocus()
    shot(log, "log.png")
    log.tabs.setCurrentWidget(log.chart)
    QTimer.singleShot(0, lambda: None)
    shot(log, "log-chart.png")
    log.accept()
    return 0


if __name__ == "__main__":
    sys.exit(main())
