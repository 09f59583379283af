"""``fdface-gui``: the desktop app's entry point. Everything below it lives in the controller and the views."""

from __future__ import annotations

import argparse
import logging
import sys

from desktop_app.ui.qtenv import display_problem, prepare_qt_environment


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fdface-gui", description="FDFace Attendance desktop app")
    p.add_argument("--source", help="camera index, video file, image folder or rtsp:// URL (default: the settings')")
    p.add_argument("--settings", help="settings file (default: the user's settings.toml)")
    p.add_argument("--db", help="database URL or SQLite file, for this session only: not written to the settings "
                              "file (default: the settings')")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from desktop_app import selftest  # --self-test / --first-frame VIDEO: installation checks (packaging)

    if selftest.wants_self_test(sys.argv[1:] if argv is None else argv):
        from desktop_app.ui import selftest_qt

        return selftest_qt.main(argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("desktop_app").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    prepare_qt_environment()  # before QApplication: opencv-python's Qt plugin path must not reach Qt
    if problem := display_problem():
        print(f"fdface-gui: {problem}", file=sys.stderr)
        return 2
    from desktop_app.ui.controller import create_app, leave

    app, controller = create_app(args)
    controller.start()
    return leave(app.exec(), controller)


if __name__ == "__main__":
    sys.exit(main())
