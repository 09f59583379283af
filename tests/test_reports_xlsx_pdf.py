"""Excel and monthly PDF reports on a real SQLite store: the workbook is read back with openpyxl (an independent
reader: the app writes with XlsxWriter), the PDF is rasterised and its text extracted (pdftoppm / pdftotext when
installed, else pypdfium2), through the core, the CLI and the log dialog."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance import grid as gr
from desktop_app.attendance.xlsx import SHEETS, write_grid_xlsx
from desktop_app.config import ConfigError, Settings

openpyxl = pytest.importorskip("openpyxl", reason="openpyxl (test extra) reads the workbooks back")

REPO = Path(__file__).resolve().parent.parent
ENTRY = "import sys; from desktop_app.cli import main; sys.exit(main())"
PARIS = ZoneInfo("Europe/Paris")
MONTH = "2026-11"  # November 2026: the 1st is a Sunday
TODAY = date(2026, 12, 4)
EVIL = '=HYPERLINK("http://x.invalid","click")'
NAMES = ["Alice Martin", "Bob Stone", EVIL]


def _utc(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=PARIS).astimezone(UTC)


def make_db(path: Path, extra_people: int = 0) -> str:
    """Class A: Alice (on time Mon 2, late Tue 3, in and out on Wed 4), Bob (only Mon 2, at another station), the
    formula-named person (Thu 5); Zoe in Class B (Mon 2). Everyone enrolled on 2026-10-01."""
    url = f"sqlite:///{path}"
    engine = st.open_engine(url)
    with Session(engine) as s, s.begin():
        alice = st.add_person(s, "Alice Martin", "A1", "Class A")
        bob = st.add_person(s, "Bob Stone", None, "Class A")
        evil = st.add_person(s, EVIL, "+1-2", "Class A")
        zoe = st.add_person(s, "Zoe Other", None, "Class B")
        extra = [st.add_person(s, f"Extra {i:03d}", None, "Class A") for i in range(extra_people)]
        for p in (alice, bob, evil, zoe, *extra):
            p.created_at = datetime(2026, 10, 1, tzinfo=UTC)
        st.add_event(s, alice, _utc("2026-11-02 08:30:00"), "Europe/Paris", "door", "check-in", 0.81)
        st.add_event(s, alice, _utc("2026-11-03 09:20:00"), "Europe/Paris", "door", "check-in", 0.77)
        st.add_event(s, alice, _utc("2026-11-04 08:00:00"), "Europe/Paris", "door", "check-in", 0.9)
        st.add_event(s, alice, _utc("2026-11-04 17:45:30"), "Europe/Paris", "door", "check-out", 0.88)
        st.add_event(s, bob, _utc("2026-11-02 08:55:00"), "Europe/Paris", "gate", "check-in", 0.7)
        st.add_event(s, evil, _utc("2026-11-05 08:10:00"), "Europe/Paris", "=cmd|' /C calc'!A0", "check-in", 0.6)
        st.add_event(s, zoe, _utc("2026-11-02 08:00:00"), "Europe/Paris", "door", "check-in", 0.95)
        for p in extra:
            st.add_event(s, p, _utc("2026-11-09 08:00:00"), "Europe/Paris", "door", "check-in", 0.8)
    engine.dispose()
    return url


def _grid(url: str, group: str | None = "Class A", station: str | None = None) -> gr.AttendanceGrid:
    first, last = gr.parse_month(MONTH)
    engine = st.open_engine(url)
    try:
        with Session(engine) as s:
            return gr.build_grid(s, first, last, PARIS, "Europe/Paris", time(9, 0), TODAY, 4, group=group,
                                 station=station)
    finally:
        engine.dispose()


@pytest.fixture()
def db(tmp_path: Path) -> str:
    return make_db(tmp_path / "att.db")


# ------------------------------------------------------------------------------------------------ the grid rule
def test_grid_marks_present_late_absent_by_the_rule(db) -> None:
    g = _grid(db)
    rows = {r.name: r for r in g.rows}
    assert sorted(rows) == sorted(NAMES)  # Class B's Zoe is not in Class A's grid
    a, b = rows["Alice Martin"], rows["Bob Stone"]
    day = {d: i for i, d in enumerate(g.days)}
    assert a.marks[day[date(2026, 11, 2)]] == gr.PRESENT  # 08:30 Paris
    assert a.marks[day[date(2026, 11, 3)]] == gr.LATE  # 09:20 Paris (08:20 UTC: the zone matters)
    assert a.marks[day[date(2026, 11, 4)]] == gr.PRESENT
    assert a.marks[day[date(2026, 11, 5)]] == gr.ABSENT
    assert a.marks[day[date(2026, 11, 1)]] == gr.NONE  # a Sunday
    assert b.marks[day[date(2026, 11, 3)]] == gr.ABSENT
    # November 2026 has 21 working days
    assert (a.present, a.late, a.absent) == (3, 1, 18)
    assert (b.present, b.late, b.absent) == (1, 0, 20)
    assert g.day_totals()[day[date(2026, 11, 2)]] == (2, 0, 1)


def test_grid_leaves_days_to_come_and_before_enrolment_blank(db) -> None:
    first, last = gr.parse_month("2026-12")
    engine = st.open_engine(db)
    with Session(engine) as s:
        g = gr.build_grid(s, first, last, PARIS, "Europe/Paris", time(9), date(2026, 12, 2), 4, group="Class A")
        p = st.resolve_person(s, "Bob Stone")
        p.created_at = datetime(2026, 11, 20, 12, tzinfo=UTC)
        s.commit()
        g2 = gr.build_grid(s, *gr.parse_month(MONTH), PARIS, "Europe/Paris", time(9), TODAY, 4, group="Class A")
    engine.dispose()
    bob = next(r for r in g.rows if r.name == "Bob Stone")
    assert bob.marks[:2] == (gr.ABSENT, gr.NONE) and set(bob.marks[2:]) == {gr.NONE}  # the 2nd is today
    bob2 = next(r for r in g2.rows if r.name == "Bob Stone")
    assert bob2.marks[18] == gr.NONE and bob2.marks[19] == gr.ABSENT  # 19th: before enrolment, 20th: absent


def test_today_is_not_absent_before_it_is_over(db) -> None:
    """Someone who arrives at 14:00 is not reported absent at noon: today is blank until it has ended."""
    engine = st.open_engine(db)
    try:
        with Session(engine) as s:
            g = gr.build_grid(s, date(2026, 11, 2), date(2026, 11, 6), PARIS, "Europe/Paris", time(9),
                              date(2026, 11, 5), 4, group="Class A")
    finally:
        engine.dispose()
    bob = next(r for r in g.rows if r.name == "Bob Stone")
    assert bob.marks == (gr.PRESENT, gr.ABSENT, gr.ABSENT, gr.NONE, gr.NONE)  # Thu 5th: today, Fri 6th: to come
    assert g.day_totals()[3] == (1, 0, 0)  # today: the one who came (the formula-named person), nobody absent


def test_an_unknown_station_is_refused_with_the_known_ones(db) -> None:
    engine = st.open_engine(db)
    try:
        with Session(engine) as s:
            gr.check_station(s, "door")
            gr.check_station(s, None)
            with pytest.raises(ValueError, match=r"no station named 'nowhere'; stations: =cmd.*, door, gate"):
                gr.check_station(s, "nowhere")
    finally:
        engine.dispose()


@pytest.mark.parametrize("bad", ["2026-13", "2026/11", "nov", "", "26-11"])
def test_parse_month_refuses_with_the_form(bad) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        gr.parse_month(bad)


def test_late_after_setting_is_typed_and_checked() -> None:
    assert Settings().reports.late_time() == time(9, 0)
    assert Settings.from_dict({"reports": {"late_after": "8:45"}}).reports.late_time() == time(8, 45)
    for bad in ("25:00", "9am", "09:5", ""):
        with pytest.raises(ConfigError, match=r"reports\.late_after.*HH:MM"):
            Settings.from_dict({"reports": {"late_after": bad}})


# ------------------------------------------------------------------------------------------------ Excel
def test_xlsx_types_values_frozen_header_and_no_formulas(db, tmp_path) -> None:
    g = _grid(db)
    out = tmp_path / "report.xlsx"
    counts = write_grid_xlsx(out, g)
    assert counts == {"Events": 6, "Daily summary": 5, "Absent": 18 + 20 + 20}
    assert not list(tmp_path.glob("*.part"))
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == list(SHEETS)
    ev = wb["Events"]
    assert ev.freeze_panes == "A2"
    head = [c.value for c in ev[1]]
    assert head[:4] == ["event_id", "time (Europe/Paris)", "time_utc", "day"]
    first = [c.value for c in ev[2]]
    assert first[1] == datetime(2026, 11, 2, 8, 30) and ev.cell(2, 2).is_date  # local wall-clock time
    assert first[2] == datetime(2026, 11, 2, 7, 30)  # the same moment in UTC
    assert ev.cell(2, 4).is_date and ev.cell(2, 4).value.date() == date(2026, 11, 2)
    assert isinstance(first[0], int) and first[6] == "Alice Martin" and first[11] == pytest.approx(0.81)
    # the formula-named person and the formula-like station stay their own text, in a quote-prefix cell format
    # (Excel shows them as text and never evaluates them); no apostrophe is added to the data
    evil = list(ev[7])
    assert evil[6].value == EVIL and evil[6].data_type == "s" and evil[6].quotePrefix
    assert evil[9].value == "=cmd|' /C calc'!A0" and evil[9].data_type == "s" and evil[9].quotePrefix
    assert evil[5].value == "+1-2" and evil[5].quotePrefix
    assert not ev.cell(2, 7).quotePrefix  # "Alice Martin": an ordinary cell
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
        # every column has a width of its own, the last ones too (openpyxl reads only a <col> range's first column)
        sized = set(ws.column_dimensions)  # the columns the file gives a width (before looking one up adds it)
        assert {chr(65 + j) for j in range(ws.max_column)} <= sized, (ws.title, sized)
        widths = [ws.column_dimensions[chr(65 + j)].width for j in range(ws.max_column)]
        assert all(w and w >= 8 for w in widths), (ws.title, widths)
    su = wb["Daily summary"]
    hdr = [c.value for c in su[1]]
    rows = [dict(zip(hdr, (c for c in r), strict=True)) for r in su.iter_rows(min_row=2)]
    wed = next(r for r in rows if r["name"].value == "Alice Martin" and r["day"].value.date() == date(2026, 11, 4))
    assert wed["first_in (Europe/Paris)"].value == datetime(2026, 11, 4, 8, 0)
    assert wed["last_out (Europe/Paris)"].value == datetime(2026, 11, 4, 17, 45, 30)
    present = wed["present"]
    assert present.value == timedelta(hours=9, minutes=45, seconds=30)  # openpyxl reads [h]:mm as a duration
    assert present.number_format == "[h]:mm"
    assert ev.column_dimensions["B"].width >= 19
    ab = wb["Absent"]
    assert [c.value for c in ab[1]] == ["day", "weekday", "person_id", "external_id", "name", "group"]
    first_abs = [c.value for c in ab[2]]
    assert first_abs[0] == datetime(2026, 11, 2) and first_abs[4] == EVIL  # nobody else absent on the 2nd
    assert su.column_dimensions["H"].width >= 19  # last_out, next to first_in of the same width


def test_xlsx_absent_sheet_says_so_when_nobody_was_absent(db, tmp_path) -> None:
    from desktop_app.attendance.xlsx import NO_ABSENCE

    engine = st.open_engine(db)
    try:
        with Session(engine) as s:  # Monday 2 November: everyone in Class A but one came, so only Class B's Zoe
            g = gr.build_grid(s, date(2026, 11, 2), date(2026, 11, 2), PARIS, "Europe/Paris", time(9), TODAY, 4,
                              group="Class B")
    finally:
        engine.dispose()
    assert g.events and not g.absences()
    out = tmp_path / "none-absent.xlsx"
    assert write_grid_xlsx(out, g)["Absent"] == 0
    ab = openpyxl.load_workbook(out)["Absent"]
    assert [c.value for c in ab[1]][0] == "day" and ab["A2"].value == NO_ABSENCE and ab.max_row == 2


def test_xlsx_unwritable_path_is_a_clear_error(db, tmp_path) -> None:
    from desktop_app.attendance.xlsx import XlsxError

    with pytest.raises(XlsxError, match=r"cannot write .*missing/r\.xlsx: No such file or directory$"):
        write_grid_xlsx(tmp_path / "missing" / "r.xlsx", _grid(db))


# ------------------------------------------------------------------------------------------------ PDF
def pdf_pages_text(path: Path, png_dir: Path) -> tuple[int, list[str], list[Path]]:
    """Page count, text per page and page-1.png etc., through poppler's tools when installed, else pypdfium2."""
    png_dir.mkdir(exist_ok=True)
    if shutil.which("pdftotext") and shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "100", "-png", str(path), str(png_dir / "page")], check=True)
        pngs = sorted(png_dir.glob("page*.png"))
        texts = []
        for i in range(1, len(pngs) + 1):
            r = subprocess.run(["pdftotext", "-layout", "-f", str(i), "-l", str(i), str(path), "-"],
                               capture_output=True, text=True, check=True)
            texts.append(r.stdout)
        return len(pngs), texts, pngs
    pdfium = pytest.importorskip("pypdfium2", reason="neither poppler-utils nor pypdfium2 (test extra)")
    import cv2

    doc = pdfium.PdfDocument(str(path))
    texts, pngs = [], []
    for i in range(len(doc)):
        page = doc[i]
        texts.append(page.get_textpage().get_text_range())
        img = page.render(scale=100 / 72).to_numpy()  # pdfium's byte order: BGR(x), as OpenCV's
        out = png_dir / f"page-{i + 1}.png"
        cv2.imwrite(str(out), img[..., :3])
        pngs.append(out)
    n = len(doc)
    doc.close()
    return n, texts, pngs


@pytest.fixture()
def qapp_offscreen(qapp):
    """pytest-qt's QApplication (a QGuiApplication made here first would leave no way to open the GUI test's
    windows later in the session); ensure_gui_app must then hand back that one."""
    from desktop_app.ui.report_pdf import ensure_gui_app

    assert ensure_gui_app() is qapp
    return qapp


def test_monthly_pdf_header_names_marks_and_totals(db, tmp_path, qapp_offscreen) -> None:
    import cv2

    from desktop_app.ui.report_pdf import write_monthly_pdf

    g = _grid(db, station=None)
    out = tmp_path / "month.pdf"
    pages = write_monthly_pdf(out, g)
    n, texts, pngs = pdf_pages_text(out, tmp_path / "png")
    assert pages == n == 1
    t = texts[0]
    for want in ("Monthly attendance: Class A", "November 2026", "2026-11-01 to 2026-11-30", "all stations",
                 "Europe/Paris", "Alice Martin (A1)", "Bob Stone", "late (first check-in after 09:00)",
                 "Page 1 of 1"):
        assert want in t, (want, t)
    assert "Zoe Other" not in t
    words = t.split()
    assert words.count("L") >= 2  # Alice's late Tuesday (and the legend)
    assert words.count("A") >= 18 + 20 + 20
    img = cv2.imread(str(pngs[0]))
    assert img is not None and img.shape[1] > img.shape[0]  # landscape
    assert 1100 <= img.shape[1] <= 1200 and 800 <= img.shape[0] <= 850  # A4 at 100 dpi
    assert (img < 128).mean() > 0.01  # something is drawn


def test_monthly_pdf_of_every_group_has_a_section_per_group(db, tmp_path, qapp_offscreen) -> None:
    from desktop_app.ui.report_pdf import write_monthly_pdf

    engine = st.open_engine(db)
    with Session(engine) as s, s.begin():
        nora = st.add_person(s, "Nora Nogroup", None, None)
        nora.created_at = datetime(2026, 10, 1, tzinfo=UTC)
    engine.dispose()
    out = tmp_path / "all.pdf"
    pages = write_monthly_pdf(out, _grid(db, group=None))
    n, texts, _ = pdf_pages_text(out, tmp_path / "png")
    assert pages == n == 3  # Class A, Class B, (no group): each on its own page with its own totals
    heads = [x.split("\n")[0] for x in texts]
    assert "Monthly attendance: Class A" in texts[0] and "Zoe Other" not in texts[0] and "Nora" not in texts[0]
    assert "Monthly attendance: Class B" in texts[1] and "Zoe Other" in texts[1] and "Alice" not in texts[1]
    assert "Monthly attendance: (no group)" in texts[2] and "Nora Nogroup" in texts[2], heads
    assert all("Present (day)" in x and f"Page {i + 1} of 3" in x for i, x in enumerate(texts))
    assert "3 people" in texts[0] and "1 person " in texts[1]  # totals of the section, not of everyone


def test_monthly_pdf_says_when_it_was_generated_on_the_report_zone_clock(db, tmp_path, qapp_offscreen) -> None:
    from desktop_app.ui.report_pdf import write_monthly_pdf

    first, last = gr.parse_month(MONTH)
    far = ZoneInfo("Pacific/Kiritimati")  # UTC+14: never the test machine's own clock
    engine = st.open_engine(db)
    try:
        with Session(engine) as s:
            g = gr.build_grid(s, first, last, far, "Pacific/Kiritimati", time(9), TODAY, 4, group="Class A")
    finally:
        engine.dispose()
    before = datetime.now(far)
    write_monthly_pdf(tmp_path / "far.pdf", g)
    after = datetime.now(far)
    _, texts, _ = pdf_pages_text(tmp_path / "far.pdf", tmp_path / "png")
    text = " ".join(texts[0].split())
    assert any(f"generated {t:%Y-%m-%d %H:%M} Pacific/Kiritimati" in text for t in (before, after)), text


def test_monthly_pdf_breaks_pages_for_many_people(tmp_path, qapp_offscreen) -> None:
    from desktop_app.ui.report_pdf import write_monthly_pdf

    url = make_db(tmp_path / "many.db", extra_people=60)
    g = _grid(url)
    out = tmp_path / "many.pdf"
    pages = write_monthly_pdf(out, g)
    n, texts, _ = pdf_pages_text(out, tmp_path / "png")
    assert n == pages >= 3
    assert all(f"Page {i + 1} of {n}" in texts[i] and "Class A" in texts[i] and "November 2026" in texts[i]
               for i in range(n))
    every = "\n".join(texts)
    for i in range(60):
        assert every.count(f"Extra {i:03d}") == 1, i
    assert "Present (day)" in texts[-1] and all("Present (day)" not in x for x in texts[:-1])


def test_monthly_pdf_unwritable_path(db, tmp_path, qapp_offscreen) -> None:
    from desktop_app.ui.report_pdf import PdfReportError, write_monthly_pdf

    with pytest.raises(PdfReportError, match="cannot write"):
        write_monthly_pdf(tmp_path / "nope" / "m.pdf", _grid(db))


# ------------------------------------------------------------------------------------------------ CLI
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("FDFACE_DB", None)
    env.pop("QT_QPA_PLATFORM", None)  # the command sets up its own offscreen Qt
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=180)


@pytest.fixture()
def cfg(tmp_path: Path) -> Path:
    c = tmp_path / "settings.toml"
    c.write_text('[attendance]\ntimezone = "Europe/Paris"\n\n[reports]\nlate_after = "09:00"\n')
    return c


def test_cli_report_xlsx_and_pdf(db, cfg, tmp_path) -> None:
    x = tmp_path / "out.xlsx"
    r = _cli("report", "xlsx", str(x), "--from", "2026-11-01", "--to", "2026-11-30", "--group", "Class A",
             "--db", db, "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "6 event(s)" in r.stderr and str(x) in r.stderr
    wb = openpyxl.load_workbook(x)
    assert wb.sheetnames == list(SHEETS) and wb["Events"].max_row == 7
    pdf = tmp_path / "out.pdf"
    r = _cli("report", "pdf", str(pdf), "--month", MONTH, "--group", "Class A", "--station", "door", "--db", db,
             "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    n, texts, _ = pdf_pages_text(pdf, tmp_path / "png")
    assert n == 1 and "Station: door" in texts[0] and "Class A" in texts[0]


@pytest.mark.parametrize("args, message", [
    (["pdf", "OUT.pdf", "--month", "2026-13"], "'2026-13' is not a month: use YYYY-MM"),
    (["pdf", "OUT.pdf", "--month", MONTH, "--group", "Class Z"], "no group named 'Class Z'; groups: Class A, Class B"),
    (["pdf", "OUT.pdf", "--month", "2026-05", "--group", "Class A"], "nothing to report"),
    (["xlsx", "OUT.xlsx", "--from", "2026-05-01", "--to", "2026-05-31"], "no attendance recorded"),
    (["xlsx", "nodir/OUT.xlsx", "--from", "2026-11-01", "--to", "2026-11-30"],
     "cannot write nodir/OUT.xlsx: the folder nodir does not exist"),
    (["pdf", "nodir/OUT.pdf", "--month", MONTH], "cannot write nodir/OUT.pdf: the folder nodir does not exist"),
    (["xlsx", ".", "--from", "2026-11-01"], "is a folder"),
    (["xlsx", "OUT.xlsx", "--from", "2026-11-30", "--to", "2026-11-01"], "before --from"),
    (["pdf", "OUT.pdf", "--month", "2026-12", "--station", "nowhere"],
     "no station named 'nowhere'; stations: =cmd|' /C calc'!A0, door, gate"),
    (["xlsx", "OUT.xlsx", "--from", "2026-11-01", "--station", "nowhere"], "no station named 'nowhere'"),
])
def test_cli_report_bad_input_is_one_clear_line(db, cfg, tmp_path, args, message) -> None:
    r = _cli("report", *args, "--db", db, "--config", str(cfg), cwd=tmp_path)
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not list(tmp_path.glob("OUT*")) and not list(tmp_path.glob("*.part"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux), a folder nobody can write in")
def test_cli_report_pdf_in_a_folder_that_cannot_be_written_says_so_without_qt_noise(db, cfg, tmp_path) -> None:
    r = _cli("report", "pdf", "/proc/e.pdf", "--month", MONTH, "--db", db, "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 2
    assert "cannot write /proc/e.pdf" in r.stderr and "QPainter" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


def test_cli_report_pdf_of_everyone_has_a_section_per_group(db, cfg, tmp_path) -> None:
    pdf = tmp_path / "all.pdf"
    r = _cli("report", "pdf", str(pdf), "--month", MONTH, "--db", db, "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "in 2 group section(s) on 2 page(s)" in r.stderr, r.stderr
    n, texts, _ = pdf_pages_text(pdf, tmp_path / "png")
    assert n == 2 and "Monthly attendance: Class A" in texts[0] and "Monthly attendance: Class B" in texts[1]


# ------------------------------------------------------------------------------------------------ GUI
def test_log_dialog_writes_excel_and_monthly_pdf_on_the_task_thread(db, tmp_path, qtbot, monkeypatch) -> None:
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QDate, QThread
    from PySide6.QtWidgets import QApplication, QFileDialog

    from desktop_app.ui import report_pdf
    from desktop_app.ui.controller import AppController
    from desktop_app.vision.pipeline import resolve_model

    s = Settings().with_changes("storage", database_url=db).with_changes("capture", source="")
    s = s.with_changes("attendance", timezone="Europe/Paris").with_changes("performance", threads=1)
    entry, _ = resolve_model(s)
    if entry is None:
        pytest.skip("no recognition model installed (models/)")
    ctl = AppController(s, tmp_path / "settings.toml", source="", embedder_entry=entry, pace=False,
                        camera_lister=lambda: [])
    qtbot.addWidget(ctl.window)
    with qtbot.waitSignal(ctl.storeReady, timeout=60_000):
        ctl.start()
    try:
        menu = next(a.menu() for a in ctl.window.menuBar().actions() if a.text() == "&Attendance")
        reports = next(a for a in menu.actions() if "Reports" in a.text())
        reports.trigger()  # Attendance > Reports opens the log dialog, where the reports are written
        log = ctl._dialogs["log"]
        # the monthly PDF's month: the To date's (a week ending on 4 December is December's), or the one picked
        log.set_range(date(2026, 11, 28), date(2026, 12, 4))
        assert log.pdf_month() == (date(2026, 12, 1), date(2026, 12, 31))
        log.month.setDate(QDate(2026, 10, 1))
        assert log.pdf_month() == (date(2026, 10, 1), date(2026, 10, 31))
        log.set_range(date(2026, 11, 1), date(2026, 11, 30))
        assert log.pdf_month() == (date(2026, 11, 1), date(2026, 11, 30))
        log.group.setCurrentIndex(log.group.findData("Class A"))
        assert log.events.rowCount() == 6
        xlsx = tmp_path / "gui.xlsx"
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(xlsx), ""))
        with qtbot.waitSignal(log.exported, timeout=60_000):
            log.export_xlsx_btn.click()
        wb = openpyxl.load_workbook(xlsx)
        assert wb["Events"].max_row == 7 and wb["Absent"].max_row == 1 + 58
        assert "6 event(s)" in log.status.text()

        threads: list[bool] = []
        real = report_pdf.write_monthly_pdf

        def spy(*a, **k):
            threads.append(QThread.currentThread() is QApplication.instance().thread())
            return real(*a, **k)

        monkeypatch.setattr(report_pdf, "write_monthly_pdf", spy)
        pdf = tmp_path / "gui.pdf"
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(pdf), ""))
        with qtbot.waitSignal(log.exported, timeout=60_000):
            log.export_pdf_btn.click()
        assert threads == [False]  # written off the GUI thread
        n, texts, _ = pdf_pages_text(pdf, tmp_path / "png")
        assert n == 1 and "Monthly attendance: Class A" in texts[0] and "November 2026" in texts[0]
        assert "Alice Martin (A1)" in texts[0] and "Zoe Other" not in texts[0]
        # a month with nothing to report says so and writes nothing
        log.set_range(date(2026, 5, 1), date(2026, 5, 31))
        gone = tmp_path / "none.pdf"
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(gone), ""))
        log.export_pdf_btn.click()
        qtbot.waitUntil(lambda: "nothing to report" in log.status.text().lower(), timeout=60_000)
        assert not gone.exists() and "failed" not in log.status.text().lower()  # information, not a failure
    finally:
        ctl.shutdown()


# ------------------------------------------------------------------------------------------------ self-test
def test_selftest_report_check_refuses_a_formula_or_an_unfrozen_header(tmp_path) -> None:
    """The bundle's report check reads the workbook's XML itself: it must notice what it is there to catch."""
    import xlsxwriter

    from desktop_app.selftest import SelfTestFailure, _check_xlsx

    counts = {"Events": 2, "Daily summary": 1, "Absent": 19}
    for case in ("formula", "unfrozen"):
        out = tmp_path / f"{case}.xlsx"
        wb = xlsxwriter.Workbook(str(out))
        for i, name in enumerate(SHEETS):
            ws = wb.add_worksheet(name)
            if case != "unfrozen":
                ws.freeze_panes(1, 0)
            if i == 0:
                ws.write_string(0, 0, "=Self Test", wb.add_format({"quote_prefix": True}))
                ws.write_datetime(1, 1, datetime(2026, 2, 2, 8, 30), wb.add_format({"num_format": "yyyy-mm-dd"}))
                if case == "formula":
                    ws.write_formula(2, 0, "=1+1")
        wb.close()
        with pytest.raises(SelfTestFailure, match="formula injection" if case == "formula" else "not frozen"):
            _check_xlsx(out, "=Self Test", counts)


def test_settings_dialog_takes_and_checks_the_late_time(qtbot) -> None:
    pytest.importorskip("pytestqt")
    from desktop_app.ui.settings_dialog import SettingsDialog

    dlg = SettingsDialog(Settings(), ["fdfacenet"], [], "")
    qtbot.addWidget(dlg)
    got: list[Settings] = []
    dlg.settingsAccepted.connect(got.append)
    dlg.set_field("reports", "late_after", "9am")
    dlg.accept()
    assert not got and "Late after" in dlg.error.text() and "HH:MM" in dlg.error.text()
    dlg.set_field("reports", "late_after", "08:30")
    dlg.accept()
    assert got and got[0].reports.late_time() == time(8, 30)
