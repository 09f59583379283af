"""Entry script of the frozen app (PyInstaller): ``--self-test`` / ``--first-frame VIDEO`` run the installation
checks of desktop_app/selftest.py; anything else starts the desktop app (desktop_app.ui.app:main)."""

import sys

sys.dont_write_bytecode = True  # Alembic loads its migration scripts from the install folder: write no caches there


def main() -> int:
    from desktop_app import selftest

    argv = sys.argv[1:]
    if selftest.wants_self_test(argv):
        from desktop_app.ui import selftest_qt  # the checks with Qt (the core's self-test does not import ui)

        return selftest_qt.main(argv)
    from desktop_app.ui.app import main as gui_main

    return int(gui_main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
