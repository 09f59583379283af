"""The one headless attendance session (desktop_app/attendance/session.py) that the GUI's vision worker and
``fdface run`` both drive: alone on a real SQLite database, two of them on one PostgreSQL database (a person
enrolled through one is named by the other within the refresh period), the same through the GUI driver, and
``fdface run``'s snapshot being the session's (the aligned face crop, as the GUI always kept).

Real parts: the shipped recognition model (or the teacher early on), the RetinaFace detector, the sample clip of
../shared (skipped with the reason without it), a throwaway PostgreSQL server (see test_gallery_postgres.py).
"""

from __future__ import annotations

import threading
import time
import uuid

import cv2
import numpy as np
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.session import SIGHTING_INTERVAL_S, AttendanceSession
from desktop_app.config import Settings
from desktop_app.gallery.enroll import Enroller
from desktop_app.gallery.service import Gallery, model_id_for
from desktop_app.vision.pipeline import Pipeline
from tests.conftest import shared_path
from tests.test_gallery_enroll import embedder_entry
from tests.test_gallery_postgres import pg_url  # noqa: F401  (the module's throwaway server)

PERIOD_S = 1.0  # the tests' refresh period (the product's is REFRESH_SECONDS)
SLACK_S = 20.0  # a loaded machine's time for the frames that vote after the refresh


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path, monkeypatch):
    """Index files and spools of non-SQLite databases go under the user's data directory: a temporary one here."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def clip_frames() -> list[tuple[str, np.ndarray]]:
    cap = cv2.VideoCapture(str(shared_path("media", "video", "short_hamilton_clip.mp4")))
    frames = [(f"frame{i}", cap.read()[1]) for i in range(121)][85::5]
    cap.release()
    return frames


def settings_for(url: str) -> Settings:
    s = Settings().with_changes("storage", database_url=url).with_changes("performance", threads=1)
    s = s.with_changes("recognition", recheck_frames=5)
    return s.with_changes("attendance", keep_snapshots=True, station="door")


def enroll_lead(pipe: Pipeline, gallery: Gallery, settings: Settings, frames) -> int:
    enroller = Enroller(pipe, gallery, settings)
    plan = enroller.prepare(frames, largest=True)
    assert plan.accepted, [str(r) for r in plan.refused]
    return enroller.commit(plan, name="Lead", confirm=True).person_id


class Events:
    """The writer's callbacks, collected (they run on the writer thread)."""

    def __init__(self) -> None:
        self.events: list = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def on_event(self, ev) -> None:
        with self.lock:
            self.events.append(ev)

    def wait(self, n: int, timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.events) >= n:
                    return list(self.events)
            time.sleep(0.05)
        return list(self.events)


def test_session_alone_names_throttles_snapshots_and_records_on_sqlite(tmp_path, clip_frames) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    settings = settings_for(url)
    entry = embedder_entry()
    pipe = Pipeline(settings, embedder_entry=entry, threads=1)
    gallery = Gallery.open(settings, model_id_for(entry), entry.output_dim)
    lead = enroll_lead(pipe, gallery, settings, clip_frames)
    got = Events()
    session = AttendanceSession(settings, pipe, on_event=got.on_event, on_error=got.errors.append)
    session.attach(gallery.engine, gallery, spool=tmp_path / "spool.jsonl")
    frame = clip_frames[3][1]
    t0 = 1_800_000_000.0
    submitted, names = [], []
    for i in range(20):  # 20 frames at 10 fps: 2 s of the person in view
        out = session.process(frame.copy(), wall_time=t0 + i / 10)
        names.append([f.name for f in out.result.named()])
        submitted += [(s.person_id, s.wall_time) for s in out.seen]
    assert ["Lead"] in names
    # the throttle: one sighting per person per SIGHTING_INTERVAL_S, not one per frame
    assert submitted and all(pid == lead for pid, _ in submitted)
    gaps = np.diff([t for _, t in submitted])
    assert len(submitted) <= 1 + (2.0 / SIGHTING_INTERVAL_S) and (gaps >= SIGHTING_INTERVAL_S - 1e-6).all()
    assert session.close() == 0 and not got.errors
    events = got.wait(1)
    assert [(e.name, e.kind, e.station) for e in events] == [("Lead", "check-in", "door")]
    # the one snapshot policy: the aligned 112 px crop the decision was made on
    with Session(gallery.engine) as s:
        jpeg = s.scalar(select(st.EventSnapshot.jpeg).where(st.EventSnapshot.event_id == events[0].id))
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (112, 112, 3)
    gallery.close()


def test_fdface_run_keeps_the_sessions_snapshot(tmp_path, clip_frames, capsys, monkeypatch) -> None:
    """`fdface run` is a driver of the session: its snapshot is the aligned 112 px crop (it was a padded crop of the
    frame before, unlike the GUI's)."""
    from desktop_app.cli import main

    entry = embedder_entry()
    if entry.name != "fdfacenet":
        pytest.skip("the CLI uses the installed model: models/fdfacenet.onnx is absent or does not match its manifest")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FDFACE_DB", url)
    cfg = tmp_path / "settings.toml"
    cfg.write_text('[attendance]\nkeep_snapshots = true\nstation = "hall"\n[recognition]\nrecheck_frames = 5\n')
    folder = tmp_path / "lead"
    folder.mkdir()
    for name, img in clip_frames:
        cv2.imwrite(str(folder / f"{name}.png"), img)
    assert main(["enroll", "Lead", str(folder / "frame100.png"), "--largest", "--threads", "1",
                 "--config", str(cfg)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    video = shared_path("media", "video", "short_hamilton_clip.mp4")
    code = main(["run", str(video), "--max-frames", "130", "--threads", "1", "--config", str(cfg)])
    out, err = capsys.readouterr()
    assert code == 0, err
    engine = st.open_engine(url)
    with Session(engine) as s:
        snaps = list(s.scalars(select(st.EventSnapshot.jpeg)))
    engine.dispose()
    assert len(snaps) == 1, (out, err)
    assert cv2.imdecode(np.frombuffer(snaps[0], np.uint8), cv2.IMREAD_COLOR).shape == (112, 112, 3)


# ------------------------------------------------------------------------------------------------- PostgreSQL
@pytest.fixture
def pg_database(pg_url):  # noqa: F811
    """A fresh database on the throwaway server (two kiosks and a GUI open it by URL, as in production)."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"fdface_sess_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server, no rights
        admin.dispose()
        pytest.skip(f"PostgreSQL at {st.describe_url(pg_url)} not usable: {exc}")
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_two_sessions_on_one_postgres_database_name_who_the_other_enrolled(pg_database, tmp_path,
                                                                             clip_frames) -> None:
    settings = settings_for(pg_database)
    entry = embedder_entry()
    kiosks = []
    for station in ("front", "back"):
        s = settings.with_changes("attendance", station=station)
        pipe = Pipeline(s, embedder_entry=entry, threads=1)
        gallery = Gallery.open(s, model_id_for(entry), entry.output_dim, persist_index=False)
        got = Events()
        session = AttendanceSession(s, pipe, on_event=got.on_event, on_error=got.errors.append,
                                    refresh_seconds=PERIOD_S)
        session.attach(gallery.engine, gallery, spool=tmp_path / f"{station}.jsonl")
        kiosks.append((session, gallery, got))
    (front, front_gallery, _), (back, back_gallery, back_got) = kiosks
    frame = clip_frames[3][1]
    for _ in range(6):  # the back kiosk sees the face before anyone is enrolled: nobody is named
        assert not back.process(frame.copy()).result.named()
        back.maybe_refresh()
    lead = enroll_lead(front.pipeline, front_gallery, front.settings, clip_frames)  # enrolled at the front
    enrolled_at = time.monotonic()
    named_at = refreshed_at = None
    longest_frame = 0.0
    while time.monotonic() - enrolled_at < PERIOD_S + SLACK_S:
        if back.maybe_refresh() and refreshed_at is None:
            refreshed_at = time.monotonic()
        t = time.monotonic()
        named = any(f.person_id == lead for f in back.process(frame.copy()).result.named())
        longest_frame = max(longest_frame, time.monotonic() - t)
        if named:
            named_at = time.monotonic()
            break
    assert named_at is not None, "the back kiosk never named the person enrolled at the front"
    # the back kiosk caught up within one refresh period (give or take the frame it was busy with) ...
    assert refreshed_at is not None and refreshed_at - enrolled_at <= PERIOD_S + longest_frame + 0.5
    # ... and then named the face as soon as its track had voted afresh
    assert named_at - refreshed_at < SLACK_S
    assert back.close() == 0 and front.close() == 0 and not back_got.errors
    assert [(e.name, e.station) for e in back_got.wait(1)] == [("Lead", "back")]
    front_gallery.close()
    back_gallery.close()


def test_gui_driver_names_who_another_kiosk_enrolled_within_the_refresh_period(pg_database, tmp_path, qtbot,
                                                                               clip_frames) -> None:
    pytest.importorskip("pytestqt")
    from desktop_app.ui.controller import AppController
    from tests.test_ui import StillCamera

    settings = settings_for(pg_database).with_changes("capture", source="")
    entry = embedder_entry()
    frame = clip_frames[3][1]
    ctl = AppController(settings, tmp_path / "settings.toml", source="", embedder_entry=entry, pace=False,
                        camera_lister=lambda: [], source_factory=lambda spec, w, h: StillCamera(frame),
                        refresh_seconds=PERIOD_S)
    qtbot.addWidget(ctl.window)
    try:
        with qtbot.waitSignal(ctl.storeReady, timeout=60_000):
            ctl.start()
        assert ctl._gallery_timer.isActive() and ctl._gallery_timer.interval() == PERIOD_S * 1000
        names: list[list[str | None]] = []
        ctl.packetShown.connect(lambda pk: names.append([f.name for f in pk.faces if f.voted]))
        ctl.open_source("0")
        qtbot.waitUntil(lambda: len(names) >= 6, timeout=60_000)
        assert not any(name for shown in names for name in shown)  # nobody enrolled yet
        # another kiosk (a headless session's gallery) enrols the face this screen is showing
        other = settings.with_changes("attendance", station="front")
        gallery = Gallery.open(other, model_id_for(entry), entry.output_dim, persist_index=False)
        enroll_lead(Pipeline(other, embedder_entry=entry, threads=1), gallery, other, clip_frames)
        gallery.close()
        enrolled_at = time.monotonic()
        qtbot.waitUntil(lambda: bool(names) and "Lead" in names[-1], timeout=int((PERIOD_S + SLACK_S) * 1000))
        assert time.monotonic() - enrolled_at < PERIOD_S + SLACK_S
        qtbot.waitUntil(lambda: any(t.startswith("Lead\n") for t in ctl.window.panel.texts()), timeout=30_000)
        assert ctl.window.panel.enrolled == 1 and ctl.gallery_refreshes >= 1
        assert [(e.name, e.station) for e in ctl.events_shown] == [("Lead", "door")]
    finally:
        ctl.shutdown()
