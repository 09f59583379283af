"""File > Back up now, the daily backup and File > Restore from backup, for the app controller.

Backups run on their own worker thread (a large database takes seconds to copy and verify; enrolments and the
attendance writer go on meanwhile). A restore runs on the controller's database thread: the file is checked
first while the app keeps recording; only once it passed are the event writer (everything it holds is written
first) and the gallery closed, the database replaced, and the store opened again as after a database switch.

A restore's result is always shown in a message box (selectable text with the full paths: where the database as it
was is kept); so is Back up now's, whose path does not fit in the status bar. The daily backup only says so there.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_app.attendance.rules import resolve_zone
from desktop_app.gallery.backup import (
    BackupCheck,
    BackupError,
    BackupResult,
    RestoreResult,
    backup_due,
    copies_note,
    make_backup,
    pg_commands,
    restore_database,
    sqlite_file,
)
from desktop_app.ui.qtcompat import emit
from desktop_app.ui.tasks import TaskQueue

log = logging.getLogger(__name__)

CHECK_EVERY_MS = 3600_000  # how often the app looks whether the daily backup is due
START_DELAY_MS = 120_000  # the first look, after start: not while models load and the camera opens
WRITER_CLOSE_S = 10.0  # a restore: how long the writer may take to write what it holds into the old database


class BackupController(QObject):
    finished = Signal(str)  # what the status bar said when a backup or restore ended (tests wait on it)

    def __init__(self, ctl: Any) -> None:
        super().__init__(ctl)
        self.ctl = ctl
        self.queue = TaskQueue("fdface-backup")
        self.running = ""  # "backup" or "restore" while one runs
        self.last: BackupResult | RestoreResult | None = None
        self.box: Any = None  # the message box open now (confirmation or result), for tests
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_EVERY_MS)
        self.timer.timeout.connect(self.backup_if_due)
        self.first_look = QTimer(self)  # a child: stopped with the app, never fires into a closed one
        self.first_look.setSingleShot(True)
        self.first_look.setInterval(START_DELAY_MS)
        self.first_look.timeout.connect(self.backup_if_due)
        self._first_look = True
        w = ctl.window
        w.backupRequested.connect(self.backup_now)
        w.restoreRequested.connect(self.ask_restore)
        ctl.storeReady.connect(self._store_ready)

    # -- where ---------------------------------------------------------------------------------------------------
    def database(self) -> Path | None:
        """The SQLite file in use; None for PostgreSQL (or a database that is not a file)."""
        try:
            return sqlite_file(self.ctl.settings.storage.resolved_url())
        except BackupError:
            return None

    def folder(self) -> Path:
        return self.ctl.settings.backup.resolved_folder()

    def _say(self, text: str, ms: int = 15_000) -> None:
        self.ctl.window.statusBar().showMessage(text, ms)
        emit(self.finished, text)

    def _show(self, icon: Any, title: str, text: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.ctl.window)
        box.setTextInteractionFlags(box.textInteractionFlags() | _selectable())
        self.box = box
        box.open()

    # -- backups -------------------------------------------------------------------------------------------------
    def _store_ready(self) -> None:
        self.ctl.window.backup_folder = str(self.folder())
        if self._first_look:
            self._first_look = False
            self.timer.start()
            self.first_look.start()

    def backup_if_due(self) -> bool:
        """The daily backup: when it is on, a SQLite database is open and its newest backup is a day old (or there
        is none). True when one was started."""
        s = self.ctl.settings.backup
        db = self.database()
        if not s.scheduled or self.running or db is None or self.ctl.engine is None:
            return False
        try:
            due = backup_due(self.folder(), db)
        except OSError as exc:
            log.warning("could not look at the backup folder %s: %s", self.folder(), exc)
            return False
        if due:
            self.backup_now(scheduled=True)
        return due

    def backup_now(self, scheduled: bool = False) -> None:
        from PySide6.QtWidgets import QMessageBox

        db = self.database()
        if db is None:
            url = self.ctl.settings.storage.resolved_url()
            if not scheduled and url.startswith("postgresql"):
                self._show(QMessageBox.Icon.Information, "Back up",
                           "This station uses a PostgreSQL database: back it up on the database server with "
                           f"pg_dump (it asks for the password):\n\n{pg_commands(url)[0]}")
            return
        if self.running:
            self.ctl.window.statusBar().showMessage(f"A {self.running} is already running", 8000)
            return
        self.running = "backup"
        s = self.ctl.settings.backup
        folder = self.folder()
        self.ctl.window.statusBar().showMessage(f"Backing up the database to {folder}…")

        def done(r: BackupResult) -> None:
            self.running = ""
            self.last = r
            removed = f"; {len(r.removed)} older backup(s) removed" if r.removed else ""
            self._say(f"Backed up to {r.path} ({r.check.people} people, {r.check.events} events, verified)"
                      f"{removed}")
            if not scheduled:  # the path does not fit in the status bar: said where it can be read and copied
                kept = (f"\n\n{len(r.removed)} older backup(s) removed (keeping the newest of each of the last "
                        f"{s.keep_daily} days and {s.keep_weekly} weeks).") if r.removed else ""
                self._show(QMessageBox.Icon.Information, "Back up",
                           f"Backed up the database\n{db}\nto\n{r.path}\n\n{r.check.people} people, "
                           f"{r.check.events} events, verified.{kept}")

        def failed(message: str) -> None:
            self.running = ""
            self._say(f"Backup failed: {message}", 0)
            if not scheduled:
                self._show(QMessageBox.Icon.Warning, "Back up", f"The backup failed: {message}")

        tz, _ = resolve_zone(self.ctl.settings.attendance.timezone)
        self.queue.submit(lambda: make_backup(db, folder, s.keep_daily, s.keep_weekly, tz=tz), done, failed)

    # -- restore -------------------------------------------------------------------------------------------------
    def ask_restore(self, path: str) -> None:
        """Ask before replacing anything (Cancel is the default button: a stray Enter restores nothing)."""
        from PySide6.QtWidgets import QMessageBox

        db = self.database()
        if db is None:
            url = self.ctl.settings.storage.resolved_url()
            self._show(QMessageBox.Icon.Information, "Restore",
                       "This station uses a PostgreSQL database: restore a pg_dump file on the database server "
                       f"with pg_restore (it replaces the tables):\n\n{pg_commands(url, file=path)[1]}"
                       if url.startswith("postgresql") else "This database cannot be restored from here.")
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Restore from backup",
                          f"Replace the database\n{db}\nwith the backup\n{path}?\n\nThe backup is checked first; "
                          "a damaged one is refused and nothing changes. The current database is kept beside "
                          "it (…before-restore-DATE, never deleted by the app); "
                          "attendance recorded since the backup stays only in that kept copy.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.ctl.window)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Restore")
        box.finished.connect(lambda r: self.restore(path) if r == QMessageBox.StandardButton.Yes else None)
        self.box = box
        box.open()

    def restore(self, path: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        ctl = self.ctl
        db = self.database()
        if db is None:
            return
        if self.running:
            self._say(f"Not restored: a {self.running} is running; try again when it has finished")
            return
        self.running = "restore"
        ctl.window.statusBar().showMessage(f"Checking {path}…")
        session, gallery, engine = ctl.attendance, ctl.gallery, ctl.engine
        closed: list[bool] = []

        def let_go(check: BackupCheck) -> bool:
            """The backup passed its checks: write what the writer holds, then close this app's connections."""
            closed.append(True)
            session.detach_gallery()  # no face is named from the old gallery any more
            if session.writer is not None:
                session.writer.close(timeout=WRITER_CLOSE_S)
            if gallery is not None:
                gallery.close()
            elif engine is not None:
                engine.dispose()
            return True

        def done(r: RestoreResult) -> None:
            self.running = ""
            self.last = r
            ctl.open_store()  # as after a database switch: gallery, index (rebuilt), today's events, a new writer
            migrated = f", schema brought up to {r.schema_now}" if r.migrated else ""
            kept = f" The database as it was is kept as {r.kept_aside}." if r.kept_aside else ""
            self._say(f"Restored from {r.restored_from} ({r.people} people, {r.events} events{migrated}).{kept}", 0)
            text = f"Restored the database\n{r.database}\nfrom\n{r.restored_from}\n\n{r.people} people, " \
                   f"{r.events} events{migrated}."
            if r.kept_aside:
                text += (f"\n\nThe database as it was (with anything recorded since the backup) is kept as\n"
                         f"{r.kept_aside}")
            if note := copies_note(r.kept_copies):
                text += f"\n\n{note}."
            self._show(QMessageBox.Icon.Information, "Restore", text)

        def failed(message: str) -> None:
            self.running = ""
            if closed:
                ctl.open_store()  # the database stayed as it was: opened again
            self._say(f"Not restored: {message}", 0)
            self._show(QMessageBox.Icon.Warning, "Restore", f"Not restored: {message}")

        ctl.tasks.submit(lambda: restore_database(Path(path), db, confirm=let_go), done, failed)

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """False when a backup or restore still runs after ``timeout_ms``."""
        self.timer.stop()
        self.first_look.stop()
        return self.queue.stop(timeout_ms)


def _selectable() -> Any:
    from PySide6.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse
