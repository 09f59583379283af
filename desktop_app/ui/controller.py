"""The controller: wires the views to the headless core and owns the threads.

Threads: the GUI thread paints and reacts; one :class:`VisionWorker` thread captures and feeds the core's
:class:`AttendanceSession` (the one ``fdface run`` drives too: matcher, throttle, snapshots, gallery refresh), whose
:class:`EventWriter` thread writes attendance events (committed before they are shown); one :class:`TaskQueue`
thread does the other database work (opening the store, building the index, saving enrollments, deleting people)
and camera listing. Views never touch the core; the controller never paints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from desktop_app.attendance.queries import StoreReads, count_people, group_names, station_names, store_view
from desktop_app.attendance.recorder import ABANDON_WAIT_S, EventWriter, RecordedEvent, spool_path
from desktop_app.attendance.rules import day_of, resolve_zone
from desktop_app.attendance.session import AttendanceSession
from desktop_app.capture import CameraInfo, CaptureState, CaptureStatus, SkippedFile, list_cameras, redact_url
from desktop_app.config import ConfigError, RecognitionSettings, Settings, config_path, data_dir, field_label
from desktop_app.dburl import database_url
from desktop_app.gallery.enroll import Analyzed, Capture, Enroller, EnrollmentPlan, EnrollmentResult
from desktop_app.gallery.service import REFRESH_SECONDS, Gallery, model_id_for
from desktop_app.manifest import ModelEntry
from desktop_app.storage import StoreError, describe_url, open_engine
from desktop_app.ui.gui_gc import collect_on_gui_thread
from desktop_app.ui.images import bgr_to_qimage, thumbnails_of
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.qtcompat import emit, emitter
from desktop_app.ui.settings_dialog import SettingsDialog, changed_keys
from desktop_app.ui.side_panel import PanelRow
from desktop_app.ui.tasks import TaskQueue
from desktop_app.ui.worker import FramePacket, VisionWorker
from desktop_app.vision.pipeline import resolve_model

log = logging.getLogger(__name__)

WRITER_CLOSE_S = 3.0  # switching databases: how long the GUI waits for the old one before spooling what waits
CAMERA_POLL_MS = 3000  # how often the camera list is refreshed while no camera is running
KIND_FLASH = {"check-in": "checked in", "check-out": "checked out", "seen": "seen"}


def model_id_of(entry: ModelEntry | None) -> str:
    return model_id_for(entry) if entry is not None else ""


@dataclass(frozen=True)
class Opened:
    """What the task thread hands back after (re)opening the store: the gallery (store + index) or, without a
    recognition model, the bare engine; counts, thumbnails and today's events for the views."""

    engine: Any  # the core's database handle (an SQLAlchemy Engine), passed on, never queried here
    gallery: Gallery | None
    enrolled: int
    thumbnails: dict[int, QImage]
    today: list[Any]
    url: str  # the database opened (the settings may name another by the time it arrives)


def load_settings(path: str | Path | None) -> tuple[Settings, str | None]:
    """The saved settings and what could not be used of them: a bad key costs only that key (its default is
    used), not the whole file; a file that is not TOML at all gives the defaults."""
    try:
        settings, problems = Settings.load_keeping_valid(path)
    except ConfigError as exc:
        kept = keep_aside(Path(path) if path else config_path())
        where = f" The file was kept as {kept}; saving the settings writes a new one." if kept else ""
        return Settings(), f"{exc}. The defaults are used until the settings are saved again.{where}"
    for p in problems:
        log.warning("settings: %s (ignored)", p)
    if not problems:
        return settings, None
    return settings, ("These settings could not be used; their defaults apply and every other setting was read. "
                      "Correct them in Tools > Settings (saving drops the unknown ones) or in the file:\n\n"
                      + "\n".join(f"- {p}" for p in problems))


def keep_aside(path: Path) -> Path | None:
    """Copy an unreadable settings file aside (``settings.toml.unreadable-20261204-153000``) before the defaults
    are used, so that saving the settings later does not destroy what the person wrote."""
    if not path.is_file():
        return None
    dst = path.with_name(f"{path.name}.unreadable-{datetime.now():%Y%m%d-%H%M%S}")
    try:
        shutil.copy2(path, dst)
    except OSError as exc:
        log.warning("could not keep a copy of %s: %s", path, exc)
        return None
    return dst


class AppController(QObject):
    eventRecorded = Signal(object)  # RecordedEvent (from the writer thread)
    writerError = Signal(str)
    writerStatus = Signal(str)  # "database busy, 3 sightings waiting"; "" once they are written
    unknownLogged = Signal(int)  # an unknown visitor's id, once the writer committed it
    galleryChanged = Signal()  # people or templates changed: counts, dialogs and the index follow
    storeReady = Signal()
    packetShown = Signal(object)  # FramePacket, after the view took it (dialogs listen here)
    # requests to the vision worker (queued: the worker runs them between frames)
    _openSource = Signal(str)
    _closeSource = Signal()
    _pause = Signal(bool)
    _step = Signal()
    _applySettings = Signal(object)
    _shutdownWorker = Signal()
    _forgetIdentities = Signal()  # the gallery changed: tracks vote afresh
    analyzeRequested = Signal(int, object)  # request id, BGR image -> worker.stillAnalyzed
    # how long shutdown waits for the vision thread, then for the backup and the database threads, before it lets
    # them be (a camera or database call that hangs; a backup in progress is given longer to finish)
    THREAD_STOP_MS = 10_000
    TASKS_STOP_MS = 30_000

    def __init__(self, settings: Settings, settings_path: str | Path | None = None, source: str | None = None,
                 embedder_entry: ModelEntry | None = None, pace: bool | None = None,
                 camera_lister=list_cameras, source_factory=None, parent: QObject | None = None,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        super().__init__(parent)
        self.settings = settings
        self.settings_path = Path(settings_path) if settings_path else config_path()
        self.unstopped: list[str] = []  # threads that did not stop at shutdown: see leave()
        # writers of a database switched away from, until their close starts on the database thread; shutdown
        # closes those still here itself (that thread may hang, and what they hold must reach a spool)
        self._retiring: list[EventWriter] = []
        self._closing: list[threading.Event] = []  # set when a retired writer's close on that thread has ended
        self._retiring_lock = threading.Lock()
        self.db_override: tuple[str, str] | None = None  # (--db's URL, the file's): for this session, never saved
        self.initial_source = source if source is not None else settings.capture.source
        self._entry_override = embedder_entry
        self.entry, self.model_notice = (embedder_entry, None) if embedder_entry else resolve_model(settings)
        self.model_id = model_id_of(self.entry)
        self.camera_lister = camera_lister
        self.cameras: list[CameraInfo] = []
        self.engine: Any = None  # the open database's handle, for the core (see Opened)
        self.index = None  # the gallery's GalleryIndex, searched from the vision thread
        self.store_error: str | None = None
        self.enrolled = 0
        self.present_today: set[int] = set()
        self._today: date | None = None
        self.thumbnails: dict[int, QImage] = {}
        self.last_packet: FramePacket | None = None
        self.current_source = ""
        self.frames_seen = 0
        self.events_shown: list[RecordedEvent] = []
        self.gallery: Gallery | None = None
        self._requests = 0
        self.stage_ms: dict[str, float] = {}
        self._dialogs: dict[str, Any] = {}
        self._shut = False
        self.paused = False
        self._source_state = ("", "")  # (source, state) as the capture reader last said

        # before any thread of ours starts: cycles holding Qt objects are freed on this thread only (gui_gc.py)
        self.collector = collect_on_gui_thread()
        self.window = MainWindow()
        self.tasks = TaskQueue("fdface-db")
        # the writer's callbacks run on its thread: re-emitted as signals (queued to the GUI thread)
        self.attendance = AttendanceSession(settings, on_event=emitter(self.eventRecorded),
                                         on_error=emitter(self.writerError), on_status=emitter(self.writerStatus),
                                         on_unknown=emitter(self.unknownLogged), refresh_seconds=refresh_seconds)
        self._start_worker(pace, source_factory)
        self._wire_window()
        from desktop_app.ui.backups import BackupController  # File > Back up now / Restore, the daily backup

        self.backups = BackupController(self)
        self.eventRecorded.connect(self._on_event)
        self.writerError.connect(lambda m: self.window.statusBar().showMessage(f"Attendance not recorded: {m}"))
        self.writerStatus.connect(self._writer_status)
        self.unknownLogged.connect(self._on_unknown_logged)
        self._camera_timer = QTimer(self)
        self._camera_timer.setInterval(CAMERA_POLL_MS)
        self._camera_timer.timeout.connect(self.refresh_cameras)
        # other kiosks on a shared database enrol and erase people: caught up with on the session's period, as
        # `fdface run` does (here on the task thread, so that the vision thread never waits for the database)
        self._gallery_timer = QTimer(self)
        self._gallery_timer.setInterval(int(self.attendance.refresh_seconds * 1000))
        self._gallery_timer.timeout.connect(self.refresh_gallery)
        self._refreshing = False
        self.gallery_refreshes = 0  # refreshes that found a change made elsewhere
        self.window.model_status.setText(self._model_text())

    @property
    def writer(self) -> EventWriter | None:
        """The session's event writer (replaced when another database is opened)."""
        return self.attendance.writer

    # -- construction --------------------------------------------------------------------------------------------
    def _start_worker(self, pace: bool | None, source_factory) -> None:
        self.worker_thread = QThread()
        self.worker_thread.setObjectName("fdface-vision")
        self.worker = VisionWorker(self.settings, self._entry_override, pace=pace, source_factory=source_factory,
                                   session=self.attendance)
        self.worker.moveToThread(self.worker_thread)
        self.worker_thread.started.connect(self.worker.initialize)
        self._openSource.connect(self.worker.open_source)
        self._closeSource.connect(self.worker.close_source)
        self._pause.connect(self.worker.set_paused)
        self._step.connect(self.worker.step)
        self._applySettings.connect(self.worker.apply_settings)
        self._shutdownWorker.connect(self.worker.shutdown)
        self._forgetIdentities.connect(self.worker.forget_identities)
        self.analyzeRequested.connect(self.worker.analyze_still)
        self.worker.frameReady.connect(self._on_packet)
        self.worker.statusChanged.connect(self._on_capture_status)
        self.worker.sourceFinished.connect(self._on_source_finished)
        self.worker.pipelineReady.connect(self._on_pipeline_ready)
        self.worker.error.connect(self._on_worker_error)  # a bound slot: queued here (a lambda would run there)
        self.worker_thread.start()

    def _wire_window(self) -> None:
        w = self.window
        w.sourceRequested.connect(self.open_source)
        w.pauseRequested.connect(self.set_paused)
        w.camerasRefreshRequested.connect(self.refresh_cameras)
        w.settingsRequested.connect(self.show_settings)
        w.aboutRequested.connect(self.show_about)
        w.enrollRequested.connect(self.show_enrollment)
        w.peopleRequested.connect(self.show_people)
        w.logRequested.connect(self.show_log)
        w.unknownsRequested.connect(self.show_unknowns)
        w.closing.connect(self.shutdown)

    def start(self) -> None:
        """Show the window, open the store (on the task thread), look for cameras, open the first source."""
        self.window.show()
        self.open_store()
        self.refresh_cameras()
        if self.initial_source:
            self.open_source(self.initial_source)
        else:
            self._no_camera()

    def _model_text(self) -> str:
        if self.entry is None:
            return "no recognition model"
        lfw = self.entry.lfw_text
        return f"model {self.entry.name}" + (f" ({lfw})" if lfw else "")

    # -- store and gallery ---------------------------------------------------------------------------------------
    def open_store(self) -> None:
        """(Re)open the database named by the settings and load the gallery index from it, on the task thread."""
        url = self.settings.storage.resolved_url()
        self.window.db_status.setText(f"opening {describe_url(url)}…")
        settings, entry, model_id = self.settings, self.entry, self.model_id
        tz, _ = resolve_zone(settings.attendance.timezone)
        boundary = settings.attendance.day_boundary_hour

        def job() -> Opened:
            gallery = Gallery.open(settings, model_id, entry.output_dim, url=url) if entry is not None else None
            engine = gallery.engine if gallery is not None else open_engine(url)
            view = StoreReads(engine, url).read(store_view, tz, boundary)
            return Opened(engine, gallery, view.enrolled, thumbnails_of(view.crops), view.today, url)

        self.tasks.submit(job, self._store_opened, self._store_failed)

    def _store_opened(self, o: Opened) -> None:
        old_gallery, old_engine = self.gallery, self.engine
        # every queued event is written to the old store first; if it is busy, what waits is kept in its spool for
        # the next time it is opened; from now on faces are named from the new gallery and recorded in it
        try:
            self.attendance.attach(o.engine, o.gallery,
                                   spool=spool_path(o.url, data_dir()),
                                   close_old=self._retire)
        except StoreError as exc:  # e.g. a station name the store refuses: said, and nothing half-opened
            self.tasks.submit(o.gallery.close if o.gallery is not None else o.engine.dispose)
            self._store_failed(str(exc))
            return
        self.engine, self.gallery, self.enrolled, self.store_error = o.engine, o.gallery, o.enrolled, None
        self.index = o.gallery.index if o.gallery is not None else None
        if old_gallery is not None:
            self.tasks.submit(old_gallery.close)
        elif old_engine is not None and old_engine is not o.engine:
            old_engine.dispose()
        self.thumbnails = o.thumbnails
        self.window.db_status.setText(describe_url(o.url))
        self._show_today(o.today, keep_shown=False)
        self._update_counts()
        self._gallery_timer.start()
        emit(self.storeReady)

    def release_collector(self) -> None:
        """After shutdown: Python's automatic collector comes back, unless a thread of ours still runs."""
        self.collector.release(threads_stopped=not self.unstopped)

    def _retire(self, w: EventWriter) -> None:
        """Close a writer of the database switched away from, on the database thread (it may wait for a busy
        database); shutdown takes it over if that thread has not started on it."""
        with self._retiring_lock:
            self._retiring.append(w)
        self.tasks.submit(lambda: self._close_retired(w))

    def _close_retired(self, w: EventWriter) -> None:
        done = threading.Event()
        with self._retiring_lock:
            if w not in self._retiring:  # shutdown took it
                return
            self._retiring.remove(w)
            self._closing.append(done)
        try:
            w.close(timeout=WRITER_CLOSE_S)
        finally:
            done.set()
            with self._retiring_lock:
                self._closing.remove(done)

    def _show_today(self, today: list[Any], keep_shown: bool = True) -> None:
        """Today's events as the store has them now (``events_in_range`` rows): an erased person's rows lose their
        name and face like after a restart. ``keep_shown``: rows already on screen keep their picture (a kept
        snapshot), and events committed after ``today`` was read stay."""
        shown = {r.event_id: r for r in self.window.panel.rows()} if keep_shown else {}
        read_up_to = max((r.event_id for r in today), default=0)
        self._today = None
        self.present_today.clear()
        rows = []
        for r in today:
            self._note_present(r.person_id, r.day)
            old = shown.get(r.event_id)
            thumb = None
            if r.person_id is not None:
                thumb = old.thumbnail if old is not None and old.thumbnail is not None else \
                    self.thumbnails.get(r.person_id)
            rows.append(PanelRow(r.event_id, r.name or r.person_ref, r.local_ts, r.kind, r.similarity, r.station,
                                 thumb, r.person_id))
        for row in sorted(shown.values(), key=lambda x: x.event_id):
            if row.event_id > read_up_to:  # recorded while the store was being read: still today's
                rows.append(row)
                if row.person_id is not None:
                    self.present_today.add(row.person_id)
        self.window.panel.set_events(rows)

    def _store_failed(self, message: str) -> None:
        self.store_error = message
        self.attendance.detach_gallery()
        self.window.db_status.setText("no database")
        QMessageBox.warning(self.window, "Database", f"{message}\n\nFaces are shown but no attendance is recorded "
                            "until a database can be opened (Tools > Settings > Storage).")

    def _update_counts(self) -> None:
        self.window.panel.set_counts(len(self.present_today), self.enrolled)

    def _note_present(self, person_id: int | None, day: date) -> bool:
        """Count ``person_id`` as present on ``day``; True when ``day`` is a new attendance day."""
        new_day = self._today is not None and self._today != day
        if self._today != day:
            self._today = day
            self.present_today.clear()
        if person_id is not None:
            self.present_today.add(person_id)
        return new_day

    # -- sources ---------------------------------------------------------------------------------------------------
    @Slot(str)
    def open_source(self, spec: str) -> None:
        self.current_source = spec
        self.window.set_current_source(spec)
        self._show_source_state(redact_url(spec), "opening…")
        self.window.view.clear()
        self.window.view.set_message("Opening…", "")
        self.window.show_view()  # no page of an earlier source stays up (e.g. "No camera found - camera 0")
        self.frames_seen = 0
        emit(self._openSource, spec)

    def refresh_cameras(self) -> None:
        lister = self.camera_lister
        self.tasks.submit(lambda: lister(), self._cameras_found)

    def _cameras_found(self, cams: list[CameraInfo]) -> None:
        before = {c.index for c in self.cameras}
        self.cameras = list(cams)
        self.window.set_cameras(self.cameras)
        if self.window.showing_no_source and not self.current_source.strip().isdigit():
            new = [c for c in cams if c.index not in before]
            if new and not self.current_source:
                self.open_source(str(new[0].index))  # a camera was plugged in while there was nothing to show

    def _no_camera(self, detail: str = "") -> None:
        # the source's message already says what to do (plug it in, or open a file): only what the app does is added
        self.window.show_no_source(
            "No camera found",
            f"{detail}\n\nThe app keeps looking for a camera." if detail else
            "Connect a camera (the app keeps looking for one), or open a video file or a folder of images.",
        )
        self._camera_timer.start()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Pause or resume reading and recognition (the toolbar's Pause, Space); the view and the status bar say
        so."""
        self.paused = paused
        emit(self._pause, paused)
        self.window.view.set_paused(paused)
        self._show_source_state(*self._source_state)

    def step_frame(self) -> None:
        """While paused: the next frame of the source, analysed and shown."""
        emit(self._step)

    @property
    def source_is_live(self) -> bool:
        """A camera or a network stream (it goes on whether or not it is watched), not a file or a folder."""
        spec = self.current_source.strip()
        return spec.isdigit() or "://" in spec

    def _show_source_state(self, source: str, state: str) -> None:
        self._source_state = (source, state)
        if self.paused:
            state = "paused" if state in ("running", "") else f"{state}, paused"
        self.window.set_source_status(f"{source}: {state}" if source else state or "no source")

    @Slot(object)
    def _on_capture_status(self, st: CaptureStatus) -> None:
        self._show_source_state(st.source, st.state.value)
        is_camera = self.current_source.strip().isdigit()
        if st.state is CaptureState.RUNNING:
            self._camera_timer.stop()
            self.window.view.set_message("", "")
            self.window.show_view()
            if st.skipped:  # an image folder passed over an unreadable file: which, and why, as it happens
                # the folder's name, not its whole path: the status bar cuts what does not fit, and the reason
                # is the part that matters
                self.window.statusBar().showMessage(f"{Path(st.source).name or st.source}: {st.message}", 10_000)
        elif st.state is CaptureState.RECONNECTING:
            if self.frames_seen == 0 and is_camera:
                self._no_camera(st.message)
            elif self.frames_seen == 0 and self.source_is_live:  # a network stream that never answered
                self.window.show_no_source(
                    "Cannot reach the network stream",
                    f"{st.source}\n\n{st.message}\n\nThe app keeps trying in the background (a wrong user name or "
                    "password looks the same). Or open another source:")
            else:
                self.window.view.set_message(f"{st.source} disconnected", st.message + " Recognition resumes when it "
                                             "comes back.")
        elif st.state is CaptureState.OPENING:
            self.window.view.set_message("Opening…", st.source)

    @Slot(object)
    def _on_source_finished(self, st: CaptureStatus) -> None:
        self._show_source_state(st.source, st.state.value)
        if st.state is CaptureState.FAILED:
            self.current_source = ""
            self.window.set_current_source("")
            if not st.skipped:
                detail = st.message
            elif len(st.skipped) == 1:
                detail = f"{st.skipped[0].path.name} could not be read: {st.skipped[0].reason}"
            else:
                detail = f"Not one of its {len(st.skipped)} images could be read:\n{skipped_lines(st.skipped)}"
            self.window.show_no_source(f"Cannot open {st.source}", detail)
        else:
            again = "Pick another source above, or open the same one again to replay it."
            if st.skipped:
                self.window.statusBar().showMessage(st.message)
                again = f"{len(st.skipped)} file(s) skipped:\n{skipped_lines(st.skipped)}\n\n{again}"
            self.window.view.set_message(f"End of {st.source}", again)

    @Slot(object)
    def _on_packet(self, packet: FramePacket) -> None:
        self.worker.packet_taken()
        self.last_packet = packet
        self.frames_seen += 1
        for k, v in packet.timings_ms.items():  # moving averages over ~20 frames, for the diagnostics
            self.stage_ms[k] = v if k not in self.stage_ms else 0.95 * self.stage_ms[k] + 0.05 * v
        if self.window.showing_no_source:
            self.window.show_view()
        self.window.view.set_packet(packet)
        emit(self.packetShown, packet)

    @Slot(str)
    def _on_pipeline_ready(self, notice: str) -> None:
        self.model_notice = notice or None
        self.window.model_status.setText("recognition unavailable" if notice else self._model_text())
        self.window.model_status.setToolTip(notice)
        if notice:
            self.window.statusBar().showMessage(notice)

    # -- attendance ------------------------------------------------------------------------------------------------
    @Slot(object)
    def _on_event(self, ev: RecordedEvent) -> None:
        self.events_shown.append(ev)
        tz, _ = resolve_zone(self.settings.attendance.timezone)
        if self._note_present(ev.person_id, day_of(ev.ts, tz, self.settings.attendance.day_boundary_hour)):
            self.window.panel.set_events([])  # a new attendance day: the panel shows today only
        self._update_counts()
        snap = self.attendance.take_snapshot(ev.person_id) if self.settings.attendance.keep_snapshots else None
        thumb = bgr_to_qimage(snap) if snap is not None else self.thumbnails.get(ev.person_id)
        row = PanelRow(ev.id, ev.name, ev.local_ts, ev.kind, ev.similarity, ev.station, thumb, ev.person_id)
        if ev.demoted is not None:
            self.window.panel.set_kind(ev.demoted, "seen")
        self.window.panel.add_event(row)
        if ev.kind == "check-in":
            self.window.view.flash(f"{ev.name} {KIND_FLASH[ev.kind]}")
        log_dialog = self._dialogs.get("log")
        if log_dialog is not None and log_dialog.isVisible():
            log_dialog.refresh()

    @Slot(int)
    def _on_unknown_logged(self, _id: int) -> None:
        """The open unknown-visitors dialog shows the visitor without a click."""
        dlg = self._dialogs.get("unknowns")
        if dlg is not None:
            dlg.follow()

    # -- settings --------------------------------------------------------------------------------------------------
    @Slot()
    def show_settings(self) -> SettingsDialog:
        models = []
        try:
            from desktop_app.manifest import default_models_dir, load_manifest

            models = sorted(load_manifest(default_models_dir() / "manifest.json"))
        except Exception:  # no manifest: the field still accepts "auto"
            pass
        dlg = SettingsDialog(self.settings, models, self.cameras, str(self.settings_path), self.window,
                             calibrated=RecognitionSettings().for_model(self.entry))
        if self.db_override is not None:
            dlg.note_session_database(self.db_override[1])
        dlg.settingsAccepted.connect(self.apply_settings)
        self._dialogs["settings"] = dlg
        dlg.open()
        return dlg

    @Slot(object)
    def apply_settings(self, new: Settings) -> list[str]:
        """Save, then apply without a restart: thresholds at the next frame, the detector / model / threads by
        rebuilding the pipeline on the vision thread, the camera by reopening it, the database by reopening the
        store. Returns the changed keys."""
        old = self.settings
        keys = changed_keys(old, new)
        self.settings = new
        to_save = new
        if self.db_override is not None:
            if new.storage.database_url == self.db_override[0]:  # --db stays this session's: the file keeps its own
                to_save = new.with_changes("storage", database_url=self.db_override[1])
            else:
                self.db_override = None  # a database chosen in the dialog is saved like any setting
        try:
            to_save.save(self.settings_path)
            said = f"Settings saved to {self.settings_path}"  # only now: the dialog said it before anything was
        except OSError as exc:
            said = f"Settings NOT saved (they apply until the app closes): {exc}"
            QMessageBox.warning(self.window, "Settings", f"The settings apply now but could not be saved to "
                                f"{self.settings_path}: {exc}")
        emit(self._applySettings, new)
        self.attendance.apply_settings(new)  # thresholds from the next frame, attendance rules from the next event
        if "recognition.threshold" in keys and self.gallery is not None:
            # search harder below the new threshold
            self.gallery.index.retry_below = new.recognition.for_model(self.entry).threshold
        if old.recognition.model != new.recognition.model and self._entry_override is None:
            self.entry, self.model_notice = resolve_model(new)
            self.model_id = model_id_of(self.entry)
            self.window.model_status.setText(self._model_text())
        if any(k.startswith(("storage.", "attendance.timezone", "attendance.day_boundary")) for k in keys) or (
                old.recognition.model != new.recognition.model):
            self.open_store()
        if any(k in ("capture.width", "capture.height", "capture.reconnect_seconds") for k in keys) and (
                self.current_source.strip().isdigit() or self.current_source.startswith("rtsp")):
            self.open_source(self.current_source)
        if "capture.source" in keys and new.capture.source != self.current_source:
            self.open_source(new.capture.source)
        changed = f"; applied: {', '.join(field_label(k) for k in keys)}" if keys else "; nothing changed"
        self.window.statusBar().showMessage(said + changed, 8000)
        return keys

    # -- enrollment (the dialog's requests) --------------------------------------------------------------------------
    def analyze(self, image: np.ndarray) -> int:
        """Queue ``image`` for ``analyze_still`` on the vision thread; the answer comes as
        ``worker.stillAnalyzed(request_id, image, result)``."""
        self._requests += 1
        emit(self.analyzeRequested, self._requests, image)
        return self._requests

    def enroll(self, captures: list[Capture], name: str | None, external_id: str | None, group: str | None,
               *, person_id: int | None = None, largest: bool = False, confirm: bool = False,
               replace_templates: bool = False, on_done=None, on_error=None) -> None:
        """Check and save on the task thread. ``on_done`` gets an :class:`EnrollmentPlan` when the core asks for
        confirmation (a face resembles someone else) and ``confirm`` is False, else the
        :class:`EnrollmentResult`. All templates or none (one transaction)."""
        gallery, settings = self.gallery, self.settings
        if gallery is None:
            if on_error is not None:
                on_error(self.store_error or "no recognition model or database: nothing can be enrolled")
            return

        def job() -> EnrollmentPlan | EnrollmentResult:
            enroller = Enroller(Analyzed(captures), gallery, settings)
            plan = enroller.prepare([(c.source, c.image) for c in captures], largest=largest, person_id=person_id,
                                    name=name)
            if plan.needs_confirmation and not confirm:
                return plan
            # Python ints: numpy int64 ids bind to nothing in SQLite's IN (...) and would delete nothing
            old = [int(t) for t in gallery.index.templates_of(person_id)] if (replace_templates and person_id) else []
            result = enroller.commit(plan, name, external_id, group, confirm=confirm)
            if old:
                gallery.delete_templates(old)  # the new ones are committed: the person is never left without
            return result

        def done(out) -> None:
            if isinstance(out, EnrollmentResult):
                self.after_gallery_change(out.person_id)
            if on_done is not None:
                on_done(out)

        self.tasks.submit(job, done, on_error)

    def after_gallery_change(self, person_id: int | None = None) -> None:
        """Counts, thumbnails and today's events follow the store (an erased person leaves the screen at once);
        faces in view are named afresh; open dialogs are told. Dialogs that changed the gallery call this."""
        engine = self.engine
        if engine is None:
            return
        reads = self.store()
        tz, _ = resolve_zone(self.settings.attendance.timezone)
        boundary = self.settings.attendance.day_boundary_hour

        def job():
            view = reads.read(store_view, tz, boundary)
            return view, thumbnails_of(view.crops)

        def done(out) -> None:
            if engine is not self.engine:
                return  # another database was opened meanwhile
            view, self.thumbnails = out
            self.enrolled = view.enrolled
            emit(self._forgetIdentities)
            self._show_today(view.today)
            self._update_counts()
            emit(self.galleryChanged)

        self.tasks.submit(job, done, lambda m: self.window.statusBar().showMessage(
            f"The screen may show people as they were: {m}", 8000))

    @Slot()
    def refresh_gallery(self) -> None:
        """Catch up with other kiosks on the same database (their enrolments, edits and erasures), on the task
        thread; the timer calls this every ``session.refresh_seconds``, as `fdface run` does."""
        engine, session = self.engine, self.attendance
        if engine is None or self._refreshing:
            return
        self._refreshing = True
        enrolled, reads = self.enrolled, self.store()

        def job() -> bool:
            changed = session.refresh()
            return changed or reads.read(count_people) != enrolled

        def done(changed: bool) -> None:
            self._refreshing = False
            if changed and engine is self.engine:
                self.gallery_refreshes += 1
                self.after_gallery_change()

        def failed(message: str) -> None:
            self._refreshing = False
            self.window.statusBar().showMessage(
                f"Could not check the database for changes from other stations (tried again in "
                f"{session.refresh_seconds:.0f} s): {message}", 8000)

        self.tasks.submit(job, done, failed)

    # -- reads for the dialogs (small queries of attendance/queries.py, each in its own read-only session) ----------
    def store(self) -> StoreReads:
        """Reads of the open database (SQLite: DEFERRED, never waits for the writer); StoreError without one."""
        if self.engine is None:
            raise StoreError(self.store_error or "the database is not open yet")
        return StoreReads(self.engine, self.settings.storage.resolved_url())

    def groups(self) -> list[str]:
        return self.store().read(group_names) if self.engine is not None else []

    def stations(self) -> list[str]:
        return self.store().read(station_names) if self.engine is not None else []

    # -- dialogs ---------------------------------------------------------------------------------------------------
    @Slot()
    def show_about(self):
        from desktop_app.ui.about_dialog import AboutDialog, model_rows, versions

        pk = self.last_packet
        speed = [("Measured FPS", f"{pk.fps:.1f}" if pk else "no frames yet")]
        if pk:
            speed += [(k, f"{v:.2f} ms (moving average)") for k, v in self.stage_ms.items()]
        url = self.settings.storage.resolved_url()
        store = [("Database", describe_url(url)), ("Status", self.store_error or "open"),
                 ("Enrolled people", str(self.enrolled)),
                 ("Templates in the index", str(len(self.index)) if self.index is not None else "none"),
                 ("Index kind", self.index.kind if self.index is not None else ""),
                 ("Model id of templates", self.model_id or "none"),
                 ("Settings file", str(self.settings_path))]
        if self.engine is not None and self.engine.url.get_backend_name() == "sqlite":
            store.insert(1, ("Database file", str(self.engine.url.database)))
        running = [("Source", self.current_source or "none"), ("Frames shown", str(self.frames_seen)),
                   ("Recognition", self.model_notice or "available")]
        dlg = AboutDialog([("FDFace Attendance", [("Version", _app_version())] + versions()),
                           ("Models", model_rows(active=self.entry.name if self.entry else None)),
                           ("Speed", speed), ("Running", running), ("Data", store)], self.window)
        return self._open("about", dlg)

    def _open(self, key: str, dlg: QDialog) -> QDialog:
        """Open a non-modal dialog, kept by ``key`` so that it is not collected while shown."""
        self._dialogs[key] = dlg
        dlg.open()
        return dlg

    @Slot()
    def show_enrollment(self):
        from desktop_app.ui.enroll_dialog import EnrollDialog

        return self._open("enroll", EnrollDialog(self, self.window))

    @Slot()
    def show_people(self):
        from desktop_app.ui.people_dialog import PeopleDialog

        return self._open("people", PeopleDialog(self, self.window))

    @Slot()
    def show_log(self):
        from desktop_app.ui.log_dialog import LogDialog

        return self._open("log", LogDialog(self, self.window))

    @Slot()
    def show_unknowns(self):
        from desktop_app.ui.unknowns_dialog import UnknownsDialog

        return self._open("unknowns", UnknownsDialog(self, self.window))

    @Slot(str)
    def _on_worker_error(self, message: str) -> None:
        """The vision thread's refusal (a detector that cannot start), said on the GUI thread. Connected as a bound
        slot of this object: PySide runs a lambda connected to a signal of an object on another thread on that
        thread, where touching the status bar's timer crashed the app."""
        self.window.statusBar().showMessage(message)

    @Slot(str)
    def _writer_status(self, text: str) -> None:
        """A busy database: sightings wait and are retried; the status bar says so until they are written."""
        bar = self.window.statusBar()
        if text:
            bar.showMessage(f"Attendance: {text}; retrying, nothing is lost")
        else:
            bar.showMessage("Attendance: the database answers again; every waiting sighting is recorded", 8000)

    # -- shutdown --------------------------------------------------------------------------------------------------
    @Slot()
    def shutdown(self) -> None:
        """Stop capture and inference, write every queued event, close the database. Cooperative throughout."""
        if self._shut:
            return
        self._shut = True
        self._camera_timer.stop()
        self._gallery_timer.stop()
        self.attendance.detach_gallery()
        self.worker.request_stop()  # stops reading at once, from this thread
        emit(self._shutdownWorker)  # queued: runs on the vision thread after the frame in hand, then quits it
        frames_stopped = self.worker_thread.wait(self.THREAD_STOP_MS)
        if not frames_stopped:
            self.unstopped.append("the vision thread (camera or recognition)")
        # every queued sighting is written (or spooled) before anything else may hang
        self.attendance.close(end_tracks=frames_stopped)
        if self.gallery is not None:
            self.tasks.submit(self.gallery.close)
        elif self.engine is not None:
            self.tasks.submit(self.engine.dispose)
        if not self.backups.stop(self.TASKS_STOP_MS):  # a backup in progress finishes first
            self.unstopped.append("the backup thread")
        if not self.tasks.stop(self.TASKS_STOP_MS):
            self.unstopped.append("the database thread")
        with self._retiring_lock:  # a retired writer the database thread never came to (it hangs)
            left, self._retiring = self._retiring, []
            closing = list(self._closing)
        for done in closing:  # one it is closing now: its sightings reach the spool before leave() ends the process
            done.wait(WRITER_CLOSE_S + ABANDON_WAIT_S)
        for w in left:
            try:
                w.close(timeout=WRITER_CLOSE_S)  # what it cannot write goes to its database's spool
            except Exception:  # e.g. a full disk under the spool: the other writers still get their turn
                log.exception("closing the writer of a previous database failed")
        for name in self.unstopped:
            log.warning("%s did not stop in time", name)


def leave(code: int, ctl: AppController) -> int:
    """The app's exit code, after its loop ended and the controller shut down. If a thread of ours did not stop (a
    camera or database call that hangs), the process ends here, at once: Python would otherwise free that running
    QThread at interpreter exit, and Qt aborts the process for it ("QThread: Destroyed while thread is still
    running"), a crash report for a clean quit. Every attendance writer was closed before (shutdown: its sightings
    written or spooled), that of a database switched away from included."""
    if not ctl.unstopped:
        return code
    log.error("quitting without waiting for %s", " and ".join(ctl.unstopped))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):  # None in the windowed (console-less) build
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)


def skipped_lines(skipped: tuple[SkippedFile, ...], at_most: int = 8) -> str:
    """One 'file: reason' line per skipped file, the first ``at_most`` and a count of the rest."""
    lines = [str(x) for x in skipped[:at_most]]
    if len(skipped) > at_most:
        lines.append(f"… and {len(skipped) - at_most} more")
    return "\n".join(lines)


def _app_version() -> str:
    from desktop_app import __version__

    return __version__


def create_app(args) -> tuple[QApplication, AppController]:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("FDFace Attendance")
    app.setOrganizationName("FDFace")
    settings, problem = load_settings(args.settings)
    saved_url = settings.storage.database_url
    if args.db:
        settings = settings.with_changes("storage", database_url=database_url(args.db))
    ctl = AppController(settings, args.settings, source=args.source)
    if args.db:
        ctl.db_override = (settings.storage.database_url, saved_url)
    if problem:
        QTimer.singleShot(0, lambda: QMessageBox.warning(ctl.window, "Settings", problem))
    elif args.settings and not Path(args.settings).exists():  # a new file is fine, a typo should be seen: not a box
        notice = (f"The settings file {args.settings} does not exist yet: the defaults are used, and saving the "
                  f"settings (Tools > Settings) creates it.")
        log.warning("%s", notice)
        QTimer.singleShot(0, lambda: ctl.window.statusBar().showMessage(notice, 30_000))
    app.aboutToQuit.connect(ctl.shutdown)
    app.aboutToQuit.connect(ctl.release_collector)  # after shutdown: collection goes back once our threads stopped
    _quit_on_signals(app)
    return app, ctl


def _quit_on_signals(app: QApplication) -> None:
    """Ctrl+C or a service manager's SIGTERM closes the app the normal way (queued events written, threads
    stopped). Qt's event loop does not run Python signal handlers on its own: a short timer lets them in."""
    import signal

    def quit_(*_: object) -> None:
        QTimer.singleShot(0, app.quit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, quit_)
        except (ValueError, OSError):  # not the main thread, or not supported here
            return
    tick = QTimer(app)
    tick.timeout.connect(lambda: None)
    tick.start(250)


__all__ = ["AppController", "create_app", "load_settings", "model_id_of", "StoreError"]
