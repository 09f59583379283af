"""The README's picture of a monthly PDF report: a made-up class of 24 people over November 2026 (seeded, so the
picture only changes when the report's drawing does), written by the app's own code (attendance/grid.py,
ui/report_pdf.py), page 1 rendered to PNG with pdftoppm when installed, else pypdfium2 (the test extra).

    QT_QPA_PLATFORM=offscreen python scripts/report_screenshot.py [--out docs/screenshots/report-monthly.png]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NAMES = ["Amelia Brooks", "Noah Fischer", "Sofia Rossi", "Liam O'Connor", "Mia Novak", "Lucas Martin",
         "Emma Janssen", "Oliver Smith", "Ava Kowalski", "Elias Berg", "Chloé Dubois", "Mateo García", "Hannah Weber",
         "Jonas Lindqvist", "Zoe Papadopoulos", "Leo Horvat", "Ines Costa", "Finn Murphy", "Yara Haddad",
         "Arjun Mehta", "Nora Virtanen", "Tomás Silva", "Lena Schmidt", "Kenji Sato"]
TZ = ZoneInfo("Europe/Paris")


def build_db(url: str) -> None:
    from sqlalchemy.orm import Session

    from desktop_app import storage as st

    rng = random.Random(7)
    engine = st.open_engine(url)
    with Session(engine) as s, s.begin():
        for i, name in enumerate(NAMES):
            p = st.add_person(s, name, f"3B-{i + 1:02d}", "Class 3B")
            p.created_at = datetime(2026, 11, 11 if name == "Kenji Sato" else 1, tzinfo=UTC)  # joined mid-month
            d = date(2026, 11, 1)
            while d.month == 11:
                if d.weekday() < 5 and rng.random() > 0.08 and not (name == "Kenji Sato" and d.day < 11):
                    late = rng.random() < 0.07
                    t_in = datetime.combine(d, time(9, 5) if late else time(8, 15), tzinfo=TZ) + timedelta(
                        minutes=rng.randint(0, 40))
                    t_out = datetime.combine(d, time(15, 30), tzinfo=TZ) + timedelta(minutes=rng.randint(0, 60))
                    st.add_event(s, p, t_in.astimezone(UTC), "Europe/Paris", "main-entrance", "check-in", 0.8)
                    st.add_event(s, p, t_out.astimezone(UTC), "Europe/Paris", "main-entrance", "check-out", 0.8)
                d += timedelta(days=1)
    engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots" / "report-monthly.png")
    ap.add_argument("--dpi", type=int, default=110)
    args = ap.parse_args()
    from sqlalchemy.orm import Session

    from desktop_app import storage as st
    from desktop_app.attendance.grid import build_grid, parse_month
    from desktop_app.ui.report_pdf import ensure_gui_app, write_monthly_pdf

    ensure_gui_app()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        build_db(url)
        engine = st.open_engine(url)
        with Session(engine) as s:
            grid = build_grid(s, *parse_month("2026-11"), TZ, "Europe/Paris", time(9), date(2026, 12, 4), 4,
                              group="Class 3B", station="main-entrance")
        engine.dispose()
        pdf = Path(tmp) / "month.pdf"
        write_monthly_pdf(pdf, grid, generated=datetime(2026, 12, 1, 7, 30, tzinfo=TZ))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if shutil.which("pdftoppm"):
            subprocess.run(["pdftoppm", "-r", str(args.dpi), "-f", "1", "-l", "1", "-png", "-singlefile", str(pdf),
                            str(args.out.with_suffix(""))], check=True)
        else:
            import cv2
            import pypdfium2 as pdfium

            doc = pdfium.PdfDocument(str(pdf))
            img = doc[0].render(scale=args.dpi / 72).to_numpy()  # BGR(x), OpenCV's order
            doc.close()
            cv2.imwrite(str(args.out), img[..., :3], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
