"""The monthly attendance report as a PDF: people x days with present / late / absent marks, totals per person and
per day, group, period, station and time zone in every page's header; landscape A4, as many pages as the people
need. A report of everyone has one section per group (people without a group last, "(no group)"), each starting on
a new page with its own header and totals. Drawn with Qt's own PDF writer (QPdfWriter + QPainter), so no PDF
library is added to the app.

Painting on a QPdfWriter is allowed off the GUI thread (the log dialog writes through its task queue); a Qt
application object must exist: :func:`ensure_gui_app` makes an offscreen one for the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from desktop_app.attendance.grid import ABSENT, LATE, PRESENT, AttendanceGrid, by_group, period_text

RESOLUTION = 300  # dots per inch of the page's coordinate system (text and lines are vectors at any zoom)
MARGIN_MM = 10.0
NAME_MM = 50.0
TOTAL_MM = 11.0
ROW_MM = 5.6
HEAD_MM = 22.0  # title, period / station line, legend
DAYHEAD_MM = 9.0
FOOT_MM = 6.0
FILL = {PRESENT: QColor(212, 239, 223), LATE: QColor(253, 235, 208), ABSENT: QColor(250, 219, 216)}
WEEKEND = QColor(236, 236, 236)
GRID_PEN = QColor(150, 150, 150)


class PdfReportError(OSError):
    """The PDF could not be written (the message names the file)."""


def ensure_gui_app() -> object:
    """The running Qt application, or a new offscreen QGuiApplication for a caller without one (the CLI, the
    self-test). qtenv first: opencv-python's Qt 5 plugin path must not be the one Qt 6 loads."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance()
    if app is not None:
        return app
    from desktop_app.ui.qtenv import prepare_qt_environment

    prepare_qt_environment()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return QGuiApplication(["fdface", "-platform", "offscreen"])


@dataclass(frozen=True)
class _Layout:
    px_per_mm: float
    width: float
    height: float

    def mm(self, v: float) -> float:
        return v * self.px_per_mm


def pages_for(n_people: int, rows_per_page: int) -> list[tuple[int, int, bool]]:
    """(first, end, with_totals) row slices per page; the three day-total rows go under the last people, on a page
    of their own when the last page has no room for them."""
    rows_per_page = max(rows_per_page, 4)
    out: list[tuple[int, int, bool]] = []
    i = 0
    while True:
        end = min(i + rows_per_page, n_people)
        if end == n_people and end - i + 3 <= rows_per_page:
            out.append((i, end, True))
            return out
        out.append((i, end, False))
        if end == n_people:
            out.append((end, end, True))
            return out
        i = end


def write_monthly_pdf(path: str | Path, grid: AttendanceGrid, generated: datetime | None = None) -> int:
    """Draw ``grid`` into ``path`` (a ``.part`` file renamed into place); returns the page count. A grid of every
    group is drawn as one section per group. ``generated`` defaults to now on the clock of the report's zone."""
    p = Path(path)
    tmp = p.with_name(p.name + ".part")
    generated = generated or datetime.now(grid.tz or UTC)
    try:  # before Qt does: its PDF writer only prints "QPainter::begin(): Returned false" to stderr
        with open(tmp, "wb"):
            pass
    except OSError as exc:
        raise PdfReportError(f"cannot write {p}: {exc.strerror or exc}; choose a folder you can write to") from None
    writer = QPdfWriter(str(tmp))
    writer.setResolution(RESOLUTION)
    writer.setTitle(f"Monthly attendance: {grid.group or 'all groups'}, {period_text(grid.first, grid.last)}")
    writer.setCreator("FDFace Attendance")
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Landscape,
                                     QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM),
                                     QPageLayout.Unit.Millimeter))
    painter = QPainter()
    if not painter.begin(writer):
        tmp.unlink(missing_ok=True)
        raise PdfReportError(f"cannot write {p}: the file cannot be created (check the folder exists and is "
                             "writable)")
    try:
        rect = writer.pageLayout().paintRectPixels(RESOLUTION)
        lay = _Layout(RESOLUTION / 25.4, float(rect.width()), float(rect.height()))
        free = lay.height - lay.mm(HEAD_MM + DAYHEAD_MM + FOOT_MM)
        per_page = int(free // lay.mm(ROW_MM))
        plan = [(label, section, a, b, totals) for label, section in by_group(grid)
                for a, b, totals in pages_for(len(section.rows), per_page)]
        for n, (label, section, a, b, totals) in enumerate(plan):
            if n:
                writer.newPage()
            _page(painter, lay, section, label, a, b, totals, n + 1, len(plan), generated)
    finally:
        painter.end()
    try:
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise PdfReportError(f"cannot write {p}: Qt's PDF writer produced no file")
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, PdfReportError):
            raise
        raise PdfReportError(f"cannot write {p}: {exc.strerror or exc}") from None
    return len(plan)


def _font(size: float, bold: bool = False) -> QFont:
    f = QFont("DejaVu Sans")
    f.setStyleHint(QFont.StyleHint.SansSerif)
    f.setPointSizeF(size)
    f.setBold(bold)
    return f


def _page(p: QPainter, lay: _Layout, grid: AttendanceGrid, section: str, a: int, b: int, totals: bool, page: int,
          pages: int, generated: datetime) -> None:
    mm = lay.mm
    black = QColor(0, 0, 0)
    # header: what, who, when, where
    p.setPen(black)
    p.setFont(_font(14, bold=True))
    title = f"Monthly attendance: {section}"
    p.drawText(QRectF(0, 0, lay.width, mm(7)), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
    p.setFont(_font(9))
    p.drawText(QRectF(0, 0, lay.width, mm(7)), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
               f"Page {page} of {pages}")
    p.setFont(_font(10))
    line = (f"Period: {period_text(grid.first, grid.last)}    Station: {grid.station or 'all stations'}    "
            f"Time zone: {grid.tz_name}")
    p.drawText(QRectF(0, mm(8), lay.width, mm(6)), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, line)
    p.setFont(_font(7.5))
    legend = (f"P present    L late (first check-in after {grid.late_after:%H:%M})    A absent (a working day that has "
              "ended with no record)    grey: weekend    blank: no record, today until it ends, days to come, or "
              "before enrolment")
    p.drawText(QRectF(0, mm(14.5), lay.width, mm(5)), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
               legend)

    n_days = len(grid.days)
    x_days = mm(NAME_MM)
    day_w = (lay.width - mm(NAME_MM) - 3 * mm(TOTAL_MM)) / max(n_days, 1)
    x_tot = x_days + n_days * day_w
    top = mm(HEAD_MM)
    row_h = mm(ROW_MM)
    body = top + mm(DAYHEAD_MM)
    n_rows = (b - a) + (3 if totals else 0)
    bottom = body + n_rows * row_h

    # weekend columns shaded under the marks
    for i, d in enumerate(grid.days):
        if d.weekday() >= 5:
            p.fillRect(QRectF(x_days + i * day_w, top, day_w, bottom - top), WEEKEND)

    # column heads: day of month over the weekday's initials
    p.setFont(_font(7.5, bold=True))
    center = Qt.AlignmentFlag.AlignCenter
    p.drawText(QRectF(mm(1), top, mm(NAME_MM) - mm(1), mm(DAYHEAD_MM)),
               Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "Name")
    for i, d in enumerate(grid.days):
        x = x_days + i * day_w
        p.setFont(_font(7.5, bold=True))
        p.drawText(QRectF(x, top, day_w, mm(DAYHEAD_MM) / 2 + mm(0.5)), center, str(d.day))
        p.setFont(_font(6))
        p.drawText(QRectF(x, top + mm(DAYHEAD_MM) / 2, day_w, mm(DAYHEAD_MM) / 2), center, f"{d:%a}"[:2])
    p.setFont(_font(7, bold=True))
    for k, label in enumerate(("Pres.", "Late", "Abs.")):
        p.drawText(QRectF(x_tot + k * mm(TOTAL_MM), top, mm(TOTAL_MM), mm(DAYHEAD_MM)), center, label)

    # one row per person: name (id), marks, totals
    mark_font, name_font, bold_font = _font(7.5, bold=True), _font(7.5), _font(7.5, bold=True)
    fm = QFontMetricsF(name_font, p.device())
    y = body
    for r in grid.rows[a:b]:
        label = r.name + (f" ({r.external_id})" if r.external_id else "")
        p.setFont(name_font)
        p.drawText(QRectF(mm(1), y, mm(NAME_MM) - mm(2), row_h), Qt.AlignmentFlag.AlignLeft |
                   Qt.AlignmentFlag.AlignVCenter, fm.elidedText(label, Qt.TextElideMode.ElideRight,
                                                                mm(NAME_MM) - mm(2)))
        p.setFont(mark_font)
        for i, m in enumerate(r.marks):
            if m:
                cell = QRectF(x_days + i * day_w, y, day_w, row_h)
                p.fillRect(cell.adjusted(1, 1, -1, -1), FILL[m])
                p.drawText(cell, center, m)
        p.setFont(bold_font)
        for k, v in enumerate((r.present, r.late, r.absent)):
            p.drawText(QRectF(x_tot + k * mm(TOTAL_MM), y, mm(TOTAL_MM), row_h), center, str(v))
        y += row_h
    if totals:
        day_totals = grid.day_totals()
        sums = (sum(r.present for r in grid.rows), sum(r.late for r in grid.rows), sum(r.absent for r in grid.rows))
        p.setPen(QPen(black, mm(0.3)))
        p.drawLine(0, int(y), int(x_tot + 3 * mm(TOTAL_MM)), int(y))
        for k, label in enumerate(("Present (day)", "Late (day)", "Absent (day)")):
            p.setFont(bold_font)
            p.drawText(QRectF(mm(1), y, mm(NAME_MM) - mm(2), row_h),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
            p.setFont(_font(7))
            for i, t in enumerate(day_totals):
                if t[k]:
                    p.drawText(QRectF(x_days + i * day_w, y, day_w, row_h), center, str(t[k]))
            p.setFont(bold_font)
            p.drawText(QRectF(x_tot + k * mm(TOTAL_MM), y, mm(TOTAL_MM), row_h), center, str(sums[k]))
            y += row_h

    # the grid's lines over everything
    p.setPen(QPen(GRID_PEN, max(1.0, mm(0.12))))
    yy = top + mm(DAYHEAD_MM)
    p.drawLine(0, int(top), int(x_tot + 3 * mm(TOTAL_MM)), int(top))
    for _ in range(n_rows + 1):
        p.drawLine(0, int(yy), int(x_tot + 3 * mm(TOTAL_MM)), int(yy))
        yy += row_h
    for i in range(n_days + 1):
        x = x_days + i * day_w
        p.drawLine(int(x), int(top), int(x), int(bottom))
    for k in range(4):
        x = x_tot + k * mm(TOTAL_MM)
        p.drawLine(int(x), int(top), int(x), int(bottom))
    p.drawLine(0, int(top), 0, int(bottom))
    if not grid.rows:
        p.setPen(black)
        p.setFont(_font(10))
        p.drawText(QRectF(0, body, lay.width, mm(10)), center, "Nobody to report for this group and month.")
    p.setPen(black)
    p.setFont(_font(7))
    p.drawText(QRectF(0, lay.height - mm(FOOT_MM) + mm(1), lay.width, mm(FOOT_MM) - mm(1)),
               Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
               f"{len(grid.rows)} {'person' if len(grid.rows) == 1 else 'people'}    FDFace Attendance    "
               f"generated {generated:%Y-%m-%d %H:%M} {grid.tz_name}")
