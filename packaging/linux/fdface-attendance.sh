#!/bin/sh
# /usr/bin/fdface-attendance: start the app installed in /opt/fdface-attendance (a PyInstaller one-folder bundle).
# `fdface-attendance --self-test` checks the installation; `--first-frame VIDEO` times start-up.
exec /opt/fdface-attendance/fdface-attendance "$@"
