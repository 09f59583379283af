"""Today's attendance beside the live view: counts (present / enrolled) and events as they happen."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

MAX_ROWS = 500  # older rows scroll away; the log view has them all

KIND_TEXT = {"check-in": "in", "check-out": "out", "seen": "seen"}
NOBODY_SEEN = "No one has been seen yet today."
NOBODY_ENROLLED = ("Nobody is enrolled yet. Enroll people first (Enroll a person, Ctrl+E): from then on they are "
                   "checked in when the camera sees them.")


@dataclass(frozen=True)
class PanelRow:
    """How the "Today" panel shows one event (an attendance.reports.EventRow or a just-recorded event, with its
    thumbnail); ``local_time`` in the attendance time zone."""

    event_id: int
    name: str
    local_time: datetime
    kind: str
    similarity: float
    station: str = ""
    thumbnail: QImage | None = None
    person_id: int | None = None  # None once the person was erased (the event keeps a pseudonym)

    @property
    def text(self) -> str:
        kind = KIND_TEXT.get(self.kind, self.kind)
        return f"{self.name}\n{self.local_time:%H:%M:%S}  ·  {kind}  ·  {self.similarity:.2f}"


class EventsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(260)
        self.title = QLabel("<b>Today</b>")
        self.counts = QLabel()
        self.counts.setObjectName("counts")
        self.counts.setStyleSheet("font-size: 15pt;")
        self.list = QListWidget()
        self.list.setIconSize(QSize(40, 40))
        self.list.setAlternatingRowColors(True)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty = QLabel(NOBODY_SEEN)
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: gray;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.title)
        lay.addWidget(self.counts)
        lay.addWidget(self.empty)
        lay.addWidget(self.list, 1)
        self._ids: set[int] = set()
        self.set_counts(0, 0)

    @Slot(int, int)
    def set_counts(self, present: int, enrolled: int) -> None:
        self.counts.setText(f"Present <b>{present}</b> / enrolled <b>{enrolled}</b>")
        self.present, self.enrolled = present, enrolled
        # a first start: say what to do first, rather than wait for arrivals nobody can be named for
        self.empty.setText(NOBODY_ENROLLED if enrolled == 0 else NOBODY_SEEN)

    @Slot(object)
    def add_event(self, row: PanelRow) -> None:
        """Newest first; an event already shown (same id) is updated in place (e.g. check-out demoted to seen)."""
        if row.event_id in self._ids:
            for i in range(self.list.count()):
                it = self.list.item(i)
                if it.data(Qt.ItemDataRole.UserRole) == row.event_id:
                    self.list.takeItem(i)
                    break
        self._ids.add(row.event_id)
        item = QListWidgetItem(row.text)
        item.setData(Qt.ItemDataRole.UserRole, row.event_id)
        item.setData(Qt.ItemDataRole.UserRole + 1, row)
        item.setToolTip(f"{row.name}\n{row.local_time:%Y-%m-%d %H:%M:%S %Z}\n{row.kind} at {row.station}\n"
                        f"similarity {row.similarity:.3f}")
        if row.thumbnail is not None and not row.thumbnail.isNull():
            item.setIcon(QIcon(QPixmap.fromImage(row.thumbnail)))
        self.list.insertItem(0, item)
        while self.list.count() > MAX_ROWS:
            gone = self.list.takeItem(self.list.count() - 1)
            self._ids.discard(gone.data(Qt.ItemDataRole.UserRole))
        self.empty.setVisible(False)

    @Slot(int, str)
    def set_kind(self, event_id: int, kind: str) -> None:
        """An event shown earlier changed kind (a check-out superseded by a later one becomes "seen")."""
        for i in range(self.list.count()):
            it = self.list.item(i)
            if it.data(Qt.ItemDataRole.UserRole) == event_id:
                row = it.data(Qt.ItemDataRole.UserRole + 1)
                if row is not None:
                    new = replace(row, kind=kind)
                    it.setText(new.text)
                    it.setData(Qt.ItemDataRole.UserRole + 1, new)
                return

    @Slot(object)
    def set_events(self, rows: list[PanelRow]) -> None:
        """Replace the list (oldest first in ``rows``)."""
        self.list.clear()
        self._ids.clear()
        for r in rows:
            self.add_event(r)
        self.empty.setVisible(not rows)

    def texts(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def rows(self) -> list[PanelRow]:
        """The rows shown, newest first."""
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole + 1) for i in range(self.list.count())]
