"""The desktop app, driven as a person would, offscreen (QT_QPA_PLATFORM=offscreen, set in conftest.py).

Real parts throughout: the shipped recognition model (models/fdfacenet.onnx; the teacher only when no model is
installed yet), the RetinaFace detector, a temporary SQLite database, the sample clip and photos of ../shared.
ONNX Runtime runs on one thread to stay light on a shared machine.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path, write_video
from sqlalchemy import select
from sqlalchemy.orm import Session

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox  # noqa: E402

from desktop_app import storage as st  # noqa: E402
from desktop_app.attendance.queries import list_people  # noqa: E402
from desktop_app.attendance.recorder import Sighting as CoreSighting  # noqa: E402
from desktop_app.capture import CameraInfo, CaptureState, CaptureStatus, FrameSource, SourceError, SourceKind  # noqa: E402,E501
from desktop_app.config import Settings  # noqa: E402
from desktop_app.gallery.service import REFRESH_SECONDS  # noqa: E402
from desktop_app.manifest import ManifestError, ModelEntry  # noqa: E402
from desktop_app.ui.controller import AppController, model_id_of  # noqa: E402
from desktop_app.ui.enroll_dialog import EnrollDialog  # noqa: E402
from desktop_app.ui.qtcompat import emit  # noqa: E402
from desktop_app.vision.pipeline import resolve_model  # noqa: E402

TEACHER = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "mobilefacenet-foamliu" / "MobileFaceNet.onnx"
WAIT_MS = 60_000


def recognition_entry() -> ModelEntry:
    """The shipped model when installed; before it exists, the teacher (tests only, never the product)."""
    entry, _ = resolve_model(Settings())
    if entry is not None:
        try:
            entry.verify()  # a model being re-shipped while the tests run does not match its manifest yet
            return entry
        except ManifestError:
            pass
    if not TEACHER.exists():
        pytest.skip("no recognition model: models/fdfacenet.onnx and the teacher are both absent")
    return ModelEntry(name="teacher-for-tests", file=str(TEACHER), output_dim=128, std=128.0, mean=127.5)


@pytest.fixture
def base_settings(tmp_path) -> Settings:
    s = Settings()
    s = s.with_changes("storage", database_url=f"sqlite:///{tmp_path / 'attendance.db'}")
    s = s.with_changes("performance", threads=1)
    s = s.with_changes("recognition", recheck_frames=5)
    return s.with_changes("capture", source="")


@pytest.fixture
def make_app(qtbot, tmp_path, base_settings):
    made: list[AppController] = []

    def make(source: str | None = "", settings: Settings | None = None, pace: bool | None = False,
             cameras: list[CameraInfo] | None = None, source_factory=None) -> AppController:
        ctl = AppController(settings or base_settings, tmp_path / "settings.toml", source=source,
                            embedder_entry=recognition_entry(), pace=pace, camera_lister=lambda: list(cameras or []),
                            source_factory=source_factory)
        qtbot.addWidget(ctl.window)
        with qtbot.waitSignal(ctl.storeReady, timeout=WAIT_MS):
            ctl.start()
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        ctl.shutdown()


def clip() -> str:
    return str(shared_path("media", "video", "short_hamilton_clip.mp4"))


def people_dir(name: str) -> list[Path]:
    return sorted(shared_path("media", "people", name).glob("*.png"))


@contextmanager
def answer_box(answer: str | None, defaults: list[str] | None = None) -> Iterator[None]:
    """Answer the next message box as a person would: click the button named ``answer``, or press Enter (None).
    The box's default button's text goes to ``defaults``. A box that never opens is not waited for."""
    timer = QTimer()
    timer.setInterval(20)

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            return
        timer.stop()
        if defaults is not None:
            defaults.append(box.defaultButton().text() if box.defaultButton() else "")
        if answer is None:
            QTest.keyClick(box, Qt.Key.Key_Return)
        else:
            next(b for b in box.buttons() if b.text().replace("&", "") == answer).click()

    timer.timeout.connect(poll)
    timer.start()
    try:
        yield
    finally:
        timer.stop()


def add_people(ctl: AppController, *names: str, **fields: str) -> list[int]:
    """People without templates, written through the store (as another station or the CLI would)."""
    with Session(ctl.engine) as s, s.begin():
        return [st.add_person(s, n, **fields).id for n in names]


def store_events(ctl: AppController) -> list[st.AttendanceEvent]:
    with Session(ctl.engine) as s:
        return list(s.scalars(select(st.AttendanceEvent).order_by(st.AttendanceEvent.id)))


# ----------------------------------------------------------------------------------------------------- window states
def test_no_camera_state_offers_a_video_and_plays_it(make_app, qtbot, monkeypatch):
    video = clip()  # resolved here: a skip raised inside the Qt callback below would not reach pytest
    ctl = make_app(source="7", pace=False)  # camera 7 does not exist here
    w = ctl.window
    qtbot.waitUntil(lambda: w.showing_no_source, timeout=WAIT_MS)
    assert w.isVisible()
    assert "No camera found" in w.no_source.title.text()
    assert "camera 7 is not available" in w.no_source.detail.text()
    assert w.no_source.detail.text().count("video file") == 1  # the advice once, not the source's and the page's
    assert w.source_box.itemText(0) == "▶ 7" or w.source_box.findText("No camera found") >= 0
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (video, ""))
    w.no_source.open_video.click()
    qtbot.waitUntil(lambda: ctl.frames_seen >= 5, timeout=WAIT_MS)
    assert not w.showing_no_source
    assert w.view.frames_shown >= 5 and w.view.message == ""
    assert ctl.current_source == video


def test_an_unreachable_network_stream_is_named_with_the_reason(make_app, qtbot):
    ctl = make_app(source="7")  # no camera 7 here: the "No camera found" page first
    w = ctl.window
    qtbot.waitUntil(lambda: w.showing_no_source, timeout=WAIT_MS)
    assert "camera 7" in w.no_source.detail.text()
    ctl.open_source("rtsp://kiosk:secret@127.0.0.1:1/door")  # nothing listens on port 1
    qtbot.waitUntil(lambda: w.showing_no_source and "network stream" in w.no_source.title.text(), timeout=WAIT_MS)
    detail = w.no_source.detail.text()
    assert "rtsp://***@127.0.0.1:1/door" in detail and "cannot connect" in detail, detail
    assert "camera" not in w.no_source.title.text() and "camera 7" not in detail
    assert not any("secret" in t for t in (detail, w.source_status.text(), w.source_box.currentText()))


def test_camera_listing_fills_the_picker_and_a_lost_camera_is_announced(make_app, qtbot):
    cams = [CameraInfo(0, "Integrated Camera"), CameraInfo(2, "USB Cam")]
    ctl = make_app(source=clip(), cameras=cams)
    w = ctl.window
    qtbot.waitUntil(lambda: w.source_box.findData("2") >= 0 and ctl.frames_seen >= 3, timeout=WAIT_MS)
    assert "USB Cam" in w.source_box.itemText(w.source_box.findData("2"))
    emit(ctl._closeSource)
    # a camera that was running disappears: the last picture stays, dimmed, with what is happening
    ctl.current_source = "0"
    ctl._on_capture_status(CaptureStatus(CaptureState.RECONNECTING, "camera 0 stopped sending frames. Retrying "
                                         "every 2 s.", "camera 0", 1))
    assert w.view.message == "camera 0 disconnected" and not w.showing_no_source
    ctl._on_capture_status(CaptureStatus(CaptureState.RUNNING, "camera 0 running", "camera 0"))
    assert w.view.message == ""


class UnpluggableCamera(FrameSource):
    """A live camera (the clip at its frame rate) that is unplugged after ``unplug_after`` frames, stays away for
    ``absent_opens`` reconnection attempts and then comes back where it was."""

    kind = SourceKind.CAMERA
    live = True

    def __init__(self, path: str, unplug_after: int, absent_opens: int) -> None:
        import cv2

        self._cv2 = cv2
        self.path, self.unplug_after, self.absent_opens = path, unplug_after, absent_opens
        self.cap = None
        self.delivered = 0
        self.refuse = 0
        self.unplugged_once = False

    @property
    def description(self) -> str:
        return "camera 0"

    def open(self) -> None:
        if self.refuse > 0:
            self.refuse -= 1
            raise SourceError("camera 0 is not available: it is not connected.")
        if self.cap is None:
            self.cap = self._cv2.VideoCapture(self.path)

    def read(self):
        if self.delivered == self.unplug_after and not self.unplugged_once:
            self.unplugged_once, self.refuse = True, self.absent_opens
            return None
        import time

        time.sleep(1 / 30)  # a camera delivers at its own pace
        ok, img = self.cap.read()
        if not ok:
            return None
        self.delivered += 1
        return img

    def close(self) -> None:
        pass  # the "device" keeps its place in the clip while unplugged


def test_a_camera_that_disappears_is_retried_and_recognition_resumes(make_app, qtbot, base_settings):
    cam = UnpluggableCamera(clip(), unplug_after=40, absent_opens=3)
    settings = base_settings.with_changes("capture", reconnect_seconds=0.2)
    messages: list[str] = []
    ctl = make_app(source="", settings=settings, source_factory=lambda spec, w, h: cam)
    # the singer is enrolled through the core beforehand, from frames 85-120 (the largest face there); the camera
    # is unplugged at frame 40, comes back where it was, and she must be named in frames she was not enrolled from
    import cv2

    from desktop_app.gallery.enroll import Enroller
    from desktop_app.vision.pipeline import Pipeline

    cap = cv2.VideoCapture(clip())
    frames = [(f"frame{i}", cap.read()[1]) for i in range(121)][85::5]
    cap.release()
    enroller = Enroller(Pipeline(settings, embedder_entry=ctl.entry, threads=1), ctl.gallery, settings)
    plan = enroller.prepare(frames, largest=True)
    assert plan.accepted, [str(r) for r in plan.refused]
    enroller.commit(plan, name="Singer", confirm=True)
    ctl.worker.statusChanged.connect(lambda st: messages.append(f"{st.state.value}: {st.message}"))
    ctl.open_source("0")
    qtbot.waitUntil(lambda: ctl.window.view.message == "camera 0 disconnected", timeout=WAIT_MS)
    assert not ctl.window.showing_no_source, "the last picture stays while the camera is retried"
    shown_before = ctl.frames_seen
    qtbot.waitUntil(lambda: ctl.window.view.message == "" and ctl.frames_seen > shown_before + 10
                    and cam.delivered > 60, timeout=WAIT_MS)
    assert any("not available" in m for m in messages) and messages[-1].startswith("running")
    named_after: list[int] = []
    ctl.packetShown.connect(lambda pk: named_after.extend(
        pk.index for f in pk.faces if f.name == "Singer" and f.voted and pk.index > 120))
    qtbot.waitUntil(lambda: len(named_after) >= 3, timeout=WAIT_MS)  # recognised again, not just detected


def test_settings_change_takes_effect_without_restart(make_app, qtbot, tmp_path):
    ctl = make_app(source=clip(), pace=False)
    qtbot.waitUntil(lambda: ctl.last_packet is not None and ctl.last_packet.index >= 95
                    and len(ctl.last_packet.faces) >= 1, timeout=WAIT_MS)
    dlg = ctl.show_settings()
    dlg.set_field("recognition", "threshold", 1.5)  # out of range: refused with the reason, nothing saved
    dlg.accept()
    assert dlg.isVisible() and "Match threshold" in dlg.error.text()
    assert not (tmp_path / "settings.toml").exists()
    dlg.set_field("recognition", "threshold", 0.55)
    dlg.set_field("detector", "min_face_px", 300)  # bigger than any face of the clip
    dlg.set_field("attendance", "dedupe_minutes", 12.0)
    dlg.accept()
    assert not dlg.isVisible()
    saved = Settings.load(tmp_path / "settings.toml")
    assert saved.recognition.threshold == 0.55 and saved.detector.min_face_px == 300
    assert ctl.settings == saved
    assert ctl.writer.recorder.dedupe.total_seconds() == 12 * 60
    assert ctl.gallery.index.retry_below == 0.55  # the gallery searches harder below the new threshold
    # the detector is rebuilt on the vision thread while the clip plays: faces stop being found
    seen: list[int] = []
    ctl.packetShown.connect(lambda pk: seen.append(len(pk.faces)))
    qtbot.waitUntil(lambda: len(seen) >= 30 and seen[-15:] == [0] * 15, timeout=WAIT_MS)
    assert ctl.last_packet.index < 205, "Lin is in view until frame 210: the empty frames are the setting's doing"


def test_about_dialog_reports_versions_models_and_paths(make_app, qtbot):
    ctl = make_app(source=clip(), pace=False)
    qtbot.waitUntil(lambda: ctl.frames_seen >= 10, timeout=WAIT_MS)
    dlg = ctl.show_about()
    text = dlg.text()
    assert "PySide6" in text and "onnxruntime" in text and "faiss-cpu" in text
    assert str(ctl.engine.url.database) in text
    assert "Measured FPS" in text and "no frames yet" not in text
    models = dict(next(rows for title, rows in dlg.sections if title == "Models"))
    assert "detector" in models and "sha256" in models["detector"]
    if ctl.entry is not None and ctl.entry.sha256:
        assert any("matches manifest" in v for v in models.values())


# ----------------------------------------------------------------------------------------------------- people
def test_deleting_a_person_takes_a_deliberate_choice_and_the_next_is_not_lined_up(make_app, qtbot):
    ctl = make_app(source="")
    ann, bob, cy = add_people(ctl, "Ann", "Bob", "Cy")
    people = ctl.show_people()
    qtbot.waitExposed(people)
    people.select(ann)
    defaults: list[str] = []
    with answer_box(None, defaults):  # Enter in the question: Cancel is its default
        people.delete_btn.click()
    assert defaults == ["Cancel"] and {r.id for r in people.rows} == {ann, bob, cy}
    with answer_box("Delete"), qtbot.waitSignal(people.changed, timeout=WAIT_MS):
        people.delete_btn.click()
    qtbot.waitUntil(lambda: {r.id for r in people.rows} == {bob, cy}, timeout=WAIT_MS)
    # nobody is selected and the focus left the delete button: two more Enters delete nobody
    assert people.selected is None and not people.delete_btn.isEnabled()
    assert people.focusWidget() is people.search
    for _ in range(2):
        with answer_box(None):
            QTest.keyClick(people.focusWidget(), Qt.Key.Key_Return)
    people.select(bob)
    for _ in range(2):  # nor with the focus on the delete button itself
        people.delete_btn.setFocus()
        with answer_box(None):
            QTest.keyClick(people.delete_btn, Qt.Key.Key_Return)
    qtbot.wait(100)
    assert {r.id for r in people.rows} == {bob, cy}
    with Session(ctl.engine) as s:
        assert st.count_people(s) == 2


def test_people_search_matches_part_of_a_name_an_external_id_or_a_group(make_app):
    ctl = make_app(source="")
    ann, = add_people(ctl, "Ann Lee", external_id="E-10023", group="Physics Lab")
    bob, = add_people(ctl, "Bob Ray", external_id="S_77", group="Chemistry")
    people = ctl.show_people()

    def found(text: str) -> set[int]:
        people.search.setText(text)
        return {r.id for r in people.rows}

    assert found("lee") == {ann}  # part of a name, any case
    assert found("1002") == {ann}  # part of an external id
    assert found("phys") == {ann} and found("CHEM") == {bob}  # part of a group
    assert found(f"#{bob}") == {bob}
    assert found("_") == {bob} and found("%") == set()  # typed literally, not as wildcards
    assert found("") == {ann, bob}


def test_a_reversed_date_range_in_the_log_shows_and_exports_nothing(make_app, qtbot):
    from datetime import timedelta

    ctl = make_app(source="")
    ann, = add_people(ctl, "Ann")
    ctl.writer.submit(CoreSighting(ann, 0.9))
    qtbot.waitUntil(lambda: len(ctl.events_shown) == 1, timeout=WAIT_MS)
    log = ctl.show_log()
    first, last = log.range()
    assert log.events.rowCount() == 1 and log.export_events_btn.isEnabled()
    log.set_range(last, last - timedelta(days=3))
    assert log.events.rowCount() == 0 and log.summary.rowCount() == 0 and not log.rows and not log.chart.data
    assert not log.export_events_btn.isEnabled() and not log.export_summary_btn.isEnabled()
    assert "reversed" in log.status.text() and str(last - timedelta(days=3)) in log.status.text()
    log.set_range(first, last)
    assert log.events.rowCount() == 1 and log.export_events_btn.isEnabled() and log.export_summary_btn.isEnabled()


def enroll_elsewhere(ctl: AppController, name: str, seed: int) -> tuple[int, np.ndarray]:
    """Enrol ``name`` as another station sharing the database would, on its own connection: a person and one
    template of the active model (a made-up unit embedding) with a kept crop."""
    import cv2

    v = np.random.default_rng(seed).standard_normal(ctl.entry.output_dim).astype(np.float32)
    v /= np.linalg.norm(v)
    ok, jpeg = cv2.imencode(".jpg", np.full((112, 112, 3), 90, np.uint8))
    engine = st.open_engine(ctl.settings.storage.resolved_url())
    try:
        with Session(engine) as s, s.begin():
            pid = st.add_person(s, name).id
            st.add_templates(s, pid, [st.NewTemplate(v, ctl.model_id, 0.9, "another station", jpeg.tobytes())])
    finally:
        engine.dispose()
    return pid, v


def test_station_screens_follow_erasures_here_and_enrolments_and_erasures_elsewhere(make_app, qtbot):
    here, there = make_app(source=""), make_app(source="")  # two kiosks on one SQLite file
    for ctl in (here, there):  # they catch up with the database as often as `fdface run` does
        assert ctl._gallery_timer.isActive() and ctl._gallery_timer.interval() == REFRESH_SECONDS * 1000
    there._gallery_timer.stop()
    ann, emb = enroll_elsewhere(here, "Ann", seed=1)
    here.refresh_gallery()
    qtbot.waitUntil(lambda: here.window.panel.enrolled == 1, timeout=WAIT_MS)
    here.writer.submit(CoreSighting(ann, 0.9))
    qtbot.waitUntil(lambda: any(t.startswith("Ann\n") for t in here.window.panel.texts()), timeout=WAIT_MS)
    assert here.window.panel.present == 1 and not here.window.panel.list.item(0).icon().isNull()

    # the other station picks up the enrolment (and today's events with it) on its own timer
    there._gallery_timer.start(200)  # the test's patience; the period itself is asserted above
    qtbot.waitUntil(lambda: there.window.panel.enrolled == 1
                    and any(t.startswith("Ann\n") for t in there.window.panel.texts()), timeout=WAIT_MS)
    r = there.settings.recognition.for_model(there.entry)
    assert there.index.decide(emb[None], r.threshold, r.margin)[0].name == "Ann"
    assert not there.window.panel.list.item(0).icon().isNull()

    # erased here through the people manager: her name and face leave this screen at once, no restart
    people = here.show_people()
    people.select(ann)
    with answer_box("Delete"), qtbot.waitSignal(people.changed, timeout=WAIT_MS):
        people.delete_btn.click()
    qtbot.waitUntil(lambda: here.window.panel.enrolled == 0
                    and not any("Ann" in t for t in here.window.panel.texts()), timeout=WAIT_MS)
    row = here.window.panel.rows()[0]  # the event stays, under her pseudonym, without her face
    assert row.name.startswith("anon-") and row.thumbnail is None and row.person_id is None
    assert here.window.panel.list.item(0).icon().isNull() and here.window.panel.present == 0

    # ... and from the other station's screen and index within one period
    qtbot.waitUntil(lambda: there.window.panel.enrolled == 0
                    and not any("Ann" in t for t in there.window.panel.texts()), timeout=WAIT_MS)
    assert there.index.decide(emb[None], r.threshold, r.margin)[0].person_id is None
    assert there.window.panel.list.item(0).icon().isNull() and there.window.panel.present == 0


class StillCamera(FrameSource):
    """A live camera that keeps seeing the same scene."""

    kind = SourceKind.CAMERA
    live = True

    def __init__(self, image: np.ndarray) -> None:
        self.image = image

    @property
    def description(self) -> str:
        return "camera 0"

    def open(self) -> None:
        pass

    def read(self):
        import time

        time.sleep(1 / 15)
        return self.image.copy()


def test_a_paused_source_is_marked_paused_in_the_view_and_the_status(make_app, qtbot):
    scene = np.full((360, 640, 3), 120, np.uint8)
    ctl = make_app(source="", source_factory=lambda spec, w, h: StillCamera(scene))
    w = ctl.window
    ctl.open_source("0")
    qtbot.waitUntil(lambda: ctl.frames_seen >= 3 and w.source_status.text() == "camera 0: running", timeout=WAIT_MS)
    live = w.view.grab().toImage()
    w.act_pause.trigger()  # the toolbar's Pause (Space)
    assert w.act_pause.text() == "Resume" and w.view.paused
    assert w.source_status.text() == "camera 0: paused"
    qtbot.wait(300)
    shown = ctl.frames_seen
    qtbot.wait(500)
    assert ctl.frames_seen == shown, "nothing is read or analysed while paused"
    paused = w.view.grab().toImage()
    scale = min(live.width() / 640, live.height() / 360)  # the picture is centred in the view, letterboxed
    corner = (int((live.width() - 640 * scale) / 2), int((live.height() - 360 * scale) / 2), 160, 60)
    # the mark is drawn over the picture's top-left corner (same frame: nothing else differs there)
    assert paused.copy(*corner) != live.copy(*corner)
    w.act_pause.trigger()
    qtbot.waitUntil(lambda: ctl.frames_seen > shown + 2, timeout=WAIT_MS)
    assert not w.view.paused and w.source_status.text() == "camera 0: running"
    assert w.view.grab().toImage().copy(*corner) == live.copy(*corner)


def test_a_face_erased_on_another_station_loses_its_name_on_this_screen(make_app, qtbot, base_settings):
    import cv2

    from desktop_app.gallery.enroll import Enroller
    from desktop_app.gallery.service import Gallery
    from desktop_app.vision.pipeline import Pipeline

    cap = cv2.VideoCapture(clip())
    frames = [(f"frame{i}", cap.read()[1]) for i in range(121)][85::5]
    cap.release()
    settings = base_settings.with_changes("recognition", recheck_frames=15)
    entry = recognition_entry()
    elsewhere = Gallery.open(settings, model_id_of(entry), entry.output_dim)  # the other station
    enroller = Enroller(Pipeline(settings, embedder_entry=entry, threads=1), elsewhere, settings)
    plan = enroller.prepare(frames, largest=True)
    assert plan.accepted, [str(r) for r in plan.refused]
    singer = enroller.commit(plan, name="Singer", confirm=True).person_id
    ctl = make_app(source="", settings=settings, source_factory=lambda spec, w, h: StillCamera(frames[3][1]))
    names: list[list[str | None]] = []
    ctl.packetShown.connect(lambda pk: names.append([f.name for f in pk.faces if f.voted]))
    ctl.open_source("0")
    qtbot.waitUntil(lambda: bool(names) and "Singer" in names[-1], timeout=WAIT_MS)
    ctl._gallery_timer.start(200)
    elsewhere.delete_person(singer)
    elsewhere.close()
    qtbot.waitUntil(lambda: ctl.gallery_refreshes >= 1, timeout=WAIT_MS)
    after = len(names)
    qtbot.waitUntil(lambda: len(names) >= after + 25, timeout=WAIT_MS)
    # a frame or two already on its way may still carry the name; then the face is decided afresh
    assert not any("Singer" in n for n in names[after + 3:]), names[after:]


# ----------------------------------------------------------------------------------------------------- enrollment
def test_photo_import_refusals_duplicate_warning_atomic_save_edit_delete(make_app, qtbot, tmp_path, monkeypatch):
    ctl = make_app(source="")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    group = shared_path("media", "scenes", "bbt1.jpg")

    dlg = ctl.show_enrollment()
    dlg.name.setText("Amy")
    dlg.external_id.setText("E-1")
    dlg.group.setCurrentText("Lab")
    dlg.import_photos([*people_dir("amy"), broken, group])
    qtbot.waitUntil(lambda: not dlg.busy and dlg.list.count() == 7, timeout=WAIT_MS)
    refused = {r.source: r.reasons for r in dlg.refusals}
    assert "broken.png" in refused
    assert "bbt1.jpg" in refused and "faces" in " ".join(refused["bbt1.jpg"])
    assert "To use the largest face of such a photo, tick 'When several faces" in dlg.messages.text()
    assert "broken.png" in dlg.messages.text()
    assert len(dlg.usable) >= 3
    dlg.remove_at([v.source for v in dlg.verdicts].index("bbt1.jpg"))  # remove a bad one
    assert dlg.list.count() == 6 and "bbt1.jpg" not in dlg.messages.text()
    with qtbot.waitSignal(dlg.enrolled, timeout=WAIT_MS) as got:
        dlg.save_btn.click()
    amy = got.args[0]
    assert len(amy.template_ids) == len(dlg.usable)

    def asked_about(name: str, photos: list, renamed: str = "") -> str:
        """Save a new person; the dialog must stop at "Enroll anyway": its message, then cancel. ``renamed``: a name
        typed after the question, which takes the confirmation back (it was for the other name)."""
        d = ctl.show_enrollment()
        d.name.setText(name)
        d.import_photos(photos)
        qtbot.waitUntil(lambda: not d.busy and d.list.count() == len(photos), timeout=WAIT_MS)
        d.save_btn.click()
        qtbot.waitUntil(lambda: d.save_btn.text() == "Enroll anyway", timeout=WAIT_MS)
        text = d.messages.text()
        if renamed:
            d.name.setText(renamed)
            assert d.save_btn.text() == "Save" and "already enrolled" not in d.messages.text()
        d.reject()
        return text

    # the same face under another name: the core's duplicate warning, then "Enroll anyway"
    assert "looks like Amy" in asked_about("Not Amy", people_dir("amy")[:2])
    # someone else under a name already taken: asked about in the same way
    assert f"Amy (#{amy.person_id}, id E-1) is already enrolled under this name" in asked_about(
        " amy", people_dir("penny")[:2], renamed="Amy ")

    # all or nothing: a clash on the external id stores no person and no template
    with Session(ctl.engine) as s:
        before = (st.count_people(s), len(list(s.scalars(select(st.Template.id)))))
    other = ctl.show_enrollment()
    other.name.setText("Bernadette")
    other.external_id.setText("E-1")
    other.import_photos(people_dir("bernadette"))
    qtbot.waitUntil(lambda: not other.busy and other.list.count() == 5, timeout=WAIT_MS)
    other.save_btn.click()
    qtbot.waitUntil(lambda: "Not saved" in other.messages.text() or other.save_btn.text() == "Enroll anyway",
                    timeout=WAIT_MS)
    if other.save_btn.text() == "Enroll anyway":  # a weak model may also find her close to Amy
        other.save_btn.click()
        qtbot.waitUntil(lambda: "Not saved" in other.messages.text(), timeout=WAIT_MS)
    assert "already belongs to Amy" in other.messages.text()
    with Session(ctl.engine) as s:
        after = (st.count_people(s), len(list(s.scalars(select(st.Template.id)))))
    assert after == before
    other.reject()

    people = ctl.show_people()
    assert [r.name for r in people.rows] == ["Amy"] and people.rows[0].templates == len(amy.template_ids)
    people.select(amy.person_id)
    assert people.templates.count() == len(amy.template_ids)
    assert not people.templates.item(0).icon().isNull(), "kept crops are shown as thumbnails"

    # re-enroll: new photos replace her templates (added first, the old ones removed after the commit)
    people.reenroll(replace=True)
    re = people.enroll_dialog
    assert re.name.text() == "Amy" and not re.name.isEnabled() and re.replace.isChecked()
    re.import_photos(people_dir("amy")[:2])
    qtbot.waitUntil(lambda: not re.busy and re.list.count() == 2, timeout=WAIT_MS)
    with qtbot.waitSignal(re.enrolled, timeout=WAIT_MS) as got:
        re.save_btn.click()
    new_ids = set(got.args[0].template_ids)
    qtbot.waitUntil(lambda: people.rows and people.rows[0].templates == len(new_ids), timeout=WAIT_MS)
    with Session(ctl.engine) as s:
        assert set(s.scalars(select(st.Template.id).where(st.Template.person_id == amy.person_id))) == new_ids
    assert set(ctl.gallery.index.templates_of(amy.person_id).tolist()) == new_ids
    amy = got.args[0]

    # edit, then delete with confirmation: the store and the index forget her
    people.group.setCurrentText("Physics")
    with qtbot.waitSignal(people.changed, timeout=WAIT_MS):
        people.save_btn.click()
    with Session(ctl.engine) as s:
        assert s.get(st.Person, amy.person_id).group == "Physics"
    with answer_box("Cancel"):
        people.delete_btn.click()
    assert people.rows and ctl.gallery.index.templates_of(amy.person_id).size == len(amy.template_ids)
    with answer_box("Delete"), qtbot.waitSignal(people.changed, timeout=WAIT_MS):
        people.delete_btn.click()
    qtbot.waitUntil(lambda: not people.rows, timeout=WAIT_MS)
    with Session(ctl.engine) as s:
        assert s.get(st.Person, amy.person_id) is None and not list(s.scalars(select(st.Template.id)))
    assert ctl.gallery.index.templates_of(amy.person_id).size == 0
    qtbot.waitUntil(lambda: ctl.window.panel.enrolled == 0, timeout=WAIT_MS)


def test_image_folder_source_names_each_photo_on_its_own(make_app, qtbot, tmp_path, base_settings):
    # this test is about a folder of photos as a source (each photo decided on its own), not about calibration:
    # with three templates amy4/amy5 were not named at the strict calibrated point (0.52), so it states its own
    settings = base_settings.with_changes("attendance", keep_snapshots=True).with_changes(
        "recognition", threshold=0.40, margin=0.05)
    ctl = make_app(source="", settings=settings)
    amy = people_dir("amy")
    dlg = ctl.show_enrollment()
    dlg.name.setText("Amy")
    dlg.import_photos(amy[:3])
    qtbot.waitUntil(lambda: not dlg.busy and dlg.list.count() == 3, timeout=WAIT_MS)
    with qtbot.waitSignal(dlg.enrolled, timeout=WAIT_MS):
        dlg.save_btn.click()
    folder = tmp_path / "door"
    folder.mkdir()
    for p in [*amy[3:], *people_dir("raj")[:2]]:
        (folder / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    names: dict[str, list[str | None]] = {}
    ctl.packetShown.connect(lambda pk: names.setdefault(Path(pk.source).name, []).extend(f.name for f in pk.faces))
    ctl.open_source(str(folder))
    qtbot.waitUntil(lambda: ctl.window.view.message.startswith("End of"), timeout=WAIT_MS)
    assert sorted(names) == sorted(p.name for p in folder.iterdir())
    assert all(names[n] == ["Amy"] for n in names if n.startswith("amy")), names
    assert all("Amy" not in names[n] for n in names if n.startswith("raj")), names
    qtbot.waitUntil(lambda: len(ctl.events_shown) >= 1, timeout=WAIT_MS)
    assert {e.name for e in ctl.events_shown} == {"Amy"}
    with Session(ctl.engine) as s:  # the snapshot is kept with the event and shown in the panel
        assert len(list(s.scalars(select(st.EventSnapshot.event_id)))) == len(ctl.events_shown)
    assert not ctl.window.panel.list.item(0).icon().isNull()


def test_an_image_folder_says_which_files_it_skipped_and_why(make_app, qtbot, tmp_path):
    import cv2

    ok, jpeg = cv2.imencode(".jpg", np.full((240, 320, 3), 128, np.uint8))
    folder = tmp_path / "door"
    folder.mkdir()
    (folder / "a_good.jpg").write_bytes(jpeg.tobytes())
    (folder / "b_empty.jpg").write_bytes(b"")
    (folder / "c_notes.jpg").write_bytes(b"these are my holiday notes, not a photo\n")
    (folder / "d_cut.jpg").write_bytes(jpeg.tobytes()[:200])
    ctl = make_app(source="")
    w = ctl.window
    finished: list[CaptureStatus] = []
    ctl.worker.sourceFinished.connect(finished.append)
    ctl.open_source(str(folder))
    qtbot.waitUntil(lambda: bool(finished) and w.view.message.startswith("End of"), timeout=WAIT_MS)
    skipped = finished[0].skipped
    assert sorted(x.path.name for x in skipped) == ["b_empty.jpg", "c_notes.jpg", "d_cut.jpg"]
    detail = w.view.detail  # what the view paints under "End of door"
    assert "3 file(s) skipped" in detail
    assert all(f"{x.path.name}: {x.reason}" in detail and x.reason for x in skipped), detail
    assert "b_empty.jpg" in w.statusBar().currentMessage()
    assert str(folder) not in w.statusBar().currentMessage()  # its name, so that the reason fits
    # a folder where nothing can be read: the page says so, file by file
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("b_empty.jpg", "c_notes.jpg"):
        (bad / name).write_bytes((folder / name).read_bytes())
    ctl.open_source(str(bad))
    qtbot.waitUntil(lambda: len(finished) == 2 and w.showing_no_source
                    and w.no_source.title.text() == "Cannot open bad", timeout=WAIT_MS)
    assert all(f"{x}" in w.no_source.detail.text() for x in finished[-1].skipped), w.no_source.detail.text()
    assert "b_empty.jpg" in w.no_source.detail.text() and "c_notes.jpg" in w.no_source.detail.text()


def enroll_from_clip(ctl: AppController, qtbot, name: str, frames: range, min_size: float, want: int,
                     largest: bool = False) -> EnrollDialog:
    """Open the dialog while the clip plays (it pauses the clip) and step through it frame by frame, capturing
    whenever the guidance says ready inside ``frames``; save once past them (closing plays the clip on)."""
    dlg = ctl.show_enrollment()
    assert ctl.paused and dlg.next_btn.isEnabled()
    dlg.name.setText(name)
    dlg.largest.setChecked(largest)
    taken: list[int] = []
    while ctl.last_packet is None or ctl.last_packet.index <= frames.stop:
        pk = ctl.last_packet
        big = pk is not None and any(f.quality is not None and f.quality.size >= min_size for f in pk.faces)
        if big and pk.index in frames and len(taken) < want and dlg.ready and not dlg.busy:
            taken.append(pk.index)
            dlg.capture()
            qtbot.waitUntil(lambda: not dlg.busy, timeout=WAIT_MS)
        shown = ctl.frames_seen
        dlg.next_btn.click()
        qtbot.waitUntil(lambda shown=shown: ctl.frames_seen > shown, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not dlg.busy, timeout=WAIT_MS)
    assert dlg.usable, f"{name}: captures at frames {taken} were all refused: {dlg.messages.text()}"
    with qtbot.waitSignal(dlg.enrolled, timeout=WAIT_MS):
        dlg.save_btn.click()
    return dlg


def test_enrolling_from_a_video_pauses_it_and_steps_frame_by_frame(make_app, qtbot, tmp_path):
    video = write_video(tmp_path / "door.avi")
    ctl = make_app(source="", pace=None)  # the file at its own pace, 10 frames a second
    w = ctl.window
    ctl.open_source(video)
    qtbot.waitUntil(lambda: ctl.frames_seen >= 3, timeout=WAIT_MS)
    dlg = ctl.show_enrollment()
    # the video waits for the person enrolling: nothing moves on while the dialog is open
    assert ctl.paused and w.view.paused and w.act_pause.isChecked() and w.source_status.text().endswith("paused")
    assert dlg.play_btn.isVisible() and dlg.play_btn.text() == "▶ Play" and dlg.next_btn.isEnabled()
    qtbot.wait(500)
    shown = ctl.frames_seen
    qtbot.wait(500)
    assert ctl.frames_seen == shown
    # one frame at a time, and the dialog captures the frame stepped to
    for _ in range(2):
        at = ctl.last_packet.index
        dlg.next_btn.click()
        qtbot.waitUntil(lambda at=at: ctl.last_packet.index > at, timeout=WAIT_MS)
        qtbot.wait(300)
        assert ctl.frames_seen == shown + 1 and dlg._packet is ctl.last_packet
        shown = ctl.frames_seen
    # play on, pause again from the dialog
    dlg.play_btn.click()
    assert not ctl.paused and dlg.play_btn.text() == "❚❚ Pause" and not dlg.next_btn.isEnabled()
    qtbot.waitUntil(lambda: ctl.frames_seen > shown + 2, timeout=WAIT_MS)
    dlg.play_btn.click()
    assert ctl.paused and w.view.paused
    dlg.reject()  # closing puts the video back as it was before the dialog: playing
    assert not ctl.paused and not w.view.paused and not w.act_pause.isChecked()
    shown = ctl.frames_seen
    qtbot.waitUntil(lambda: ctl.frames_seen > shown + 2, timeout=WAIT_MS)
    # paused before the dialog: still paused after it
    w.act_pause.trigger()
    dlg = ctl.show_enrollment()
    dlg.reject()
    assert ctl.paused and w.view.paused


def test_enrolling_from_a_camera_does_not_pause_it(make_app, qtbot):
    ctl = make_app(source="", source_factory=lambda spec, w, h: StillCamera(np.full((240, 320, 3), 99, np.uint8)))
    ctl.open_source("0")
    qtbot.waitUntil(lambda: ctl.frames_seen >= 3, timeout=WAIT_MS)
    dlg = ctl.show_enrollment()
    assert not ctl.paused and not dlg.play_btn.isVisible() and not dlg.next_btn.isVisible()
    shown = ctl.frames_seen
    qtbot.waitUntil(lambda: ctl.frames_seen > shown + 2, timeout=WAIT_MS)
    dlg.reject()
    assert not ctl.paused


def test_enroll_two_people_from_the_clip_then_they_are_named_and_logged(make_app, qtbot, tmp_path, monkeypatch):
    ctl = make_app(source="", pace=False)
    named: dict[str, list[int]] = {}
    labels_seen: set[str] = set()

    flashes: set[str] = set()

    def watch(pk) -> None:
        for f in pk.faces:
            if f.name and f.voted:
                named.setdefault(f.name, []).append(pk.index)
        labels_seen.update(ctl.window.view.face_labels())
        if ctl.window.view.flash_text:
            flashes.add(ctl.window.view.flash_text)

    ctl.packetShown.connect(watch)
    ctl.window.act_pause.setChecked(False)
    ctl.open_source(clip())
    # the pianist in the first second and a half (blurred faces of the audience behind him: the largest face is
    # his), the singer from the third second on
    pianist = enroll_from_clip(ctl, qtbot, "Pianist", range(30, 50), 120, 3, largest=True)
    singer = enroll_from_clip(ctl, qtbot, "Singer", range(85, 120), 60, 4)
    assert len(pianist.result.template_ids) >= 1 and len(singer.result.template_ids) >= 2
    qtbot.waitUntil(lambda: ctl.worker.frames_processed > 0 and ctl.window.view.message.startswith("End of"),
                    timeout=WAIT_MS * 5)
    assert any(i > 150 for i in named.get("Singer", [])), f"the singer is named later in the clip: {named}"
    assert any(i > 50 for i in named.get("Pianist", [])), f"the pianist is named later in the clip: {named}"
    assert any(label.startswith("Singer") for label in labels_seen)

    # the side panel shows the check-ins as they were committed
    qtbot.waitUntil(lambda: len(ctl.events_shown) >= 2, timeout=WAIT_MS)
    texts = ctl.window.panel.texts()
    assert any(t.startswith("Singer\n") and "·  in  ·" in t for t in texts), texts
    assert ctl.window.panel.present >= 2 and ctl.window.panel.enrolled == 2
    # a just-logged check-in shows briefly over the view
    assert {"Singer checked in", "Pianist checked in"} & flashes, flashes
    events = store_events(ctl)
    assert {e.id for e in events} == {e.id for e in ctl.events_shown}

    # the log view exports a CSV whose rows are the store's events
    log = ctl.show_log()
    assert log.events.rowCount() == len(events)
    out = tmp_path / "events.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    with qtbot.waitSignal(log.exported, timeout=WAIT_MS):
        log.export_events_btn.click()
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    names = {p.id: p.name for p in ctl.store().read(list_people)}
    assert [(int(r["event_id"]), r["name"], r["kind"]) for r in rows] == [
        (e.id, names[e.person_id], e.kind) for e in events]
    assert log.chart.data and log.chart.data[-1][1] == len({e.person_id for e in events})
    singer_id = singer.result.person_id
    log.person.setCurrentIndex(log.person.findData(singer_id))
    assert log.events.rowCount() == sum(e.person_id == singer_id for e in events) >= 1
    assert {r.name for r in log.rows} == {"Singer"}


def test_ui_thread_stays_responsive_while_a_video_plays(make_app, qtbot):
    from PySide6.QtCore import QElapsedTimer, QTimer

    ctl = make_app(source="", pace=False)
    clock = QElapsedTimer()
    gaps: list[int] = []
    last = [0]

    def tick() -> None:
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    ctl.open_source(clip())
    qtbot.waitUntil(lambda: ctl.frames_seen >= 100, timeout=WAIT_MS * 2)
    timer.stop()
    assert len(gaps) > 50
    print(f"event loop with a 10 ms timer over {ctl.frames_seen} frames: median gap {sorted(gaps)[len(gaps) // 2]} ms, "
          f"longest {max(gaps[1:])} ms")
    # the event loop ran at least every 250 ms although a frame was decoded, analysed and painted 100 times
    assert max(gaps[1:]) < 250, f"longest gap {max(gaps[1:])} ms"


def test_pyside_reference_leaks_cannot_abort_the_app():
    """PySide6 6.12.0 takes a reference to True per emit and to None per call of a void slot (update(), stop()...).
    100 000 of each (about an hour of video) would free them and abort Python 3.11 without the guard."""
    import subprocess
    import sys

    code = """
import sys
from desktop_app.ui.qtcompat import NONE_REFS_TAKEN_PER_SLOT_CALL, TRUE_REFS_TAKEN_PER_EMIT, emit
from PySide6.QtCore import QObject, QTimer, Signal
class Emitter(QObject):
    s = Signal(object)
o, t = Emitter(), QTimer()
for _ in range(100_000):
    emit(o.s, 1)
    o.s.emit(2)
    t.stop()
print(NONE_REFS_TAKEN_PER_SLOT_CALL, TRUE_REFS_TAKEN_PER_EMIT, sys.getrefcount(None) > 10**6)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    leak_none, leak_true, cushioned = proc.stdout.split()
    if int(leak_none) or int(leak_true):
        assert cushioned == "True"


GC_ACROSS_THREADS = """
import gc, sys, threading, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(["gc-test"])
if sys.argv[1] == "guarded":
    from desktop_app.ui.gui_gc import collect_on_gui_thread
    collector = collect_on_gui_thread()
    app.aboutToQuit.connect(collector.release)  # as create_app does, after the controller's shutdown
class Holder:  # a GUI-thread object in a reference cycle, with an active timer, as a window and its lambdas are
    def __del__(self):
        print("freed on", threading.current_thread().name, flush=True)
def make():
    h = Holder()
    h.self = h
    h.timer = QTimer()
    h.timer.setInterval(5)
    h.timer.timeout.connect(lambda: None)
    h.timer.start()
make()
kept = []
def churn():  # a worker thread that allocates (decoding frames, compiling queries...) and keeps some of it
    for _ in range(3):
        junk = [[i] for i in range(300_000)]
        del junk
    kept.extend([i] for i in range(5_000))
t = threading.Thread(target=churn, name="worker")
t.start()
t.join()
end = time.time() + 1.5
while time.time() < end:
    app.processEvents()
print("survived", gc.isenabled(), flush=True)
QTimer.singleShot(0, app.quit)
app.exec()
print("after the loop", gc.isenabled(), flush=True)  # the interpreter collects again once the app's loop has ended
"""


def test_garbage_holding_qt_objects_is_collected_on_the_gui_thread_only():
    """Python's automatic collector runs on whichever thread allocates: a cycle holding a GUI-thread timer, freed on
    a worker thread, leaves the timer registered with the GUI loop, which fires it on freed memory (the app died
    with a segmentation fault this way). With the app's collector (ui/gui_gc.py) the cycle is freed on the GUI
    thread. Each case runs in its own interpreter, since the unguarded one may crash."""
    import subprocess
    import sys

    def run(mode: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", GC_ACROSS_THREADS, mode], capture_output=True, text=True,
                              timeout=120, cwd=Path(__file__).resolve().parents[1],
                              env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})

    bare = run("bare")
    assert "freed on worker" in bare.stdout, (bare.stdout, bare.stderr[-2000:])  # the hazard is real here
    guarded = run("guarded")
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert guarded.stdout.split("\n")[:3] == ["freed on MainThread", "survived False", "after the loop True"], \
        guarded.stdout


DETECTOR_FAILS_AFTER_A_SETTINGS_CHANGE = r"""
import sys, tempfile, threading
from pathlib import Path
sys.modules["retinaface.weights"] = None  # a broken install: the face detector cannot be built
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop_app.config import Settings
from desktop_app.ui.controller import AppController

app = QApplication([])
tmp = Path(tempfile.mkdtemp())
s = Settings().with_changes("storage", database_url=f"sqlite:///{tmp / 'a.db'}").with_changes("capture", source="")
ctl = AppController(s, tmp / "settings.toml", source="", camera_lister=lambda: [])
real, threads = ctl.window.statusBar, []
ctl.window.statusBar = lambda: (threads.append(threading.current_thread().name), real())[1]
# Settings > OK with a new detector threshold: "Settings saved ..." for 8 s and the pipeline rebuilt (it fails;
# after a failed build any change rebuilds); a second change within those 8 s
QTimer.singleShot(200, lambda: ctl.apply_settings(s.with_changes("detector", score_threshold=0.7)))
QTimer.singleShot(1200, lambda: ctl.apply_settings(s.with_changes("detector", score_threshold=0.8)))
QTimer.singleShot(10_000, app.quit)  # past the 8 s message
app.exec()
print("status bar used on:", sorted(set(threads)))
ctl.shutdown()
"""


def test_a_detector_that_cannot_start_is_said_from_the_gui_thread():
    """The vision thread's error reached the status bar through a lambda, which PySide ran on the vision thread:
    replacing a timed message there left the status bar's timer to fire on freed memory (a segmentation fault
    after two settings changes within 8 s on an install whose detector cannot start). In its own interpreter."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", DETECTOR_FAILS_AFTER_A_SETTINGS_CHANGE], capture_output=True,
                       text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, (r.returncode, r.stderr[-1500:])
    assert "status bar used on: ['MainThread']" in r.stdout, r.stdout


def test_frames_reach_the_view_as_copies(make_app, qtbot):
    ctl = make_app(source=clip(), pace=False)
    qtbot.waitUntil(lambda: ctl.frames_seen >= 3, timeout=WAIT_MS)
    pk = ctl.last_packet
    assert pk.image.width() == 640 and pk.image.height() == 360
    arr = np.asarray(pk.frame)
    before = pk.image.pixelColor(10, 10)
    arr[:] = 0  # the GUI's image is its own copy
    assert pk.image.pixelColor(10, 10) == before


def test_a_busy_database_is_said_in_the_status_bar_and_the_sighting_is_recorded_after(make_app, qtbot, tmp_path,
                                                                                     monkeypatch):
    from tests.test_attendance_busy import Holder

    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 200)  # read when the store opens its engine
    monkeypatch.setattr("desktop_app.ui.controller.data_dir", lambda: tmp_path / "data")
    ctl = make_app(source="")
    ann, _ = enroll_elsewhere(ctl, "Ann", seed=1)
    bar = ctl.window.statusBar()
    with Holder(tmp_path / "attendance.db"):
        ctl.writer.submit(CoreSighting(ann, 0.9))
        qtbot.waitUntil(lambda: "database busy, 1 sighting waiting" in bar.currentMessage(), timeout=WAIT_MS)
        assert "nothing is lost" in bar.currentMessage() and ctl.writer.pending == 1
    qtbot.waitUntil(lambda: "answers again" in bar.currentMessage(), timeout=WAIT_MS)
    assert [e.person_id for e in store_events(ctl)] == [ann]


@contextmanager
def a_sighting_waiting_in_a_locked_database(make_app, qtbot, tmp_path, monkeypatch, close_s: float):
    """An app whose database is locked by another process while one sighting of Ann waits in its writer; yields
    (controller, that writer, its database URL, Ann's id, the spool folder) with the lock still held."""
    from tests.test_attendance_busy import Holder

    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr("desktop_app.ui.controller.WRITER_CLOSE_S", close_s)
    monkeypatch.setattr("desktop_app.ui.controller.data_dir", lambda: tmp_path / "data")
    ctl = make_app(source="")
    ann, _ = enroll_elsewhere(ctl, "Ann", seed=1)
    with Holder(tmp_path / "attendance.db"):
        old = ctl.writer
        old.submit(CoreSighting(ann, 0.9))  # waits: the database is locked
        qtbot.waitUntil(lambda: old.pending == 1 and "busy" in old.status(), timeout=WAIT_MS)
        yield ctl, old, ctl.settings.storage.resolved_url(), ann, tmp_path / "data"


def switch_database(ctl: AppController, qtbot, path: Path, then) -> None:
    """Switch to the SQLite file ``path`` as the settings dialog does; ``then`` is queued on the database thread right
    behind the open (so it runs before the previous database's writer is closed there)."""
    with qtbot.waitSignal(ctl.storeReady, timeout=WAIT_MS):
        ctl.apply_settings(ctl.settings.with_changes("storage", database_url=f"sqlite:///{path}"))
        ctl.tasks.submit(then)


def test_a_database_switched_away_from_keeps_its_sightings_when_the_database_thread_hangs_at_quit(
        make_app, qtbot, tmp_path, monkeypatch):
    """A database switch hands the old writer's close to the database thread; if that thread hangs until the quit,
    shutdown closes the old writer itself, so what it could not write is in the old database's spool."""
    import threading

    from desktop_app.attendance.recorder import read_spool
    from desktop_app.gallery.service import spool_path

    release = threading.Event()
    with a_sighting_waiting_in_a_locked_database(make_app, qtbot, tmp_path, monkeypatch, 0.5) as (
            ctl, old, old_url, ann, spools):
        switch_database(ctl, qtbot, tmp_path / "other.db", lambda: release.wait(60))  # the close waits behind it
        assert ctl.writer is not old and old.pending == 1
        ctl.TASKS_STOP_MS = 300
        try:
            ctl.shutdown()
            assert ctl.unstopped == ["the database thread"]
            assert [k.person_id for k in read_spool(spool_path(old_url, spools))] == [ann]
        finally:
            release.set()
            ctl.tasks.stop(10_000)


def test_shutdown_waits_for_a_previous_database_s_writer_the_database_thread_is_closing(make_app, qtbot, tmp_path,
                                                                                        monkeypatch):
    """The database thread may be in the middle of closing the writer of a database switched away from when
    shutdown's wait for that thread runs out: shutdown waits for that close too, so its sightings are in the spool
    by the time shutdown returns (after which leave() may end the process at once)."""
    import threading

    from desktop_app.attendance.recorder import read_spool
    from desktop_app.gallery.service import spool_path

    started = threading.Event()
    with a_sighting_waiting_in_a_locked_database(make_app, qtbot, tmp_path, monkeypatch, 2.0) as (
            ctl, old, old_url, ann, spools):
        switch_database(ctl, qtbot, tmp_path / "other.db", lambda: (started.set(), time.sleep(1.0)))
        assert started.wait(10)
        ctl.TASKS_STOP_MS = 1500  # runs out while the close (2 s, from about 1 s on) is under way
        ctl.shutdown()
        assert ctl.unstopped == ["the database thread"]
        assert [k.person_id for k in read_spool(spool_path(old_url, spools))] == [ann]
    ctl.tasks.stop(30_000)


A_THREAD_HANGS_AT_QUIT = r"""
import sqlite3, sys, threading, time
from pathlib import Path
import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from sqlalchemy.orm import Session
from desktop_app import storage as st
from desktop_app.attendance.recorder import Sighting
from desktop_app.config import Settings
from desktop_app.ui.controller import AppController, leave

mode, tmp = sys.argv[1], Path(sys.argv[2])
app = QApplication([])
s = Settings().with_changes("storage", database_url=f"sqlite:///{tmp / 'a.db'}").with_changes("capture", source="")
ctl = AppController(s, tmp / "settings.toml", source="", camera_lister=lambda: [])
ctl.TASKS_STOP_MS = 1000
close = ctl.attendance.close
ctl.attendance.close = lambda **kw: close(**{**kw, "timeout": 2.0})  # shutdown's wait for the writer, shortened
app.aboutToQuit.connect(ctl.shutdown)
app.aboutToQuit.connect(ctl.release_collector)  # as create_app connects them
hung = threading.Event()

def ready():  # a person enrolled on another connection, seen just before the quit while the database thread hangs
    v = np.ones(ctl.entry.output_dim, np.float32) / np.sqrt(ctl.entry.output_dim)
    engine = st.open_engine(ctl.settings.storage.resolved_url())
    with Session(engine) as ses, ses.begin():
        pid = st.add_person(ses, "Ann").id
        st.add_templates(ses, pid, [st.NewTemplate(v, ctl.model_id, 0.9, "test", None)])
    engine.dispose()
    locked = threading.Event()

    def hang():  # a database call that hangs inside a write transaction: the sighting cannot be written either
        con = sqlite3.connect(tmp / "a.db", isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        hung.set()
        locked.set()
        time.sleep(30)

    ctl.tasks.submit(hang)
    locked.wait(10)
    ctl.writer.submit(Sighting(pid, 0.9))
    QTimer.singleShot(0, app.quit)

ctl.storeReady.connect(ready)
ctl.start()
QTimer.singleShot(60_000, app.quit)
code = app.exec()
import gc
print("hung:", hung.is_set(), "unstopped:", ctl.unstopped, "gc:", gc.isenabled(), flush=True)
if mode == "leave-windowed":  # the console-less build: no standard streams
    sys.stdout = sys.stderr = None
sys.exit(code if mode == "bare" else leave(code, ctl))
"""


def test_a_thread_that_hangs_at_quit_does_not_crash_the_app_on_its_way_out(tmp_path):
    """A database or camera call that hangs past shutdown's wait left a running QThread for Python to free at
    interpreter exit, and Qt aborted the process for it (a crash report after a plain quit). leave() ends the
    process itself once attendance is closed: the sighting made just before the quit is in the database. In its
    own interpreter, since the unguarded exit aborts."""
    import sqlite3
    import subprocess
    import sys

    from desktop_app.attendance.recorder import read_spool

    def run(mode: str) -> subprocess.CompletedProcess:
        (tmp_path / mode).mkdir()
        return subprocess.run([sys.executable, "-c", A_THREAD_HANGS_AT_QUIT, mode, str(tmp_path / mode)],
                              capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
                              env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_DATA_HOME": str(tmp_path / mode)})

    def kept(mode: str) -> int:  # sightings written, plus those spooled for the next start
        with sqlite3.connect(tmp_path / mode / "a.db") as con:
            written = con.execute("SELECT count(*) FROM events").fetchone()[0]
        return written + sum(len(read_spool(f)) for f in (tmp_path / mode).rglob("pending-sightings-*.jsonl"))

    bare = run("bare")  # the hazard is real: the exit aborts
    assert bare.returncode != 0 and "Destroyed while thread" in bare.stderr, (bare.returncode, bare.stderr[-1500:])
    r = run("leave")
    assert "hung: True unstopped:" in r.stdout and "'the database thread'" in r.stdout, r.stdout
    assert "gc: False" in r.stdout  # the automatic collector stays off while a thread of ours still runs
    assert r.returncode == 0, (r.returncode, r.stderr[-1500:])
    assert "Destroyed while thread" not in r.stderr
    assert "quitting without waiting for the database thread" in r.stderr
    assert kept("leave") == 1  # attendance was closed (the sighting spooled: the database was locked) before the end
    windowed = run("leave-windowed")
    assert windowed.returncode == 0, (windowed.returncode, windowed.stderr[-1500:])
    assert "Destroyed while thread" not in windowed.stderr and kept("leave-windowed") == 1


def test_the_enrolment_guidance_names_the_check_box_it_means():
    """It said "tick 'use the largest face'" beside a box labelled otherwise."""
    from desktop_app.ui.enroll_dialog import LARGEST_LABEL, guidance
    from desktop_app.vision.types import Face

    faces = tuple(Face(box=np.array(b, np.float32), score=0.99, landmarks=np.zeros((5, 2), np.float32))
                  for b in ([200, 120, 420, 380], [40, 40, 90, 100]))
    (hint,) = guidance(faces, (640, 480))
    assert not hint.ok and "2 faces in view" in hint.detail and f"tick '{LARGEST_LABEL}'" in hint.detail
    assert all("faces in view" not in h.detail for h in guidance(faces, (640, 480), largest=True))


def test_the_today_panel_says_what_to_do_first_when_nobody_is_enrolled(qtbot):
    """The first screen showed "Present 0 / enrolled 0" and nothing else."""
    from desktop_app.ui.side_panel import NOBODY_SEEN, EventsPanel

    panel = EventsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_counts(0, 0)
    assert panel.empty.isVisible() and panel.empty.text().startswith("Nobody is enrolled yet")
    assert "Enroll a person, Ctrl+E" in panel.empty.text()
    panel.set_counts(0, 3)
    assert panel.empty.text() == NOBODY_SEEN
