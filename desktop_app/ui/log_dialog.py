"""Attendance log: a date range with person, group and station filters; the events, the daily summary and a small
painted chart of people present per day (PySide6-Essentials has no QtCharts); CSV export through the core's
exporter (UTF-8 with BOM, ISO times, formula-safe cells) to a file picked in a dialog; the Excel workbook of the range
and the monthly PDF of the month picked beside its button (the To date's month until one is picked; ui/report_pdf.py),
both written on the task thread. Nothing to report is said as information, not as a failure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from PySide6.QtCore import QDate, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.attendance.export import events_csv, summary_csv
from desktop_app.attendance.grid import AttendanceGrid, check_station, parse_month
from desktop_app.attendance.queries import list_people
from desktop_app.attendance.reports import DaySummary, EventRow, events_in_range, summarize
from desktop_app.attendance.rules import day_of, resolve_zone
from desktop_app.storage import StoreError
from desktop_app.ui.qtcompat import emit

DEFAULT_DAYS = 7
KIND_TEXT = {"check-in": "in", "check-out": "out", "seen": "seen"}


def present_per_day(rows: list[DaySummary], first: date, last: date) -> list[tuple[date, int]]:
    """People present on each day of the range (0 for days without anyone), for the chart."""
    n = Counter(d.day for d in rows)
    days = (last - first).days + 1
    return [(first + timedelta(days=i), n.get(first + timedelta(days=i), 0)) for i in range(max(days, 0))]


class DayChart(QWidget):
    """Bars of people present per day; the value above each bar, the date below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data: list[tuple[date, int]] = []
        self.setMinimumHeight(160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(600, 220)

    def set_data(self, data: list[tuple[date, int]]) -> None:
        self.data = list(data)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        fm = p.fontMetrics()
        if not self.data:
            p.setPen(pal.text().color())
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No days in the range")
            p.end()
            return
        top, bottom, left, right = fm.height() + 8, fm.height() * 2 + 10, 10, 10
        area = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        peak = max(1, max(v for _, v in self.data))
        n = len(self.data)
        slot = area.width() / n
        bar = max(2.0, slot * 0.7)
        p.setPen(QPen(pal.mid().color(), 1))
        p.drawLine(area.bottomLeft(), area.bottomRight())
        every = max(1, int(n / max(1, area.width() / (fm.horizontalAdvance("00-00") + 8))) + 1)
        for i, (d, v) in enumerate(self.data):
            h = area.height() * v / peak
            x = area.left() + i * slot + (slot - bar) / 2
            r = QRectF(x, area.bottom() - h, bar, h)
            p.fillRect(r, QColor(52, 152, 219) if d.weekday() < 5 else QColor(149, 165, 166))
            p.setPen(pal.text().color())
            if v:
                p.drawText(QRectF(x - 10, r.top() - fm.height() - 2, bar + 20, fm.height()),
                           Qt.AlignmentFlag.AlignCenter, str(v))
            if i % every == 0:
                p.drawText(QRectF(area.left() + i * slot - 20, area.bottom() + 4, slot + 40, fm.height()),
                           Qt.AlignmentFlag.AlignCenter, d.strftime("%m-%d"))
        p.drawText(QRectF(0, self.height() - fm.height() - 2, self.width(), fm.height()),
                   Qt.AlignmentFlag.AlignCenter, "people present per day")
        p.end()


def _qdate(d: date) -> QDate:
    return QDate(d.year, d.month, d.day)


def _pydate(q: QDate) -> date:
    return date(q.year(), q.month(), q.day())


class LogDialog(QDialog):
    exported = Signal(str)  # path

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Attendance log")
        self.resize(1060, 640)
        a = controller.settings.attendance
        self.tz, self.tz_name = resolve_zone(a.timezone)
        from datetime import UTC, datetime

        today = day_of(datetime.now(UTC), self.tz, a.day_boundary_hour)
        self.first = QDateEdit(_qdate(today - timedelta(days=DEFAULT_DAYS - 1)))
        self.last = QDateEdit(_qdate(today))
        for w in (self.first, self.last):
            w.setCalendarPopup(True)
            w.setDisplayFormat("yyyy-MM-dd")
        self.person = QComboBox()
        self.group = QComboBox()
        self.station = QComboBox()
        self.refresh_btn = QPushButton("Refresh")
        filters = QHBoxLayout()
        for label, w in (("From", self.first), ("to", self.last), ("Person", self.person), ("Group", self.group),
                         ("Station", self.station)):
            filters.addWidget(QLabel(label))
            filters.addWidget(w)
        filters.addWidget(self.refresh_btn)
        filters.addStretch(1)

        self.events = QTableWidget(0, 7)
        self.events.setHorizontalHeaderLabels(["Time", "Name", "External id", "Group", "Kind", "Similarity",
                                               "Station"])
        self.summary = QTableWidget(0, 7)
        self.summary.setHorizontalHeaderLabels(["Day", "Name", "Group", "First in", "Last out", "Present",
                                                "Events"])
        for t in (self.events, self.summary):
            t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            t.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
            t.verticalHeader().setVisible(False)
            t.horizontalHeader().setStretchLastSection(True)
            t.setAlternatingRowColors(True)
        self.chart = DayChart()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.events, "Events")
        self.tabs.addTab(self.summary, "Daily summary")
        self.tabs.addTab(self.chart, "Chart")
        self.status = QLabel()
        self.export_events_btn = QPushButton("Export events CSV…")
        self.export_summary_btn = QPushButton("Export summary CSV…")
        self.export_xlsx_btn = QPushButton("Excel…")
        self.export_xlsx_btn.setToolTip("Events, daily summary and absences of the range, one sheet each")
        self.export_pdf_btn = QPushButton("Monthly PDF…")
        self.export_pdf_btn.setToolTip("People x days of the month on its left, for the chosen group (every group: "
                                       "a section each) and station, with present / late / absent marks and totals")
        self.month = QDateEdit(_qdate(today.replace(day=1)))  # the monthly PDF's month: the To date's, or picked
        self.month.setDisplayFormat("MMMM yyyy")
        self.month.setCalendarPopup(True)
        self.month.setToolTip("The month of the monthly PDF (follows the To date; pick another here)")
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.export_events_btn)
        bottom.addWidget(self.export_summary_btn)
        bottom.addWidget(self.export_xlsx_btn)
        bottom.addWidget(self.month)
        bottom.addWidget(self.export_pdf_btn)
        bottom.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addLayout(filters)
        lay.addWidget(self.tabs, 1)
        lay.addLayout(bottom)

        self.rows: list[EventRow] = []
        self.days: list[DaySummary] = []
        self._fill_filters()
        for w in (self.person, self.group, self.station):
            w.currentIndexChanged.connect(self.refresh)
        self.first.dateChanged.connect(self.refresh)
        self.last.dateChanged.connect(self.refresh)
        self.last.dateChanged.connect(lambda q: self.month.setDate(QDate(q.year(), q.month(), 1)))
        self.refresh_btn.clicked.connect(self.refresh)
        self.export_events_btn.clicked.connect(lambda: self.ask_export("events"))
        self.export_summary_btn.clicked.connect(lambda: self.ask_export("summary"))
        self.export_xlsx_btn.clicked.connect(self.ask_export_xlsx)
        self.export_pdf_btn.clicked.connect(self.ask_export_pdf)
        self.refresh()

    def _fill_filters(self) -> None:
        self.person.addItem("Everyone", None)
        self.group.addItem("All groups", None)
        self.station.addItem("All stations", None)
        try:
            for p in self.controller.store().read(list_people):
                self.person.addItem(p.name + (f" ({p.external_id})" if p.external_id else ""), p.id)
        except StoreError:
            pass
        for g in self.controller.groups():
            self.group.addItem(g, g)
        for x in self.controller.stations():
            self.station.addItem(x, x)

    def range(self) -> tuple[date, date]:
        return _pydate(self.first.date()), _pydate(self.last.date())

    def set_range(self, first: date, last: date) -> None:
        self.first.blockSignals(True)
        self.first.setDate(_qdate(first))
        self.first.blockSignals(False)
        self.last.setDate(_qdate(last))

    @Slot()
    def refresh(self) -> None:
        first, last = self.range()
        reversed_range = last < first
        self.export_events_btn.setEnabled(not reversed_range)
        self.export_summary_btn.setEnabled(not reversed_range)
        self.export_xlsx_btn.setEnabled(not reversed_range)
        if reversed_range:  # nothing is shown that the range does not select, and nothing can be exported
            self.rows, self.days = [], []
            self._fill_events()
            self._fill_summary()
            self.chart.set_data([])
            self.status.setText(f"The range is reversed: 'to' ({last}) is before 'from' ({first}). Pick an end "
                                "date on or after the start.")
            return
        a = self.controller.settings.attendance
        try:
            self.rows = self.controller.store().read(
                events_in_range, first, last, self.tz, a.day_boundary_hour, person_id=self.person.currentData(),
                group=self.group.currentData(), station=self.station.currentData())
        except StoreError as exc:
            self.rows = []
            self.status.setText(str(exc))
        self.days = summarize(self.rows)
        self._fill_events()
        self._fill_summary()
        self.chart.set_data(present_per_day(self.days, first, last))
        people = len({r.person_ref for r in self.rows})
        self.status.setText(f"{len(self.rows)} event(s), {people} person(s), {len(self.days)} person-day(s) "
                            f"({self.tz_name})")

    def _fill_events(self) -> None:
        t = self.events
        t.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            vals = [r.local_ts.strftime("%Y-%m-%d %H:%M:%S"), r.name or r.person_ref, r.external_id or "",
                    r.group or "", KIND_TEXT.get(r.kind, r.kind), f"{r.similarity:.3f}", r.station]
            for j, v in enumerate(vals):
                t.setItem(i, j, QTableWidgetItem(v))
        t.resizeColumnsToContents()

    def _fill_summary(self) -> None:
        t = self.summary
        t.setRowCount(len(self.days))
        for i, d in enumerate(self.days):
            mins = int(d.present.total_seconds() // 60)
            vals = [d.day.isoformat(), d.name or d.person_ref, d.group or "", d.first_in.strftime("%H:%M:%S"),
                    d.last_out.strftime("%H:%M:%S") if d.last_out else "", f"{mins // 60}:{mins % 60:02d}",
                    str(d.events)]
            for j, v in enumerate(vals):
                t.setItem(i, j, QTableWidgetItem(v))
        t.resizeColumnsToContents()

    # -- export -------------------------------------------------------------------------------------------------------
    def ask_export(self, what: str) -> None:
        first, last = self.range()
        default = f"attendance-{what}-{first}_{last}.csv"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {what} as CSV", default, "CSV files (*.csv)")
        if path:
            self.export(what, path)

    def export(self, what: str, path: str | Path) -> None:
        """Write the rows on screen with the core's exporter, on the task thread."""
        rows, days = list(self.rows), list(self.days)
        path = str(path)
        if not path.lower().endswith(".csv"):
            path += ".csv"

        def job() -> int:
            return events_csv(rows, path) if what == "events" else summary_csv(days, path)

        def done(n: int) -> None:
            self.status.setText(f"Exported {n} row(s) to {path}")
            emit(self.exported, path)

        self.controller.tasks.submit(job, done, lambda m: self.status.setText(f"Export failed: {m}"))

    # -- Excel and monthly PDF -----------------------------------------------------------------------------------------
    def _grid_job(self, first: date, last: date, month: bool) -> Callable[[], AttendanceGrid]:
        """A job building the report's grid under the dialog's filters, read on the GUI thread now."""
        from datetime import UTC, datetime

        from desktop_app.attendance.grid import build_grid

        a, r = self.controller.settings.attendance, self.controller.settings.reports
        late = r.late_time()
        person = None if month else self.person.currentData()
        group, station = self.group.currentData(), self.station.currentData()
        tz, tz_name, store = self.tz, self.tz_name, self.controller.store

        def job() -> AttendanceGrid:
            today = day_of(datetime.now(UTC), tz, a.day_boundary_hour)
            store().read(check_station, station)  # a station the store never saw: refused, not all absent
            return store().read(build_grid, first, last, tz, tz_name, late, today, a.day_boundary_hour, group=group,
                                station=station, person_id=person)

        return job

    def ask_export_xlsx(self) -> None:
        first, last = self.range()
        default = f"attendance-{first}_{last}.xlsx"
        path, _ = QFileDialog.getSaveFileName(self, "Export the range as an Excel workbook", default,
                                              "Excel workbooks (*.xlsx)")
        if path:
            self.export_xlsx(path)

    def export_xlsx(self, path: str | Path) -> None:
        """Events, daily summary and absences of the range and filters on screen, written on the task thread."""
        from desktop_app.attendance.xlsx import write_grid_xlsx

        first, last = self.range()
        path = str(path) if str(path).lower().endswith(".xlsx") else f"{path}.xlsx"
        build = self._grid_job(first, last, month=False)

        def job() -> dict[str, int] | str:
            grid = build()
            if not grid.events:
                return f"No attendance recorded from {first} to {last} under these filters: nothing written."
            return write_grid_xlsx(path, grid)

        def done(counts: dict[str, int] | str) -> None:
            if isinstance(counts, str):  # nothing to report: information, not a failure
                self.status.setText(counts)
                return
            self.status.setText(f"Exported {counts['Events']} event(s), {counts['Daily summary']} person-day(s) and "
                                f"{counts['Absent']} absence(s) to {path}")
            emit(self.exported, path)

        self.controller.tasks.submit(job, done, lambda m: self.status.setText(f"Not written: {m}"))

    def pdf_month(self) -> tuple[date, date]:
        """The monthly PDF's period: the month picked beside its button (the To date's month by default)."""
        return parse_month(f"{_pydate(self.month.date()):%Y-%m}")

    def ask_export_pdf(self) -> None:
        first, _ = self.pdf_month()
        group = self.group.currentData()
        default = f"attendance-{first:%Y-%m}-{_file_part(group) if group else 'all-groups'}.pdf"
        path, _ = QFileDialog.getSaveFileName(self, f"Monthly PDF of {first:%B %Y}", default, "PDF files (*.pdf)")
        if path:
            self.export_pdf(path)

    def export_pdf(self, path: str | Path) -> None:
        """The monthly report of the chosen month for the chosen group and station, on the task thread
        (QPdfWriter paints off the GUI thread)."""
        from desktop_app.ui.report_pdf import write_monthly_pdf

        first, last = self.pdf_month()
        path = str(path) if str(path).lower().endswith(".pdf") else f"{path}.pdf"
        build = self._grid_job(first, last, month=True)

        def job() -> int | str:
            grid = build()
            if not grid.events and not grid.absences():
                return (f"Nothing to report for {first:%B %Y}: no attendance recorded and nobody enrolled to be "
                        "absent then; nothing written.")
            return write_monthly_pdf(path, grid)

        def done(pages: int | str) -> None:
            if isinstance(pages, str):  # nothing to report: information, not a failure
                self.status.setText(pages)
                return
            self.status.setText(f"Wrote the monthly report of {first:%B %Y} ({pages} page(s)) to {path}")
            emit(self.exported, path)

        self.controller.tasks.submit(job, done, lambda m: self.status.setText(f"Not written: {m}"))


def _file_part(text: str) -> str:
    """``text`` as part of a file name: letters, digits, dot, dash; anything else becomes a dash."""
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text).strip("-.") or "group"
