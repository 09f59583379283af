"""People manager: search, each person's templates (thumbnails of the kept crops), edit, add photos / re-enroll,
delete with confirmation (the right to erasure: templates, crops and snapshots go; past events are deleted or
keep a pseudonym, by the settings). Reads are small queries of :mod:`desktop_app.attendance.queries` through
``controller.store()``; every write runs on the controller's task thread through
:class:`desktop_app.gallery.service.Gallery`."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.attendance.queries import PersonRow, list_people, person_templates
from desktop_app.storage import StoreError
from desktop_app.ui.images import jpeg_to_qimage
from desktop_app.ui.qtcompat import emit

THUMB = 80


class PeopleDialog(QDialog):
    changed = Signal()

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("People")
        self.resize(1000, 600)
        self.rows: list[PersonRow] = []
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by name, external id, group (any part) or #number")
        self.search.setClearButtonEnabled(True)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Name", "External id", "Group", "Active", "Templates"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.count = QLabel()
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.search)
        lv.addWidget(self.table, 1)
        lv.addWidget(self.count)

        self.name = QLineEdit()
        self.external_id = QLineEdit()
        self.group = QComboBox()
        self.group.setEditable(True)
        self.active = QCheckBox("Recognised (active)")
        self.save_btn = QPushButton("Save changes")
        self.templates = QListWidget()
        self.templates.setViewMode(QListWidget.ViewMode.IconMode)
        self.templates.setIconSize(QSize(THUMB, THUMB))
        self.templates.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.templates.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.remove_tpl_btn = QPushButton("Remove selected templates")
        self.add_btn = QPushButton("Add photos…")
        self.reenroll_btn = QPushButton("Re-enroll…")
        self.delete_btn = QPushButton("Delete person…")
        self.delete_btn.setStyleSheet("color: #c0392b;")
        # Enter never starts a deletion (nor presses another button of the dialog): a click or Space does
        for b in (self.save_btn, self.remove_tpl_btn, self.add_btn, self.reenroll_btn, self.delete_btn):
            b.setAutoDefault(False)
        self.status = QLabel()
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("External id", self.external_id)
        form.addRow("Group", self.group)
        form.addRow("", self.active)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addLayout(form)
        rv.addWidget(self.save_btn)
        rv.addWidget(QLabel("Templates"))
        rv.addWidget(self.templates, 1)
        row = QHBoxLayout()
        for b in (self.remove_tpl_btn, self.add_btn, self.reenroll_btn, self.delete_btn):
            row.addWidget(b)
        rv.addLayout(row)
        rv.addWidget(self.status)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([480, 520])
        close = QPushButton("Close")
        close.setAutoDefault(False)
        close.clicked.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        lay.addLayout(bottom)

        self.search.textChanged.connect(self.refresh)
        self.table.itemSelectionChanged.connect(self._selected)
        self.save_btn.clicked.connect(self.save_changes)
        self.remove_tpl_btn.clicked.connect(self.remove_templates)
        self.add_btn.clicked.connect(lambda: self.reenroll(replace=False))
        self.reenroll_btn.clicked.connect(lambda: self.reenroll(replace=True))
        self.delete_btn.clicked.connect(self.delete_person)
        controller.galleryChanged.connect(self.refresh)
        self.refresh()
        self._selected()

    # -- reading -------------------------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        keep = self.selected_id
        try:
            self.rows = self.controller.store().read(list_people, self.search.text().strip())
        except StoreError as exc:
            self.rows = []
            self.status.setText(str(exc))
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            for j, v in enumerate([r.name, r.external_id or "", r.group or "", "yes" if r.active else "no",
                                   str(r.templates)]):
                it = QTableWidgetItem(v)
                it.setData(Qt.ItemDataRole.UserRole, r.id)
                self.table.setItem(i, j, it)
        self.table.resizeColumnsToContents()
        self.count.setText(f"{len(self.rows)} {'person' if len(self.rows) == 1 else 'people'}")
        groups = self.controller.groups()
        cur = self.group.currentText()
        self.group.clear()
        self.group.addItems([""] + groups)
        self.group.setCurrentText(cur)
        if keep is not None:
            self.select(keep)

    def select(self, person_id: int) -> bool:
        for i, r in enumerate(self.rows):
            if r.id == person_id:
                self.table.selectRow(i)
                return True
        return False

    @property
    def selected_id(self) -> int | None:
        r = self.selected
        return r.id if r else None

    @property
    def selected(self) -> PersonRow | None:
        sel = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not sel:
            return None
        i = sel[0].row()
        return self.rows[i] if 0 <= i < len(self.rows) else None

    def _selected(self) -> None:
        r = self.selected
        for w in (self.name, self.external_id, self.group, self.active, self.save_btn, self.templates,
                  self.remove_tpl_btn, self.add_btn, self.reenroll_btn, self.delete_btn):
            w.setEnabled(r is not None)
        self.templates.clear()
        if r is None:
            self.name.clear()
            self.external_id.clear()
            return
        self.name.setText(r.name)
        self.external_id.setText(r.external_id or "")
        self.group.setCurrentText(r.group or "")
        self.active.setChecked(r.active)
        tpls = self.controller.store().read(person_templates, r.id)
        for t in tpls:
            item = QListWidgetItem(f"#{t.id}")
            item.setData(Qt.ItemDataRole.UserRole, t.id)
            stale = t.model_id != self.controller.model_id
            item.setToolTip(f"template #{t.id}\nfrom {t.source}\nquality {t.quality:.2f}\nmodel {t.model_id}"
                            + ("\n(another model: recomputed from its crop or re-enroll)" if stale else ""))
            img = jpeg_to_qimage(t.jpeg)
            if img is not None:
                item.setIcon(QIcon(QPixmap.fromImage(img)))
            else:
                item.setText(f"#{t.id}\n(no crop kept)")
            self.templates.addItem(item)

    # -- writing (task thread, through the core) -------------------------------------------------------------------
    def _run(self, what: str, fn, after=None) -> None:
        self.status.setText(f"{what}…")

        def done(_):
            self.status.setText(f"{what}: done")
            if after is not None:
                after()
            self.controller.after_gallery_change()
            emit(self.changed)

        self.controller.tasks.submit(fn, done, lambda m: self.status.setText(f"{what} failed: {m}"))

    @Slot()
    def save_changes(self) -> None:
        r = self.selected
        gallery = self.controller.gallery
        if r is None or gallery is None:
            return
        name, ext = self.name.text().strip(), self.external_id.text().strip()
        group, active = self.group.currentText().strip(), self.active.isChecked()

        def job():
            gallery.set_details(r.id, external_id=ext, group=group)
            if name != r.name:
                gallery.rename(r.id, name)
            if active != r.active:
                gallery.set_active(r.id, active)

        self._run(f"Saving {name}", job)

    @Slot()
    def remove_templates(self) -> None:
        gallery = self.controller.gallery
        ids = [i.data(Qt.ItemDataRole.UserRole) for i in self.templates.selectedItems()]
        if not ids or gallery is None:
            return
        if self.templates.count() - len(ids) <= 0 and not self._confirm(
                "Remove every template?", "This person will not be recognised until enrolled again.", "Remove"):
            return
        self._run(f"Removing {len(ids)} template(s)", lambda: gallery.delete_templates(ids))

    def reenroll(self, replace: bool) -> None:
        r = self.selected
        if r is None:
            return
        from desktop_app.ui.enroll_dialog import EnrollDialog

        dlg = EnrollDialog(self.controller, self, person=(r.id, r.name, r.external_id or "", r.group or ""),
                           replace=replace)
        dlg.enrolled.connect(lambda _: self.refresh())
        self.enroll_dialog = dlg
        dlg.open()

    def _confirm(self, title: str, text: str, action: str) -> bool:
        """Ask before a destructive ``action``; Cancel is the default, so Enter (or Escape) never destroys."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.NoButton, self)
        do = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.exec()
        return box.clickedButton() is do

    @Slot()
    def delete_person(self) -> None:
        r = self.selected
        gallery = self.controller.gallery
        if r is None or gallery is None:
            return
        erase = self.controller.settings.attendance.erase_events_on_delete
        past = ("Their past attendance events are deleted too." if erase else
                "Their past attendance events stay, under an anonymous reference.")
        if not self._confirm(f"Delete {r.name}?", f"{r.name} ({r.templates} template(s)) is removed with every "
                             f"face template, kept crop and snapshot. {past}\n\nThis cannot be undone.", "Delete"):
            return
        self._run(f"Deleting {r.name}", lambda: gallery.delete_person(r.id, erase_events=erase),
                  after=self._deselect)

    def _deselect(self) -> None:
        """After a deletion nobody is selected and the focus is in the search field: the next person is never one
        key press away from the same fate."""
        self.table.clearSelection()
        self.table.setCurrentItem(None)
        self._selected()
        self.search.setFocus()
