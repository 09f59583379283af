"""`fdface report xlsx` and `fdface report pdf`: the Excel workbook (events, daily summary, absences) and the monthly
PDF per group, from the same core the log dialog uses (attendance/grid.py, attendance/xlsx.py, ui/report_pdf.py).

The PDF is drawn by Qt: the module is imported only by `report pdf`, which starts an offscreen Qt application (no
display needed). Neither command writes a file when there is nothing to report, nor leaves a partial one.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from desktop_app.cli import CliError, station_arg
from desktop_app.cli.gallery_cmds import (
    _checked_grid,
    _common,
    _engine,
    _parse_day,
    _settings,
    _store_call,
    unknown_group,
)


def _out_path(text: str, suffix: str) -> Path:
    """The output file: a missing suffix is added; a folder or a missing parent folder is refused up front."""
    out = Path(text).expanduser()
    if out.is_dir():
        raise CliError(f"{out} is a folder: give a file name such as {out / ('attendance' + suffix)}")
    if out.suffix.lower() != suffix:
        out = out.with_name(out.name + suffix)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"cannot write {out}: the folder {parent} does not exist; create it or pick another place")
    return out


def _grid(args: argparse.Namespace, month: str | None) -> tuple[Any, Any]:
    """(grid, settings) for the range or the month, with the group checked against the store's groups."""
    from sqlalchemy.orm import Session

    from desktop_app import storage as st
    from desktop_app.attendance import grid as gr
    from desktop_app.attendance.reports import groups_named
    from desktop_app.attendance.rules import day_of, resolve_zone

    s = _settings(args)
    a = s.attendance
    tz, _ = resolve_zone(a.timezone)
    today = day_of(datetime.now(UTC), tz, a.day_boundary_hour)
    first, last = today, today
    if month is not None:
        try:
            first, last = gr.parse_month(month)
        except ValueError as exc:
            raise CliError(f"--month: {exc}") from None
    else:
        first = _parse_day(args.date_from, today, default=today.replace(day=1))
        last = _parse_day(args.date_to, today, default=today if first <= today else first)
        if last < first:
            raise CliError(f"--to {last} is before --from {first}")
    engine = _engine(s, must_exist=True, read_only=True)
    try:
        with st.store_errors(), Session(st.reader(engine)) as sess:
            group = args.group
            if group is not None:  # any case ("7b" is "7B"); the report shows the group as it is stored
                named = groups_named(sess, group)
                if not named:
                    raise CliError(unknown_group(sess, group))
                group = named[0] if len(named) == 1 else group
            pid = _store_call(st.resolve_person, sess, args.person).id if getattr(args, "person", None) else None
            grid = _checked_grid(sess, s, first, last, today, group=group, station=args.station, person_id=pid)
    except st.StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()
    return grid, s


def _what(grid: Any) -> str:
    """The period and filters in a few words: "November 2026, group 3B" or "2026-12-01 to 2026-12-04"."""
    whole_month = grid.first.day == 1 and (grid.last + timedelta(days=1)).day == 1 and \
        (grid.first.year, grid.first.month) == (grid.last.year, grid.last.month)
    parts = [f"{grid.first:%B %Y}" if whole_month else f"{grid.first} to {grid.last}"]
    if grid.group:
        parts.append(f"group {grid.group}")
    if grid.station:
        parts.append(f"station {grid.station}")
    return ", ".join(parts)


def cmd_report_xlsx(args: argparse.Namespace) -> int:
    from desktop_app.attendance.xlsx import XlsxError, write_grid_xlsx

    out = _out_path(args.output, ".xlsx")
    grid, _ = _grid(args, None)
    if not grid.events:
        raise CliError(f"no attendance recorded for {_what(grid)}: nothing written")
    try:
        counts = write_grid_xlsx(out, grid)
    except XlsxError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {out}: {_what(grid)}, {counts['Events']} event(s), {counts['Daily summary']} person-day(s), "
          f"{counts['Absent']} absence(s)", file=sys.stderr)
    return 0


def cmd_report_pdf(args: argparse.Namespace) -> int:
    from desktop_app.attendance.grid import by_group

    out = _out_path(args.output, ".pdf")
    grid, _ = _grid(args, args.month)
    if not grid.events and not grid.absences():
        who = f"group {grid.group}" if grid.group else "anyone"
        raise CliError(f"nothing to report for {who} in {_what(grid)}: no attendance recorded and nobody enrolled "
                       "to be absent then; nothing written")
    from desktop_app.ui.report_pdf import PdfReportError, ensure_gui_app, write_monthly_pdf

    ensure_gui_app()
    try:
        pages = write_monthly_pdf(out, grid)
    except PdfReportError as exc:
        raise CliError(str(exc)) from None
    sections = "" if grid.group else f" in {len(by_group(grid))} group section(s)"
    print(f"wrote {out}: {_what(grid)}, {len(grid.rows)} people{sections} on {pages} page(s)", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="attendance reports as an Excel workbook or a monthly PDF per group")
    r.set_defaults(func=lambda _a, p=r: (p.print_help(), 2)[1])
    rs = r.add_subparsers(dest="report_kind", metavar="KIND")
    x = rs.add_parser("xlsx", help="Excel workbook: events, daily summary and absences of a date range")
    x.add_argument("output", metavar="OUT.xlsx")
    x.add_argument("--from", dest="date_from", metavar="DATE",
                   help="first day (YYYY-MM-DD, today, yesterday; default: the 1st of this month)")
    x.add_argument("--to", dest="date_to", metavar="DATE", help="last day (default: today)")
    x.add_argument("--group", help="only this group")
    x.add_argument("--person", help="only this person (#number, id or exact name)")
    x.add_argument("--station", type=station_arg, help="only events of this station")
    _common(x)
    x.set_defaults(func=cmd_report_xlsx)
    p = rs.add_parser("pdf", help="monthly PDF: people x days with present / late / absent marks and totals")
    p.add_argument("output", metavar="OUT.pdf")
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month, e.g. 2026-12")
    p.add_argument("--group", help="only this group (default: every group, each in its own section)")
    p.add_argument("--station", type=station_arg, help="only events of this station")
    _common(p)
    p.set_defaults(func=cmd_report_pdf)
