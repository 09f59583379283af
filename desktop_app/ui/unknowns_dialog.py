"""Unknown visitors: the faces that stayed unknown over a whole track (README "Unknown visitors"), newest first,
with when, where, how long, whom they resembled most and their snapshot when one was kept. "Enroll this person"
opens the enrolment dialog with the snapshots of the selected rows as captures; the log can be deleted here.

The queries are the core's (desktop_app/attendance/unknowns.py), run on the controller's task thread. The open
dialog follows the log by itself: it reloads when this app's writer logs a visitor (the controller calls
:meth:`UnknownsDialog.follow`) and, for the visitors other stations log on a shared database, on the session's
catch-up period while it is shown; the selection and the rows in view stay, and nothing reloads under a delete
(running or being confirmed)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QHideEvent, QIcon, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.attendance import unknowns as un
from desktop_app.attendance.rules import resolve_zone
from desktop_app.ui.images import jpeg_to_qimage
from desktop_app.ui.qtcompat import emit
from desktop_app.vision.media import MediaError, decode_image

THUMB = 64
MAX_ROWS = 1000  # the newest; the CLI lists them all
COLUMNS = ("Snapshot", "Time", "Station", "Similarity", "Resembles most", "Seen for")


class UnknownsDialog(QDialog):
    loaded = Signal(int)  # rows shown
    deleted = Signal(int)

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Unknown visitors")
        self.resize(900, 560)
        self.tz, _ = resolve_zone(controller.settings.attendance.timezone)
        self.rows: list[un.UnknownRow] = []
        self.snapshots: dict[int, bytes] = {}
        self.enroll_dialog = None
        self.confirm: QMessageBox | None = None
        self._loading = False  # a load is on the task thread
        self._deleting = False  # a delete is on the task thread
        self._stale = False  # the log changed while a load or a delete was under way: load again after it
        # other stations on a shared database log visitors too: looked for on the session's catch-up period
        self.poll = QTimer(self)
        self.poll.setInterval(max(200, int(controller.attendance.refresh_seconds * 1000)))
        self.poll.timeout.connect(self.follow)
        self.note = QLabel(un.privacy_text(controller.settings.unknowns))
        self.note.setObjectName("privacyNote")
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.refresh_btn = QPushButton("Refresh")
        self.enroll_btn = QPushButton("Enroll this person…")
        self.enroll_btn.setToolTip("Opens the enrolment dialog with the snapshots of the selected rows as captures")
        self.delete_btn = QPushButton("Delete selected")
        self.delete_all_btn = QPushButton("Delete all unknown visitors…")
        self.close_btn = QPushButton("Close")
        for b in (self.refresh_btn, self.enroll_btn, self.delete_btn, self.delete_all_btn, self.close_btn):
            b.setAutoDefault(False)
        buttons = QHBoxLayout()
        for b in (self.refresh_btn, self.enroll_btn, self.delete_btn, self.delete_all_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_btn)
        lay = QVBoxLayout(self)
        lay.addWidget(self.note)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        self.refresh_btn.clicked.connect(self.reload)
        self.enroll_btn.clicked.connect(self.enroll_selected)
        self.delete_btn.clicked.connect(self.delete_selected)
        self.delete_all_btn.clicked.connect(self.ask_delete_all)
        self.close_btn.clicked.connect(self.reject)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()
        self.reload()

    # -- loading -------------------------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.poll.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self.poll.stop()
        super().hideEvent(event)

    def busy(self) -> bool:
        """A delete is running or being confirmed: the rows stay as the user sees them until it is over."""
        return self._deleting or (self.confirm is not None and self.confirm.isVisible())

    @Slot()
    def follow(self) -> None:
        """The log may have changed (a visitor was logged, or the period is up): reload when shown and not busy,
        without saying "Loading…"; after the load or delete under way when there is one."""
        if not self.isVisible():
            return
        if self._loading or self.busy():
            self._stale = True
            return
        self._load(quiet=True)

    @Slot()
    def reload(self) -> None:
        if self._loading:
            self._stale = True
            return
        self._load(quiet=False)

    def _load(self, quiet: bool) -> None:
        engine = self.controller.engine
        if engine is None:
            self.status.setText(self.controller.store_error or "The database is not open yet.")
            return
        if not quiet:
            self.status.setText("Loading…")
        self._loading = True
        self._stale = False
        known = set(self.snapshots)  # pictures already here are not read again

        def job() -> tuple[list[un.UnknownRow], dict[int, bytes]]:
            rows = un.list_unknowns(engine, limit=MAX_ROWS)
            return rows, un.unknown_snapshots(engine, [r.id for r in rows if r.has_snapshot and r.id not in known])

        self.controller.tasks.submit(job, self._loaded, self._load_failed)

    def _loaded(self, out: tuple[list[un.UnknownRow], dict[int, bytes]]) -> None:
        self._loading = False
        rows, fetched = out
        snapshots = {r.id: self.snapshots[r.id] for r in rows if r.id in self.snapshots} | fetched
        self._show((rows, snapshots))
        if self._stale:
            self.follow()

    def _load_failed(self, message: str) -> None:
        self._loading = False
        self._failed(message)

    def _show(self, out: tuple[list[un.UnknownRow], dict[int, bytes]]) -> None:
        rows, snapshots = out
        if rows == self.rows and snapshots.keys() == self.snapshots.keys() and self.table.rowCount() == len(rows):
            self._update_status()  # nothing changed: the table is left as it is (selection, scrolling, focus)
            emit(self.loaded, len(rows))
            return
        t = self.table
        # what the user looks at, by entry (new visitors come in at the top and shift the row numbers)
        chosen = {r.id for r in self.selected()}
        cur = t.currentRow()
        current = self.rows[cur].id if 0 <= cur < len(self.rows) else None
        top = t.rowAt(0)
        top_id = self.rows[top].id if t.verticalScrollBar().value() > 0 and 0 <= top < len(self.rows) else None
        self.rows, self.snapshots = rows, snapshots
        t.clearSelection()
        t.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            thumb = QTableWidgetItem("" if r.has_snapshot else "no picture")
            img = jpeg_to_qimage(self.snapshots.get(r.id))
            if img is not None:
                thumb.setIcon(QIcon(QPixmap.fromImage(img.scaled(
                    THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))))
            cells = [thumb, QTableWidgetItem(r.ts.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")),
                     QTableWidgetItem(r.station),
                     QTableWidgetItem("" if r.similarity is None else f"{r.similarity:.3f}"),
                     QTableWidgetItem(r.resembles), QTableWidgetItem(un.seen_for(r.frames, r.seconds))]
            for c, item in enumerate(cells):
                t.setItem(i, c, item)
        self._restore_view(chosen, current, top_id)
        self._update_status()
        self._update_buttons()
        emit(self.loaded, len(self.rows))

    def _restore_view(self, chosen: set[int], current: int | None, top_id: int | None) -> None:
        """The same entries selected and current, and the same entry at the top of the view (unless it was at the
        very top: then it stays there, and newly logged visitors show)."""
        t, model = self.table, self.table.model()
        where = {r.id: i for i, r in enumerate(self.rows)}
        sel = QItemSelection()
        for i in sorted(where[x] for x in chosen if x in where):
            sel.select(model.index(i, 0), model.index(i, len(COLUMNS) - 1))
        sm = t.selectionModel()
        if current in where:
            sm.setCurrentIndex(model.index(where[current], 0), QItemSelectionModel.SelectionFlag.NoUpdate)
        sm.select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if top_id in where:
            t.scrollToItem(t.item(where[top_id], 0), QAbstractItemView.ScrollHint.PositionAtTop)
        else:
            t.scrollToTop()

    def _update_status(self) -> None:
        more = " (the newest shown; `fdface unknowns` lists them all)" if len(self.rows) >= MAX_ROWS else ""
        self.status.setText(f"{len(self.rows)} unknown visitor(s){more}.")

    def _failed(self, message: str) -> None:
        self.status.setText(f"Could not read the unknown-visitor log: {message}")

    # -- selection -----------------------------------------------------------------------------------------------------
    def selected(self) -> list[un.UnknownRow]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.rows[r] for r in rows if r < len(self.rows)]

    def _update_buttons(self) -> None:
        sel = self.selected()
        self.enroll_btn.setEnabled(any(r.id in self.snapshots for r in sel))
        self.delete_btn.setEnabled(bool(sel))
        self.delete_all_btn.setEnabled(bool(self.rows))

    # -- enrolling -----------------------------------------------------------------------------------------------------
    def snapshot_images(self, rows: list[un.UnknownRow]) -> list[tuple[str, np.ndarray]]:
        out = []
        for r in rows:
            data = self.snapshots.get(r.id)
            if data is None:
                continue
            try:
                out.append((f"unknown visitor #{r.id}", decode_image(data, f"snapshot of unknown visitor #{r.id}")))
            except MediaError:
                continue
        return out

    @Slot()
    def enroll_selected(self):
        """The enrolment dialog, with the selected visitors' snapshots as its captures."""
        images = self.snapshot_images(self.selected())
        if not images:
            self.status.setText("The selected rows have no snapshot to enrol from (snapshots are kept only when the "
                                "setting 'Keep a snapshot of each unknown visitor' is on).")
            return None
        dlg = self.controller.show_enrollment()
        dlg.add_images(images)
        self.enroll_dialog = dlg
        return dlg

    # -- deleting ------------------------------------------------------------------------------------------------------
    @Slot()
    def delete_selected(self) -> None:
        ids = [r.id for r in self.selected()]
        if ids:
            self._delete(ids)

    @Slot()
    def ask_delete_all(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Unknown visitors",
                          f"Delete all {len(self.rows)} unknown visitor(s) and their snapshots? This cannot be undone.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.Yes).setText("Delete all")
        box.finished.connect(lambda r: self.delete_all() if r == QMessageBox.StandardButton.Yes else self._idle())
        self.confirm = box
        box.open()

    def delete_all(self) -> None:
        self._delete(None)

    def _delete(self, ids: list[int] | None) -> None:
        engine = self.controller.engine
        if engine is None:
            return

        def done(n: int) -> None:
            self._deleting = False
            self.status.setText(f"Deleted {n} unknown visitor(s).")
            emit(self.deleted, n)
            self.reload()

        def failed(message: str) -> None:
            self._deleting = False
            self._failed(message)
            self._idle()

        self._deleting = True
        self.controller.tasks.submit(lambda: un.delete_unknowns(engine, ids=ids), done, failed)

    def _idle(self) -> None:
        """A delete is over (or was not confirmed): what was logged meanwhile shows now."""
        if self._stale:
            self.follow()
